//! `bench-durable`: persistent objects on a node with a data directory against
//! Redis with an append-only file, in the same run and on the same disk.
//!
//! Six systems: our node with `--durability sync` (a call is acknowledged
//! after an fsync shared by every call that finished meanwhile) and with
//! `interval=1000`, Redis with `appendfsync always` and with `everysec`, and
//! Redis with one replica, with and without `WAIT 1 0` after each write (the
//! peer of replication, which is not built yet). Rows: a
//! persistent `fetch_add` and a 1 KiB set, one caller (p50, p99) and many
//! callers (ops/s; ours: threads sharing the client's connection, Redis: a
//! connection per caller). Then the time a node takes to recover 100k
//! persistent objects after `kill -9`. Then what a call writes: on a counter,
//! a 20 KB centroid aggregate and a map of 100k entries, with the call log on
//! (a small call on a large object is appended to its log) and off (every
//! call rewrites the state): latency, bytes reaching the disk per call, and
//! the restart after `kill -9` until the object answers.
//!
//! Example: `bench-durable --dir /var/tmp`.

use clap::Parser;
use crucial::Bytes;
use crucial_bench::stats::Latencies;
use crucial_bench::systems::{read_addr, Crucial, Redis};
use crucial_bench::writes::{concurrent, sequential, Durable, RedisAof, RedisReplicated};
use crucial_bench::{BigMap, Centroids, DurableCell, DIMENSIONS};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Persistent objects against Redis with an append-only file.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the data directories and append-only files go (its disk is measured).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Sequential operations per one-caller row.
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Callers for the throughput rows.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Seconds per throughput row.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Persistent objects for the recovery row.
    #[arg(long, default_value_t = 100_000)]
    objects: usize,
    /// Entries of the large map in the "what a call writes" table.
    #[arg(long, default_value_t = 100_000)]
    map_entries: u64,
    /// Sequential calls per row of the "what a call writes" table.
    #[arg(long, default_value_t = 500)]
    record_ops: usize,
    /// Puts on the large map before the worst-case restart (0: skip it). The
    /// default stays just under the ~65k logged puts after which the map's
    /// ~600 KB state is snapshotted again.
    #[arg(long, default_value_t = 60_000)]
    replay_ops: usize,
}

struct Node(Crucial);

impl Durable for Node {
    fn incr(&self, key: &str) {
        self.0
            .client
            .open::<DurableCell>(key)
            .fetch_add(1)
            .expect("fetch_add");
    }

    fn set(&self, key: &str, value: &Bytes) {
        self.0
            .client
            .open::<DurableCell>(key)
            .set(value.clone())
            .expect("set");
    }
}

/// Starts a node whose persistent objects live in `dir`.
fn node(dir: &Path, durability: &str) -> Node {
    let dir = dir.to_str().expect("a UTF-8 path");
    Node(Crucial::start_with_env(
        "multi-thread",
        &[
            ("CRUCIAL_DATA_DIR", dir),
            ("CRUCIAL_DURABILITY", durability),
        ],
    ))
}

fn redis(dir: &Path, fsync: &str) -> Option<RedisAof> {
    std::fs::create_dir_all(dir).expect("redis dir");
    let dir = dir.to_str().expect("a UTF-8 path");
    match Redis::start_with(&["--appendonly", "yes", "--appendfsync", fsync, "--dir", dir]) {
        Ok(r) => Some(RedisAof(r)),
        Err(e) => {
            println!("# redis not measured: {e}");
            None
        }
    }
}

/// Loads `objects` persistent objects into a node, kills it with SIGKILL, and
/// times a restart on the same directory until it listens (recovery included).
fn recovery(dir: &Path, objects: usize) -> (Duration, usize) {
    {
        let loader = node(dir, "none");
        let next = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= objects {
                        break;
                    }
                    loader.incr(&format!("object-{i}"));
                });
            }
        });
        // Dropping the node process kills it (SIGKILL).
    }
    let start = Instant::now();
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--serve", "multi-thread"])
        .env("CRUCIAL_DATA_DIR", dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("restart the node");
    read_addr(&mut child);
    let elapsed = start.elapsed();
    drop(crucial_bench::systems::Process(child)); // killed
    (elapsed, objects)
}

/// The objects of the "what a call writes" table.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Centroids,
    Map(u64),
}

