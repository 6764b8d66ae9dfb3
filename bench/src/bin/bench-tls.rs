//! What TLS and tokens cost: one caller's latency and 64 callers'
//! throughput of an increment, on a Crucial node without and with TLS and
//! a credentials file, and on Redis without and with its `tls-port`, all
//! measured in the same run on loopback.
//!
//! ```text
//! cargo run --release -p crucial-bench --bin bench-tls [-- --seconds 3 --ops 20000]
//! ```

use crucial::{AtomicI64, Client};
use crucial_bench::stats::{Latencies, Throughput};
use crucial_bench::systems::{read_addr, run_callers, time_each, Crucial, Process};
use rustls::pki_types::pem::PemObject;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-000000000000000001";

/// A test CA and a certificate for `127.0.0.1` and `localhost`, as PEM
/// files in `dir`: (CA, certificate, key).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate")
        .signed_by(&key, &ca, &ca_key)
        .expect("signed");
    let files = (
        dir.join("ca.pem"),
        dir.join("node.pem"),
        dir.join("node.key"),
    );
    std::fs::write(&files.0, ca.pem()).expect("write");
    std::fs::write(&files.1, cert.pem()).expect("write");
    std::fs::write(&files.2, key.serialize_pem()).expect("write");
    files
}

/// A connection that speaks enough RESP for `INCR`.
struct Resp<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Resp<S> {
    fn incr(&mut self) -> i64 {
        self.stream
            .write_all(b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n")
            .expect("send INCR");
        self.buf.clear();
        let mut byte = [0u8; 1];
        while !self.buf.ends_with(b"\r\n") {
            self.stream.read_exact(&mut byte).expect("read the reply");
            self.buf.push(byte[0]);
        }
        let reply = std::str::from_utf8(&self.buf).expect("text");
        reply
            .strip_prefix(':')
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("INCR answered {reply:?}"))
    }
}

/// A Redis server, plain or TLS, and how to reach it.
struct Redis {
    _process: Process,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Redis {
    fn start(tls: Option<(&Path, &Path, &Path)>) -> Result<Redis, String> {
        let port = free_port();
        let mut command = Command::new("redis-server");
        command.args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]);
        let client = match tls {
            None => {
                command.args(["--port", &port.to_string()]);
                None
            }
            Some((ca, cert, key)) => {
                command.args(["--port", "0", "--tls-port", &port.to_string()]);
                command.args(["--tls-auth-clients", "no"]);
                for (flag, path) in [
                    ("--tls-cert-file", cert),
                    ("--tls-key-file", key),
                    ("--tls-ca-cert-file", ca),
                ] {
                    command.args([flag, path.to_str().expect("utf-8")]);
                }
                Some(client_config(ca))
            }
        };
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let redis = Redis {
            _process: Process(child),
            port,
            tls: client,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not listen in 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    /// A new connection, as a boxed RESP client.
    fn connect(&self) -> Box<dyn FnMut() -> i64 + Send> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        tcp.set_nodelay(true).expect("nodelay");
        match &self.tls {
            None => {
                let mut resp = Resp {
                    stream: tcp,
                    buf: Vec::new(),
                };
                Box::new(move || resp.incr())
            }
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
                let conn =
                    rustls::ClientConnection::new(Arc::clone(config), name).expect("session");
                let mut resp = Resp {
                    stream: rustls::StreamOwned::new(conn, tcp),
                    buf: Vec::new(),
                };
                Box::new(move || resp.incr())
            }
        }
    }
}

fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("CA") {
        roots.add(cert.expect("CA")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

struct Row {
    name: &'static str,
    one: Latencies,
    many: Throughput,
}

fn crucial_row(name: &'static str, client: &Client, ops: usize, seconds: Duration) -> Row {
    let counter = client.open::<AtomicI64>("bench/tls");
    let one = time_each(ops, || {
        counter.fetch_add(1).expect("fetch_add");
    });
    let many = run_callers(
        64,
        seconds,
        || client.open::<AtomicI64>("bench/tls"),
        |counter| {
            counter.fetch_add(1).expect("fetch_add");
        },
    );
    Row { name, one, many }
}

fn redis_row(name: &'static str, redis: &Redis, ops: usize, seconds: Duration) -> Row {
    let mut conn = redis.connect();
    let one = time_each(ops, || {
        conn();
    });
    let many = run_callers(
        64,
        seconds,
        || redis.connect(),
        |conn| {
            conn();
        },
    );
    Row { name, one, many }
}

/// The value after `name` on the command line (`default` without one; a
/// value that does not parse is an error).
fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
    {
        None => default,
        Some(value) => value.parse().unwrap_or_else(|_| {
            eprintln!("error: {name} {value}: not a number");
            std::process::exit(2)
        }),
    }
}

fn main() {
    if crucial_bench::serve_if_asked() {
        return;
    }
    let seconds = Duration::from_secs_f64(arg("--seconds", 3.0));
    let ops = arg("--ops", 20_000);
    let dir = crucial_bench::scratch_dir(None, "tls");
    let (ca, cert, key) = test_ca(&dir);
    let credentials = dir.join("credentials");
    std::fs::write(&credentials, format!("app bench {TOKEN}\n")).expect("credentials");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }

    let mut rows = Vec::new();
    let plain = Crucial::start("multi-thread");
    rows.push(crucial_row("crucial", &plain.client, ops, seconds));
    drop(plain);
    // The node under test with credentials and TLS (`--serve` reads them
    // from the environment), then also with a byte quota (every write
    // measures its object).
    for (name, max_bytes) in [
        ("crucial TLS + token", None),
        ("  + byte quota", Some("1000000000")),
    ] {
        let mut command = Command::new(std::env::current_exe().expect("own path"));
        command
            .args(["--serve", "multi-thread"])
            .env("CRUCIAL_CREDENTIALS", &credentials)
            .env("CRUCIAL_TLS_CERT", &cert)
            .env("CRUCIAL_TLS_KEY", &key)
            .stdout(Stdio::piped());
        if let Some(max_bytes) = max_bytes {
            command.env("BENCH_APP_MAX_BYTES", max_bytes);
        }
        let mut child = command.spawn().expect("start the node");
        let addr = read_addr(&mut child);
        let secured = Process(child);
        let client = crucial::Config::new()
            .server(addr)
            .token(crucial::Token::new(TOKEN))
            .tls(crucial::Tls::with_ca_file(&ca).expect("CA"))
            .connect()
            .expect("client");
        rows.push(crucial_row(name, &client, ops, seconds));
        drop(client);
        drop(secured);
    }
    match (Redis::start(None), Redis::start(Some((&ca, &cert, &key)))) {
        (Ok(redis), Ok(redis_tls)) => {
            rows.push(redis_row("redis", &redis, ops, seconds));
            drop(redis);
            rows.push(redis_row("redis TLS", &redis_tls, ops, seconds));
        }
        (Err(e), _) | (_, Err(e)) => eprintln!("redis skipped: {e}"),
    }
    print(&rows, seconds);
    let _ = std::fs::remove_dir_all(&dir);
}

fn print(rows: &[Row], seconds: Duration) {
    println!(
        "one caller (sequential increments) and 64 callers (threads, {:.1} s), loopback",
        seconds.as_secs_f64()
    );
    println!(
        "{:<22} {:>10} {:>10} {:>14}",
        "system", "p50 (µs)", "p99 (µs)", "64 callers/s"
    );
    for row in rows {
        println!(
            "{:<22} {:>10.1} {:>10.1} {:>14.0}",
            row.name,
            row.one.p50(),
            row.one.p99(),
            row.many.per_second()
        );
    }
    let pair = |a: &str, b: &str| {
        let find = |n: &str| rows.iter().find(|r| r.name == n);
        if let (Some(a), Some(b)) = (find(a), find(b)) {
            println!(
                "{} against {}: p50 {:+.1} µs, 64-caller throughput {:+.1} %",
                b.name,
                a.name,
                b.one.p50() - a.one.p50(),
                (b.many.per_second() / a.many.per_second() - 1.0) * 100.0
            );
        }
    };
    pair("crucial", "crucial TLS + token");
    pair("redis", "redis TLS");
    pair("redis TLS", "crucial TLS + token");
}
