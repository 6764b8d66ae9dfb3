//! Cloud threads: spawn, join, and the `Runnable` style of the paper.

mod executor;

pub use executor::{panic_message, run_registered, Execution, Executor, Invocation, LocalExecutor};

use crate::client::Client;
use crate::{codec, Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

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
        spawn_thread(R::NAME, &runnable)
    }
}

/// Handle of a started cloud thread; `join` waits and yields its typed result.
#[must_use = "a cloud thread's errors are only seen through join()"]
pub struct JoinHandle<T> {
    thread: &'static str,
    attempt: u32,
    execution: Result<Box<dyn Execution>>,
    _output: PhantomData<fn() -> T>,
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

    /// Waits for the thread. A remote panic or error comes back as
    /// [`Error::Thread`] with the thread's name, the attempt and the message.
    pub fn join(self) -> Result<T> {
        let output = self.execution?.join().map_err(|message| Error::Thread {
            thread: self.thread.to_string(),
            attempt: self.attempt,
            message,
        })?;
        codec::decode(&output).map_err(|e| Error::Thread {
            thread: self.thread.to_string(),
            attempt: self.attempt,
            message: format!("cannot decode its result: {e}"),
        })
    }
}

/// Starts a registered cloud thread with encoded arguments (used by generated `spawn`).
pub fn spawn_thread<A: Serialize, T>(thread: &'static str, args: &A) -> JoinHandle<T> {
    let execution = (|| {
        let client = Client::global()?;
        let invocation = Invocation {
            thread: thread.to_string(),
            args: codec::encode(args)?,
            servers: client.servers(),
            attempt: 1,
        };
        client.executor().start(invocation)
    })();
    JoinHandle {
        thread,
        attempt: 1,
        execution,
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
