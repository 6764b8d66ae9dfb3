use serde::{Deserialize, Serialize};

#[crucial::shared(persistant)]
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    n: i64,
}

fn main() {}
