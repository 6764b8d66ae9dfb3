//! The cluster: many nodes, one object space.
//!
//! * `membership.rs` keeps this node in etcd (a key under a lease, kept alive)
//!   and turns etcd's changes into views, in etcd's order, through the small
//!   etcd client in `etcd/` (feature `cluster`);
//! * `settle.rs` is the order in which a node walks through those views and
//!   what it may do with a missing object meanwhile;
//! * `peers.rs` keeps this node's connections to the other members' peer
//!   ports (one each, reopened when broken, every request with a timeout);
//! * `handoff.rs` moves objects, their remembered replies and their parked
//!   calls to their new owner on each step, and adopts what others send;
//! * `member.rs` is this node's part, and this file what the apply step asks:
//!   does this node own the object, may it create it, must the call wait.
//!
//! A node started without `--etcd` has no cluster and behaves as before. A
//! node built without the `cluster` feature has no etcd client and cannot
//! join one: the rest of this module is what every node answers with.

mod app_replication;
mod backups;
#[cfg(feature = "cluster")]
mod etcd;
mod handoff;
#[cfg(feature = "cluster")]
pub mod light;
mod light_cache;
mod link;
pub mod member;
#[cfg(feature = "cluster")]
mod membership;
#[cfg(feature = "cluster")]
mod peers;
#[cfg(feature = "cluster")]
mod reach;
pub mod replication;
mod settle;

pub use handoff::adopt;
#[cfg(feature = "cluster")]
pub use membership::start;
#[cfg(feature = "cluster")]
pub use reach::ask_outcome;

use crate::quota::Quota;
use crate::shared_objects::ObjectCell;
use crate::state::NodeState;
use crucial::__private::registry::SharedTypeEntry;
use crucial::RemoteError;
use std::sync::Arc;

/// The apply step's ownership check for calls and control requests on one
/// object: `Err` is the reply — a redirect when another node owns it, or
/// `Fenced` while this node's etcd lease may have run out.
pub fn check(node: &NodeState, type_name: &str, key: &str) -> Result<(), RemoteError> {
    let Some(cluster) = node.cluster.get() else {
        return Ok(());
    };
    cluster.fenced()?;
    let owns = cluster.owns(type_name, key);
    if owns {
        Ok(())
    } else {
        Err(cluster.not_owner(type_name, key))
    }
}

/// Refuses a request that would make one more shared object of an
/// application at its `--app-max-objects` (`what` it is, for the message).
/// Objects that arrive from other nodes are never refused.
pub fn within_quota(
    node: &NodeState,
    type_name: &str,
    key: &str,
    what: &str,
) -> Result<(), RemoteError> {
    let Some(limit) = node.quotas.limit(Quota::Objects) else {
        return Ok(());
    };
    let (application, named) = crucial_protocol::placement::without_namespace(key);
    // An object that exists is the common case: its shard's read lock
    // answers it, not the census's one mutex.
    if application.is_empty()
        || node.table.get(type_name, key).is_some()
        || node
            .table
            .census_of(application)
            .is_none_or(|census| census.objects() < limit)
    {
        return Ok(());
    }
    Err(node.quotas.refuse(
        application,
        Quota::Objects,
        format!("{what} would make a new object `{named}` of `{type_name}`"),
    ))
}

/// Refuses a create of an initial state of `bytes` for an application that
/// it would take past its `--app-max-bytes`.
pub fn within_byte_quota(
    node: &NodeState,
    type_name: &str,
    key: &str,
    bytes: usize,
) -> Result<(), RemoteError> {
    let Some(limit) = node.quotas.limit(Quota::Bytes) else {
        return Ok(());
    };
    let (application, named) = crucial_protocol::placement::without_namespace(key);
    if application.is_empty() {
        return Ok(());
    }
    let held = node
        .table
        .census_of(application)
        .map_or(0, |census| census.bytes());
    if held.saturating_add(bytes as u64) <= limit {
        return Ok(());
    }
    Err(node.quotas.refuse(
        application,
        Quota::Bytes,
        format!(
            "this create of `{named}` of `{type_name}` with {bytes} bytes of state, beside the \
             {held} its objects hold,"
        ),
    ))
}

