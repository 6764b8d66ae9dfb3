//! Running a node: build its runtime, bind, serve until told to stop, stop cleanly.
//!
//! A clean stop (SIGTERM/Ctrl-C for `crucial-server`, [`NodeHandle::shutdown`]
//! in process) stops accepting connections and reading requests, lets the calls
//! already read finish, answers every parked call with
//! `RemoteError::ShuttingDown`, writes the pending replies, and returns.

use crate::config::{Flavor, NodeConfig};
use crate::net;
use crate::request::Plane;
use crate::state::NodeState;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// How long a clean stop of a cluster member may take to hand off its objects.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(120);

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
    /// Where the admin plane is served, if [`NodeConfig::admin`] asked for it.
    pub admin: Option<SocketAddr>,
}

/// Runs a node in the current thread until it fails. `on_ready` gets the bound address.
pub fn run(config: NodeConfig, on_ready: impl FnOnce(SocketAddr)) -> io::Result<()> {
    run_until(config, |bound| on_ready(bound.addr), std::future::pending())
}

/// [`run`], telling `on_ready` every address bound (clients and metrics).
pub fn run_bound(config: NodeConfig, on_ready: impl FnOnce(Bound)) -> io::Result<()> {
    run_until(config, on_ready, std::future::pending())
}

/// Runs a node in the current thread until `stop` resolves, then stops it
/// cleanly and returns.
pub fn run_until(
    config: NodeConfig,
    on_ready: impl FnOnce(Bound),
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    check_features(&config)?;
    check_exposure(&config)?;
    let rt = runtime(&config)?;
    rt.block_on(async {
        let listener = TcpListener::bind(&config.listen).await?;
        let metrics = match &config.metrics {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let admin = match &config.admin {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let bound = Bound {
            addr: listener.local_addr()?,
            metrics: metrics.as_ref().map(|l| l.local_addr()).transpose()?,
            admin: admin.as_ref().map(|l| l.local_addr()).transpose()?,
        };
        let cluster = config.cluster.clone();
        let node = NodeState::new(config)?;
        let advertise = cluster
            .as_ref()
            .and_then(|c| c.advertise.clone())
            .unwrap_or_else(|| bound.addr.to_string());
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &cluster {
            // The peer port serves before the node joins: handoffs may come at once.
            let peer = serve_peers(&node, cluster, bound.addr, &advertise).await?;
            let admin = bound.admin.map(|a| a.to_string());
            crate::cluster::start(&node, cluster, advertise.clone(), admin, peer).await?;
        }
        #[cfg(feature = "cluster")]
        let admin_task = admin.map(|listener| serve_admin(listener, &node, advertise));
        #[cfg(not(feature = "cluster"))]
        let admin_task: Option<tokio::task::JoinHandle<()>> = {
            // check_features refused --admin and --etcd: neither is bound.
            let _ = (admin, advertise);
            None
        };
        // The admin plane stops with the node, answering its requests in
        // flight first (a drain's answer is sent after the node stopped).
        let finish_admin = || async move {
            if let Some(task) = admin_task {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
            }
        };
        tokio::spawn(housekeeping(Arc::downgrade(&node)));
        if let Some(auth) = &node.auth {
            let mut stop = node.stop_signal();
            tokio::spawn(Arc::clone(auth).watch(async move { stop.stopped().await }));
        }
        if let Some(metrics) = metrics {
            let node = Arc::clone(&node);
            tokio::spawn(async move {
                if let Err(e) = net::serve_metrics(metrics, node).await {
                    tracing::warn!("the metrics endpoint stopped: {e}");
                }
            });
        }
        on_ready(bound);
        let serving = net::serve(listener, Arc::clone(&node), Plane::Client);
        tokio::pin!(serving);
        // A node that had to stop on its own (its cluster lease expired)
        // ends with that reason as the error.
        let failed = |served: io::Result<()>| match node.failure() {
            Some(reason) => Err(io::Error::other(reason.to_string())),
            None => served,
        };
        tokio::select! {
            served = &mut serving => {
                finish_admin().await;
                return failed(served);
            }
            () = stop => {}
        }
        if let Some(cluster) = node.cluster.get() {
            // A member leaves by handing off its objects (serving meanwhile).
            tracing::info!("draining before the stop");
            tokio::select! {
                () = cluster.drain() => {}
                served = &mut serving => {
                    finish_admin().await;
                    return failed(served);
                }
                () = tokio::time::sleep(DRAIN_FOR) => {
                    tracing::error!("the drain did not finish in {DRAIN_FOR:?}: stopping anyway");
                }
            }
        }
        node.stop();
        let served = serving.await;
        finish_admin().await;
        failed(served)
    })
}

/// Once a second, while the node lives: clients not seen for
/// `--dedup-forget-after` leave the dedup table (and their replies the disk),
/// and a store that failed is given a chance to write again.
async fn housekeeping(node: std::sync::Weak<NodeState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        let forgotten = node.dedup.forget_idle();
        if let Some(storage) = &node.storage {
            if storage.failure().is_some() {
                // Reopening waits for the engine's threads: off the reactor.
                let healing = Arc::clone(storage);
                let _ = tokio::task::spawn_blocking(move || healing.heal()).await;
            }
            if !forgotten.is_empty() {
                drop(storage.forget_replies(&forgotten));
            }
        }
    }
}

/// A node without credentials serves loopback addresses only, unless told
/// `--insecure`: every address it would listen on is looked at.
fn check_exposure(config: &NodeConfig) -> io::Result<()> {
    if config.tls.is_some() && config.cluster.is_some() && config.tls_ca.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a cluster member with --tls-cert serves TLS on its peer port too, and reaches the \
             other members' the same way: give --tls-ca FILE, the CA of their certificates",
        ));
    }
    if config.credentials.is_some() {
        return Ok(());
    }
    let mut addrs = vec![("--listen", config.listen.as_str())];
    addrs.extend(config.metrics.as_deref().map(|a| ("--metrics", a)));
    addrs.extend(config.admin.as_deref().map(|a| ("--admin", a)));
    if let Some(cluster) = &config.cluster {
        addrs.extend(cluster.peer_listen.as_deref().map(|a| ("--peer-listen", a)));
    }
    crate::auth::check_exposure(&addrs, config.insecure)
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    if config.insecure {
        tracing::warn!(
            "--insecure: no credentials asked; anyone who reaches the node's ports can call, \
             read and delete every object"
        );
    }
    Ok(())
}

