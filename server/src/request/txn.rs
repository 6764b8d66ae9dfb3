//! A step of a transaction another member manages, on this node (one of its
//! participants): a read, a prepare with the manager's writes, the decision.
//! Taken only on the peer port. The objects a step touches must be at home
//! here; the home's guard is then kept until the transaction's part here
//! ends, so a handoff waits for the decision instead of moving objects that
//! a prepared transaction holds.

use super::call::Applied;
use super::route;
use crate::lambda_objects::run_child;
use crate::state::NodeState;
use crate::txn::{one_key, Abort, Access, Fate, MapStep, Read, Resolution, Stance, TxnId};
use bytes::Bytes;
use crucial::__private::registry::FunctionEntry;
use crucial::__private::store::Host;
use crucial::store::TxError;
use crucial::{ObjectId, RemoteError};
use crucial_protocol::codec;
#[cfg(feature = "cluster")]
use crucial_protocol::placement::LAMBDA_HOME;
use crucial_protocol::wire::{TxnAnswer, TxnOp, TxnRefusal, TxnStep};
use serde_bytes::ByteBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Applies `step`; the answer comes from a task of its own.
pub fn step(node: &Arc<NodeState>, step: TxnStep) -> Applied {
    let node = Arc::clone(node);
    Applied::Later(Box::pin(async move {
        let answer = run(&node, step).await;
        Some(codec::encode(&answer).map_err(|e| RemoteError::Protocol {
            reason: format!("cannot encode a transaction's answer: {e}"),
        }))
    }))
}

fn refusal(abort: Abort) -> TxnRefusal {
    match abort {
        Abort::Conflict => TxnRefusal::Conflict,
        Abort::Deadline => TxnRefusal::Deadline,
        Abort::NotDurable(reason) => TxnRefusal::NotDurable(reason),
        Abort::Failed(error) => TxnRefusal::Failed(error.to_string()),
    }
}

