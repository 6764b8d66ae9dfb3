//! `bench-load`: a `redis-benchmark`-style load generator that drives a Crucial
//! node and Redis with the same workload in the same run and prints the ratio.
//!
//! One async runtime drives `-c` connections, each keeping `-P` requests in
//! flight, with an operation mix over a key space. The node and `redis-server`
//! are started as child processes on loopback. With `--busy`, every row is run
//! a second time while an unrelated process keeps one core busy. With
//! `--validate`, `redis-benchmark` runs the same `incr` rows, as a check that
//! this generator drives Redis as well as Redis's own tool does.
//!
//! Example: `bench-load -c 1,8,64,512 -P 1,16 --ops incr --seconds 3`

use clap::Parser;
use crucial_bench::load::crucial::CrucialProtocol;
use crucial_bench::load::redis::{RedisProtocol, METHOD_SCRIPT};
use crucial_bench::load::workload::{Keys, Mix, OpKind};
use crucial_bench::load::{self, Measured, Plan};
use crucial_bench::systems::{self, Crucial, Redis};
use std::time::Duration;

/// Drives a Crucial node and Redis with the same load and prints both.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Connections, as a comma-separated list (one row each).
    #[arg(
        short = 'c',
        long = "connections",
        value_delimiter = ',',
        default_value = "64"
    )]
    connections: Vec<usize>,
    /// Requests in flight per connection, as a comma-separated list.
    #[arg(
        short = 'P',
        long = "pipeline",
        value_delimiter = ',',
        default_value = "1"
    )]
    pipeline: Vec<usize>,
    /// Operation mix: `incr`, `get`, `set`, `method` (a user type's method /
    /// Lua), `sem` (a blocking release+acquire pair), with weights: `incr=3,get=1`.
    #[arg(long, default_value = "incr")]
    ops: String,
    /// Number of keys.
    #[arg(long, default_value_t = 1)]
    keys: u64,
    /// Zipf exponent of the key choice (0: uniform).
    #[arg(long, default_value_t = 0.0)]
    zipf: f64,
    /// Bytes of a `set` value.
    #[arg(long, default_value_t = 1024)]
    data: usize,
    /// Seconds measured per row.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Seconds of warm-up before each row.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Threads of the generator's runtime (1, like redis-benchmark).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// What to drive.
    #[arg(long, value_parser = ["both", "crucial", "redis"], default_value = "both")]
    target: String,
    /// The node's runtime flavour.
    #[arg(long, value_parser = ["multi-thread", "current-thread"], default_value = "multi-thread")]
    node_runtime: String,
    /// Also run every row with one core kept busy by an unrelated process.
    #[arg(long)]
    busy: bool,
    /// Also run `redis-benchmark` on the same rows (incr only).
    #[arg(long)]
    validate: bool,
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

