//! This node's part of the cluster: the views it walks through, the objects
//! lost with crashed nodes, and what the apply step asks of them.

// Built into every node, driven only by membership on etcd (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use super::backups::Replication;
use super::settle::{Absent, LostRange, Settler};
use crate::shared_objects::{ObjectCell, ObjectTable};
use crucial::__private::registry::{ObjectBox, SharedTypeEntry};
use crucial::RemoteError;
use crucial_protocol::placement::View;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a call on an object that is moving here waits for it before it
/// is answered `Moving` (its client then retries).
pub const MOVE_WAIT: Duration = Duration::from_secs(2);

/// The first version of an object created now: the wall clock in
/// microseconds, so a key deleted and created again starts above the
/// versions (and the tombstone) of its earlier life.
fn fresh_version() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
}

/// How [`Cluster::cell`] found an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// It was here.
    Found,
    /// It arrived from another node (a handoff) while the caller waited:
    /// replies of calls its former owner ran came with it.
    Arrived,
    /// Made now by `create`.
    Created,
    /// Made now from this node's backup of it (its head crashed): it must
    /// be stored and sent to its new replica set before it is relied on.
    Promoted,
}

/// One node's part of the cluster.
pub struct Cluster {
    /// This node's address as the other nodes and clients reach it.
    pub me: String,
    settler: RwLock<Settler>,
    lost: RwLock<Vec<LostRange>>,
    /// Keys forgiven their loss (deleted or created since).
    forgiven: Mutex<std::collections::HashSet<(String, String)>>,
    /// Signalled when objects arrive or a view settles (calls wait on it).
    arrived: tokio::sync::Notify,
    /// Work for the handoff thread (a view, a "done", a drain).
    work: (Mutex<bool>, Condvar),
    /// Applications whose lambda objects a node keeps serving although the
    /// ring gives them to another (their move timed out), by application.
    kept: RwLock<std::collections::HashMap<String, String>>,
    /// Admin addresses of the members, by data address (from etcd).
    admins: RwLock<std::collections::BTreeMap<String, String>>,
    /// Members' peer ports, by data address.
    peers: RwLock<std::collections::BTreeMap<String, String>>,
    /// Set once a drain is asked for.
    draining: tokio::sync::watch::Sender<bool>,
    /// Set once the drain is over.
    drained: tokio::sync::watch::Sender<bool>,
    /// Where placements by hand go to be written to etcd (set once the
    /// node joined).
    pub(super) placing: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Placing>>,
    /// The handoff thread still owes objects or a "done" to some member.
    owing: std::sync::atomic::AtomicBool,
    /// Workflows running per application, and the applications being moved
    /// (whose new workflows wait).
    apps: Mutex<std::collections::HashMap<String, AppGate>>,
    apps_idle: Condvar,
    /// The membership lease: when the last renewal etcd acknowledged was
    /// sent, and until when the lease surely holds, in ms since `born`.
    lease: LeaseClock,
    /// The cluster's copies of each persistent object (`--replicas`).
    replicas: u8,
    /// Connections to replicas, and the backups kept for other heads.
    pub replication: Replication,
    /// Entries of the objects this node is a light replica of.
    pub light: super::light_cache::LightCache,
    /// Tests only (`--weaken-ack-at-head`): writes are acknowledged before
    /// their replicas have them.
    pub weaken_ack_at_head: bool,
    /// Tests only (`--delay-between-homes-ms`): a commit managed here that
    /// wrote several of its homes waits this long between the root home's
    /// copy and the others'.
    pub delay_between_homes: Duration,
}

/// How long this node's etcd lease surely holds. Past that, the cluster may
/// have declared the node gone and given its objects to others, so it fences
/// itself: it serves nothing until a renewal succeeds again.
struct LeaseClock {
    born: Instant,
    renewed_ms: std::sync::atomic::AtomicU64,
    valid_until_ms: std::sync::atomic::AtomicU64,
}