async fn run(node: &Arc<NodeState>, step: TxnStep) -> TxnAnswer {
    node.lambdas.metrics.step();
    if node.cluster.get().is_none() {
        // The peer port serves before the node joins (handoffs may come at
        // once); a transaction's step waits until it has: its objects are
        // routed from then on.
        return TxnAnswer::Refused(TxnRefusal::Failed(
            "this node has not joined its cluster yet".into(),
        ));
    }
    let txn = TxnId {
        manager: step.manager,
        seq: step.seq,
    };
    let deadline = Instant::now() + Duration::from_millis(step.deadline_ms);
    let access = Access {
        txn,
        deadline,
        stance: match (step.pin_reads, step.insist) {
            (true, _) => Stance::PinReads,
            (false, true) => Stance::Insist,
            (false, false) => Stance::Optimistic,
        },
    };
    let participant = &node.lambdas.participant;
    let answer = match step.op {
        TxnOp::Get { object, key } => match here(node, txn, [&object]).await {
            Err(refused) => Err(refused),
            Ok(()) => participant
                .get(access, &object, &key)
                .map(|value| TxnAnswer::Value(value.map(|v| ByteBuf::from(v.to_vec()))))
                .map_err(refusal),
        },
        TxnOp::Scan { object, from, to } => match here(node, txn, [&object]).await {
            Err(refused) => Err(refused),
            Ok(()) => participant
                .scan(access, &object, &from, to.as_deref().map(|t| &t[..]))
                .map(|entries| {
                    TxnAnswer::Entries(
                        entries
                            .into_iter()
                            .map(|(k, v)| (ByteBuf::from(k), ByteBuf::from(v.to_vec())))
                            .collect(),
                    )
                })
                .map_err(refusal),
        },
        TxnOp::Prepare {
            writes,
            anchor,
            reached,
        } => {
            let objects: Vec<&ObjectId> = writes.iter().map(|(object, _, _)| object).collect();
            match here(node, txn, objects).await {
                Err(refused) => {
                    abort(node, txn).await;
                    Err(refused)
                }
                Ok(()) => {
                    let writes = writes
                        .into_iter()
                        .map(|(object, key, value)| {
                            (
                                (object, key.into_vec()),
                                value.map(|v| Bytes::from(v.into_vec())),
                            )
                        })
                        .collect();
                    match participant.prepare(txn, deadline, &anchor, writes, reached) {
                        Err(abort) => Err(refusal(abort)),
                        // The vote waits until the part is on disk and on
                        // the replicas of its homes: a restart, or one that
                        // takes a home over after a crash, restores it.
                        Ok(tid) => match crate::cluster::keep_prepared(node, txn).await {
                            Ok(()) => Ok(TxnAnswer::Vote(tid)),
                            Err(reason) => {
                                abort(node, txn).await;
                                Err(TxnRefusal::NotDurable(reason))
                            }
                        },
                    }
                }
            }
        }
        TxnOp::Call {
            object,
            function,
            fingerprint,
            args,
            seed,
            writes,
        } => {
            let call = Sent {
                object,
                function,
                fingerprint,
                args: args.into_vec(),
                seed,
            };
            child_call(node, access, call, writes).await
        }
        TxnOp::Map {
            application,
            type_name,
            objects,
            function,
            fingerprint,
            args,
            seed,
            epoch,
            writes,
        } => {
            let step = MapStep {
                application,
                type_name,
                objects,
                function,
                fingerprint,
                args: args.into_vec(),
                seed,
                epoch,
            };
            map_here(node, access, step, writes).await
        }
        TxnOp::Fetch { object, key } => fetch(node, &object, &key).await,
        TxnOp::Check { runs } => check(node, runs).await,
        TxnOp::Commit { tid } => commit(node, txn, tid).await,
        TxnOp::Validate => validate(node, txn).await,
        TxnOp::Resolve { anchor } => resolve(node, txn, &anchor).await,
        TxnOp::Abort => {
            abort(node, txn).await;
            // An aborted part's copies go at once: one left behind holds its
            // sets if it is restored (a commit's copies are outdated by its
            // writes, and go with the next ones).
            #[cfg(feature = "cluster")]
            tokio::spawn({
                let node = Arc::clone(node);
                async move { crate::cluster::settle_prepared(&node).await }
            });
            Ok(TxnAnswer::Done)
        }
    };
    answer.unwrap_or_else(TxnAnswer::Refused)
}

/// A child call another node's workflow sent here.
struct Sent {
    object: ObjectId,
    function: String,
    fingerprint: u64,
    args: Vec<u8>,
    seed: u64,
}

/// Runs a child call sent here, in the transaction's part (after the
/// manager's buffered writes for this node), on the children's pool.
async fn child_call(
    node: &Arc<NodeState>,
    access: Access,
    call: Sent,
    writes: WireWrites,
) -> Result<TxnAnswer, TxnRefusal> {
    let mut objects: Vec<&ObjectId> = writes.iter().map(|(object, _, _)| object).collect();
    objects.push(&call.object);
    if let Err(refused) = here(node, access.txn, objects).await {
        abort(node, access.txn).await;
        return Err(refused);
    }
    write_first(node, access, writes)?;
    let failed = |message: String| TxnRefusal::Function(message);
    let function = function_here(
        node,
        &call.object.application,
        &call.object.type_name,
        &call.function,
        call.fingerprint,
    )?;
    let host = PartHost::new(node, access, &call.object);
    let (done, ran) = tokio::sync::oneshot::channel();
    node.lambdas.children().submit({
        let host = Arc::clone(&host);
        move || {
            let result = run_child(host, function, call.object, &call.args, call.seed);
            let _ = done.send(result);
        }
    });
    let result = ran
        .await
        .map_err(|_| failed("the child call's thread stopped".into()))?;
    if host.elsewhere.load(Ordering::Relaxed) {
        return Err(TxnRefusal::Elsewhere);
    }
    result
        .map(|value| TxnAnswer::Returned {
            value: ByteBuf::from(value),
            wrote: node.lambdas.participant.wrote(access.txn),
        })
        .map_err(child_refusal)
}

