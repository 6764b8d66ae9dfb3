//! The function side, in one place: what a function binary's `main` runs.
//!
//! [`run`] serves AWS Lambda when `AWS_LAMBDA_RUNTIME_API` is set (on AWS, or
//! under the local Lambda host): it runs `lambda_runtime` with a handler that
//! decodes the invocation ([`LambdaPayload`]: thread name, base64 arguments,
//! server addresses, attempt), connects to the shared-object servers, runs the
//! cloud thread through the registry ([`dispatch`]) and returns a
//! [`LambdaOutput`] or a Lambda error (`errorType: CloudThreadFailed`, with the
//! remote panic or error message). Without that variable it is a one-shot
//! process worker: a postcard [`Invocation`] on stdin, a postcard
//! `Result<Vec<u8>, String>` on stdout. Users reach it as `crucial::lambda::run()`.

pub mod event;

pub use event::{LambdaOutput, LambdaPayload};

use crate::codec;
use crate::config::Config;
use crate::context::Context;
use crate::registry::registry;
use crate::thread::executor::{run_registered, Invocation};
use std::io::{Read, Write};

/// Runs one invocation in this process and returns the encoded output or a message.
/// The global context is the invocation's: its servers, token and TLS (see
/// [`Context::enter_invocation`]).
pub fn handle(invocation: &Invocation) -> Result<Vec<u8>, String> {
    if !invocation.servers.is_empty() {
        // The invocation says where the servers are; the function's own
        // environment (which may be the caller's, as under the process executor)
        // does not choose executors or servers here.
        let application = (
            invocation.servers.clone(),
            invocation.token.clone(),
            invocation.tls.clone(),
        );
        Context::enter_invocation(application, || {
            let mut config = Config::new();
            for server in &invocation.servers {
                config = config.server(server.clone());
            }
            if let Some(token) = &invocation.token {
                config = config.token(token.clone());
            }
            if let Some(tls) = &invocation.tls {
                config = config.tls(tls.clone());
            }
            config
        })
        .map_err(|e| format!("cannot make a client for the invocation's nodes: {e}"))?;
    }
    run_registered(&invocation.thread, &invocation.args)
}

/// Runs one invocation off the async runtime (cloud threads block) and returns
/// the encoded output or the failure message. Plain async: tests call it directly.
pub async fn dispatch(invocation: Invocation) -> Result<Vec<u8>, String> {
    tokio::task::spawn_blocking(move || handle(&invocation))
        .await
        .unwrap_or_else(|e| Err(format!("the thread running it died: {e}")))
}

/// Serves Lambda invocations forever (`AWS_LAMBDA_RUNTIME_API` must be set).
fn run_lambda() -> Result<(), String> {
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
pub fn run() {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        if let Err(e) = run_lambda() {
            eprintln!("lambda runtime failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    let program = std::env::args().next().unwrap_or_else(|| "function".into());
    let mut list = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--list" | "--list-threads" => list = true,
            "-h" | "--help" => {
                println!(
                    "{program}: the function binary of a Crucial application.\n\n\
                     Under AWS Lambda (or a local Lambda host: AWS_LAMBDA_RUNTIME_API is set) it \
                     serves invocations of its cloud threads. Otherwise it reads one postcard-encoded \
                     invocation from stdin (the `process` executor) and writes its outcome to stdout.\n\n\
                     Usage: {program} [--list]\n\n\
                     Options:\n  --list    print the cloud threads this binary can run\n  \
                     -h, --help  print this help"
                );
                return;
            }
            other => {
                eprintln!("error: unexpected argument `{other}` (see {program} --help)");
                std::process::exit(2);
            }
        }
    }
    if list {
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
}
