//! Replication: each persistent object of a type with `rf` > 1 copies has a
//! *replica set*, the first `rf` distinct nodes on the ring from its key
//! ([`Placement::replicas`]). The first is its owner, the *head*: it runs
//! every method (method shipping stays) and, after each write, sends the
//! object's whole new state with the write's version and remembered reply to
//! the others ([`Replicate`]), which keep it as a *backup*; the client's reply
//! waits until every one of them acknowledged. A read at the head waits, too,
//! until the state it read is acknowledged, so no reply ever shows a write a
//! failover could lose.
//!
//! Failover, from etcd's views: when a head crashes, every node holding a
//! backup whose head left sends it, with its remembered replies, to the key's
//! owner in the new view before it says it is done with that view; the owner
//! keeps the newest (highest version) and, once the view settled, promotes it
//! to the object on its first call instead of answering `Lost`. Repair: on
//! every view step a head sends the state of each object it keeps to the
//! object's replica set in that view before it says done, so a new member of
//! a set has its copy before the set relies on it.
//!
//! Why the head sends to every replica at once rather than down a chain:
//! the head must run the method anyway (it owns the state), so a chain only
//! changes who forwards the copy; sending to all at once costs one round trip
//! instead of `rf - 1`, and acknowledging only what every replica holds is
//! the chain's guarantee.

// Built into every node, driven only by membership on etcd (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use super::backups::{AppBackup, Backup};
use super::link::{Link, Reply};
use super::member::Cluster;
use crate::shared_objects::{ObjectCell, Persist};
use crate::state::NodeState;
use crucial::__private::registry::SharedTypeEntry;
use crucial_protocol::placement::{Placement, LAMBDA_HOME};
use crucial_protocol::wire::{MovedReply, ObjectCopy, Outcome, Replicate, Request};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a replica may take to acknowledge one copy.
const ACK_WITHIN: Duration = Duration::from_secs(5);

/// How long a write keeps sending its copy to its replica set (taken anew
/// from each view: a dead replica leaves it once its lease expired) before
/// it answers `NotDurable`.
pub const REPLICATE_FOR: Duration = Duration::from_secs(30);

/// The replica set of one object, without this node, as of one view.
pub struct Targets {
    epoch: u64,
    /// Data addresses of the other replicas.
    addrs: Vec<String>,
    /// Their connections (`None`: it could not be opened).
    peers: Vec<Option<Arc<Link>>>,
}

/// How many copies objects of `entry` have in `cluster` (1: not replicated).
pub fn factor(cluster: &Cluster, entry: &SharedTypeEntry) -> usize {
    cluster.copies(entry)
}

/// The object's replica set without this node in the newest view, with
/// connections open; `None` when the object has no other copy.
pub async fn targets(
    cluster: &Cluster,
    placement: &Placement,
    entry: &SharedTypeEntry,
    key: &str,
) -> Option<Targets> {
    targets_of(cluster, placement, entry.name, key, factor(cluster, entry)).await
}

/// [`targets`] of any placed key with `rf` copies.
pub(super) async fn targets_of(
    cluster: &Cluster,
    placement: &Placement,
    type_name: &str,
    key: &str,
    rf: usize,
) -> Option<Targets> {
    if rf < 2 {
        return None;
    }
    let addrs: Vec<String> = placement
        .replicas(type_name, key, rf)
        .into_iter()
        .filter(|a| *a != cluster.me)
        .map(str::to_string)
        .collect();
    if addrs.is_empty() {
        return None;
    }
    let mut peers = Vec::with_capacity(addrs.len());
    for addr in &addrs {
        match cluster.replication.peer(addr, cluster.peer_of(addr)).await {
            Ok(peer) => peers.push(Some(peer)),
            Err(e) => {
                tracing::warn!(replica = addr, "cannot reach a replica: {e}");
                peers.push(None);
            }
        }
    }
    Some(Targets {
        epoch: placement.view().epoch,
        addrs,
        peers,
    })
}

