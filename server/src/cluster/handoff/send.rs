//! The sender: steps through views, hands off what this node no longer owns.

use super::LambdaObjects;
use crate::cluster::app_replication;
use crate::cluster::member::Cluster;
use crate::cluster::peers::PeerPool;
use crate::cluster::replication;
use crate::shared_objects::{deliver, ObjectCell, Persist};
use crate::state::NodeState;
use crucial::RemoteError;
use crucial_protocol::placement::{Placement, LAMBDA_HOME};
use crucial_protocol::wire::{Adopt, MovedEntries, MovedObject, MovedReply, Request};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Objects per `Adopt` request (and at most about this many bytes).
const BATCH_OBJECTS: usize = 2048;
const BATCH_BYTES: usize = 2 << 20;

/// The handoff thread: steps through views as they come and settle.
pub(in crate::cluster) fn spawn(
    node: Weak<NodeState>,
    cluster: Arc<Cluster>,
    rt: tokio::runtime::Handle,
) {
    let spawned = std::thread::Builder::new()
        .name("crucial-handoff".into())
        .spawn(move || {
            let mut peers = Peers {
                pool: PeerPool::new(rt.clone()),
                owed: BTreeMap::new(),
                dones: BTreeMap::new(),
                owed_apps: BTreeMap::new(),
                repair: Repair::default(),
            };
            loop {
                cluster.wait_for_work(Duration::from_millis(100));
                let Some(node) = node.upgrade() else { return };
                loop {
                    let step = cluster.settler().next_step();
                    if let Some(placement) = &step {
                        let epoch = placement.view().epoch;
                        let started = Instant::now();
                        let moved = step_to(&node, &cluster, placement, &mut peers);
                        cluster.settler_mut().stepped(epoch);
                        tracing::info!(
                            epoch,
                            moved,
                            "stepped to view {epoch} in {:?}",
                            started.elapsed()
                        );
                    }
                    let settled = cluster.settler_mut().settle();
                    if settled {
                        rt.block_on(async {
                            replication::settled(&node, &cluster).await;
                            app_replication::settled(&node, &cluster).await;
                        });
                        cluster.objects_arrived();
                        node.metrics.view_settled();
                    }
                    if step.is_none() && !settled {
                        break;
                    }
                }
                peers.flush(&node, &cluster);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the handoff thread: {e}");
    }
}

/// Connections to the other nodes, and what could not be delivered yet.
///
/// A new owner that cannot be reached keeps its objects *owed*: they stay out
/// of this node's table (calls on them are redirected to the owner, which
/// waits for them) and are sent again on every wake-up while the owner is a
/// member; its "done" waits until they are in. An owner that left the view
/// gives its owed objects back to the table, and the step to that view hands
/// them to their owner in it.
struct Peers {
    pool: PeerPool,
    /// Objects not delivered yet, per new owner, with the view they are for.
    owed: BTreeMap<String, Vec<Leaving>>,
    /// The newest "done" each member has not received yet: `(epoch, kept apps)`.
    dones: BTreeMap<String, (u64, Vec<String>)>,
    /// Lambda-object applications not delivered yet, per new owner (held
    /// back here meanwhile: their workflows wait).
    owed_apps: BTreeMap<String, Vec<LeavingApp>>,
    /// Replication's repair: the view of the last step, and what this node
    /// heads whose replica set did not take it then (sent again at the next).
    repair: Repair,
}

/// What the repair of one step must send (see [`replicas_for`]).
#[derive(Default)]
struct Repair {
    last: Option<Arc<Placement>>,
    unsynced: std::collections::HashSet<(String, String)>,
}

impl Repair {
    /// Whether the copies of `key` (a type with `rf` copies) must be sent
    /// to their set in `placement`: the set changed since the last step, or
    /// holds a member with nothing yet (new, or back after a crash), or did
    /// not take them at the last step.
    fn due(
        &self,
        placement: &Placement,
        fresh: &[String],
        type_name: &str,
        key: &str,
        rf: usize,
    ) -> bool {
        let Some(last) = &self.last else {
            return true;
        };
        let now = placement.replicas(type_name, key, rf);
        now != last.replicas(type_name, key, rf)
            || now.iter().any(|n| fresh.iter().any(|f| f == n))
            || self
                .unsynced
                .contains(&(type_name.to_string(), key.to_string()))
    }
}

/// Longest a move waits for an application's running workflows to end.
const QUIESCE_FOR: Duration = Duration::from_secs(30);

impl Peers {
    /// Sends `request` to member `addr` on its peer port.
    fn request<R: serde::de::DeserializeOwned>(
        &mut self,
        node: &NodeState,
        cluster: &Cluster,
        addr: &str,
        request: &Request<'_>,
    ) -> crucial::Result<R> {
        self.pool.request(node, cluster, addr, request)
    }

    /// Owed objects of owners that left `members` go back to the table.
    fn give_back_unless(&mut self, node: &NodeState, cluster: &Cluster, members: &[String]) {
        for (owner, objects) in departed(&mut self.owed, members) {
            tracing::warn!(
                owner,
                objects = objects.len(),
                "the new owner left before taking its objects: they stay here for now"
            );
            node.table
                .put_back(objects.into_iter().map(|l| l.cell).collect());
        }
        for (owner, apps) in departed(&mut self.owed_apps, members) {
            for leaving in apps {
                tracing::warn!(
                    owner,
                    app = leaving.app,
                    "the new owner left before taking the application: it stays here for now"
                );
                let store = &node.lambdas.store;
                store.put_objects(leaving.objects);
                store.provisional.put_back(&leaving.app, leaving.restored);
                cluster.thaw(&leaving.app);
            }
        }
        self.dones.retain(|member, _| members.contains(member));
    }

    /// Tries once to deliver what is owed: objects first, then the "done" of
    /// members that are owed no objects.
    fn flush(&mut self, node: &NodeState, cluster: &Cluster) {
        if self.owed.is_empty() && self.dones.is_empty() && self.owed_apps.is_empty() {
            cluster.set_owing(false);
            return;
        }
        let members = cluster.view().nodes;
        let owners: Vec<String> = self.owed.keys().cloned().collect();
        // One snapshot of the remembered replies for every owner of this try.
        let replies = if owners.is_empty() {
            Vec::new()
        } else {
            replies(node)
        };
        for owner in owners {
            if !members.contains(&owner) {
                continue; // given back by the step to the view without it
            }
            let Some(objects) = self.owed.remove(&owner) else {
                continue;
            };
            let sent = send_objects(node, cluster, self, &owner, &objects, &replies);
            let (delivered, rest) = split_at(objects, sent);
            forget_on_disk(node, &delivered, self.pool.runtime());
            node.metrics.moved_out(delivered.len());
            if !rest.is_empty() {
                self.owed.insert(owner, rest);
            }
        }
        let owners: Vec<String> = self.owed_apps.keys().cloned().collect();
        for owner in owners {
            if !members.contains(&owner) {
                continue;
            }
            let apps = self.owed_apps.remove(&owner).unwrap_or_default();
            let mut rest = Vec::new();
            for leaving in apps {
                if !rest.is_empty() || !send_app(node, cluster, self, &owner, &leaving) {
                    rest.push(leaving);
                    continue;
                }
                let LeavingApp { app, objects, .. } = leaving;
                forget_entries_on_disk(node, &objects, self.pool.runtime());
                node.metrics.moved_out(objects.len());
                tracing::info!(app, owner, objects = objects.len(), "moved lambda objects");
                cluster.thaw(&app);
            }
            if !rest.is_empty() {
                self.owed_apps.insert(owner, rest);
            }
        }
        let waiting: Vec<String> = self.dones.keys().cloned().collect();
        for member in waiting {
            if self.owed.contains_key(&member) || self.owed_apps.contains_key(&member) {
                continue;
            }
            let Some((epoch, kept)) = self.dones.get(&member).cloned() else {
                continue;
            };
            let done = Request::HandoffDone {
                from: &cluster.me,
                epoch,
                kept,
            };
            match self.request::<()>(node, cluster, &member, &done) {
                Ok(()) => {
                    self.dones.remove(&member);
                }
                Err(e) => tracing::debug!("cannot reach {member} yet: {e}"),
            }
        }
        cluster.set_owing(
            !self.owed.is_empty() || !self.dones.is_empty() || !self.owed_apps.is_empty(),
        );
    }
}

/// Takes out what is owed to nodes that are not `members` any more.
fn departed<V>(owed: &mut BTreeMap<String, V>, members: &[String]) -> Vec<(String, V)> {
    let (gone, staying): (BTreeMap<_, _>, _) = std::mem::take(owed)
        .into_iter()
        .partition(|(owner, _)| !members.contains(owner));
    *owed = staying;
    gone.into_iter().collect()
}

fn split_at(mut objects: Vec<Leaving>, at: usize) -> (Vec<Leaving>, Vec<Leaving>) {
    let rest = objects.split_off(at.min(objects.len()));
    (objects, rest)
}

/// The remembered replies handed over with objects.
fn replies(node: &NodeState) -> Vec<MovedReply> {
    node.dedup
        .snapshot()
        .into_iter()
        .map(|(client, request, outcome)| MovedReply {
            client,
            request,
            outcome,
        })
        .collect()
}

/// One object on its way out.
struct Leaving {
    cell: Arc<ObjectCell>,
    state: Vec<u8>,
    poison: Option<(String, String)>,
    /// Restored from this node's disk at its start and not used since.
    restored: bool,
    /// Its replication version.
    version: u64,
}

/// An application's lambda objects on their way to their new owner.
struct LeavingApp {
    app: String,
    objects: LambdaObjects,
    /// Its copy was provisional here (restored from a disk, not used since).
    restored: bool,
    /// This node's commit clock when they were taken out: above the number
    /// of every commit that wrote them.
    version: u64,
}

/// Hands off everything this node holds and does not own in `placement`,
/// then says done to every member (a member owed objects gets its "done"
/// once they are in); returns how many objects were taken out.
fn step_to(node: &NodeState, cluster: &Cluster, placement: &Placement, peers: &mut Peers) -> usize {
    let epoch = placement.view().epoch;
    let me = cluster.me.as_str();
    peers.give_back_unless(node, cluster, &placement.view().nodes);
    let taken = node
        .table
        .take_if(|type_name, key| placement.owner(type_name, key) != me);
    let count = taken.len();
    let mut redirected = Vec::new();
    for cell in taken {
        let leaving = pack(node, &cell, &mut redirected, placement);
        let owner = placement.owner(cell.entry.name, &cell.key).to_string();
        peers.owed.entry(owner).or_default().push(leaving);
    }
    deliver(redirected);
    // Lambda objects move by application: its workflows here end first (new
    // ones wait), then its objects leave the store. An application whose
    // workflows do not end in time stays, served here, and the "done" says so.
    let leaving: Vec<String> = app_replication::held(node)
        .into_iter()
        .filter(|app| placement.owner(LAMBDA_HOME, app) != me)
        .collect();
    let mut kept = Vec::new();
    for app in leaving {
        if !cluster.freeze(&app, QUIESCE_FOR) {
            tracing::error!(
                app,
                "workflows did not end in {QUIESCE_FOR:?}: the application stays here"
            );
            cluster.thaw(&app);
            kept.push(app);
            continue;
        }
        let objects = node.lambdas.store.take_home(&app);
        let restored = node.lambdas.store.provisional.leaves(&app);
        let owner = placement.owner(LAMBDA_HOME, &app).to_string();
        peers.owed_apps.entry(owner).or_default().push(LeavingApp {
            app,
            objects,
            restored,
            version: node.lambdas.store.now(),
        });
    }
    cluster.keep(me, kept.clone());
    replicas_for(node, cluster, placement, peers);
    for member in placement.view().nodes.iter().filter(|n| *n != me) {
        peers.dones.insert(member.clone(), (epoch, kept.clone()));
    }
    peers.flush(node, cluster);
    count
}

/// Replication's part of a step, before this node says done: the backups of
/// heads that left go to the objects' new owners, and the objects this node
/// heads go to their replica sets in the view.
fn replicas_for(node: &NodeState, cluster: &Cluster, placement: &Placement, peers: &mut Peers) {
    let epoch = placement.view().epoch;
    for (owner, backups) in replication::orphans(cluster, placement) {
        let request = replication::handing(cluster, epoch, &backups, replies(node));
        match peers.request::<()>(node, cluster, &owner, &request) {
            Ok(()) => tracing::info!(
                owner,
                backups = backups.len(),
                "handed the backups of a crashed head to their new owner"
            ),
            Err(e) => tracing::warn!(
                owner,
                backups = backups.len(),
                "cannot hand backups to their new owner: {e}"
            ),
        }
    }
    // Only what a set does not hold yet: an unchanged set of live members
    // has every acknowledged write already.
    let fresh = cluster.settler().fresh(epoch).to_vec();
    let repair = &peers.repair;
    let heads: Vec<_> = node
        .table
        .cells()
        .into_iter()
        .filter(|cell| {
            let rf = replication::factor(cluster, cell.entry);
            rf > 1 && repair.due(placement, &fresh, cell.entry.name, &cell.key, rf)
        })
        .collect();
    let app_rf = app_replication::factor(cluster);
    let apps: Vec<String> = if app_rf > 1 {
        app_replication::held(node)
            .into_iter()
            .filter(|app| placement.owner(LAMBDA_HOME, app) == cluster.me)
            .filter(|app| repair.due(placement, &fresh, LAMBDA_HOME, app, app_rf))
            .collect()
    } else {
        Vec::new()
    };
    let (objects, sent_apps) = (heads.len(), apps.len());
    let unsynced = peers.pool.runtime().block_on(async {
        let mut unsynced: std::collections::HashSet<(String, String)> =
            replication::sync(node, cluster, &heads)
                .await
                .iter()
                .map(|cell| (cell.entry.name.to_string(), cell.key.to_string()))
                .collect();
        for app in apps {
            if !app_replication::sync(node, cluster, &app).await {
                unsynced.insert((LAMBDA_HOME.to_string(), app));
            }
        }
        unsynced
    });
    tracing::debug!(
        objects,
        apps = sent_apps,
        unsynced = unsynced.len(),
        "repair of view {epoch}"
    );
    if !unsynced.is_empty() {
        tracing::warn!(
            failed = unsynced.len(),
            "objects not sent to their replica set in view {epoch}: sent again with their next \
             write and at the next step"
        );
    }
    peers.repair = Repair {
        last: Some(Arc::new(placement.clone())),
        unsynced,
    };
}

/// Encodes a taken object and answers its parked calls with a redirect.
fn pack(
    node: &NodeState,
    cell: &Arc<ObjectCell>,
    redirected: &mut Vec<crate::shared_objects::Delivery>,
    placement: &Placement,
) -> Leaving {
    let mut state = cell.lock();
    Persist::reload(
        node.storage.as_deref(),
        &node.table.residency,
        &mut state,
        cell,
    );
    let encoded = state
        .value
        .as_ref()
        .map(|value| (cell.entry.encode_state)(&**value));
    let bytes = match encoded {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => {
            tracing::error!(key = %cell.key, "cannot encode an object to move it: {e}");
            Vec::new()
        }
        None => Vec::new(),
    };
    for call in std::mem::take(&mut state.parked) {
        let error = RemoteError::NotOwner {
            type_name: cell.entry.name.to_string(),
            key: cell.key.to_string(),
            node: node.cluster.get().map(|c| c.me.clone()).unwrap_or_default(),
            view: Box::new(placement.view().clone()),
            served_by: None,
        };
        redirected.push(call.answer(Err(error)));
    }
    Leaving {
        cell: Arc::clone(cell),
        state: bytes,
        poison: state
            .poison
            .as_ref()
            .map(|p| (p.method.clone(), p.message.clone())),
        restored: state.restored,
        version: state.version,
    }
}

/// Sends one owner its objects, in batches, the remembered replies with the
/// first; returns how many were acknowledged (a prefix of `objects`).
fn send_objects(
    node: &NodeState,
    cluster: &Cluster,
    peers: &mut Peers,
    owner: &str,
    objects: &[Leaving],
    replies: &[MovedReply],
) -> usize {
    let epoch = cluster.view().epoch;
    let mut start = 0;
    while start < objects.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < objects.len() && end - start < BATCH_OBJECTS && bytes < BATCH_BYTES {
            bytes += objects[end].state.len() + objects[end].cell.key.len();
            end += 1;
        }
        let batch = Adopt {
            from: &cluster.me,
            epoch,
            objects: objects[start..end]
                .iter()
                .map(|l| MovedObject {
                    type_name: l.cell.entry.name,
                    key: &l.cell.key,
                    state: &l.state,
                    poison: l.poison.clone(),
                    restored: l.restored,
                    version: l.version,
                })
                .collect(),
            replies: if start == 0 {
                replies.to_vec()
            } else {
                Vec::new()
            },
            lambda: Vec::new(),
        };
        if let Err(e) = peers.request::<()>(node, cluster, owner, &Request::Adopt(batch)) {
            tracing::warn!(
                owner,
                left = objects.len() - start,
                "cannot hand objects to their new owner yet (retrying): {e}"
            );
            return start;
        }
        start = end;
    }
    start
}

/// Sends an application's lambda objects to their new owner, in batches of
/// about [`BATCH_BYTES`]; returns whether all were acknowledged (a retry sends
/// them all again: installing an entry twice is harmless).
fn send_app(
    node: &NodeState,
    cluster: &Cluster,
    peers: &mut Peers,
    owner: &str,
    leaving: &LeavingApp,
) -> bool {
    let epoch = cluster.view().epoch;
    let mut batch = Vec::new();
    let mut bytes = 0;
    // The remembered replies go with the first batch, so a workflow retried
    // on the new owner is answered, not run again.
    let mut first = Some(replies(node));
    let mut send = |batch: Vec<MovedEntries>, peers: &mut Peers| {
        let adopt = Adopt {
            from: &cluster.me,
            epoch,
            objects: Vec::new(),
            replies: first.take().unwrap_or_default(),
            lambda: batch,
        };
        match peers.request::<()>(node, cluster, owner, &Request::Adopt(adopt)) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    owner,
                    "cannot hand lambda objects to their new owner yet (retrying): {e}"
                );
                false
            }
        }
    };
    for (id, entries) in &leaving.objects {
        bytes += entries
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
        batch.push(MovedEntries {
            object: id.clone(),
            entries: entries
                .iter()
                .map(|(k, v)| (k.clone().into(), v.to_vec().into()))
                .collect(),
            restored: leaving.restored,
            version: leaving.version,
        });
        if bytes >= BATCH_BYTES {
            if !send(std::mem::take(&mut batch), peers) {
                return false;
            }
            bytes = 0;
        }
    }
    batch.is_empty() || send(batch, peers)
}

/// Deletes moved lambda objects' entries from this node's disk.
fn forget_entries_on_disk(node: &NodeState, objects: &LambdaObjects, rt: &tokio::runtime::Handle) {
    let Some(storage) = &node.storage else { return };
    let deletes = objects
        .iter()
        .flat_map(|(id, entries)| entries.iter().map(move |(k, _)| (id, k.as_slice(), None)));
    let ticket = storage.save_entries(deletes, None, Vec::new()).ticket;
    if let Err(e) = rt.block_on(node.durable(ticket)) {
        tracing::warn!("moved lambda objects stay on disk: {e}");
    }
}

/// Deletes handed-off persistent objects from this node's disk.
fn forget_on_disk(node: &NodeState, objects: &[Leaving], rt: &tokio::runtime::Handle) {
    let Some(storage) = &node.storage else { return };
    for leaving in objects.iter().filter(|l| l.cell.entry.persistent) {
        let ticket = storage.delete(leaving.cell.entry.name, &leaving.cell.key);
        if let Err(e) = rt.block_on(node.durable(ticket)) {
            tracing::warn!(key = %leaving.cell.key, "a moved object stays on disk: {e}");
        }
    }
}
