//! A load generator in the style of `redis-benchmark` and memtier: one async
//! runtime drives N connections, each keeping P requests in flight (a sliding
//! window: a reply lets the next request go), with an operation mix over a key
//! space, for a fixed time after a warm-up. It speaks the Crucial wire protocol
//! and RESP with the same loop, so the node and Redis see the same workload and
//! no client library's threading is measured.

pub mod crucial;
pub mod redis;
pub mod workload;

use crate::procfs::process_cpu;
use bytes::BytesMut;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use workload::{Keys, Mix, OpKind, Rng};

/// A wire protocol as the load generator speaks it.
pub trait Protocol: Send + 'static {
    /// The bytes that open a connection (answered by one reply).
    fn handshake(&mut self) -> Vec<u8>;
    /// Appends a request for `op` on key index `key` (`second_of_pair`: the
    /// second half of a blocking pair); returns its id.
    fn encode(&mut self, op: OpKind, key: u64, second_of_pair: bool, out: &mut Vec<u8>) -> u64;
    /// Takes one reply out of `buf`: its id (ignored for ordered protocols),
    /// `None` if more bytes are needed, an error for an error reply.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<u64>, String>;
    /// Whether replies come in request order.
    fn ordered(&self) -> bool;
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Operation mix.
    pub mix: Mix,
    /// Key space and skew.
    pub keys: Keys,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// Threads of the generator's runtime (1: current-thread, like redis-benchmark).
    pub threads: usize,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Requests answered during the measured time.
    pub ops: u64,
    /// The measured time.
    pub elapsed: Duration,
    /// Latency of each answered request, sorted, in nanoseconds.
    pub latencies: Vec<u32>,
    /// CPU time the server process used during the measured time, if known.
    pub server_cpu: Option<Duration>,
    /// CPU time this generator's process used during the measured time.
    pub generator_cpu: Option<Duration>,
}

impl Measured {
    /// Requests per second.
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency percentile in microseconds (`q` in 0..=1).
    pub fn percentile(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let at = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies[at]) / 1e3
    }

    /// Server CPU microseconds per answered request.
    pub fn server_us_per_op(&self) -> Option<f64> {
        self.server_cpu
            .map(|cpu| cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64)
    }

    /// Generator CPU microseconds per answered request.
    pub fn generator_us_per_op(&self) -> Option<f64> {
        self.generator_cpu
            .map(|cpu| cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64)
    }
}

fn cpu_since(pid: Option<u32>, before: Option<Duration>) -> Option<Duration> {
    Some(process_cpu(pid?)?.saturating_sub(before?))
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Send times of requests in flight: a queue when replies come in order, a map otherwise.
enum InFlight {
    Ordered(VecDeque<Instant>),
    ById(HashMap<u64, Instant>),
}

impl InFlight {
    fn sent(&mut self, id: u64, at: Instant) {
        match self {
            InFlight::Ordered(queue) => queue.push_back(at),
            InFlight::ById(map) => {
                map.insert(id, at);
            }
        }
    }

    fn answered(&mut self, id: u64) -> Option<Instant> {
        match self {
            InFlight::Ordered(queue) => queue.pop_front(),
            InFlight::ById(map) => map.remove(&id),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            InFlight::Ordered(queue) => queue.is_empty(),
            InFlight::ById(map) => map.is_empty(),
        }
    }
}

/// Chooses each connection's next request.
struct Chooser {
    rng: Rng,
    mix: Mix,
    keys: Keys,
    /// The key of a blocking pair whose first half was sent.
    pair_open: Option<u64>,
}

impl Chooser {
    fn next(&mut self) -> (OpKind, u64, bool) {
        if let Some(key) = self.pair_open.take() {
            return (OpKind::Sem, key, true);
        }
        let op = self.mix.pick(self.rng.next_u64());
        let key = self.keys.pick(self.rng.next_u64());
        if op == OpKind::Sem {
            self.pair_open = Some(key);
        }
        (op, key, false)
    }
}

/// Connects and completes the protocol's handshake.
async fn open<P: Protocol>(addr: &str, protocol: &mut P) -> Result<(TcpStream, BytesMut), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let hello = protocol.handshake();
    stream.write_all(&hello).await.map_err(|e| e.to_string())?;
    loop {
        if protocol.decode(&mut buf)?.is_some() {
            return Ok((stream, buf));
        }
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err(format!("{addr} closed the connection during the handshake"));
        }
    }
}

