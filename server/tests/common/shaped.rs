//! `Shaped`, a persistent counter hosted by `fixture-node`; `fixture-node-v2`
//! hosts a `Shaped` with other fields under the same wire name, to test how a
//! node reports objects written by a build whose type had another shape.

use serde::{Deserialize, Serialize};

/// A persistent counter.
#[crucial::shared(persistent, name = "Shaped")]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Shaped {
    count: i64,
}

#[crucial::shared]
impl Shaped {
    /// Adds one; returns the new count.
    pub fn bump(&mut self) -> i64 {
        self.count += 1;
        self.count
    }
}
