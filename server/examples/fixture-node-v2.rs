//! `fixture-node` with a changed `Shaped` (same wire name, another field): the
//! build a user gets after editing a persistent type. Started by
//! `tests/durability.rs` on a data directory written by `fixture-node`.
//!
//! Usage: as `crucial-server` (`--data-dir DIR`, ...); prints `... listening on ADDR`.

#[path = "../tests/common/fixtures.rs"]
mod fixtures;

use serde::{Deserialize, Serialize};

/// `Shaped` after an edit: a field was added.
#[crucial::shared(persistent, name = "Shaped")]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Shaped {
    label: String,
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

fn main() {
    crucial_server::cli::main();
}
