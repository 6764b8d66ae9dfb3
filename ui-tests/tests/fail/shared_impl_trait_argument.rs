use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Log {
    lines: Vec<String>,
}

#[crucial::shared]
impl Log {
    pub fn push(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

fn main() {}
