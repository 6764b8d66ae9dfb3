//! A workflow's transaction as the node its root runs on holds it: its part
//! on this node (a [`Transaction`] on the node's store), and the nodes it
//! reached through [`Reach`] — each one a participant
//! ([`Participant`](super::participant::Participant)) — with the writes for
//! them, buffered here until the prepare carries them.
//!
//! This node is the transaction's manager. A workflow that reached no other
//! node commits as before (lock, number, validate, install: no message); one
//! that did commits with two-phase commit (`txn/participant.rs` has the
//! protocol and why it is strictly serializable). An execution dropped
//! without committing (a conflict, a failed function) aborts its parts on
//! the other nodes.

use super::decision;
use super::participant::{Access, Held, TxnId};
use super::transaction::{with_writes, Abort, Durably, Key, Transaction, Writes};
use bytes::Bytes;
use crucial::__private::store::ChildCall;
use crucial::ObjectId;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A node of the cluster, by its address.
pub type NodeId = String;

/// How a manager reaches the other nodes of its transactions: where an
/// object lives, and the participants' operations. Implemented by the
/// cluster's peer plane (and, in tests, by nodes in one process).
pub trait Reach: Send + Sync {
    /// This node.
    fn me(&self) -> NodeId;
    /// This node's number, unique in the cluster (names the transactions it
    /// manages).
    fn number(&self) -> u64;
    /// The home of `object`: the key the cluster places it by.
    fn home(&self, object: &ObjectId) -> String;
    /// Whether `home` is `object`'s home ([`Reach::home`] without building
    /// it: asked at every access).
    fn at_home(&self, object: &ObjectId, home: &str) -> bool;
    /// The node that serves the objects of `home` (`me()`: this one).
    fn owner(&self, home: &str) -> NodeId;
    /// Keeps the objects of `home`, which this node serves, here until the
    /// returned value is dropped, waiting for them if they are on their way
    /// (a failover installing them); `Err`: they are not served here after
    /// all (the execution runs again, in the newest view).
    fn hold(&self, home: &str) -> Result<Option<Held>, Abort> {
        let _ = home;
        Ok(None)
    }
    /// One entry of `object` on `node`, read in `access.txn`.
    fn get(
        &self,
        node: &str,
        access: Access,
        object: &ObjectId,
        key: &[u8],
    ) -> Result<Option<Bytes>, Abort>;
    /// Entries of `object` on `node` in `[from, to)`, read in `access.txn`.
    fn scan(
        &self,
        node: &str,
        access: Access,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, Abort>;
    /// Phase one on every node of `parts` at once, with the writes for it:
    /// each node's vote, in the same order. `anchor` holds the decision's
    /// record (`txn/decision.rs`): a participant left in doubt asks its
    /// owner.
    fn prepare(
        &self,
        txn: TxnId,
        deadline: Instant,
        anchor: &ObjectId,
        parts: Vec<Part>,
    ) -> Vec<Result<u64, Abort>>;
    /// Phase two, commit at `tid`, on every node of `nodes`; returns once
    /// each has installed (and, with a data directory, stored) the writes,
    /// or says which could not be told.
    fn commit(&self, txn: TxnId, nodes: &[NodeId], tid: u64) -> Result<(), String>;
    /// Phase two, abort, on every node of `nodes` (best effort: a node not
    /// told drops its part at its deadline, or asks).
    fn abort(&self, txn: TxnId, nodes: &[NodeId]);
    /// Whether the objects have copies on other nodes: then a commit that
    /// writes several of this node's homes keeps the writes of every home
    /// but its root's as a prepared part on their replicas first
    /// ([`Reach::keep`]), so that the homes fail over all committed or none.
    fn keeps_copies(&self) -> bool {
        false
    }

    /// Copies `parts` — this node's writes in `txn` to each home but the
    /// root's, numbered `proposed` — to the replicas of their homes as
    /// prepared parts whose decision `anchor` records.
    fn keep(
        &self,
        txn: TxnId,
        anchor: &ObjectId,
        proposed: u64,
        parts: Vec<(String, Writes)>,
    ) -> Result<(), Abort> {
        let _ = (txn, anchor, proposed, parts);
        Ok(())
    }

    /// Runs child call `call` on `node`, in `access.txn`, after `writes`
    /// (the manager's buffered writes for that node); `None` if this reach
    /// cannot send calls (the caller runs it itself).
    fn call(&self, node: &str, access: Access, call: ChildCall, writes: Writes) -> Option<Called> {
        let _ = (node, access, call, writes);
        None
    }

    /// The view a map call splits its objects by: its epoch and its other
    /// members, if this node has settled it (every object it owns in it is
    /// here); `None`: not yet (the map runs again).
    fn settled_view(&self) -> Option<(u64, Vec<NodeId>)> {
        None
    }

    /// The end of a transaction that wrote nothing anywhere: each node of
    /// `nodes` checks its part's reads and drops the part
    /// ([`Participant::validate`](super::participant::Participant::validate)),
    /// all at once; each node's answer, in order. `None`: this reach cannot
    /// (the transaction commits with two-phase commit).
    fn validate(
        &self,
        txn: TxnId,
        deadline: Instant,
        nodes: &[NodeId],
    ) -> Option<Vec<Result<(), Abort>>> {
        let _ = (txn, deadline, nodes);
        None
    }

    /// The objects of `step` this node serves in view `step.epoch` (its
    /// homes held here, backups of homes it owns taken over first).
    /// `Err`: the node has not settled that view (the map runs again).
    fn map_objects(&self, step: &MapStep) -> Result<Vec<ObjectId>, Abort> {
        let _ = step;
        Err(Abort::Conflict)
    }

    /// Runs map instance `step` on `node`, in `access.txn`, after `writes`
    /// (the manager's buffered writes for that node).
    fn map(&self, node: &str, access: Access, step: MapStep, writes: Writes) -> Option<Mapping> {
        let _ = (node, access, step, writes);
        None
    }
}

/// One node's instance of a map call: its function run on the objects of
/// `type_name` that `objects` selects and the node serves in view `epoch`.
#[derive(Debug, Clone)]
pub struct MapStep {
    /// The objects' application.
    pub application: String,
    /// Their type.
    pub type_name: String,
    /// Which of them.
    pub objects: crucial_protocol::wire::Objects,
    /// The function.
    pub function: String,
    /// Its signature's fingerprint.
    pub fingerprint: u64,
    /// The encoded arguments.
    pub args: Vec<u8>,
    /// Seeds each call's random source.
    pub seed: u64,
    /// The view the objects are split by.
    pub epoch: u64,
}

/// A map instance's results on one node: `(key, encoded return value)`.
pub type MapResults = Vec<(String, Vec<u8>)>;

/// A map instance running on another node, as the reach answers it.
/// The results come with whether the part there has writes now.
pub type Mapping = Pin<Box<dyn Future<Output = Result<(MapResults, bool), CallError>> + Send>>;

/// One participant's phase one: its node, the manager's buffered writes for
/// it, and whether the execution reached it before (then it must have a
/// part: one it lost is a no).
pub type Part = (NodeId, Writes, bool);

/// A child call sent to another node, as the workflow waits for it.
pub type Returns = Pin<Box<dyn Future<Output = Result<Vec<u8>, Abort>> + Send>>;

/// A map instance sent to another node, as the workflow waits for it.
pub type MapReturns = Pin<Box<dyn Future<Output = Result<MapResults, Abort>> + Send>>;

/// A child call running on another node, as the reach answers it: the
/// value, and whether the part there has writes now.
pub type Called = Pin<Box<dyn Future<Output = Result<(Vec<u8>, bool), CallError>> + Send>>;

/// Why a child call sent to another node did not return.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the peer plane's (feature "cluster")
pub enum CallError {
    /// It failed there as it would have here.
    Abort(Abort),
    /// It reached an object that node does not hold: the workflow runs
    /// again, its child calls on this node.
    Elsewhere,
}

/// Another node, and how to reach it.
type Remote = (Arc<dyn Reach>, NodeId);

/// Numbers the transactions a node manages.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// One execution's transaction, from the root's node.
pub struct Spanning {
    /// The part on this node.
    local: Option<Transaction>,
    reach: Option<Arc<dyn Reach>>,
    /// The home of the workflow's root: held on this node while the
    /// workflow runs, so its objects are here whatever the ring says.
    home: Option<String>,
    txn: TxnId,
    deadline: Instant,
    /// Nodes where this execution read (their parts exist).
    read_on: BTreeSet<NodeId>,
    /// Writes for other nodes' objects, by node.
    remote_writes: BTreeMap<NodeId, BTreeMap<Key, Option<Bytes>>>,
    /// Child calls on other nodes' objects are sent there while it holds
    /// (`None`: never); a call that reached a third node clears it, and the
    /// workflow's later executions run their child calls here.
    shipping: Option<Arc<AtomicBool>>,
    /// Homes other than the root's that this node serves and the execution
    /// touched, kept here until it ends.
    held: BTreeMap<String, Option<Held>>,
    /// Objects found at a home this node serves and holds: asked again (a
    /// map call's child, then its reads), they are here.
    here: HashSet<ObjectId>,
    /// A child call or map instance sent to another node wrote there: the
    /// commit needs two phases even if nothing else writes.
    wrote_elsewhere: Arc<AtomicBool>,
}

impl Spanning {
    /// An execution on this node only (no cluster).
    pub fn local(txn: Transaction) -> Spanning {
        Spanning {
            local: Some(txn),
            reach: None,
            home: None,
            txn: TxnId { manager: 0, seq: 0 },
            deadline: Instant::now(),
            read_on: BTreeSet::new(),
            remote_writes: BTreeMap::new(),
            shipping: None,
            held: BTreeMap::new(),
            here: HashSet::new(),
            wrote_elsewhere: Arc::new(AtomicBool::new(false)),
        }
    }

