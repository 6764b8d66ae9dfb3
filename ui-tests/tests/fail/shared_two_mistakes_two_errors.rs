// Two independent mistakes in one impl block give exactly two errors: the
// user's block is still emitted, the valid method is still shipped, and the
// broken ones still have proxy stubs, so the calls in `main` add nothing.
use serde::{Deserialize, Serialize};

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Greeter {
    greetings: u64,
}

#[crucial::shared]
impl Greeter {
    pub fn greet(&mut self, name: &str) -> String {
        self.greetings += 1;
        format!("hello, {name}")
    }

    pub async fn count(&self) -> u64 {
        self.greetings
    }

    pub fn reset(&mut self) {
        self.greetings = 0;
    }
}

fn main() {
    let greeter = Greeter::shared("g");
    let _ = greeter.reset();
    let _ = greeter.greet("ada");
    let _ = greeter.count();
}
