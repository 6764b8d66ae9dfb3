//! Replication of lambda objects. They are placed by application (see
//! `lambda_home`), so an application is replicated whole, on the replica set
//! of its home key (`LAMBDA_HOME`, the application) with the cluster's
//! `--replicas` copies, through the same peer links and `Replicate` messages
//! as shared objects:
//!
//! * after a workflow commits, its head sends what it wrote — each entry
//!   with the commit's number as its version — and the workflow's reply, and
//!   answers once every replica acknowledged; a replica keeps, per entry, the
//!   highest version it was sent (commits of one entry are numbered in the
//!   order they installed, so copies may arrive in any order);
//! * a workflow that may have read a commit not yet acknowledged waits for
//!   it (`Store::wait_replicated`), so no reply shows a write a failover
//!   could lose;
//! * on a failed send, on a view step and after a handoff the head sends a
//!   *complete* copy (every entry with its entry set's version, and the clock
//!   when it began), which also removes the entries deleted meanwhile;
//! * failover as for shared objects: the backups of a head that left go to
//!   the application's new home at the step, which installs the newest once
//!   the views settled ([`promote`]) — its commit clock moves above the
//!   versions it took over, so its own writes are newer on every replica.

// Built into every node, driven only by membership on etcd (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use super::backups::{entry_copy, AppBackup};
use super::member::{Cluster, Takeover};
use super::replication::{acknowledged, settled_view, targets_of, REPLICATE_FOR};
use crate::state::NodeState;
use crate::txn::{PartCopy, Store, TxnId, Writes};
use bytes::Bytes;
use crucial::ObjectId;
use crucial_protocol::placement::{Placement, LAMBDA_HOME};
use crucial_protocol::wire::{AppCopy, MovedReply, PreparedCopy, Replicate, Request};
use serde_bytes::ByteBuf;
use std::time::{Duration, Instant};

/// How many copies an application's lambda objects have.
pub fn factor(cluster: &Cluster) -> usize {
    usize::from(cluster.replicas())
}

/// The copy of one commit's writes at home `application`.
fn commit_copy(node: &NodeState, application: &str, writes: &Writes, tid: u64) -> AppCopy {
    let store = &node.lambdas.store;
    AppCopy {
        application: application.to_string(),
        complete: None,
        entries: writes
            .iter()
            .filter(|((object, _), _)| store.at_home(object, application))
            .map(|((object, key), value)| entry_copy(object, key, value.as_deref(), tid))
            .collect(),
        prepared: Vec::new(),
        settled: Vec::new(),
    }
}

/// `part`'s share at home `home`, as its replicas keep it (`None`: it
/// neither reads nor writes there).
pub fn prepared_copy(store: &Store, home: &str, part: &PartCopy) -> Option<PreparedCopy> {
    let copy = wire_copy(part, |object| store.at_home(object, home));
    (!copy.writes.is_empty() || !copy.reads.is_empty()).then_some(copy)
}

/// All of `part`, as a node's disk keeps it.
pub fn whole_copy(part: &PartCopy) -> PreparedCopy {
    wire_copy(part, |_| true)
}

/// `part` with its writes and reads of the objects `keep` picks.
fn wire_copy(part: &PartCopy, keep: impl Fn(&ObjectId) -> bool) -> PreparedCopy {
    let bytes = |b: &[u8]| ByteBuf::from(b.to_vec());
    PreparedCopy {
        manager: part.txn.manager,
        seq: part.txn.seq,
        anchor: part.anchor.clone(),
        proposed: part.proposed,
        writes: part
            .writes
            .iter()
            .filter(|((object, _), _)| keep(object))
            .map(|((object, key), value)| (object.clone(), bytes(key), value.as_deref().map(bytes)))
            .collect(),
        reads: part
            .reads
            .iter()
            .filter(|(object, _, _)| keep(object))
            .map(|(object, from, to)| (object.clone(), bytes(from), to.as_deref().map(bytes)))
            .collect(),
    }
}

/// A kept copy of a prepared part, to restore: without the writes to
/// entries `newer` says were written at its number or above (after it: it
/// is decided, and what followed it is newer).
pub fn part_of(copy: PreparedCopy, newer: impl Fn(&ObjectId, &[u8], u64) -> bool) -> PartCopy {
    let proposed = copy.proposed;
    PartCopy {
        txn: TxnId {
            manager: copy.manager,
            seq: copy.seq,
        },
        anchor: copy.anchor,
        proposed,
        writes: copy
            .writes
            .into_iter()
            .filter(|(object, key, _)| !newer(object, key, proposed))
            .map(|(object, key, value)| {
                (
                    (object, key.into_vec()),
                    value.map(|v| Bytes::from(v.into_vec())),
                )
            })
            .collect(),
        reads: copy
            .reads
            .into_iter()
            .map(|(object, from, to)| (object, from.into_vec(), to.map(ByteBuf::into_vec)))
            .collect(),
    }
}

