//! `bench-cluster`: the cluster on loopback (etcd and node processes on this
//! machine's cores).
//!
//! 1. The bank mix (a transfer = two `fetch_add`s on random accounts) with 1,
//!    2 and 3 nodes: throughput, p50/p99, and CPU time per call on the nodes
//!    and on the clients — on one machine the nodes share its cores, so CPU
//!    per call, not calls/s, is what scales when each node has its own.
//! 2. A join under load: two nodes hold N objects, a third joins; the time
//!    until every node settled the new view (all objects moved), and the
//!    unavailability window of one moving object (the longest gap between
//!    successive calls of a client hammering it) beside one that stays.
//!
//! Usage: `bench-cluster [--seconds S] [--clients C] [--objects 10000,100000]`

use clap::Parser;
use crucial::{AtomicI64, Client, Config};
use crucial_bench::cluster::{free_port, serve_node_if_asked, wait_for_members, Etcd, Node};
use crucial_bench::procfs;
use crucial_bench::stats::Latencies;
use crucial_protocol::placement::{Placement, View};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Seconds per bank run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Client threads of the bank.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Accounts of the bank.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Cluster sizes for the bank.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    nodes: Vec<usize>,
    /// Object counts for the join measurement.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    objects: Vec<usize>,
}

fn connect(addr: &str) -> Client {
    Config::new()
        .server(addr.to_string())
        .connect()
        .expect("connect")
}

fn own_cpu() -> Duration {
    procfs::process_cpu(std::process::id()).unwrap_or_default()
}

struct BankRow {
    nodes: usize,
    transfers_per_s: f64,
    latencies: Latencies,
    node_cpu_per_call: f64,
    client_cpu_per_call: f64,
}

fn bank(etcd: &Etcd, args: &Args, count: usize) -> BankRow {
    let name = format!("bank-{count}-{}", std::process::id());
    let nodes: Vec<Node> = (0..count).map(|_| Node::start(etcd, &name, 0)).collect();
    wait_for_members(&nodes, count);
    let bootstrap = nodes[0].addr.clone();
    {
        let client = connect(&bootstrap);
        for a in 0..args.accounts {
            client
                .open::<AtomicI64>(format!("acct/{a}"))
                .fetch_add(0)
                .expect("open account");
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicU64::new(0));
    let start_barrier = Arc::new(std::sync::Barrier::new(args.clients + 1));
    let workers: Vec<_> = (0..args.clients)
        .map(|t| {
            let (stop, samples, done, barrier) = (
                Arc::clone(&stop),
                Arc::clone(&samples),
                Arc::clone(&done),
                Arc::clone(&start_barrier),
            );
            let (bootstrap, accounts) = (bootstrap.clone(), args.accounts);
            std::thread::spawn(move || {
                let client = connect(&bootstrap);
                client.ping().expect("ping");
                let mut mine = Vec::new();
                let mut x = t as u64 * 7919 + 1;
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let from = (x % accounts as u64) as usize;
                    let to = ((x >> 20) % accounts as u64) as usize;
                    let began = Instant::now();
                    client
                        .open::<AtomicI64>(format!("acct/{from}"))
                        .fetch_add(-1)
                        .expect("take");
                    client
                        .open::<AtomicI64>(format!("acct/{to}"))
                        .fetch_add(1)
                        .expect("give");
                    mine.push(began.elapsed());
                    done.fetch_add(1, Ordering::Relaxed);
                }
                samples.lock().unwrap().extend(mine);
            })
        })
        .collect();
    start_barrier.wait();
    let node_cpu = |nodes: &[Node]| -> Duration {
        nodes
            .iter()
            .map(|n| procfs::process_cpu(n.pid()).unwrap_or_default())
            .sum()
    };
    let (cpu0, own0, t0) = (node_cpu(&nodes), own_cpu(), Instant::now());
    let done0 = done.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    let transfers = done.load(Ordering::Relaxed) - done0;
    let (cpu1, own1, elapsed) = (node_cpu(&nodes), own_cpu(), t0.elapsed());
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a bank client failed");
    }
    // The money stayed: every transfer moved one unit.
    let client = connect(&bootstrap);
    let total: i64 = (0..args.accounts)
        .map(|a| {
            client
                .open::<AtomicI64>(format!("acct/{a}"))
                .load()
                .expect("balance")
        })
        .sum();
    assert_eq!(total, 0, "the bank's total moved");
    let calls = (transfers * 2).max(1) as f64;
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    BankRow {
        nodes: count,
        transfers_per_s: transfers as f64 / elapsed.as_secs_f64(),
        latencies: Latencies::new(samples),
        node_cpu_per_call: (cpu1 - cpu0).as_secs_f64() * 1e6 / calls,
        client_cpu_per_call: (own1 - own0).as_secs_f64() * 1e6 / calls,
    }
}

