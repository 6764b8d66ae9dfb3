//! The systems under test, each started as its own process on loopback.

use crate::stats::{Latencies, Throughput};
use crucial::{AtomicBytes, AtomicI64, Bytes, Client};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// What is measured.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Increment a counter.
    Incr,
    /// Store 1 KiB.
    Set,
    /// Read 1 KiB.
    Get,
}

/// A store under test.
pub trait System: Sync {
    /// Row label.
    fn name(&self) -> &str;
    /// The server's process id.
    fn server_pid(&self) -> u32;
    /// One caller, `ops` operations, each timed.
    fn sequential(&self, op: Op, ops: usize, payload: &[u8]) -> Latencies;
    /// `callers` threads for `duration`.
    fn concurrent(&self, op: Op, callers: usize, duration: Duration, payload: &[u8]) -> Throughput;
    /// `callers` async tasks for `duration` (systems without an async client return `None`).
    fn concurrent_async(
        &self,
        _op: Op,
        _callers: usize,
        _duration: Duration,
    ) -> Option<Throughput> {
        None
    }
}

/// Times each of `ops` calls of `f` (after a tenth as many untimed).
pub fn time_each(ops: usize, mut f: impl FnMut()) -> Latencies {
    for _ in 0..ops / 10 {
        f(); // warm-up
    }
    let mut samples = Vec::with_capacity(ops);
    for _ in 0..ops {
        let start = Instant::now();
        f();
        samples.push(start.elapsed());
    }
    Latencies::new(samples)
}

/// `callers` threads, each with its own `setup()` state, calling `op` for `duration`.
pub fn run_callers<S: Send + 'static>(
    callers: usize,
    duration: Duration,
    setup: impl Fn() -> S,
    op: impl Fn(&mut S) + Send + Sync + 'static,
) -> Throughput {
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(callers + 1));
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let mut state = setup();
            let (op, stop, done, barrier) = (
                Arc::clone(&op),
                Arc::clone(&stop),
                Arc::clone(&done),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    op(&mut state);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("caller thread");
    }
    Throughput {
        ops: done.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// A child process, killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Crucial node in a child process, and a client connected to it.
pub struct Crucial {
    _process: Process,
    /// A client connected to the node.
    pub client: Client,
    /// The node's address.
    pub addr: String,
}

/// Body of the `--serve` child: a node on a free port that prints its address.
pub fn serve_node() {
    let runtime = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "multi-thread".into());
    let config = crucial_server::NodeConfig {
        listen: "127.0.0.1:0".into(),
        flavor: if runtime == "current-thread" {
            crucial_server::Flavor::CurrentThread
        } else {
            crucial_server::Flavor::MultiThread
        },
        // bench-tls's node: credentials and TLS from the environment.
        credentials: std::env::var_os("CRUCIAL_CREDENTIALS").map(Into::into),
        tls: std::env::var_os("CRUCIAL_TLS_CERT")
            .zip(std::env::var_os("CRUCIAL_TLS_KEY"))
            .map(|(cert, key)| (cert.into(), key.into())),
        // and a per-application byte quota, to measure what sizing writes costs.
        quotas: crucial_server::QuotaLimits {
            bytes: std::env::var("BENCH_APP_MAX_BYTES")
                .ok()
                .and_then(|b| b.parse().ok()),
            ..Default::default()
        },
        ..Default::default()
    };
    crucial_server::run(config, |addr| println!("listening on {addr}")).expect("node");
}

/// Reads a node process's stdout until it prints `listening on ADDR`; returns ADDR.
pub fn read_addr(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("node printed its address")
            .expect("read");
        if let Some(addr) = line.strip_prefix("listening on ") {
            return addr.trim().to_string();
        }
    }
}

impl Crucial {
    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self._process.0.id()
    }

    /// Starts the node process and connects.
    pub fn start(runtime: &str) -> Crucial {
        Crucial::start_with_env(runtime, &[])
    }

    /// [`Crucial::start`] with environment variables for the node
    /// (`CRUCIAL_DATA_DIR`, `CRUCIAL_DURABILITY`, ...).
    pub fn start_with_env(runtime: &str, env: &[(&str, &str)]) -> Crucial {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(["--serve", runtime])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let addr = read_addr(&mut child);
        let mut config = crucial::Config::new().server(addr.clone());
        if let Some(micros) = std::env::var("CRUCIAL_SPIN_MICROS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config = config.spin(Duration::from_micros(micros));
        }
        let client = config.connect().expect("connect");
        client.ping().expect("ping");
        Crucial {
            _process: Process(child),
            client,
            addr,
        }
    }
}

impl System for Crucial {
    fn name(&self) -> &str {
        "crucial"
    }

    fn server_pid(&self) -> u32 {
        self.pid()
    }