/// A call's object on this node: created from `Default` if absent (and, in a
/// cluster, if no other node can hold it: else the call waits for it, is
/// redirected, or learns it was lost with a crashed node). `true` with it:
/// it came from another node (a handoff, or a backup of a crashed head)
/// after the caller looked, with the replies of calls run there.
pub async fn object(
    node: &NodeState,
    entry: &'static SharedTypeEntry,
    key: &str,
) -> Result<(Arc<ObjectCell>, bool), RemoteError> {
    within_quota(node, entry.name, key, "this call")?;
    match node.cluster.get() {
        None => Ok((node.table.get_or_default(entry, key), false)),
        Some(cluster) => {
            let (cell, made) = cluster
                .cell(&node.table, entry, key, true, entry.create_default)
                .await?;
            if made == member::Made::Promoted {
                promoted(node, cluster, &cell).await?;
            }
            let came = matches!(made, member::Made::Promoted | member::Made::Arrived);
            Ok((cell, came))
        }
    }
}

/// A backup became the object here (its head crashed): it is stored and
/// sent to its new replica set before anything runs on it.
pub async fn promoted(
    node: &NodeState,
    cluster: &member::Cluster,
    cell: &ObjectCell,
) -> Result<(), RemoteError> {
    let failed = |reason: String| RemoteError::NotDurable {
        type_name: cell.entry.name.to_string(),
        key: cell.key.to_string(),
        method: "<failover>".into(),
        reason,
    };
    if let Some(storage) = &node.storage {
        let persist = crate::shared_objects::Persist {
            storage,
            residency: &node.table.residency,
            reply_to: None,
        };
        node.durable(persist.save_created(cell))
            .await
            .map_err(failed)?;
    }
    replication::replicate(node, cluster, cell, None, None, None)
        .await
        .map_err(failed)
}

/// How a replica refuses a commit's copy of a home it has no complete copy
/// of (a home created since the replica set last changed): the head sends
/// one at once.
pub(crate) const NO_BASE: &str = "no complete copy of application";

/// `Replicate`: keeps the copies as backups, and their writes' replies for
/// retries that reach this node after a failover. Copies from a node that is
/// not a member of this node's newest view are refused (fencing): a head the
/// cluster deposed — its lease expired while it was cut off — cannot make
/// its writes acknowledged. (A member this node does not know yet retries.)
pub fn keep_copies(
    node: &NodeState,
    cluster: &member::Cluster,
    replicate: crucial_protocol::wire::Replicate<'_>,
) -> Result<(), RemoteError> {
    let placement = cluster.placement();
    let view = placement.view();
    if !view.nodes.iter().any(|n| n == replicate.from) {
        return Err(RemoteError::Protocol {
            reason: format!(
                "copies from {}, which is not a member of the cluster in this node's view \
                 (epoch {}, sender's epoch {}): refused, so a deposed head cannot write",
                replicate.from, view.epoch, replicate.epoch
            ),
        });
    }
    for reply in replicate.replies {
        node.dedup.adopt(reply.client, reply.request, reply.outcome);
    }
    for copy in &replicate.copies {
        cluster.replication.keep(replicate.from, copy);
    }
    for app in replicate.apps {
        if let Err(no_base) = cluster.replication.keep_app(replicate.from, app) {
            return Err(RemoteError::Protocol {
                reason: format!("{NO_BASE} {} here yet: send one first", no_base.0),
            });
        }
    }
    Ok(())
}

/// After a workflow committed as number `tid`: in a cluster whose lambda
/// objects have more than one copy, its `writes` on this node (and `reply`,
/// the workflow's reply, on the node that manages it) go to the replicas of each home they belong to,
/// and then, written or not, the workflow waits until every commit it may
/// have read is on them. `Err`: the replicas did not take the writes.
pub async fn replicate_workflow(
    node: &NodeState,
    writes: &crate::txn::Writes,
    tid: u64,
    reply: Option<crucial_protocol::wire::MovedReply>,
) -> Result<(), String> {
    replicate_workflow_from(node, writes, tid, reply, None).await
}

