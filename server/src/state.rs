//! What every part of a node shares: its settings, the registry of its binary,
//! the objects, the dedup table, the counters, and the stop signal.

use crate::cluster::member::Cluster;
use crate::config::NodeConfig;
use crate::dedup::{Dedup, DedupLimits};
use crate::lambda_objects::Lambdas;
use crate::metrics::{family, Metrics, TableGauges};
use crate::net::Clients;
use crate::recovery::{recover, Recovered};
use crate::shared_objects::ObjectTable;
use crate::storage::Storage;
use crucial::__private::registry::{registry, Registry};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Waits for a node's stop (one per task that waits repeatedly).
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves once the node starts to stop.
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// How many connections (or tasks of a split batch) are applying requests
/// right now: a batch is split over the cores only when some core would
/// otherwise have nothing to apply.
#[derive(Default)]
pub struct Applying(AtomicUsize);

impl Applying {
    /// Counts the caller as applying until the guard drops; the guard knows
    /// how many others were applying when it was taken.
    pub fn enter(&self) -> ApplyingGuard<'_> {
        let others = self.0.fetch_add(1, Ordering::Relaxed);
        ApplyingGuard {
            count: &self.0,
            others,
        }
    }
}

/// One applier, counted while it lives.
pub struct ApplyingGuard<'a> {
    count: &'a AtomicUsize,
    /// Others applying when this one started.
    pub others: usize,
}

impl Drop for ApplyingGuard<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The thread that passivates idle persistent objects past the memory limit.
/// It holds the node weakly and ends with it.
fn spawn_passivator(node: &Arc<NodeState>) -> io::Result<()> {
    let residency = Arc::clone(&node.table.residency);
    let node = Arc::downgrade(node);
    std::thread::Builder::new()
        .name("crucial-passivate".into())
        .spawn(move || loop {
            residency.wait(std::time::Duration::from_millis(20));
            let Some(node) = node.upgrade() else { return };
            if let Some(storage) = &node.storage {
                residency.passivate(node.table.cells(), storage);
            }
        })?;
    Ok(())
}

/// A random id (for this node as a client of the others).
fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() | 1
}

/// How a node reaches the other members' TLS peer ports: the CA of their
/// certificates, for its links (async, replication and handoffs) and its
/// peers (transactions' steps).
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // used by members only
pub struct PeerTls {
    /// For [`crate::cluster`]'s links.
    pub links: Arc<rustls::ClientConfig>,
    /// For the client-side peers.
    pub peers: crucial::Tls,
}

/// The shared state of one node.
pub struct NodeState {
    /// The node's settings.
    pub config: NodeConfig,
    /// The link-time registry of this binary.
    pub registry: &'static Registry,
    /// The objects.
    pub table: ObjectTable,
    /// Remembered replies for retried requests.
    pub dedup: Dedup,
    /// Counters for the `/metrics` page.
    pub metrics: Metrics,
    /// Connections and tasks applying requests right now.
    pub applying: Applying,
    /// The client connections: how many, and the bytes they buffer.
    pub clients: Arc<Clients>,
    /// The other nodes' connections to the peer port (a cluster member's).
    pub peers: Arc<Clients>,
    /// The data directory, if the node keeps persistent objects on disk.
    pub storage: Option<Arc<Storage>>,
    /// Lambda objects: their store and their workflows.
    pub lambdas: Lambdas,
    /// What was recovered from it at start.
    pub recovered: Recovered,
    /// The node's part of a cluster (set once it joined through etcd).
    pub cluster: std::sync::OnceLock<Arc<Cluster>>,
    /// The credentials it checks (`None`: it takes every connection).
    pub auth: Option<Arc<crate::auth::Auth>>,
    /// What each application holds of the node, against its quotas.
    pub quotas: crate::quota::Quotas,
    /// TLS on the client and peer ports (`None`: plain TCP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS to the other members' peer ports (`--tls-ca`).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // used by members only
    pub peer_tls: Option<PeerTls>,
    /// This node's client id when it talks to other nodes.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    // the handoff sender's (feature "cluster")
    pub peer_id: u64,
    /// Becomes `true` once when the node starts to stop.
    stopping: watch::Sender<bool>,
    /// Why the node stopped on its own, if it had to (it then exits with
    /// this error instead of cleanly).
    failure: std::sync::OnceLock<String>,
}

