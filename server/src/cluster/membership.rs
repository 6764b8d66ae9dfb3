//! Membership on etcd: this node's key under a lease kept alive, and the views
//! derived from etcd's changes, in etcd's order (a view's epoch is the etcd
//! revision that made it). No consensus or failure detection of our own: a
//! node is a member while its lease lives.
//!
//! Keys, under `/crucial/<cluster>/`:
//! * `members/<addr>` (leased): the members; their sorted addresses are the
//!   view; the value is a [`MemberInfo`] (its admin and peer addresses);
//! * `leaving/<addr>` (leased): written with the member key's deletion, in one
//!   transaction, by a node that drains, and deleted once its handoff is done;
//!   a member that disappears without it crashed;
//! * `lost/<epoch>-<addr>`: what a crashed node owned, so nodes that join later
//!   still answer `Lost` for it;
//! * `placed/<type name>\u{1f}<key>`: an object an operator placed on a node
//!   by hand (`crucial-admin migrate`), the node's address as the value;
//!   part of the view ([`View::placed`]), so a change is a new view and the
//!   object moves by the view-change handoff like any other;
//! * `light/<type name>\u{1f}<key>`: the light replicas an operator gave a
//!   read-mostly object (`crucial-admin light`), their addresses joined by
//!   `,`; part of the view ([`View::light`]);
//! * `settings`: what every member must agree on ([`Settings`]), written
//!   once by the first node (an etcd transaction: put if absent).
//!
//! The members' keys are read by prefix (`members/`, `leaving/`, `lost/`,
//! `placed/`, `light/`);
//! `settings` is outside those and ignored by the watch.
//!
//! If etcd cannot be reached, the node keeps serving with the view it has for
//! 90 % of its lease (then it is fenced: see `member.rs`) and makes no view
//! change until etcd answers again. If its lease expired meanwhile, the
//! others have declared it crashed: it stops (see [`lease_lost`]).

use super::etcd::{self, Etcd, EventType, Op};
use super::handoff;
use super::member::{Cluster, Placing};
use super::settle::{Departure, LostRange};
use crate::config::ClusterConfig;
use crate::state::NodeState;
use crucial_protocol::codec;
use crucial_protocol::placement::{Placement, View};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// What a member key holds: where its admin plane and its peer port are.
#[derive(Serialize, Deserialize, Default)]
struct MemberInfo {
    /// Admin-plane address (`""`: none).
    admin: String,
    /// Peer port: where other members send it node-to-node requests.
    peer: String,
    /// Different in every process: a member key put again with another
    /// incarnation is a node that crashed and restarted at the same address
    /// (before its lease expired), not the same node registering again.
    incarnation: u64,
}

impl MemberInfo {
    fn decode(value: &[u8]) -> MemberInfo {
        codec::decode(value).unwrap_or_else(|e| {
            tracing::warn!("an unreadable member record in etcd (another version?): {e}");
            MemberInfo::default()
        })
    }
}

/// The cluster's settings: every member runs with the same.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct Settings {
    /// Copies of each persistent object (`--replicas`).
    replicas: u8,
}

/// The cluster's settings: the ones in etcd, or `wanted`'s if this node is
/// the first. A node given a value that differs from the cluster's refuses
/// to join (it would place replicas where the others do not look).
async fn agree(
    client: &Etcd,
    prefix: &str,
    name: &str,
    wanted: Option<u8>,
) -> io::Result<Settings> {
    let mine = Settings {
        replicas: wanted.unwrap_or(1),
    };
    let key = format!("{prefix}settings");
    let value = codec::encode(&mine).map_err(io::Error::other)?;
    let existing = client
        .put_if_absent(key.clone(), value)
        .await
        .map_err(etcd_error("cannot read the cluster's settings"))?;
    let Some(existing) = existing else {
        return Ok(mine);
    };
    let theirs: Settings = codec::decode(&existing).map_err(|e| {
        io::Error::other(format!(
            "the cluster's settings in etcd ({key}) are unreadable ({e}): written by another \
             version of crucial?"
        ))
    })?;
    match wanted {
        Some(replicas) if replicas != theirs.replicas => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cluster `{name}` keeps {} copies of each persistent object (--replicas {}), \
                 this node was started with --replicas {replicas}: start it with --replicas {} \
                 or without the flag (the setting is the cluster's, in etcd at {key})",
                theirs.replicas, theirs.replicas, theirs.replicas
            ),
        )),
        _ => Ok(theirs),
    }
}

