use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    n: i64,
}

#[crucial::shared]
impl Counter {
    pub unsafe fn add(&mut self, d: i64) {
        self.n += d;
    }
}

fn main() {}
