//! The client: configuration, the process-wide default client, connections and placement.

mod connection;
mod placement;
mod slot;

pub use placement::{Membership, Ring};

use crate::registry::SharedType;
use crate::thread::{Executor, LocalExecutor, ProcessExecutor, SpawnOptions};
use crate::wire::{ObjectInfo, ObjectRef, Request, TypeInfo, DEFAULT_MAX_FRAME};
use crate::{codec, Error, Result, SharedProxy};
use connection::Connection;
use slot::Reply;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// Environment variable naming the server(s): `host:port[,host:port...]`.
/// Unset means *embedded*: an in-process server on a loopback port.
pub const ENV_SERVER: &str = "CRUCIAL_SERVER";

/// Default busy-wait of a lone blocking call, in microseconds.
const DEFAULT_SPIN_MICROS: u64 = 200;

/// How a client finds its servers and runs cloud threads.
///
/// ```
/// let config = crucial::Config::new()
///     .server("127.0.0.1:7000")
///     .retries(2);
/// assert_eq!(config.servers(), ["127.0.0.1:7000"]);
/// ```
#[derive(Clone)]
pub struct Config {
    servers: Vec<String>,
    max_frame: usize,
    connect_timeout: Duration,
    retries: u32,
    spin: Duration,
    executor: Option<Arc<dyn Executor>>,
    executor_kind: Option<String>,
    function_binary: Option<std::path::PathBuf>,
    spawn: SpawnOptions,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("servers", &self.servers)
            .field("max_frame", &self.max_frame)
            .field("connect_timeout", &self.connect_timeout)
            .field("retries", &self.retries)
            .field("spin", &self.spin)
            .field("executor", &self.executor.as_ref().map(|e| e.name()))
            .field("executor_kind", &self.executor_kind)
            .field("spawn", &self.spawn)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// Embedded defaults: no server (start one in process), local-thread executor.
    pub fn new() -> Config {
        Config {
            servers: Vec::new(),
            max_frame: DEFAULT_MAX_FRAME,
            connect_timeout: Duration::from_secs(5),
            retries: 1,
            spin: Duration::from_micros(DEFAULT_SPIN_MICROS),
            executor: None,
            executor_kind: None,
            function_binary: None,
            spawn: SpawnOptions::default(),
        }
    }

    /// Defaults overridden by the environment: `CRUCIAL_SERVER`,
    /// `CRUCIAL_EXECUTOR` (`local`, `process`, `lambda`), `CRUCIAL_FUNCTION_BINARY`,
    /// `CRUCIAL_ATTEMPTS`, `CRUCIAL_BACKOFF_MS`, `CRUCIAL_TIMEOUT_MS`,
    /// `CRUCIAL_SPIN_MICROS`.
    pub fn from_env() -> Config {
        let mut config = Config::new();
        config.executor_kind = std::env::var("CRUCIAL_EXECUTOR")
            .ok()
            .filter(|v| !v.is_empty());
        config.function_binary = std::env::var_os("CRUCIAL_FUNCTION_BINARY").map(Into::into);
        config.spawn = SpawnOptions::from_env();
        if let Some(micros) = std::env::var("CRUCIAL_SPIN_MICROS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.spin = Duration::from_micros(micros);
        }
        if let Ok(list) = std::env::var(ENV_SERVER) {
            for addr in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                config = config.server(addr);
            }
        }
        config
    }

    /// Adds a server address (`host:port`).
    pub fn server(mut self, addr: impl Into<String>) -> Config {
        self.servers.push(addr.into());
        self
    }

    /// The configured servers (empty means embedded).
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// Largest reply frame accepted, in bytes.
    pub fn max_frame(mut self, bytes: usize) -> Config {
        self.max_frame = bytes;
        self
    }

    /// Timeout for establishing a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Config {
        self.connect_timeout = timeout;
        self
    }

    /// How many times a call is re-sent (same request id, so applied once) after
    /// its connection broke.
    pub fn retries(mut self, retries: u32) -> Config {
        self.retries = retries;
        self
    }

    /// How long a blocking call that is alone on its connection busy-waits for its
    /// reply before sleeping (default 200 µs; zero never spins). Also set by
    /// `CRUCIAL_SPIN_MICROS`.
    pub fn spin(mut self, spin: Duration) -> Config {
        self.spin = spin;
        self
    }

    /// The executor that runs cloud threads (default: local threads).
    pub fn executor(mut self, executor: impl Executor) -> Config {
        self.executor = Some(Arc::new(executor));
        self
    }

    /// Chooses an executor by name, built when the client connects: `local`,
    /// `process` (the function binary as processes under a local Lambda host) or
    /// `lambda` (AWS Lambda; needs the `lambda` feature).
    pub fn executor_kind(mut self, kind: impl Into<String>) -> Config {
        self.executor_kind = Some(kind.into());
        self
    }

    /// The function binary of the `process` executor (default: the running
    /// program's name plus `-function`, in its directory).
    pub fn function_binary(mut self, path: impl Into<std::path::PathBuf>) -> Config {
        self.function_binary = Some(path.into());
        self
    }

    /// Default retries and time limit of cloud threads.
    pub fn spawn_options(mut self, options: SpawnOptions) -> Config {
        self.spawn = options;
        self
    }

    fn build_executor(&self) -> Result<Arc<dyn Executor>> {
        if let Some(executor) = &self.executor {
            return Ok(Arc::clone(executor));
        }
        match self.executor_kind.as_deref() {
            None | Some("local") => Ok(Arc::new(LocalExecutor)),
            Some("process") => {
                let binary = self
                    .function_binary
                    .clone()
                    .or_else(ProcessExecutor::sibling_binary)
                    .ok_or_else(|| {
                        Error::Config("no function binary: set CRUCIAL_FUNCTION_BINARY".into())
                    })?;
                Ok(Arc::new(ProcessExecutor::new(binary)?))
            }
            Some("lambda") => crate::aws::executor_from_env(),
            Some(other) => Err(Error::Config(format!(
                "unknown executor `{other}`; expected local, process or lambda"
            ))),
        }
    }

    /// Builds a client. With no server configured, starts the embedded server.
    pub fn connect(self) -> Result<Client> {
        Client::new(self)
    }
}