/// A lost range as stored in etcd.
#[derive(Serialize, Deserialize)]
struct LostRecord {
    node: String,
    epoch: u64,
    view: View,
    /// Views before it whose objects it still held (see `LostRange::earlier`).
    earlier: Vec<View>,
}

/// The membership state read from etcd.
#[derive(Default, Clone)]
struct Members {
    revision: i64,
    members: BTreeSet<String>,
    /// Each member's incarnation.
    incarnations: BTreeMap<String, u64>,
    leaving: BTreeSet<String>,
    /// Objects placed by hand, with their node.
    placed: BTreeMap<(String, String), String>,
    /// Objects with light replicas, with their nodes.
    light: BTreeMap<(String, String), Vec<String>>,
}

impl Members {
    /// The view these members make at `epoch`.
    fn view(&self, epoch: u64) -> View {
        View {
            epoch,
            nodes: self.members.iter().cloned().collect(),
            placed: self.placed.clone(),
            light: self.light.clone(),
        }
    }
}

/// Separates the type name from the key in a `placed/` key (no type name
/// holds it).
const PLACED_SEPARATOR: char = '\u{1f}';

/// The nodes a `light/` key's value lists.
fn light_nodes(value: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(value)
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// The object a `placed/` or `light/` key (after the prefix) names.
fn placed_object(rest: &str) -> Option<(String, String)> {
    let (type_name, key) = rest.split_once(PLACED_SEPARATOR)?;
    Some((type_name.to_string(), key.to_string()))
}

struct Registration {
    client: Etcd,
    prefix: String,
    me: String,
    /// This node's admin and peer addresses, the value of its member key.
    info: Vec<u8>,
    /// The lease its member key is put under (for the node's life).
    lease: i64,
    ttl: i64,
    /// The node, stopped if its lease expires.
    node: std::sync::Weak<NodeState>,
}

impl Registration {
    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}/{name}", self.prefix)
    }

    /// Puts this node's member key (its addresses and incarnation as the
    /// value) under its lease; returns the revision of the put and whether
    /// the key existed (put by an earlier process at this address).
    async fn register(&self) -> Result<(i64, bool), etcd::Error> {
        let (revision, previous) = self
            .client
            .put(self.key("members", &self.me), self.info.clone(), self.lease)
            .await?;
        Ok((revision, previous.is_some()))
    }
}

/// This node's lease expired (it was cut off from etcd, or stalled, for
/// longer than `--lease-ttl`): the others have declared it crashed, recorded
/// what it held as lost and may have started those objects afresh. Its copies
/// are stale, and rejoining in place would need everything a restart does
/// (ephemeral objects dropped, persistent ones provisional until the node
/// has settled as a new member), so it stops — fenced since 90 % of the
/// lease, it has acknowledged nothing since the others could take over — and
/// its supervisor restarts it on its data directory: the tested path of a
/// crashed node's return.
fn lease_lost(registration: &Registration, how: &str) {
    if let Some(node) = registration.node.upgrade() {
        node.fail(format!(
            "this node's etcd lease expired ({how}): the other members have declared it \
             crashed and may have started its objects afresh, so it stops instead of serving \
             stale copies; restart it (with its --data-dir, if it has one) and it rejoins as a \
             new member"
        ));
    }
}

fn etcd_error(what: &str) -> impl Fn(etcd::Error) -> io::Error + '_ {
    move |e| io::Error::other(format!("etcd: {what}: {e}"))
}

