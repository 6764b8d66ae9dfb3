//! `bench-spread`: lambda objects placed object by object on 1, 2 and 3
//! nodes (etcd and every node a process on this machine), against Redis
//! (`WATCH`/`MULTI`/`EXEC`, one instance: one hash slot) and PostgreSQL
//! (`SERIALIZABLE`), in one run.
//!
//! Three transactions: *add* (read-modify-write of one counter: always on
//! one node), *transfer* (one unit from one counter to another: on n nodes,
//! the two counters are on two nodes for about (n-1)/n of the transfers,
//! which then commit with two-phase commit) and *audit* (every counter read
//! and summed in one transaction: a map call; Redis `MGET`, PostgreSQL
//! `SELECT sum(value)`). And CloudForum's mix (`forum`: thread pages,
//! listings, comments, new threads over 200 accounts, 10 communities and
//! 200 threads; the example's objects, placed object by object, against
//! its Redis and PostgreSQL ports, as in `bench-lambda`). And *read (hot)*:
//! every client reads the first counter (`GET`, `SELECT`); on the largest
//! cluster without copies, again with the hot counter's owner's CPU counted
//! alone, then with the other nodes as its light replicas
//! (`crucial-admin light`). Printed per system and
//! workload: committed tx/s, p50/p99, the share committed with 2PC, the
//! node-to-node steps per transaction, the nodes' CPU per transaction (all
//! node processes together), re-executions per transaction; and a model for
//! machines with a core per node.
//!
//! Usage: `bench-spread [--seconds S] [--clients 1,16] [--nodes 1,2,3] [--counters N]`

use clap::Parser;
use crucial::{Client, Config};
use crucial_bench::cluster::{serve_node_if_asked, wait_for_members, Etcd, Node};
use crucial_bench::forum::{postgres::PostgresForum, redis::RedisForum};
use crucial_bench::postgres::Postgres;
use crucial_bench::procfs;
use crucial_bench::systems::Redis;
use crucial_bench::transfer::{
    self, LambdaTransfers, PostgresTransfers, RedisTransfers, Transfers, Workload,
};
use forum::load::{self, Backend, Load};
use forum::LambdaForum;
use std::time::Duration;

#[derive(Parser)]
struct Args {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Client counts.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    clients: Vec<usize>,
    /// Cluster sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    nodes: Vec<usize>,
    /// Counters.
    #[arg(long, default_value_t = 1000)]
    counters: usize,
    /// Also measure the largest cluster with this many copies of every
    /// object (`--replicas`; 1: not).
    #[arg(long, default_value_t = 2)]
    copies: u8,
    /// Systems besides the cluster: redis, postgres.
    #[arg(long, value_delimiter = ',', default_value = "redis,postgres")]
    peers: Vec<String>,
}

/// One row of the table.
struct Row {
    system: String,
    /// `add`, `transfer`, `audit (all)` or `forum`.
    workload: &'static str,
    clients: usize,
    measured: transfer::Measured,
    /// Share of the committed transactions that used 2PC (lambda only).
    spanning: Option<f64>,
    /// Node-to-node steps per committed transaction (lambda only).
    steps: Option<f64>,
    /// Server CPU per committed transaction, µs.
    server_cpu: f64,
    /// The hot counter's owner's CPU per committed transaction, µs (hot
    /// reads on a cluster).
    owner_cpu: Option<f64>,
}

fn p(latencies: &[Duration], q: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let i = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
    latencies[i].as_secs_f64() * 1e6
}

/// The share of `committed` transactions that used 2PC and the
/// node-to-node steps per transaction since `before` was read from `stats`
/// (a cluster's workflow counters; `None`: not a cluster).
fn shares(
    stats: Option<&Client>,
    before: Option<crucial::WorkflowStats>,
    committed: f64,
) -> Result<(Option<f64>, Option<f64>), String> {
    let (Some(client), Some(before)) = (stats, before) else {
        return Ok((None, None));
    };
    let delta = client
        .workflow_stats()
        .map_err(|e| e.to_string())?
        .since(before);
    Ok((
        Some(delta.spanning as f64 / committed),
        Some(delta.steps as f64 / committed),
    ))
}

fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter()
        .map(|pid| procfs::tree_cpu(*pid).unwrap_or_default())
        .sum()
}

/// Runs both workloads at every client count on `system`, whose server
/// processes are `pids`; `stats`: the cluster's workflow counters.
fn measure(
    name: &str,
    system: &dyn Transfers,
    pids: &[u32],
    stats: Option<&Client>,
    args: &Args,
) -> Result<Vec<Row>, String> {
    system.set_up(args.counters)?;
    let all = [
        Workload::Add,
        Workload::Transfer,
        Workload::Audit,
        Workload::Read,
    ];
    measure_only(name, system, pids, None, stats, args, &all)
}

