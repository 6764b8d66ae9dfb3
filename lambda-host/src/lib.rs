//! # crucial-lambda-host
//!
//! A local AWS Lambda host, so the exact function binary that is deployed is
//! what runs and is tested here. It serves:
//!
//! * the **Invoke API** (`POST /2015-03-31/functions/{name}/invocations`) with
//!   `RequestResponse`, `Event` and `DryRun` invocation types, `404` for unknown
//!   functions, `413` over 6 MB, `429` over the concurrency limit;
//! * the **Runtime API** (`/2018-06-01/runtime/invocation/next`, `.../{id}/response`,
//!   `.../{id}/error`, `/init/error`) to each execution environment, with the
//!   request id, absolute deadline, ARN and trace headers.
//!
//! Each execution environment is one OS process of the function binary with
//! `AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:PORT` (its own port). Environments are
//! reused warm, created up to the function's concurrency limit, and destroyed
//! when an invocation overruns the timeout or the process exits. Errors follow
//! Lambda: a failed invocation is HTTP 200 with `X-Amz-Function-Error: Unhandled`
//! and a body `{"errorMessage", "errorType"}`; a timeout is `Sandbox.Timedout`; a
//! process exit is `Runtime.ExitError`.

#![warn(missing_docs)]

mod environment;
mod invoke;
mod peer;

pub use invoke::{router, HostState};
pub use peer::Access;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Largest request payload of a synchronous invocation (Lambda's limit).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// One function the host serves.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Function name (the `{name}` of the Invoke URL).
    pub name: String,
    /// The function binary (its `main` runs the Lambda runtime).
    pub binary: PathBuf,
    /// Time limit of one invocation.
    pub timeout: Duration,
    /// Most execution environments alive at once.
    pub concurrency: usize,
    /// Reported as `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u32,
    /// Extra environment variables of the function's processes.
    pub env: Vec<(String, String)>,
}

impl FunctionSpec {
    /// A function with Lambda's defaults (3 s timeout, concurrency 10, 128 MB).
    pub fn new(name: impl Into<String>, binary: impl Into<PathBuf>) -> FunctionSpec {
        FunctionSpec {
            name: name.into(),
            binary: binary.into(),
            timeout: Duration::from_secs(3),
            concurrency: 10,
            memory_mb: 128,
            env: Vec::new(),
        }
    }

    /// The function's ARN as this host reports it.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:us-east-1:000000000000:function:{}",
            self.name
        )
    }
}

/// A running host.
pub struct LambdaHost {
    /// Address of the Invoke API.
    pub addr: SocketAddr,
    state: Arc<HostState>,
    _thread: Option<std::thread::JoinHandle<()>>,
}

impl LambdaHost {
    /// Starts the host on its own runtime thread, listening on `listen`,
    /// taking connections from processes of its own user only.
    pub fn start(listen: &str, functions: Vec<FunctionSpec>) -> std::io::Result<LambdaHost> {
        LambdaHost::start_with(listen, functions, Access::OwnUser)
    }

    /// [`LambdaHost::start`], with the Invoke API open to `access` (the
    /// Runtime API of the environments always takes its own user only).
    pub fn start_with(
        listen: &str,
        functions: Vec<FunctionSpec>,
        access: Access,
    ) -> std::io::Result<LambdaHost> {
        let state = HostState::new(functions);
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let serving = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("crucial-lambda-host".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("lambda host runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    let listener = peer::Guarded::new(listener, access);
                    let _ = axum::serve(listener, router(serving)).await;
                });
            })?;
        Ok(LambdaHost {
            addr,
            state,
            _thread: Some(thread),
        })
    }

    /// Execution environments currently alive for `function` (for tests and metrics).
    pub fn environments(&self, function: &str) -> usize {
        self.state.environments(function)
    }

    /// Processes started so far for `function` (cold starts).
    pub fn cold_starts(&self, function: &str) -> u64 {
        self.state.cold_starts(function)
    }
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        self.state.shutdown();
    }
}
