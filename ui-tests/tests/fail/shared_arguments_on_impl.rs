use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    n: i64,
}

#[crucial::shared(persistent)]
impl Counter {
    pub fn get(&self) -> i64 {
        self.n
    }
}

fn main() {}
