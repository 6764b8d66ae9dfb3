//! A cluster to measure: etcd (Debian's `etcd-server`) and node processes
//! (this bench binary re-executed with `--serve-node`, i.e. `crucial-server`'s
//! command line) on loopback.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An etcd process with a scratch data directory.
pub struct Etcd {
    child: Child,
    /// Its client endpoint (`host:port`).
    pub endpoint: String,
    dir: std::path::PathBuf,
}

impl Etcd {
    /// Starts etcd and waits until it accepts connections.
    pub fn start() -> Result<Etcd, String> {
        let dir = crate::scratch_dir(None, "etcd");
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .args(["--data-dir", &dir.join("data").to_string_lossy()])
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start etcd ({e}): `sudo apt-get install etcd-server`"))?;
        let endpoint = format!("127.0.0.1:{client}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&endpoint).is_err() {
            if Instant::now() > deadline {
                return Err("etcd did not start in 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Etcd {
            child,
            endpoint,
            dir,
        })
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One node process of a cluster.
pub struct Node {
    child: Child,
    /// Data-plane address.
    pub addr: String,
    /// Admin-plane address.
    pub admin: String,
}

impl Node {
    /// Starts a node of cluster `name` on `port` (0: any) and waits until it
    /// joined and listens.
    pub fn start(etcd: &Etcd, name: &str, port: u16) -> Node {
        Node::start_with(etcd, name, port, &[])
    }

    /// [`Node::start`] with more of `crucial-server`'s flags.
    pub fn start_with(etcd: &Etcd, name: &str, port: u16, extra: &[&str]) -> Node {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .arg("--serve-node")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin", "127.0.0.1:0"])
            .args(["--etcd", &etcd.endpoint, "--cluster", name])
            .args(extra)
            .env("CRUCIAL_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a node");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut admin = String::new();
        let addr = loop {
            let line = lines
                .next()
                .expect("the node printed its address")
                .expect("read");
            if let Some(a) = line.split("admin at ").nth(1) {
                admin = a.trim().to_string();
            }
            if let Some(a) = line.split("listening on ").nth(1) {
                break a.trim().to_string();
            }
        };
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Node { child, addr, admin }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no handoff, no goodbye).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most 30 s) until every node of `nodes` has `count` members in
/// its view and has settled it (asked on their admin planes).
pub fn wait_for_members(nodes: &[Node], count: usize) {
    use crucial_server::admin::{cli, pb};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut clients = Vec::new();
        for n in nodes {
            clients.push(cli::connect(&n.admin).await.expect("admin plane"));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut statuses = Vec::new();
            for client in &mut clients {
                statuses.push(
                    client
                        .status(pb::StatusRequest {})
                        .await
                        .map(|r| r.into_inner()),
                );
            }
            let ready = statuses.iter().all(|s| {
                s.as_ref()
                    .is_ok_and(|s| s.members.len() == count && s.settled)
            });
            if ready {
                return;
            }
            if Instant::now() > deadline {
                for (n, s) in nodes.iter().zip(statuses) {
                    eprintln!(
                        "{}: {:?}",
                        n.addr,
                        s.map(|s| (s.epoch, s.members, s.settled))
                    );
                }
                panic!("the cluster did not form");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// Body of the `--serve-node` child: `crucial-server`'s command line with
/// the arguments after `--serve-node`.
pub fn serve_node_if_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == "--serve-node") else {
        return false;
    };
    let mut node_args = vec!["crucial-server".to_string()];
    node_args.extend(args[at + 1..].iter().cloned());
    crucial_server::cli::main_with(node_args);
    true
}
