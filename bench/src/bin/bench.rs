//! `bench`: latency and throughput of Crucial shared objects against Redis, in one run.
//!
//! Starts the Crucial node as a separate process (this binary re-executed with
//! `--serve`) and `redis-server` on a free loopback port, then measures:
//! sequential `AtomicI64::fetch_add` vs `INCR`, 1 KiB `AtomicBytes` set/get vs
//! `SET`/`GET` (one caller: p50, p99, mean), and throughput with many concurrent
//! callers (ours: one shared connection per process; Redis: one connection per
//! caller, no pipelining). Prints a table with our/Redis ratios.
//!
//! With `--sweep 1,4,16,64` it also measures `incr` throughput at each number
//! of callers (blocking threads, async tasks, Redis), for a scaling table.
//!
//! With `--clients 8,64` it measures separate clients (one connection and one
//! caller each), with and without the client's spin, against Redis.
//!
//! With `--busy` everything runs while an unrelated process keeps one core
//! busy (what a node next to cloud threads sees): on these VMs an idle core
//! takes tens of microseconds to wake, so latency depends on the condition.
//!
//! It also counts the context switches per sequential call in the client and
//! the server process, the wake-ups a round trip pays.
//!
//! Usage: `bench --help`.

use clap::Parser;
use crucial_bench::procfs::{context_switches, own_context_switches};
use crucial_bench::stats::{Latencies, Throughput};
use crucial_bench::systems::{self, Crucial, Floor, Redis, System};
use std::time::Duration;

/// Latency and throughput of Crucial shared objects against Redis, in one run.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Options {
    /// Sequential operations per latency row.
    #[arg(long, default_value_t = 20_000)]
    ops: usize,
    /// Concurrent callers for the throughput rows.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Seconds per throughput trial.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Trials per throughput row (the median is printed).
    #[arg(long, default_value_t = 3)]
    trials: usize,
    /// The node's tokio runtime.
    #[arg(long, value_parser = ["multi-thread", "current-thread"], default_value = "multi-thread")]
    runtime: String,
    /// Numbers of callers for the scaling table, comma-separated (e.g. 1,4,16,64).
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// Numbers of separate clients for the co-located clients table (e.g. 8,64).
    #[arg(long, value_delimiter = ',')]
    clients: Vec<usize>,
    /// Keep one core busy with an unrelated process during the whole run.
    #[arg(long)]
    busy: bool,
}

