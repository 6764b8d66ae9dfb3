//! `fixture-node` with a changed `Shaped` (same wire name, another field): the
//! build a user gets after editing a persistent type. Started by
//! `tests/durability.rs` on a data directory written by `fixture-node`.
//!
//! Usage: `fixture-node-v2 --data-dir DIR`; prints `... listening on ADDR`.

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
    let mut args = std::env::args().skip(1);
    let mut config = crucial_server::NodeConfig {
        listen: "127.0.0.1:0".into(),
        workers: 2,
        ..Default::default()
    };
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--data-dir", Some(dir)) => config.data_dir = Some(dir.into()),
            _ => panic!("usage: fixture-node-v2 --data-dir DIR"),
        }
    }
    crucial_server::run(config, |addr| {
        println!("fixture-node-v2 listening on {addr}");
    })
    .expect("fixture node v2");
}