/// The homes a prepared part reads or writes.
pub fn homes_of(store: &Store, part: &PartCopy) -> Vec<String> {
    let mut homes: Vec<String> = part
        .writes
        .iter()
        .map(|((object, _), _)| store.home(object))
        .chain(part.reads.iter().map(|(object, _, _)| store.home(object)))
        .collect();
    homes.sort();
    homes.dedup();
    homes
}

/// A complete copy of the application as this node holds it now.
fn complete_copy(node: &NodeState, application: &str) -> AppCopy {
    let (as_of, entries) = node.lambdas.store.snapshot_home(application);
    AppCopy {
        application: application.to_string(),
        complete: Some(as_of),
        entries: entries
            .into_iter()
            .map(|((object, key), value, version)| {
                entry_copy(&object, &key, value.as_deref(), version)
            })
            .collect(),
        prepared: node
            .lambdas
            .participant
            .copies()
            .iter()
            .filter_map(|part| prepared_copy(&node.lambdas.store, application, part))
            .collect(),
        settled: Vec::new(),
    }
}

/// Sends `copy` (and `replies`) to the application's replica set in the
/// newest view and waits for every acknowledgement; `Ok(false)`: no other
/// copy in this view.
async fn send(
    cluster: &Cluster,
    placement: &Placement,
    copy: AppCopy,
    replies: Vec<MovedReply>,
) -> Result<bool, String> {
    let Some(targets) = targets_of(
        cluster,
        placement,
        LAMBDA_HOME,
        &copy.application,
        factor(cluster),
    )
    .await
    else {
        return Ok(false);
    };
    let request = Request::Replicate(Replicate {
        from: &cluster.me,
        epoch: targets.epoch(),
        copies: Vec::new(),
        replies,
        apps: vec![copy],
    });
    acknowledged(targets.start(&request)?).await?;
    Ok(true)
}

