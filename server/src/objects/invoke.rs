//! Running one method on one object: under the object's lock, catching panics,
//! turning the result into an outcome, parking a call that says "not yet", and
//! re-running the calls parked on the object after it changed.

use super::cell::{ObjectCell, ObjectState, Poison};
use super::parking;
use super::residency::Residency;
use super::sink::{Delivery, ParkedCall, ParkingSpot, ReplySink};
use crate::metrics::Metrics;
use crate::storage::{Queued, Storage, Ticket};
use bytes::Bytes;
use crucial::__private::registry::{DispatchError, Invoked, MethodEntry};
use crucial::__private::{panic_message, wire::Outcome};
use crucial::RemoteError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Where and how a call that says "not yet" waits.
pub struct Park<'a> {
    /// Where its reply goes when it completes.
    pub sink: &'a Arc<dyn ReplySink>,
    /// The request id to answer.
    pub id: u64,
    /// Give up after this long with `Timeout` (zero: wait forever).
    pub timeout: Duration,
}

/// How a call's effect on a persistent object reaches the disk.
pub struct Persist<'a> {
    /// The node's storage layer.
    pub storage: &'a Storage,
    /// The node's count of bytes in memory (the object's size changes with
    /// each write; a passivated object comes back).
    pub residency: &'a Residency,
    /// The reply to remember with the new state: `(client, request)`, for
    /// calls that are deduplicated.
    pub reply_to: Option<(u64, u64)>,
}

/// What running a call did.
pub enum Ran {
    /// It completed (or failed): reply with this.
    Done(Outcome),
    /// It is parked on the object; its reply comes later through its sink.
    Parked,
}

/// Runs `method` with `args` on the object in `cell`. Calls parked on the object
/// that this call released (by mutating it) are answered into `released`, for
/// the caller to deliver after its own reply. With `persist`, a mutating call's
/// new state is queued for the disk before the object's lock is released (so
/// an object's states reach the disk in order); the ticket says when it is
/// durable, and the caller must wait for it before replying.
pub fn run_call(
    cell: &Arc<ObjectCell>,
    method: &'static MethodEntry,
    args: &[u8],
    park: Park<'_>,
    persist: Option<Persist<'_>>,
    metrics: &Metrics,
    released: &mut Vec<Delivery>,
) -> (Ran, Option<Ticket>) {
    let mut state = cell.lock();
    if let Some(persist) = &persist {
        cell.used(persist.residency.now());
        if state.value.is_none() {
            activate(&mut state, cell, persist);
        }
    }
    if let Some(reason) = &state.unreadable {
        return (Ran::Done(Err(cell.unreadable_error(reason))), None);
    }
    if let Some(poison) = &state.poison {
        return (Ran::Done(Err(cell.poisoned(poison))), None);
    }
    let result = invoke(&mut state, method, args);
    let ran = match settle(&mut state, cell, method, result) {
        Some(outcome) => Ran::Done(outcome),
        None => {
            let counted = metrics.parked();
            let call = ParkedCall::new(
                method,
                Bytes::copy_from_slice(args),
                park.id,
                park.sink,
                counted,
            );
            let spot: Arc<dyn ParkingSpot> = Arc::clone(cell) as Arc<dyn ParkingSpot>;
            park.sink.parked().track(call.token, Arc::downgrade(&spot));
            if !park.timeout.is_zero() {
                parking::expire_after(Arc::clone(cell), call.token, park.timeout);
            }
            state.parked.push(call);
            Ran::Parked
        }
    };
    // Any mutating call may release parked calls, even one that is itself
    // pending: a reindeer that registers and waits is what wakes Santa.
    if !method.id.read_only && !state.parked.is_empty() {
        wake(&mut state, cell, metrics, released);
    }
    let ticket = match persist {
        Some(persist) if !method.id.read_only => save(&mut state, cell, &ran, persist),
        _ => None,
    };
    (ran, ticket)
}

/// Brings a passivated object back from disk, under its lock. An object that
/// cannot be read back is marked unreadable (its stored state is kept); one
/// that is not on disk (it was never written) starts from `Default`.
fn activate(state: &mut ObjectState, cell: &ObjectCell, persist: &Persist<'_>) {
    let entry = cell.entry;
    let revived = match persist.storage.load(entry.name, &cell.key) {
        Ok(Some(stored)) => stored
            .revive(entry)
            .map(|value| (value, stored.state.len())),
        Ok(None) => Ok(((entry.create_default)(), 0)),
        Err(reason) => Err(reason),
    };
    match revived {
        Ok((value, bytes)) => {
            state.value = Some(value);
            state.bytes = bytes;
            persist.residency.activated(bytes);
        }
        Err(reason) => {
            tracing::warn!(
                "{}: object `{}` of type `{}` is unreadable: {reason}",
                persist.storage.dir().display(),
                cell.key,
                entry.name
            );
            // Counted as resident (with no bytes) from now on, like any
            // unreadable stand-in.
            state.value = Some((entry.create_default)());
            state.unreadable = Some(reason);
            persist.residency.activated(0);
        }
    }
}