/// Joins the cluster: registers this node under a lease, reads the members,
/// and starts keeping the lease alive, watching for views and handing off.
pub async fn start(
    node: &Arc<NodeState>,
    membership: &ClusterConfig,
    advertise: String,
    admin: Option<String>,
    peer: String,
) -> io::Result<()> {
    let client = Etcd::connect(
        &membership.etcd,
        &membership.etcd_access,
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .await
    .map_err(etcd_error("cannot connect"))?;
    let prefix = format!("/crucial/{}/", membership.name);
    let settings = agree(&client, &prefix, &membership.name, membership.replicas).await?;
    let ttl = membership.lease_ttl.as_secs().max(1) as i64;
    let granting = std::time::Instant::now();
    let lease = client
        .grant(ttl)
        .await
        .map_err(etcd_error("cannot get a lease"))?;
    let registration = Arc::new(Registration {
        client,
        prefix,
        me: advertise,
        info: codec::encode(&MemberInfo {
            admin: admin.unwrap_or_default(),
            peer,
            incarnation: incarnation(),
        })
        .map_err(io::Error::other)?,
        lease,
        ttl,
        node: Arc::downgrade(node),
    });
    let (joined, restarted) = registration
        .register()
        .await
        .map_err(etcd_error("cannot register"))?;
    let mut cluster = Cluster::new(
        registration.me.clone(),
        settings.replicas,
        node.peer_id,
        node.config.max_frame,
    );
    cluster.replication.auth = node.auth.clone();
    cluster.replication.tls = node.peer_tls.as_ref().map(|t| Arc::clone(&t.links));
    cluster.weaken_ack_at_head = membership.weaken_ack_at_head;
    cluster.delay_between_homes = membership.delay_between_homes;
    if settings.replicas > 1 {
        // Lambda objects replicate with their application: a workflow waits
        // for the commits it may have read to be on the replicas.
        node.lambdas.store.replicate_commits();
        super::drop_restored_prepared(node);
    }
    if cluster.weaken_ack_at_head {
        tracing::warn!(
            "--weaken-ack-at-head: writes are acknowledged before their replicas have them \
             (a test switch: acknowledged writes can be lost)"
        );
    }
    let cluster = Arc::new(cluster);
    cluster.lease_renewed(granting, ttl);
    // The members as of this node's own put: that revision is the view the
    // others see it join in, so all agree on the epoch it is done with
    // first; changes after it come through the watch.
    let members = read(&registration, &cluster, joined).await?;
    let view = members.view(members.revision as u64);
    cluster.settler_mut().view(view.clone(), &[]);
    if restarted {
        // An earlier process at this address was still a member (it crashed
        // and this one started before its lease expired): what it held only
        // in memory is lost. The others record the same range when they see
        // the new incarnation; this node knows it before its first call.
        tracing::warn!(
            "restarted before the last process's lease expired: its ephemeral objects are lost"
        );
        let range = LostRange {
            node: registration.me.clone(),
            epoch: view.epoch,
            placement: Arc::new(Placement::new(view)),
            earlier: Vec::new(),
        };
        record_lost(&registration, &range);
        cluster.add_lost(vec![range]);
    }
    tracing::info!(
        me = %registration.me,
        epoch = members.revision,
        members = ?members.members,
        replicas = settings.replicas,
        "joined the cluster"
    );
    if node.cluster.set(Arc::clone(&cluster)).is_err() {
        return Err(io::Error::other("the node is already in a cluster"));
    }
    // Workflows reach the objects other members hold through their
    // participants; parts whose manager went quiet are dropped here.
    let reach = super::reach::PeerReach::new(
        node,
        Arc::clone(&cluster),
        node.peer_id,
        tokio::runtime::Handle::current(),
    )
    .dropping_phase_two_every(membership.drop_phase_two_every)
    .delaying_phase_two(membership.delay_phase_two);
    let _ = node.lambdas.reach.set(Arc::new(reach));
    tokio::spawn(expire_parts(Arc::downgrade(node)));
    handoff::spawn(
        Arc::downgrade(node),
        Arc::clone(&cluster),
        tokio::runtime::Handle::current(),
    );
    cluster.wake_handoff();
    tokio::spawn(keep_alive(Arc::clone(&registration), Arc::clone(&cluster)));
    tokio::spawn(watch(
        Arc::clone(&registration),
        Arc::clone(&cluster),
        members,
    ));
    if let Some(after) = membership.leave_after_store_failure {
        tokio::spawn(leave_when_the_store_fails(
            Arc::clone(&cluster),
            Arc::clone(node),
            after,
        ));
    }
    let (placing, asked) = tokio::sync::mpsc::unbounded_channel();
    let _ = cluster.placing.set(placing);
    tokio::spawn(place_when_asked(Arc::clone(&registration), asked));
    tokio::spawn(drain_when_asked(registration, cluster, Arc::clone(node)));
    Ok(())
}

/// Writes the placements an operator asks for (`crucial-admin migrate`) to
/// etcd, where every member's watch makes them part of its next view.
async fn place_when_asked(
    registration: Arc<Registration>,
    mut asked: tokio::sync::mpsc::UnboundedReceiver<Placing>,
) {
    while let Some(placing) = asked.recv().await {
        let (type_name, key) = &placing.object;
        let kind = placing.what.kind();
        let etcd_key = registration.key(kind, &format!("{type_name}{PLACED_SEPARATOR}{key}"));
        let client = &registration.client;
        let written = match placing.what.value() {
            Some(value) => client.put(etcd_key, value.into_bytes(), 0).await.map(drop),
            None => client.delete(etcd_key).await.map(drop),
        };
        tracing::info!(type_name, key, what = ?placing.what, ok = written.is_ok(), "placed by hand");
        let _ = placing
            .written
            .send(written.map_err(|e| format!("etcd: cannot write the placement: {e}")));
    }
}

/// Every second: drops the parts of transactions whose deadline passed
/// before their manager prepared them (it crashed or was cut off), asks for
/// the outcome of parts prepared long ago, and deletes decision records no
/// one will ask for again.
async fn expire_parts(node: std::sync::Weak<NodeState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else {
            return;
        };
        let participant = &node.lambdas.participant;
        let expired = participant.expire(std::time::Instant::now());
        if expired > 0 {
            tracing::info!(
                expired,
                "dropped transactions' parts whose manager went quiet"
            );
        }
        participant.release_orphans();
        let resolved = crate::request::resolve_waiting(&node).await;
        if resolved > 0 {
            node.lambdas.metrics.resolved(resolved);
            tracing::info!(
                resolved,
                "prepared parts whose decision did not come learnt it from its record"
            );
        }
        forget_decisions(&node).await;
        super::settle_prepared(&node).await;
    }
}

