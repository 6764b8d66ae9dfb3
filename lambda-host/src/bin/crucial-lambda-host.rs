//! `crucial-lambda-host`: serve function binaries with Lambda's Invoke and Runtime APIs.
//!
//! `crucial-lambda-host --listen 127.0.0.1:9001 --function pi=target/release/pi-function --timeout 30 --concurrency 8`

use clap::Parser;
use crucial_lambda_host::{FunctionSpec, LambdaHost};
use std::time::Duration;

/// A local AWS Lambda host for function binaries.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address of the Invoke API.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: String,
    /// A function, as NAME=PATH-TO-BINARY (repeatable).
    #[arg(long = "function", required = true)]
    functions: Vec<String>,
    /// Invocation time limit, in seconds.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Execution environments per function.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Memory size reported to the function, in MB.
    #[arg(long, default_value_t = 128)]
    memory: u32,
    /// Take invocations from anyone who reaches --listen. Without it the
    /// host takes them from processes of its own user on this machine
    /// only, and refuses to listen on an address other than loopback.
    #[arg(long)]
    insecure: bool,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CRUCIAL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut functions = Vec::new();
    for f in &args.functions {
        let Some((name, path)) = f.split_once('=') else {
            eprintln!("error: --function takes NAME=PATH, got {f}");
            std::process::exit(2);
        };
        let mut spec = FunctionSpec::new(name, path);
        spec.timeout = Duration::from_secs_f64(args.timeout);
        spec.concurrency = args.concurrency;
        spec.memory_mb = args.memory;
        functions.push(spec);
    }
    let loopback = args
        .listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|addr| addr.ip().is_loopback());
    if !loopback && !args.insecure {
        eprintln!(
            "error: refusing to serve the Invoke API on {}: anyone who reaches it could run \
             the functions as the applications that invoke them. Keep it on loopback (it then \
             takes processes of this user only), or give --insecure on a trusted network",
            args.listen
        );
        std::process::exit(2);
    }
    let access = if args.insecure {
        crucial_lambda_host::Access::Anyone
    } else {
        crucial_lambda_host::Access::OwnUser
    };
    match LambdaHost::start_with(&args.listen, functions, access) {
        Ok(host) => {
            println!("crucial-lambda-host listening on {}", host.addr);
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
