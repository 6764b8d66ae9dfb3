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

/// A lambda object whose field's type `fixture-node-v2` changes.
#[crucial::lambda_object]
pub struct Gauge {
    level: crucial::store::Cell<i64>,
}

#[crucial::lambda_object]
impl Gauge {
    /// A gauge at zero.
    #[constructor]
    pub fn create(&mut self) -> Result<(), crucial::store::TxError> {
        self.level.set(&0)
    }

    /// Raises the level by one.
    pub fn touch(&mut self) -> Result<(), crucial::store::TxError> {
        let level = self.level.get()?.unwrap_or(0);
        self.level.set(&(level + 1))
    }
}

/// A lambda object to which `fixture-node-v2` adds a field at the end.
#[crucial::lambda_object]
pub struct Meter {
    count: crucial::store::Cell<i64>,
}

#[crucial::lambda_object]
impl Meter {
    /// A meter at zero.
    #[constructor]
    pub fn create(&mut self) -> Result<(), crucial::store::TxError> {
        self.count.set(&0)
    }

    /// Adds one; the new count.
    pub fn tick(&mut self) -> Result<i64, crucial::store::TxError> {
        let count = self.count.get()?.unwrap_or(0) + 1;
        self.count.set(&count)?;
        Ok(count)
    }
}
