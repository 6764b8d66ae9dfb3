//! Where replies go, and who waits for one: a [`ReplySink`] (implemented by a
//! client connection's outbox; a replica applying a forwarded call or a node
//! replaying its log can bring their own), [`Delivery`] (a reply addressed to a
//! sink), and the records of calls parked on an object until it changes.
//!
//! A parked call holds no thread: it is a [`ParkedCall`] in its object's list
//! (method, a copy of its arguments, the request id and the sink to answer on).
//! Each sink also keeps a [`ParkedCalls`] index of the calls parked on its
//! behalf, so that when its client goes away they are removed at once, and when
//! the node stops they are answered with a clear error.

use crate::metrics::ParkedGuard;
use bytes::Bytes;
use crucial::__private::registry::MethodEntry;
use crucial::RemoteError;
use crucial_protocol::wire::Outcome;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The receiving end of replies: whoever sent the requests.
pub trait ReplySink: Send + Sync + 'static {
    /// Queues replies, in order. Never blocks: a sink that cannot write now
    /// buffers and pushes back on its own reader.
    fn send(&self, replies: Vec<(u64, Outcome)>);

    /// Whether the receiver is gone: calls parked on its behalf are dropped
    /// without running again (they must not take anything for nobody).
    fn is_closed(&self) -> bool;

    /// The calls parked on this sink's behalf, so they can be removed from their
    /// objects when the sink closes.
    fn parked(&self) -> &ParkedCalls;
}

/// One reply for one sink: request `id` answered with `outcome`.
pub struct Delivery {
    /// Where the reply goes.
    pub sink: Arc<dyn ReplySink>,
    /// The request it answers.
    pub id: u64,
    /// The reply.
    pub outcome: Outcome,
}

/// Sends replies, one `send` per run of consecutive replies to the same sink.
pub fn deliver(deliveries: Vec<Delivery>) {
    let mut run: Vec<(u64, Outcome)> = Vec::new();
    let mut current: Option<Arc<dyn ReplySink>> = None;
    for delivery in deliveries {
        let same = current
            .as_ref()
            .is_some_and(|sink| Arc::ptr_eq(sink, &delivery.sink));
        if !same {
            if let Some(sink) = current.take() {
                sink.send(std::mem::take(&mut run));
            }
            current = Some(delivery.sink);
        }
        run.push((delivery.id, delivery.outcome));
    }
    if let Some(sink) = current {
        sink.send(run);
    }
}

/// Source of tokens naming parked calls, unique within the process.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// One parked call.
pub struct ParkedCall {
    /// Names the call in its object's list and in its sink's index.
    pub token: u64,
    /// The method to run again.
    pub method: &'static MethodEntry,
    /// A copy of its encoded arguments.
    pub args: Bytes,
    /// The request id to answer.
    pub id: u64,
    /// Where to answer.
    pub sink: Arc<dyn ReplySink>,
    /// Keeps the call in the node's parked-calls gauge until it leaves.
    _counted: ParkedGuard,
    /// And in its application's parked calls (`--app-max-parked`).
    _quota: Option<crate::quota::Held>,
}

impl ParkedCall {
    /// A call to park, with a fresh token.
    pub fn new(
        method: &'static MethodEntry,
        args: Bytes,
        id: u64,
        sink: &Arc<dyn ReplySink>,
        counted: ParkedGuard,
        quota: Option<crate::quota::Held>,
    ) -> Self {
        ParkedCall {
            token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
            method,
            args,
            id,
            sink: Arc::clone(sink),
            _counted: counted,
            _quota: quota,
        }
    }

    /// The call leaves its object answered with `outcome`: forget it in its
    /// sink's index and address the reply.
    pub fn answer(self, outcome: Outcome) -> Delivery {
        self.sink.parked().untrack(self.token);
        Delivery {
            sink: Arc::clone(&self.sink),
            id: self.id,
            outcome,
        }
    }
}

/// Where calls park (an object), as a sink's index sees it.
pub trait ParkingSpot: Send + Sync {
    /// Removes the parked call `token`, if it is still parked here.
    fn take_parked(&self, token: u64) -> Option<ParkedCall>;
    /// The object's type name and key, for error messages.
    fn name(&self) -> (&'static str, &str);
}

/// The calls parked on behalf of one sink: token -> where it is parked.
#[derive(Default)]
pub struct ParkedCalls {
    calls: Mutex<HashMap<u64, Weak<dyn ParkingSpot>>>,
}

impl ParkedCalls {
    /// Records a call parked at `spot`.
    pub fn track(&self, token: u64, spot: Weak<dyn ParkingSpot>) {
        self.lock().insert(token, spot);
    }

    /// Forgets a call that left its object.
    pub fn untrack(&self, token: u64) {
        self.lock().remove(&token);
    }

    /// How many calls are parked on this sink's behalf.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call is parked on this sink's behalf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every call of this sink from its object without answering: its
    /// client is gone, so it must take nothing and cost no memory.
    pub fn purge(&self) {
        let calls = std::mem::take(&mut *self.lock());
        for (token, spot) in calls {
            if let Some(spot) = spot.upgrade() {
                drop(spot.take_parked(token));
            }
        }
    }

    /// Removes every call of this sink from its object and answers each with
    /// `error(type name, key, method name)`: for a node that stops.
    pub fn fail_all(&self, error: impl Fn(&str, &str, &str) -> RemoteError) {
        let mut answers = Vec::new();
        // Taken out first: answering a call untracks it, which takes this lock.
        let calls = std::mem::take(&mut *self.lock());
        for (token, spot) in calls {
            let Some(spot) = spot.upgrade() else { continue };
            if let Some(call) = spot.take_parked(token) {
                let (type_name, key) = spot.name();
                let error = error(type_name, key, call.method.id.name);
                answers.push(call.answer(Err(error)));
            }
        }
        deliver(answers);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<dyn ParkingSpot>>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}
