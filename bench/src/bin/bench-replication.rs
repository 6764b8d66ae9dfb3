//! `bench-replication`: persistent objects replicated on a three-node
//! cluster (etcd and node processes on loopback) against Redis with one
//! replica, in the same run.
//!
//! 1. Writes: a persistent `fetch_add` and a 1 KiB set with `--replicas` 1, 2
//!    and 3 (memory only: the copies on other nodes are the durability), and
//!    rf = 2 with a data directory (`--durability sync`: acknowledged once on
//!    the head's disk and in the replica's memory); Redis with one replica,
//!    with `WAIT 1 0` after each write and without. One caller (p50, p99)
//!    and many callers (ops/s).
//! 2. Workflows: the read-modify-write workflow of `bench-lambda`
//!    (`Counter::add` on a lambda object, 1 024 counters) with the same
//!    replication factors: a lambda object's application replicates whole
//!    with each workflow's writes (one caller: p50, p99; many: tx/s).
//! 3. Failover: a caller hammers a key whose head is then killed with
//!    SIGKILL; the longest gap between two of its successive calls (every
//!    call must succeed) is the time its calls failed or waited. Repeated,
//!    with a fresh node joining after each kill.
//!
//! Usage: `bench-replication [--ops N] [--callers C] [--seconds S] [--kills K] [--lease-ttl T]`

use clap::Parser;
use crucial::{Bytes, Client, Config};
use crucial_bench::cluster::{serve_node_if_asked, wait_for_members, Etcd, Node};
use crucial_bench::rmw::{self, LambdaRmw, Rmw};
use crucial_bench::stats::Latencies;
use crucial_bench::writes::{concurrent, sequential, Durable, RedisReplicated};
use crucial_bench::DurableCell;
use crucial_protocol::placement::Placement;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Sequential operations per one-caller row.
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Callers for the throughput rows.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Seconds per throughput row.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Heads killed in the failover measurement (0: skip it).
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// The nodes' `--lease-ttl` (seconds): bounds how soon a crash is seen.
    #[arg(long, default_value_t = 3)]
    lease_ttl: u32,
    /// The nodes' `--runtime` (multi-thread or current-thread).
    #[arg(long, default_value = "multi-thread")]
    runtime: String,
    /// Replication factors of the memory-only rows.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    replicas: Vec<u8>,
    /// Skip the Redis rows and the row with data directories.
    #[arg(long)]
    ours_only: bool,
}

/// Three nodes of one cluster with `--replicas rf`.
struct Cluster {
    nodes: Vec<Node>,
    client: Client,
    etcd: Etcd,
    name: String,
    flags: Vec<String>,
}

impl Cluster {
    fn start(rf: u8, args: &Args) -> Cluster {
        Cluster::start_in(rf, args, None)
    }

    /// [`Cluster::start`] with each node's data directory in `dir`
    /// (`--durability sync`).
    fn start_in(rf: u8, args: &Args, dir: Option<&std::path::Path>) -> Cluster {
        let (lease_ttl, runtime) = (args.lease_ttl, &args.runtime);
        let etcd = Etcd::start().expect("etcd (the nodes' membership)");
        let name = format!("rf{rf}");
        let mut flags = vec![
            "--replicas".to_string(),
            rf.to_string(),
            "--lease-ttl".to_string(),
            lease_ttl.to_string(),
        ];
        flags.extend(["--runtime".to_string(), runtime.to_string()]);
        let nodes: Vec<Node> = (0..3)
            .map(|i| {
                let mut args: Vec<String> = flags.clone();
                if let Some(dir) = dir {
                    let dir = dir.join(format!("n{i}")).to_string_lossy().into_owned();
                    args.extend([
                        "--data-dir".into(),
                        dir,
                        "--durability".into(),
                        "sync".into(),
                    ]);
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Node::start_with(&etcd, &name, 0, &args)
            })
            .collect();
        wait_for_members(&nodes, 3);
        let client = connect(&nodes);
        Cluster {
            nodes,
            client,
            etcd,
            name,
            flags,
        }
    }

    /// Starts one more node.
    fn add(&mut self) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let node = Node::start_with(&self.etcd, &self.name, 0, &flags);
        self.nodes.push(node);
    }

    fn connect(&self) -> Client {
        connect(&self.nodes)
    }
}

fn connect(nodes: &[Node]) -> Client {
    nodes
        .iter()
        .fold(Config::new(), |c, n| c.server(n.addr.clone()))
        .connect()
        .expect("connect")
}

struct Replicated<'a>(&'a Client);

