use serde::{Deserialize, Serialize};
use std::task::Poll;

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Gate {
    open: bool,
}

#[crucial::shared]
impl Gate {
    pub fn pass(&self) -> Poll<()> {
        if self.open {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub fn pass_timeout(&self) -> bool {
        self.open
    }
}

fn main() {}
