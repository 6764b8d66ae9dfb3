//! `bench-spawn`: spawn + join overhead of an empty cloud thread on each
//! executor, next to a plain `std::thread::spawn` + `join`.
//!
//! This binary is also its own function binary: under the local Lambda host
//! (`AWS_LAMBDA_RUNTIME_API` set) its `main` serves the `noop` cloud thread.
//!
//! Usage: `bench-spawn [--spawns N]`; the `lambda` row needs `--features lambda`.

use crucial::{cloud_thread, Executor, Invocation};
use crucial_bench::stats::Latencies;
use std::sync::Arc;
use std::time::Instant;

/// The empty cloud thread.
#[cloud_thread]
fn noop(n: u64) -> u64 {
    n
}

fn measure(spawns: usize, mut once: impl FnMut(u64)) -> Latencies {
    for i in 0..spawns as u64 / 10 {
        once(i); // warm-up: processes started, connections open
    }
    let mut samples = Vec::with_capacity(spawns);
    for i in 0..spawns as u64 {
        let start = Instant::now();
        once(i);
        samples.push(start.elapsed());
    }
    Latencies::new(samples)
}

fn through(executor: Arc<dyn Executor>, servers: Vec<String>, spawns: usize) -> Latencies {
    measure(spawns, |i| {
        let invocation = Invocation {
            thread: noop::NAME.to_string(),
            args: crucial_protocol::codec::encode(&(i,)).expect("encode"),
            servers: servers.clone(),
            attempt: 1,
            token: None,
            tls: None,
        };
        let out = executor
            .start(invocation, None)
            .expect("start")
            .join()
            .expect("join");
        assert_eq!(
            crucial_protocol::codec::decode::<u64>(&out).expect("decode"),
            i
        );
    })
}

fn main() {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        crucial::lambda::run();
        return;
    }
    crucial_server::link();
    let spawns = std::env::args()
        .skip_while(|a| a != "--spawns")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let context = crucial::Context::global().expect("embedded context");
    let servers = context.client().servers();
    let me = std::env::current_exe().expect("own path");
    println!(
        "# spawn + join of an empty cloud thread, {spawns} sequential spawns after {} warm-up; {} cores",
        spawns / 10,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| executor | p50 (us) | p99 (us) | mean (us) | mean / std::thread |");
    println!("|---|---|---|---|---|");
    let std_threads = measure(spawns, |i| {
        assert_eq!(std::thread::spawn(move || i).join().expect("join"), i);
    });
    let mut rows = vec![("std::thread::spawn (peer)".to_string(), std_threads)];
    rows.push((
        "local (thread, through the encoding)".into(),
        through(Arc::new(crucial::LocalExecutor), servers.clone(), spawns),
    ));
    let process = crucial::ProcessExecutor::new(&me).expect("process executor");
    rows.push((
        "process (local Lambda host, warm)".into(),
        through(Arc::new(process), servers.clone(), spawns),
    ));
    #[cfg(feature = "lambda")]
    {
        let mut spec = crucial_lambda_host::FunctionSpec::new("noop", &me);
        spec.timeout = std::time::Duration::from_secs(30);
        let host = crucial_lambda_host::LambdaHost::start("127.0.0.1:0", vec![spec]).expect("host");
        std::env::set_var("AWS_ACCESS_KEY_ID", "local");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "local");
        let lambda = crucial::LambdaExecutor::new(
            "noop",
            "us-east-1",
            Some(format!("http://{}", host.addr)),
        )
        .expect("lambda executor");
        rows.push((
            "lambda (AWS SDK -> local Lambda host, warm)".into(),
            through(Arc::new(lambda), servers.clone(), spawns),
        ));
        std::mem::forget(host); // keep the environments until exit
    }
    let base = rows[0].1.mean();
    for (name, l) in &rows {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.1}x |",
            l.p50(),
            l.p99(),
            l.mean(),
            l.mean() / base
        );
    }
    // Cold start: the first invocation of a fresh host starts the process.
    let cold = crucial::ProcessExecutor::new(&me).expect("process executor");
    let start = Instant::now();
    let invocation = Invocation {
        thread: noop::NAME.to_string(),
        args: crucial_protocol::codec::encode(&(7u64,)).expect("encode"),
        servers,
        attempt: 1,
        token: None,
        tls: None,
    };
    cold.start(invocation, None)
        .expect("start")
        .join()
        .expect("join");
    println!();
    println!(
        "cold start (process executor, first invocation, new process): {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
}