impl Durable for Replicated<'_> {
    fn incr(&self, key: &str) {
        self.0
            .open::<DurableCell>(key)
            .fetch_add(1)
            .expect("fetch_add");
    }

    fn set(&self, key: &str, value: &Bytes) {
        self.0
            .open::<DurableCell>(key)
            .set(value.clone())
            .expect("set");
    }
}

/// One row of the writes table.
struct Row {
    name: String,
    incr: Latencies,
    set: Latencies,
    incr_per_s: f64,
    set_per_s: f64,
}

fn measure(name: &str, system: &dyn Durable, args: &Args) -> Row {
    let value = Bytes::from(vec![0x42u8; 1024]);
    let duration = Duration::from_secs_f64(args.seconds);
    let incr = |s: &dyn Durable| s.incr("counter");
    let set = |s: &dyn Durable| s.set("value", &value);
    let row = Row {
        name: name.to_string(),
        incr: sequential(system, args.ops, &incr),
        set: sequential(system, args.ops, &set),
        incr_per_s: concurrent(system, args.callers, duration, &incr).per_second(),
        set_per_s: concurrent(system, args.callers, duration, &set).per_second(),
    };
    println!(
        "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
        row.name,
        row.incr.p50(),
        row.incr.p99(),
        row.set.p50(),
        row.set.p99(),
        row.incr_per_s,
        row.set_per_s
    );
    row
}

/// The workflow rows of one cluster.
struct Workflows {
    /// One caller's latencies.
    one: Latencies,
    /// Committed transactions per second with `args.callers` callers.
    per_s: f64,
    /// Re-executions after conflicts, both runs.
    retries: u64,
}

/// `Counter::add` workflows on `client`'s cluster: one caller for the
/// latencies, then `args.callers`; the counters must add up (checked by
/// `rmw::run`).
fn measure_workflows(client: &Client, args: &Args) -> Workflows {
    const KEYS: usize = 1024;
    let system = LambdaRmw(client.clone());
    system.set_up(KEYS).expect("create the counters");
    let duration = Duration::from_secs_f64(args.seconds);
    let one = rmw::run(&system, KEYS, 1, duration, 1.0).expect("one caller");
    let many = rmw::run(&system, KEYS, args.callers, duration, 1.0).expect("many callers");
    Workflows {
        one: Latencies::new(one.latencies),
        per_s: many.per_second(),
        retries: one.retries + many.retries,
    }
}

