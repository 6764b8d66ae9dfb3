use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Names {
    all: Vec<String>,
}

#[crucial::shared]
impl Names {
    pub fn add(&mut self, entry: (u32, &str)) {
        self.all.push(entry.1.to_string());
    }
}

fn main() {}