struct Node {
    addr: String,
    conn: RwLock<Option<Arc<Connection>>>,
    connecting: Mutex<()>,
}

struct Inner {
    id: u64,
    seq: AtomicU64,
    config: Config,
    ring: Ring,
    nodes: Vec<Node>,
    executor: Arc<dyn Executor>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(conn) = node.conn.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
                conn.close();
            }
        }
    }
}

/// A handle to the shared-object layer. Cheap to clone; all clones share connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.inner.id)
            .field("servers", &self.servers())
            .finish()
    }
}

static GLOBAL: OnceLock<Client> = OnceLock::new();
static GLOBAL_INIT: Mutex<()> = Mutex::new(());

fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() | 1
}

impl Client {
    fn new(mut config: Config) -> Result<Client> {
        if config.servers.is_empty() {
            config.servers.push(crate::embedded::start()?);
        }
        let view = Membership {
            version: 1,
            nodes: config.servers.clone(),
        };
        let executor = config.build_executor()?;
        Ok(Client {
            inner: Arc::new(Inner {
                id: random_id(),
                seq: AtomicU64::new(1),
                ring: Ring::new(&view),
                nodes: view
                    .nodes
                    .iter()
                    .map(|addr| Node {
                        addr: addr.clone(),
                        conn: RwLock::new(None),
                        connecting: Mutex::new(()),
                    })
                    .collect(),
                config,
                executor,
            }),
        })
    }