impl Kind {
    fn name(self) -> String {
        match self {
            Kind::Counter => "counter (fetch_add)".into(),
            Kind::Centroids => "centroids, 20 KB (add a 25-d point)".into(),
            Kind::Map(n) => format!("map of {n} entries (put)"),
        }
    }

    fn set_up(self, node: &Crucial) {
        if let Kind::Map(n) = self {
            node.client.open::<BigMap>("o").fill(n).expect("fill");
        }
    }

    fn update(self, node: &Crucial, i: usize) {
        let c = &node.client;
        match self {
            Kind::Counter => drop(c.open::<DurableCell>("o").fetch_add(1).expect("incr")),
            Kind::Centroids => drop(
                c.open::<Centroids>("o")
                    .add(i as u32, vec![i as f64 * 0.5; DIMENSIONS])
                    .expect("add"),
            ),
            Kind::Map(n) => c
                .open::<BigMap>("o")
                .put(i as u64 * 7919 % n, i as u64)
                .expect("put"),
        }
    }

    fn read(self, node: &Crucial) {
        let c = &node.client;
        match self {
            Kind::Counter => drop(c.open::<DurableCell>("o").fetch_add(0).expect("read")),
            Kind::Centroids => drop(c.open::<Centroids>("o").points().expect("read")),
            Kind::Map(_) => drop(c.open::<BigMap>("o").entries().expect("read")),
        }
    }
}

/// One row: `ops` sequential updates on a node with `--durability sync` and
/// the call log on or off, the bytes its process wrote to disk meanwhile, and
/// the restart after SIGKILL until a read of the object answers.
fn record_row(dir: &Path, kind: Kind, call_log: bool, ops: usize) {
    let path = dir.to_str().expect("a UTF-8 path");
    let env = [
        ("CRUCIAL_DATA_DIR", path),
        ("CRUCIAL_DURABILITY", "sync"),
        ("CRUCIAL_CALL_LOG", if call_log { "on" } else { "off" }),
    ];
    let (latency, written) = {
        let node = Crucial::start_with_env("multi-thread", &env);
        kind.set_up(&node);
        kind.update(&node, 0);
        let before = crucial_bench::procfs::disk_writes(node.pid());
        let mut times = Vec::with_capacity(ops);
        for i in 1..=ops {
            let start = Instant::now();
            kind.update(&node, i);
            times.push(start.elapsed());
        }
        let after = crucial_bench::procfs::disk_writes(node.pid());
        let written = before.zip(after).map(|(b, a)| (a - b) as f64 / ops as f64);
        (Latencies::new(times), written)
        // Dropping the node kills it (SIGKILL).
    };
    let start = Instant::now();
    let node = Crucial::start_with_env("multi-thread", &env);
    kind.read(&node);
    let restart = start.elapsed();
    println!(
        "| {} | {} | {:.0} | {:.0} | {} | {:.0} |",
        kind.name(),
        if call_log {
            "on"
        } else {
            "off (state per call)"
        },
        latency.p50(),
        latency.p99(),
        written.map_or("-".into(), |w| format!("{:.1}", w / 1024.0)),
        restart.as_secs_f64() * 1e3
    );
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

/// The worst restart of a large object: a map whose log holds `puts` calls
/// (written by 16 threads, with the call log on), killed, restarted until a
/// read answers. Returns the restart time.
fn worst_replay(dir: &Path, entries: u64, puts: usize) -> Duration {
    let path = dir.to_str().expect("a UTF-8 path");
    let env = [("CRUCIAL_DATA_DIR", path), ("CRUCIAL_DURABILITY", "none")];
    {
        let node = Crucial::start_with_env("multi-thread", &env);
        Kind::Map(entries).set_up(&node);
        let next = AtomicU64::new(1);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i > puts {
                        break;
                    }
                    Kind::Map(entries).update(&node, i);
                });
            }
        });
    }
    let start = Instant::now();
    let node = Crucial::start_with_env("multi-thread", &env);
    Kind::Map(entries).read(&node);
    let restart = start.elapsed();
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
    restart
}