/// Puts the manager's buffered writes for this node into the part, before
/// a step that runs functions here reads them.
fn write_first(
    node: &Arc<NodeState>,
    access: Access,
    writes: WireWrites,
) -> Result<(), TxnRefusal> {
    let writes = local_writes(writes);
    node.lambdas
        .participant
        .access_with(access.txn, access.deadline, access.stance, |t| {
            for ((object, key), value) in writes {
                match value {
                    Some(value) => t.put(&object, &key, value)?,
                    None => t.delete(&object, &key)?,
                }
            }
            Ok(())
        })
        .map_err(refusal)
}

/// The function a step names, if this node's registry has it with the
/// manager's signature.
fn function_here(
    node: &NodeState,
    application: &str,
    type_name: &str,
    function: &str,
    fingerprint: u64,
) -> Result<&'static FunctionEntry, TxnRefusal> {
    let failed = |message: String| TxnRefusal::Function(message);
    let ty = node
        .registry
        .lambda_type(type_name)
        .filter(|ty| ty.application == application)
        .ok_or_else(|| failed(format!("no lambda object type {type_name} here")))?;
    ty.function(function)
        .filter(|f| f.id.fingerprint == fingerprint)
        .ok_or_else(|| {
            failed(format!(
                "{}::{function} is not this node's function (a build of other code?)",
                ty.name
            ))
        })
}

/// Runs a map call's instance sent here: the function on every object of
/// the selection this node serves in the manager's view, each in the
/// transaction's part, on the children's pool.
async fn map_here(
    node: &Arc<NodeState>,
    access: Access,
    step: MapStep,
    writes: WireWrites,
) -> Result<TxnAnswer, TxnRefusal> {
    let function = function_here(
        node,
        &step.application,
        &step.type_name,
        &step.function,
        step.fingerprint,
    )?;
    let objects = match crate::cluster::map_objects(node, &step).await {
        Ok(objects) => objects,
        Err(refused) => {
            abort(node, access.txn).await;
            return Err(refused);
        }
    };
    let touched = objects
        .iter()
        .chain(writes.iter().map(|(object, _, _)| object));
    if let Err(refused) = here(node, access.txn, touched).await {
        abort(node, access.txn).await;
        return Err(refused);
    }
    write_first(node, access, writes)?;
    let (done, ran) = tokio::sync::oneshot::channel();
    node.lambdas.children().submit({
        let node = Arc::clone(node);
        move || {
            let mut results = Vec::with_capacity(objects.len());
            for object in objects {
                let host = PartHost::new(&node, access, &object);
                let key = object.key.clone();
                let result = run_child(
                    Arc::clone(&host) as Arc<dyn Host>,
                    function,
                    object,
                    &step.args,
                    step.seed,
                );
                if host.elsewhere.load(Ordering::Relaxed) {
                    let _ = done.send(Err(TxnRefusal::Elsewhere));
                    return;
                }
                match result {
                    Ok(value) => results.push((key, ByteBuf::from(value))),
                    Err(error) => {
                        let _ = done.send(Err(child_refusal(error)));
                        return;
                    }
                }
            }
            let wrote = node.lambdas.participant.wrote(access.txn);
            let _ = done.send(Ok(TxnAnswer::Mapped { results, wrote }));
        }
    });
    ran.await
        .map_err(|_| TxnRefusal::Function("the map's thread stopped".into()))?
}

/// How a failed child call refuses its step.
fn child_refusal(error: TxError) -> TxnRefusal {
    match error {
        TxError::Conflict => TxnRefusal::Conflict,
        TxError::Deadline => TxnRefusal::Deadline,
        TxError::NoObject(id) => TxnRefusal::NoObject(id),
        error => TxnRefusal::Function(error.to_string()),
    }
}