struct ConnectionResult {
    ops: u64,
    latencies: Vec<u32>,
}

async fn connection<P: Protocol>(
    addr: String,
    mut protocol: P,
    plan: Arc<Plan>,
    phase: Arc<AtomicU8>,
    ready: Arc<tokio::sync::Barrier>,
    seed: u64,
) -> Result<ConnectionResult, String> {
    // Every connection reaches the barrier, even one that failed to open, so
    // that the run never waits for a connection that will not come.
    let opened = open(&addr, &mut protocol).await;
    ready.wait().await;
    let (mut stream, mut buf) = opened?;

    let mut chooser = Chooser {
        rng: Rng::new(seed),
        mix: plan.mix.clone(),
        keys: plan.keys.clone(),
        pair_open: None,
    };
    let mut in_flight = if protocol.ordered() {
        InFlight::Ordered(VecDeque::with_capacity(plan.pipeline))
    } else {
        InFlight::ById(HashMap::with_capacity(plan.pipeline * 2))
    };
    let mut out = Vec::with_capacity(64 * 1024);
    let now = Instant::now();
    for _ in 0..plan.pipeline {
        let (op, key, second) = chooser.next();
        let id = protocol.encode(op, key, second, &mut out);
        in_flight.sent(id, now);
    }
    let mut ops = 0u64;
    let mut latencies = Vec::with_capacity(1 << 16);
    loop {
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
            out.clear();
        }
        if in_flight.is_empty() {
            break;
        }
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("the server closed the connection".into());
        }
        let now = Instant::now();
        let current = phase.load(Ordering::Relaxed);
        while let Some(id) = protocol.decode(&mut buf)? {
            let sent = in_flight
                .answered(id)
                .ok_or_else(|| format!("a reply to {id}, which was not sent"))?;
            if current == MEASURE {
                ops += 1;
                latencies.push(now.duration_since(sent).as_nanos().min(u32::MAX as u128) as u32);
            }
            // After the measured time only the second half of an open blocking
            // pair is still sent, so no semaphore is left owing a permit.
            if current != STOP || chooser.pair_open.is_some() {
                let (op, key, second) = chooser.next();
                let id = protocol.encode(op, key, second, &mut out);
                in_flight.sent(id, now);
            }
        }
    }
    Ok(ConnectionResult { ops, latencies })
}

/// Runs `plan` against `addr`, a connection's protocol made by `protocol`.
///
/// `server` is the server's process id, for its CPU time per request.
pub fn run<P: Protocol>(
    addr: &str,
    server: Option<u32>,
    plan: &Plan,
    protocol: impl Fn() -> P,
) -> Result<Measured, String> {
    let rt = if plan.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(plan.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    let plan = Arc::new(plan.clone());
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let ready = Arc::new(tokio::sync::Barrier::new(plan.connections + 1));
    rt.block_on(async {
        let tasks: Vec<_> = (0..plan.connections)
            .map(|i| {
                tokio::spawn(connection(
                    addr.to_string(),
                    protocol(),
                    Arc::clone(&plan),
                    Arc::clone(&phase),
                    Arc::clone(&ready),
                    0x5eed + i as u64,
                ))
            })
            .collect();
        ready.wait().await;
        tokio::time::sleep(plan.warmup).await;
        phase.store(MEASURE, Ordering::Relaxed);
        let own = Some(std::process::id());
        let (server_before, own_before) = (server.and_then(process_cpu), own.and_then(process_cpu));
        let start = Instant::now();
        tokio::time::sleep(plan.duration).await;
        phase.store(STOP, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let server_cpu = cpu_since(server, server_before);
        let generator_cpu = cpu_since(own, own_before);
        let mut ops = 0;
        let mut latencies = Vec::new();
        for task in tasks {
            let result = task.await.map_err(|e| e.to_string())??;
            ops += result.ops;
            latencies.extend(result.latencies);
        }
        latencies.sort_unstable();
        Ok(Measured {
            ops,
            elapsed,
            latencies,
            server_cpu,
            generator_cpu,
        })
    })
}
