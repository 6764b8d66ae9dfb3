//! A real etcd and cluster nodes for the cluster tests: etcd from Debian's
//! `etcd-server` (`cargo xtask test` installs it) on free loopback ports, nodes as
//! `fixture-node` processes that join it.

use super::{example_binary, DataDir, RawConnection, ServerProcess};
use crucial::ObjectInfo;
use crucial_protocol::codec;
use crucial_protocol::wire::Request;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A client of the nodes at `addrs` (it learns the rest of the view from them).
pub fn connect(addrs: &[String]) -> crucial::Client {
    addrs
        .iter()
        .fold(crucial::Config::new(), |config, addr| {
            config.server(addr.clone())
        })
        .connect()
        .expect("client")
}

/// Waits until every node's view has exactly `count` members.
pub fn wait_for_views(nodes: &[&ServerProcess], count: usize) {
    super::wait_until(&format!("every node sees {count} members"), || {
        nodes.iter().all(|n| view_of(&n.addr).nodes.len() == count)
    });
}

/// A free loopback port (bound, then released), below the kernel's
/// ephemeral range: a node restarted at its old port after a crash finds it
/// free, where a port from that range may meanwhile be the local end of any
/// outgoing connection on the machine (CI once saw `Address already in use`).
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (first, span) = (10_000u16, low.saturating_sub(10_000).max(1));
    let mut seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for _ in 0..1_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = first + (seed % u64::from(span)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An etcd server process with its own data directory, killed when dropped.
pub struct Etcd {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: DataDir,
    tls: Option<EtcdTls>,
}

/// etcd serving TLS: its certificate, key and the CA of its clients'.
struct EtcdTls {
    cert: String,
    key: String,
    ca: String,
    /// A second, plain client port, for the test's own setup requests.
    plain_port: u16,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub fn start(name: &str) -> Etcd {
        Etcd::start_with(name, None)
    }

    /// Starts etcd serving TLS with `cert` and `key` on its client port,
    /// asking its clients for a certificate signed by `ca`
    /// (`--client-cert-auth`), with simple tokens that expire after one
    /// second unused; and a plain client port for [`Etcd::enable_auth`].
    pub fn start_tls(
        name: &str,
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Etcd {
        let path = |p: &std::path::Path| p.to_str().expect("a UTF-8 path").to_string();
        Etcd::start_with(
            name,
            Some(EtcdTls {
                cert: path(cert),
                key: path(key),
                ca: path(ca),
                plain_port: free_port(),
            }),
        )
    }

    fn start_with(name: &str, tls: Option<EtcdTls>) -> Etcd {
        let mut etcd = Etcd {
            child: None,
            client_port: free_port(),
            peer_port: free_port(),
            dir: DataDir::new(&format!("etcd-{name}")),
            tls,
        };
        etcd.spawn();
        etcd
    }

    fn spawn(&mut self) {
        let (client, listen) = match &self.tls {
            None => {
                let url = format!("http://127.0.0.1:{}", self.client_port);
                (url.clone(), url)
            }
            Some(tls) => {
                let url = format!("https://127.0.0.1:{}", self.client_port);
                let plain = format!("http://127.0.0.1:{}", tls.plain_port);
                (url.clone(), format!("{url},{plain}"))
            }
        };
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new("etcd");
        if let Some(tls) = &self.tls {
            command
                .args(["--cert-file", &tls.cert, "--key-file", &tls.key])
                .args(["--trusted-ca-file", &tls.ca, "--client-cert-auth"])
                .args(["--auth-token-ttl", "1"]);
        }
        let log = std::fs::File::create(format!("{}.log", self.dir.arg())).expect("etcd log");
        let child = command
            .args(["--data-dir", self.dir.arg()])
            .args(["--listen-client-urls", &listen])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start etcd ({e}): the cluster tests need it on PATH; \
                     `cargo xtask test` installs it, or `sudo apt-get install etcd-server`"
                )
            });
        self.child = Some(child);
        let mut ports = vec![self.endpoint()];
        if let Some(tls) = &self.tls {
            ports.push(format!("127.0.0.1:{}", tls.plain_port));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in ports {
            while std::net::TcpStream::connect(&port).is_err() {
                self.check_alive();
                assert!(Instant::now() < deadline, "etcd did not start in 20 s");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Panics with etcd's log if its process ended.
    pub fn check_alive(&mut self) {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
            let log =
                std::fs::read_to_string(format!("{}.log", self.dir.arg())).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            panic!(
                "etcd exited ({status}); the end of its log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    /// `host:port` of its client endpoint.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `host:port` of the plain client port of an etcd serving TLS.
    pub fn plain_endpoint(&self) -> String {
        let tls = self.tls.as_ref().expect("an etcd started with start_tls");
        format!("127.0.0.1:{}", tls.plain_port)
    }

    /// Turns etcd's authentication on (through its JSON gateway on the
    /// plain port): a `root` user, and `user` with `password`, allowed to
    /// read and write the keys under `prefix` only.
    pub fn enable_auth(&mut self, user: &str, password: &str, prefix: &str) {
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().expect("a prefix") += 1;
        let steps = [
            (
                "user/add",
                r#"{"name":"root","password":"root-password"}"#.to_string(),
            ),
            ("role/add", r#"{"name":"root"}"#.to_string()),
            ("user/grant", r#"{"user":"root","role":"root"}"#.to_string()),
            (
                "user/add",
                format!(r#"{{"name":"{user}","password":"{password}"}}"#),
            ),
            ("role/add", r#"{"name":"nodes"}"#.to_string()),
            (
                "role/grant",
                format!(
                    r#"{{"name":"nodes","perm":{{"permType":"READWRITE","key":"{}","range_end":"{}"}}}}"#,
                    base64(prefix.as_bytes()),
                    base64(&end)
                ),
            ),
            (
                "user/grant",
                format!(r#"{{"user":"{user}","role":"nodes"}}"#),
            ),
            ("enable", "{}".to_string()),
        ];
        for (path, body) in steps {
            let url = format!("http://{}/v3/auth/{path}", self.plain_endpoint());
            // A fresh etcd may reset connections to its gateway for a
            // moment: ask again until it answers.
            let deadline = Instant::now() + Duration::from_secs(20);
            let (status, reply) = loop {
                match super::http_post(&url, &body) {
                    Ok(answer) => break answer,
                    Err(e) if Instant::now() < deadline => {
                        self.check_alive();
                        eprintln!("etcd's gateway: {e}; asking again");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => panic!("etcd /v3/auth/{path}: {e}"),
                }
            };
            // (A step asked again may find its first try done.)
            let done = reply.contains("already exists") || reply.contains("already granted");
            assert!(
                done || (status.contains("200") && !reply.contains("\"error\"")),
                "etcd /v3/auth/{path}: {status} {reply}"
            );
        }
    }

    /// Kills it (its data stays for [`Etcd::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A node of cluster `name` on this etcd (`fixture-node`, two workers,
    /// a lease of 2 s, an admin plane), with extra flags.
    pub fn node(&self, name: &str, extra: &[&str]) -> ServerProcess {
        self.node_at(name, 0, extra)
    }

    /// [`Etcd::node`] listening on `port` (0: any).
    pub fn node_at(&self, name: &str, port: u16, extra: &[&str]) -> ServerProcess {
        self.node_via(&self.endpoint(), name, port, extra)
    }

    /// [`Etcd::node_at`] reaching etcd at `endpoint` (a [`Link`] to it).
    pub fn node_via(&self, endpoint: &str, name: &str, port: u16, extra: &[&str]) -> ServerProcess {
        // A port picked here may be taken by another test's pick meanwhile:
        // then another one.
        for _ in 0..4 {
            match ServerProcess::try_start(Etcd::command(endpoint, name, port, extra)) {
                Err(stderr) if port == 0 && stderr.contains("Address already in use") => continue,
                started => {
                    return started.unwrap_or_else(|stderr| {
                        panic!("server exited before listening; its stderr:\n{stderr}")
                    })
                }
            }
        }
        ServerProcess::start(Etcd::command(endpoint, name, port, extra))
    }

    /// [`Etcd::node`], or `Err` with its stderr if it exits before listening.
    pub fn try_node(&self, name: &str, extra: &[&str]) -> Result<ServerProcess, String> {
        self.try_node_via(&self.endpoint(), name, extra)
    }

    /// [`Etcd::try_node`] reaching etcd at `endpoint`.
    pub fn try_node_via(
        &self,
        endpoint: &str,
        name: &str,
        extra: &[&str],
    ) -> Result<ServerProcess, String> {
        ServerProcess::try_start(Etcd::command(endpoint, name, 0, extra))
    }

    /// The command that starts [`Etcd::node_at`] (to run it elsewhere, as
    /// on a small disk).
    pub fn node_command(&self, name: &str, port: u16, extra: &[&str]) -> Command {
        Etcd::command(&self.endpoint(), name, port, extra)
    }

    fn command(endpoint: &str, name: &str, port: u16, extra: &[&str]) -> Command {
        let endpoint = endpoint.to_string();
        // Not 0: a crashed node is restarted at its port (see `free_port`).
        let port = match port {
            0 => free_port(),
            port => port,
        };
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "--etcd",
            &endpoint,
            "--cluster",
            name,
            "--admin",
            "127.0.0.1:0",
        ];
        if !extra.contains(&"--lease-ttl") {
            args.extend_from_slice(&["--lease-ttl", "2"]);
        }
        args.extend_from_slice(extra);
        let mut command = Command::new(example_binary("fixture-node"));
        command
            .args(["--listen", &listen, "--workers", "2"])
            .args(&args);
        command
    }
}

/// Standard base64 with padding (etcd's JSON gateway carries keys so).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The port of a node's data address.
pub fn port_of(node: &ServerProcess) -> u16 {
    node.addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// The objects one node holds (asked directly: no cluster-wide listing).
pub fn objects_on(addr: &str) -> Vec<ObjectInfo> {
    let mut conn = RawConnection::open(addr, 0x0b5e_77e5);
    let reply = conn
        .request(1, &Request::ListObjects.encode().expect("encode"))
        .unwrap_or_else(|e| panic!("{addr} did not list its objects: {e}"));
    codec::decode(&reply).expect("a listing")
}

/// The view one node has.
pub fn view_of(addr: &str) -> crucial_protocol::placement::View {
    let mut conn = RawConnection::open(addr, 0x0b5e_77e6);
    let reply = conn
        .request(1, &Request::View.encode().expect("encode"))
        .unwrap_or_else(|e| panic!("{addr} did not say its view: {e}"));
    let view: Option<crucial_protocol::placement::View> = codec::decode(&reply).expect("a view");
    view.expect("a node in a cluster has a view")
}

/// Sends SIGTERM (a clean stop: a cluster member drains first).
pub fn terminate(node: &ServerProcess) {
    let status = Command::new("kill")
        .args(["-TERM", &node.pid().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
}

/// Runs `crucial-admin --node ADMIN ARGS.. --json` and parses what it prints;
/// `Err` carries its stderr if it failed.
pub fn admin(node: &ServerProcess, args: &[&str]) -> Result<serde_json::Value, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_crucial-admin"))
        .args([
            "--node",
            node.admin.as_deref().expect("a node with --admin"),
        ])
        .args(args)
        .arg("--json")
        .output()
        .expect("run crucial-admin");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A TCP proxy in front of a node that holds every connection unforwarded
/// while closed: the node looks alive to etcd but unreachable to its peers.
pub struct Proxy {
    /// Where it listens.
    pub addr: String,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    /// A closed proxy to `target` (set later with [`Proxy::forward_to`]).
    pub fn start() -> (Proxy, std::sync::Arc<std::sync::Mutex<Option<String>>>) {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let open = Arc::new(AtomicBool::new(false));
        let target: Arc<Mutex<Option<String>>> = Arc::default();
        let (gate, to) = (Arc::clone(&open), Arc::clone(&target));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (gate, to) = (Arc::clone(&gate), Arc::clone(&to));
                std::thread::spawn(move || {
                    while !gate.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let Some(target) = to.lock().unwrap().clone() else {
                        return;
                    };
                    let Ok(server) = std::net::TcpStream::connect(target) else {
                        return;
                    };
                    forward(client, server);
                });
            }
        });
        (Proxy { addr, open }, target)
    }

    /// Starts forwarding (connections held so far go through now).
    pub fn open(&self) {
        self.open.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// A TCP link to `target` that can be cut: [`Link::cut`] closes every
/// connection through it and holds new ones (unanswered, as behind a
/// partition) until [`Link::heal`].
pub struct Link {
    /// Where it listens.
    pub addr: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Both ends of every connection forwarded, to close on a cut.
    live: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    /// Microseconds each chunk of bytes waits before it is passed on.
    delay: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Link {
    /// A working link to `target`.
    pub fn to(target: &str) -> Link {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the link");
        let addr = listener.local_addr().expect("addr").to_string();
        let up = Arc::new(AtomicBool::new(true));
        let live: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let delay = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (gate, open, target) = (Arc::clone(&up), Arc::clone(&live), target.to_string());
        let slow = Arc::clone(&delay);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (gate, open, target) = (Arc::clone(&gate), Arc::clone(&open), target.clone());
                let slow = Arc::clone(&slow);
                std::thread::spawn(move || {
                    while !gate.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let Ok(server) = std::net::TcpStream::connect(&target) else {
                        return;
                    };
                    {
                        let mut open = open.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                    }
                    forward_slowly(client, server, slow);
                });
            }
        });
        Link {
            addr,
            up,
            live,
            delay,
        }
    }

    /// Makes every chunk of bytes through the link, either way, wait `delay`
    /// first (zero: as fast as it comes).
    pub fn delay(&self, delay: Duration) {
        self.delay.store(
            delay.as_micros() as u64,
            std::sync::atomic::Ordering::Release,
        );
    }

    /// Closes every connection through the link and holds new ones.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::Release);
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Forwards again (connections held meanwhile go through now).
    pub fn heal(&self) {
        self.up.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Copies bytes both ways between two connected streams, each way on its
/// own thread; either side closing closes both.
fn forward(client: std::net::TcpStream, server: std::net::TcpStream) {
    forward_slowly(client, server, std::sync::Arc::default());
}

/// [`forward`], each chunk read waiting `delay` microseconds (read at the
/// time) before it is written on.
fn forward_slowly(
    client: std::net::TcpStream,
    server: std::net::TcpStream,
    delay: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::io::{Read, Write};
    let _ = server.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let pump = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
        let delay = std::sync::Arc::clone(&delay);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                let wait = delay.load(std::sync::atomic::Ordering::Acquire);
                if wait > 0 {
                    std::thread::sleep(Duration::from_micros(wait));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Both);
        })
    };
    pump(client.try_clone().unwrap(), server.try_clone().unwrap());
    pump(server, client);
}

/// How many objects of type `type_name` each node holds, as
/// `crucial-admin objects` lists them, smallest first.
pub fn listed_per_node(node: &ServerProcess, type_name: &str) -> Vec<usize> {
    let listed = admin(node, &["objects"]).expect("crucial-admin objects");
    let mut per_node: std::collections::HashMap<String, usize> = Default::default();
    for row in listed["objects"].as_array().expect("rows") {
        if row["type_name"] == type_name {
            let node = row["node"].as_str().unwrap_or_default().to_string();
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut counts: Vec<usize> = per_node.into_values().collect();
    counts.sort();
    counts
}