fn main() {
    if crucial_bench::serve_if_asked() {
        return;
    }
    let args = Args::parse();
    let mix = Mix::parse(&args.ops).unwrap_or_else(|e| fail(e));
    let keys = Keys::new(args.keys, args.zipf);
    let want = |t: &str| args.target == "both" || args.target == t;
    let crucial = want("crucial").then(|| Crucial::start(&args.node_runtime));
    let redis = if want("redis") {
        match Redis::start() {
            Ok(redis) => Some(redis),
            Err(e) => {
                println!("# redis not measured: {e}");
                None
            }
        }
    } else {
        None
    };
    let script_sha = redis.as_ref().map(load_script).unwrap_or_default();
    if mix.kinds().any(|k| k == OpKind::Get) {
        preload(crucial.as_ref(), redis.as_ref(), &keys, args.data);
    }
    println!(
        "# bench-load: ops {mix}, {} key(s){}, {} B values, {:.1} s per row after {:.1} s warm-up, \
         generator on {} thread(s); node runtime {}; {} cores",
        keys.count(),
        if args.zipf > 0.0 { format!(" zipf {}", args.zipf) } else { String::new() },
        args.data,
        args.seconds,
        args.warmup,
        args.threads,
        args.node_runtime,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| condition | -c | -P | crucial ops/s | p50 us | p99 us | p999 us | redis ops/s | p50 us | p99 us | p999 us | ops ratio | p50 ratio |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let conditions: &[&str] = if args.busy {
        &["idle", "busy"]
    } else {
        &["idle"]
    };
    let mut validation = Vec::new();
    let mut cpu = Vec::new();
    for condition in conditions {
        let _busy = (*condition == "busy").then(crucial_bench::systems::busy_core);
        for &c in &args.connections {
            for &p in &args.pipeline {
                let plan = Plan {
                    connections: c.max(1),
                    pipeline: p.max(1),
                    mix: mix.clone(),
                    keys: keys.clone(),
                    warmup: Duration::from_secs_f64(args.warmup),
                    duration: Duration::from_secs_f64(args.seconds),
                    threads: args.threads,
                };
                let ours = crucial.as_ref().map(|node| {
                    load::run(&node.addr, Some(node.pid()), &plan, || {
                        CrucialProtocol::new(args.data)
                    })
                    .unwrap_or_else(|e| fail(format!("crucial -c {c} -P {p}: {e}")))
                });
                let theirs = redis.as_ref().map(|r| {
                    load::run(&r.addr, Some(r.pid()), &plan, || {
                        RedisProtocol::new(args.data, script_sha.clone())
                    })
                    .unwrap_or_else(|e| fail(format!("redis -c {c} -P {p}: {e}")))
                });
                print_row(condition, c, p, ours.as_ref(), theirs.as_ref());
                cpu.push((condition.to_string(), c, p, ours.clone(), theirs.clone()));
                if args.validate {
                    if let (Some(r), Some(theirs)) = (redis.as_ref(), theirs.as_ref()) {
                        if let Some(checked) = redis_benchmark(r, c, p, theirs, args.seconds) {
                            validation.push((
                                condition.to_string(),
                                c,
                                p,
                                theirs.per_second(),
                                checked,
                            ));
                        }
                    }
                }
            }
        }
    }
    print_cpu(&cpu);
    if !validation.is_empty() {
        println!();
        println!(
            "## redis-benchmark on the same rows (incr), against this generator's Redis figures"
        );
        println!();
        println!("| condition | -c | -P | bench-load redis ops/s | redis-benchmark ops/s | bench-load / redis-benchmark |");
        println!("|---|---|---|---|---|---|");
        for (condition, c, p, ours, theirs) in validation {
            println!(
                "| {condition} | {c} | {p} | {ours:.0} | {theirs:.0} | {:.2} |",
                ours / theirs
            );
        }
    }
    println!();
    println!(
        "# window semantics: each connection keeps -P requests in flight; latency is from a \
         request's write to its reply (queueing in the window included)"
    );
}

fn cell(m: Option<&Measured>) -> String {
    match m {
        Some(m) => format!(
            "{:.0} | {:.1} | {:.1} | {:.1}",
            m.per_second(),
            m.percentile(0.50),
            m.percentile(0.99),
            m.percentile(0.999)
        ),
        None => "- | - | - | -".into(),
    }
}

fn print_row(
    condition: &str,
    c: usize,
    p: usize,
    ours: Option<&Measured>,
    theirs: Option<&Measured>,
) {
    let (ops, p50) = match (ours, theirs) {
        (Some(a), Some(b)) => (
            format!("{:.2}", a.per_second() / b.per_second()),
            format!("{:.2}", a.percentile(0.5) / b.percentile(0.5)),
        ),
        _ => ("-".into(), "-".into()),
    };
    println!(
        "| {condition} | {c} | {p} | {} | {} | {ops} | {p50} |",
        cell(ours),
        cell(theirs)
    );
}

type Row = (String, usize, usize, Option<Measured>, Option<Measured>);

/// CPU per request of each server and of the generator driving it: on a
/// machine the generator shares, throughput is bounded by the sum.
fn print_cpu(rows: &[Row]) {
    println!();
    println!("## CPU per request (user + system, from /proc; the generator shares the machine)");
    println!();
    println!("| condition | -c | -P | node us/op | its generator us/op | redis-server us/op | its generator us/op | node / redis-server |");
    println!("|---|---|---|---|---|---|---|---|");
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for (condition, c, p, ours, theirs) in rows {
        let node = ours.as_ref().and_then(Measured::server_us_per_op);
        let redis = theirs.as_ref().and_then(Measured::server_us_per_op);
        let ratio = match (node, redis) {
            (Some(a), Some(b)) => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        println!(
            "| {condition} | {c} | {p} | {} | {} | {} | {} | {ratio} |",
            us(node),
            us(ours.as_ref().and_then(Measured::generator_us_per_op)),
            us(redis),
            us(theirs.as_ref().and_then(Measured::generator_us_per_op)),
        );
    }
}

/// Loads the `method` operation's Lua script into Redis; returns its SHA-1.
fn load_script(redis: &Redis) -> String {
    let mut con = redis.connect();
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(METHOD_SCRIPT)
        .query(&mut con)
        .unwrap_or_else(|e| fail(format!("SCRIPT LOAD: {e}")))
}

/// Gives every key a value of `data` bytes, so `get` reads real values.
fn preload(crucial: Option<&Crucial>, redis: Option<&Redis>, keys: &Keys, data: usize) {
    let value = vec![0x5a; data];
    if let Some(node) = crucial {
        for key in 0..keys.count() {
            node.client
                .open::<crucial::AtomicBytes>(format!("load/{key}"))
                .set(crucial::Bytes::from(value.clone()))
                .unwrap_or_else(|e| fail(format!("preload: {e}")));
        }
    }
    if let Some(redis) = redis {
        let mut con = redis.connect();
        let mut pipe = redis::pipe();
        for key in 0..keys.count() {
            pipe.cmd("SET")
                .arg(format!("load:{key}"))
                .arg(&value)
                .ignore();
        }
        pipe.query::<()>(&mut con)
            .unwrap_or_else(|e| fail(format!("preload: {e}")));
    }
}

/// `redis-benchmark -t incr` on the same connections and pipeline depth, for
/// about as long as the row: its requests per second.
fn redis_benchmark(
    redis: &Redis,
    c: usize,
    p: usize,
    ours: &Measured,
    seconds: f64,
) -> Option<f64> {
    let requests = ((ours.per_second() * seconds) as u64).max(10_000);
    systems::redis_benchmark_incr(&redis.addr, c, p, requests).map(|r| r.per_second)
}
