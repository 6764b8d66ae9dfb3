//! Moving objects between nodes: the sender's step through a view, and the
//! receiver's adoption.
//!
//! To step to a view, a node takes out every object it holds and does not own
//! in that view (each marked moved under its lock, so a call that already found
//! it is redirected), answers the calls parked on them with a redirect (their
//! clients re-send them, with the same ids, to the new owner, where they park
//! again: blocking methods are idempotent by their tickets), and sends the
//! objects in batches to their new owners with the node's remembered replies.
//! Once every batch is acknowledged (stored, and on disk for persistent
//! objects) it tells every member it is done with the view.

use super::local::Cluster;
use crate::objects::{deliver, ObjectCell, Persist, Poison};
use crate::request::call::durable;
use crate::state::NodeState;
use crucial::__private::codec;
use crucial::__private::peer::Peer;
use crucial::__private::placement::{Placement, LAMBDA_HOME};
use crucial::__private::wire::{Adopt, MovedObject, MovedReply, Outcome, Request};
use crucial::RemoteError;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Objects per `Adopt` request (and at most about this many bytes).
const BATCH_OBJECTS: usize = 2048;
const BATCH_BYTES: usize = 2 << 20;

/// How long a step keeps trying to reach a new owner before it keeps the
/// objects for the next view (the owner is likely gone; etcd will say so).
const REACH_FOR: Duration = Duration::from_secs(5);