/// Kills the head of a hammered key `kills` times; returns each kill's
/// longest gap between successive calls, and the calls made.
fn failover(args: &Args) -> (Vec<Duration>, u64) {
    let mut cluster = Cluster::start(2, args);
    let mut gaps = Vec::new();
    let mut calls = 0;
    for round in 0..args.kills {
        let client = cluster.connect();
        let view = client.servers();
        let placement = Placement::new(crucial_protocol::placement::View::new(1, view.clone()));
        let victim = round % cluster.nodes.len();
        let victim_addr = cluster.nodes[victim].addr.clone();
        let key = (0..)
            .map(|i| format!("failover/{round}/{i}"))
            .find(|k| placement.owner("crucial_bench::DurableCell", k) == victim_addr)
            .expect("a key on the victim");
        let stop = Arc::new(AtomicBool::new(false));
        let times = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let hammer = {
            let (client, key, stop, times) = (
                client.clone(),
                key.clone(),
                Arc::clone(&stop),
                Arc::clone(&times),
            );
            std::thread::spawn(move || {
                let cell = client.open::<DurableCell>(key);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n = cell
                        .fetch_add(1)
                        .expect("every call succeeds through the failover");
                    times.lock().unwrap().push(Instant::now());
                }
                n
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        let killed_at = Instant::now();
        cluster.nodes[victim].kill();
        // Until the hammer made 200 calls after the kill.
        loop {
            let after = times
                .lock()
                .unwrap()
                .iter()
                .filter(|t| **t > killed_at)
                .count();
            if after >= 200 {
                break;
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(60),
                "no failover in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        let made = hammer.join().expect("the hammer failed");
        let times = times.lock().unwrap();
        let gap = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        assert_eq!(
            made as usize,
            times.len(),
            "each acknowledged call applied once"
        );
        calls += times.len() as u64;
        println!(
            "# kill {}: longest gap {:.0} ms, {} calls, value {made}",
            round + 1,
            gap.as_secs_f64() * 1e3,
            times.len()
        );
        gaps.push(gap);
        drop(times);
        cluster.nodes.remove(victim);
        cluster.add();
        wait_for_members(&cluster.nodes, 3);
    }
    (gaps, calls)
}

fn main() {
    if serve_node_if_asked() {
        return;
    }
    let args = Args::parse();
    println!(
        "# replication: 3 nodes on loopback, {} sequential ops per one-caller row, {} callers for {:.1} s; {} cores; machine {}",
        args.ops,
        args.callers,
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if std::env::var_os("BENCH_BUSY").is_some() { "busy" } else { "idle otherwise" }
    );
    println!();
    println!("| system | incr p50 us | incr p99 us | set 1 KiB p50 us | set 1 KiB p99 us | incr ops/s, {0} callers | set ops/s, {0} callers |", args.callers);
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut workflows = Vec::new();
    for &rf in &args.replicas {
        let cluster = Cluster::start(rf, &args);
        let name = format!("crucial, 3 nodes, --replicas {rf} (memory)");
        rows.push(measure(&name, &Replicated(&cluster.client), &args));
        workflows.push((rf, measure_workflows(&cluster.client, &args)));
    }
    if !args.ours_only {
        let dir = crucial_bench::scratch_dir(None, "replication");
        let cluster = Cluster::start_in(2, &args, Some(&dir));
        let name = "crucial, 3 nodes, --replicas 2, --durability sync";
        rows.push(measure(name, &Replicated(&cluster.client), &args));
        drop(cluster);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let dir = crucial_bench::scratch_dir(None, "replication-redis");
    for wait in [true, false].into_iter().filter(|_| !args.ours_only) {
        match RedisReplicated::start(wait, &dir.join(if wait { "wait" } else { "no-wait" })) {
            Ok(redis) => {
                let name = if wait {
                    "redis + 1 replica, WAIT 1 0"
                } else {
                    "redis + 1 replica, no WAIT"
                };
                rows.push(measure(name, &redis, &args));
            }
            Err(e) => println!("# redis with a replica not measured: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let find = |needle: &str| rows.iter().find(|r| r.name.contains(needle));
    println!();
    if let (Some(one), Some(two)) = (find("--replicas 1 "), find("--replicas 2 (")) {
        println!(
            "# rf 2 vs rf 1: incr p50 ratio {:.2} (target <= 2), set p50 ratio {:.2}",
            two.incr.p50() / one.incr.p50(),
            two.set.p50() / one.set.p50()
        );
    }
    if let (Some(two), Some(redis)) = (find("--replicas 2 ("), find("WAIT 1")) {
        println!(
            "# rf 2 vs redis + WAIT 1: incr p50 ratio {:.2} (target <= 1), {} callers incr {:.2}x, set {:.2}x (target >= 1)",
            two.incr.p50() / redis.incr.p50(),
            args.callers,
            two.incr_per_s / redis.incr_per_s,
            two.set_per_s / redis.set_per_s
        );
    }
    println!();
    println!("# workflows: Counter::add (read-modify-write lambda object), 1024 counters, on the same clusters");
    println!();
    println!(
        "| replicas | rmw p50 us | rmw p99 us | rmw tx/s, {} callers | re-executions |",
        args.callers
    );
    println!("|---|---|---|---|---|");
    for (rf, w) in &workflows {
        println!(
            "| {rf} | {:.0} | {:.0} | {:.0} | {} |",
            w.one.p50(),
            w.one.p99(),
            w.per_s,
            w.retries
        );
    }
    let rf = |n: u8| workflows.iter().find(|(r, _)| *r == n).map(|(_, w)| w);
    if let (Some(one), Some(two)) = (rf(1), rf(2)) {
        println!();
        println!(
            "# workflows, rf 2 vs rf 1: p50 ratio {:.2}, {} callers throughput {:.2}x",
            two.one.p50() / one.one.p50(),
            args.callers,
            two.per_s / one.per_s
        );
    }
    if args.kills > 0 {
        println!();
        println!(
            "# failover: rf 2, 3 nodes, --lease-ttl {} s; {} kills of the head of a key one caller hammers",
            args.lease_ttl, args.kills
        );
        let (gaps, calls) = failover(&args);
        let gaps: Vec<Duration> = gaps;
        let latencies = Latencies::new(gaps);
        println!();
        println!("| kills | calls | failed | gap p50 ms | gap p99 (max) ms |");
        println!("|---|---|---|---|---|");
        println!(
            "| {} | {calls} | 0 | {:.0} | {:.0} |",
            args.kills,
            latencies.p50() / 1e3,
            latencies.p99() / 1e3
        );
    }
}