impl LeaseClock {
    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.born).as_millis() as u64
    }
}

/// An operator's placement of an object by hand, for membership to write
/// to etcd.
pub(super) struct Placing {
    /// The object, by type name and key.
    pub object: (String, String),
    /// What to write.
    pub what: Placed,
    /// Told once etcd has it.
    pub written: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// A placement by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// The object's node (`None`: where the ring places it).
    On(Option<String>),
    /// Its light replicas (none: it has none).
    Light(Vec<String>),
}

impl Placed {
    /// The kind of etcd key it is written under.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Placed::On(_) => "placed",
            Placed::Light(_) => "light",
        }
    }

    /// The key's value (`None`: the key is deleted).
    pub(super) fn value(&self) -> Option<String> {
        match self {
            Placed::On(node) => node.clone(),
            Placed::Light(nodes) if nodes.is_empty() => None,
            Placed::Light(nodes) => Some(nodes.join(",")),
        }
    }

    /// Whether `view` says what this placement does about `object`.
    fn in_view(&self, view: &View, object: &(String, String)) -> bool {
        match self {
            Placed::On(node) => view.placed.get(object) == node.as_ref(),
            Placed::Light(nodes) if nodes.is_empty() => !view.light.contains_key(object),
            Placed::Light(nodes) => view.light.get(object) == Some(nodes),
        }
    }
}

/// How long [`Cluster::place`] waits for the view that places an object.
const PLACE_WITHIN: Duration = Duration::from_secs(30);

/// What [`Cluster::take_over`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Takeover {
    /// No backup of the application here.
    NoBackup,
    /// A move or another takeover of it is under way.
    Busy,
    /// The backup was taken; `promoted`: installed (else the application
    /// was here already).
    Took { promoted: bool },
}

/// One application's workflows on this node.
#[derive(Default)]
struct AppGate {
    running: usize,
    moving: bool,
}

/// A workflow of an application running on this node: counted until dropped,
/// so a move of the application waits for it.
pub struct AppGuard {
    cluster: Arc<Cluster>,
    application: String,
}

impl Drop for AppGuard {
    fn drop(&mut self) {
        let mut apps = self.cluster.apps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(gate) = apps.get_mut(&self.application) {
            gate.running = gate.running.saturating_sub(1);
            if gate.running == 0 && !gate.moving {
                apps.remove(&self.application);
            }
        }
        self.cluster.apps_idle.notify_all();
    }
}

impl Cluster {
    pub(super) fn new(me: String, replicas: u8, peer_id: u64, max_frame: usize) -> Cluster {
        Cluster {
            replicas,
            replication: Replication::new(peer_id, max_frame),
            light: Default::default(),
            weaken_ack_at_head: false,
            delay_between_homes: Duration::ZERO,
            settler: RwLock::new(Settler::new(&me)),
            me,
            lost: RwLock::default(),
            forgiven: Mutex::default(),
            arrived: tokio::sync::Notify::new(),
            work: (Mutex::new(false), Condvar::new()),
            kept: RwLock::default(),
            admins: RwLock::default(),
            peers: RwLock::default(),
            draining: tokio::sync::watch::Sender::new(false),
            drained: tokio::sync::watch::Sender::new(false),
            placing: std::sync::OnceLock::new(),
            owing: std::sync::atomic::AtomicBool::new(false),
            apps: Mutex::default(),
            apps_idle: Condvar::new(),
            lease: LeaseClock {
                born: Instant::now(),
                renewed_ms: std::sync::atomic::AtomicU64::new(0),
                valid_until_ms: std::sync::atomic::AtomicU64::new(u64::MAX),
            },
        }
    }

