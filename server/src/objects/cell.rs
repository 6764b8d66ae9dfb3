//! One object: its user value behind a lock, its poison mark, its parked calls.

use super::sink::{ParkedCall, ParkingSpot};
use crucial::__private::registry::{ObjectBox, SharedTypeEntry};
use crucial::RemoteError;
use std::sync::{Mutex, MutexGuard};

/// A panic that left an object's state untrustworthy.
#[derive(Debug, Clone)]
pub struct Poison {
    /// The mutating method that panicked.
    pub method: String,
    /// Its panic message.
    pub message: String,
}

/// An object's bookkeeping, behind the object's lock.
pub struct ObjectState {
    /// The user's value.
    pub value: ObjectBox,
    /// Set when a mutating method panicked midway.
    pub poison: Option<Poison>,
    /// Blocking calls waiting for the object to change, in arrival order.
    pub parked: Vec<ParkedCall>,
    /// Set when the object's stored state cannot be read by this build: every
    /// call gets `Unreadable` and the stored state is left untouched.
    pub unreadable: Option<String>,
}

/// One object of the table.
pub struct ObjectCell {
    /// Its type's registry entry.
    pub entry: &'static SharedTypeEntry,
    /// Its key.
    pub key: Box<str>,
    state: Mutex<ObjectState>,
}

impl ObjectCell {
    /// A cell holding `value`.
    pub fn new(entry: &'static SharedTypeEntry, key: &str, value: ObjectBox) -> ObjectCell {
        ObjectCell::with(entry, key, value, None)
    }

    /// A cell standing for a stored object this build cannot read.
    pub fn unreadable(entry: &'static SharedTypeEntry, key: &str, reason: String) -> ObjectCell {
        ObjectCell::with(entry, key, (entry.create_default)(), Some(reason))
    }

    fn with(
        entry: &'static SharedTypeEntry,
        key: &str,
        value: ObjectBox,
        unreadable: Option<String>,
    ) -> ObjectCell {
        ObjectCell {
            entry,
            key: key.into(),
            state: Mutex::new(ObjectState {
                value,
                poison: None,
                parked: Vec::new(),
                unreadable,
            }),
        }
    }

    /// Locks the object. A panic inside a method is caught before it can poison
    /// the mutex, so the guard is always available.
    pub fn lock(&self) -> MutexGuard<'_, ObjectState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error a call on this object gets while it is poisoned.
    pub fn poisoned(&self, poison: &Poison) -> RemoteError {
        RemoteError::Poisoned {
            type_name: self.entry.name.to_string(),
            key: self.key.to_string(),
            method: poison.method.clone(),
            message: poison.message.clone(),
        }
    }
}

impl ObjectCell {
    /// The error a call on this object gets while it is unreadable.
    pub fn unreadable_error(&self, reason: &str) -> RemoteError {
        RemoteError::Unreadable {
            type_name: self.entry.name.to_string(),
            key: self.key.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl ParkingSpot for ObjectCell {
    fn take_parked(&self, token: u64) -> Option<ParkedCall> {
        let mut state = self.lock();
        let at = state.parked.iter().position(|p| p.token == token)?;
        Some(state.parked.remove(at))
    }

    fn name(&self) -> (&'static str, &str) {
        (self.entry.name, &self.key)
    }
}