    fn sequential(&self, op: Op, ops: usize, payload: &[u8]) -> Latencies {
        let counter = self.client.open::<AtomicI64>("bench/counter");
        let blob = self.client.open::<AtomicBytes>("bench/blob");
        let value = Bytes::copy_from_slice(payload);
        blob.set(value.clone()).expect("set");
        match op {
            Op::Incr => time_each(ops, || {
                counter.fetch_add(1).expect("fetch_add");
            }),
            Op::Set => time_each(ops, || blob.set(value.clone()).expect("set")),
            Op::Get => time_each(ops, || {
                assert_eq!(blob.get().expect("get").len(), 1024);
            }),
        }
    }

    fn concurrent_async(&self, op: Op, callers: usize, duration: Duration) -> Option<Throughput> {
        Some(self.async_callers(op, callers, duration))
    }

    fn concurrent(&self, op: Op, callers: usize, duration: Duration, payload: &[u8]) -> Throughput {
        let client = self.client.clone();
        let value = Bytes::copy_from_slice(payload);
        client
            .open::<AtomicBytes>("bench/blob")
            .set(value)
            .expect("set");
        run_callers(
            callers,
            duration,
            || {
                (
                    client.open::<AtomicI64>("bench/counter"),
                    client.open::<AtomicBytes>("bench/blob"),
                )
            },
            move |(counter, blob)| match op {
                Op::Incr => {
                    counter.fetch_add(1).expect("fetch_add");
                }
                Op::Get | Op::Set => {
                    assert_eq!(blob.get().expect("get").len(), 1024);
                }
            },
        )
    }
}

impl Crucial {
    /// `clients` separate clients, each with its own connection and one thread
    /// calling `fetch_add` in a loop (many Lambdas, each one connection and one
    /// caller); `spin` overrides the client's default busy-wait.
    pub fn separate_clients(
        &self,
        clients: usize,
        duration: Duration,
        spin: Option<Duration>,
    ) -> Throughput {
        let addr = self.addr.clone();
        run_callers(
            clients,
            duration,
            move || {
                let mut config = crucial::Config::new().server(addr.clone());
                if let Some(spin) = spin {
                    config = config.spin(spin);
                }
                let client = config.connect().expect("connect");
                client.open::<AtomicI64>("bench/counter")
            },
            |counter| {
                counter.fetch_add(1).expect("fetch_add");
            },
        )
    }

    fn async_callers(&self, op: Op, callers: usize, duration: Duration) -> Throughput {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let counter = self.client.open::<AtomicI64>("bench/counter");
        let blob = self.client.open::<AtomicBytes>("bench/blob");
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let (counter, blob, stop, done) = (
                    counter.clone(),
                    blob.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&done),
                );
                rt.spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        match op {
                            Op::Incr => {
                                counter.fetch_add_async(1).await.expect("fetch_add");
                            }
                            Op::Get | Op::Set => {
                                assert_eq!(blob.get_async().await.expect("get").len(), 1024);
                            }
                        }
                        n += 1;
                    }
                    done.fetch_add(n, Ordering::Relaxed);
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        rt.block_on(async {
            for t in tasks {
                t.await.expect("task");
            }
        });
        Throughput {
            ops: done.load(Ordering::Relaxed),
            elapsed: start.elapsed(),
        }
    }
}

/// `redis-server` in a child process.
pub struct Redis {
    _process: Process,
    url: String,
    /// The server's `host:port`.
    pub addr: String,
}

impl Redis {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self._process.0.id()
    }

    /// A new connection to the server.
    pub fn connect(&self) -> redis::Connection {
        self.connection()
    }
}

impl Redis {
    /// Starts `redis-server` on a free loopback port, without persistence.
    pub fn start() -> Result<Redis, String> {
        Redis::start_with(&[])
    }

    /// Starts `redis-server` with extra arguments (they override the
    /// defaults: `--appendonly yes --appendfsync always --dir DIR`, say).
    pub fn start_with(extra: &[&str]) -> Result<Redis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server ({e}); install it with `apt-get install redis-server`"))?;
        let process = Process(child);
        let url = format!("redis://127.0.0.1:{port}/");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ready.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Redis {
            _process: process,
            url,
            addr: format!("127.0.0.1:{port}"),
        })
    }

    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection())
            .expect("redis connection")
    }
}

impl System for Redis {
    fn name(&self) -> &str {
        "redis"
    }

    fn server_pid(&self) -> u32 {
        self.pid()
    }

    fn sequential(&self, op: Op, ops: usize, payload: &[u8]) -> Latencies {
        let mut con = self.connection();
        redis::cmd("SET")
            .arg("bench/blob")
            .arg(payload)
            .query::<()>(&mut con)
            .expect("SET");
        match op {
            Op::Incr => time_each(ops, || {
                redis::cmd("INCR")
                    .arg("bench/counter")
                    .query::<i64>(&mut con)
                    .expect("INCR");
            }),
            Op::Set => time_each(ops, || {
                redis::cmd("SET")
                    .arg("bench/blob")
                    .arg(payload)
                    .query::<()>(&mut con)
                    .expect("SET");
            }),
            Op::Get => time_each(ops, || {
                let v: Vec<u8> = redis::cmd("GET")
                    .arg("bench/blob")
                    .query(&mut con)
                    .expect("GET");
                assert_eq!(v.len(), 1024);
            }),
        }
    }

