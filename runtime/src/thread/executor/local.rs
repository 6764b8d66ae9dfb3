//! The `local` executor: cloud threads on OS threads of this process, and the
//! registry lookup every executor ends in ([`run_registered`]).

use super::{Execution, Executor, Invocation};
use crate::registry::registry;
use crate::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Runs cloud threads on OS threads of this process, still through the encoded
/// arguments and the registry, so what runs here runs remotely.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalExecutor;

struct LocalExecution {
    done: std::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    timeout: Option<Duration>,
}

impl Execution for LocalExecution {
    fn join(self: Box<Self>) -> Result<Vec<u8>, String> {
        let received = match self.timeout {
            Some(limit) => self.done.recv_timeout(limit).map_err(|e| match e {
                std::sync::mpsc::RecvTimeoutError::Timeout => format!(
                    "timed out after {limit:?} (a local thread cannot be stopped; it runs on \
                     in the background)"
                ),
                std::sync::mpsc::RecvTimeoutError::Disconnected => {
                    "the local thread running it died".to_string()
                }
            }),
            None => self
                .done
                .recv()
                .map_err(|_| "the local thread running it died".to_string()),
        };
        received?
    }
}

impl Executor for LocalExecutor {
    fn name(&self) -> &str {
        "local"
    }

    fn start(
        &self,
        invocation: Invocation,
        timeout: Option<Duration>,
    ) -> Result<Box<dyn Execution>, Error> {
        let (name, attempt) = (invocation.thread.clone(), invocation.attempt);
        let (tx, done) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("cloud-thread {name}"))
            .spawn(move || {
                let _ = tx.send(run_registered(&invocation.thread, &invocation.args));
            })
            .map_err(|e| Error::Thread {
                thread: name,
                attempt,
                message: format!("cannot start a local thread: {e}"),
            })?;
        Ok(Box::new(LocalExecution { done, timeout }))
    }
}

/// Runs a registered cloud thread in the current thread: looks it up, decodes its
/// input, runs it catching panics, encodes its output. Function binaries call this.
pub fn run_registered(thread: &str, args: &[u8]) -> Result<Vec<u8>, String> {
    let Some(entry) = registry().cloud_thread(thread) else {
        return Err(format!(
            "no cloud thread named `{thread}` in this binary (is its crate linked, and are client \
             and function built from the same code?)"
        ));
    };
    match catch_unwind(AssertUnwindSafe(|| (entry.run)(args))) {
        Ok(result) => result,
        Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
    }
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
