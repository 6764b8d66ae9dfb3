// A user monitor with a blocking method: the node parks `enter` while the room is
// full and runs it again after `leave`.
use serde::{Deserialize, Serialize};
use std::task::Poll;
use std::time::Duration;

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Room {
    inside: u32,
    capacity: u32,
}

#[crucial::shared]
impl Room {
    pub fn enter(&mut self) -> Poll<u32> {
        if self.inside < self.capacity {
            self.inside += 1;
            Poll::Ready(self.inside)
        } else {
            Poll::Pending
        }
    }

    pub fn leave(&mut self) {
        self.inside -= 1;
    }

    /// A parameter named like the generated twin's own `timeout` parameter.
    pub fn wait_longer(&self, timeout: u64) -> Poll<u64> {
        if self.inside == 0 {
            Poll::Ready(timeout)
        } else {
            Poll::Pending
        }
    }
}

fn main() {
    let room = Room::shared("r");
    let _blocking: fn(&RoomProxy) -> crucial::Result<u32> = RoomProxy::enter;
    let _bounded = |r: &RoomProxy| r.enter_timeout(Duration::from_millis(10));
    let _future = room.enter_async();
    let _both = |r: &RoomProxy| r.wait_longer_timeout(5, Duration::from_millis(10));
    let entry = crucial::__private::registry::registry().shared_type("Room").unwrap();
    assert!(entry.method("enter").unwrap().id.blocking);
    assert!(!entry.method("leave").unwrap().id.blocking);
}
