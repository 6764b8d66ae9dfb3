//! The paper's style of cloud thread: a serializable struct whose `run` is the
//! thread, and the trampolines the registry calls to run either style.

use crate::codec;
use serde::de::DeserializeOwned;
use serde::Serialize;

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
