//! `fixture-node` with a changed `Shaped` (same wire name, another field), a
//! `Gauge` lambda object whose field changed type and a `Meter` with a field
//! added: the build a user gets after editing stored types. Started by
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

/// `Gauge` after an edit: its field's type changed (stored objects cannot
/// be read).
#[crucial::lambda_object]
pub struct Gauge {
    level: crucial::store::Cell<String>,
}

#[crucial::lambda_object]
impl Gauge {
    /// A gauge at "".
    #[constructor]
    pub fn create(&mut self) -> Result<(), crucial::store::TxError> {
        self.level.set(&String::new())
    }

    /// Appends to the level.
    pub fn touch(&mut self) -> Result<(), crucial::store::TxError> {
        let level = self.level.get()?.unwrap_or_default();
        self.level.set(&format!("{level}+"))
    }
}

/// `Meter` after an edit: a field added at the end (stored objects stay
/// readable).
#[crucial::lambda_object]
pub struct Meter {
    count: crucial::store::Cell<i64>,
    label: crucial::store::Cell<String>,
}

#[crucial::lambda_object]
impl Meter {
    /// A meter at zero.
    #[constructor]
    pub fn create(&mut self) -> Result<(), crucial::store::TxError> {
        self.count.set(&0)?;
        self.label.set(&String::new())
    }

    /// Adds one; the new count.
    pub fn tick(&mut self) -> Result<i64, crucial::store::TxError> {
        let count = self.count.get()?.unwrap_or(0) + 1;
        self.count.set(&count)?;
        Ok(count)
    }
}

fn main() {
    crucial_server::cli::main();
}