/// Deletes the decision records no participant will ask for again
/// (`txn/decision.rs`), in one commit (a conflict leaves them for later).
async fn forget_decisions(node: &Arc<NodeState>) {
    let lambdas = &node.lambdas;
    // A home that moved away took its records along (they stay there).
    let done: Vec<_> = lambdas
        .participant
        .forgettable()
        .into_iter()
        .filter(|(anchor, _)| lambdas.store.holds_home(&lambdas.store.home(anchor)))
        .collect();
    let Some(deleted) = crate::txn::forget(&lambdas.store, &done) else {
        for record in done {
            lambdas.participant.forget(record);
        }
        return;
    };
    if let Err(refusal) = crate::request::install(node, None, vec![deleted]).await {
        tracing::warn!("deleted decision records are not durable or copied: {refusal:?}");
    }
}

/// Leaves the cluster once this node's store has refused writes for `after`
/// and another member is there to take its objects: they are handed off
/// from memory (what failed to write was never acknowledged, and is not in
/// memory either), the other members carry on with copies whose stores
/// write, and the node stops with an error saying why. Restarted once its
/// disk is healthy, it rejoins and catches up like any joiner.
async fn leave_when_the_store_fails(cluster: Arc<Cluster>, node: Arc<NodeState>, after: Duration) {
    let Some(storage) = node.storage.clone() else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(failure) = storage.failure() else {
            continue;
        };
        if failure.since.elapsed() < after || cluster.is_draining() {
            continue;
        }
        if cluster.view().nodes.len() < 2 {
            continue; // nowhere to go: it stays, refusing writes until it heals
        }
        node.set_failure(format!(
            "this node's store has not written for {:.1?} ({}): it hands its objects to the other \
             members, leaves the cluster and stops; restart it once its disk is healthy and it \
             rejoins",
            failure.since.elapsed(),
            failure.cause
        ));
        cluster.drain().await;
        return;
    }
}

/// Reads members, leaving nodes and lost ranges as of revision `at` (0: now).
async fn read(registration: &Registration, cluster: &Cluster, at: i64) -> io::Result<Members> {
    let (now, kvs) = registration
        .client
        .get_prefix(&registration.prefix, at)
        .await
        .map_err(etcd_error("cannot read the members"))?;
    let mut members = Members {
        revision: if at > 0 { at } else { now },
        ..Members::default()
    };
    for kv in &kvs {
        let key = String::from_utf8_lossy(&kv.key);
        let Some(rest) = key.strip_prefix(&registration.prefix) else {
            continue;
        };
        if let Some(addr) = rest.strip_prefix("members/") {
            members.members.insert(addr.to_string());
            let info = MemberInfo::decode(&kv.value);
            cluster.set_member(addr, &info.admin, &info.peer);
            members
                .incarnations
                .insert(addr.to_string(), info.incarnation);
        } else if let Some(addr) = rest.strip_prefix("leaving/") {
            members.leaving.insert(addr.to_string());
        } else if rest.starts_with("lost/") {
            add_lost_record(cluster, &kv.value);
        } else if let Some(object) = rest.strip_prefix("placed/").and_then(placed_object) {
            let node = String::from_utf8_lossy(&kv.value).into_owned();
            members.placed.insert(object, node);
        } else if let Some(object) = rest.strip_prefix("light/").and_then(placed_object) {
            members.light.insert(object, light_nodes(&kv.value));
        }
    }
    Ok(members)
}

