use serde::{Deserialize, Serialize};

pub struct Handle(std::fs::File);

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Registry {
    n: i64,
}

#[crucial::shared]
impl Registry {
    pub fn register(&mut self, handle: Handle) {
        let _ = handle;
        self.n += 1;
    }
}

fn main() {}