fn main() {
    if crucial_bench::serve_if_asked() {
        return;
    }
    let args = Args::parse();
    let root = crucial_bench::scratch_dir(args.dir.clone(), "durable");
    let duration = Duration::from_secs_f64(args.seconds);
    println!(
        "# persistent objects vs Redis AOF: {} sequential ops per one-caller row, {} callers for {:.1} s, in {}; {} cores",
        args.ops,
        args.callers,
        args.seconds,
        root.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| system | incr p50 us | incr p99 us | set 1 KiB p50 us | set 1 KiB p99 us | incr ops/s, {0} callers | set ops/s, {0} callers |", args.callers);
    println!("|---|---|---|---|---|---|---|");
    let value = Bytes::from(vec![0x42u8; 1024]);
    let incr = |s: &dyn Durable| s.incr("counter");
    let set = |s: &dyn Durable| s.set("value", &value);
    let mut rows: Vec<(String, Box<dyn Durable>)> = Vec::new();
    rows.push((
        "crucial, --durability sync".into(),
        Box::new(node(&root.join("sync"), "sync")),
    ));
    rows.push((
        "crucial, --durability interval=1000".into(),
        Box::new(node(&root.join("interval"), "interval=1000")),
    ));
    if let Some(r) = redis(&root.join("redis-always"), "always") {
        rows.push(("redis, appendfsync always".into(), Box::new(r)));
    }
    if let Some(r) = redis(&root.join("redis-everysec"), "everysec") {
        rows.push(("redis, appendfsync everysec".into(), Box::new(r)));
    }
    for wait in [true, false] {
        let dir = root.join(if wait { "redis-wait" } else { "redis-no-wait" });
        match RedisReplicated::start(wait, &dir) {
            Ok(r) if wait => rows.push(("redis + 1 replica, WAIT 1 0".into(), Box::new(r))),
            Ok(r) => rows.push(("redis + 1 replica, no WAIT".into(), Box::new(r))),
            Err(e) => println!("# redis with a replica not measured: {e}"),
        }
    }
    let mut measured = Vec::new();
    for (name, system) in &rows {
        let a = sequential(system.as_ref(), args.ops, &incr);
        let b = sequential(system.as_ref(), args.ops, &set);
        let c = concurrent(system.as_ref(), args.callers, duration, &incr);
        let d = concurrent(system.as_ref(), args.callers, duration, &set);
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            a.p50(),
            a.p99(),
            b.p50(),
            b.p99(),
            c.per_second(),
            d.per_second()
        );
        measured.push((name.clone(), a.p50(), c.per_second(), d.per_second()));
    }
    if let (Some(ours), Some(always)) = (
        measured.iter().find(|m| m.0.contains("sync")),
        measured.iter().find(|m| m.0.contains("always")),
    ) {
        println!();
        println!(
            "# sync vs redis always: one-caller incr p50 ratio {:.2} (target <= 1), {} callers incr {:.2}x, set {:.2}x (target >= 2)",
            ours.1 / always.1,
            args.callers,
            ours.2 / always.2,
            ours.3 / always.3
        );
    }
    if let (Some(ours), Some(replicated)) = (
        measured.iter().find(|m| m.0.contains("sync")),
        measured.iter().find(|m| m.0.contains("WAIT 1")),
    ) {
        println!(
            "# sync (one copy) vs redis + 1 replica with WAIT: one-caller incr p50 ratio {:.2}, {} callers incr {:.2}x, set {:.2}x \
             (the targets of replication, rf = 2: p50 at or below, throughput at or above; not built yet)",
            ours.1 / replicated.1,
            args.callers,
            ours.2 / replicated.2,
            ours.3 / replicated.3
        );
    }
    drop(rows);
    let (elapsed, objects) = recovery(&root.join("recovery"), args.objects);
    println!();
    println!(
        "# recovery: a node killed with SIGKILL after {objects} persistent objects were written restarts and listens in {:.0} ms",
        elapsed.as_secs_f64() * 1e3
    );
    println!();
    println!(
        "# what a call writes: {} sequential calls with --durability sync, call log on and off; \
         restart = start after SIGKILL until the object answers a read",
        args.record_ops
    );
    println!();
    println!(
        "| object | call log | update p50 us | update p99 us | KiB to disk per call | restart ms |"
    );
    println!("|---|---|---|---|---|---|");
    for kind in [Kind::Counter, Kind::Centroids, Kind::Map(args.map_entries)] {
        for call_log in [false, true] {
            record_row(&root.join("record"), kind, call_log, args.record_ops);
        }
    }
    if args.replay_ops > 0 {
        let restart = worst_replay(&root.join("replay"), args.map_entries, args.replay_ops);
        println!();
        println!(
            "# worst restart of the map: {} logged puts replayed on its snapshot, start after SIGKILL until a read answers in {:.0} ms",
            args.replay_ops,
            restart.as_secs_f64() * 1e3
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
