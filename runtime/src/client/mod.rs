//! The data-plane client: connections to nodes, routing by placement, round trips.
//!
//! A [`Client`] knows where objects live (a [`Placement`] over the current
//! membership view, which a newer view can replace) and keeps one long-lived,
//! multiplexed connection per node. It knows nothing about executors or cloud
//! threads: those belong to the process-wide [`Context`](crate::Context).

mod any_stream;
pub(crate) mod connection;
pub(crate) mod slot;
mod stream;
mod tls;
mod token;

pub use tls::Tls;
pub use token::Token;

use crate::placement::{Placement, View};
use crate::registry::SharedType;
use crate::wire::{ObjectInfo, ObjectRef, Request, ServerInfo, TypeInfo, WorkflowStats};
use crate::{codec, Error, RemoteError, Result};
use connection::Connection;
use slot::Reply;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What a client needs to reach its nodes (the data-plane part of a [`crate::Config`]).
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    /// Node addresses; never empty once the embedded node is started.
    pub servers: Vec<String>,
    /// Largest reply frame accepted, in bytes.
    pub max_frame: usize,
    /// Timeout for establishing a connection.
    pub connect_timeout: Duration,
    /// Re-sends (same request id) after a broken connection.
    pub retries: u32,
    /// Busy-wait of a lone blocking call before it sleeps.
    pub spin: Duration,
    /// The credential presented in each handshake.
    pub token: Option<Token>,
    /// TLS to the nodes (`None`: plain TCP).
    pub tls: Option<Tls>,
}

/// One node of the view and the connection to it.
struct Node {
    addr: String,
    conn: RwLock<Option<Arc<Connection>>>,
    connecting: Mutex<()>,
}

impl Node {
    fn new(addr: String) -> Arc<Node> {
        Arc::new(Node {
            addr,
            conn: RwLock::new(None),
            connecting: Mutex::new(()),
        })
    }

    fn close(&self) {
        if let Some(conn) = self.conn.write().unwrap_or_else(|e| e.into_inner()).take() {
            conn.close();
        }
    }
}

/// The placement of the current view and a node entry per member, in view order.
struct Routing {
    placement: Placement,
    nodes: Vec<Arc<Node>>,
}

struct Inner {
    id: u64,
    seq: AtomicU64,
    /// Turns of read-only calls over an object's owner and light replicas.
    readers: AtomicU64,
    /// When a read-only call last asked a node for its view, in ms since
    /// `born` (0: never).
    view_asked_ms: AtomicU64,
    born: std::time::Instant,
    options: ClientOptions,
    routing: RwLock<Arc<Routing>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let routing = self.routing.read().unwrap_or_else(|e| e.into_inner());
        for node in &routing.nodes {
            node.close();
        }
    }
}

