//! `bench-lambda`: lambda objects against the two designs LambdaStore argues
//! with, in one run — CloudForum's mix and a read-modify-write transaction
//! on (1) lambda objects (functions next to the data, on a node process),
//! (2) Redis driven by client-side `WATCH`/`MULTI`/`EXEC` transactions, and
//! (3) PostgreSQL with the operations as `SERIALIZABLE` SQL functions — at
//! several client counts, uniform and skewed. Every system is a separate
//! process on loopback; clients are threads of this process.

use clap::Parser;
use crucial_bench::forum::{postgres::PostgresForum, redis::RedisForum};
use crucial_bench::postgres::Postgres;
use crucial_bench::procfs;
use crucial_bench::rmw::{self, LambdaRmw, PostgresRmw, RedisRmw, Rmw};
use crucial_bench::systems::{Crucial, Redis};
use forum::load::{self, Backend, Load};
use forum::LambdaForum;
use std::time::Duration;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    about = "Lambda objects vs Redis (WATCH/MULTI/EXEC) vs PostgreSQL (SERIALIZABLE) on CloudForum's mix and a read-modify-write"
)]
struct Args {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Client counts, comma-separated.
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    clients: Vec<usize>,
    /// Key skews, comma-separated (1: uniform; 4: hot objects).
    #[arg(long, default_value = "1,4", value_delimiter = ',')]
    skews: Vec<f64>,
    /// Systems, comma-separated: lambda, redis, postgres.
    #[arg(long, default_value = "lambda,redis,postgres", value_delimiter = ',')]
    systems: Vec<String>,
    /// Forum: accounts, communities and threads created first.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Forum: communities.
    #[arg(long, default_value_t = 20)]
    communities: usize,
    /// Forum: first threads.
    #[arg(long, default_value_t = 1000)]
    threads: usize,
    /// Read-modify-write: counters.
    #[arg(long, default_value_t = 1000)]
    counters: usize,
    /// Also run every system durably (node --data-dir with sync, Redis
    /// appendfsync always, PostgreSQL synchronous_commit on) at the largest
    /// client count.
    #[arg(long)]
    durable: bool,
}

/// One measured cell: committed tx/s, p50 and p99 (µs), re-executions per
/// write, CPU per committed transaction of the server and of the clients
/// (µs), failures.
#[derive(Debug, Clone, Copy)]
struct Cell {
    per_second: f64,
    p50: f64,
    p99: f64,
    retries: f64,
    server_cpu: f64,
    client_cpu: f64,
    failures: u64,
}

impl Cell {
    fn show(&self) -> String {
        format!(
            "{:.0} | {:.0} | {:.0} | {:.3} | {:.0} | {:.0}{}",
            self.per_second,
            self.p50,
            self.p99,
            self.retries,
            self.server_cpu,
            self.client_cpu,
            if self.failures > 0 {
                format!(" ({} failed)", self.failures)
            } else {
                String::new()
            }
        )
    }
}

