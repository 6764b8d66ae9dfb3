use serde::{Deserialize, Serialize};

#[crucial::cloud_thread]
#[derive(Serialize, Deserialize)]
pub struct Job {
    n: u64,
}

fn main() {}