impl NodeState {
    /// Fresh state for a node; fails if the registry has duplicate names.
    pub fn new(config: NodeConfig) -> io::Result<Arc<NodeState>> {
        let registry = registry();
        registry
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if config.memory_limit.is_some() && config.data_dir.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a memory limit needs a data directory (--data-dir): only persistent objects \
                 kept on disk can leave memory",
            ));
        }
        if config.quotas != crate::quota::QuotaLimits::default() && config.credentials.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "per-application quotas (--app-max-objects, --app-max-bytes, \
                 --app-max-lambda-objects, --app-max-connections, --app-max-parked) need \
                 --credentials: an application is what a token proves",
            ));
        }
        let auth = match &config.credentials {
            None => None,
            Some(path) => {
                Some(Arc::new(crate::auth::Auth::load(path).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, e)
                })?))
            }
        };
        let tls = match &config.tls {
            None => None,
            Some((cert, key)) => Some(
                crate::net::tls_server_config(cert, key)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            ),
        };
        let peer_tls = match &config.tls_ca {
            None => None,
            Some(ca) => {
                let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
                Some(PeerTls {
                    links: crate::net::tls_client_config(ca).map_err(invalid)?,
                    peers: crucial::Tls::with_ca_file(ca)
                        .map_err(|e| invalid(format!("--tls-ca: {e}")))?,
                })
            }
        };
        let table = ObjectTable::new(config.memory_limit);
        let dedup = Dedup::new(
            config.dedup_window,
            config.dedup_clients,
            DedupLimits {
                memory: config.dedup_memory,
                client_memory: config.dedup_client_memory,
                max_reply: config.dedup_max_reply,
                forget_after: config.dedup_forget_after,
            },
        );
        let (storage, recovered) = match &config.data_dir {
            None => (None, Recovered::default()),
            Some(dir) => {
                let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
                let storage = Storage::open(dir, config.durability)
                    .map_err(invalid)?
                    .with_call_log(config.call_log)
                    .with_caller_leads(config.flavor == crate::config::Flavor::MultiThread);
                let recovered = recover(&storage, registry, &table, &dedup, config.dedup_window)
                    .map_err(invalid)?;
                tracing::info!(
                    dir = %dir.display(),
                    objects = recovered.objects,
                    unreadable = recovered.unreadable,
                    replies = recovered.replies,
                    "recovered in {:?}",
                    recovered.elapsed
                );
                (Some(Arc::new(storage)), recovered)
            }
        };
        let lambdas = Lambdas::open(
            storage.clone(),
            config.workflow_time_limit,
            config.workflow_attempts,
            config.workflow_threads.unwrap_or(config.workers),
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if config.weaken_validation {
            tracing::warn!(
                "--weaken-validation: lambda-object commits do not validate their reads; \
                 tests only, never in production"
            );
            lambdas.store.weaken_validation();
        }
        if let Some(limit) = config.quotas.lambda_objects {
            lambdas.store.census.limit_to(limit);
        }
        let node = Arc::new(NodeState {
            dedup,
            table,
            metrics: Metrics::new(registry),
            applying: Applying::default(),
            clients: Clients::new(config.max_connections, config.max_client_memory),
            // Nodes, not clients: a few connections each, never refused by
            // the clients' limits.
            peers: Clients::new(1024, config.max_client_memory),
            storage,
            lambdas,
            recovered,
            cluster: std::sync::OnceLock::new(),
            auth,
            quotas: crate::quota::Quotas::new(config.quotas),
            tls,
            peer_tls,
            peer_id: random_id(),
            stopping: watch::Sender::new(false),
            failure: std::sync::OnceLock::new(),
            registry,
            config,
        });
        if node.config.memory_limit.is_some() {
            spawn_passivator(&node)?;
        }
        // Before the peer port serves: the parts this node had prepared
        // hold their sets again before any step touches them.
        #[cfg(feature = "cluster")]
        if node.config.cluster.is_some() {
            crate::cluster::restore_prepared(&node);
        }
        Ok(node)
    }

    /// Waits until a write this node queued is durable (every request kind,
    /// and the handoff, wait here).
    pub async fn durable(&self, ticket: crate::storage::Ticket) -> Result<(), String> {
        match &self.storage {
            Some(storage) => storage.durable(ticket).await,
            None => ticket
                .await
                .unwrap_or_else(|_| Err("the storage layer stopped".to_string())),
        }
    }

    /// Starts the node's clean stop (idempotent).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Stops the node because it cannot go on serving safely: it stops as
    /// [`NodeState::stop`] does (no drain), and its run ends with `reason`
    /// as the error. The first reason given stays.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn fail(&self, reason: String) {
        self.set_failure(reason);
        self.stop();
    }

    /// Records why the node is about to stop on its own (a drain then
    /// stops it): its run ends with `reason` as the error. The first
    /// reason given stays.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn set_failure(&self, reason: String) {
        tracing::error!("{reason}");
        let _ = self.failure.set(reason);
    }

    /// Why the node stopped on its own, if it did (see [`NodeState::fail`]).
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Resolves once the node starts to stop.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the admin plane's (feature "cluster")
    pub async fn stopped(&self) {
        self.stop_signal().stopped().await
    }

    /// A handle to wait for the stop with, to keep across many waits.
    pub fn stop_signal(&self) -> StopSignal {
        StopSignal(self.stopping.subscribe())
    }

    /// The metrics page, with the table's gauges read now.
    pub fn render_metrics(&self) -> String {
        let mut page = self.metrics.render(TableGauges {
            objects: self.table.len() as u64,
            residency: self.table.residency.gauges(),
            written: self.storage.as_deref().map_or((0, 0), Storage::written),
            recovered_objects: self.recovered.objects as u64,
            unreadable_objects: self.recovered.unreadable as u64,
            recovery_ms: self.recovered.elapsed.as_millis() as u64,
        });
        self.render_limits(&mut page);
        if self.auth.is_some() {
            self.quotas.render(
                &mut page,
                &self.table.census(),
                &self.lambdas.store.census.all(),
            );
        }
        self.lambdas
            .metrics
            .render(&mut page, self.lambdas.pool.threads());
        page
    }

    /// The gauges of the node's limits on its clients.
    fn render_limits(&self, out: &mut String) {
        use std::fmt::Write;
        let clients = &self.clients;
        let config = &self.config;
        let dedup = self.dedup.gauges();
        #[rustfmt::skip]
        let lines: [(&str, &str, &str, u64); 11] = [
            ("crucial_max_connections", "gauge", "The node's --max-connections.", clients.max_connections() as u64),
            ("crucial_client_memory_bytes", "gauge", "Unsent replies and partly received requests, all connections.", clients.bytes() as u64),
            ("crucial_max_client_memory_bytes", "gauge", "The node's --max-client-memory.", config.max_client_memory as u64),
            ("crucial_connections_evicted_total", "counter", "Connections closed because they held the most when all together passed --max-client-memory.", clients.evicted_total()),
            ("crucial_dedup_bytes", "gauge", "Bytes of remembered replies (the dedup table), all clients.", dedup.bytes),
            ("crucial_dedup_memory_bytes", "gauge", "The node's --dedup-memory.", config.dedup_memory as u64),
            ("crucial_dedup_clients", "gauge", "Clients whose replies are remembered now.", dedup.clients),
            ("crucial_dedup_unremembered_total", "counter", "Replies larger than --dedup-max-reply, remembered by size only.", dedup.unremembered),
            ("crucial_dedup_forgotten_idle_total", "counter", "Clients forgotten after --dedup-forget-after without a request.", dedup.forgotten_idle),
            ("crucial_max_parked", "gauge", "The node's --max-parked.", config.max_parked as u64),
            ("crucial_max_parked_per_connection", "gauge", "The node's --max-parked-per-connection.", config.max_parked_per_connection as u64),
        ];
        for (name, kind, help, value) in lines {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        if let Some(storage) = &self.storage {
            let (failures, recoveries) = storage.health_counts();
            #[rustfmt::skip]
            let store: [(&str, &str, &str, u64); 3] = [
                ("crucial_store_writable", "gauge", "1 while the data directory takes writes; 0 while it fails (writes are refused naming the cause, and retried every second).", u64::from(storage.failure().is_none())),
                ("crucial_store_failures_total", "counter", "Times the data directory stopped taking writes (disk full, no descriptors, I/O error).", failures),
                ("crucial_store_recoveries_total", "counter", "Times the node reopened its store and took writes again without a restart.", recoveries),
            ];
            for (name, kind, help, value) in store {
                family(out, name, kind, help);
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
}
