//! Starting real node processes for integration tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A node process, killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// `http://host:port/metrics`, when started with `--metrics`.
    pub metrics: Option<String>,
}

impl ServerProcess {
    /// Starts `command` (which must print `... listening on ADDR`) and waits for its address.
    pub fn start(mut command: Command) -> ServerProcess {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start server process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The metrics line, if any, comes first.
                if let Some(url) = line.split("metrics at ").nth(1) {
                    let _ = tx.send((true, url.trim().to_string()));
                }
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send((false, addr.trim().to_string()));
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut metrics = None;
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok((true, url)) => metrics = Some(url),
                Ok((false, addr)) => break addr,
                Err(_) => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("server exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "server did not start in 30 s");
        };
        ServerProcess {
            child,
            addr,
            metrics,
        }
    }

    /// The stand-alone `crucial-server` binary on a free port.
    pub fn crucial_server(extra: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crucial-server"));
        command
            .args(["--listen", "127.0.0.1:0", "--workers", "2"])
            .args(extra);
        ServerProcess::start(command)
    }

    /// This test binary re-executed as a node (it then knows the test's own
    /// `#[shared]` fixture types), through the test named `child_node`.
    pub fn this_binary(max_frame: usize) -> ServerProcess {
        let mut command = Command::new(std::env::current_exe().expect("test binary path"));
        command
            .args(["child_node", "--exact", "--nocapture", "--test-threads=1"])
            .env("CRUCIAL_TEST_CHILD_NODE", max_frame.to_string());
        ServerProcess::start(command)
    }

    /// A client connected to this node.
    pub fn client(&self) -> crucial::Client {
        crucial::Config::new()
            .server(self.addr.clone())
            .connect()
            .expect("client")
    }

    /// Kills the process now.
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

/// Body of the `child_node` test: serves forever when asked to, returns otherwise.
pub fn child_node_main() {
    let Ok(max_frame) = std::env::var("CRUCIAL_TEST_CHILD_NODE") else {
        return;
    };
    let config = crucial_server::NodeConfig {
        listen: "127.0.0.1:0".into(),
        workers: 2,
        max_frame: max_frame.parse().expect("max frame"),
        ..Default::default()
    };
    crucial_server::run(config, |addr| {
        println!("crucial-server listening on {addr}");
    })
    .expect("child node");
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

/// The value of one sample line (`name{labels} value`) of a metrics page.
pub fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in:\n{page}"))
        .parse()
        .unwrap()
}
