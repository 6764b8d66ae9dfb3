//! Starting real node processes for integration tests, and the fixture types
//! they host.

#![allow(dead_code)]

pub mod bank;
#[cfg(feature = "cluster")]
pub mod cluster;
#[cfg(target_os = "linux")]
pub mod disk;
pub mod fixtures;
pub mod shaped;

use crucial::RemoteError;
use crucial_protocol::wire::{self, decode_reply, Frame, FrameDecoder, Outcome, Request};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A node process, killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// `http://host:port/metrics`, when started with `--metrics`.
    pub metrics: Option<String>,
    /// The admin plane's `host:port`, when started with `--admin`.
    pub admin: Option<String>,
    /// What it printed on stderr so far.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerProcess {
    /// Starts `command` (which must print `... listening on ADDR`) and waits for its address.
    pub fn start(command: Command) -> ServerProcess {
        ServerProcess::try_start(command).unwrap_or_else(|stderr| {
            panic!("server exited before listening; its stderr:\n{stderr}")
        })
    }

    /// [`ServerProcess::start`], or `Err` with what the process printed on
    /// stderr if it exits before listening (a node refusing its data directory).
    pub fn try_start(mut command: Command) -> Result<ServerProcess, String> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server process");
        // Stderr is passed through to the test's, and kept for the error.
        let stderr = child.stderr.take().expect("piped stderr");
        let kept = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let writer = {
            let kept = std::sync::Arc::clone(&kept);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("{line}");
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    kept.push_str(&line);
                    kept.push('\n');
                }
            })
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The metrics and admin lines, if any, come first.
                if let Some(url) = line.split("metrics at ").nth(1) {
                    let _ = tx.send((0, url.trim().to_string()));
                }
                if let Some(addr) = line.split("admin at ").nth(1) {
                    let _ = tx.send((1, addr.trim().to_string()));
                }
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send((2, addr.trim().to_string()));
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut metrics, mut admin) = (None, None);
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok((0, url)) => metrics = Some(url),
                Ok((1, addr)) => admin = Some(addr),
                Ok((_, addr)) => break addr,
                Err(_) => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                let _ = writer.join();
                let kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                return Err(format!("exited with {status}\n{kept}"));
            }
            assert!(Instant::now() < deadline, "server did not start in 30 s");
        };
        Ok(ServerProcess {
            child,
            addr,
            metrics,
            admin,
            stderr: kept,
        })
    }

    /// The stand-alone `crucial-server` binary on a free port.
    pub fn crucial_server(extra: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crucial-server"));
        command
            .args(["--listen", "127.0.0.1:0", "--workers", "2"])
            .args(extra);
        ServerProcess::start(command)
    }

    /// The `fixture-node` example on a free port: a node that also hosts the
    /// [`fixtures`] types.
    pub fn fixture_node(max_frame: usize) -> ServerProcess {
        ServerProcess::fixture_node_with(&["--max-frame-size", &max_frame.to_string()])
    }

    /// The `fixture-node` example on a free port, with extra flags
    /// (`--data-dir DIR`, ...).
    pub fn fixture_node_with(args: &[&str]) -> ServerProcess {
        ServerProcess::start(fixture_command("fixture-node", args))
    }

    /// `fixture-node-v2` (a changed `Shaped`) on `data_dir`.
    pub fn fixture_node_v2(data_dir: &std::path::Path) -> ServerProcess {
        let dir = data_dir.to_str().expect("a UTF-8 path");
        ServerProcess::start(fixture_command("fixture-node-v2", &["--data-dir", dir]))
    }

    /// A client connected to this node.
    pub fn client(&self) -> crucial::Client {
        crucial::Config::new()
            .server(self.addr.clone())
            .connect()
            .expect("client")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit on its own.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for the node")
    }

    /// Waits for the process to exit on its own, for at most `within`.
    pub fn wait_within(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the node") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the node did not exit in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Kills the process now (SIGKILL: no clean stop, nothing flushed).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fixture node example on a free port with two workers, plus `args`.
pub fn fixture_command(example: &str, args: &[&str]) -> Command {
    let mut command = Command::new(example_binary(example));
    command
        .args(["--listen", "127.0.0.1:0", "--workers", "2"])
        .args(args);
    command
}

/// The path of an example binary of this package, built with this test's
/// features on first use in this process: `cargo test --test x` builds no
/// examples, and one left by a build with other features (say, without
/// `cluster`) would be stale. A build that is fresh costs a no-op `cargo build`.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "--quiet",
            "-p",
            "crucial-server",
            "--example",
            name,
        ]);
        if cfg!(feature = "cluster") {
            build.args(["--features", "cluster"]);
        }
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(
            build.status().expect("run cargo").success(),
            "building example {name} failed"
        );
        built.push(name.to_string());
    }
    path
}

/// `GET` over a plain socket: the status line and the body.
pub fn http_get(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(host).expect("connect to metrics");
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// `POST` of a JSON `body` over a plain socket: the status line and the
/// body of the answer.
pub fn http_post(url: &str, body: &str) -> std::io::Result<(String, String)> {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(host)?;
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no end of headers in {response:?}")))?;
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

/// The value of one sample line (`name{labels} value`) of a metrics page.
pub fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in:\n{page}"))
        .parse()
        .unwrap()
}

/// Polls `done` every few milliseconds until it holds; panics with `what` after 30 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A fresh data directory, removed when dropped.
pub struct DataDir(pub std::path::PathBuf);

impl DataDir {
    /// `crucial-test-<name>-<pid>` in the temporary directory, emptied.
    pub fn new(name: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!("crucial-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }

    /// The path, as a command-line argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Calls parked now on the object with key `key`, as the node lists them.
pub fn parked_on(client: &crucial::Client, key: &str) -> u32 {
    client
        .list_objects()
        .expect("list objects")
        .into_iter()
        .filter(|o| o.key == key)
        .map(|o| o.parked)
        .sum()
}

/// Raw frames of the data-plane protocol, so that a request can be re-sent
/// with the same client and request ids after a restart, as a client does.
pub struct RawConnection {
    stream: TcpStream,
    decoder: FrameDecoder,
    buf: bytes::BytesMut,
}

impl RawConnection {
    /// Connects and says `Hello` as client `client_id`.
    pub fn open(addr: &str, client_id: u64) -> RawConnection {
        RawConnection::open_with(addr, client_id, None).expect("hello accepted")
    }

    /// Connects and says `Hello` as client `client_id` with `token`;
    /// `Err` if the node refuses the handshake.
    pub fn open_with(
        addr: &str,
        client_id: u64,
        token: Option<&str>,
    ) -> Result<RawConnection, RemoteError> {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut conn = RawConnection {
            stream,
            decoder: FrameDecoder::new(wire::DEFAULT_MAX_FRAME),
            buf: bytes::BytesMut::new(),
        };
        let hello = Request::Hello {
            protocol: wire::PROTOCOL_VERSION,
            client_id,
            token: token.map(wire::Token),
        };
        conn.request(0, &hello.encode().expect("hello"))?;
        Ok(conn)
    }

    /// Sends `payload` as request `id` and waits for its reply.
    pub fn request(&mut self, id: u64, payload: &[u8]) -> Outcome {
        let mut out = Vec::new();
        wire::write_frame(&mut out, id, payload);
        self.stream.write_all(&out).expect("write");
        loop {
            if let Some(Frame::Complete { id: got, payload }) = self.decoder.decode(&mut self.buf) {
                assert_eq!(got, id);
                return decode_reply(&payload)
                    .expect("a reply")
                    .map(|bytes| bytes.to_vec());
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "the node closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