/// A child call's view of this node's part of the transaction: its objects'
/// entries, read and written in the part. An object at another home than
/// the call's is elsewhere (the call fails, and its manager runs it).
struct PartHost {
    node: Arc<NodeState>,
    access: Access,
    home: String,
    doom: Fate,
    elsewhere: AtomicBool,
}

impl PartHost {
    /// A call's host on `object`'s home in `access.txn`'s part.
    fn new(node: &Arc<NodeState>, access: Access, object: &ObjectId) -> Arc<PartHost> {
        Arc::new(PartHost {
            node: Arc::clone(node),
            access,
            home: node.lambdas.store.home(object),
            doom: Fate::default(),
            elsewhere: AtomicBool::new(false),
        })
    }

    fn with<T>(
        &self,
        object: &ObjectId,
        read: Option<Read>,
        f: impl FnOnce(&mut crate::txn::Transaction) -> Result<T, Abort>,
    ) -> Result<T, TxError> {
        let result = if !self.node.lambdas.store.at_home(object, &self.home) {
            self.elsewhere.store(true, Ordering::Relaxed);
            Err(TxError::Conflict)
        } else {
            let Access {
                txn,
                deadline,
                stance,
            } = self.access;
            self.node
                .lambdas
                .participant
                .access_reading(txn, deadline, stance, read, f)
                .map_err(TxError::from)
        };
        if let Err(error) = &result {
            self.doom(error.clone());
        }
        result
    }
}

impl Host for PartHost {
    fn doom(&self, error: TxError) {
        self.doom.doom(error);
    }

    fn doomed(&self) -> Option<TxError> {
        self.doom.doomed()
    }

