//! Every storage field kind, imported or by path, with serde and `Ord` types.

use crucial::store::{Cell, Map};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Comment {
    pub author: String,
    pub text: String,
}

#[crucial::lambda_object(name = "forum::Thread")]
pub struct Thread {
    title: Cell<String>,
    comments: Map<u32, Comment>,
    tags: crucial::store::Set<String>,
    by_author: crucial::store::MultiMap<String, u32>,
    community: Cell<crucial::ObjectId>,
}

fn main() {
    use crucial::__private::store::LambdaObject;
    assert_eq!(Thread::TYPE_NAME, "forum::Thread");
    assert_eq!(Thread::FIELDS.len(), 5);
}
