use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Log {
    lines: Vec<String>,
}

#[crucial::shared]
impl Log {
    pub fn push<T: ToString>(&mut self, line: T) {
        self.lines.push(line.to_string());
    }
}

fn main() {}