/// [`measure`] of `workloads` on counters set up already; `owner`: the
/// hot counter's node, whose CPU is also counted alone.
fn measure_only(
    name: &str,
    system: &dyn Transfers,
    pids: &[u32],
    owner: Option<u32>,
    stats: Option<&Client>,
    args: &Args,
    workloads: &[Workload],
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for &workload in workloads {
        for &clients in &args.clients {
            let before = stats
                .map(|c| c.workflow_stats())
                .transpose()
                .map_err(|e| e.to_string())?;
            let cpu = cpu_of(pids);
            let owner_before = owner.map(|pid| cpu_of(&[pid]));
            let measured = transfer::run(
                system,
                args.counters,
                clients,
                Duration::from_secs_f64(args.seconds),
                workload,
            )?;
            let used = cpu_of(pids).saturating_sub(cpu);
            let committed = measured.latencies.len().max(1) as f64;
            let owner_cpu = owner.zip(owner_before).map(|(pid, was)| {
                cpu_of(&[pid]).saturating_sub(was).as_secs_f64() * 1e6 / committed
            });
            let (spanning, steps) = shares(stats, before, committed)?;
            rows.push(Row {
                system: name.to_string(),
                workload: workload.name(),
                clients,
                server_cpu: used.as_secs_f64() * 1e6 / committed,
                owner_cpu,
                measured,
                spanning,
                steps,
            });
        }
    }
    Ok(rows)
}

/// CloudForum's mix at every client count on `backend`, whose server
/// processes are `pids`; `stats`: the cluster's workflow counters.
fn forum_rows(
    name: &str,
    backend: &dyn Backend,
    pids: &[u32],
    stats: Option<&Client>,
    args: &Args,
) -> Result<Vec<Row>, String> {
    let base = Load {
        duration: Duration::from_secs_f64(args.seconds),
        ..Load::default()
    };
    let mut keys = load::populate(backend, &base)?;
    let mut rows = Vec::new();
    for &clients in &args.clients {
        let before = stats
            .map(|c| c.workflow_stats())
            .transpose()
            .map_err(|e| e.to_string())?;
        let cpu = cpu_of(pids);
        let report = load::run(
            backend,
            &Load {
                clients,
                ..base.clone()
            },
            keys,
        )?;
        let used = cpu_of(pids).saturating_sub(cpu);
        let latencies = report.all();
        let committed = latencies.len().max(1) as f64;
        let (spanning, steps) = shares(stats, before, committed)?;
        let measured = transfer::Measured {
            retries: report.retries,
            failures: report.failures.iter().map(|(_, n)| *n).sum(),
            elapsed: report.elapsed,
            latencies,
        };
        rows.push(Row {
            system: name.to_string(),
            workload: "forum",
            clients,
            server_cpu: used.as_secs_f64() * 1e6 / committed,
            owner_cpu: None,
            measured,
            spanning,
            steps,
        });
        keys = report.keys;
    }
    Ok(rows)
}

fn cluster(etcd: &Etcd, count: usize, copies: u8, args: &Args) -> Result<Vec<Row>, String> {
    let name = format!("spread-{count}-{copies}-{}", std::process::id());
    let replicas = copies.to_string();
    let flags: &[&str] = match copies {
        1 => &[],
        _ => &["--replicas", &replicas],
    };
    let nodes: Vec<Node> = (0..count)
        .map(|_| Node::start_with(etcd, &name, 0, flags))
        .collect();
    wait_for_members(&nodes, count);
    let client = Config::new()
        .server(nodes[0].addr.clone())
        .connect()
        .map_err(|e| e.to_string())?;
    let pids: Vec<u32> = nodes.iter().map(Node::pid).collect();
    let mut label = format!("lambda, {count} node{}", if count > 1 { "s" } else { "" });
    if copies > 1 {
        label += &format!(", {copies} copies");
    }
    let mut rows = measure(
        &label,
        &LambdaTransfers(client.clone()),
        &pids,
        Some(&client),
        args,
    )?;
    rows.extend(forum_rows(
        &label,
        &LambdaForum::new(client.clone()),
        &pids,
        Some(&client),
        args,
    )?);
    if count >= 3 && copies == 1 {
        rows.extend(light_rows(&nodes, &label, args)?);
    }
    Ok(rows)
}

/// Hot reads again, the hot counter's owner counted alone: as they were
/// (its owner serves all), then with the other nodes as its light replicas
/// (`crucial-admin light`; a new client, which learns them with the view).
fn light_rows(nodes: &[Node], label: &str, args: &Args) -> Result<Vec<Row>, String> {
    use crucial_protocol::placement::{lambda_home, Placement, LAMBDA_HOME};
    let client = |nodes: &[Node]| {
        Config::new()
            .server(nodes[0].addr.clone())
            .connect()
            .map_err(|e| e.to_string())
    };
    let before = client(nodes)?;
    let view = before.server_info(0).map_err(|e| e.to_string())?.view;
    let view = view.ok_or("a node in a cluster has a view")?;
    let id = transfer::SpreadCounter::at(transfer::key(0)).id().clone();
    let home = lambda_home(&id.application, Some((&id.type_name, &id.key)));
    let owner_addr = Placement::new(view).owner(LAMBDA_HOME, &home).to_string();
    let owner = nodes
        .iter()
        .find(|n| n.addr == owner_addr)
        .ok_or("the hot counter's owner is a node")?;
    let pids: Vec<u32> = nodes.iter().map(Node::pid).collect();
    let mut rows = measure_only(
        &format!("{label}, owner alone"),
        &LambdaTransfers(before.clone()),
        &pids,
        Some(owner.pid()),
        Some(&before),
        args,
        &[Workload::Read],
    )?;
    let others: Vec<String> = nodes
        .iter()
        .filter(|n| n.addr != owner_addr)
        .map(|n| n.addr.clone())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(crucial_server::admin::cli::light(
        &owner.admin,
        "crucial_bench::SpreadCounter",
        &transfer::key(0),
        &others,
    ))?;
    let after = client(nodes)?;
    rows.extend(measure_only(
        &format!("{label}, {} light replicas", others.len()),
        &LambdaTransfers(after.clone()),
        &pids,
        Some(owner.pid()),
        Some(&after),
        args,
        &[Workload::Read],
    )?);
    Ok(rows)
}