    /// etcd acknowledged a renewal (or a grant) of this node's lease, sent
    /// at `sent`, for `ttl` more seconds. The lease surely holds until 90 %
    /// of that from `sent` (etcd counts from when it received it, later).
    pub(super) fn lease_renewed(&self, sent: Instant, ttl: i64) {
        use std::sync::atomic::Ordering;
        let ttl = Duration::from_millis((ttl.max(0) as u64) * 900);
        let clock = &self.lease;
        clock.renewed_ms.fetch_max(clock.ms(sent), Ordering::AcqRel);
        let until = clock.ms(sent + ttl);
        let previous = clock.valid_until_ms.load(Ordering::Acquire);
        if previous == u64::MAX || until > previous {
            clock.valid_until_ms.store(until, Ordering::Release);
        }
    }

    /// The cluster's copies of each persistent object (`--replicas`).
    pub fn replicas(&self) -> u8 {
        self.replicas
    }

    /// How many copies objects of `entry` have (1: not replicated):
    /// persistent types have their own `replicas = N` or the cluster's.
    pub fn copies(&self, entry: &SharedTypeEntry) -> usize {
        if !entry.persistent {
            return 1;
        }
        match entry.replicas {
            0 => self.replicas as usize,
            n => n as usize,
        }
    }

    /// `Err(Fenced)` once this node's lease may have run out.
    pub fn fenced(&self) -> Result<(), RemoteError> {
        use std::sync::atomic::Ordering;
        let clock = &self.lease;
        let until = clock.valid_until_ms.load(Ordering::Acquire);
        if until == u64::MAX {
            return Ok(());
        }
        let now = clock.ms(Instant::now());
        if now <= until {
            return Ok(());
        }
        Err(RemoteError::Fenced {
            node: self.me.clone(),
            silent_ms: now.saturating_sub(clock.renewed_ms.load(Ordering::Acquire)),
        })
    }

    pub(super) fn settler(&self) -> std::sync::RwLockReadGuard<'_, Settler> {
        self.settler.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn settler_mut(&self) -> std::sync::RwLockWriteGuard<'_, Settler> {
        self.settler.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest view this node knows.
    pub fn view(&self) -> View {
        self.settler()
            .current()
            .map(|p| p.view().clone())
            .unwrap_or_else(|| View::fixed(vec![self.me.clone()]))
    }

    /// The newest view this node knows, with its ring.
    pub fn placement(&self) -> Arc<crucial_protocol::placement::Placement> {
        self.settler().current().cloned().unwrap_or_else(|| {
            Arc::new(crucial_protocol::placement::Placement::new(View::fixed(
                vec![self.me.clone()],
            )))
        })
    }

    /// Whether every view known is settled (no object is on its way).
    pub fn is_settled(&self) -> bool {
        self.settler().is_settled()
    }