/// The runs of one system: (workload, clients, skew) -> cell.
type Runs = Vec<((&'static str, usize, u64), Cell)>;

fn skew_key(skew: f64) -> u64 {
    (skew * 1000.0) as u64
}

/// CPU time of the server (process tree `server`) and of this process.
#[derive(Clone, Copy)]
struct Cpu(Duration, Duration);

impl Cpu {
    fn now(server: u32) -> Cpu {
        Cpu(
            procfs::tree_cpu(server).unwrap_or_default(),
            procfs::process_cpu(std::process::id()).unwrap_or_default(),
        )
    }

    /// Microseconds of server and client CPU per transaction since `self`.
    fn per_tx(self, server: u32, txs: usize) -> (f64, f64) {
        let now = Cpu::now(server);
        let per = |a: Duration, b: Duration| {
            (b.saturating_sub(a)).as_secs_f64() * 1e6 / txs.max(1) as f64
        };
        (per(self.0, now.0), per(self.1, now.1))
    }
}

fn forum_runs(
    backend: &dyn Backend,
    args: &Args,
    clients: &[usize],
    server: u32,
) -> Result<Runs, String> {
    let base = Load {
        clients: clients.iter().copied().max().unwrap_or(8).min(16),
        duration: Duration::from_secs_f64(args.seconds),
        accounts: args.accounts,
        communities: args.communities,
        threads: args.threads,
        ..Load::default()
    };
    let mut keys = load::populate(backend, &base)?;
    let mut runs = Vec::new();
    for &skew in &args.skews {
        for &c in clients {
            let load = Load {
                clients: c,
                skew,
                ..base.clone()
            };
            let cpu = Cpu::now(server);
            let report = load::run(backend, &load, keys)?;
            let (server_cpu, client_cpu) = cpu.per_tx(server, report.committed());
            let all = report.all();
            let failures = report.failures.iter().map(|(_, n)| n).sum();
            runs.push((
                ("forum", c, skew_key(skew)),
                Cell {
                    per_second: report.per_second(),
                    p50: load::percentile(&all, 0.5),
                    p99: load::percentile(&all, 0.99),
                    retries: report.retry_rate(),
                    server_cpu,
                    client_cpu,
                    failures,
                },
            ));
            keys = report.keys;
        }
    }
    Ok(runs)
}

fn rmw_runs(system: &dyn Rmw, args: &Args, clients: &[usize], server: u32) -> Result<Runs, String> {
    system.set_up(args.counters)?;
    let mut runs = Vec::new();
    for &skew in &args.skews {
        for &c in clients {
            let cpu = Cpu::now(server);
            let m = rmw::run(
                system,
                args.counters,
                c,
                Duration::from_secs_f64(args.seconds),
                skew,
            )?;
            let (server_cpu, client_cpu) = cpu.per_tx(server, m.latencies.len());
            runs.push((
                ("rmw", c, skew_key(skew)),
                Cell {
                    per_second: m.per_second(),
                    p50: load::percentile(&m.latencies, 0.5),
                    p99: load::percentile(&m.latencies, 0.99),
                    retries: m.retries as f64 / m.latencies.len().max(1) as f64,
                    server_cpu,
                    client_cpu,
                    failures: m.failures,
                },
            ));
        }
    }
    Ok(runs)
}

/// Every run of `system` (`durable`: its durable configuration).
fn measure(system: &str, args: &Args, clients: &[usize], durable: bool) -> Result<Runs, String> {
    let scratch = std::env::temp_dir().join(format!("crucial-bench-lambda-{}", std::process::id()));
    match system {
        "lambda" => {
            let dir = scratch.join("node");
            let _ = std::fs::remove_dir_all(&dir);
            let env: Vec<(&str, &str)> = if durable {
                vec![
                    ("CRUCIAL_DATA_DIR", dir.to_str().expect("utf-8")),
                    ("CRUCIAL_DURABILITY", "sync"),
                ]
            } else {
                vec![]
            };
            let node = Crucial::start_with_env("multi-thread", &env);
            let pid = node.pid();
            let mut runs = forum_runs(&LambdaForum::new(node.client.clone()), args, clients, pid)?;
            runs.extend(rmw_runs(
                &LambdaRmw(node.client.clone()),
                args,
                clients,
                pid,
            )?);
            drop(node);
            let _ = std::fs::remove_dir_all(&scratch);
            Ok(runs)
        }
        "redis" => {
            let dir = scratch.join("redis");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let extra: Vec<&str> = if durable {
                vec![
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--dir",
                    dir.to_str().expect("utf-8"),
                ]
            } else {
                vec![]
            };
            let server = Redis::start_with(&extra)?;
            let url = format!("redis://{}/", server.addr);
            let pid = server.pid();
            let mut runs = forum_runs(&RedisForum::new(&url), args, clients, pid)?;
            runs.extend(rmw_runs(&RedisRmw::new(&url), args, clients, pid)?);
            drop(server);
            let _ = std::fs::remove_dir_all(&scratch);
            Ok(runs)
        }
        "postgres" => {
            let server = Postgres::start(durable)?;
            let pid = server.pid().ok_or("no postmaster.pid")?;
            let mut runs = forum_runs(&PostgresForum::new(&server)?, args, clients, pid)?;
            runs.extend(rmw_runs(&PostgresRmw::new(&server)?, args, clients, pid)?);
            Ok(runs)
        }
        other => Err(format!(
            "unknown system `{other}`: lambda, redis or postgres"
        )),
    }
}

fn label(system: &str, durable: bool) -> String {
    match (system, durable) {
        ("lambda", false) => "lambda objects (node in memory)".into(),
        ("lambda", true) => "lambda objects (--data-dir, sync)".into(),
        ("redis", false) => "redis WATCH/MULTI/EXEC (no persistence)".into(),
        ("redis", true) => "redis WATCH/MULTI/EXEC (appendfsync always)".into(),
        ("postgres", false) => "postgresql SERIALIZABLE (synchronous_commit off)".into(),
        ("postgres", true) => "postgresql SERIALIZABLE (synchronous_commit on)".into(),
        (other, _) => other.into(),
    }
}

fn table(title: &str, measured: &[(String, String, Runs)], args: &Args, clients: &[usize]) {
    for workload in ["forum", "rmw"] {
        println!();
        println!(
            "## {title}: {}",
            if workload == "forum" {
                "CloudForum mix (60 % thread pages, 25 % listings, 12 % comments, 3 % new threads)"
            } else {
                "read-modify-write of one counter per transaction"
            }
        );
        println!();
        println!("| system | clients | skew | committed tx/s | p50 us | p99 us | re-executions per write | server CPU us/tx | client CPU us/tx |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for &skew in &args.skews {
            for &c in clients {
                for (_, name, runs) in measured {
                    if let Some((_, cell)) = runs
                        .iter()
                        .find(|(k, _)| *k == (workload, c, skew_key(skew)))
                    {
                        println!("| {name} | {c} | {skew} | {} |", cell.show());
                    }
                }
            }
        }
        // The targets: lambda objects vs each peer at the largest client count.
        let top = clients.iter().copied().max().unwrap_or(0);
        let cell = |system: &str, skew: f64| {
            measured
                .iter()
                .find(|(s, _, _)| s == system)
                .and_then(|(_, _, runs)| {
                    runs.iter()
                        .find(|(k, _)| *k == (workload, top, skew_key(skew)))
                })
                .map(|(_, c)| *c)
        };
        for &skew in &args.skews {
            if let Some(ours) = cell("lambda", skew) {
                for peer in ["redis", "postgres"] {
                    if let Some(theirs) = cell(peer, skew) {
                        println!(
                            "# {workload}, {top} clients, skew {skew}: lambda / {peer} = {:.2}x tx/s (target >= 3), p50 {:.0} vs {:.0} us (target: below)",
                            ours.per_second / theirs.per_second,
                            ours.p50,
                            theirs.p50
                        );
                    }
                }
            }
        }
    }
}

fn main() {
    if crucial_bench::serve_if_asked() {
        return;
    }
    forum::link();
    let args = Args::parse();
    let clients = args.clients.clone();
    println!(
        "# bench-lambda: {:.1} s per run; {} cores; clients are threads of this process, every system a process on loopback",
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "# forum: {} accounts, {} communities, {} first threads; rmw: {} counters",
        args.accounts, args.communities, args.threads, args.counters
    );
    let mut measured = Vec::new();
    for system in &args.systems {
        match measure(system, &args, &clients, false) {
            Ok(runs) => measured.push((system.clone(), label(system, false), runs)),
            Err(e) => println!("# {system}: not measured: {e}"),
        }
    }
    table("in memory", &measured, &args, &clients);
    let lambda_top = measured
        .iter()
        .find(|(s, _, _)| s == "lambda")
        .and_then(|(_, _, runs)| {
            let top = clients.iter().copied().max().unwrap_or(0);
            runs.iter()
                .filter(|((w, c, _), _)| *w == "forum" && *c == top)
                .map(|(_, cell)| cell.per_second)
                .reduce(f64::max)
        });
    if let Some(ours) = lambda_top {
        println!();
        println!(
            "# per node: {ours:.0} committed forum tx/s on this 2-core machine (node and clients sharing it); \
             LambdaStore reports 600k tx/s on 36 machines, {:.0} per machine",
            600_000.0 / 36.0
        );
    }
    if args.durable {
        let top = vec![clients.iter().copied().max().unwrap_or(64)];
        let mut durable = Vec::new();
        for system in &args.systems {
            match measure(system, &args, &top, true) {
                Ok(runs) => durable.push((system.clone(), label(system, true), runs)),
                Err(e) => println!("# {system} (durable): not measured: {e}"),
            }
        }
        table("durable", &durable, &args, &top);
    }
}