    /// An execution whose root runs at `home` on this node, reaching other
    /// nodes through `reach`; its parts there end at `deadline`.
    pub fn reaching(
        txn: Transaction,
        reach: Arc<dyn Reach>,
        home: String,
        deadline: Instant,
    ) -> Spanning {
        Spanning {
            local: Some(txn),
            home: Some(home),
            txn: TxnId {
                manager: reach.number(),
                seq: NEXT.fetch_add(1, Ordering::Relaxed),
            },
            reach: Some(reach),
            deadline,
            read_on: BTreeSet::new(),
            remote_writes: BTreeMap::new(),
            shipping: None,
            held: BTreeMap::new(),
            here: HashSet::new(),
            wrote_elsewhere: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sends child calls on other nodes' objects there while `shipping`
    /// holds.
    pub fn shipping(mut self, shipping: Arc<AtomicBool>) -> Spanning {
        self.shipping = Some(shipping);
        self
    }

    /// Child call `call`, sent to its object's node if that is another one
    /// and calls are sent: the future of its result. `None`: run it here.
    pub fn ship(&mut self, call: ChildCall) -> Option<Returns> {
        let shipping = Arc::clone(self.shipping.as_ref()?);
        if !shipping.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let (reach, node) = self.elsewhere(&call.object).ok()??;
        let writes: Writes = self
            .remote_writes
            .get(&node)
            .map(|w| w.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let called = reach.call(&node, self.access(), call, writes)?;
        // Sent: the node has a part now, and the writes it was given.
        self.remote_writes.remove(&node);
        self.read_on.insert(node);
        let wrote_elsewhere = Arc::clone(&self.wrote_elsewhere);
        Some(Box::pin(async move {
            match called.await {
                Ok((value, wrote)) => {
                    if wrote {
                        wrote_elsewhere.store(true, Ordering::Relaxed);
                    }
                    Ok(value)
                }
                Err(CallError::Abort(abort)) => Err(abort),
                Err(CallError::Elsewhere) => {
                    shipping.store(false, std::sync::atomic::Ordering::Relaxed);
                    Err(Abort::Conflict)
                }
            }
        }))
    }

    /// The view a map call splits its objects by (see
    /// [`Reach::settled_view`]): `None` with no cluster (every object is
    /// here), `Err` while this node has not settled one.
    pub fn map_view(&self) -> Result<Option<(u64, Vec<NodeId>)>, Abort> {
        match &self.reach {
            None => Ok(None),
            Some(reach) => reach.settled_view().map(Some).ok_or(Abort::Conflict),
        }
    }

    /// The objects of `step` on this node (with no cluster, every one of the
    /// store's `listed`).
    pub fn map_objects(
        &self,
        step: &MapStep,
        listed: impl FnOnce() -> Vec<ObjectId>,
    ) -> Result<Vec<ObjectId>, Abort> {
        match &self.reach {
            None => Ok(listed()),
            Some(reach) => reach.map_objects(step),
        }
    }

    /// The node that holds `object`, if not this one (then its home is held
    /// here until the execution ends).
    pub fn node_of(&mut self, object: &ObjectId) -> Result<Option<NodeId>, Abort> {
        Ok(self.elsewhere(object)?.map(|(_, node)| node))
    }

    /// Sends map instance `step` to `node`, with the writes buffered for
    /// it: the future of its results.
    pub fn map_remote(&mut self, node: &str, step: MapStep) -> Result<MapReturns, Abort> {
        self.check()?;
        let reach = Arc::clone(self.reach.as_ref().ok_or(Abort::Conflict)?);
        let writes: Writes = self
            .remote_writes
            .remove(node)
            .map(|w| w.into_iter().collect())
            .unwrap_or_default();
        let mapping = reach
            .map(node, self.access(), step, writes)
            .ok_or(Abort::Conflict)?;
        self.read_on.insert(node.to_string());
        let wrote_elsewhere = Arc::clone(&self.wrote_elsewhere);
        Ok(Box::pin(async move {
            match mapping.await {
                Ok((results, wrote)) => {
                    if wrote {
                        wrote_elsewhere.store(true, Ordering::Relaxed);
                    }
                    Ok(results)
                }
                Err(CallError::Abort(abort)) => Err(abort),
                // Its objects moved: run again, in the newer view.
                Err(CallError::Elsewhere) => Err(Abort::Conflict),
            }
        }))
    }

    /// The part on this node.
    pub fn local_mut(&mut self) -> &mut Transaction {
        self.local
            .as_mut()
            .expect("the local part lives until the commit")
    }

    fn check(&self) -> Result<(), Abort> {
        match Instant::now() >= self.deadline {
            true => Err(Abort::Deadline),
            false => Ok(()),
        }
    }

    fn access(&self) -> Access {
        Access {
            txn: self.txn,
            deadline: self.deadline,
            stance: self
                .local
                .as_ref()
                .map(Transaction::stance)
                .unwrap_or_default(),
        }
    }

    /// The node holding `object`, if not this one (whose objects at homes
    /// other than the root's are then held here until the execution ends).
    fn elsewhere(&mut self, object: &ObjectId) -> Result<Option<Remote>, Abort> {
        let Some(reach) = self.reach.as_ref() else {
            return Ok(None);
        };
        if self.here.contains(object) {
            return Ok(None);
        }
        if let Some(root) = &self.home {
            if reach.at_home(object, root) {
                return Ok(None);
            }
        }
        let home = reach.home(object);
        let owner = reach.owner(&home);
        if owner != reach.me() {
            return Ok(Some((Arc::clone(reach), owner)));
        }
        if let std::collections::btree_map::Entry::Vacant(entry) = self.held.entry(home) {
            let held = reach.hold(entry.key())?;
            entry.insert(held);
        }
        self.here.insert(object.clone());
        Ok(None)
    }

    /// The value of `key` in `object`, as this transaction sees it.
    pub fn get(&mut self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, Abort> {
        let Some((reach, node)) = self.elsewhere(object)? else {
            return self.local_mut().get(object, key);
        };
        self.check()?;
        let k = (object.clone(), key.to_vec());
        if let Some(value) = self.remote_writes.get(&node).and_then(|w| w.get(&k)) {
            return Ok(value.clone());
        }
        let value = reach.get(&node, self.access(), object, key);
        self.read_on.insert(node);
        value
    }

    /// Sets (`Some`) or deletes (`None`) `key` of `object`.
    pub fn write(
        &mut self,
        object: &ObjectId,
        key: &[u8],
        value: Option<Bytes>,
    ) -> Result<(), Abort> {
        let Some((_, node)) = self.elsewhere(object)? else {
            let local = self.local_mut();
            return match value {
                Some(value) => local.put(object, key, value),
                None => local.delete(object, key),
            };
        };
        self.check()?;
        self.remote_writes
            .entry(node)
            .or_default()
            .insert((object.clone(), key.to_vec()), value);
        Ok(())
    }

    /// The entries of `object` in `[from, to)`, with this transaction's
    /// writes applied.
    pub fn scan(
        &mut self,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, Abort> {
        let Some((reach, node)) = self.elsewhere(object)? else {
            return self.local_mut().scan(object, from, to);
        };
        self.check()?;
        let stored = reach.scan(&node, self.access(), object, from, to);
        self.read_on.insert(node.clone());
        let none = BTreeMap::new();
        let mine = self.remote_writes.get(&node).unwrap_or(&none);
        Ok(with_writes(stored?, mine, object, from, to))
    }

    /// Whether this execution wrote nothing, here or on any other node.
    pub fn writes_nothing(&self) -> bool {
        self.remote_writes.is_empty()
            && !self.wrote_elsewhere.load(Ordering::Relaxed)
            && self.local.as_ref().is_none_or(Transaction::writes_nothing)
    }

    /// The other nodes this execution reached.
    pub fn participants(&self) -> Vec<NodeId> {
        let mut nodes: BTreeSet<NodeId> = self.read_on.clone();
        nodes.extend(self.remote_writes.keys().cloned());
        nodes.into_iter().collect()
    }

    /// Commits: on this node alone if no other was reached, else with
    /// two-phase commit. Returns the commit's number, this node's writes'
    /// way to the disk, this node's writes (for its replicas), and the
    /// decision for the other nodes, if any: it must be
    /// [delivered](Decision::deliver) once this node's writes are durable
    /// and on their replicas (they hold the decision's record), or
    /// [revoked](Decision::revoke) if they cannot be.
    pub fn commit(mut self) -> Result<Commit, Abort> {
        let writes_nothing = self.writes_nothing();
        let mut local = self.local.take().expect("committed once");
        let nodes = self.participants();
        if let Some(reach) = self.reach.clone().filter(|_| !nodes.is_empty()) {
            if writes_nothing {
                // Its place in the serial order: after every read, before
                // any check (the earliest check is its serialization point).
                let at = local.number_now();
                if let Some(checks) = reach.validate(self.txn, self.deadline, &nodes) {
                    // Every part elsewhere ended with its check.
                    self.read_on.clear();
                    if let Some(abort) = checks.into_iter().find_map(Result::err) {
                        // A node that did not answer drops its part now
                        // rather than at its deadline (the others ended).
                        reach.abort(self.txn, &nodes);
                        return Err(abort);
                    }
                    // This node's reads are checked last, after every read.
                    let (tid, durable, writes) = local.commit_read_only(at)?;
                    return Ok(Commit {
                        tid,
                        durable,
                        writes,
                        decision: None,
                        checked: true,
                    });
                }
            }
        }
        // With copies, the homes of this node's writes other than the
        // root's: they are kept as prepared parts on their replicas first.
        let others: Vec<String> = match (&self.reach, &self.home) {
            (Some(reach), Some(home)) if reach.keeps_copies() => {
                let mut others: Vec<String> = local
                    .written()
                    .filter(|(object, _)| !reach.at_home(object, home))
                    .map(|(object, _)| reach.home(object))
                    .collect();
                others.sort();
                others.dedup();
                others
            }
            _ => Vec::new(),
        };
        let (Some(reach), Some(home)) = (
            self.reach
                .clone()
                .filter(|_| !nodes.is_empty() || !others.is_empty()),
            &self.home,
        ) else {
            let (tid, durable, writes) = local.commit_durably()?;
            return Ok(Commit {
                tid,
                durable,
                writes,
                decision: None,
                checked: false,
            });
        };
        // The decision's record, locked by this node's prepare and written
        // with its writes (`txn/decision.rs`).
        let anchor = decision::anchor(home);
        let record = decision::record_key(self.txn);
        if let Err(abort) = local.put(&anchor, &record, decision::committed(0)) {
            reach.abort(self.txn, &nodes);
            self.read_on.clear();
            self.remote_writes.clear();
            return Err(abort);
        }
        // Phase one: this node first (cheapest to refuse), then the others
        // at once.
        let mut prepared = match local.prepare_pinned() {
            Ok(prepared) => prepared,
            Err(abort) => {
                reach.abort(self.txn, &nodes);
                self.read_on.clear();
                self.remote_writes.clear();
                return Err(abort);
            }
        };
        let mut writes = std::mem::take(&mut self.remote_writes);
        let parts: Vec<Part> = nodes
            .iter()
            .map(|node| {
                let w = writes.remove(node).unwrap_or_default();
                let reached = self.read_on.contains(node);
                (node.clone(), w.into_iter().collect(), reached)
            })
            .collect();
        self.read_on.clear();
        let votes = reach.prepare(self.txn, self.deadline, &anchor, parts);
        let mut tid = prepared.tid();
        let mut refused = None;
        for vote in votes {
            match vote {
                Ok(proposed) => tid = tid.max(proposed),
                Err(abort) => refused = Some(refused.unwrap_or(abort)),
            }
        }
        if let Some(abort) = refused {
            prepared.abort();
            reach.abort(self.txn, &nodes);
            return Err(abort);
        }
        // This node's writes to its other homes go to their replicas as a
        // prepared part: a home that fails over before its copy of the
        // commit arrives restores it and asks the record.
        if !others.is_empty() {
            let parts: Vec<(String, Writes)> = others
                .iter()
                .map(|other| {
                    let writes = prepared
                        .writes()
                        .filter(|((object, _), _)| reach.at_home(object, other))
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect();
                    (other.clone(), writes)
                })
                .collect();
            if let Err(abort) = reach.keep(self.txn, &anchor, prepared.tid(), parts) {
                prepared.abort();
                reach.abort(self.txn, &nodes);
                return Err(abort);
            }
        }
        // Decided: the record says so, and is installed with this node's
        // writes; phase two waits until they are durable and copied.
        prepared.rewrite(&anchor, &record, decision::committed(tid));
        let (durable, writes) = prepared.commit_at(tid);
        Ok(Commit {
            tid,
            durable,
            writes,
            decision: Some(Decision {
                reach,
                txn: self.txn,
                nodes,
                tid,
                record: (anchor, record),
                root: home.clone(),
                kept: others,
            }),
            checked: false,
        })
    }
}

/// A committed execution, from its manager.
pub struct Commit {
    /// The commit's number.
    pub tid: u64,
    /// This node's writes' way to the disk.
    pub durable: Option<Durably>,
    /// This node's writes (for its replicas).
    pub writes: Writes,
    /// Phase two, for the other nodes that took part (`None`: none did).
    pub decision: Option<Decision>,
    /// It read on other nodes, wrote nowhere, and ended with checks there
    /// instead of two-phase commit.
    pub checked: bool,
}

/// A commit decided by its manager and not yet sent to its participants.
pub struct Decision {
    reach: Arc<dyn Reach>,
    txn: TxnId,
    nodes: Vec<NodeId>,
    tid: u64,
    record: (ObjectId, Vec<u8>),
    /// The root's home: its copy (with the record) goes first.
    root: String,
    /// This node's other homes whose writes were kept as prepared parts.
    kept: Vec<String>,
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decision")
            .field("txn", &self.txn)
            .field("nodes", &self.nodes)
            .field("tid", &self.tid)
            .finish()
    }
}

impl Decision {
    /// The transaction.
    pub fn txn(&self) -> TxnId {
        self.txn
    }

    /// How many other nodes took part.
    pub fn participants(&self) -> usize {
        self.nodes.len()
    }

    /// The root's home, whose copy of the commit (with the record) must
    /// reach its replicas before the other homes' copies.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// This node's other homes whose writes were kept as a prepared part on
    /// their replicas (dropped there once their copies of the commit are).
    pub fn kept(&self) -> &[String] {
        &self.kept
    }

    /// Phase two: every participant installs the writes (blocks until each
    /// acknowledged, or says which did not: those are sent the decision
    /// again, and ask for it if they still wait). `Ok`: the decision's
    /// record, which no one will ask for again (delete it).
    pub fn deliver(self) -> Result<(ObjectId, Vec<u8>), String> {
        self.reach.commit(self.txn, &self.nodes, self.tid)?;
        Ok(self.record)
    }

    /// The manager's own writes, with the record, could not be made
    /// durable (they were taken back): the participants abort.
    pub fn revoke(self) {
        self.reach.abort(self.txn, &self.nodes);
    }
}

impl Drop for Spanning {
    /// An execution dropped before its commit (a conflict, a failure, a
    /// panic) releases its parts on the other nodes.
    fn drop(&mut self) {
        if let Some(reach) = &self.reach {
            let nodes = self.participants();
            if !nodes.is_empty() {
                reach.abort(self.txn, &nodes);
            }
        }
    }
}
