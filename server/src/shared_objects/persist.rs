//! A persistent object's side of the storage layer, under the object's lock:
//! what a mutating call writes (a snapshot of the state, or the call itself
//! appended to the object's log — the smaller), and bringing a passivated
//! object back from disk.

use super::cell::{CallLog, ObjectCell, ObjectState};
use super::residency::Residency;
use crate::storage::{call_size, Change, Queued, Storage, StoredObject, Ticket};
use crucial::__private::registry::MethodEntry;
use crucial_protocol::wire::Outcome;

/// How a call's effect on a persistent object reaches the disk.
pub struct Persist<'a> {
    /// The node's storage layer.
    pub storage: &'a Storage,
    /// The node's count of bytes in memory (the object's size changes with
    /// each write; a passivated object comes back).
    pub residency: &'a Residency,
    /// The reply to remember with the change: `(client, request)`, for calls
    /// that are deduplicated.
    pub reply_to: Option<(u64, u64)>,
}

/// The call that made a change: its method, its arguments, and whether it
/// ran alone (no parked call ran again after it), so that logging it is
/// enough to replay its effect.
pub type Cause<'a> = (&'static MethodEntry, &'a [u8], bool);

impl Persist<'_> {
    /// Before a call: stamps the object's use and, if it is passivated, brings
    /// it back from disk. An object that cannot be read back is marked
    /// unreadable (what is stored is kept); one that is not on disk (it was
    /// never written) starts from `Default`.
    pub fn activate(&self, state: &mut ObjectState, cell: &ObjectCell) {
        cell.used(self.residency.now());
        if state.value.is_some() {
            return;
        }
        let entry = cell.entry;
        let revived = match self.storage.load(entry.name, &cell.key) {
            Ok(Some(stored)) => stored.revive(entry).map(|v| (v, log_of(&stored))),
            Ok(None) => Ok(((entry.create_default)(), CallLog::default())),
            Err(reason) => Err(reason),
        };
        match revived {
            Ok((value, log)) => {
                state.value = Some(value);
                state.log = log;
                self.residency.activated(log.bytes());
            }
            Err(reason) => {
                self.storage
                    .report_unreadable(entry.name, &cell.key, &reason);
                // Resident (with no bytes) from now on, like any unreadable
                // stand-in; its calls get `Unreadable`.
                state.value = Some((entry.create_default)());
                state.unreadable = Some(reason);
                self.residency.activated(0);
            }
        }
    }

    /// After a mutating call that answered `outcome` (`None`: it parked):
    /// queues its change, unless the call failed without changing the object
    /// or left it untrustworthy.
    pub fn save(
        self,
        state: &mut ObjectState,
        cell: &ObjectCell,
        cause: Cause<'_>,
        outcome: Option<&Outcome>,
    ) -> Option<Ticket> {
        let reply = match outcome {
            Some(Err(_)) => return None,
            Some(outcome) => self
                .reply_to
                .map(|(client, request)| (client, request, outcome)),
            None => None,
        };
        if state.poison.is_some() {
            return None;
        }
        Some(self.write(state, cell, Some(cause), reply))
    }

    /// Brings a passivated object back from `storage` (if the node has one)
    /// before its state is read whole: to send it to another node.
    pub fn reload(
        storage: Option<&Storage>,
        residency: &Residency,
        state: &mut ObjectState,
        cell: &ObjectCell,
    ) {
        if let (None, Some(storage)) = (&state.value, storage) {
            Persist {
                storage,
                residency,
                reply_to: None,
            }
            .activate(state, cell);
        }
    }

    /// Writes the state of an object that was just created.
    pub fn save_created(self, cell: &ObjectCell) -> Ticket {
        self.write(&mut cell.lock(), cell, None, None)
    }

    /// Logs the call if the calls logged since the snapshot, with it, stay
    /// smaller than the snapshot; otherwise writes a snapshot that includes
    /// every call so far (and deletes their log).
    fn write(
        self,
        state: &mut ObjectState,
        cell: &ObjectCell,
        cause: Option<Cause<'_>>,
        reply: Option<(u64, u64, &Outcome)>,
    ) -> Ticket {
        let entry = cell.entry;
        let before = state.log.bytes();
        let mut log = state.log;
        let encoded;
        let change = match cause {
            Some((method, args, true))
                if self.storage.call_log()
                    && log.logged_bytes + call_size(method.id.name, args) < log.snapshot_bytes =>
            {
                log.last += 1;
                log.logged_bytes += call_size(method.id.name, args);
                Change::Call {
                    seq: log.last,
                    method: method.id.name,
                    args,
                }
            }
            _ => {
                let Some(value) = &state.value else {
                    unreachable!("a call runs on an object in memory")
                };
                encoded = match (entry.encode_state)(&**value) {
                    Ok(bytes) => bytes,
                    Err(reason) => {
                        let (done, ticket) = tokio::sync::oneshot::channel();
                        let _ = done.send(Err(format!("cannot encode the state: {reason}")));
                        return ticket;
                    }
                };
                let covered = log.applied + 1..=log.last;
                log = CallLog {
                    snapshot_bytes: encoded.len(),
                    logged_bytes: 0,
                    applied: log.last,
                    last: log.last,
                };
                Change::Snapshot {
                    shape: entry.shape,
                    state: &encoded,
                    applied: log.applied,
                    covered,
                }
            }
        };
        let Queued { seq, ticket } = self.storage.save(entry.name, &cell.key, change, reply);
        state.log = log;
        state.last_write = seq;
        self.residency.resized(before, log.bytes());
        ticket
    }
}

/// Where a stored object's copy on disk stands.
pub fn log_of(stored: &StoredObject) -> CallLog {
    CallLog {
        snapshot_bytes: stored.state.len(),
        logged_bytes: stored.logged_bytes(),
        applied: stored.applied,
        last: stored.last_seq(),
    }
}
