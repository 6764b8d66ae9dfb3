//! Node configuration, shared by the CLI, the embedded server and tests.

use crate::storage::Durability;
use crucial_protocol::wire::DEFAULT_MAX_FRAME;
use std::path::PathBuf;
use std::time::Duration;

/// How the node's tokio runtime is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// One thread runs everything (lowest latency on small machines).
    CurrentThread,
    /// A work-stealing pool of `workers` threads.
    MultiThread,
}

/// How a node reaches etcd beyond its endpoints: over TLS, and as one of
/// etcd's users.
#[derive(Debug, Clone, Default)]
pub struct EtcdAccess {
    /// The CA (PEM) of etcd's certificate (`--etcd-ca`): with it the
    /// endpoints are reached over TLS.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for an etcd with
    /// `--client-cert-auth` (`--etcd-cert`, `--etcd-key`).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The etcd user the node authenticates as (`--etcd-user`), with its
    /// password.
    pub user: Option<(String, EtcdPassword)>,
}

/// Where an etcd user's password comes from; never printed.
#[derive(Clone)]
pub enum EtcdPassword {
    /// The first line of this file (`--etcd-password-file`).
    File(PathBuf),
    /// This value (`CRUCIAL_ETCD_PASSWORD`).
    Value(String),
}

impl std::fmt::Debug for EtcdPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EtcdPassword::File(path) => f.debug_tuple("File").field(path).finish(),
            EtcdPassword::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

impl EtcdPassword {
    /// The password.
    pub fn read(&self) -> std::io::Result<String> {
        match self {
            EtcdPassword::Value(value) => Ok(value.clone()),
            EtcdPassword::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("--etcd-password-file {}: {e}", path.display()),
                    )
                })?;
                Ok(text.lines().next().unwrap_or_default().to_string())
            }
        }
    }
}

/// How a node joins a cluster (membership on etcd).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// etcd endpoints (`host:port`, or `https://host:port`).
    pub etcd: Vec<String>,
    /// TLS and the user for etcd.
    pub etcd_access: EtcdAccess,
    /// The cluster's name: nodes with the same etcd and name form one cluster.
    pub name: String,
    /// This node's address for clients and the other nodes (default: the
    /// address it bound).
    pub advertise: Option<String>,
    /// Lease time to live: a node that stops (crashes) leaves the view this
    /// long after its last keep-alive, and a node that cannot renew it fences
    /// itself after 90 % of it.
    pub lease_ttl: Duration,
    /// Where the other members reach this node for node-to-node requests
    /// (handoffs): the peer port, apart from the port clients use. Default:
    /// the host of `listen`, a free port.
    pub peer_listen: Option<String>,
    /// The peer address the other members are told (default: the advertised
    /// host with the bound peer port).
    pub advertise_peer: Option<String>,
    /// Copies of each persistent object (a type's `replicas = N` overrides
    /// it). A setting of the cluster, kept in etcd: the first node sets it
    /// (1 if not given), `None` takes the cluster's, and a node given another
    /// value refuses to join.
    pub replicas: Option<u8>,
    /// A node whose store refused writes this long hands its objects to the
    /// other members, leaves the cluster and stops (`None`: it stays,
    /// refusing persistent writes until its store heals).
    pub leave_after_store_failure: Option<Duration>,
    /// Tests only: acknowledge writes at the head before the replicas have
    /// them (`--weaken-ack-at-head`, hidden), to show the linearizability
    /// test catches it.
    pub weaken_ack_at_head: bool,
    /// Tests only: the first send of the decision of every Nth transaction
    /// spanning nodes is dropped (`--drop-phase-two-every N`, hidden; 0:
    /// none), to show that a decision a participant missed is delivered
    /// again.
    pub drop_phase_two_every: u64,
    /// Tests only: for one commit in four, a manager waits this long between
    /// recording the decision and sending it (`--delay-phase-two-ms`,
    /// hidden), so that a node killed meanwhile leaves participants in
    /// doubt.
    pub delay_phase_two: Duration,
    /// Tests only: a commit that wrote several of its node's homes waits
    /// this long between the root home's copy and the others'
    /// (`--delay-between-homes-ms`, hidden), so that a kill meanwhile leaves
    /// the others to be restored from their kept parts.
    pub delay_between_homes: Duration,
}

