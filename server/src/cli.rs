//! The `crucial-server` command line, reusable as the `main` of an application's
//! server binary (`pi-server` is `crucial_server::cli::main()` plus its types).

use crate::config::{ClusterConfig, Flavor, NodeConfig};
use crate::storage::Durability;
use clap::Parser;
use crucial::__private::registry::registry;
use std::io::Write;

/// A Crucial storage node: holds shared objects and runs their methods.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one; the bound address is printed).
    #[arg(long, env = "CRUCIAL_LISTEN", default_value = "127.0.0.1:7000")]
    pub listen: String,
    /// Worker threads (default: one per core).
    #[arg(long, env = "CRUCIAL_WORKERS")]
    pub workers: Option<usize>,
    /// Runtime flavour.
    #[arg(long, value_enum, default_value = "multi-thread")]
    pub runtime: Flavor,
    /// Largest request payload accepted, in bytes.
    #[arg(long, env = "CRUCIAL_MAX_FRAME_SIZE", default_value_t = crucial_protocol::wire::DEFAULT_MAX_FRAME)]
    pub max_frame_size: usize,
    /// Replies remembered per client to deduplicate retries.
    #[arg(long, default_value_t = 1024)]
    pub dedup_window: usize,
    /// Serve `GET /metrics` (Prometheus text format) on this address, e.g. `127.0.0.1:9100`.
    #[arg(long, env = "CRUCIAL_METRICS")]
    pub metrics: Option<String>,
    /// Unwritten reply bytes of one connection past which its requests are no
    /// longer read until the client reads its replies (backpressure).
    #[arg(long, default_value = "4M", value_parser = parse_bytes)]
    pub max_backlog: usize,
    /// Close a connection whose client stays stuck past the backlog bound this long (seconds).
    #[arg(long, default_value_t = 30.0)]
    pub stall_timeout: f64,
    /// Unsent replies and partly received requests of all connections
    /// together (bytes; k, M, G accepted); past it the connection holding the
    /// most is closed.
    #[arg(long, env = "CRUCIAL_MAX_CLIENT_MEMORY", default_value = "512M", value_parser = parse_bytes)]
    pub max_client_memory: usize,
    /// Client connections at once (default: 3/4 of the descriptor limit, at
    /// most 10 000); past it new ones get a `Limit` error and are closed.
    #[arg(long, env = "CRUCIAL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a new connection has to say `Hello`.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Seconds without a request after which a connection with nothing in
    /// flight, parked or unsent is closed (0: never).
    #[arg(long, env = "CRUCIAL_IDLE_TIMEOUT", default_value_t = 300.0)]
    pub idle_timeout: f64,
    /// Seconds a request frame may take to arrive once it started.
    #[arg(long, default_value_t = 60.0)]
    pub frame_timeout: f64,
    /// Calls parked (blocking methods waiting) for one connection at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_parked_per_connection: usize,
    /// Calls parked on the node at once.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_parked: usize,
    /// Bytes of remembered replies (dedup of retries), all clients together.
    #[arg(long, default_value = "128M", value_parser = parse_bytes)]
    pub dedup_memory: usize,
    /// Bytes of remembered replies of one client.
    #[arg(long, default_value = "4M", value_parser = parse_bytes)]
    pub dedup_client_memory: usize,
    /// Largest reply remembered for a retry; a retry of a call with a larger
    /// reply gets a `Limit` error (the call is not run twice).
    #[arg(long, default_value = "64k", value_parser = parse_bytes)]
    pub dedup_max_reply: usize,
    /// Seconds after which a client not seen is forgotten by the dedup table.
    #[arg(long, default_value_t = 600.0)]
    pub dedup_forget_after: f64,
    /// Keep persistent objects (and the replies deduplicating their calls) in
    /// this directory, and recover them from it at start. Without it,
    /// everything lives in memory and is lost with the node.
    #[arg(long, env = "CRUCIAL_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// When a call on a persistent object is acknowledged: `sync` (after an
    /// fsync shared by every call that finished meanwhile: nothing acknowledged
    /// is ever lost), `interval=MS` (after the write reaches the OS, fsync every
    /// MS: a power failure loses at most MS), `none` (no fsync: a power
    /// failure may lose recent writes). A crash of the node alone loses nothing
    /// in any mode.
    #[arg(long, env = "CRUCIAL_DURABILITY", default_value = "sync", value_parser = parse_durability)]
    pub durability: Durability,
    /// Bytes the persistent objects in memory may take (the size of their
    /// encoded state; suffixes k, M, G accepted: `64M`). Past it, idle objects
    /// are passivated — dropped from memory, read back by their next call.
    /// Needs `--data-dir`.
    #[arg(long, env = "CRUCIAL_MEMORY_LIMIT", value_parser = parse_bytes)]
    pub memory_limit: Option<usize>,
    /// `on`: a small call on a large persistent object is appended to its log
    /// (replayed on recovery: methods must be deterministic) instead of
    /// rewriting the whole state; `off`: every call writes the whole state.
    #[arg(long, env = "CRUCIAL_CALL_LOG", default_value = "on", value_parser = ["on", "off"])]
    pub call_log: String,
    /// The longest a lambda-object workflow may run, in milliseconds (also
    /// the limit of functions that declare none with `time_limit`).
    #[arg(long, env = "CRUCIAL_WORKFLOW_TIME_LIMIT", default_value_t = 10_000)]
    pub workflow_time_limit_ms: u64,
    /// Executions a lambda-object workflow may take (re-executions after
    /// conflicts included) before it is given up with an error.
    #[arg(long, env = "CRUCIAL_WORKFLOW_ATTEMPTS", default_value_t = 64)]
    pub workflow_attempts: u32,
    /// Threads running lambda-object workflows (default: one per worker).
    #[arg(long, env = "CRUCIAL_WORKFLOW_THREADS")]
    pub workflow_threads: Option<usize>,
    /// Join the cluster whose membership is kept in this etcd (`host:port`,
    /// comma-separated for several endpoints). Without it the node is on its own.
    #[arg(long, env = "CRUCIAL_ETCD", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// The CA (PEM) of etcd's certificate: etcd is reached over TLS.
    #[arg(long, env = "CRUCIAL_ETCD_CA", value_name = "FILE")]
    pub etcd_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for an etcd with --client-cert-auth.
    /// Needs --etcd-key and --etcd-ca.
    #[arg(
        long,
        env = "CRUCIAL_ETCD_CERT",
        value_name = "FILE",
        requires_all = ["etcd_key", "etcd_ca"]
    )]
    pub etcd_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --etcd-cert.
    #[arg(
        long,
        env = "CRUCIAL_ETCD_KEY",
        value_name = "FILE",
        requires = "etcd_cert"
    )]
    pub etcd_key: Option<std::path::PathBuf>,
    /// The etcd user to authenticate as, when etcd's authentication is
    /// enabled; its password comes from --etcd-password-file or the
    /// environment variable CRUCIAL_ETCD_PASSWORD (never a flag: a command
    /// line is visible to every user of the machine).
    #[arg(long, env = "CRUCIAL_ETCD_USER", value_name = "NAME")]
    pub etcd_user: Option<String>,
    /// A file whose first line is --etcd-user's password.
    #[arg(long, value_name = "FILE", requires = "etcd_user")]
    pub etcd_password_file: Option<std::path::PathBuf>,
    /// The cluster's name in etcd (nodes with the same etcd and name form one cluster).
    #[arg(long, env = "CRUCIAL_CLUSTER", default_value = "crucial")]
    pub cluster: String,
    /// The address clients and other nodes reach this node at (default: the
    /// address it bound; set it when listening on 0.0.0.0).
    #[arg(long, env = "CRUCIAL_ADVERTISE")]
    pub advertise: Option<String>,
    /// Serve the admin plane (gRPC: status, objects, drain, delete; used by
    /// `crucial-admin`) on this address, e.g. `127.0.0.1:7100`.
    #[arg(long, env = "CRUCIAL_ADMIN_LISTEN")]
    pub admin: Option<String>,
    /// Seconds a crashed node stays in the view (its etcd lease's time to
    /// live); a node that cannot renew its lease serves nothing after 90 % of
    /// it (fenced), since the others may have declared it gone; a node whose
    /// lease expired stops with an error (restart it: it rejoins).
    #[arg(long, default_value_t = 3)]
    pub lease_ttl: u64,
    /// Copies of each persistent object in the cluster (1 to 7; a type's
    /// `#[shared(persistent, replicas = N)]` overrides it). The cluster's
    /// setting, kept in etcd: the first node sets it (1 if not given), later
    /// nodes take it, and a node given another value refuses to join.
    #[arg(long, env = "CRUCIAL_REPLICAS", value_parser = clap::value_parser!(u8).range(1..=7))]
    pub replicas: Option<u8>,
    /// Where the other members reach this node for handoffs (the peer port;
    /// default: the host of --listen, a free port). Node-to-node requests are
    /// taken only there, never on the port clients use.
    #[arg(long, env = "CRUCIAL_PEER_LISTEN")]
    pub peer_listen: Option<String>,
    /// The peer address the other members are told (default: the host of
    /// --advertise, or the bound address, with the bound peer port).
    #[arg(long, env = "CRUCIAL_ADVERTISE_PEER")]
    pub advertise_peer: Option<String>,
    /// Seconds a member's store may refuse writes (disk full, too many open
    /// files, I/O errors) before the node hands its objects to the other
    /// members, leaves the cluster and stops with an error (restart it once
    /// the disk is healthy: it rejoins and catches up); 0: it stays in the
    /// cluster, refusing persistent writes until the store heals.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub leave_after_store_failure: f64,
    /// Tests only, never in production: a head acknowledges a write before
    /// its replicas have it (the copy leaves 300 ms later), so the
    /// linearizability test can show it catches lost acknowledged writes.
    #[arg(long, hide = true)]
    pub weaken_ack_at_head: bool,
    /// Tests only: the first send of the decision (commit or abort) of every
    /// Nth transaction spanning nodes is dropped, as a lost message would
    /// be; 0: none.
    #[arg(long, hide = true, default_value_t = 0)]
    pub drop_phase_two_every: u64,
    /// Tests only: for one commit in four, a manager waits this many
    /// milliseconds between recording the decision and sending it to the
    /// participants, so that a kill meanwhile leaves them in doubt.
    #[arg(long, hide = true, default_value_t = 0)]
    pub delay_phase_two_ms: u64,
    /// Tests only: a commit that wrote several of its node's homes waits
    /// this many milliseconds between the root home's copy and the others'.
    #[arg(long, hide = true, default_value_t = 0)]
    pub delay_between_homes_ms: u64,
    /// Tests only, never in production: lambda-object commits do not
    /// validate what they read (lost updates, write skew), so the history
    /// checks can show they catch a broken engine.
    #[arg(long, hide = true)]
    pub weaken_validation: bool,
    /// Who may use the node: a file of `ROLE NAME TOKEN` lines (roles `app`,
    /// `admin`, `cluster`; see the guide's Security chapter), read again
    /// within a second of a change. With it, every port asks for a token.
    #[arg(long, env = "CRUCIAL_CREDENTIALS", value_name = "FILE")]
    pub credentials: Option<std::path::PathBuf>,
    /// Shared objects one application may hold on this node (with
    /// --credentials; objects arriving from other nodes are never refused).
    #[arg(long, value_name = "N")]
    pub app_max_objects: Option<u64>,
    /// Bytes of shared-object state one application may hold on this node
    /// (suffixes k, M, G: `64M`); past it its writes and creates are
    /// refused, its reads and deletes served.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub app_max_bytes: Option<usize>,
    /// Lambda objects (made by constructors) one application may hold on
    /// this node; a constructor past it fails its workflow.
    #[arg(long, value_name = "N")]
    pub app_max_lambda_objects: Option<u64>,
    /// Connections one application may have open to this node at once.
    #[arg(long, value_name = "N")]
    pub app_max_connections: Option<u64>,
    /// Blocking calls of one application that may wait on this node at once.
    #[arg(long, value_name = "N")]
    pub app_max_parked: Option<u64>,
    /// Serve addresses other than loopback without credentials: anyone who
    /// reaches the node can then call, read and delete every object.
    #[arg(long)]
    pub insecure: bool,
    /// TLS on the client port: the node's certificate chain (PEM). Needs
    /// --tls-key.
    #[arg(
        long,
        env = "CRUCIAL_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "CRUCIAL_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,
    /// The CA (PEM) of the other members' certificates: a cluster member
    /// with --tls-cert reaches their peer ports over TLS with it.
    #[arg(long, env = "CRUCIAL_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Print the registered shared types, lambda object types and cloud
    /// threads, then exit.
    #[arg(long)]
    pub list_types: bool,
    /// Print the objects of the running node at this address (persistent or
    /// not, in memory or passivated, their size), then exit.
    #[arg(long, value_name = "ADDR")]
    pub list_objects: Option<String>,
}

