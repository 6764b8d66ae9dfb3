use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    n: i64,
}

#[crucial::shared]
impl Counter {
    pub fn merge(&mut self, other: Self) {
        self.n += other.n;
    }
}

fn main() {}