/// Settings of one storage node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Worker threads of the multi-thread runtime.
    pub workers: usize,
    /// Runtime flavour.
    pub flavor: Flavor,
    /// Largest request payload accepted, in bytes.
    pub max_frame: usize,
    /// Replies remembered per client for deduplicating retries.
    pub dedup_window: usize,
    /// Clients whose replies are remembered at once (least recently seen are forgotten).
    pub dedup_clients: usize,
    /// Batches of at most this many requests read from one connection run inline
    /// on the reading task; larger ones are split across worker threads.
    pub inline_batch: usize,
    /// Address of the `GET /metrics` endpoint (Prometheus text format); none by default.
    pub metrics: Option<String>,
    /// Unwritten reply bytes of one connection past which the node stops reading
    /// that connection's requests until its client reads (backpressure).
    pub max_backlog: usize,
    /// A connection stuck past the backlog bound this long is closed.
    pub stall_timeout: Duration,
    /// Unsent reply bytes and partly received request bytes of all
    /// connections together; past it, the connection holding the most is
    /// closed (a client that reads nothing cannot take the node's memory).
    pub max_client_memory: usize,
    /// Client connections served at once; past it a new connection is
    /// answered with a `Limit` error and closed. Default: three quarters of
    /// the process's descriptor limit, at most 10 000, so the store and the
    /// other listeners always have descriptors left.
    pub max_connections: usize,
    /// A connection that has not said `Hello` this long after it opened is closed.
    pub handshake_timeout: Duration,
    /// A connection with nothing in flight, nothing parked and nothing to
    /// send is closed after this long without a request (zero: never). Its
    /// client reconnects on its next call.
    pub idle_timeout: Duration,
    /// A request frame that started arriving must be whole this long after.
    pub frame_timeout: Duration,
    /// Calls parked (blocking methods waiting) for one connection at once.
    pub max_parked_per_connection: usize,
    /// Calls parked on the whole node at once.
    pub max_parked: usize,
    /// Bytes of remembered replies (the dedup table), all clients together;
    /// past it the least recently seen clients are forgotten.
    pub dedup_memory: usize,
    /// Bytes of remembered replies of one client; past it its oldest are forgotten.
    pub dedup_client_memory: usize,
    /// A reply larger than this is not remembered: a retry of its call is
    /// answered with a `Limit` error instead (the call is not run twice).
    pub dedup_max_reply: usize,
    /// A client not seen this long is forgotten by the dedup table.
    pub dedup_forget_after: Duration,
    /// How long a clean stop waits for in-flight calls and unwritten replies.
    pub shutdown_grace: Duration,
    /// Where persistent objects and their remembered replies are kept; none:
    /// everything lives in memory and is lost with the node. Defaults to
    /// `CRUCIAL_DATA_DIR` if set.
    pub data_dir: Option<PathBuf>,
    /// When an acknowledged write to a persistent object is on disk
    /// (`CRUCIAL_DURABILITY` if set, else `sync`).
    pub durability: Durability,
    /// Bytes the persistent objects in memory may take (their encoded size);
    /// past it, idle ones are passivated: dropped from memory, read back from
    /// disk by their next call. None: no limit. Needs `data_dir`.
    pub memory_limit: Option<usize>,
    /// Whether a small call on a large persistent object is appended to its
    /// log instead of rewriting its state (`CRUCIAL_CALL_LOG=off` if set,
    /// else on). Replaying the log needs deterministic methods; with it off,
    /// every mutating call writes the object's whole state.
    pub call_log: bool,
    /// The longest a lambda-object workflow may run (and the limit of
    /// functions that declare none): past it, it is aborted and its caller
    /// gets a timeout.
    pub workflow_time_limit: Duration,
    /// Executions a workflow may take (re-executions after conflicts
    /// included) before it is given up.
    pub workflow_attempts: u32,
    /// Tests only: commits skip validating their reads
    /// (`--weaken-validation`, hidden), so the history checks can show they
    /// catch a broken engine.
    pub weaken_validation: bool,
    /// Threads of the workflow pool (`CRUCIAL_WORKFLOW_THREADS` if set, else
    /// one per worker).
    pub workflow_threads: Option<usize>,
    /// The cluster to join; none: the node is on its own (and needs no etcd).
    pub cluster: Option<ClusterConfig>,
    /// Address of the admin plane (gRPC, `crucial-admin`); none by default.
    pub admin: Option<String>,
    /// The credentials file (`--credentials`): with it, every port asks
    /// for a token; without it, the node serves loopback addresses only,
    /// unless `insecure`.
    pub credentials: Option<PathBuf>,
    /// What one application may hold of the node (`--app-max-objects`,
    /// `--app-max-bytes`, `--app-max-connections`, `--app-max-parked`), on a
    /// node with
    /// credentials.
    pub quotas: crate::quota::QuotaLimits,
    /// Serve addresses other than loopback without credentials (`--insecure`).
    pub insecure: bool,
    /// TLS on the client and peer ports: the certificate chain and key
    /// (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The CA (PEM) of the other members' certificates, to reach their TLS
    /// peer ports.
    pub tls_ca: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: "127.0.0.1:7000".into(),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            flavor: Flavor::MultiThread,
            max_frame: DEFAULT_MAX_FRAME,
            dedup_window: 1024,
            dedup_clients: 65_536,
            inline_batch: std::env::var("CRUCIAL_INLINE_BATCH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            metrics: None,
            max_backlog: 4 << 20,
            stall_timeout: Duration::from_secs(30),
            max_client_memory: 512 << 20,
            max_connections: default_max_connections(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(60),
            max_parked_per_connection: 10_000,
            max_parked: 1_000_000,
            dedup_memory: 128 << 20,
            dedup_client_memory: 4 << 20,
            dedup_max_reply: 64 << 10,
            dedup_forget_after: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(5),
            data_dir: std::env::var_os("CRUCIAL_DATA_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            durability: std::env::var("CRUCIAL_DURABILITY")
                .ok()
                .and_then(|mode| match mode.parse() {
                    Ok(mode) => Some(mode),
                    Err(e) => {
                        tracing::warn!("CRUCIAL_DURABILITY ignored, `sync` used: {e}");
                        None
                    }
                })
                .unwrap_or(Durability::Sync),
            memory_limit: None,
            call_log: std::env::var("CRUCIAL_CALL_LOG").map_or(true, |v| v != "off"),
            workflow_time_limit: Duration::from_secs(10),
            workflow_attempts: 64,
            weaken_validation: false,
            workflow_threads: std::env::var("CRUCIAL_WORKFLOW_THREADS")
                .ok()
                .and_then(|v| v.parse().ok()),
            cluster: None,
            admin: None,
            credentials: None,
            quotas: crate::quota::QuotaLimits::default(),
            insecure: false,
            tls: None,
            tls_ca: None,
        }
    }
}

/// Descriptors kept for everything but client connections: the store's files,
/// the metrics and admin listeners, etcd and the other nodes.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Three quarters of the descriptor limit (leaving at least
/// [`RESERVED_DESCRIPTORS`]), at most 10 000.
fn default_max_connections() -> usize {
    let limit = descriptor_limit().unwrap_or(1024);
    let spare = (limit / 4).max(RESERVED_DESCRIPTORS);
    limit.saturating_sub(spare).clamp(1, 10_000) as usize
}

/// The process's soft limit of open descriptors (`ulimit -n`).
#[cfg(unix)]
pub fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every Unix
    ok.then_some(limit.rlim_cur as u64)
}

/// No descriptor limit is known off Unix.
#[cfg(not(unix))]
pub fn descriptor_limit() -> Option<u64> {
    None
}

/// Raises the soft descriptor limit to the hard one (what a server binary
/// does at start; an embedded node leaves its host process alone).
#[cfg(unix)]
pub fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Nothing to raise off Unix.
#[cfg(not(unix))]
pub fn raise_descriptor_limit() {}