/// Sends the object's current state (and `reply`, the write's remembered
/// reply) to `targets`, under the object's lock so that copies reach each
/// replica in version order; returns the version sent and the replies to
/// wait for, or `None` when the object was handed off meanwhile (its new
/// owner replicates it).
pub fn send(
    node: &NodeState,
    cluster: &Cluster,
    cell: &ObjectCell,
    targets: &Targets,
    reply: Option<&MovedReply>,
) -> Result<Option<(u64, Vec<Reply>)>, String> {
    let mut state = cell.lock();
    if state.moved {
        return Ok(None);
    }
    Persist::reload(
        node.storage.as_deref(),
        &node.table.residency,
        &mut state,
        cell,
    );
    let Some(value) = &state.value else {
        return Err("the object is not in memory".into());
    };
    let encoded =
        (cell.entry.encode_state)(&**value).map_err(|e| format!("cannot encode the state: {e}"))?;
    let version = state.version;
    let request = Request::Replicate(Replicate {
        from: &cluster.me,
        epoch: targets.epoch,
        copies: vec![ObjectCopy {
            type_name: cell.entry.name,
            key: &cell.key,
            version,
            state: Some(serde_bytes::Bytes::new(&encoded)),
        }],
        replies: reply.cloned().into_iter().collect(),
        apps: Vec::new(),
    });
    let pending = targets.start(&request)?;
    drop(state);
    Ok(Some((version, pending)))
}

impl Targets {
    /// The view the set is taken from.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Sends `request` to every replica.
    pub(super) fn start(&self, request: &Request<'_>) -> Result<Vec<Reply>, String> {
        let mut pending = Vec::with_capacity(self.peers.len());
        for (addr, peer) in self.addrs.iter().zip(&self.peers) {
            let Some(peer) = peer else {
                return Err(format!("replica {addr} cannot be reached"));
            };
            pending.push(
                peer.start(request)
                    .map_err(|e| format!("replica {addr}: {e}"))?,
            );
        }
        Ok(pending)
    }
}