/// Queues the object's state after a mutating call, unless the call failed
/// without changing it or left it untrustworthy.
fn save(
    state: &mut ObjectState,
    cell: &ObjectCell,
    ran: &Ran,
    persist: Persist<'_>,
) -> Option<Ticket> {
    let reply = match ran {
        Ran::Done(Err(_)) => return None,
        Ran::Done(outcome) => persist
            .reply_to
            .map(|(client, request)| (client, request, outcome)),
        Ran::Parked => None,
    };
    if state.poison.is_some() {
        return None;
    }
    Some(queue_state(state, cell, persist, reply))
}

/// Queues an object's current state for the disk (as a call on it would),
/// for an object that was just created.
pub fn save_created(cell: &ObjectCell, storage: &Storage, residency: &Residency) -> Ticket {
    let persist = Persist {
        storage,
        residency,
        reply_to: None,
    };
    queue_state(&mut cell.lock(), cell, persist, None)
}

/// Encodes the state and queues it, with `reply`, as one write. The caller
/// holds the object's lock, so an object's states reach the disk in order.
fn queue_state(
    state: &mut ObjectState,
    cell: &ObjectCell,
    persist: Persist<'_>,
    reply: Option<(u64, u64, &Outcome)>,
) -> Ticket {
    let entry = cell.entry;
    let Some(value) = &state.value else {
        unreachable!("a call runs on an object in memory")
    };
    match (entry.encode_state)(&**value) {
        Ok(bytes) => {
            let Queued { seq, ticket } =
                persist
                    .storage
                    .save(entry.name, &cell.key, entry.shape, &bytes, reply);
            persist.residency.resized(state.bytes, bytes.len());
            state.bytes = bytes.len();
            state.last_write = seq;
            ticket
        }
        Err(reason) => {
            let (done, ticket) = tokio::sync::oneshot::channel();
            let _ = done.send(Err(format!("cannot encode the state: {reason}")));
            ticket
        }
    }
}

/// Runs a method on an object's value under `catch_unwind`.
fn invoke(
    state: &mut ObjectState,
    method: &MethodEntry,
    args: &[u8],
) -> std::thread::Result<Result<Invoked, DispatchError>> {
    let Some(value) = state.value.as_mut() else {
        unreachable!("a call runs on an object in memory")
    };
    catch_unwind(AssertUnwindSafe(|| (method.invoke)(&mut **value, args)))
}

/// Turns the result of running a method into a reply, poisoning the object if a
/// mutating method panicked. `None` means the call is (still) pending.
fn settle(
    state: &mut ObjectState,
    cell: &ObjectCell,
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
            reason: format!("object `{}` is not a `{type_name}`", cell.key),
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
                key: cell.key.to_string(),
                method: method.id.name.to_string(),
                message,
            })
        }
    })
}

/// Runs the parked calls of an object again after it changed, in arrival
/// order, repeating while completions keep mutating it. Completed calls are
/// answered into `released`; calls of gone clients are dropped unrun.
fn wake(
    state: &mut ObjectState,
    cell: &ObjectCell,
    metrics: &Metrics,
    released: &mut Vec<Delivery>,
) {
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < state.parked.len() {
            if let Some(poison) = &state.poison {
                let error = cell.poisoned(poison);
                released.push(state.parked.remove(i).answer(Err(error)));
                continue;
            }
            if state.parked[i].sink.is_closed() {
                // (Normally already purged when its connection closed.)
                let gone = state.parked.remove(i);
                gone.sink.parked().untrack(gone.token);
                continue;
            }
            let method = state.parked[i].method;
            let args = state.parked[i].args.clone();
            let result = invoke(state, method, &args);
            match settle(state, cell, method, result) {
                None => i += 1,
                Some(outcome) => {
                    changed |= !method.id.read_only;
                    metrics.count_call(cell.entry.name, method.id.name);
                    released.push(state.parked.remove(i).answer(outcome));
                }
            }
        }
        if !changed {
            return;
        }
    }
}