/// [`replicate_workflow`], home `first` first: the other homes' copies
/// leave only once its replicas have it (it holds the decision's record
/// that the other homes' kept parts ask for after a failover).
pub async fn replicate_workflow_from(
    node: &NodeState,
    writes: &crate::txn::Writes,
    tid: u64,
    reply: Option<crucial_protocol::wire::MovedReply>,
    first: Option<&str>,
) -> Result<(), String> {
    let Some(cluster) = node.cluster.get() else {
        return Ok(());
    };
    if app_replication::factor(cluster) < 2 {
        return Ok(());
    }
    let store = &node.lambdas.store;
    let sent = if writes.is_empty() {
        Ok(())
    } else {
        let mut homes: Vec<String> = writes.iter().map(|((id, _), _)| store.home(id)).collect();
        homes.sort();
        homes.dedup();
        if let Some(first) = first {
            homes.sort_by_key(|home| home != first);
        }
        let mut sent = Ok(());
        for (i, home) in homes.iter().enumerate() {
            let copied =
                app_replication::replicate(node, cluster, home, writes, tid, reply.clone()).await;
            if copied.is_err() && i == 0 && first.is_some() {
                // Without the record on its replicas, the other homes'
                // copies must not go: their kept parts stay to be resolved.
                sent = copied;
                break;
            }
            sent = sent.and(copied);
            if i == 0
                && first.is_some()
                && homes.len() > 1
                && !cluster.delay_between_homes.is_zero()
            {
                tokio::time::sleep(cluster.delay_between_homes).await;
            }
        }
        store.replicated(tid);
        sent
    };
    // Earlier commits wait for their replicas at most as long as a write
    // does, so this wait is bounded by it too (a commit whose reply was lost
    // with its task must not hold every later workflow forever).
    let within = replication::REPLICATE_FOR + std::time::Duration::from_secs(5);
    if tokio::time::timeout(within, store.wait_replicated(tid))
        .await
        .is_err()
    {
        // Every replication ends within REPLICATE_FOR: what still waits was
        // left by a task that died; later workflows must not wait for it.
        store.forget_unreplicated_below(tid);
        return Err(format!(
            "a commit it may have read was not on the replicas after {within:?}"
        ));
    }
    sent
}

/// Before a participant votes for `txn`: its part here goes to this
/// node's disk (with a data directory: a restart restores it) and to the
/// replicas of each home it reads or writes (after every commit it may have
/// read: one of them restores it if this node crashes before the outcome).
/// `Err`: they did not take it (the vote is no).
pub async fn keep_prepared(node: &NodeState, txn: crate::txn::TxnId) -> Result<(), String> {
    let Some(part) = node.lambdas.participant.copy(txn) else {
        return Ok(()); // nothing held here
    };
    let participant = &node.lambdas.participant;
    let record = crucial_protocol::codec::encode(&app_replication::whole_copy(&part))
        .map_err(|e| format!("cannot encode a prepared part: {e}"))?;
    let key = crate::txn::Participant::disk_key(txn);
    if let Some(ticket) = node.lambdas.store.save_prepared(key, record) {
        node.durable(ticket).await?;
        participant.stored(txn);
    }
    let Some(cluster) = node.cluster.get() else {
        return Ok(());
    };
    if app_replication::factor(cluster) < 2 {
        return Ok(());
    }
    replicate_workflow(node, &Vec::new(), part.proposed, None).await?;
    let homes = app_replication::homes_of(&node.lambdas.store, &part);
    for home in &homes {
        app_replication::replicate_prepared(node, cluster, home, &part).await?;
    }
    participant.copied(txn, homes);
    Ok(())
}

/// At the start of a node with a data directory, before its peer port
/// serves: the parts that were prepared here when it stopped are restored
/// (locked and pinned, asking for their outcome). In a cluster with more
/// than one copy of each object the replicas restored them when they took
/// the homes over: once the node knows the cluster's setting, it drops
/// them ([`drop_restored_prepared`]).
#[cfg(feature = "cluster")]
pub fn restore_prepared(node: &NodeState) {
    let store = &node.lambdas.store;
    let mut parts = Vec::new();
    for (key, record) in store.prepared_on_disk() {
        let Ok(key) = <[u8; 16]>::try_from(key.as_slice()) else {
            continue;
        };
        match crucial_protocol::codec::decode::<crucial_protocol::wire::PreparedCopy>(&record) {
            Ok(copy) => parts.push(app_replication::part_of(copy, |_, _, _| false)),
            Err(e) => {
                tracing::error!("a prepared part on disk is damaged ({e}): dropped");
                store.forget_prepared(key);
            }
        }
    }
    match node.lambdas.participant.restore_all(parts, true) {
        Ok(0) => {}
        Ok(restored) => tracing::info!(restored, "restored parts in doubt from disk"),
        Err(abort) => tracing::error!("cannot restore the parts in doubt on disk: {abort:?}"),
    }
}

/// Drops, on the replicas, the copies of prepared parts that ended here.
#[cfg(feature = "cluster")]
pub async fn settle_prepared(node: &NodeState) {
    let Some(cluster) = node.cluster.get() else {
        return;
    };
    let mut by_home: std::collections::BTreeMap<String, Vec<crate::txn::TxnId>> =
        std::collections::BTreeMap::new();
    for (home, txn) in node.lambdas.participant.take_settled() {
        by_home.entry(home).or_default().push(txn);
    }
    for (home, txns) in by_home {
        app_replication::settle(cluster, &home, txns).await;
    }
}

