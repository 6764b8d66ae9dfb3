use serde::{Deserialize, Serialize};

pub struct Handle;

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Registry {
    n: i64,
}

#[crucial::shared]
impl Registry {
    pub fn handle(&self) -> Handle {
        Handle
    }
}

fn main() {}