    /// The process-wide client used by `Type::shared(key)` and cloud threads,
    /// built from [`Config::from_env`] on first use unless [`Client::install`]ed.
    pub fn global() -> Result<&'static Client> {
        if let Some(client) = GLOBAL.get() {
            return Ok(client);
        }
        let _guard = GLOBAL_INIT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = GLOBAL.get() {
            return Ok(client);
        }
        let client = Config::from_env().connect()?;
        Ok(GLOBAL.get_or_init(|| client))
    }

    /// Makes this client the process-wide one. Fails if one is already in use.
    pub fn install(self) -> Result<()> {
        let _guard = GLOBAL_INIT.lock().unwrap_or_else(|e| e.into_inner());
        GLOBAL
            .set(self)
            .map_err(|_| Error::Config("a global client is already installed".into()))
    }

    /// This client's id (the first half of every request's identity).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The server addresses of the current view.
    pub fn servers(&self) -> Vec<String> {
        self.inner.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// The executor cloud threads run on.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    /// Default retries and time limit of cloud threads.
    pub fn spawn_options(&self) -> &SpawnOptions {
        &self.inner.config.spawn
    }

    /// Opens a proxy on this client (rather than the global one).
    pub fn open<T: SharedType>(&self, key: impl Into<String>) -> T::Proxy {
        T::Proxy::from_core(crate::proxy::ProxyCore::with_client(
            T::NAME,
            key.into(),
            self.clone(),
        ))
    }

    /// Creates an object from an initial value unless it exists; returns whether it was created.
    pub fn create<T: SharedType + serde::Serialize>(&self, key: &str, initial: &T) -> Result<bool> {
        let state = codec::encode(initial)?;
        let object = ObjectRef {
            type_name: T::NAME,
            key,
        };
        self.request_decoded(
            self.owner(object),
            &Request::Create {
                object,
                state: &state,
            },
        )
    }

    /// Deletes an object; returns whether it existed.
    pub fn delete(&self, type_name: &str, key: &str) -> Result<bool> {
        let object = ObjectRef { type_name, key };
        self.request_decoded(self.owner(object), &Request::Delete { object })
    }

    /// Lists the objects held by every node.
    pub fn list_objects(&self) -> Result<Vec<ObjectInfo>> {
        let mut all = Vec::new();
        for node in 0..self.inner.nodes.len() {
            let mut some: Vec<ObjectInfo> = self.request_decoded(node, &Request::ListObjects)?;
            all.append(&mut some);
        }
        all.sort();
        Ok(all)
    }

    /// Lists the shared types registered in the first node's binary.
    pub fn list_types(&self) -> Result<Vec<TypeInfo>> {
        self.request_decoded(0, &Request::ListTypes)
    }

    /// What the node said in its handshake (protocol, version, number of types).
    pub fn server_info(&self, node: usize) -> Result<crate::wire::ServerInfo> {
        Ok(self.connection(node)?.server().clone())
    }

    /// Round trip to every node.
    pub fn ping(&self) -> Result<()> {
        for node in 0..self.inner.nodes.len() {
            self.request_decoded::<()>(node, &Request::Ping)?;
        }
        Ok(())
    }

    fn request_decoded<R: serde::de::DeserializeOwned>(
        &self,
        node: usize,
        request: &Request<'_>,
    ) -> Result<R> {
        let payload = codec::encode(request)?;
        let bytes = self.roundtrip(node, &payload)?;
        codec::decode(&bytes)
    }

    /// Index of the node owning an object in the current view.
    pub(crate) fn owner(&self, object: ObjectRef<'_>) -> usize {
        self.inner.ring.owner(object.type_name, object.key)
    }

    fn connection(&self, node: usize) -> Result<Arc<Connection>> {
        let node = &self.inner.nodes[node];
        if let Some(conn) = node.conn.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if !conn.is_dead() {
                return Ok(Arc::clone(conn));
            }
        }
        let _one_at_a_time = node.connecting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = node.conn.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if !conn.is_dead() {
                return Ok(Arc::clone(conn));
            }
        }
        let conn = Connection::open(
            &node.addr,
            self.inner.id,
            self.inner.config.max_frame,
            self.inner.config.connect_timeout,
        )?;
        *node.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&conn));
        Ok(conn)
    }

    fn next_id(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request payload and blocks for its reply, re-sending it with the same
    /// id on a fresh connection if the connection breaks (the node deduplicates).
    pub(crate) fn roundtrip(&self, node: usize, payload: &[u8]) -> Reply {
        self.roundtrip_spinning(node, payload, true)
    }

    /// [`Client::roundtrip`]; `may_spin: false` sleeps at once (for blocking
    /// methods, whose reply waits for other callers: spinning would only take the
    /// CPU they need).
    pub(crate) fn roundtrip_spinning(&self, node: usize, payload: &[u8], may_spin: bool) -> Reply {
        let id = self.next_id();
        let mut attempt = 0;
        loop {
            let spin = if may_spin {
                self.inner.config.spin
            } else {
                Duration::ZERO
            };
            let result = self
                .connection(node)
                .and_then(|conn| conn.start(id, payload))
                .and_then(|(slot, alone)| {
                    slot.wait_spinning(if alone { spin } else { Duration::ZERO })
                });
            match result {
                Err(Error::Disconnected { .. }) | Err(Error::Connect { .. })
                    if attempt < self.inner.config.retries =>
                {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 << attempt.min(6)));
                }
                other => return other,
            }
        }
    }

    /// Async twin of [`Client::roundtrip`]. The payload is owned so the future is `'static`.
    pub(crate) async fn roundtrip_async(self, node: usize, payload: Vec<u8>) -> Reply {
        let id = self.next_id();
        let mut attempt = 0;
        loop {
            let started = self
                .connection(node)
                .and_then(|conn| conn.start(id, &payload));
            let result = match started {
                Ok((slot, _)) => slot.wait_async().await,
                Err(e) => Err(e),
            };
            match result {
                Err(Error::Disconnected { .. }) | Err(Error::Connect { .. })
                    if attempt < self.inner.config.retries =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Sends raw request bytes with an explicit id, for tests of deduplication.
    #[doc(hidden)]
    pub fn roundtrip_with_id(&self, node: usize, id: u64, payload: &[u8]) -> Result<bytes::Bytes> {
        self.connection(node)?.start(id, payload)?.0.wait()
    }

    /// Closes the connection to a node (the next call reconnects), for tests.
    #[doc(hidden)]
    pub fn drop_connection(&self, node: usize) {
        if let Some(conn) = self.inner.nodes[node]
            .conn
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            conn.close();
        }
    }
}
