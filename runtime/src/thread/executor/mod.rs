//! Executors: where cloud threads run. `local` threads of this process,
//! `process`es of the function binary under the local Lambda host, and AWS
//! `lambda` (feature `lambda`) implement one trait, [`Executor`].

#[cfg(feature = "lambda")]
mod aws_lambda;
mod choose;
mod invoke_api;
mod local;
mod process;

#[cfg(feature = "lambda")]
pub use aws_lambda::LambdaExecutor;
pub(crate) use choose::by_kind;
pub use local::{panic_message, run_registered, LocalExecutor};
pub use process::ProcessExecutor;

use crate::Error;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Everything a function needs to run one cloud thread, on any machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// Registered name of the cloud thread.
    pub thread: String,
    /// Encoded argument tuple (or `Runnable` struct).
    #[serde(with = "serde_bytes")]
    pub args: Vec<u8>,
    /// Addresses of the shared-object servers the thread should use.
    pub servers: Vec<String>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The credential of the application that started it, for nodes that
    /// authenticate (the thread connects as its application).
    #[serde(default)]
    pub token: Option<crate::Token>,
    /// How the application's client reaches TLS nodes: the CA it trusts
    /// (the thread trusts it too).
    #[serde(default)]
    pub tls: Option<crate::Tls>,
}

/// A started cloud thread.
pub trait Execution: Send {
    /// Waits for the thread; returns its encoded output or a failure message.
    fn join(self: Box<Self>) -> Result<Vec<u8>, String>;
}

/// Something that runs cloud threads.
pub trait Executor: Send + Sync + 'static {
    /// Short name for logs and errors (`local`, `process`, `lambda`).
    fn name(&self) -> &str;

    /// Starts one invocation; never blocks for the thread to finish. `timeout`
    /// bounds the wait in `join` (the executor's own limit applies too).
    fn start(
        &self,
        invocation: Invocation,
        timeout: Option<Duration>,
    ) -> Result<Box<dyn Execution>, Error>;
}
