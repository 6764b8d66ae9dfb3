//! The `process` executor: the real function binary as child processes, hosted
//! by an in-process local Lambda host (warm reuse, concurrency limit, time
//! limit, Lambda's error semantics), invoked through its Invoke API.

use super::invoke_api::invoke_http;
use super::{Execution, Executor, Invocation};
use crate::Error;
use crucial_lambda_host::{FunctionSpec, LambdaHost};
use std::path::PathBuf;
use std::time::Duration;

/// Name of the function inside the private host.
const FUNCTION: &str = "crucial-function";

/// Runs cloud threads as processes of a function binary.
pub struct ProcessExecutor {
    host: LambdaHost,
    binary: PathBuf,
}

impl std::fmt::Debug for ProcessExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessExecutor")
            .field("binary", &self.binary)
            .field("host", &self.host.addr)
            .finish()
    }
}

impl ProcessExecutor {
    /// Hosts `binary` with a 15-minute time limit (Lambda's maximum) and up to
    /// 64 concurrent processes.
    pub fn new(binary: impl Into<PathBuf>) -> Result<ProcessExecutor, Error> {
        let mut spec = FunctionSpec::new(FUNCTION, binary);
        spec.timeout = Duration::from_secs(900);
        spec.concurrency = 64;
        ProcessExecutor::with_spec(spec)
    }

    /// Hosts a function with explicit settings (its `name` is ignored).
    pub fn with_spec(mut spec: FunctionSpec) -> Result<ProcessExecutor, Error> {
        if !spec.binary.exists() {
            return Err(Error::Config(format!(
                "function binary {} does not exist (build it, or set CRUCIAL_FUNCTION_BINARY)",
                spec.binary.display()
            )));
        }
        spec.name = FUNCTION.into();
        let binary = spec.binary.clone();
        let host = LambdaHost::start("127.0.0.1:0", vec![spec])
            .map_err(|e| Error::Config(format!("cannot start the local Lambda host: {e}")))?;
        Ok(ProcessExecutor { host, binary })
    }

    /// The function binary next to the running program: `target/release/pi`
    /// -> `target/release/pi-function`.
    pub fn sibling_binary() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let name = exe.file_name()?.to_str()?.to_string();
        Some(exe.with_file_name(format!("{name}-function")))
    }

    /// Processes started so far (cold starts).
    pub fn cold_starts(&self) -> u64 {
        self.host.cold_starts(FUNCTION)
    }

    /// Processes alive now.
    pub fn environments(&self) -> usize {
        self.host.environments(FUNCTION)
    }
}

struct ProcessExecution(std::sync::mpsc::Receiver<Result<Vec<u8>, String>>);

impl Execution for ProcessExecution {
    fn join(self: Box<Self>) -> Result<Vec<u8>, String> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err("the invoking thread died".into()))
    }
}

impl Executor for ProcessExecutor {
    fn name(&self) -> &str {
        "process"
    }

    fn start(
        &self,
        invocation: Invocation,
        timeout: Option<Duration>,
    ) -> Result<Box<dyn Execution>, Error> {
        let addr = self.host.addr.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("invoke {}", invocation.thread))
            .spawn(move || {
                let _ = tx.send(invoke_http(&addr, FUNCTION, &invocation, timeout));
            })
            .map_err(|e| Error::Config(format!("cannot start an invoking thread: {e}")))?;
        Ok(Box::new(ProcessExecution(rx)))
    }
}