/// In a cluster with copies: the parts restored from this node's disk at
/// its start are dropped (their records with them): the replicas that
/// took this node's homes over had them.
#[cfg(feature = "cluster")]
pub fn drop_restored_prepared(node: &NodeState) {
    let participant = &node.lambdas.participant;
    for txn in participant.restored() {
        let installed = participant.abort(txn);
        debug_assert!(installed.is_empty(), "none of them committed");
    }
}

/// A call's replication: its object's other copies in the newest view.
pub struct Replicated {
    /// This node's part of the cluster.
    pub cluster: Arc<member::Cluster>,
    /// The other replicas, connections open (`None`: too few members for a
    /// second copy now).
    pub targets: Option<replication::Targets>,
}

/// The replication of a call on an object of `entry`, if its objects have
/// other copies (persistent, `rf` > 1, in a cluster). For a write
/// (`write`), connections to the replicas are opened here, before it runs.
pub async fn replicated(
    node: &NodeState,
    entry: &'static SharedTypeEntry,
    key: &str,
    write: bool,
) -> Option<Replicated> {
    let cluster = node.cluster.get()?;
    if replication::factor(cluster, entry) < 2 {
        return None;
    }
    let targets = match write {
        true => replication::targets(cluster, &cluster.placement(), entry, key).await,
        false => None,
    };
    Some(Replicated {
        cluster: Arc::clone(cluster),
        targets,
    })
}

/// The ownership check of a lambda-object workflow: its application's
/// objects are served by the node that keeps them, else by the owner. Once
/// it passes, a provisional copy of the application here is the one in use.
pub async fn lambda_home(
    node: &NodeState,
    application: &str,
) -> Result<Option<member::AppGuard>, RemoteError> {
    match node.cluster.get() {
        None => Ok(None),
        Some(cluster) => {
            cluster.fenced()?;
            let holds = || node.lambdas.store.holds_home(application);
            let promote = |backup| app_replication::promote(node, application, backup);
            let (guard, promoted) = cluster.lambda_home(application, holds, promote).await?;
            if promoted {
                app_replication::sync(node, cluster, application).await;
            }
            // The application's copy here is the one in use from now on.
            node.lambdas.store.provisional.confirm(application);
            Ok(Some(guard))
        }
    }
}

/// The objects of map instance `step` this node serves. A list of keys is
/// those objects (the manager split it by owner); a range or every object
/// is the store's objects of the type that the selection takes and whose
/// home this node owns in view `step.epoch` — after it took over the
/// backups of such homes it keeps (a failover installs a home at its first
/// call: its objects would not be listed otherwise). `Conflict` while the
/// node has not settled that view: the manager runs the map again.
pub async fn map_objects(
    node: &NodeState,
    step: &crate::txn::MapStep,
) -> Result<Vec<crucial::ObjectId>, crucial_protocol::wire::TxnRefusal> {
    use crucial_protocol::placement::{lambda_home_parts, LAMBDA_HOME};
    use crucial_protocol::wire::{Objects, TxnRefusal};
    let store = &node.lambdas.store;
    let id = |key: &str| crucial::ObjectId::new(&step.application, &step.type_name, key);
    let cluster = node.cluster.get();
    if let Some(cluster) = cluster {
        let settled =
            cluster.placement().view().epoch == step.epoch && cluster.settler().is_settled();
        if !settled {
            return Err(TxnRefusal::Conflict);
        }
    }
    if let Objects::Keys(keys) = &step.objects {
        return Ok(keys.iter().map(|key| id(key)).collect());
    }
    let listed = store.objects_of(&step.application, &step.type_name, &step.objects);
    let Some(cluster) = cluster else {
        return Ok(listed);
    };
    let placement = cluster.placement();
    let owned = |home: &str| placement.owner(LAMBDA_HOME, home) == cluster.me;
    let mut adopted = false;
    for home in cluster.replication.app_homes() {
        let takes = match lambda_home_parts(&home) {
            (app, _) if app != step.application => false,
            (_, Some((type_name, key))) => type_name == step.type_name && step.objects.takes(key),
            (_, None) => true,
        };
        if takes && owned(&home) {
            lambda_home(node, &home)
                .await
                .map_err(|_| TxnRefusal::Conflict)?;
            adopted = true;
        }
    }
    let listed = match adopted {
        true => store.objects_of(&step.application, &step.type_name, &step.objects),
        false => listed,
    };
    Ok(listed
        .into_iter()
        .filter(|id| owned(&store.home(id)))
        .collect())
}

/// Fills in the redirect of a call that found its object moved.
pub fn fill_redirect(node: &NodeState, error: &mut RemoteError) {
    if let Some(cluster) = node.cluster.get() {
        cluster.fill(error);
    }
}
