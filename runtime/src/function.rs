//! The function side: what a function binary's `main` runs.
//!
//! Today a function binary is a *process worker*: it reads one postcard-encoded
//! [`Invocation`] on standard input, connects to the invocation's servers, runs
//! the named cloud thread through the registry and writes a postcard
//! `Result<Vec<u8>, String>` on standard output. The AWS Lambda entrypoint
//! (`lambda_runtime`) wraps the same [`handle`] function.

use crate::client::Config;
use crate::registry::registry;
use crate::thread::{run_registered, Invocation};
use crate::{codec, Client};
use std::io::{Read, Write};

/// Runs one invocation in this process and returns the encoded output or a message.
/// Installs a global client on the invocation's servers if none is installed yet.
pub fn handle(invocation: &Invocation) -> Result<Vec<u8>, String> {
    if !invocation.servers.is_empty() {
        let mut config = Config::from_env();
        if config.servers().is_empty() {
            for server in &invocation.servers {
                config = config.server(server.clone());
            }
        }
        // Ignore "already installed": a warm worker reuses its client.
        if let Ok(client) = config.connect() {
            let _ = client.install();
        }
    }
    run_registered(&invocation.thread, &invocation.args)
}

/// `main` of a function binary. `--list` prints the registered cloud threads;
/// otherwise one invocation is read from stdin and its outcome written to stdout.
pub fn main() {
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