/// A client hammering one object; records when each call completed.
fn probe(
    addr: String,
    key: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Instant>> {
    std::thread::spawn(move || {
        let client = connect(&addr);
        let counter = client.open::<AtomicI64>(key);
        let mut completed = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            counter.fetch_add(1).expect("probe call");
            completed.push(Instant::now());
            std::thread::sleep(Duration::from_micros(200));
        }
        completed
    })
}

/// The longest gap between successive completions from `from` on.
fn longest_gap(completed: &[Instant], from: Instant) -> Duration {
    completed
        .windows(2)
        .filter(|w| w[1] >= from)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

struct JoinRow {
    objects: usize,
    moved: u64,
    rebalance: Duration,
    moving_gap: Duration,
    staying_gap: Duration,
}

fn join(etcd: &Etcd, objects: usize) -> JoinRow {
    let name = format!("join-{objects}-{}", std::process::id());
    let nodes = vec![Node::start(etcd, &name, 0), Node::start(etcd, &name, 0)];
    wait_for_members(&nodes, 2);
    let bootstrap = nodes[0].addr.clone();
    // Fill: 8 clients create the objects.
    std::thread::scope(|s| {
        for t in 0..8 {
            let bootstrap = bootstrap.clone();
            s.spawn(move || {
                let client = connect(&bootstrap);
                for i in (t..objects).step_by(8) {
                    client
                        .open::<AtomicI64>(format!("obj/{i}"))
                        .fetch_add(1)
                        .expect("fill");
                }
            });
        }
    });
    // The third node's address is chosen now, so the probes know which key moves.
    let port = free_port();
    let third = format!("127.0.0.1:{port}");
    let mut members: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let before = Placement::new(View::fixed(members.clone()));
    members.push(third.clone());
    members.sort();
    let after = Placement::new(View::fixed(members));
    let pick = |moves: bool| {
        (0..objects)
            .map(|i| format!("obj/{i}"))
            .find(|k| {
                let t = "crucial::AtomicI64";
                (after.owner(t, k) == third) == moves && before.owner(t, k) != third
            })
            .expect("a key")
    };
    let stop = Arc::new(AtomicBool::new(false));
    let moving = probe(bootstrap.clone(), pick(true), Arc::clone(&stop));
    let staying = probe(bootstrap.clone(), pick(false), Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut nodes = nodes;
    nodes.push(Node::start(etcd, &name, port));
    wait_for_members(&nodes, 3);
    let rebalance = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let moving = moving.join().expect("probe");
    let staying = staying.join().expect("probe");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let moved = rt
        .block_on(crucial_server::admin::cli::status_of(&nodes[2].admin))
        .map(|s| s.moved_in)
        .unwrap_or(0);
    let held: u64 = nodes
        .iter()
        .map(|n| {
            rt.block_on(crucial_server::admin::cli::status_of(&n.admin))
                .map(|s| s.objects)
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(
        held as usize, objects,
        "every object is held once after the join"
    );
    JoinRow {
        objects,
        moved,
        rebalance,
        moving_gap: longest_gap(&moving, started),
        staying_gap: longest_gap(&staying, started),
    }
}

fn main() {
    if serve_node_if_asked() {
        return;
    }
    let args = Args::parse();
    let etcd = match Etcd::start() {
        Ok(etcd) => etcd,
        Err(e) => {
            eprintln!("bench-cluster needs etcd: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "## The bank mix on 1..3 nodes ({} client threads, {} accounts, {:.1} s; loopback, one 2-core machine)\n",
        args.clients, args.accounts, args.seconds
    );
    println!("| nodes | transfers/s | calls/s | p50 us | p99 us | node CPU us/call | client CPU us/call | transfers/s vs 1 node | node CPU/call vs 1 node |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut first: Option<(f64, f64)> = None;
    for &count in &args.nodes {
        let row = bank(&etcd, &args, count);
        let (base_rate, base_cpu) =
            *first.get_or_insert((row.transfers_per_s, row.node_cpu_per_call));
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.2}x | {:.2}x |",
            row.nodes,
            row.transfers_per_s,
            row.transfers_per_s * 2.0,
            row.latencies.p50(),
            row.latencies.p99(),
            row.node_cpu_per_call,
            row.client_cpu_per_call,
            row.transfers_per_s / base_rate,
            row.node_cpu_per_call / base_cpu
        );
    }
    println!("\n## A third node joins two that hold N objects (probes call one moving and one staying object every 200 us)\n");
    println!("| objects | moved to the new node | rebalance (join to all settled) ms | moved objects/s | longest gap, moving object ms | longest gap, staying object ms |");
    println!("|---|---|---|---|---|---|");
    for &objects in &args.objects {
        let row = join(&etcd, objects);
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.1} | {:.1} |",
            row.objects,
            row.moved,
            row.rebalance.as_secs_f64() * 1e3,
            row.moved as f64 / row.rebalance.as_secs_f64(),
            row.moving_gap.as_secs_f64() * 1e3,
            row.staying_gap.as_secs_f64() * 1e3
        );
    }
}