/// Tells the replica set of a deleted object (whose last version was
/// `version`) that it is gone, so that no failover brings it back; again
/// with each new view while a replica fails, at most [`REPLICATE_FOR`].
pub async fn tombstone(
    cluster: &Cluster,
    entry: &SharedTypeEntry,
    key: &str,
    version: u64,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let placement = cluster.placement();
        let Some(targets) = targets(cluster, &placement, entry, key).await else {
            return Ok(());
        };
        let request = Request::Replicate(Replicate {
            from: &cluster.me,
            epoch: targets.epoch,
            copies: vec![ObjectCopy {
                type_name: entry.name,
                key,
                version: version + 1,
                state: None,
            }],
            replies: Vec::new(),
            apps: Vec::new(),
        });
        let failure = match targets.start(&request) {
            Ok(pending) => match acknowledged(pending).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if started.elapsed() >= REPLICATE_FOR {
            return Err(format!(
                "its replicas did not acknowledge the delete in {REPLICATE_FOR:?}: {failure}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A copy sent: its version and the replies to wait for (`None`: the object
/// was handed off meanwhile).
pub type Sent = Result<Option<(u64, Vec<Reply>)>, String>;

/// Waits for every replica's acknowledgement.
pub(super) async fn acknowledged(pending: Vec<Reply>) -> Result<(), String> {
    let mut failed = None;
    for reply in pending {
        if let Err(e) = reply.wait(ACK_WITHIN).await {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The object's acknowledged version rose to `version`.
fn set_acked(cluster: &Cluster, cell: &ObjectCell, version: u64) {
    let mut state = cell.lock();
    if state.acked < version {
        state.acked = version;
    }
    drop(state);
    cluster.replication.acked.notify_waiters();
}

/// Replicates a write on `cell` (version `version` or newer) with its
/// remembered reply: sends the object's state to its replica set in the
/// newest view and waits for all to acknowledge, again with each new view
/// while one fails, at most [`REPLICATE_FOR`].
/// `sent`: the first copy, already sent by [`send`] from the call's own
/// task (before its reply waits in a task of its own).
pub async fn replicate(
    node: &NodeState,
    cluster: &Cluster,
    cell: &ObjectCell,
    first: Option<Targets>,
    reply: Option<MovedReply>,
    mut sent: Option<Sent>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut targets = first;
    loop {
        let placement = cluster.placement();
        let now = match targets.take() {
            Some(t) if t.epoch == placement.view().epoch => Some(t),
            _ => {
                sent = None;
                self::targets(cluster, &placement, cell.entry, &cell.key).await
            }
        };
        let Some(now) = now else {
            // No other copy in this view (too few members): the head alone.
            let version = cell.lock().version;
            set_acked(cluster, cell, version);
            return Ok(());
        };
        let this = match sent.take() {
            Some(sent) => sent,
            None => send(node, cluster, cell, &now, reply.as_ref()),
        };
        let failure = match this {
            Ok(None) => return Ok(()),
            Ok(Some((version, pending))) => match acknowledged(pending).await {
                Ok(()) => {
                    set_acked(cluster, cell, version);
                    return Ok(());
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        if started.elapsed() >= REPLICATE_FOR {
            return Err(format!(
                "its replicas did not acknowledge it in {REPLICATE_FOR:?}: {failure}"
            ));
        }
        tracing::warn!(
            type_name = cell.entry.name,
            key = &*cell.key,
            "a replica did not acknowledge a write ({failure}); sending it again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the object's state as of `version` is acknowledged by its
/// replicas (a read at the head), at most [`REPLICATE_FOR`].
pub async fn acked(cluster: &Cluster, cell: &ObjectCell, version: u64) -> Result<(), String> {
    let deadline = Instant::now() + REPLICATE_FOR;
    loop {
        let notified = cluster.replication.acked.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let state = cell.lock();
            if state.acked >= version || state.moved {
                return Ok(());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the write it read was not acknowledged by its replicas".into());
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
    }
}

/// The remembered reply of a deduplicated write, for its copies.
pub fn reply(client: u64, request: u64, outcome: &Outcome) -> MovedReply {
    MovedReply {
        client,
        request,
        outcome: outcome.clone(),
    }
}

/// Sends the current state of `cells` (objects this node heads) to their
/// replica sets in the newest view, all in flight at once, and waits for the
/// acknowledgements; returns those not acknowledged.
pub async fn sync(
    node: &NodeState,
    cluster: &Cluster,
    cells: &[Arc<ObjectCell>],
) -> Vec<Arc<ObjectCell>> {
    // A member that joined a moment ago may not take copies yet (its part of
    // the cluster is being set up): what failed is sent again, for a while.
    let mut left: Vec<Arc<ObjectCell>> = cells.to_vec();
    for attempt in 0..20 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        left = sync_once(node, cluster, &left).await;
        if left.is_empty() {
            break;
        }
    }
    left
}

/// One try of [`sync`]: returns the cells not acknowledged.
async fn sync_once(
    node: &NodeState,
    cluster: &Cluster,
    cells: &[Arc<ObjectCell>],
) -> Vec<Arc<ObjectCell>> {
    let placement = cluster.placement();
    let mut waiting = Vec::new();
    let mut failed = Vec::new();
    for cell in cells {
        let Some(targets) = targets(cluster, &placement, cell.entry, &cell.key).await else {
            let version = cell.lock().version;
            set_acked(cluster, cell, version);
            continue;
        };
        match send(node, cluster, cell, &targets, None) {
            Ok(Some((version, pending))) => waiting.push((cell, version, pending)),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(
                    key = &*cell.key,
                    "cannot send an object to its replicas: {e}"
                );
                failed.push(Arc::clone(cell));
            }
        }
    }
    for (cell, version, pending) in waiting {
        match acknowledged(pending).await {
            Ok(()) => set_acked(cluster, cell, version),
            Err(e) => {
                tracing::debug!(key = &*cell.key, "a replica did not take an object: {e}");
                failed.push(Arc::clone(cell));
            }
        }
    }
    failed
}

/// What a step hands to one new owner: backups whose head left.
#[derive(Default)]
pub struct Orphans {
    /// Shared objects: type, key, backup.
    pub objects: Vec<(String, String, Backup)>,
    /// Applications of lambda objects.
    pub apps: Vec<(String, AppBackup)>,
}

impl Orphans {
    /// How many backups.
    pub fn len(&self) -> usize {
        self.objects.len() + self.apps.len()
    }
}

/// On a step to `placement`: the backups this node keeps whose head is not
/// a member any more, grouped by the node that owns them now (this node's
/// own stay here, to be promoted once the view settles).
pub fn orphans(cluster: &Cluster, placement: &Placement) -> HashMap<String, Orphans> {
    let members = &placement.view().nodes;
    let mut by_owner: HashMap<String, Orphans> = HashMap::new();
    for (type_name, key, backup) in cluster.replication.backups() {
        if members.contains(&backup.from) {
            continue;
        }
        let owner = placement.owner(&type_name, &key);
        if owner != cluster.me {
            by_owner
                .entry(owner.to_string())
                .or_default()
                .objects
                .push((type_name, key, backup));
        }
    }
    for (app, backup) in cluster.replication.app_backups() {
        if members.contains(&backup.from) {
            continue;
        }
        let owner = placement.owner(LAMBDA_HOME, &app);
        if owner != cluster.me {
            by_owner
                .entry(owner.to_string())
                .or_default()
                .apps
                .push((app, backup));
        }
    }
    by_owner
}

/// The `Replicate` that hands `orphans` to their new owner, with this node's
/// remembered replies (a retry of a write they include must find its reply
/// there).
pub fn handing<'a>(
    cluster: &'a Cluster,
    epoch: u64,
    orphans: &'a Orphans,
    replies: Vec<MovedReply>,
) -> Request<'a> {
    Request::Replicate(Replicate {
        from: &cluster.me,
        epoch,
        copies: orphans
            .objects
            .iter()
            .map(|(type_name, key, backup)| ObjectCopy {
                type_name,
                key,
                version: backup.version,
                state: backup.state.as_deref().map(serde_bytes::Bytes::new),
            })
            .collect(),
        replies,
        apps: orphans
            .apps
            .iter()
            .map(|(app, backup)| backup.to_copy(app))
            .collect(),
    })
}

/// Once a view settled: the backups this node keeps of objects it now owns
/// whose head is gone (each becomes the object, is stored and sent to its
/// replica set), and the backups it no longer needs dropped: those of a
/// live head whose replica set in the view does not hold this node, and
/// those handed to their new owner.
///
/// Only once every view known is settled: with a newer view pending, a head
/// that is a member of the settled view may be gone from the newer one, and
/// its backups are needed for the step to it.
pub async fn settled(node: &NodeState, cluster: &Cluster) {
    let Some(placement) = settled_view(cluster) else {
        return;
    };
    let members = &placement.view().nodes;
    let mut promote = Vec::new();
    // Decided first, with the backups unlocked: the object table is looked
    // at, and a call promoting a backup locks the table, then the backups
    // (the other order deadlocked a failover test's node: both workers
    // waited, each on the other's lock). Then the backups decided against
    // are dropped, unless a newer sender's copy replaced one meanwhile.
    let mut drop = std::collections::HashMap::new();
    for (type_name, key, from) in cluster.replication.holders() {
        let keep = match node.registry.shared_type(&type_name) {
            None => false,
            // The object is here: this node heads it now.
            Some(_) if node.table.get(&type_name, &key).is_some() => false,
            Some(entry) if members.contains(&from) => placement
                .replicas(&type_name, &key, factor(cluster, entry))
                .contains(&cluster.me.as_str()),
            Some(entry) if placement.owner(&type_name, &key) == cluster.me => {
                promote.push((entry, key.clone()));
                true
            }
            Some(_) => false,
        };
        if !keep {
            drop.insert((type_name, key), from);
        }
    }
    cluster.replication.retain(|type_name, key, backup| {
        drop.get(&(type_name.to_string(), key.to_string())) != Some(&backup.from)
    });
    for (entry, key) in promote {
        if let Err(e) = super::object(node, entry, &key).await {
            tracing::warn!(
                type_name = entry.name,
                key,
                "cannot take over an object whose head crashed: {e}"
            );
        }
    }
}

/// The newest view, once every view known is settled.
pub fn settled_view(cluster: &Cluster) -> Option<Arc<Placement>> {
    let settler = cluster.settler();
    match (settler.is_settled(), settler.settled()) {
        (true, Some(placement)) => Some(Arc::clone(placement)),
        _ => None,
    }
}
