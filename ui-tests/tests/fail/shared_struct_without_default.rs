use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Serialize, Deserialize)]
pub struct Counter {
    n: i64,
}

fn main() {}