fn add_lost_record(cluster: &Cluster, value: &[u8]) {
    match codec::decode::<LostRecord>(value) {
        Ok(record) => cluster.add_lost(vec![LostRange {
            node: record.node,
            epoch: record.epoch,
            placement: Arc::new(Placement::new(record.view)),
            earlier: record
                .earlier
                .into_iter()
                .map(|view| Arc::new(Placement::new(view)))
                .collect(),
        }]),
        Err(e) => tracing::warn!("an unreadable lost range in etcd: {e}"),
    }
}

/// Keeps the lease alive; while etcd is unreachable, keeps trying. A lease
/// that expired meanwhile (etcd already removed this node) stops the node.
async fn keep_alive(registration: Arc<Registration>, cluster: Arc<Cluster>) {
    let period = Duration::from_millis((registration.ttl as u64 * 1000 / 3).max(200));
    loop {
        // Taken before the renewal is sent: the lease holds at least TTL
        // from a moment after it.
        let mut sent = std::time::Instant::now();
        match registration.client.keep_alive(registration.lease).await {
            Ok(mut keeper) => loop {
                match keeper.renew(period * 2).await {
                    Ok(Some(ttl)) if ttl > 0 => cluster.lease_renewed(sent, ttl),
                    Ok(Some(_)) => {
                        lease_lost(&registration, "etcd answered a renewal with TTL 0");
                        return;
                    }
                    Ok(None) | Err(_) => break,
                }
                tokio::time::sleep(period).await;
                sent = std::time::Instant::now();
            },
            Err(e) => tracing::warn!("etcd unreachable, serving the last view: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Follows etcd's changes from the state read at start, one revision at a
/// time; on a broken watch, watches again from the next revision (or reads
/// everything again if etcd compacted it away).
async fn watch(registration: Arc<Registration>, cluster: Arc<Cluster>, mut members: Members) {
    loop {
        if let Err(e) = follow(&registration, &cluster, &mut members).await {
            tracing::warn!("etcd watch broke, serving the last view: {e}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn follow(
    registration: &Registration,
    cluster: &Cluster,
    members: &mut Members,
) -> Result<(), String> {
    let mut stream = registration
        .client
        .watch_prefix(&registration.prefix, members.revision + 1)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let reply = stream.next().await.map_err(|e| e.to_string())?;
        if reply.compact_revision > 0 {
            // Changes were compacted away: start from what etcd holds now.
            let now = read(registration, cluster, 0)
                .await
                .map_err(|e| e.to_string())?;
            apply(registration, cluster, members, now);
            return Ok(());
        }
        if reply.canceled {
            return Err(format!("etcd canceled the watch: {}", reply.cancel_reason));
        }
        // Events come in revision order; apply each revision's as one change.
        let events = &reply.events;
        let mod_revision = |at: usize| events[at].kv.as_ref().map_or(0, |kv| kv.mod_revision);
        let mut at = 0;
        while at < events.len() {
            let revision = mod_revision(at);
            let mut next = members.clone();
            next.revision = revision;
            while at < events.len() && mod_revision(at) == revision {
                let event = &events[at];
                at += 1;
                let Some(kv) = &event.kv else { continue };
                let key = String::from_utf8_lossy(&kv.key);
                let Some(rest) = key.strip_prefix(&registration.prefix) else {
                    continue;
                };
                let put = event.r#type() == EventType::Put;
                if let Some(addr) = rest.strip_prefix("members/") {
                    if put {
                        next.members.insert(addr.to_string());
                        let info = MemberInfo::decode(&kv.value);
                        cluster.set_member(addr, &info.admin, &info.peer);
                        next.incarnations.insert(addr.to_string(), info.incarnation);
                    } else {
                        next.members.remove(addr);
                        next.incarnations.remove(addr);
                    }
                } else if let Some(addr) = rest.strip_prefix("leaving/") {
                    if put {
                        next.leaving.insert(addr.to_string());
                    } else {
                        next.leaving.remove(addr);
                    }
                } else if rest.starts_with("lost/") && put {
                    add_lost_record(cluster, &kv.value);
                } else if let Some(object) = rest.strip_prefix("placed/").and_then(placed_object) {
                    if put {
                        let node = String::from_utf8_lossy(&kv.value).into_owned();
                        next.placed.insert(object, node);
                    } else {
                        next.placed.remove(&object);
                    }
                } else if let Some(object) = rest.strip_prefix("light/").and_then(placed_object) {
                    if put {
                        next.light.insert(object, light_nodes(&kv.value));
                    } else {
                        next.light.remove(&object);
                    }
                }
            }
            apply(registration, cluster, members, next);
        }
    }
}

/// Moves from `members` to `next`: a new view if the members changed, and
/// the end of drains whose leaving key went away.
fn apply(registration: &Registration, cluster: &Cluster, members: &mut Members, next: Members) {
    let epoch = next.revision as u64;
    let me = &registration.me;
    if members.members.contains(me) && !next.members.contains(me) && !next.leaving.contains(me) {
        // Removed without a drain: the lease expired. Step to nothing (a
        // handoff now would hand stale copies to the others).
        lease_lost(registration, "its member key was removed");
        *members = next;
        return;
    }
    let mut lost = Vec::new();
    // A member back under another incarnation crashed and restarted at the
    // same address: its old self left (a crash), a new node joined.
    let restarted: Vec<String> = members
        .members
        .intersection(&next.members)
        .filter(|addr| members.incarnations.get(*addr) != next.incarnations.get(*addr))
        .cloned()
        .collect();
    if next.members != members.members
        || next.placed != members.placed
        || next.light != members.light
        || !restarted.is_empty()
    {
        let departed: Vec<(String, Departure)> = members
            .members
            .difference(&next.members)
            .map(|addr| {
                let how = if next.leaving.contains(addr) {
                    Departure::Draining
                } else {
                    Departure::Crashed
                };
                (addr.clone(), how)
            })
            .chain(restarted.into_iter().map(|addr| (addr, Departure::Crashed)))
            .collect();
        let view = next.view(epoch);
        tracing::info!(
            epoch,
            nodes = ?view.nodes,
            placed = view.placed.len(),
            light = view.light.len(),
            departed = ?departed,
            "new view"
        );
        lost.extend(cluster.settler_mut().view(view, &departed));
    }
    for gone in members.leaving.difference(&next.leaving) {
        lost.extend(cluster.settler_mut().gone(gone, epoch));
    }
    *members = next;
    // Cached entries of homes this node no longer serves as a light replica.
    let placement = cluster.placement();
    cluster
        .light
        .retain(|home| placement.is_light(crucial_protocol::placement::LAMBDA_HOME, home, me));
    for range in &lost {
        record_lost(registration, range);
    }
    cluster.add_lost(lost);
    cluster.wake_handoff();
    cluster.objects_arrived();
}

/// Writes a lost range to etcd for nodes that join later (every node that
/// saw the crash writes the same record).
fn record_lost(registration: &Registration, range: &LostRange) {
    let record = LostRecord {
        node: range.node.clone(),
        epoch: range.epoch,
        view: range.placement.view().clone(),
        earlier: range.earlier.iter().map(|p| p.view().clone()).collect(),
    };
    let Ok(value) = codec::encode(&record) else {
        return;
    };
    let key = registration.key("lost", &format!("{:020}-{}", range.epoch, range.node));
    let client = registration.client.clone();
    tokio::spawn(async move {
        if let Err(e) = client.put(key, value, 0).await {
            tracing::warn!("cannot record a lost range in etcd: {e}");
        }
    });
}

/// Drains when asked: leaves the view (marked as leaving, in one etcd
/// transaction), waits until the handoff of the view without this node is
/// done, removes the mark and the lease, and stops the node.
async fn drain_when_asked(
    registration: Arc<Registration>,
    cluster: Arc<Cluster>,
    node: Arc<NodeState>,
) {
    cluster.drain_requested().await;
    let client = &registration.client;
    let leave = || {
        vec![
            Op::Delete {
                key: registration.key("members", &registration.me),
            },
            Op::Put {
                key: registration.key("leaving", &registration.me),
                value: registration.me.clone().into_bytes(),
                lease: registration.lease,
            },
        ]
    };
    let epoch = loop {
        match client.txn(leave()).await {
            Ok(revision) => break revision as u64,
            Err(e) => {
                tracing::warn!("cannot leave the view yet (etcd): {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    tracing::info!(epoch, "draining: left the view");
    while !cluster.has_stepped(epoch) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = client
        .delete(registration.key("leaving", &registration.me))
        .await;
    let _ = client.revoke(registration.lease).await;
    tracing::info!(epoch, "drained: every object handed off");
    cluster.set_drained();
    node.stop();
}

/// This process's incarnation: its start time and process id.
fn incarnation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 48)
}