    /// Whether a drain was asked for.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Admin addresses of the members, by data address.
    pub fn admins(&self) -> std::collections::BTreeMap<String, String> {
        self.admins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A member's admin address (`""`: none) and peer port.
    pub(super) fn set_member(&self, addr: &str, admin: &str, peer: &str) {
        let mut admins = self.admins.write().unwrap_or_else(|e| e.into_inner());
        if admin.is_empty() {
            admins.remove(addr);
        } else {
            admins.insert(addr.to_string(), admin.to_string());
        }
        drop(admins);
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        if peer.is_empty() {
            peers.remove(addr);
        } else {
            peers.insert(addr.to_string(), peer.to_string());
        }
    }

    /// Where a member takes node-to-node requests, if it said.
    pub(super) fn peer_of(&self, addr: &str) -> Option<String> {
        self.peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(addr)
            .cloned()
    }

    /// The redirect for a call on an object this node does not own.
    pub fn not_owner(&self, type_name: &str, key: &str) -> RemoteError {
        RemoteError::NotOwner {
            type_name: type_name.to_string(),
            key: key.to_string(),
            node: self.me.clone(),
            view: Box::new(self.view()),
            served_by: None,
        }
    }

    /// Fills this node's address and view into a redirect made below the
    /// cluster (a call that found its object handed off).
    pub fn fill(&self, error: &mut RemoteError) {
        if let RemoteError::NotOwner { node, view, .. } = error {
            *node = self.me.clone();
            **view = self.view();
        }
    }

    /// Whether this node owns the object in the newest view it knows.
    pub fn owns(&self, type_name: &str, key: &str) -> bool {
        self.settler().owns(type_name, key)
    }

    /// The object's cell on this node and how it came: made by `create` if
    /// no other node can hold it, after waiting (at most [`MOVE_WAIT`]) for
    /// it if it is on its way here. A backup this node keeps of it becomes
    /// the object (its head crashed: see `replication.rs`). `check_lost`: a
    /// key a crashed node held, of which no backup is here, is `Lost`, not
    /// created.
    pub async fn cell(
        &self,
        table: &ObjectTable,
        entry: &'static SharedTypeEntry,
        key: &str,
        check_lost: bool,
        mut create: impl FnMut() -> ObjectBox,
    ) -> Result<(Arc<ObjectCell>, Made), RemoteError> {
        // `decide` runs again only after a wait.
        let mut tries = 0;
        self.wait_for(entry.name, key, || {
            tries += 1;
            let mut verdict = Absent::Wait;
            let mut lost = None;
            let mut promoted = None;
            let mut backup_due = false;
            let found = table.get_or_create_if(entry, key, || {
                verdict = self.settler().absent(entry.name, key);
                if verdict != Absent::Create {
                    return None;
                }
                if let Some(backup) = self.replication.take(entry.name, key) {
                    // Deleted (`None`): the key starts afresh.
                    self.forgive(entry.name, key);
                    let state = backup.state?;
                    match (entry.decode_state)(&state) {
                        Ok(value) => {
                            promoted = Some(backup.version);
                            return Some(value);
                        }
                        Err(reason) => tracing::error!(
                            type_name = entry.name,
                            key,
                            "cannot decode the backup of an object whose head crashed: {reason}"
                        ),
                    }
                }
                if check_lost {
                    let rf = self.copies(entry);
                    if rf > 1 && !self.settler().is_settled() && self.in_lost_range(entry.name, key)
                    {
                        // Its backup may be on its way: wait for the views
                        // to settle.
                        backup_due = true;
                        return None;
                    }
                    lost = self.lost(entry.name, key, rf);
                    if lost.is_none() && rf > 1 && self.in_lost_range(entry.name, key) {
                        tracing::info!(
                            type_name = entry.name,
                            key,
                            "a key of a crashed head with no backup anywhere: it never \
                             existed, created now"
                        );
                    }
                }
                lost.is_none().then(&mut create)
            });
            if backup_due {
                return None;
            }
            if let Some(lost) = lost {
                return Some(Err(lost));
            }
            if let (Some((cell, true)), Some(version)) = (&found, promoted) {
                let mut state = cell.lock();
                state.version = version;
                drop(state);
                tracing::info!(
                    type_name = entry.name,
                    key,
                    version,
                    "took over an object whose head crashed, from its backup here"
                );
                return Some(Ok((Arc::clone(cell), Made::Promoted)));
            }
            match (found, verdict) {
                (Some((cell, true)), _) => {
                    // Above any version a copy of an earlier life of this
                    // key (a tombstone) may carry.
                    // Its first state (`Default`, or the one a create
                    // gave, replicated by the create itself) is what a node
                    // without any copy would start from: acknowledged.
                    let mut state = cell.lock();
                    state.version = fresh_version();
                    state.acked = state.version;
                    drop(state);
                    Some(Ok((cell, Made::Created)))
                }
                (Some(found), _) => {
                    let mut state = found.0.lock();
                    if state.moved {
                        return Some(Err(self.not_owner(entry.name, key)));
                    }
                    if state.restored {
                        // A copy from this node's disk: a newer one may be on
                        // its way until the first view settles; after that,
                        // it is the object (and is served from now on).
                        if !self.settler().has_settled() {
                            return None;
                        }
                        state.restored = false;
                    }
                    drop(state);
                    let made = if tries > 1 {
                        Made::Arrived
                    } else {
                        Made::Found
                    };
                    Some(Ok((found.0, made)))
                }
                (None, Absent::NotOwner) => Some(Err(self.not_owner(entry.name, key))),
                (None, _) => None,
            }
        })
        .await
    }

    /// Runs `decide` until it decides (`Some`), waiting for arrivals between
    /// tries, at most [`MOVE_WAIT`] (then `Moving` for `type_name`/`key`). The
    /// first try registers nothing: a call whose object is here pays no wait.
    async fn wait_for<T>(
        &self,
        type_name: &str,
        key: &str,
        mut decide: impl FnMut() -> Option<Result<T, RemoteError>>,
    ) -> Result<T, RemoteError> {
        if let Some(decided) = decide() {
            return decided;
        }
        let started = Instant::now();
        loop {
            // Registered before looking again, so an arrival in between wakes us.
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(decided) = decide() {
                return decided;
            }
            let left = MOVE_WAIT.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(RemoteError::Moving {
                    type_name: type_name.to_string(),
                    key: key.to_string(),
                    node: self.me.clone(),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), arrived).await;
        }
    }

    /// The loss of an object this node does not hold and would create: it
    /// lived on a node that crashed.
    ///
    /// With `rf` > 1 copies, and no backup of it here once every view known
    /// settled (each node holding a backup of a crashed head hands it to the
    /// key's new owner before it says done, see `replication.rs`), the key
    /// never existed or was deleted — when that is sure: another node of its
    /// replica set in the head's last view stepped to the view without the
    /// head (it handed what it held), and the head had stepped to its last
    /// view (it had sent that node its objects); or this node joined later
    /// and not every other node of the set crashed with the head. Otherwise
    /// the key is `Lost`: a key of a head that crashed amid a view change may
    /// answer `Lost` although it never existed.
    pub fn lost(&self, type_name: &str, key: &str, rf: usize) -> Option<RemoteError> {
        let lost = self.lost.read().unwrap_or_else(|e| e.into_inner());
        let settler = self.settler();
        let range = lost.iter().find(|r| {
            if !r.covers(type_name, key) {
                return false;
            }
            if rf < 2 {
                return true;
            }
            let replicas = r.placement.replicas(type_name, key, rf);
            let others = || replicas.iter().filter(|x| **x != r.node);
            // Crashed no later than the head: it handed nothing.
            let crashed_with_head = |x: &&str| {
                lost.iter()
                    .any(|crashed| crashed.node == **x && crashed.epoch <= r.epoch)
            };
            if settler.joined_after(r.epoch) {
                // Every member had settled the view without the head (and
                // promoted its backups) before this node joined.
                return others().all(crashed_with_head);
            }
            let last = r.placement.view().epoch;
            let head_stepped = settler.said_done(&r.node, last);
            let handed = |x: &str| head_stepped && settler.said_done(x, r.epoch);
            !others().any(|x| handed(x))
        })?;
        let forgiven = self.forgiven.lock().unwrap_or_else(|e| e.into_inner());
        if forgiven.contains(&(type_name.to_string(), key.to_string())) {
            return None;
        }
        Some(RemoteError::Lost {
            type_name: type_name.to_string(),
            key: key.to_string(),
            lost_node: range.node.clone(),
            epoch: range.epoch,
        })
    }

    /// Whether the key was a crashed node's (its backups may be on their way
    /// here until every view known settled).
    fn in_lost_range(&self, type_name: &str, key: &str) -> bool {
        let lost = self.lost.read().unwrap_or_else(|e| e.into_inner());
        lost.iter().any(|r| r.covers(type_name, key))
    }

    /// The object was deleted or created on purpose: its loss is forgotten.
    pub fn forgive(&self, type_name: &str, key: &str) {
        self.forgiven
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((type_name.to_string(), key.to_string()));
    }

    pub(super) fn add_lost(&self, ranges: Vec<LostRange>) {
        if ranges.is_empty() {
            return;
        }
        let mut lost = self.lost.write().unwrap_or_else(|e| e.into_inner());
        for range in ranges {
            if !lost
                .iter()
                .any(|r| r.node == range.node && r.epoch == range.epoch)
            {
                tracing::warn!(
                    node = %range.node,
                    epoch = range.epoch,
                    "a node left without handing off its objects: its ephemeral objects are lost"
                );
                lost.push(range);
            }
        }
    }

    /// Another node is done handing off for view `epoch`, and keeps serving
    /// the lambda objects of `kept`. The apps are recorded before the "done"
    /// counts, so a node that settles knows every app kept elsewhere.
    pub fn done(&self, from: &str, epoch: u64, kept: Vec<String>) {
        self.keep(from, kept);
        self.settler_mut().done(from, epoch);
        self.wake_handoff();
    }

    /// Records that `node` keeps exactly the applications `apps`.
    pub(super) fn keep(&self, node: &str, apps: Vec<String>) {
        let mut kept = self.kept.write().unwrap_or_else(|e| e.into_inner());
        kept.retain(|_, holder| holder != node);
        for app in apps {
            kept.insert(app, node.to_string());
        }
    }

    /// Where the lambda objects of `application` are served: `Ok` here, or
    /// the redirect (to the node that keeps them, or to their owner). A node
    /// that became the owner waits (at most [`MOVE_WAIT`]) until it settled,
    /// so that it knows whether another node keeps them.
    /// `holds`: whether this node has objects of the application (a node
    /// that lost them in a crash and came back with its data directory).
    /// With replicas, the backup of an application whose head crashed is
    /// handed to `promote` (it becomes the application here); the second
    /// value says it was.
    pub async fn lambda_home(
        self: &Arc<Self>,
        application: &str,
        holds: impl Fn() -> bool,
        promote: impl Fn(super::backups::AppBackup),
    ) -> Result<(AppGuard, bool), RemoteError> {
        use crucial_protocol::placement::LAMBDA_HOME;
        let mut promoted = false;
        let guard = self
            .wait_for(LAMBDA_HOME, application, || {
                let rf = usize::from(self.replicas());
                let keeper = self
                    .kept
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(application)
                    .cloned()
                    // With replicas, a keeper that left is as no keeper: the
                    // application's backups went to its home like any other's.
                    .filter(|node| rf < 2 || *node == self.me || self.view().nodes.contains(node));
                let here = match keeper {
                    Some(node) if node == self.me => true,
                    Some(node) => {
                        let view = self.view();
                        if !view.nodes.contains(&node) {
                            // Its keeper left (drained or crashed) with them.
                            return Some(Err(RemoteError::Lost {
                                type_name: LAMBDA_HOME.to_string(),
                                key: application.to_string(),
                                lost_node: node,
                                epoch: view.epoch,
                            }));
                        }
                        let mut redirect = self.not_owner(LAMBDA_HOME, application);
                        if let RemoteError::NotOwner { served_by, .. } = &mut redirect {
                            *served_by = Some(node);
                        }
                        return Some(Err(redirect));
                    }
                    None => {
                        let absent = self.settler().absent(LAMBDA_HOME, application);
                        match absent {
                            Absent::NotOwner => {
                                return Some(Err(self.not_owner(LAMBDA_HOME, application)))
                            }
                            // Its objects lived on a node that crashed, unless
                            // this node holds them (it was that node, back with
                            // its data directory, or it promoted their backup)
                            // or has their backup.
                            Absent::Create => match self.take_over(application, &holds, &promote) {
                                // Another call is installing them: wait.
                                Takeover::Busy => return None,
                                Takeover::Took { promoted: p } => {
                                    promoted |= p;
                                    self.forgive(LAMBDA_HOME, application);
                                    true
                                }
                                Takeover::NoBackup
                                    if rf > 1
                                        && !self.settler().is_settled()
                                        && self.in_lost_range(LAMBDA_HOME, application) =>
                                {
                                    return None; // its backup may be on its way
                                }
                                Takeover::NoBackup => match self.lost(LAMBDA_HOME, application, rf)
                                {
                                    Some(lost) if !holds() => return Some(Err(lost)),
                                    Some(_) => {
                                        // Here after all: never scanned for again.
                                        self.forgive(LAMBDA_HOME, application);
                                        true
                                    }
                                    None => true,
                                },
                            },
                            Absent::Wait => false,
                        }
                    }
                };
                if !here {
                    return None;
                }
                let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
                let gate = apps.entry(application.to_string()).or_default();
                if gate.moving {
                    return None;
                }
                gate.running += 1;
                Some(Ok(AppGuard {
                    cluster: Arc::clone(self),
                    application: application.to_string(),
                }))
            })
            .await?;
        Ok((guard, promoted))
    }

    /// Objects arrived: calls waiting for them look again.
    pub fn objects_arrived(&self) {
        self.arrived.notify_waiters();
    }

    pub(super) fn wake_handoff(&self) {
        let (lock, ready) = &self.work;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        ready.notify_all();
    }

    /// Waits for handoff work (or `timeout`).
    pub(super) fn wait_for_work(&self, timeout: Duration) {
        let (lock, ready) = &self.work;
        let mut pending = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !*pending {
            pending = ready
                .wait_timeout(pending, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *pending = false;
    }

    /// Hands off every object and leaves the cluster; resolves once done
    /// (the node then stops).
    pub async fn drain(&self) {
        self.draining.send_replace(true);
        let mut drained = self.drained.subscribe();
        let _ = drained.wait_for(|done| *done).await;
    }

    /// Resolves once a drain is asked for.
    pub(super) async fn drain_requested(&self) {
        let mut draining = self.draining.subscribe();
        let _ = draining.wait_for(|asked| *asked).await;
    }

    /// The drain is over.
    pub(super) fn set_drained(&self) {
        self.drained.send_replace(true);
    }

    /// Whether this node has handed off what it owed for view `epoch` (and
    /// every member has it).
    pub(super) fn has_stepped(&self, epoch: u64) -> bool {
        self.settler().has_stepped(epoch) && !self.owing.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Holds back new workflows of `application` and waits (at most
    /// `timeout`) until none runs; returns whether none does.
    pub(super) fn freeze(&self, application: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.entry(application.to_string()).or_default().moving = true;
        loop {
            if apps.get(application).is_none_or(|g| g.running == 0) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            apps = self
                .apps_idle
                .wait_timeout(apps, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes `application` over from its backup here, if this node has one:
    /// `promote` installs it (unless `holds` says the application is here
    /// already, the backup then being older). The backup is taken and the
    /// application's gate closed in one step, under the gates' lock, so a
    /// workflow that finds the backup gone waits at the gate until the
    /// objects are in instead of meeting none; and two takeovers of one
    /// application (a workflow's call and the settling of a view) cannot
    /// open each other's gate.
    pub(super) fn take_over(
        &self,
        application: &str,
        holds: impl Fn() -> bool,
        promote: impl Fn(super::backups::AppBackup),
    ) -> Takeover {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        if apps.get(application).is_some_and(|gate| gate.moving) {
            return Takeover::Busy;
        }
        let Some(backup) = self.replication.take_app(application) else {
            return Takeover::NoBackup;
        };
        apps.entry(application.to_string()).or_default().moving = true;
        drop(apps);
        let promoted = !holds();
        if promoted {
            promote(backup);
        }
        self.thaw(application);
        Takeover::Took { promoted }
    }

    /// Places object `(type_name, key)` as `what` says — on a member
    /// (`None`: back where the ring places it), or with light replicas —
    /// and waits until this node has settled a view that says so: every
    /// member has stepped to it, so a moved object's old node has handed it
    /// over (its workflows there ended first; new ones waited) and its new
    /// node holds it. Returns that view's epoch.
    pub async fn place(&self, type_name: &str, key: &str, what: Placed) -> Result<u64, String> {
        let placing = self
            .placing
            .get()
            .ok_or("this node has not joined its cluster yet")?;
        let object = (type_name.to_string(), key.to_string());
        let (written, etcd) = tokio::sync::oneshot::channel();
        let stopped = || "this node is stopping".to_string();
        placing
            .send(Placing {
                object: object.clone(),
                what: what.clone(),
                written,
            })
            .map_err(|_| stopped())?;
        etcd.await.map_err(|_| stopped())??;
        let deadline = Instant::now() + PLACE_WITHIN;
        loop {
            let settled = {
                let settler = self.settler();
                settler
                    .current()
                    .filter(|p| settler.is_settled() && what.in_view(p.view(), &object))
                    .map(|p| p.view().epoch)
            };
            if let Some(epoch) = settled {
                return Ok(epoch);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "etcd has the placement, but no view with it settled here in {PLACE_WITHIN:?} \
                     (`crucial-admin status` shows which node is still moving)"
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets workflows of `application` run again (its move ended).
    pub(super) fn thaw(&self, application: &str) {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(gate) = apps.get_mut(application) {
            gate.moving = false;
            if gate.running == 0 {
                apps.remove(application);
            }
        }
        drop(apps);
        self.objects_arrived();
    }

    /// Whether objects or a "done" are still owed to some member.
    pub(super) fn set_owing(&self, owing: bool) {
        self.owing
            .store(owing, std::sync::atomic::Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    // Named by its full path: `super` in a file's test module reads as the
    // parent module to the import-cycle check.
    use crate::cluster::backups::AppBackup;
    use crate::cluster::member::Cluster;
    use crucial_protocol::placement::View;
    use crucial_protocol::wire::AppCopy;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// The race a failover test met about once in seven loaded runs: one
    /// call took the crashed head's backup and was installing it when a
    /// second call, finding no backup, was served the application empty
    /// (`NoObject` for an account that existed).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_that_finds_the_backup_being_installed_waits_for_it() {
        let me = "10.0.0.1:7000".to_string();
        let cluster = Arc::new(Cluster::new(me.clone(), 2, 1, 1 << 20));
        {
            let mut settler = cluster.settler_mut();
            settler.view(View::new(1, vec![me]), &[]);
            settler.stepped(1);
            assert!(settler.settle());
        }
        let backup = AppCopy {
            application: "app".into(),
            complete: Some(1),
            entries: Vec::new(),
            prepared: Vec::new(),
            settled: Vec::new(),
        };
        cluster
            .replication
            .keep_app("10.0.0.2:7000", backup)
            .expect("a complete copy is a base");
        let installed = Arc::new(AtomicBool::new(false));
        let call = || {
            let (cluster, installed) = (Arc::clone(&cluster), Arc::clone(&installed));
            tokio::spawn(async move {
                let holds = || installed.load(Ordering::SeqCst);
                let promote = |_: AppBackup| {
                    std::thread::sleep(Duration::from_millis(200));
                    installed.store(true, Ordering::SeqCst);
                };
                let (guard, promoted) = cluster
                    .lambda_home("app", holds, promote)
                    .await
                    .expect("served here");
                let seen = installed.load(Ordering::SeqCst);
                drop(guard);
                (seen, promoted)
            })
        };
        let first = call();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = call();
        assert_eq!(first.await.unwrap(), (true, true));
        assert_eq!(
            second.await.unwrap(),
            (true, false),
            "the second call was served before the backup was in"
        );
    }
}