/// How long a peer may take to answer one handoff request.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The handoff thread: steps through views as they come and settle.
pub(super) fn spawn(node: Weak<NodeState>, cluster: Arc<Cluster>, rt: tokio::runtime::Handle) {
    let spawned = std::thread::Builder::new()
        .name("crucial-handoff".into())
        .spawn(move || {
            let mut peers = Peers {
                open: HashMap::new(),
                rt: rt.clone(),
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
                        cluster.objects_arrived();
                        node.metrics.view_settled();
                    }
                    if step.is_none() && !settled {
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the handoff thread: {e}");
    }
}

/// Connections to the other nodes, opened on first use.
struct Peers {
    open: HashMap<String, Peer>,
    rt: tokio::runtime::Handle,
}

impl Peers {
    fn request<R: serde::de::DeserializeOwned>(
        &mut self,
        node: &NodeState,
        addr: &str,
        request: &Request<'_>,
    ) -> crucial::Result<R> {
        if self.open.get(addr).is_none_or(Peer::is_dead) {
            let peer = Peer::connect(
                addr,
                node.peer_id,
                node.config.max_frame,
                Duration::from_secs(2),
            )?;
            self.open.insert(addr.to_string(), peer);
        }
        let peer = &self.open[addr];
        let reply = self.rt.block_on(peer.request(request, ANSWER_WITHIN));
        if reply.is_err() && peer.is_dead() {
            self.open.remove(addr);
        }
        reply
    }

    /// Sends `request` until it is answered, `addr` has left the newest view,
    /// or [`REACH_FOR`] passed; returns whether it was answered.
    fn deliver(
        &mut self,
        node: &NodeState,
        cluster: &Cluster,
        addr: &str,
        request: &Request<'_>,
    ) -> bool {
        let started = Instant::now();
        loop {
            match self.request::<()>(node, addr, request) {
                Ok(()) => return true,
                Err(e) => {
                    let member = cluster.view().nodes.iter().any(|n| n == addr);
                    if !member || started.elapsed() > REACH_FOR {
                        tracing::warn!("cannot reach {addr} for a handoff: {e}");
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// One object on its way out.
struct Leaving {
    cell: Arc<ObjectCell>,
    state: Vec<u8>,
    poison: Option<(String, String)>,
}

/// Hands off everything this node holds and does not own in `placement`,
/// then says done to every member; returns how many objects moved.
fn step_to(node: &NodeState, cluster: &Cluster, placement: &Placement, peers: &mut Peers) -> usize {
    let epoch = placement.view().epoch;
    let me = cluster.me.as_str();
    let taken = node
        .table
        .take_if(|type_name, key| placement.owner(type_name, key) != me);
    let mut by_owner: BTreeMap<String, Vec<Leaving>> = BTreeMap::new();
    let mut redirected = Vec::new();
    for cell in taken {
        let leaving = pack(node, &cell, &mut redirected, placement);
        let owner = placement.owner(cell.entry.name, &cell.key).to_string();
        by_owner.entry(owner).or_default().push(leaving);
    }
    deliver(redirected);
    let replies: Vec<MovedReply> = node
        .dedup
        .snapshot()
        .into_iter()
        .map(|(client, request, outcome)| MovedReply {
            client,
            request,
            outcome,
        })
        .collect();
    let mut moved = 0;
    for (owner, objects) in by_owner {
        if send_objects(node, cluster, peers, &owner, epoch, &objects, &replies) {
            moved += objects.len();
            forget_on_disk(node, &objects, &peers.rt);
        } else {
            tracing::warn!(
                owner,
                objects = objects.len(),
                "kept objects whose new owner cannot be reached; the next view moves them"
            );
            node.table
                .put_back(objects.into_iter().map(|l| l.cell).collect());
        }
    }
    // Lambda objects do not move yet: the node keeps serving the applications
    // it holds whose owner is now another node, and says so with its "done".
    let mut kept: Vec<String> = node
        .lambdas
        .store
        .list()
        .into_iter()
        .filter(|(id, _, _)| !crate::lambda::is_record(id))
        .map(|(id, _, _)| id.application)
        .filter(|app| placement.owner(LAMBDA_HOME, app) != me)
        .collect();
    kept.sort();
    kept.dedup();
    if !kept.is_empty() {
        tracing::warn!(
            ?kept,
            "keeping lambda objects whose owner changed: they do not move between nodes yet"
        );
    }
    cluster.keep(me, kept.clone());
    let done = Request::HandoffDone {
        from: me,
        epoch,
        kept,
    };
    for member in placement.view().nodes.iter().filter(|n| *n != me) {
        peers.deliver(node, cluster, member, &done);
    }
    node.metrics.moved_out(moved);
    moved
}

/// Encodes a taken object and answers its parked calls with a redirect.
fn pack(
    node: &NodeState,
    cell: &Arc<ObjectCell>,
    redirected: &mut Vec<crate::objects::Delivery>,
    placement: &Placement,
) -> Leaving {
    let mut state = cell.lock();
    if let (None, Some(storage)) = (&state.value, &node.storage) {
        Persist {
            storage,
            residency: &node.table.residency,
            reply_to: None,
        }
        .activate(&mut state, cell);
    }
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
    }
}

/// Sends one owner its objects, in batches, the remembered replies with the
/// first; returns whether every batch was acknowledged.
fn send_objects(
    node: &NodeState,
    cluster: &Cluster,
    peers: &mut Peers,
    owner: &str,
    epoch: u64,
    objects: &[Leaving],
    replies: &[MovedReply],
) -> bool {
    let mut start = 0;
    let mut first = true;
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
                })
                .collect(),
            replies: if first { replies.to_vec() } else { Vec::new() },
        };
        if !peers.deliver(node, cluster, owner, &Request::Adopt(batch)) {
            return false;
        }
        first = false;
        start = end;
    }
    true
}

/// Deletes handed-off persistent objects from this node's disk.
fn forget_on_disk(node: &NodeState, objects: &[Leaving], rt: &tokio::runtime::Handle) {
    let Some(storage) = &node.storage else { return };
    for leaving in objects.iter().filter(|l| l.cell.entry.persistent) {
        let ticket = storage.delete(leaving.cell.entry.name, &leaving.cell.key);
        if let Err(e) = rt.block_on(durable(node, ticket)) {
            tracing::warn!(key = %leaving.cell.key, "a moved object stays on disk: {e}");
        }
    }
}

/// `Adopt`: takes over objects another node hands off. Remembered replies go
/// in first, so a retried call never finds its object without its reply.
/// An object this node already holds is kept (a copy restored from an old
/// disk is older than the one in use).
pub async fn adopt(node: &NodeState, adopt: Adopt<'_>) -> Outcome {
    for reply in adopt.replies {
        node.dedup.adopt(reply.client, reply.request, reply.outcome);
    }
    let mut count = 0;
    for object in adopt.objects {
        let entry = node.registry.shared_type(object.type_name).ok_or_else(|| {
            RemoteError::UnknownType {
                type_name: object.type_name.to_string(),
                node: String::new(),
            }
        })?;
        let value =
            (entry.decode_state)(object.state).map_err(|reason| RemoteError::BadArguments {
                type_name: entry.name.to_string(),
                method: "<moved state>".into(),
                reason,
            })?;
        let Some(cell) = node.table.create(entry, object.key, value) else {
            tracing::warn!(
                key = object.key,
                from = adopt.from,
                "kept the copy already here"
            );
            continue;
        };
        count += 1;
        if let Some((method, message)) = object.poison {
            cell.lock().poison = Some(Poison { method, message });
        }
        if let (Some(storage), true) = (&node.storage, entry.persistent) {
            let persist = Persist {
                storage,
                residency: &node.table.residency,
                reply_to: None,
            };
            durable(node, persist.save_created(&cell))
                .await
                .map_err(|reason| RemoteError::NotDurable {
                    type_name: entry.name.to_string(),
                    key: object.key.to_string(),
                    method: "<moved state>".into(),
                    reason,
                })?;
        }
    }
    node.metrics.moved_in(count);
    if let Some(cluster) = node.cluster.get() {
        cluster.objects_arrived();
    }
    codec::encode(&()).map_err(|e| RemoteError::Protocol {
        reason: e.to_string(),
    })
}
