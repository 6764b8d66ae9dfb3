use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Names {
    names: Vec<String>,
}

#[crucial::shared]
impl Names {
    pub fn add(&mut self, name: &str) {
        self.names.push(name.to_string());
    }
}

fn main() {}
