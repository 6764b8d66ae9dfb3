//! Cloud threads: spawn, join, and the `Runnable` style of the paper.

mod executor;
mod http;
#[cfg(feature = "lambda")]
mod lambda;
mod options;
mod process;

pub use executor::{panic_message, run_registered, Execution, Executor, Invocation, LocalExecutor};
#[cfg(feature = "lambda")]
pub use lambda::LambdaExecutor;
pub use options::SpawnOptions;
pub use process::{interpret as interpret_lambda_response, invoke_http, ProcessExecutor};

use crate::client::Client;
use crate::{codec, Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::Arc;

/// A cloud thread's body in the paper's style: a serializable struct whose `run`
/// is the thread. Put `#[cloud_thread]` on the struct.
///
/// ```
/// use crucial::{cloud_thread, CloudThread, Runnable};
/// use serde::{Deserialize, Serialize};
///
/// #[cloud_thread]
/// #[derive(Serialize, Deserialize)]
/// pub struct Hello { name: String }
///
/// impl Runnable for Hello {
///     type Output = String;
///     fn run(self) -> String { format!("hello, {}", self.name) }
/// }
///
/// fn main() -> crucial::Result<()> {
/// #   crucial_server::link();
///     let greeting = CloudThread::spawn(Hello { name: "cloud".into() }).join()?;
///     assert_eq!(greeting, "hello, cloud");
///     Ok(())
/// }
/// ```
pub trait Runnable: Serialize + DeserializeOwned + Send + 'static {
    /// What the thread returns to `join`.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The thread's body.
    fn run(self) -> Self::Output;
}

/// Implemented by `#[cloud_thread]` structs: their registered name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not registered as a cloud thread",
    label = "add #[cloud_thread] to this struct's definition",
    note = "`CloudThread::spawn` takes structs annotated with `#[crucial::cloud_thread]` that implement `crucial::Runnable`"
)]
pub trait RegisteredRunnable: Runnable {
    /// Registered name.
    const NAME: &'static str;
}

/// Starts `Runnable` cloud threads (the paper's `new CloudThread(r).start()`).
#[derive(Debug)]
pub struct CloudThread;

impl CloudThread {
    /// Starts `runnable` on the configured executor.
    pub fn spawn<R: RegisteredRunnable>(runnable: R) -> JoinHandle<R::Output> {
        spawn_thread(R::NAME, &runnable, None)
    }

    /// Starts `runnable` with explicit retries and time limit.
    pub fn spawn_with<R: RegisteredRunnable>(
        options: &SpawnOptions,
        runnable: R,
    ) -> JoinHandle<R::Output> {
        spawn_thread(R::NAME, &runnable, Some(options))
    }
}

/// Handle of a started cloud thread; `join` waits and yields its typed result.
///
/// A failed attempt (an error or panic in the function, a lost process, a time
/// limit) is re-invoked with the same input while attempts remain (see
/// [`SpawnOptions`]); `join` returns the first success or the last failure.
#[must_use = "a cloud thread's errors are only seen through join()"]
pub struct JoinHandle<T> {
    thread: &'static str,
    state: Result<Running>,
    _output: PhantomData<fn() -> T>,
}

struct Running {
    executor: Arc<dyn Executor>,
    invocation: Invocation,
    options: SpawnOptions,
    execution: Result<Box<dyn Execution>, String>,
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", &self.thread)
            .finish()
    }
}

impl<T: DeserializeOwned> JoinHandle<T> {
    /// Registered name of the thread.
    pub fn thread(&self) -> &'static str {
        self.thread
    }

    /// Waits for the thread, retrying failed attempts as configured. A failure
    /// comes back as [`Error::Thread`] with the thread's name, the attempt and
    /// the remote panic or error message.
    pub fn join(self) -> Result<T> {
        let mut running = self.state?;
        loop {
            let attempt = running.invocation.attempt;
            let outcome = running.execution.and_then(|e| e.join());
            let message = match outcome {
                Ok(output) => {
                    return codec::decode(&output).map_err(|e| Error::Thread {
                        thread: self.thread.to_string(),
                        attempt,
                        message: format!("cannot decode its result: {e}"),
                    })
                }
                Err(message) => message,
            };
            if attempt >= running.options.attempts {
                let message = if attempt > 1 {
                    format!("{message} (last of {attempt} attempts)")
                } else {
                    message
                };
                return Err(Error::Thread {
                    thread: self.thread.to_string(),
                    attempt,
                    message,
                });
            }
            tracing::warn!(thread = self.thread, attempt, %message, "cloud thread failed; retrying");
            std::thread::sleep(running.options.backoff_before(attempt + 1));
            running.invocation.attempt = attempt + 1;
            running.execution = running
                .executor
                .start(running.invocation.clone(), running.options.timeout)
                .map_err(|e| e.to_string());
        }
    }
}

/// Starts the cloud thread registered as `thread` (for example
/// `my_crate::work`) with `args`, the tuple of its parameters. The typed
/// `work::spawn` generated by `#[cloud_thread]` is the usual way; this one serves
/// dynamic dispatch. `None` takes the client's default options.
pub fn spawn_by_name<A: Serialize, T>(
    thread: &'static str,
    args: &A,
    options: Option<&SpawnOptions>,
) -> JoinHandle<T> {
    spawn_thread(thread, args, options)
}

/// Starts a registered cloud thread with encoded arguments (used by generated
/// `spawn` and `spawn_with`); `None` takes the client's default options.
pub fn spawn_thread<A: Serialize, T>(
    thread: &'static str,
    args: &A,
    options: Option<&SpawnOptions>,
) -> JoinHandle<T> {
    let state = (|| {
        let client = Client::global()?;
        let options = options
            .cloned()
            .unwrap_or_else(|| client.spawn_options().clone());
        let invocation = Invocation {
            thread: thread.to_string(),
            args: codec::encode(args)?,
            servers: client.servers(),
            attempt: 1,
        };
        let executor = Arc::clone(client.executor());
        let execution = executor
            .start(invocation.clone(), options.timeout)
            .map_err(|e| e.to_string());
        Ok(Running {
            executor,
            invocation,
            options,
            execution,
        })
    })();
    JoinHandle {
        thread,
        state,
        _output: PhantomData,
    }
}

/// Registry trampoline for `#[cloud_thread]` functions.
pub fn run_thread<A: DeserializeOwned, R: Serialize>(
    args: &[u8],
    body: impl FnOnce(A) -> R,
) -> std::result::Result<Vec<u8>, String> {
    let args: A = codec::decode(args).map_err(|e| format!("cannot decode arguments: {e}"))?;
    let output = body(args);
    codec::encode(&output).map_err(|e| format!("cannot encode result: {e}"))
}

/// Registry trampoline for `#[cloud_thread]` structs.
pub fn run_runnable<R: Runnable>(args: &[u8]) -> std::result::Result<Vec<u8>, String> {
    run_thread(args, |runnable: R| runnable.run())
}