    fn concurrent(
        &self,
        op: Op,
        callers: usize,
        duration: Duration,
        _payload: &[u8],
    ) -> Throughput {
        run_callers(
            callers,
            duration,
            || self.connection(),
            move |con| match op {
                Op::Incr => {
                    redis::cmd("INCR")
                        .arg("bench/counter")
                        .query::<i64>(con)
                        .expect("INCR");
                }
                Op::Get | Op::Set => {
                    let v: Vec<u8> = redis::cmd("GET").arg("bench/blob").query(con).expect("GET");
                    assert_eq!(v.len(), 1024);
                }
            },
        )
    }
}

/// The floor: a blocking ping-pong over loopback TCP, a request of a fixed
/// size answered by a reply of a fixed size, between this process and an echo
/// process that does nothing else. No store can answer faster over the same wire.
pub struct Floor {
    _process: Process,
    stream: std::net::TcpStream,
    request: Vec<u8>,
    reply: Vec<u8>,
}

/// Body of the `--echo` child: answers every `request`-byte message with `reply` bytes.
pub fn serve_echo(request: usize, reply: usize) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; request];
            let answer = vec![0u8; reply];
            while stream.read_exact(&mut buf).is_ok() {
                if stream.write_all(&answer).is_err() {
                    break;
                }
            }
        });
    }
}

impl Floor {
    /// The echo process, for messages of `request` and `reply` bytes.
    pub fn start(request: usize, reply: usize) -> Floor {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(["--echo", &request.to_string(), &reply.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the echo process");
        let addr = read_addr(&mut child);
        let stream = std::net::TcpStream::connect(addr).expect("connect to echo");
        stream.set_nodelay(true).expect("nodelay");
        Floor {
            _process: Process(child),
            stream,
            request: vec![0x5a; request],
            reply: vec![0; reply],
        }
    }

    /// `ops` round trips, each timed.
    pub fn sequential(&mut self, ops: usize) -> Latencies {
        use std::io::{Read, Write};
        let Floor {
            stream,
            request,
            reply,
            ..
        } = self;
        time_each(ops, || {
            stream.write_all(request).expect("echo write");
            stream.read_exact(reply).expect("echo read");
        })
    }
}

/// The frame sizes of one `fetch_add(1)` call and its reply, as the client sends them.
pub fn incr_frame_sizes() -> (usize, usize) {
    use crucial::__private::registry::registry;
    use crucial_protocol::codec;
    use crucial_protocol::wire::{self, Call, ObjectRef, Request};
    let fingerprint = registry()
        .shared_type("crucial::AtomicI64")
        .and_then(|t| t.method("fetch_add"))
        .map(|m| m.id.fingerprint)
        .expect("fetch_add is registered");
    let args = codec::encode(&(1i64,)).expect("args");
    let payload = Request::Call(Call {
        object: ObjectRef {
            type_name: "crucial::AtomicI64",
            key: "bench/counter",
        },
        method: "fetch_add",
        fingerprint,
        args: &args,
        timeout_ms: 0,
    })
    .encode()
    .expect("call");
    let mut request = Vec::new();
    wire::write_frame(&mut request, 1, &payload);
    let mut reply = Vec::new();
    wire::encode_outcome(&mut reply, 1, &Ok(codec::encode(&1000i64).expect("value")));
    (request.len(), reply.len())
}

/// An unrelated process that keeps one core busy while it lives (the bench
/// binary re-executed with `--spin`).
pub fn busy_core() -> Process {
    let child = Command::new(std::env::current_exe().expect("own path"))
        .arg("--spin")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the busy process");
    std::thread::sleep(Duration::from_millis(200));
    Process(child)
}

/// What one `redis-benchmark` run printed.
#[derive(Debug, Clone, Copy)]
pub struct RedisBenchmark {
    /// Requests per second.
    pub per_second: f64,
    /// Median latency, microseconds.
    pub p50: f64,
    /// 99th percentile latency, microseconds.
    pub p99: f64,
}

/// Runs `redis-benchmark -t incr` against the Redis at `addr` with `clients`
/// connections, pipeline depth `pipeline` and `requests` requests in all:
/// Redis measured by its own client at its best. `None` when the tool is
/// missing or printed something unexpected.
pub fn redis_benchmark_incr(
    addr: &str,
    clients: usize,
    pipeline: usize,
    requests: u64,
) -> Option<RedisBenchmark> {
    let port = addr.rsplit(':').next()?;
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", port, "-t", "incr", "--csv"])
        .args(["-c", &clients.to_string(), "-P", &pipeline.to_string()])
        .args(["-n", &requests.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let fields: Vec<f64> = text
        .lines()
        .find(|l| l.starts_with("\"INCR\""))?
        .split(',')
        .skip(1)
        .map(|v| v.trim_matches('"').parse().ok())
        .collect::<Option<_>>()?;
    Some(RedisBenchmark {
        per_second: *fields.first()?,
        p50: fields.get(3)? * 1e3,
        p99: fields.get(5)? * 1e3,
    })
}
