//! Parked calls: blocking methods that said "not yet".
//!
//! A parked call holds no thread: it is a record in its object's list (method,
//! a copy of its arguments, and where to send the reply). After every mutating
//! call on the object the node runs the parked calls again, in arrival order,
//! and answers those that complete; it repeats while completions keep mutating
//! the object. A parked call whose client has gone is dropped before it can
//! run again, and one with a timeout is answered `Timeout` when it expires.

use crate::connection::Outbox;
use crate::dedup::Outcome;
use crate::table::{ObjectCell, ObjectState, Poison};
use bytes::Bytes;
use crucial::registry::{DispatchError, Invoked, MethodEntry};
use crucial::{panic_message, RemoteError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// One parked call.
pub struct Parked {
    /// Unique within the node, to find the call again when its timer fires.
    pub token: u64,
    /// The method to run again.
    pub method: &'static MethodEntry,
    /// A copy of its encoded arguments.
    pub args: Bytes,
    /// The request id to answer.
    pub id: u64,
    /// The connection to answer on.
    pub outbox: Arc<Outbox>,
}

impl Parked {
    fn reply(self, outcome: Outcome) {
        self.outbox.untrack(self.token);
        self.outbox.send(&[(self.id, outcome)]);
    }
}

/// Turns the result of running a method into a reply, poisoning the object if a
/// mutating method panicked. `None` means the call is (still) pending.
pub fn settle(
    state: &mut ObjectState,
    cell: &ObjectCell,
    key: &str,
    method: &MethodEntry,
    result: std::thread::Result<Result<Invoked, DispatchError>>,
) -> Option<Outcome> {
    let type_name = cell.entry.name;
    Some(match result {
        Ok(Ok(Invoked::Ready(bytes))) => Ok(bytes),
        Ok(Ok(Invoked::Pending)) => return None,
        Ok(Err(DispatchError::BadArguments(reason))) => Err(RemoteError::BadArguments {
            type_name: type_name.to_string(),
            method: method.id.name.to_string(),
            reason,
        }),
        Ok(Err(DispatchError::BadResult(reason))) => Err(RemoteError::Protocol {
            reason: format!("cannot encode the result of {}: {reason}", method.id.name),
        }),
        Ok(Err(DispatchError::WrongType)) => Err(RemoteError::Protocol {
            reason: format!("object `{key}` is not a `{type_name}`"),
        }),
        Err(panic) => {
            let message = panic_message(&*panic);
            if !method.id.read_only {
                state.poison = Some(Poison {
                    method: method.id.name.to_string(),
                    message: message.clone(),
                });
            }
            Err(RemoteError::Panicked {
                type_name: type_name.to_string(),
                key: key.to_string(),
                method: method.id.name.to_string(),
                message,
            })
        }
    })
}

/// Runs a method on an object under `catch_unwind`.
pub fn invoke(
    state: &mut ObjectState,
    method: &MethodEntry,
    args: &[u8],
) -> std::thread::Result<Result<Invoked, DispatchError>> {
    catch_unwind(AssertUnwindSafe(|| {
        (method.invoke)(&mut *state.value, args)
    }))
}

/// Runs the parked calls of an object again after it changed.
pub fn wake(state: &mut ObjectState, cell: &ObjectCell, key: &str) {
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < state.parked.len() {
            if state.poison.is_some() {
                let parked = state.parked.remove(i);
                let poison = state.poison.clone().expect("checked");
                parked.reply(Err(RemoteError::Poisoned {
                    type_name: cell.entry.name.to_string(),
                    key: key.to_string(),
                    method: poison.method,
                    message: poison.message,
                }));
                continue;
            }
            if state.parked[i].outbox.is_closed() {
                // (Normally already purged when its connection closed.)
                // Its client is gone: it must not take anything on their behalf.
                state.parked.remove(i);
                continue;
            }
            let method = state.parked[i].method;
            let args = state.parked[i].args.clone();
            let result = invoke(state, method, &args);
            match settle(state, cell, key, method, result) {
                None => i += 1,
                Some(outcome) => {
                    changed |= !method.id.read_only;
                    let parked = state.parked.remove(i);
                    parked
                        .outbox
                        .metrics()
                        .count_call(cell.entry.name, method.id.name);
                    parked.reply(outcome);
                }
            }
        }
        if !changed {
            return;
        }
    }
}

/// Answers `Timeout` to a parked call if it is still parked after `timeout`.
pub fn expire_after(cell: Arc<ObjectCell>, key: String, token: u64, timeout: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let mut state = cell.lock();
        if let Some(at) = state.parked.iter().position(|p| p.token == token) {
            let parked = state.parked.remove(at);
            let method = parked.method.id.name.to_string();
            parked.reply(Err(RemoteError::Timeout {
                type_name: cell.entry.name.to_string(),
                key,
                method,
                waited_ms: timeout.as_millis() as u64,
            }));
        }
    });
}

/// Fails every parked call of a deleted object.
pub fn fail_all(state: &mut ObjectState, cell: &ObjectCell, key: &str) {
    for parked in state.parked.drain(..) {
        parked.reply(Err(RemoteError::Deleted {
            type_name: cell.entry.name.to_string(),
            key: key.to_string(),
        }));
    }
}
