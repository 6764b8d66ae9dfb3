use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    n: i64,
}

#[crucial::shared]
impl Counter {
    pub fn get(&self) -> i64 {
        self.n
    }

    pub fn get_async(&self) -> i64 {
        self.n
    }
}

fn main() {}