/// `--etcd` and `--admin` need the `cluster` feature: a node built without it
/// says so instead of ignoring them.
fn check_features(config: &NodeConfig) -> io::Result<()> {
    let flag = if cfg!(feature = "cluster") {
        return Ok(());
    } else if config.cluster.is_some() {
        "--etcd (joining a cluster)"
    } else if config.admin.is_some() {
        "--admin (the admin plane)"
    } else {
        return Ok(());
    };
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{flag} needs a node built with crucial-server's `cluster` feature: \
             `cargo build --release --features cluster` for the examples, \
             `crucial-server = {{ version = \"0.1\", features = [\"cluster\"] }}` in an application"
        ),
    ))
}

/// Binds and serves a cluster member's peer port (node-to-node requests);
/// returns the address the other members are told.
#[cfg(feature = "cluster")]
async fn serve_peers(
    node: &Arc<NodeState>,
    cluster: &crate::config::ClusterConfig,
    bound: SocketAddr,
    advertise: &str,
) -> io::Result<String> {
    let at = cluster
        .peer_listen
        .clone()
        .unwrap_or_else(|| SocketAddr::new(bound.ip(), 0).to_string());
    let listener = TcpListener::bind(&at).await?;
    let port = listener.local_addr()?.port();
    let advertised = cluster.advertise_peer.clone().unwrap_or_else(|| {
        let host = advertise
            .rsplit_once(':')
            .map_or(advertise, |(host, _)| host);
        format!("{host}:{port}")
    });
    tracing::info!(peer = %advertised, "serving the peer port");
    tokio::spawn(net::serve(listener, Arc::clone(node), Plane::Peer));
    Ok(advertised)
}

/// Serves the admin plane on `listener` until the node stops.
#[cfg(feature = "cluster")]
fn serve_admin(
    listener: TcpListener,
    node: &Arc<NodeState>,
    advertise: String,
) -> tokio::task::JoinHandle<()> {
    let admin = listener
        .local_addr()
        .map_or_else(|_| String::new(), |a| a.to_string());
    let service = crate::admin::AdminService::new(Arc::clone(node), advertise, admin);
    let node_auth = node.auth.clone();
    // The node's certificate (checked at start, read again here).
    let tls = node.config.tls.as_ref().and_then(|(cert, key)| {
        match (std::fs::read(cert), std::fs::read(key)) {
            (Ok(cert), Ok(key)) => Some(
                tonic::transport::ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(cert, key)),
            ),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("the admin plane serves no TLS: cannot read its certificate: {e}");
                None
            }
        }
    });
    let stopped = {
        let node = Arc::clone(node);
        async move { node.stopped().await }
    };
    tokio::spawn(async move {
        let auth = node_auth;
        if let Err(e) = crate::admin::serve(listener, service, auth, tls, stopped).await {
            tracing::warn!("the admin plane stopped: {e}");
        }
    })
}

/// A node running on a background thread.
#[derive(Debug)]
pub struct NodeHandle {
    bound: Bound,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl NodeHandle {
    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.bound.addr
    }

    /// Every address the node bound.
    pub fn bound(&self) -> Bound {
        self.bound
    }

    /// Stops the node cleanly and waits until it has stopped.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("the node thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Starts a node on a background thread; returns once it is listening. The node
/// stops when the handle is shut down or dropped.
pub fn start(config: NodeConfig) -> io::Result<NodeHandle> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (bound, thread) = start_thread(config, async move {
        let _ = stop_rx.await;
    })?;
    Ok(NodeHandle {
        bound,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Starts a node on a background thread that lives as long as the process (the
/// embedded default); returns once it is listening.
pub fn spawn(config: NodeConfig) -> io::Result<SocketAddr> {
    let (bound, _detached) = start_thread(config, std::future::pending())?;
    Ok(bound.addr)
}

type NodeThread = std::thread::JoinHandle<io::Result<()>>;

fn start_thread(
    config: NodeConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<(Bound, NodeThread)> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("crucial-node".into())
        .spawn(move || {
            run_until(
                config,
                |bound| {
                    let _ = ready_tx.send(bound);
                },
                stop,
            )
        })?;
    match ready_rx.recv() {
        Ok(bound) => Ok((bound, thread)),
        Err(_) => Err(thread
            .join()
            .map_err(|_| io::Error::other("the node thread panicked"))?
            .err()
            .unwrap_or_else(|| io::Error::other("the node thread ended before listening"))),
    }
}