fn main() {
    if serve_node_if_asked() {
        return;
    }
    let args = Args::parse();
    let etcd = match Etcd::start() {
        Ok(etcd) => etcd,
        Err(e) => {
            eprintln!("bench-spread needs etcd: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "# bench-spread: {} counters, {:.1} s per run, {} cores; every system a process on loopback, clients are threads of this process",
        args.counters,
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut rows = Vec::new();
    let mut clusters: Vec<(usize, u8)> = args.nodes.iter().map(|&n| (n, 1)).collect();
    if let Some(&largest) = args.nodes.iter().max() {
        if args.copies > 1 && largest >= usize::from(args.copies) {
            clusters.push((largest, args.copies));
        }
    }
    for (count, copies) in clusters {
        match cluster(&etcd, count, copies, &args) {
            Ok(r) => rows.extend(r),
            Err(e) => println!("# lambda on {count} nodes ({copies} copies): not measured: {e}"),
        }
    }
    for peer in &args.peers {
        let measured = match peer.as_str() {
            "redis" => Redis::start().and_then(|server| {
                let url = format!("redis://{}/", server.addr);
                let name = "redis WATCH/MULTI (one slot)";
                let pids = [server.pid()];
                let mut rows = measure(name, &RedisTransfers::new(&url), &pids, None, &args)?;
                rows.extend(forum_rows(
                    name,
                    &RedisForum::new(&url),
                    &pids,
                    None,
                    &args,
                )?);
                Ok(rows)
            }),
            "postgres" => Postgres::start(false).and_then(|server| {
                let pid = server.pid().ok_or("no postmaster.pid")?;
                let name = "postgres SERIALIZABLE";
                let mut rows =
                    measure(name, &PostgresTransfers::new(&server)?, &[pid], None, &args)?;
                rows.extend(forum_rows(
                    name,
                    &PostgresForum::new(&server)?,
                    &[pid],
                    None,
                    &args,
                )?);
                Ok(rows)
            }),
            other => Err(format!("unknown peer `{other}`")),
        };
        match measured {
            Ok(r) => rows.extend(r),
            Err(e) => println!("# {peer}: not measured: {e}"),
        }
    }
    println!();
    println!("| system | workload | clients | tx/s | p50 us | p99 us | 2PC share | steps/tx | server CPU us/tx | re-executions/tx | failed |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let m = &r.measured;
        let committed = m.latencies.len().max(1) as f64;
        let opt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {:.0} | {:.3} | {} |",
            r.system,
            r.workload,
            r.clients,
            m.per_second(),
            p(&m.latencies, 0.5),
            p(&m.latencies, 0.99),
            opt(r.spanning, 2),
            opt(r.steps, 1),
            r.server_cpu,
            m.retries as f64 / committed,
            m.failures
        );
    }
    // Hot reads: what the hot counter's owner spends per read, alone.
    for r in rows.iter().filter(|r| r.owner_cpu.is_some()) {
        println!(
            "# {}, read (hot), {} clients: {:.0} reads/s, the owner's CPU {:.0} us per read (all nodes {:.0})",
            r.system,
            r.clients,
            r.measured.per_second(),
            r.owner_cpu.unwrap_or_default(),
            r.server_cpu
        );
    }
    // The model for machines with a core (or more) per node: a node's CPU
    // per transaction bounds what each machine can commit.
    let top = args.clients.iter().copied().max().unwrap_or(1);
    let three = rows.iter().find(|r| {
        r.workload == Workload::Transfer.name() && r.clients == top && r.system == "lambda, 3 nodes"
    });
    if let Some(r) = three {
        let per_machine = 2.0e6 / r.server_cpu.max(1.0);
        println!();
        println!(
            "# model: transfers on 3 nodes cost {:.0} us of node CPU each ({:.1} node-to-node steps, {:.0}% with 2PC); \
             a 2-core machine per node would commit about {:.0} transfers/s per machine, N machines about N x that \
             (CPU-bound, network time overlapped); LambdaStore reports 600k tx/s on 36 machines, {:.0} per machine",
            r.server_cpu,
            r.steps.unwrap_or(0.0),
            r.spanning.unwrap_or(0.0) * 100.0,
            per_machine,
            600_000.0 / 36.0
        );
    }
}
