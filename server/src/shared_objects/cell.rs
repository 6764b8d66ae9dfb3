//! One object: its user value behind a lock, its poison mark, its parked calls.

use super::census::Counted;
use super::sink::{ParkedCall, ParkingSpot};
use crucial::__private::registry::{ObjectBox, SharedTypeEntry};
use crucial::RemoteError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

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
    /// The user's value; `None` while the object is passivated (on disk only).
    pub value: Option<ObjectBox>,
    /// Set when a mutating method panicked midway.
    pub poison: Option<Poison>,
    /// Blocking calls waiting for the object to change, in arrival order.
    pub parked: Vec<ParkedCall>,
    /// Set when the object's stored state cannot be read by this build: every
    /// call gets `Unreadable` and the stored state is left untouched.
    pub unreadable: Option<String>,
    /// Where its copy on disk stands (persistent objects on a node with a
    /// data directory; empty otherwise).
    pub log: CallLog,
    /// Storage sequence number of its last write: it may leave memory once
    /// that write can be read back.
    pub last_write: u64,
    /// Handed off to another node (a cluster's view changed): calls that still
    /// hold this cell are redirected, not run.
    pub moved: bool,
    /// Restored from this node's disk when it started, and no call has run on
    /// it since. In a cluster such a copy is provisional: while this node was
    /// away the object may have been started afresh elsewhere, and that copy,
    /// handed here, replaces this one; calls wait until the node has settled
    /// its first view (so every such copy has arrived).
    pub restored: bool,
    /// Counts the writes of a replicated object over its whole life (it
    /// moves with the object): the version its copies on replicas carry.
    pub version: u64,
    /// The newest version every replica acknowledged: a read of a newer
    /// state waits for it, so no reply shows a write a failover could lose.
    pub acked: u64,
    /// Its part in its application's census (objects in a namespace).
    pub counted: Counted,
}

/// Where a persistent object's copy on disk stands: a snapshot, and the calls
/// logged after it (see the storage layer).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallLog {
    /// Encoded size of the snapshot.
    pub snapshot_bytes: usize,
    /// Bytes of the calls logged since.
    pub logged_bytes: usize,
    /// Number of the newest call the snapshot includes.
    pub applied: u64,
    /// Number of the newest logged call.
    pub last: u64,
}

impl CallLog {
    /// Its bytes on disk: what the object counts in memory too.
    pub fn bytes(&self) -> usize {
        self.snapshot_bytes + self.logged_bytes
    }
}

/// One object of the table.
pub struct ObjectCell {
    /// Its type's registry entry.
    pub entry: &'static SharedTypeEntry,
    /// Its key.
    pub key: Box<str>,
    /// Residency clock at its last call (least recently used leaves first).
    last_used: AtomicU64,
    state: Mutex<ObjectState>,
}

impl ObjectCell {
    /// A cell holding `value`.
    pub fn new(entry: &'static SharedTypeEntry, key: &str, value: ObjectBox) -> ObjectCell {
        ObjectCell::with(entry, key, Some(value), None)
    }

    /// A cell for a stored object, in memory (`value`) or not yet.
    pub fn stored(
        entry: &'static SharedTypeEntry,
        key: &str,
        value: Option<ObjectBox>,
        log: CallLog,
    ) -> ObjectCell {
        let cell = ObjectCell::with(entry, key, value, None);
        let mut state = cell.lock();
        state.log = log;
        state.restored = true;
        drop(state);
        cell
    }

    /// A cell standing for a stored object this build cannot read.
    pub fn unreadable(entry: &'static SharedTypeEntry, key: &str, reason: String) -> ObjectCell {
        ObjectCell::with(entry, key, Some((entry.create_default)()), Some(reason))
    }

    fn with(
        entry: &'static SharedTypeEntry,
        key: &str,
        value: Option<ObjectBox>,
        unreadable: Option<String>,
    ) -> ObjectCell {
        ObjectCell {
            entry,
            key: key.into(),
            last_used: AtomicU64::new(0),
            state: Mutex::new(ObjectState {
                value,
                poison: None,
                parked: Vec::new(),
                unreadable,
                log: CallLog::default(),
                last_write: 0,
                moved: false,
                restored: false,
                version: 0,
                acked: 0,
                counted: Counted::default(),
            }),
        }
    }

    /// Locks the object. A panic inside a method is caught before it can poison
    /// the mutex, so the guard is always available.
    pub fn lock(&self) -> MutexGuard<'_, ObjectState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the object unless a call holds it now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, ObjectState>> {
        match self.state.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Stamps a call with the residency clock.
    pub fn used(&self, now: u64) {
        if self.last_used.load(Ordering::Relaxed) != now {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }

    /// The residency clock at the object's last call.
    pub fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
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
