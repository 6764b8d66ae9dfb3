//! One call of a lambda object's function inside a workflow's transaction:
//! what the client asked for, the function's future driven on this
//! (blocking) thread, a panic caught. Shared by a workflow's root
//! (`run.rs`), a map call's instances (`map.rs`) and the child calls other
//! nodes send here.

use crucial::__private::registry::{FunctionEntry, LambdaTypeEntry};
use crucial::__private::store::{Host, Workflow};
use crucial::store::TxError;
use crucial::ObjectId;
use crucial_protocol::wire::Objects;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
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