impl Args {
    /// TLS and the user for etcd, from the flags and the environment.
    fn etcd_access(&self) -> crate::config::EtcdAccess {
        use crate::config::EtcdPassword;
        let password = match (
            &self.etcd_password_file,
            std::env::var("CRUCIAL_ETCD_PASSWORD"),
        ) {
            (Some(file), _) => Some(EtcdPassword::File(file.clone())),
            (None, Ok(value)) => Some(EtcdPassword::Value(value)),
            (None, Err(_)) => None,
        };
        crate::config::EtcdAccess {
            ca: self.etcd_ca.clone(),
            identity: self.etcd_cert.clone().zip(self.etcd_key.clone()),
            // A user without a password is refused when the node connects.
            user: self
                .etcd_user
                .clone()
                .map(|user| (user, password.unwrap_or(EtcdPassword::Value(String::new())))),
        }
    }

    /// The node configuration these flags describe.
    pub fn config(&self) -> NodeConfig {
        let defaults = NodeConfig::default();
        NodeConfig {
            listen: self.listen.clone(),
            workers: self.workers.unwrap_or(defaults.workers),
            flavor: self.runtime,
            max_frame: self.max_frame_size,
            dedup_window: self.dedup_window,
            metrics: self.metrics.clone(),
            max_backlog: self.max_backlog,
            stall_timeout: seconds(self.stall_timeout),
            max_client_memory: self.max_client_memory,
            max_connections: self
                .max_connections
                .unwrap_or(defaults.max_connections)
                .max(1),
            handshake_timeout: seconds(self.handshake_timeout),
            idle_timeout: std::time::Duration::from_secs_f64(self.idle_timeout.max(0.0)),
            frame_timeout: seconds(self.frame_timeout),
            max_parked_per_connection: self.max_parked_per_connection,
            max_parked: self.max_parked,
            dedup_memory: self.dedup_memory,
            dedup_client_memory: self.dedup_client_memory,
            dedup_max_reply: self.dedup_max_reply,
            dedup_forget_after: seconds(self.dedup_forget_after),
            data_dir: self.data_dir.clone(),
            durability: self.durability,
            memory_limit: self.memory_limit,
            call_log: self.call_log == "on",
            workflow_time_limit: std::time::Duration::from_millis(
                self.workflow_time_limit_ms.max(1),
            ),
            workflow_attempts: self.workflow_attempts.max(1),
            weaken_validation: self.weaken_validation,
            workflow_threads: self.workflow_threads.or(defaults.workflow_threads),
            cluster: (!self.etcd.is_empty()).then(|| ClusterConfig {
                etcd: self.etcd.clone(),
                etcd_access: self.etcd_access(),
                name: self.cluster.clone(),
                advertise: self.advertise.clone(),
                lease_ttl: std::time::Duration::from_secs(self.lease_ttl.max(1)),
                peer_listen: self.peer_listen.clone(),
                advertise_peer: self.advertise_peer.clone(),
                replicas: self.replicas,
                leave_after_store_failure: (self.leave_after_store_failure > 0.0)
                    .then(|| seconds(self.leave_after_store_failure)),
                weaken_ack_at_head: self.weaken_ack_at_head,
                drop_phase_two_every: self.drop_phase_two_every,
                delay_phase_two: std::time::Duration::from_millis(self.delay_phase_two_ms),
                delay_between_homes: std::time::Duration::from_millis(self.delay_between_homes_ms),
            }),
            admin: self.admin.clone(),
            credentials: self.credentials.clone(),
            quotas: crate::quota::QuotaLimits {
                objects: self.app_max_objects,
                bytes: self.app_max_bytes.map(|b| b as u64),
                lambda_objects: self.app_max_lambda_objects,
                connections: self.app_max_connections,
                parked: self.app_max_parked,
            },
            insecure: self.insecure,
            tls: self.tls_cert.clone().zip(self.tls_key.clone()),
            tls_ca: self.tls_ca.clone(),
            ..defaults
        }
    }
}