/// Replicates commit `tid` of a workflow at home `application` (its
/// `writes`, and `reply`, the workflow's remembered reply, if this node
/// manages the workflow): at most [`REPLICATE_FOR`],
/// again with each new view while a replica fails — then with a complete
/// copy, since the replica may have missed earlier commits meanwhile.
pub async fn replicate(
    node: &NodeState,
    cluster: &Cluster,
    application: &str,
    writes: &Writes,
    tid: u64,
    reply: Option<MovedReply>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut copy = commit_copy(node, application, writes, tid);
    loop {
        let placement = cluster.placement();
        let replies: Vec<MovedReply> = reply.iter().cloned().collect();
        let failure = match send(cluster, &placement, copy, replies).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if started.elapsed() >= REPLICATE_FOR {
            return Err(format!(
                "its replicas did not acknowledge it in {REPLICATE_FOR:?}: {failure}"
            ));
        }
        if failure.contains(super::NO_BASE) {
            // A home new since the replica set last changed (each object is
            // a home of its own when placed by object): its first commit
            // is followed at once by the whole home, which is that commit.
            tracing::debug!(application, "a replica has no base yet: {failure}");
        } else {
            tracing::warn!(
                application,
                "a replica did not acknowledge a workflow's writes ({failure}); sending the \
                 application again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        copy = complete_copy(node, application);
    }
}

/// How long a participant's vote may wait for its part's copies.
const PREPARED_WITHIN: Duration = Duration::from_secs(2);

/// Copies `part`, prepared here, to the replicas of home `home` (its share
/// there), again after a complete copy of the home while a replica has none;
/// at most [`PREPARED_WITHIN`].
pub async fn replicate_prepared(
    node: &NodeState,
    cluster: &Cluster,
    home: &str,
    part: &PartCopy,
) -> Result<(), String> {
    let started = Instant::now();
    let Some(prepared) = prepared_copy(&node.lambdas.store, home, part) else {
        return Ok(());
    };
    let copy = AppCopy {
        application: home.to_string(),
        complete: None,
        entries: Vec::new(),
        prepared: vec![prepared],
        settled: Vec::new(),
    };
    loop {
        let failure = match send(cluster, &cluster.placement(), copy.clone(), Vec::new()).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if started.elapsed() >= PREPARED_WITHIN {
            return Err(format!(
                "the replicas of {home} did not take a prepared part in {PREPARED_WITHIN:?}: \
                 {failure}"
            ));
        }
        if !failure.contains(super::NO_BASE) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A base for a replica that has none (at once: a home new since the
        // replica set last changed, such as an object a transaction across
        // nodes creates); the part is sent again after.
        if let Err(e) = send(
            cluster,
            &cluster.placement(),
            complete_copy(node, home),
            Vec::new(),
        )
        .await
        {
            tracing::debug!(home, "a complete copy before a prepared part: {e}");
        }
    }
}

/// Tells the replicas of home `home` that the parts of `txns` ended (their
/// copies are dropped). Best effort: a copy left behind is restored on a
/// failover, asks, and changes nothing.
pub async fn settle(cluster: &Cluster, home: &str, txns: Vec<TxnId>) {
    let copy = AppCopy {
        application: home.to_string(),
        complete: None,
        entries: Vec::new(),
        prepared: Vec::new(),
        settled: txns.iter().map(|t| (t.manager, t.seq)).collect(),
    };
    if let Err(e) = send(cluster, &cluster.placement(), copy, Vec::new()).await {
        tracing::debug!(home, "ended parts' copies not dropped yet: {e}");
    }
}

/// Sends the whole of `application` to its replica set in the newest view
/// (a step, a handoff or a failover changed the set), a few times while it
/// fails; returns whether the set has it.
pub async fn sync(node: &NodeState, cluster: &Cluster, application: &str) -> bool {
    for attempt in 0..20 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let copy = complete_copy(node, application);
        match send(cluster, &cluster.placement(), copy, Vec::new()).await {
            Ok(_) => return true,
            Err(e) => tracing::debug!(application, "an application not synced yet: {e}"),
        }
    }
    false
}

/// The applications this node keeps lambda objects of.
pub fn held(node: &NodeState) -> Vec<String> {
    let mut apps: Vec<String> = node
        .lambdas
        .store
        .list()
        .into_iter()
        .filter(|(id, _, _)| !crate::lambda_objects::is_record(id))
        .map(|(id, _, _)| node.lambdas.store.home(&id))
        .collect();
    apps.sort();
    apps.dedup();
    apps
}

/// The backup of an application whose head crashed becomes the application
/// here: its entries are installed (numbered above every version taken over)
/// and queued for the disk — before any workflow of it runs, so a
/// workflow's own durable reply comes after them (the group commit keeps
/// order). Sending it to its new replica set is [`sync`]'s.
pub fn promote(node: &NodeState, application: &str, mut backup: AppBackup) {
    let version = backup.version();
    // Parts prepared at this home when its head crashed: restored once
    // its entries are in, locked and pinned, until their outcome.
    let parts: Vec<PartCopy> = std::mem::take(&mut backup.prepared)
        .into_values()
        .map(|copy| {
            part_of(copy, |object, key, proposed| {
                backup
                    .entries
                    .get(&(object.clone(), key.to_vec()))
                    .is_some_and(|(version, _)| *version >= proposed)
            })
        })
        .collect();
    let entries = backup.live();
    tracing::info!(
        application,
        entries = entries.len(),
        version,
        "took over an application whose head crashed, from its backup here"
    );
    if let Err(e) = node.lambdas.store.install_taken_over(entries, version) {
        tracing::error!(application, "cannot take over an application: {e}");
    }
    match node.lambdas.participant.restore_all(parts, false) {
        Ok(0) => {}
        Ok(restored) => tracing::info!(application, restored, "restored parts in doubt"),
        Err(abort) => tracing::error!(application, "cannot restore parts in doubt: {abort:?}"),
    }
}

/// Once every view known settled: the application backups of heads that
/// left and whose home is this node become the applications (then sent to
/// their replica sets); backups no longer needed are dropped (their head is
/// alive and this node is not in their set, or they were handed on).
pub async fn settled(node: &NodeState, cluster: &Cluster) {
    let Some(placement) = settled_view(cluster) else {
        return;
    };
    let members = &placement.view().nodes;
    let rf = factor(cluster);
    let mut promote_here = Vec::new();
    cluster.replication.retain_apps(|app, backup| {
        if members.contains(&backup.from) {
            return placement
                .replicas(LAMBDA_HOME, app, rf)
                .contains(&cluster.me.as_str());
        }
        if placement.owner(LAMBDA_HOME, app) == cluster.me {
            promote_here.push(app.to_string());
            return true; // taken just below
        }
        false
    });
    for app in promote_here {
        // No workflow or transaction step gets in before the objects (and
        // the parts in doubt) are installed: one that finds the backup gone
        // waits for them instead of meeting no objects at all. `Busy`: a
        // workflow's call is taking it over (and sends it to its replicas).
        let took = cluster.take_over(
            &app,
            || node.lambdas.store.holds_home(&app),
            |backup| promote(node, &app, backup),
        );
        if took == (Takeover::Took { promoted: true }) {
            sync(node, cluster, &app).await;
        }
    }
}