    fn readable(&self, type_name: &str) -> Result<(), TxError> {
        match self.node.lambdas.store.unreadable(type_name) {
            Some(reason) => Err(TxError::Unreadable {
                type_name: type_name.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    fn get(&self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, TxError> {
        self.with(object, Some(one_key(object, key)), |t| t.get(object, key))
    }

    fn put(&self, object: &ObjectId, key: &[u8], value: Bytes) -> Result<(), TxError> {
        self.with(object, None, |t| t.put(object, key, value))
    }

    fn delete(&self, object: &ObjectId, key: &[u8]) -> Result<(), TxError> {
        self.with(object, None, |t| t.delete(object, key))
    }

    fn scan(
        &self,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, TxError> {
        let read = (object.clone(), from.to_vec(), to.map(<[u8]>::to_vec));
        self.with(object, Some(read), |t| t.scan(object, from, to))
    }
}

/// Writes as a step carries them.
type WireWrites = Vec<(ObjectId, ByteBuf, Option<ByteBuf>)>;

/// Writes as the engine keeps them.
fn local_writes(writes: WireWrites) -> crate::txn::Writes {
    writes
        .into_iter()
        .map(|(object, key, value)| {
            (
                (object, key.into_vec()),
                value.map(|v| Bytes::from(v.into_vec())),
            )
        })
        .collect()
}

/// Installs a decided commit here: in memory at once, then on disk and on
/// this node's replicas before the answer (the manager's reply waits for
/// every participant's).
async fn commit(node: &Arc<NodeState>, txn: TxnId, tid: u64) -> Result<TxnAnswer, TxnRefusal> {
    let installed = node
        .lambdas
        .participant
        .commit(txn, tid)
        .map_err(TxnRefusal::Failed)?;
    install(node, Some(txn), installed).await?;
    node.lambdas.participant.settle(txn);
    Ok(TxnAnswer::Done)
}

/// The end of a part of a transaction that wrote nowhere: its reads
/// checked, the part dropped; the answer waits until every commit it may
/// have read is on its replicas (as a one-node workflow's reply does).
async fn validate(node: &Arc<NodeState>, txn: TxnId) -> Result<TxnAnswer, TxnRefusal> {
    node.lambdas.participant.validate(txn).map_err(refusal)?;
    let read_below = node.lambdas.store.now() + 1;
    crate::cluster::replicate_workflow(node, &Vec::new(), read_below, None)
        .await
        .map_err(TxnRefusal::NotDurable)?;
    Ok(TxnAnswer::Done)
}

/// A light replica's read of one entry, served here, its owner: the version
/// of its set (read first) and its value, outside any transaction.
async fn fetch(
    node: &Arc<NodeState>,
    object: &ObjectId,
    key: &[u8],
) -> Result<TxnAnswer, TxnRefusal> {
    let home = node.lambdas.store.home(object);
    let _here = route::application(node, &home)
        .await
        .map_err(|redirect| TxnRefusal::Failed(redirect.to_string()))?;
    let ((_, version), value) = node.lambdas.store.object(object).read(key);
    Ok(TxnAnswer::Fetched {
        version,
        value: value.map(|v| ByteBuf::from(v.to_vec())),
    })
}

/// The end of read-only workflows a light replica ran: per workflow, the
/// entries it read that are no longer at the version read or whose set is
/// locked, with their values now (none: it holds — it is serialized at
/// this check: every read came before it, and versions only grow); the
/// answer leaves once every commit those reads may have seen is on this
/// node's replicas.
async fn check(
    node: &Arc<NodeState>,
    runs: Vec<Vec<(ObjectId, ByteBuf, u64)>>,
) -> Result<TxnAnswer, TxnRefusal> {
    let store = &node.lambdas.store;
    let mut homes: Vec<String> = runs
        .iter()
        .flatten()
        .map(|(object, _, _)| store.home(object))
        .collect();
    homes.sort();
    homes.dedup();
    let mut here = Vec::with_capacity(homes.len());
    for home in homes {
        here.push(
            route::application(node, &home)
                .await
                .map_err(|redirect| TxnRefusal::Failed(redirect.to_string()))?,
        );
    }
    let checked = runs
        .iter()
        .map(|reads| {
            let mut stale = Vec::new();
            for (object, key, version) in reads {
                let object_here = store.object(object);
                if !object_here.set_for(key).still(*version, false) {
                    let ((_, now), value) = object_here.read(key);
                    let value = value.map(|v| ByteBuf::from(v.to_vec()));
                    stale.push((object.clone(), key.clone(), now, value));
                }
            }
            stale
        })
        .collect();
    let read_below = store.now() + 1;
    crate::cluster::replicate_workflow(node, &Vec::new(), read_below, None)
        .await
        .map_err(TxnRefusal::NotDurable)?;
    drop(here);
    Ok(TxnAnswer::Checked(checked))
}

/// Aborts `txn`'s part here; a restored part's group may install the
/// parts restored with it that committed.
async fn abort(node: &Arc<NodeState>, txn: TxnId) {
    let installed = node.lambdas.participant.abort(txn);
    if let Err(refusal) = install(node, Some(txn), installed).await {
        tracing::error!(?txn, "restored parts installed on an abort: {refusal:?}");
    }
}

/// Makes what a decision installed here durable and copies it to this
/// node's replicas (also a resolver's abort record, and the deletion of
/// decision records).
pub async fn install(
    node: &Arc<NodeState>,
    txn: Option<TxnId>,
    installed: Vec<crate::txn::Installed>,
) -> Result<(), TxnRefusal> {
    let mut answer = Ok(());
    for (at, durably, writes) in installed {
        if let Some(durably) = durably {
            if let Err(reason) = node.durable(durably.ticket).await {
                // Decided, installed, not on disk: the node's store is
                // failing (it leaves the cluster if it goes on failing).
                tracing::error!(?txn, "a decided commit is not durable here: {reason}");
                node.lambdas.store.replicated(at);
                answer = Err(TxnRefusal::NotDurable(reason));
                continue;
            }
        }
        if let Err(reason) = crate::cluster::replicate_workflow(node, &writes, at, None).await {
            answer = Err(TxnRefusal::NotDurable(reason));
        }
    }
    answer
}

/// Checks that every object of `objects` is at home here (waiting for one
/// on its way), and keeps each home's guard with `txn`'s part.
async fn here<'a>(
    node: &Arc<NodeState>,
    txn: TxnId,
    objects: impl IntoIterator<Item = &'a ObjectId>,
) -> Result<(), TxnRefusal> {
    let mut homes: Vec<String> = objects
        .into_iter()
        .map(|object| node.lambdas.store.home(object))
        .collect();
    homes.sort();
    homes.dedup();
    for home in homes {
        match route::application(node, &home).await {
            Ok(Some(guard)) => node.lambdas.participant.hold(txn, Box::new(guard)),
            Ok(None) => {}
            Err(redirect) => return Err(TxnRefusal::Failed(redirect.to_string())),
        }
    }
    Ok(())
}

/// The outcome of `txn`, whose decision is recorded in `anchor` at a home
/// of this node (`txn/decision.rs`): the record's, or an abort recorded now
/// (on disk and on the home's replicas before the answer) if there is none.
/// `Refused(Conflict)`: the manager is deciding, ask again.
async fn resolve(
    node: &Arc<NodeState>,
    txn: TxnId,
    anchor: &ObjectId,
) -> Result<TxnAnswer, TxnRefusal> {
    let home = node.lambdas.store.home(anchor);
    let _here = route::application(node, &home)
        .await
        .map_err(|redirect| TxnRefusal::Failed(redirect.to_string()))?;
    match crate::txn::resolve(&node.lambdas.store, txn, anchor) {
        Resolution::Committed(tid) => Ok(TxnAnswer::Outcome(Some(tid))),
        Resolution::Aborted(None) => Ok(TxnAnswer::Outcome(None)),
        Resolution::Aborted(Some(recorded)) => {
            tracing::info!(?txn, "no decision recorded: recorded an abort");
            install(node, Some(txn), vec![recorded]).await?;
            Ok(TxnAnswer::Outcome(None))
        }
        Resolution::Undecided => Err(TxnRefusal::Conflict),
    }
}

/// How long a prepared part waits for its decision before it asks.
#[cfg(feature = "cluster")]
pub const ASK_AFTER: Duration = Duration::from_secs(2);

/// Asks for the outcome of every part prepared here that waited
/// [`ASK_AFTER`] for its decision (its manager may have crashed, or lost
/// its link to this node) and applies it; returns how many were resolved.
/// A part whose anchor's owner cannot say yet is asked for again next time.
#[cfg(feature = "cluster")]
pub async fn resolve_waiting(node: &Arc<NodeState>) -> usize {
    let Some(cluster) = node.cluster.get() else {
        return 0;
    };
    let participant = &node.lambdas.participant;
    let waiting = participant.waiting_since(Instant::now() - ASK_AFTER);
    let mut resolved = 0;
    for (txn, anchor) in waiting {
        let home = node.lambdas.store.home(&anchor);
        let owner = cluster.placement().owner(LAMBDA_HOME, &home).to_string();
        let answer = if owner == cluster.me {
            resolve(node, txn, &anchor)
                .await
                .unwrap_or_else(TxnAnswer::Refused)
        } else {
            match crate::cluster::ask_outcome(cluster, &owner, txn, anchor, ASK_AFTER).await {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::debug!(?txn, %owner, "cannot ask for an outcome yet: {e}");
                    continue;
                }
            }
        };
        match answer {
            TxnAnswer::Outcome(Some(tid)) => match commit(node, txn, tid).await {
                Ok(_) => resolved += 1,
                Err(refusal) => {
                    tracing::error!(?txn, "cannot install a resolved commit: {refusal:?}")
                }
            },
            TxnAnswer::Outcome(None) => {
                abort(node, txn).await;
                resolved += 1;
            }
            other => tracing::debug!(?txn, %owner, "outcome not known yet: {other:?}"),
        }
    }
    resolved
}
