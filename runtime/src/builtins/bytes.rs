//! An opaque shared byte value (the paper's `AtomicByteArray`).

use crate as crucial;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A shared byte string, replaced and read as a whole.
///
/// ```
/// # crucial_server::link();
/// use crucial::{AtomicBytes, Bytes};
/// let blob = AtomicBytes::shared("blob");
/// blob.set(Bytes::from(vec![7u8; 1024]))?;
/// assert_eq!(blob.get()?.len(), 1024);
/// # Ok::<(), crucial::Error>(())
/// ```
#[crucial::shared(name = "crucial::AtomicBytes")]
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtomicBytes {
    value: Bytes,
}

impl AtomicBytes {
    /// An initial state for `shared_with`.
    pub fn new(value: impl Into<Bytes>) -> Self {
        AtomicBytes {
            value: value.into(),
        }
    }
}

#[crucial::shared]
impl AtomicBytes {
    /// Returns the value.
    pub fn get(&self) -> Bytes {
        self.value.clone()
    }

    /// Replaces the value.
    pub fn set(&mut self, value: Bytes) {
        self.value = value;
    }

    /// Replaces the value, returning the previous one.
    pub fn swap(&mut self, value: Bytes) -> Bytes {
        std::mem::replace(&mut self.value, value)
    }

    /// Stores `new` if the value equals `current`; returns whether it did.
    pub fn compare_and_set(&mut self, current: Bytes, new: Bytes) -> bool {
        if self.value == current {
            self.value = new;
            true
        } else {
            false
        }
    }

    /// Length of the value in bytes.
    pub fn len(&self) -> u64 {
        self.value.len() as u64
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}
