use serde::{Deserialize, Serialize};

#[crucial::shared(placement = "object")]
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    n: i64,
}

fn main() {}