/// A duration in seconds from a flag (at least a millisecond).
fn seconds(value: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(value.max(0.001))
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
}

/// `4096`, `64k`, `64M`, `2G` (powers of 1024).
fn parse_bytes(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => s.split_at(at),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        _ => return Err(format!("`{s}`: expected bytes, like 4096, 64k, 64M or 2G")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{s}`: expected a positive size, like 4096, 64k, 64M or 2G"))
}

/// Prints the registry: one line per type with its methods, then the cloud threads.
pub fn print_types(out: &mut impl Write) -> std::io::Result<()> {
    let registry = registry();
    for entry in registry.shared_types() {
        let info = entry.info();
        writeln!(
            out,
            "type {}{} ({})",
            info.name,
            if info.persistent { " [persistent]" } else { "" },
            info.module
        )?;
        for m in info.methods {
            writeln!(
                out,
                "    {} {}",
                if m.read_only { "read " } else { "write" },
                m.signature
            )?;
        }
    }
    for entry in registry.lambda_types() {
        writeln!(
            out,
            "lambda_object {} of application {} ({})",
            entry.name, entry.application, entry.module
        )?;
        for f in entry.info().methods {
            writeln!(out, "    {}", f.signature)?;
        }
    }
    for thread in registry.cloud_threads() {
        writeln!(out, "cloud_thread {}", thread.name)?;
    }
    Ok(())
}

/// Prints a node's objects as a table, one per line, and a total.
pub fn print_objects(out: &mut impl Write, objects: &[crucial::ObjectInfo]) -> std::io::Result<()> {
    let width = |f: &dyn Fn(&crucial::ObjectInfo) -> usize, title: &str| {
        objects.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let type_width = width(&|o| o.type_name.len(), "TYPE");
    let key_width = width(&|o| o.key.len(), "KEY");
    writeln!(
        out,
        "{:type_width$}  {:key_width$}  {:10}  {:9}  {:>10}  {:>6}  {:8}  APP",
        "TYPE", "KEY", "PERSISTENT", "IN MEMORY", "BYTES", "PARKED", "STATE"
    )?;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    for o in objects {
        let bytes = if o.persistent {
            o.bytes.to_string()
        } else {
            "-".to_string()
        };
        writeln!(
            out,
            "{:type_width$}  {:key_width$}  {:10}  {:9}  {:>10}  {:>6}  {:8}  {}",
            o.type_name,
            o.key,
            yes_no(o.persistent),
            yes_no(o.resident),
            bytes,
            o.parked,
            if o.poisoned { "poisoned" } else { "ok" },
            if o.application.is_empty() {
                "-"
            } else {
                &o.application
            }
        )?;
    }
    let kept = objects.iter().filter(|o| o.persistent);
    writeln!(
        out,
        "objects: {}, persistent: {} ({} bytes), passivated: {}",
        objects.len(),
        kept.clone().count(),
        kept.map(|o| o.bytes).sum::<u64>(),
        objects.iter().filter(|o| !o.resident).count()
    )
}

fn list_objects(addr: &str) -> Result<(), String> {
    // The token and CA of the environment (CRUCIAL_TOKEN, CRUCIAL_TLS_CA),
    // for a node with credentials; not its servers: `addr` is the node.
    let client = crucial::Config::from_env()
        .server(addr.to_string())
        .connect()
        .map_err(|e| format!("cannot reach the node at {addr}: {e}"))?;
    let objects = client
        .list_objects()
        .map_err(|e| format!("the node at {addr} did not list its objects: {e}"))?;
    print_objects(&mut std::io::stdout().lock(), &objects).map_err(|e| e.to_string())
}

/// `main` of a server binary.
pub fn main() {
    main_with(std::env::args())
}

/// [`main`] with the command line given (its first item is the program
/// name): for programs that start themselves as a node, like the benches.
pub fn main_with(args: impl IntoIterator<Item = String>) {
    let args = Args::parse_from(args);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CRUCIAL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(problem) = registry().check() {
        eprintln!("error: {problem}");
        std::process::exit(2);
    }
    if args.list_types {
        let stdout = std::io::stdout();
        if let Err(e) = print_types(&mut stdout.lock()) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(addr) = &args.list_objects {
        if let Err(e) = list_objects(addr) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    // A server binary may use every descriptor it is allowed (the default
    // --max-connections follows the limit, so raise it first).
    crate::config::raise_descriptor_limit();
    let config = args.config();
    let result = crate::node::run_until(
        config.clone(),
        |bound| {
            let addr = bound.addr;
            if let Some(metrics) = bound.metrics {
                println!("crucial-server metrics at http://{metrics}/metrics");
            }
            if let Some(admin) = bound.admin {
                println!("crucial-server admin at {admin}");
            }
            // Tests and scripts read this line to learn the port.
            println!("crucial-server listening on {addr}");
            let _ = std::io::stdout().flush();
            tracing::info!(
                %addr,
                workers = config.workers,
                runtime = ?config.flavor,
                max_frame = config.max_frame,
                types = registry().shared_types().len(),
                "ready"
            );
        },
        stop_signal(),
    );
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    println!("crucial-server stopped");
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT): the signals that ask a node to stop cleanly.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("stop requested: finishing in-flight calls");
}
