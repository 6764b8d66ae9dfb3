//! One client call of a lambda object's function, run as a workflow: every
//! execution in a fresh transaction, the function's future driven on this
//! (blocking) thread, a panic caught, the first error of an execution
//! deciding its fate, and a handshake with the watchdog so that a workflow
//! the watchdog gave up on can never commit afterwards.

use crate::txn::{retry, Abort, Committed, Failure, Limits, Reach, Spanning, Store, TxHost};
use crucial::__private::registry::{FunctionEntry, LambdaTypeEntry};
use crucial::__private::store::{Host, Workflow};
use crucial::store::TxError;
use crucial::ObjectId;
use crucial_protocol::wire::{Objects, Outcome};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the client asked for.
pub struct Invocation {
    /// The type.
    pub type_entry: &'static LambdaTypeEntry,
    /// The function.
    pub function: &'static FunctionEntry,
    /// The object (`None` for a static function).
    pub object: Option<ObjectId>,
    /// The encoded arguments.
    pub args: Vec<u8>,
    /// Seeds the workflow's random source: the same for every execution.
    pub seed: u64,
    /// The request to store the reply of, with the commit (deduplicated calls).
    pub reply_to: Option<(u64, u64)>,
    /// The home the workflow runs at (its object's, or its application's
    /// for a static function and a map call): held on this node while it
    /// runs.
    pub home: String,
    /// A map call: the function runs on every object these select
    /// (`lambda_objects/map.rs`), and the workflow returns their results.
    pub over: Option<Objects>,
}

/// How one call of a function ended, before the transaction layer judges it.
pub(super) enum Ran {
    /// It returned (a value, or the error it met).
    Returned(Result<Vec<u8>, TxError>),
    /// Its arguments did not decode.
    BadArguments(String),
    /// It panicked (the message).
    Panicked(String),
}

/// Calls `function` with `args` in workflow `wf` and drives it to its end
/// on this thread, a panic caught.
pub(super) fn call_function(wf: &Workflow, function: &FunctionEntry, args: &[u8]) -> Ran {
    match (function.run)(wf, args) {
        Err(reason) => Ran::BadArguments(reason),
        Ok(future) => match std::panic::catch_unwind(AssertUnwindSafe(|| block_on(future))) {
            Ok(value) => Ran::Returned(value),
            Err(panic) => Ran::Panicked(crucial::__private::panic_message(&*panic)),
        },
    }
}

/// Why a workflow ended without committing, as the node reports it.
#[derive(Debug)]
pub enum Ended {
    /// The transaction layer's verdict (conflicts, deadline, a failure).
    Failure(Failure),
    /// The arguments did not decode.
    BadArguments(String),
    /// The function panicked (the message).
    Panicked(String),
}

/// The workflow's state, shared with its watchdog: running, committing, or
/// given up by the watchdog (then it must not commit).
#[derive(Default)]
pub struct Gate(AtomicU8);

const RUNNING: u8 = 0;
const COMMITTING: u8 = 1;
const GIVEN_UP: u8 = 2;

impl Gate {
    /// The watchdog gives up on the workflow unless it is committing right
    /// now; `false`: it is (wait for its outcome, which comes at once).
    pub fn give_up(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn begin_execution(&self) {
        let _ = self
            .0
            .compare_exchange(COMMITTING, RUNNING, Ordering::AcqRel, Ordering::Acquire);
    }

    fn may_commit(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Runs `invocation` as one workflow on `store` (reaching other nodes'
/// objects through `reach`, in a cluster), re-executed on conflict within
/// `limits`. Blocks: call it off the node's reactor.
pub fn execute(
    store: &Arc<Store>,
    reach: Option<&Arc<dyn Reach>>,
    limits: Limits,
    gate: &Gate,
    invocation: &Invocation,
) -> Result<Committed<Vec<u8>>, Ended> {
    let mut bad_arguments = None;
    let mut panicked = None;
    let deadline = std::time::Instant::now() + limits.time;
    // Child calls go to their objects' nodes until one of them reaches a
    // third node; from then on this workflow runs them here.
    let shipping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let result = retry(store, limits, |txn| {
        gate.begin_execution();
        panicked = None;
        let spanning = match reach {
            Some(reach) => {
                Spanning::reaching(txn, Arc::clone(reach), invocation.home.clone(), deadline)
                    .shipping(Arc::clone(&shipping))
            }
            None => Spanning::local(txn),
        };
        let host = Arc::new(TxHost::new(spanning));
        let ran = match &invocation.over {
            Some(objects) => super::map::run_map(&host, store, invocation, objects),
            None => {
                let wf = Workflow::new(
                    Arc::clone(&host) as Arc<dyn Host>,
                    invocation.object.clone(),
                    unix_time_ms(),
                    invocation.seed,
                );
                call_function(&wf, invocation.function, &invocation.args)
            }
        };
        let value = match ran {
            Ran::Returned(value) => value,
            Ran::BadArguments(reason) => {
                bad_arguments = Some(reason);
                Err(TxError::Encode("bad arguments".into()))
            }
            Ran::Panicked(message) => {
                panicked = Some(message.clone());
                Err(TxError::Failed {
                    function: String::new(),
                    message,
                })
            }
        };
        // The first error of the execution decides (a conflict the function
        // swallowed, or turned into a panic with `unwrap`, is re-executed).
        let value = match host.doomed() {
            Some(error) => Err(Abort::from(error)),
            None => value.map_err(Abort::from),
        };
        let mut txn = host.take();
        let value = value?;
        if !gate.may_commit() {
            return Err(Abort::Deadline);
        }
        if let Some((client, request)) = invocation.reply_to {
            let outcome: Outcome = Ok(value.clone());
            txn.local_mut().reply_with(client, request, outcome);
        }
        Ok((value, txn))
    });
    result.map_err(|failure| match (bad_arguments, panicked, failure) {
        (Some(reason), _, Failure::Failed(_)) => Ended::BadArguments(reason),
        (_, Some(message), Failure::Failed(_)) => Ended::Panicked(message),
        (_, _, failure) => Ended::Failure(failure),
    })
}

/// Runs `function` on `object` with `args` over `host`, as a child call
/// another node's workflow sent here: its encoded result, or the first error
/// of the call (a panic is a failure naming its message). Blocks: call it
/// off the reactor.
pub fn run_child(
    host: Arc<dyn Host>,
    function: &FunctionEntry,
    object: ObjectId,
    args: &[u8],
    seed: u64,
) -> Result<Vec<u8>, TxError> {
    let wf = Workflow::new(Arc::clone(&host), Some(object), unix_time_ms(), seed);
    let value = match call_function(&wf, function, args) {
        Ran::Returned(value) => value,
        Ran::BadArguments(reason) => Err(TxError::Encode(format!("bad arguments: {reason}"))),
        Ran::Panicked(message) => Err(TxError::Failed {
            function: function.id.name.to_string(),
            message,
        }),
    };
    drop(wf);
    match host.doomed() {
        Some(error) => Err(error),
        None => value,
    }
}

pub(super) fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Drives a function's future on this thread. On one node every child call
/// runs inline, so the future is ready at its first poll; a future that waits
/// on something else (a remote child, later) parks the thread until woken.
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}
