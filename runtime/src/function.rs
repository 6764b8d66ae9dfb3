//! The function side: what a function binary's `main` runs.
//!
//! [`main`] serves AWS Lambda when `AWS_LAMBDA_RUNTIME_API` is set (on AWS, or
//! under the local Lambda host): it runs `lambda_runtime` with a handler that
//! decodes the invocation ([`LambdaPayload`]: thread name, base64 arguments,
//! server addresses, attempt), connects to the shared-object servers, runs the
//! cloud thread through the registry ([`dispatch`]) and returns a
//! [`LambdaOutput`] or a Lambda error (`errorType: CloudThreadFailed`, with the
//! remote panic or error message). Without that variable it is a one-shot
//! process worker: a postcard [`Invocation`] on stdin, a postcard
//! `Result<Vec<u8>, String>` on stdout.

use crate::client::Config;
use crate::registry::registry;
use crate::thread::{run_registered, Invocation};
use crate::{codec, Client};
use std::io::{Read, Write};

/// Runs one invocation in this process and returns the encoded output or a message.
/// Installs a global client on the invocation's servers if none is installed yet.
pub fn handle(invocation: &Invocation) -> Result<Vec<u8>, String> {
    if !invocation.servers.is_empty() {
        // The invocation says where the servers are; the function's own
        // environment (which may be the caller's, as under the process executor)
        // does not choose executors or servers here.
        let mut config = Config::new();
        for server in &invocation.servers {
            config = config.server(server.clone());
        }
        // Ignore "already installed": a warm worker reuses its client.
        if let Ok(client) = config.connect() {
            let _ = client.install();
        }
    }
    run_registered(&invocation.thread, &invocation.args)
}

/// The JSON event of a cloud-thread invocation on Lambda.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LambdaPayload {
    /// Registered name of the cloud thread.
    pub thread: String,
    /// Encoded arguments, base64.
    pub args: String,
    /// Shared-object servers (`host:port`).
    pub servers: Vec<String>,
    /// Attempt number, from 1.
    pub attempt: u32,
}

/// The JSON result of a successful invocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LambdaOutput {
    /// Encoded result, base64.
    pub output: String,
}

fn base64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl LambdaPayload {
    /// The Lambda event for an invocation.
    pub fn from_invocation(invocation: &Invocation) -> LambdaPayload {
        use base64::Engine;
        LambdaPayload {
            thread: invocation.thread.clone(),
            args: base64().encode(&invocation.args),
            servers: invocation.servers.clone(),
            attempt: invocation.attempt,
        }
    }

    /// Back to an invocation.
    pub fn into_invocation(self) -> Result<Invocation, String> {
        use base64::Engine;
        Ok(Invocation {
            args: base64()
                .decode(&self.args)
                .map_err(|e| format!("arguments are not base64: {e}"))?,
            thread: self.thread,
            servers: self.servers,
            attempt: self.attempt,
        })
    }
}

impl LambdaOutput {
    /// Wraps an encoded result.
    pub fn new(output: &[u8]) -> LambdaOutput {
        use base64::Engine;
        LambdaOutput {
            output: base64().encode(output),
        }
    }

    /// The encoded result.
    pub fn decode(&self) -> Result<Vec<u8>, String> {
        use base64::Engine;
        base64()
            .decode(&self.output)
            .map_err(|e| format!("result is not base64: {e}"))
    }
}

/// Runs one invocation off the async runtime (cloud threads block) and returns
/// the encoded output or the failure message. Plain async: tests call it directly.
pub async fn dispatch(invocation: Invocation) -> Result<Vec<u8>, String> {
    tokio::task::spawn_blocking(move || handle(&invocation))
        .await
        .unwrap_or_else(|e| Err(format!("the thread running it died: {e}")))
}

/// Serves Lambda invocations forever (`AWS_LAMBDA_RUNTIME_API` must be set).
pub fn run_lambda() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<LambdaPayload>| async move {
            let failed = |message: String| lambda_runtime::Diagnostic {
                error_type: "CloudThreadFailed".into(),
                error_message: message,
            };
            let invocation = event.payload.into_invocation().map_err(failed)?;
            dispatch(invocation)
                .await
                .map(|output| LambdaOutput::new(&output))
                .map_err(failed)
        },
    )))
    .map_err(|e| e.to_string())
}

/// `main` of a function binary: the Lambda runtime when `AWS_LAMBDA_RUNTIME_API`
/// is set; otherwise `--list` prints the registered cloud threads, and without it
/// one invocation is read from stdin and its outcome written to stdout.
pub fn main() {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        if let Err(e) = run_lambda() {
            eprintln!("lambda runtime failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    if std::env::args().any(|a| a == "--list" || a == "--list-threads") {
        for entry in registry().cloud_threads() {
            println!("{}", entry.name);
        }
        return;
    }
    let mut input = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut input) {
        Err(e) => Err(format!("cannot read the invocation: {e}")),
        Ok(_) => match codec::decode::<Invocation>(&input) {
            Err(e) => Err(format!("malformed invocation: {e}")),
            Ok(invocation) => handle(&invocation),
        },
    };
    let bytes = codec::encode(&outcome).expect("a result of bytes and a string encodes");
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&bytes)
        .and_then(|_| stdout.flush())
        .is_err()
    {
        std::process::exit(2);
    }
    let _ = Client::global; // the client, if any, closes with the process
}
