//! A storage node: the listener, the shared state, and ways to run it.

use crate::config::{Flavor, NodeConfig};
use crate::connection;
use crate::dedup::Dedup;
use crate::metrics::Metrics;
use crate::table::ObjectTable;
use crucial::registry::{registry, Registry};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Everything the connections of a node share.
pub struct NodeState {
    /// The node's settings.
    pub config: NodeConfig,
    /// The link-time registry of this binary.
    pub registry: &'static Registry,
    /// The objects.
    pub table: ObjectTable,
    /// Remembered replies for retried requests.
    pub dedup: Dedup,
    /// Source of parked-call tokens.
    pub next_token: std::sync::atomic::AtomicU64,
    /// Counters for the `/metrics` page (shared with every connection's outbox).
    pub metrics: Arc<Metrics>,
}

impl NodeState {
    /// Fresh state for a node; fails if the registry has duplicate names.
    pub fn new(config: NodeConfig) -> io::Result<Arc<NodeState>> {
        let registry = registry();
        registry
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(Arc::new(NodeState {
            dedup: Dedup::new(config.dedup_window, config.dedup_clients),
            table: ObjectTable::default(),
            next_token: std::sync::atomic::AtomicU64::new(1),
            metrics: Arc::new(Metrics::new(registry)),
            registry,
            config,
        }))
    }
}

/// Accepts connections forever, serving each on its own task.
pub async fn serve(listener: TcpListener, node: Arc<NodeState>) -> io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Running out of descriptors must not kill the node.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        tracing::debug!(%peer, "client connected");
        tokio::spawn(connection::serve(stream, Arc::clone(&node)));
    }
}

/// Builds the tokio runtime a node's config asks for.
pub fn runtime(config: &NodeConfig) -> io::Result<tokio::runtime::Runtime> {
    match config.flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.workers.max(1))
            .thread_name("crucial-node")
            .enable_all()
            .build(),
    }
}

/// The addresses a node bound.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, if [`NodeConfig::metrics`] asked for it.
    pub metrics: Option<SocketAddr>,
}

/// Runs a node in the current thread until it fails. `on_ready` gets the bound address.
pub fn run(config: NodeConfig, on_ready: impl FnOnce(SocketAddr)) -> io::Result<()> {
    run_bound(config, |bound| on_ready(bound.addr))
}

/// [`run`], telling `on_ready` every address bound (clients and metrics).
pub fn run_bound(config: NodeConfig, on_ready: impl FnOnce(Bound)) -> io::Result<()> {
    let rt = runtime(&config)?;
    rt.block_on(async {
        let listener = TcpListener::bind(&config.listen).await?;
        let metrics = match &config.metrics {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let bound = Bound {
            addr: listener.local_addr()?,
            metrics: metrics.as_ref().map(|l| l.local_addr()).transpose()?,
        };
        let node = NodeState::new(config)?;
        if let Some(metrics) = metrics {
            let node = Arc::clone(&node);
            tokio::spawn(async move {
                if let Err(e) = crate::metrics::serve(metrics, node).await {
                    tracing::warn!("the metrics endpoint stopped: {e}");
                }
            });
        }
        on_ready(bound);
        serve(listener, node).await
    })
}

/// Starts a node on a background thread; returns once it is listening.
pub fn spawn(config: NodeConfig) -> io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    let fail = tx.clone();
    std::thread::Builder::new()
        .name("crucial-node".into())
        .spawn(move || {
            if let Err(e) = run(config, |addr| {
                let _ = tx.send(Ok(addr));
            }) {
                let _ = fail.send(Err(e));
            }
        })?;
    rx.recv()
        .map_err(|_| io::Error::other("the node thread ended before listening"))?
}