fn main() {
    if crucial_bench::serve_if_asked() {
        return;
    }
    let options = Options::parse();
    let duration = Duration::from_secs_f64(options.seconds);
    let _busy = options.busy.then(systems::busy_core);
    println!(
        "# crucial vs redis, {} sequential ops per row, {} callers for {:.1} s (median of {} trials); {} cores; {}",
        options.ops,
        options.callers,
        options.seconds,
        options.trials,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if options.busy {
            "one core kept busy by an unrelated process"
        } else {
            "machine otherwise idle"
        }
    );

    let crucial = Crucial::start(&options.runtime);
    let redis = Redis::start();
    match &redis {
        Ok(_) => {}
        Err(e) => println!("# redis not measured: {e}"),
    }
    let mut systems: Vec<&dyn System> = vec![&crucial];
    if let Ok(redis) = &redis {
        systems.push(redis);
    }

    let payload = vec![0xabu8; 1024];
    let mut rows: Vec<(String, Vec<Latencies>)> = Vec::new();
    let mut switches = Vec::new();
    for (label, op) in [
        ("incr (fetch_add / INCR)", systems::Op::Incr),
        ("set 1 KiB", systems::Op::Set),
        ("get 1 KiB", systems::Op::Get),
    ] {
        let results = systems
            .iter()
            .map(|s| {
                let before = (own_context_switches(), context_switches(s.server_pid()));
                let latencies = s.sequential(op, options.ops, &payload);
                let after = (own_context_switches(), context_switches(s.server_pid()));
                if op == systems::Op::Incr {
                    let per_call = |b: Option<u64>, a: Option<u64>| {
                        Some(a?.saturating_sub(b?) as f64 / options.ops as f64)
                    };
                    switches.push((
                        s.name().to_string(),
                        per_call(before.0, after.0),
                        per_call(before.1, after.1),
                    ));
                }
                latencies
            })
            .collect();
        rows.push((label.to_string(), results));
    }
    let (request_bytes, reply_bytes) = systems::incr_frame_sizes();
    let floor = Floor::start(request_bytes, reply_bytes).sequential(options.ops);
    let redis_benchmark = redis
        .as_ref()
        .ok()
        .and_then(|r| systems::redis_benchmark_incr(&r.addr, 1, 1, options.ops as u64));
    let mut throughput: Vec<(String, Vec<Throughput>)> = Vec::new();
    for (label, op) in [("incr", systems::Op::Incr), ("get 1 KiB", systems::Op::Get)] {
        let results = systems
            .iter()
            .map(|s| {
                Throughput::median(
                    (0..options.trials)
                        .map(|_| s.concurrent(op, options.callers, duration, &payload))
                        .collect(),
                )
            })
            .collect();
        throughput.push((label.to_string(), results));
    }

    let mut async_rows = Vec::new();
    for (label, op) in [("incr", systems::Op::Incr), ("get 1 KiB", systems::Op::Get)] {
        let trials: Vec<_> = (0..options.trials)
            .filter_map(|_| crucial.concurrent_async(op, options.callers, duration))
            .collect();
        if !trials.is_empty() {
            async_rows.push((label, Throughput::median(trials)));
        }
    }

    let names: Vec<&str> = systems.iter().map(|s| s.name()).collect();
    println!();
    println!("## Sequential latency, one caller (microseconds)");
    println!();
    print!("| operation |");
    for n in &names {
        print!(" {n} p50 | {n} p99 | {n} mean |");
    }
    if names.len() > 1 {
        print!(" p50 ratio (ours/redis) | mean ratio |");
    }
    println!();
    print!("|---|");
    for _ in &names {
        print!("---|---|---|");
    }
    if names.len() > 1 {
        print!("---|---|");
    }
    println!();
    for (label, results) in &rows {
        print!("| {label} |");
        for r in results {
            print!(" {:.1} | {:.1} | {:.1} |", r.p50(), r.p99(), r.mean());
        }
        if results.len() > 1 {
            print!(
                " {:.2} | {:.2} |",
                results[0].p50() / results[1].p50(),
                results[0].mean() / results[1].mean()
            );
        }
        println!();
    }
    println!();
    println!(
        "## The floor: a blocking ping-pong over loopback, {request_bytes}-byte request, \
         {reply_bytes}-byte reply (incr's frames)"
    );
    println!();
    println!(
        "| floor p50 | floor p99 | crucial incr p50 | crucial / floor | redis-benchmark -c 1 p50 | crucial / redis-benchmark |"
    );
    println!("|---|---|---|---|---|---|");
    let ours = rows[0].1[0].p50();
    let (theirs, ratio) = match redis_benchmark {
        Some(r) => (format!("{:.1}", r.p50), format!("{:.2}", ours / r.p50)),
        None => ("-".into(), "-".into()),
    };
    println!(
        "| {:.1} | {:.1} | {ours:.1} | {:.2} | {theirs} | {ratio} |",
        floor.p50(),
        floor.p99(),
        ours / floor.p50()
    );
    println!();
    println!(
        "## Context switches per sequential incr (all threads, from /proc: what `perf stat -e context-switches` counts)"
    );
    println!();
    println!("| system | client process | server process |");
    println!("|---|---|---|");
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for (name, client, server) in &switches {
        println!("| {name} | {} | {} |", show(*client), show(*server));
    }
    println!();
    println!(
        "## Throughput, {} concurrent callers (operations per second)",
        options.callers
    );
    println!();
    print!("| operation |");
    for n in &names {
        print!(" {n} |");
    }
    if names.len() > 1 {
        print!(" ratio (ours/redis) |");
    }
    println!();
    print!("|---|");
    for _ in &names {
        print!("---|");
    }
    if names.len() > 1 {
        print!("---|");
    }
    println!();
    for (label, results) in &throughput {
        print!("| {label} |");
        for r in results {
            print!(" {:.0} |", r.per_second());
        }
        if results.len() > 1 {
            print!(
                " {:.2} |",
                results[0].per_second() / results[1].per_second()
            );
        }
        println!();
    }
    println!();
    println!(
        "## Throughput, {} async tasks on one tokio worker (operations per second)",
        options.callers
    );
    println!();
    println!("| operation | crucial (async) | redis (threads) | ratio (ours/redis) |");
    println!("|---|---|---|---|");
    for (i, (label, t)) in async_rows.iter().enumerate() {
        let redis = throughput[i].1.get(1).map(|r| r.per_second());
        println!(
            "| {label} | {:.0} | {} | {} |",
            t.per_second(),
            redis.map_or("-".into(), |r| format!("{r:.0}")),
            redis.map_or("-".into(), |r| format!("{:.2}", t.per_second() / r)),
        );
    }
    if !options.sweep.is_empty() {
        print_sweep(&options, &crucial, redis.as_ref().ok(), duration);
    }
    if !options.clients.is_empty() {
        print_clients(&options, &crucial, redis.as_ref().ok(), duration);
    }
    println!();
    println!(
        "# crucial node: separate process, runtime {}, one connection shared by all callers; \
         redis: one connection per caller, no pipelining",
        options.runtime
    );
}