/// A handle to the shared-object layer. Cheap to clone; all clones share connections.
///
/// ```
/// # crucial_server::link();
/// use crucial::{AtomicI64, Config};
/// let client = Config::new().connect()?; // embedded node: nothing configured
/// let hits = client.open::<AtomicI64>("hits");
/// assert_eq!(hits.fetch_add(2)?, 0);
/// assert_eq!(client.list_objects()?.len(), 1);
/// # Ok::<(), crucial::Error>(())
/// ```
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
    /// A client of the nodes in `options` (connections open on first use).
    pub(crate) fn connect(options: ClientOptions) -> Result<Client> {
        if options.servers.is_empty() {
            return Err(Error::Config("a client needs at least one server".into()));
        }
        let view = View::fixed(options.servers.clone());
        Ok(Client {
            inner: Arc::new(Inner {
                id: random_id(),
                seq: AtomicU64::new(1),
                readers: AtomicU64::new(0),
                view_asked_ms: AtomicU64::new(0),
                born: std::time::Instant::now(),
                routing: RwLock::new(Arc::new(Routing {
                    nodes: view.nodes.iter().cloned().map(Node::new).collect(),
                    placement: Placement::new(view),
                })),
                options,
            }),
        })
    }

    /// This client's id (the first half of every request's identity).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The credential this client presents (cloud threads it starts
    /// present it too).
    pub fn token(&self) -> Option<&Token> {
        self.inner.options.token.as_ref()
    }

    /// How this client reaches TLS nodes (cloud threads it starts reach
    /// them so too).
    pub fn tls(&self) -> Option<&Tls> {
        self.inner.options.tls.as_ref()
    }

    /// The server addresses of the current view.
    pub fn servers(&self) -> Vec<String> {
        self.routing().placement.view().nodes.clone()
    }

    /// Replaces the view if `view` is newer (a larger epoch); returns whether it
    /// did. Connections to nodes that stay in the view are kept. The cluster's
    /// redirects call this.
    pub(crate) fn update_view(&self, view: View) -> bool {
        let mut routing = self
            .inner
            .routing
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if view.epoch <= routing.placement.view().epoch {
            return false;
        }
        let nodes = view
            .nodes
            .iter()
            .map(|addr| {
                routing
                    .nodes
                    .iter()
                    .find(|n| &n.addr == addr)
                    .cloned()
                    .unwrap_or_else(|| Node::new(addr.clone()))
            })
            .collect::<Vec<_>>();
        for old in &routing.nodes {
            if !nodes.iter().any(|n| Arc::ptr_eq(n, old)) {
                old.close();
            }
        }
        *routing = Arc::new(Routing {
            placement: Placement::new(view),
            nodes,
        });
        true
    }

    /// Creates an object from an initial value unless it exists; returns whether it was created.
    pub fn create<T: SharedType + serde::Serialize>(&self, key: &str, initial: &T) -> Result<bool> {
        let state = codec::encode(initial)?;
        let object = ObjectRef {
            type_name: T::NAME,
            key,
        };
        let request = Request::Create {
            object,
            state: &state,
        };
        codec::decode(&self.call(object, &request.encode()?, true)?)
    }

    /// Deletes an object; returns whether it existed.
    pub fn delete(&self, type_name: &str, key: &str) -> Result<bool> {
        let object = ObjectRef { type_name, key };
        let request = Request::Delete { object };
        codec::decode(&self.call(object, &request.encode()?, true)?)
    }

    /// Lists the objects held by every node.
    pub fn list_objects(&self) -> Result<Vec<ObjectInfo>> {
        self.discover();
        let mut all = Vec::new();
        for node in self.routing().nodes.iter() {
            let mut some: Vec<ObjectInfo> = self.request_decoded(node, &Request::ListObjects)?;
            all.append(&mut some);
        }
        all.sort();
        Ok(all)
    }

    /// Lists the shared types registered in the first node's binary.
    pub fn list_types(&self) -> Result<Vec<TypeInfo>> {
        self.request_decoded(&*self.node_at(0)?, &Request::ListTypes)
    }

    /// What every node counts of its lambda-object workflows, added up.
    pub fn workflow_stats(&self) -> Result<WorkflowStats> {
        self.discover();
        let mut total = WorkflowStats::default();
        for node in self.routing().nodes.iter() {
            let stats: WorkflowStats = self.request_decoded(node, &Request::WorkflowStats)?;
            total = total.plus(stats);
        }
        Ok(total)
    }

    /// What node `node` (an index into [`Client::servers`]) said in its handshake.
    pub fn server_info(&self, node: usize) -> Result<ServerInfo> {
        Ok(self.connection(&*self.node_at(node)?)?.server().clone())
    }

    /// Round trip to every node.
    pub fn ping(&self) -> Result<()> {
        self.discover();
        for node in self.routing().nodes.iter() {
            self.request_decoded::<()>(node, &Request::Ping)?;
        }
        Ok(())
    }

    /// Learns the cluster's view from the first node (its handshake carries
    /// it), so a client given one address of a cluster finds every node.
    fn discover(&self) {
        if let Ok(node) = self.node_at(0) {
            let _ = self.connection(&node);
        }
    }

    fn routing(&self) -> Arc<Routing> {
        Arc::clone(&self.inner.routing.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn node_at(&self, index: usize) -> Result<Arc<Node>> {
        let routing = self.inner.routing.read().unwrap_or_else(|e| e.into_inner());
        routing.nodes.get(index).cloned().ok_or_else(|| {
            Error::Config(format!(
                "no node {index}: the view has {} node(s)",
                routing.nodes.len()
            ))
        })
    }

    /// The node to ask for its view before a read-only call, if it is time:
    /// at most once per [`VIEW_FOR_READS`], in a cluster. A view change that
    /// moves nothing (light replicas given or taken) redirects no call, so
    /// read-only calls look for it themselves.
    fn view_to_ask(&self, reading: bool) -> Option<Arc<Node>> {
        if !reading {
            return None; // every other call: nothing on its path
        }
        let routing = self.routing();
        if routing.placement.view().epoch == 0 {
            return None;
        }
        let now = (self.inner.born.elapsed().as_millis() as u64).max(1);
        let asked = self.inner.view_asked_ms.load(Ordering::Relaxed);
        let due = asked == 0 || now.saturating_sub(asked) >= VIEW_FOR_READS.as_millis() as u64;
        // One caller asks; the others go on with the view they have.
        let mine = due
            && self
                .inner
                .view_asked_ms
                .compare_exchange(asked, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        mine.then(|| Arc::clone(&routing.nodes[0]))
    }

    /// Takes the view a node answered with, if newer.
    fn take_view(&self, asked: Reply) {
        if let Ok(Some(view)) = asked.and_then(|bytes| codec::decode::<Option<View>>(&bytes)) {
            self.update_view(view);
        }
    }

    /// The node a read-only call on an object goes to first: its owner or
    /// one of its light replicas, in turn.
    fn reader(&self, object: ObjectRef<'_>) -> Arc<Node> {
        let routing = self.inner.routing.read().unwrap_or_else(|e| e.into_inner());
        let placement = &routing.placement;
        let light = placement.light_indexes(object.type_name, object.key);
        let owner = placement.owner_index(object.type_name, object.key);
        let index = match light.len() {
            0 => owner,
            n => match self.inner.readers.fetch_add(1, Ordering::Relaxed) as usize % (n + 1) {
                0 => owner,
                i => light[i - 1],
            },
        };
        Arc::clone(&routing.nodes[index])
    }

    /// The node owning an object in the current view.
    fn owner(&self, object: ObjectRef<'_>) -> Arc<Node> {
        let routing = self.inner.routing.read().unwrap_or_else(|e| e.into_inner());
        let index = routing.placement.owner_index(object.type_name, object.key);
        Arc::clone(&routing.nodes[index])
    }

    fn request_decoded<R: serde::de::DeserializeOwned>(
        &self,
        node: &Node,
        request: &Request<'_>,
    ) -> Result<R> {
        let payload = request.encode()?;
        let bytes = self.roundtrip(node, &payload, true)?;
        codec::decode(&bytes)
    }

    fn connection(&self, node: &Node) -> Result<Arc<Connection>> {
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
            self.inner.options.token.as_ref(),
            self.inner.options.tls.as_ref(),
            self.inner.options.max_frame,
            self.inner.options.connect_timeout,
        )?;
        *node.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&conn));
        drop(_one_at_a_time);
        if let Some(view) = &conn.server().view {
            self.update_view(view.clone());
        }
        Ok(conn)
    }

    fn next_id(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Ships a request about `object` to its owner and blocks for the reply.
    /// `may_spin: false` sleeps at once (for blocking methods, whose reply waits
    /// for other callers: spinning would only take the CPU they need).
    ///
    /// In a cluster the owner may change under the call: a node that does not
    /// own the object answers a redirect with its view, and the call goes again
    /// with the same id (the node deduplicates) to the owner of the newer view.
    pub(crate) fn call(&self, object: ObjectRef<'_>, payload: &[u8], may_spin: bool) -> Reply {
        self.call_routed(object, payload, may_spin, false)
    }

    /// [`Client::call`] for a read-only call: its first attempt goes to the
    /// object's owner or one of its light replicas, in turn (the view says
    /// which it has); a light replica that cannot serve it sends it on to
    /// the owner.
    pub(crate) fn call_reading(&self, object: ObjectRef<'_>, payload: &[u8]) -> Reply {
        self.call_routed(object, payload, true, true)
    }

    fn call_routed(
        &self,
        object: ObjectRef<'_>,
        payload: &[u8],
        may_spin: bool,
        reading: bool,
    ) -> Reply {
        if let Some(node) = self.view_to_ask(reading) {
            let asked = self.roundtrip(&node, &Request::View.encode().unwrap_or_default(), false);
            self.take_view(asked);
        }
        let id = self.next_id();
        let mut route = Rerouting::new(reading);
        loop {
            let node = route.node(self, object);
            let reply = self.roundtrip_id(&node, id, payload, may_spin);
            match route.next(self, &node, reply) {
                Next::Done(reply) => return reply,
                Next::Again(pause) => std::thread::sleep(pause),
            }
        }
    }

    /// Async twin of [`Client::call`]. The payload is owned, so the future
    /// borrows nothing.
    pub(crate) fn call_async(
        &self,
        object: ObjectRef<'_>,
        payload: Vec<u8>,
    ) -> impl std::future::Future<Output = Reply> + Send + 'static {
        self.call_async_routed(object, payload, false)
    }

    /// [`Client::call_async`], or with `reading` the async twin of
    /// [`Client::call_reading`].
    pub(crate) fn call_async_routed(
        &self,
        object: ObjectRef<'_>,
        payload: Vec<u8>,
        reading: bool,
    ) -> impl std::future::Future<Output = Reply> + Send + 'static {
        let (type_name, key) = (object.type_name.to_string(), object.key.to_string());
        let client = self.clone();
        async move {
            let object = ObjectRef {
                type_name: &type_name,
                key: &key,
            };
            if let Some(node) = client.view_to_ask(reading) {
                let ask = Request::View.encode().unwrap_or_default();
                let asked = client.roundtrip_async(&node, client.next_id(), &ask).await;
                client.take_view(asked);
            }
            let id = client.next_id();
            let mut route = Rerouting::new(reading);
            loop {
                let node = route.node(&client, object);
                let reply = client.roundtrip_async(&node, id, &payload).await;
                match route.next(&client, &node, reply) {
                    Next::Done(reply) => return reply,
                    Next::Again(pause) => pause_async(pause).await,
                }
            }
        }
    }

    /// A request that names no object, to one node.
    fn roundtrip(&self, node: &Node, payload: &[u8], may_spin: bool) -> Reply {
        self.roundtrip_id(node, self.next_id(), payload, may_spin)
    }

    /// Sends a request payload and blocks for its reply, re-sending it with the same
    /// id on a fresh connection if the connection breaks (the node deduplicates).
    fn roundtrip_id(&self, node: &Node, id: u64, payload: &[u8], may_spin: bool) -> Reply {
        let mut attempt = 0;
        loop {
            let spin = if may_spin {
                self.inner.options.spin
            } else {
                Duration::ZERO
            };
            let result = self
                .connection(node)
                .and_then(|conn| conn.call(id, payload, spin));
            match result {
                Err(Error::Disconnected { .. }) | Err(Error::Connect { .. })
                    if attempt < self.inner.options.retries =>
                {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 << attempt.min(6)));
                }
                other => return other,
            }
        }
    }

    async fn roundtrip_async(&self, node: &Node, id: u64, payload: &[u8]) -> Reply {
        let mut attempt = 0;
        loop {
            let started = self
                .connection(node)
                .and_then(|conn| conn.start_async(id, payload));
            let result = match started {
                Ok(slot) => slot.wait_async().await,
                Err(e) => Err(e),
            };
            match result {
                Err(Error::Disconnected { .. }) | Err(Error::Connect { .. })
                    if attempt < self.inner.options.retries =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Asks the other nodes of the view for theirs after `failed` could not
    /// be reached; returns whether a newer view replaced the current one.
    fn refresh_view_avoiding(&self, failed: &Node) -> bool {
        let routing = self.routing();
        if routing.placement.view().epoch == 0 {
            return false; // no cluster behind the list: nobody to ask
        }
        for node in routing.nodes.iter().filter(|n| n.addr != failed.addr) {
            let view = self
                .roundtrip(node, &Request::View.encode().unwrap_or_default(), false)
                .and_then(|bytes| codec::decode::<Option<View>>(&bytes));
            if let Ok(Some(view)) = view {
                if self.update_view(view) {
                    return true;
                }
            }
        }
        false
    }

    /// Sends raw request bytes with an explicit id to node `node`, without retries.
    pub(crate) fn roundtrip_with_id(&self, node: usize, id: u64, payload: &[u8]) -> Reply {
        self.connection(&*self.node_at(node)?)?
            .call(id, payload, Duration::ZERO)
    }

    /// Closes the connection to node `node` (the next call reconnects).
    pub(crate) fn drop_connection(&self, node: usize) {
        if let Ok(node) = self.node_at(node) {
            node.close();
        }
    }
}

/// How often read-only calls ask for the view (see [`Client::view_to_ask`]).
const VIEW_FOR_READS: Duration = Duration::from_secs(1);

/// How long a call keeps following redirects and waiting for a moving object
/// before it gives up with the last error.
const REROUTE_FOR: Duration = Duration::from_secs(30);

/// What to do after one attempt of a routed call.
enum Next {
    Done(Reply),
    /// Send it again (same id) after this pause, to the owner of the current view.
    Again(Duration),
}

/// A routed call's redirects so far.
struct Rerouting {
    started: std::time::Instant,
    attempts: u32,
    /// A read-only call: its first attempt may go to a light replica.
    reading: bool,
    /// A node named by the last redirect as serving the object instead of
    /// its owner per the view.
    served_by: Option<String>,
}

impl Rerouting {
    fn new(reading: bool) -> Rerouting {
        Rerouting {
            started: std::time::Instant::now(),
            attempts: 0,
            reading,
            served_by: None,
        }
    }

    /// Where the next attempt goes: the node a redirect named, else the
    /// owner in the client's view (a read-only call's first attempt: the
    /// owner or a light replica).
    fn node(&self, client: &Client, object: ObjectRef<'_>) -> Arc<Node> {
        if self.reading && self.attempts == 0 {
            return client.reader(object);
        }
        if let Some(addr) = &self.served_by {
            let routing = client.routing();
            if let Some(node) = routing.nodes.iter().find(|n| &n.addr == addr) {
                return Arc::clone(node);
            }
            return Node::new(addr.clone());
        }
        client.owner(object)
    }

    /// Decides on `reply`, which `node` gave: a redirect takes the node's
    /// view when it is newer (else waits a little for the node or this client
    /// to catch up), a moving object is waited for, an unreachable or fenced
    /// node makes the client ask the others for a newer view.
    fn next(&mut self, client: &Client, node: &Node, reply: Reply) -> Next {
        if self.started.elapsed() > REROUTE_FOR {
            return Next::Done(reply);
        }
        self.attempts += 1;
        let backoff = Duration::from_micros(500 << self.attempts.min(7));
        match reply {
            Err(Error::Remote(RemoteError::NotOwner {
                view, served_by, ..
            })) => {
                let hinted = served_by.is_some();
                self.served_by = served_by;
                if client.update_view(*view) || hinted {
                    Next::Again(Duration::ZERO)
                } else {
                    Next::Again(backoff)
                }
            }
            Err(Error::Remote(RemoteError::Moving { .. })) => Next::Again(backoff),
            // A node cut off from etcd: the others may know a newer view.
            Err(Error::Remote(RemoteError::Fenced { .. })) => {
                if client.refresh_view_avoiding(node) {
                    Next::Again(Duration::ZERO)
                } else {
                    Next::Again(backoff)
                }
            }
            // An unreachable node: the others may know a newer view; in a
            // cluster, one without it comes once its lease expired (a
            // replica then answers for its objects, or the loss is told).
            Err(e @ (Error::Connect { .. } | Error::Disconnected { .. })) => {
                if client.refresh_view_avoiding(node) {
                    Next::Again(Duration::ZERO)
                } else if client.routing().placement.view().epoch != 0 {
                    Next::Again(backoff.max(Duration::from_millis(20)))
                } else {
                    Next::Done(Err(e))
                }
            }
            other => Next::Done(other),
        }
    }
}

/// Sleeps in a tokio runtime without blocking its thread, or blocks when the
/// future is driven elsewhere.
async fn pause_async(pause: Duration) {
    if pause.is_zero() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(pause).await;
    } else {
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(servers: &[&str]) -> Client {
        Client::connect(ClientOptions {
            servers: servers.iter().map(|s| s.to_string()).collect(),
            max_frame: 1024,
            connect_timeout: Duration::from_millis(10),
            retries: 0,
            spin: Duration::ZERO,
            token: None,
            tls: None,
        })
        .unwrap()
    }

    #[test]
    fn a_newer_view_replaces_the_placement_and_an_older_one_is_ignored() {
        let client = client(&["10.0.0.1:7000"]);
        assert_eq!(client.servers(), ["10.0.0.1:7000"]);
        let kept = client.node_at(0).unwrap();
        let two = View::new(2, vec!["10.0.0.1:7000".into(), "10.0.0.2:7000".into()]);
        assert!(client.update_view(two.clone()));
        assert_eq!(client.servers(), two.nodes);
        assert!(
            Arc::ptr_eq(&kept, &client.node_at(0).unwrap()),
            "a node that stays keeps its connection"
        );
        let owners: std::collections::HashSet<_> = (0..100)
            .map(|i| {
                let key = format!("k{i}");
                client
                    .owner(ObjectRef {
                        type_name: "T",
                        key: &key,
                    })
                    .addr
                    .clone()
            })
            .collect();
        assert_eq!(owners.len(), 2, "objects spread over the new view");
        let older = View::new(1, vec!["10.0.0.9:7000".into()]);
        assert!(!client.update_view(older));
        assert_eq!(client.servers(), two.nodes, "epoch 1 is older than 2");
    }
}
