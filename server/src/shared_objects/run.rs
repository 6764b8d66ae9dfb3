//! Running one method on one object: under the object's lock, catching panics,
//! turning the result into an outcome, parking a call that says "not yet", and
//! re-running the calls parked on the object after it changed.

use super::cell::{ObjectCell, ObjectState, Poison};
use super::parking;
use super::persist::Persist;
use super::sink::{Delivery, ParkedCall, ParkingSpot, ReplySink};
use crate::metrics::Metrics;
use crate::quota::{Held, Quota, Quotas};
use crate::storage::Ticket;
use bytes::Bytes;
use crucial::__private::panic_message;
use crucial::__private::registry::{DispatchError, Invoked, MethodEntry};
use crucial::RemoteError;
use crucial_protocol::wire::Outcome;
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
    /// Calls that may be parked for one sink (`--max-parked-per-connection`).
    pub max_per_sink: usize,
    /// Calls that may be parked on the node (`--max-parked`).
    pub max_total: usize,
    /// The per-application quotas (`--app-max-parked`), for an object in
    /// an application's namespace.
    pub quotas: &'a Quotas,
}

impl Park<'_> {
    /// Why this call may not park, if it may not: one of the limits is full.
    /// The call ran (what it did to the object stays, as when a parked call's
    /// client goes away) but does not wait. If it may, its unit of its
    /// application's quota.
    fn admit(
        &self,
        cell: &ObjectCell,
        method: &MethodEntry,
        metrics: &Metrics,
    ) -> Result<Option<Held>, RemoteError> {
        if let Some(error) = self.refused(cell, method, metrics) {
            return Err(error);
        }
        let (type_name, key) = cell.name();
        match crucial_protocol::placement::without_namespace(key) {
            ("", _) => Ok(None),
            (application, named) => self
                .quotas
                .take(application, Quota::Parked, || {
                    format!(
                        "the blocking call `{type_name}::{}` on `{named}` must wait, but did                          not park (blocking methods are idempotent: retry it later)",
                        method.id.name
                    )
                })
                .map(Some),
        }
    }

    /// The refusal of a write to an object whose application is at its
    /// `--app-max-bytes`, if it is.
    fn over_bytes(
        &self,
        state: &mut ObjectState,
        cell: &ObjectCell,
        method: &MethodEntry,
    ) -> Option<RemoteError> {
        let limit = self.quotas.limit(Quota::Bytes)?;
        let under = |state: &ObjectState| {
            state
                .counted
                .census()
                .is_none_or(|census| census.bytes() < limit)
        };
        if method.id.read_only || under(state) {
            return None;
        }
        let ObjectState { value, counted, .. } = state;
        counted.remeasure(|| encoded_len(value.as_deref(), cell));
        if under(state) {
            return None;
        }
        let (type_name, key) = cell.name();
        let (application, named) = crucial_protocol::placement::without_namespace(key);
        Some(self.quotas.refuse(
            application,
            Quota::Bytes,
            format!(
                "the call `{type_name}::{}` on `{named}` may write, and was not run: delete \
                 objects to make room",
                method.id.name
            ),
        ))
    }

    fn refused(
        &self,
        cell: &ObjectCell,
        method: &MethodEntry,
        metrics: &Metrics,
    ) -> Option<RemoteError> {
        let (limit, value, whose) = if self.sink.parked().len() >= self.max_per_sink {
            (
                "--max-parked-per-connection",
                self.max_per_sink,
                "this connection's",
            )
        } else if metrics.parked_now() >= self.max_total as u64 {
            ("--max-parked", self.max_total, "the node's")
        } else {
            return None;
        };
        let (type_name, key) = cell.name();
        Some(RemoteError::Limit {
            limit: limit.into(),
            value: value as u64,
            detail: format!(
                "the blocking call `{type_name}::{}` on `{key}` must wait, but {whose} parked \
                 calls are at their limit: it did not park (blocking methods are idempotent: \
                 retry it later)",
                method.id.name
            ),
        })
    }
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
/// durable, and the caller must wait for it before replying. The third value
/// is the object's version after the call (see [`ObjectState::version`]): a
/// mutating call that did not fail counts one more.
pub fn run_call(
    cell: &Arc<ObjectCell>,
    method: &'static MethodEntry,
    args: &[u8],
    park: Park<'_>,
    persist: Option<Persist<'_>>,
    metrics: &Metrics,
    released: &mut Vec<Delivery>,
) -> (Ran, Option<Ticket>, u64) {
    let mut state = cell.lock();
    if state.moved {
        return (Ran::Done(Err(moved(cell))), None, 0);
    }
    if let Some(persist) = &persist {
        persist.activate(&mut state, cell);
    }
    if let Some(reason) = &state.unreadable {
        return (Ran::Done(Err(cell.unreadable_error(reason))), None, 0);
    }
    if let Some(poison) = &state.poison {
        return (Ran::Done(Err(cell.poisoned(poison))), None, 0);
    }
    if let Some(refusal) = park.over_bytes(&mut state, cell, method) {
        return (Ran::Done(Err(refusal)), None, 0);
    }
    let result = invoke(&mut state, method, args);
    let ran = match settle(&mut state, cell, method, result) {
        Some(outcome) => Ran::Done(outcome),
        None => match park.admit(cell, method, metrics) {
            Err(error) => Ran::Done(Err(error)),
            Ok(quota) => {
                let counted = metrics.parked();
                let call = ParkedCall::new(
                    method,
                    Bytes::copy_from_slice(args),
                    park.id,
                    park.sink,
                    counted,
                    quota,
                );
                let spot: Arc<dyn ParkingSpot> = Arc::clone(cell) as Arc<dyn ParkingSpot>;
                park.sink.parked().track(call.token, Arc::downgrade(&spot));
                if !park.timeout.is_zero() {
                    parking::expire_after(Arc::clone(cell), call.token, park.timeout);
                }
                state.parked.push(call);
                Ran::Parked
            }
        },
    };
    // Any mutating call may release parked calls, even one that is itself
    // pending: a reindeer that registers and waits is what wakes Santa.
    let woke = !method.id.read_only && !state.parked.is_empty();
    if woke {
        wake(&mut state, cell, metrics, released);
    }
    let ticket = match persist {
        Some(persist) if !method.id.read_only => {
            // Only a call that ran alone can stand for its effect in the log:
            // parked calls that ran again are not logged.
            let outcome = match &ran {
                Ran::Done(outcome) => Some(outcome),
                Ran::Parked => None,
            };
            persist.save(
                &mut state,
                cell,
                (method, args, !woke && outcome.is_some()),
                outcome,
            )
        }
        _ => None,
    };
    if !method.id.read_only && !matches!(ran, Ran::Done(Err(_))) {
        state.version += 1;
        if let Some(limit) = park.quotas.limit(Quota::Bytes) {
            let ObjectState { value, counted, .. } = &mut *state;
            counted.written(args.len(), limit, || encoded_len(value.as_deref(), cell));
        }
    }
    (ran, ticket, state.version)
}

/// The size of an object's encoded state (for its application's byte
/// quota), if it is in memory and encodes.
fn encoded_len(value: Option<&(dyn std::any::Any + Send)>, cell: &ObjectCell) -> Option<usize> {
    (cell.entry.encode_state)(value?)
        .ok()
        .map(|state| state.len())
}

/// The redirect of a call that found its object handed off; the node puts its
/// view in (see `request/call.rs`).
pub fn moved(cell: &ObjectCell) -> RemoteError {
    RemoteError::NotOwner {
        type_name: cell.entry.name.to_string(),
        key: cell.key.to_string(),
        node: String::new(),
        view: Box::new(crucial_protocol::placement::View::fixed(Vec::new())),
        served_by: None,
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