/// Operations per second of the median of `trials` runs (`None` if none ran).
fn median_per_second(trials: usize, run: &dyn Fn() -> Option<Throughput>) -> Option<f64> {
    let trials: Vec<_> = (0..trials).filter_map(|_| run()).collect();
    (!trials.is_empty()).then(|| Throughput::median(trials).per_second())
}

/// A table cell: whole operations per second, or `-`.
fn cell(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.0}"))
}

/// A table cell: `a / b`, or `-`.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "-".to_string(),
    }
}

/// Separate clients, each with its own connection and one caller (the real
/// Crucial case: many Lambdas): the default client, the client without spin,
/// and Redis with a connection per caller.
fn print_clients(options: &Options, crucial: &Crucial, redis: Option<&Redis>, duration: Duration) {
    let median = |run: &dyn Fn() -> Option<Throughput>| median_per_second(options.trials, run);
    println!();
    println!(
        "## Separate clients, one connection and one caller each: incr (operations per second)"
    );
    println!();
    println!("| clients | crucial default | crucial spin 0 | redis | default / spin 0 | default / redis |");
    println!("|---|---|---|---|---|---|");
    for &clients in &options.clients {
        let default = median(&|| Some(crucial.separate_clients(clients, duration, None)));
        let no_spin =
            median(&|| Some(crucial.separate_clients(clients, duration, Some(Duration::ZERO))));
        let theirs = redis.and_then(|r| {
            median(&|| Some(r.concurrent(systems::Op::Incr, clients, duration, &[])))
        });
        println!(
            "| {clients} | {} | {} | {} | {} | {} |",
            cell(default),
            cell(no_spin),
            cell(theirs),
            ratio(default, no_spin),
            ratio(default, theirs),
        );
    }
}

/// `incr` throughput against the number of callers: blocking threads and async
/// tasks on Crucial, threads with a connection each on Redis.
fn print_sweep(options: &Options, crucial: &Crucial, redis: Option<&Redis>, duration: Duration) {
    let payload = [];
    let median = |run: &dyn Fn() -> Option<Throughput>| median_per_second(options.trials, run);
    println!();
    println!("## incr throughput against callers (operations per second)");
    println!();
    println!(
        "| callers | crucial threads | crucial async | redis threads | threads ratio | async ratio | \
         crucial threads: switches per call, client / node | redis: client / server |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &callers in &options.sweep {
        let op = systems::Op::Incr;
        let ours = Switches::default();
        let threads = median(&|| {
            ours.count(crucial.server_pid(), || {
                crucial.concurrent(op, callers, duration, &payload)
            })
        });
        let tasks = median(&|| crucial.concurrent_async(op, callers, duration));
        let redis_switches = Switches::default();
        let theirs = redis.and_then(|r| {
            median(&|| {
                redis_switches.count(r.server_pid(), || {
                    r.concurrent(op, callers, duration, &payload)
                })
            })
        });
        println!(
            "| {callers} | {} | {} | {} | {} | {} | {} | {} |",
            cell(threads),
            cell(tasks),
            cell(theirs),
            ratio(threads, theirs),
            ratio(tasks, theirs),
            ours.per_call(),
            redis_switches.per_call(),
        );
    }
}

/// Context switches of this process and a server over the runs counted.
#[derive(Default)]
struct Switches(std::cell::Cell<Option<(u64, u64, u64)>>);

impl Switches {
    /// Runs `run`, adding its operations and both processes' switches.
    fn count(&self, server: u32, run: impl FnOnce() -> Throughput) -> Option<Throughput> {
        let before = (own_context_switches(), context_switches(server));
        let measured = run();
        if let (Some(c0), Some(s0), Some(c1), Some(s1)) = (
            before.0,
            before.1,
            own_context_switches(),
            context_switches(server),
        ) {
            let (ops, client, node) = self.0.get().unwrap_or_default();
            let (dc, ds) = (c1.saturating_sub(c0), s1.saturating_sub(s0));
            self.0
                .set(Some((ops + measured.ops, client + dc, node + ds)));
        }
        Some(measured)
    }

    /// `client / server` switches per call, or `-`.
    fn per_call(&self) -> String {
        match self.0.get() {
            Some((ops, client, server)) if ops > 0 => format!(
                "{:.2} / {:.2}",
                client as f64 / ops as f64,
                server as f64 / ops as f64
            ),
            _ => "-".into(),
        }
    }
}
