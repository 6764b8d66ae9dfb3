//! How a node's workflows reach the lambda objects other members hold: the
//! [`Reach`] of the transaction engine over the peer plane. An object's node
//! is the owner of its home in the newest view; each step of a transaction
//! is a `Txn` request on the link to that member's peer port (the one
//! replication uses), answered by its participant (`request/txn.rs`).
//!
//! The engine's calls block (a workflow runs on a thread of the workflow
//! pool, not on the reactor): each one drives its requests on the node's
//! runtime and waits. Phase one and phase two go to every participant at
//! once.

use super::member::Cluster;
use crate::txn::{
    Abort, Access, CallError, Called, Held, MapStep, Mapping, NodeId, Part, PartCopy, Reach,
    Stance, Store, TxnId, Writes,
};
use bytes::Bytes;
use crucial::__private::store::ChildCall;
use crucial::store::TxError;
use crucial::ObjectId;
use crucial_protocol::codec;
use crucial_protocol::placement::LAMBDA_HOME;
use crucial_protocol::wire::{Request, TxnAnswer, TxnOp, TxnRefusal, TxnStep};
use serde_bytes::ByteBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a participant may take to answer a read or a vote beyond the
/// transaction's own deadline.
const GRACE: Duration = Duration::from_secs(1);

/// How long a participant may take to install a decided commit.
const INSTALL_WITHIN: Duration = Duration::from_secs(10);

/// A decision a participant did not acknowledge is sent again at once, then
/// after waits doubling up to this (its sets stay locked meanwhile)...
const REDELIVER_EVERY: Duration = Duration::from_millis(100);

/// ...for this long (then the part waits for the in-doubt resolution).
const REDELIVER_FOR: Duration = Duration::from_secs(60);

/// The members' participants, from this node.
pub struct PeerReach {
    cluster: Arc<Cluster>,
    store: Arc<Store>,
    number: u64,
    rt: tokio::runtime::Handle,
    /// Tests only: drop the first send of every Nth decision (0: none).
    drop_every: u64,
    /// Tests only: wait before sending a commit's decision.
    delay_commit: Duration,
    /// The node, to route to its own homes.
    node: std::sync::Weak<crate::state::NodeState>,
}

impl PeerReach {
    /// This node's reach (`number`: its peer id, unique in the cluster).
    pub fn new(
        node: &Arc<crate::state::NodeState>,
        cluster: Arc<Cluster>,
        number: u64,
        rt: tokio::runtime::Handle,
    ) -> PeerReach {
        let store = Arc::clone(&node.lambdas.store);
        PeerReach {
            node: Arc::downgrade(node),
            cluster,
            store,
            number,
            rt,
            drop_every: 0,
            delay_commit: Duration::ZERO,
        }
    }

    /// Tests only: the decision of one commit in four is sent `delay` after
    /// it was recorded, so that a kill meanwhile leaves participants in
    /// doubt.
    pub fn delaying_phase_two(mut self, delay: Duration) -> PeerReach {
        self.delay_commit = delay;
        self
    }

    /// Tests only: the first send of the decision of every `n`th
    /// transaction is dropped, as a lost message would be (0: none).
    pub fn dropping_phase_two_every(mut self, n: u64) -> PeerReach {
        self.drop_every = n;
        self
    }

    /// Sends decision `op` of `txn` to every node of `nodes`; those that
    /// did not acknowledge it get it again (at once, then at most every
    /// [`REDELIVER_EVERY`]), from a task of the runtime, for
    /// [`REDELIVER_FOR`] (a participant applies
    /// a decision once: a repeated one is acknowledged and changes
    /// nothing). Returns the nodes that had not acknowledged it at first.
    fn decide(&self, txn: TxnId, nodes: &[NodeId], op: TxnOp, within: Duration) -> Vec<String> {
        let dropped = self.drop_every > 0 && txn.seq % self.drop_every == 0;
        let steps = move |nodes: &[NodeId]| -> Vec<(String, TxnStep)> {
            let far = Instant::now() + within;
            nodes
                .iter()
                .map(|node| (node.clone(), Self::step(txn, far, op.clone())))
                .collect()
        };
        let answers = match dropped {
            true => vec![Err("dropped (--drop-phase-two-every)".to_string()); nodes.len()],
            false => self.ask_all(steps(nodes), within),
        };
        let missed: Vec<String> = answers
            .into_iter()
            .zip(nodes)
            .filter_map(|(answer, node)| match answer {
                Ok(TxnAnswer::Done) => None,
                Ok(other) => {
                    tracing::debug!(participant = %node, "a decision answered {other:?}");
                    Some(node.clone())
                }
                Err(_) => Some(node.clone()),
            })
            .collect();
        if missed.is_empty() {
            return missed;
        }
        let cluster = Arc::clone(&self.cluster);
        let mut waiting = missed.clone();
        self.rt.spawn(async move {
            let started = Instant::now();
            let mut wait = Duration::ZERO;
            while !waiting.is_empty() && started.elapsed() < REDELIVER_FOR {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).clamp(Duration::from_millis(1), REDELIVER_EVERY);
                let answers = ask_all(&cluster, steps(&waiting), within).await;
                waiting = answers
                    .into_iter()
                    .zip(std::mem::take(&mut waiting))
                    .filter(|(answer, _)| !matches!(answer, Ok(TxnAnswer::Done)))
                    .map(|(_, node)| node)
                    .collect();
            }
            if !waiting.is_empty() {
                tracing::error!(?txn, participants = ?waiting, "a decision was not acknowledged in {REDELIVER_FOR:?}");
            }
        });
        missed
    }

    fn step(txn: TxnId, deadline: Instant, op: TxnOp) -> TxnStep {
        let access = Access {
            txn,
            deadline,
            stance: Stance::Optimistic,
        };
        Self::reading(access, op)
    }

    fn reading(access: Access, op: TxnOp) -> TxnStep {
        TxnStep {
            manager: access.txn.manager,
            seq: access.txn.seq,
            deadline_ms: access
                .deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
            pin_reads: access.stance == Stance::PinReads,
            insist: access.stance == Stance::Insist,
            op,
        }
    }

    /// Sends each step to its member at once and waits for every answer
    /// (at most `within` each).
    fn ask_all(
        &self,
        steps: Vec<(String, TxnStep)>,
        within: Duration,
    ) -> Vec<Result<TxnAnswer, String>> {
        self.rt.block_on(ask_all(&self.cluster, steps, within))
    }

    fn ask(&self, node: &str, step: TxnStep, within: Duration) -> Result<TxnAnswer, Abort> {
        let answer = self
            .ask_all(vec![(node.to_string(), step)], within)
            .pop()
            .unwrap_or_else(|| Err("no answer".into()));
        match answer {
            Ok(TxnAnswer::Refused(refusal)) => Err(abort_of(node, refusal)),
            Ok(answer) => Ok(answer),
            Err(e) => {
                // The member is unreachable or slow: this execution cannot
                // commit; the workflow runs again (with backoff) and meets
                // the newest view.
                tracing::debug!(participant = node, "a transaction's step failed: {e}");
                Err(Abort::Conflict)
            }
        }
    }
}

/// Sends `op` (a light replica's `Fetch` or `Check`) to `owner`, the owner
/// of the objects it names, and waits (at most `within`) for the answer.
pub async fn ask_owner(
    cluster: &Cluster,
    me: u64,
    owner: &str,
    op: TxnOp,
    within: Duration,
) -> Result<TxnAnswer, String> {
    let txn = TxnId {
        manager: me,
        seq: 0,
    };
    let step = PeerReach::step(txn, Instant::now() + within, op);
    ask_all(cluster, vec![(owner.to_string(), step)], within)
        .await
        .pop()
        .unwrap_or_else(|| Err("no answer".into()))
}

/// Asks `owner`, which holds the record of `txn`'s decision in `anchor`,
/// for its outcome (a participant left in doubt; `request/txn.rs`).
pub async fn ask_outcome(
    cluster: &Cluster,
    owner: &str,
    txn: TxnId,
    anchor: ObjectId,
    within: Duration,
) -> Result<TxnAnswer, String> {
    let step = PeerReach::step(txn, Instant::now() + within, TxnOp::Resolve { anchor });
    ask_all(cluster, vec![(owner.to_string(), step)], within)
        .await
        .pop()
        .unwrap_or_else(|| Err("no answer".into()))
}

/// Sends each step to its member at once and waits for every answer (at
/// most `within` each).
async fn ask_all(
    cluster: &Cluster,
    steps: Vec<(String, TxnStep)>,
    within: Duration,
) -> Vec<Result<TxnAnswer, String>> {
    let mut started = Vec::with_capacity(steps.len());
    for (node, step) in steps {
        let link = cluster
            .replication
            .peer(&node, cluster.peer_of(&node))
            .await;
        started.push(link.and_then(|link| link.start(&Request::Txn(step))));
    }
    let mut answers = Vec::with_capacity(started.len());
    for reply in started {
        answers.push(match reply {
            Ok(reply) => reply.wait(within).await.and_then(|bytes| {
                codec::decode::<TxnAnswer>(&bytes)
                    .map_err(|e| format!("a participant's answer does not decode: {e}"))
            }),
            Err(e) => Err(e),
        });
    }
    answers
}

/// What a participant's refusal means to the manager.
fn abort_of(node: &str, refusal: TxnRefusal) -> Abort {
    match refusal {
        TxnRefusal::Conflict => Abort::Conflict,
        TxnRefusal::Deadline => Abort::Deadline,
        TxnRefusal::NotDurable(reason) => Abort::NotDurable(reason),
        TxnRefusal::Function(message) => Abort::Failed(TxError::Aborted(message)),
        TxnRefusal::NoObject(id) => Abort::Failed(TxError::NoObject(id)),
        TxnRefusal::Elsewhere => Abort::Conflict,
        TxnRefusal::Failed(reason) => {
            // Mostly an object that moved: run again in the newest view.
            tracing::debug!(participant = node, "a participant refused a step: {reason}");
            Abort::Conflict
        }
    }
}

fn within(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()) + GRACE
}

impl Reach for PeerReach {
    fn me(&self) -> NodeId {
        self.cluster.me.clone()
    }

    fn number(&self) -> u64 {
        self.number
    }

    fn home(&self, object: &ObjectId) -> String {
        self.store.home(object)
    }

    fn at_home(&self, object: &ObjectId, home: &str) -> bool {
        self.store.at_home(object, home)
    }

    fn owner(&self, home: &str) -> NodeId {
        self.cluster
            .placement()
            .owner(LAMBDA_HOME, home)
            .to_string()
    }

    fn keeps_copies(&self) -> bool {
        super::app_replication::factor(&self.cluster) >= 2
    }

    fn keep(
        &self,
        txn: TxnId,
        anchor: &ObjectId,
        proposed: u64,
        parts: Vec<(String, Writes)>,
    ) -> Result<(), Abort> {
        let Some(node) = self.node.upgrade() else {
            return Err(Abort::Conflict);
        };
        let part = PartCopy {
            txn,
            anchor: anchor.clone(),
            proposed,
            writes: parts.iter().flat_map(|(_, w)| w.iter().cloned()).collect(),
            reads: Vec::new(),
        };
        node.lambdas.participant.keep(part.clone());
        let homes: Vec<String> = parts.into_iter().map(|(home, _)| home).collect();
        let kept = self.rt.block_on(async {
            for home in &homes {
                super::app_replication::replicate_prepared(&node, &self.cluster, home, &part)
                    .await?;
            }
            Ok::<(), String>(())
        });
        kept.map_err(|reason| {
            node.lambdas.participant.unkeep(txn, &homes);
            Abort::NotDurable(reason)
        })
    }

    fn hold(&self, home: &str) -> Result<Option<Held>, Abort> {
        let Some(node) = self.node.upgrade() else {
            return Err(Abort::Conflict);
        };
        match self.rt.block_on(super::lambda_home(&node, home)) {
            Ok(guard) => Ok(guard.map(|guard| Box::new(guard) as Held)),
            Err(e) => {
                tracing::debug!(home, "a home this node serves is not here: {e}");
                Err(Abort::Conflict)
            }
        }
    }

    fn get(
        &self,
        node: &str,
        access: Access,
        object: &ObjectId,
        key: &[u8],
    ) -> Result<Option<Bytes>, Abort> {
        let op = TxnOp::Get {
            object: object.clone(),
            key: ByteBuf::from(key.to_vec()),
        };
        let step = Self::reading(access, op);
        match self.ask(node, step, within(access.deadline))? {
            TxnAnswer::Value(value) => Ok(value.map(|v| Bytes::from(v.into_vec()))),
            other => Err(unexpected(node, &other)),
        }
    }

    fn scan(
        &self,
        node: &str,
        access: Access,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, Abort> {
        let op = TxnOp::Scan {
            object: object.clone(),
            from: ByteBuf::from(from.to_vec()),
            to: to.map(|to| ByteBuf::from(to.to_vec())),
        };
        let step = Self::reading(access, op);
        match self.ask(node, step, within(access.deadline))? {
            TxnAnswer::Entries(entries) => Ok(entries
                .into_iter()
                .map(|(k, v)| (k.into_vec(), Bytes::from(v.into_vec())))
                .collect()),
            other => Err(unexpected(node, &other)),
        }
    }

    fn prepare(
        &self,
        txn: TxnId,
        deadline: Instant,
        anchor: &ObjectId,
        parts: Vec<Part>,
    ) -> Vec<Result<u64, Abort>> {
        let nodes: Vec<NodeId> = parts.iter().map(|(node, _, _)| node.clone()).collect();
        let steps = parts
            .into_iter()
            .map(|(node, writes, reached)| {
                let op = TxnOp::Prepare {
                    writes: wire_writes(writes),
                    anchor: anchor.clone(),
                    reached,
                };
                (node, Self::step(txn, deadline, op))
            })
            .collect();
        self.ask_all(steps, within(deadline))
            .into_iter()
            .zip(&nodes)
            .map(|(answer, node)| match answer {
                Ok(TxnAnswer::Vote(tid)) => Ok(tid),
                Ok(TxnAnswer::Refused(refusal)) => Err(abort_of(node, refusal)),
                Ok(other) => Err(unexpected(node, &other)),
                Err(e) => {
                    tracing::debug!(participant = %node, "no vote: {e}");
                    Err(Abort::Conflict)
                }
            })
            .collect()
    }

    fn commit(&self, txn: TxnId, nodes: &[NodeId], tid: u64) -> Result<(), String> {
        if !self.delay_commit.is_zero() && txn.seq % 4 == 0 {
            std::thread::sleep(self.delay_commit);
        }
        let missed = self.decide(txn, nodes, TxnOp::Commit { tid }, INSTALL_WITHIN);
        match missed.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "not acknowledged yet by {} (sent again until it is)",
                missed.join(", ")
            )),
        }
    }

    fn call(&self, node: &str, access: Access, call: ChildCall, writes: Writes) -> Option<Called> {
        let op = TxnOp::Call {
            object: call.object,
            function: call.function.to_string(),
            fingerprint: call.fingerprint,
            args: ByteBuf::from(call.args),
            seed: call.seed,
            writes: wire_writes(writes),
        };
        let answer = self.send(node, Self::reading(access, op), access.deadline);
        Some(Box::pin(async move {
            match answer.await {
                Ok(Ok(TxnAnswer::Returned { value, wrote })) => Ok((value.into_vec(), wrote)),
                Ok(Ok(TxnAnswer::Refused(TxnRefusal::Elsewhere))) => Err(CallError::Elsewhere),
                Ok(Ok(TxnAnswer::Refused(refusal))) => {
                    Err(CallError::Abort(abort_of("a participant", refusal)))
                }
                Ok(Ok(other)) => Err(CallError::Abort(unexpected("a participant", &other))),
                Ok(Err(e)) => {
                    tracing::debug!("a child call sent to another node failed: {e}");
                    Err(CallError::Abort(Abort::Conflict))
                }
                Err(e) => {
                    tracing::debug!("a child call's task ended: {e}");
                    Err(CallError::Abort(Abort::Conflict))
                }
            }
        }))
    }

    fn validate(
        &self,
        txn: TxnId,
        deadline: Instant,
        nodes: &[NodeId],
    ) -> Option<Vec<Result<(), Abort>>> {
        let steps = nodes
            .iter()
            .map(|node| (node.clone(), Self::step(txn, deadline, TxnOp::Validate)))
            .collect();
        let answers = self.ask_all(steps, within(deadline));
        Some(
            answers
                .into_iter()
                .zip(nodes)
                .map(|(answer, node)| match answer {
                    Ok(TxnAnswer::Done) => Ok(()),
                    Ok(TxnAnswer::Refused(refusal)) => Err(abort_of(node, refusal)),
                    Ok(other) => Err(unexpected(node, &other)),
                    Err(e) => {
                        tracing::debug!(participant = %node, "no check: {e}");
                        Err(Abort::Conflict)
                    }
                })
                .collect(),
        )
    }

    fn settled_view(&self) -> Option<(u64, Vec<NodeId>)> {
        if !self.cluster.settler().is_settled() {
            return None;
        }
        let placement = self.cluster.placement();
        let view = placement.view();
        let others = view
            .nodes
            .iter()
            .filter(|node| **node != self.cluster.me)
            .cloned()
            .collect();
        Some((view.epoch, others))
    }

    fn map_objects(&self, step: &MapStep) -> Result<Vec<ObjectId>, Abort> {
        let node = self.node.upgrade().ok_or(Abort::Conflict)?;
        self.rt
            .block_on(super::map_objects(&node, step))
            .map_err(|refusal| abort_of("this node", refusal))
    }

    fn map(&self, node: &str, access: Access, step: MapStep, writes: Writes) -> Option<Mapping> {
        let op = TxnOp::Map {
            application: step.application,
            type_name: step.type_name,
            objects: step.objects,
            function: step.function,
            fingerprint: step.fingerprint,
            args: ByteBuf::from(step.args),
            seed: step.seed,
            epoch: step.epoch,
            writes: wire_writes(writes),
        };
        let answer = self.send(node, Self::reading(access, op), access.deadline);
        Some(Box::pin(async move {
            match answer.await {
                Ok(Ok(TxnAnswer::Mapped { results, wrote })) => Ok((
                    results
                        .into_iter()
                        .map(|(key, value)| (key, value.into_vec()))
                        .collect(),
                    wrote,
                )),
                Ok(Ok(TxnAnswer::Refused(TxnRefusal::Elsewhere))) => Err(CallError::Elsewhere),
                Ok(Ok(TxnAnswer::Refused(refusal))) => {
                    Err(CallError::Abort(abort_of("a participant", refusal)))
                }
                Ok(Ok(other)) => Err(CallError::Abort(unexpected("a participant", &other))),
                Ok(Err(e)) => {
                    tracing::debug!("a map instance sent to another node failed: {e}");
                    Err(CallError::Abort(Abort::Conflict))
                }
                Err(e) => {
                    tracing::debug!("a map instance's task ended: {e}");
                    Err(CallError::Abort(Abort::Conflict))
                }
            }
        }))
    }

    fn abort(&self, txn: TxnId, nodes: &[NodeId]) {
        let missed = self.decide(txn, nodes, TxnOp::Abort, GRACE);
        if !missed.is_empty() {
            tracing::debug!(?txn, participants = ?missed, "abort sent again");
        }
    }
}

impl PeerReach {
    /// Sends `step` to `node` on the node's runtime: the task answering it.
    /// The workflow's thread waits for the answer (and can wait for several
    /// at once: joined children, and a map's instances, on several nodes
    /// run in parallel).
    fn send(
        &self,
        node: &str,
        step: TxnStep,
        deadline: Instant,
    ) -> tokio::task::JoinHandle<Result<TxnAnswer, String>> {
        let (cluster, node) = (Arc::clone(&self.cluster), node.to_string());
        self.rt.spawn(async move {
            let link = cluster
                .replication
                .peer(&node, cluster.peer_of(&node))
                .await?;
            let bytes = link
                .start(&Request::Txn(step))?
                .wait(within(deadline))
                .await?;
            codec::decode::<TxnAnswer>(&bytes)
                .map_err(|e| format!("a participant's answer does not decode: {e}"))
        })
    }
}

/// The manager's buffered writes, as a step carries them.
fn wire_writes(writes: Writes) -> Vec<(ObjectId, ByteBuf, Option<ByteBuf>)> {
    writes
        .into_iter()
        .map(|((object, key), value)| {
            (
                object,
                ByteBuf::from(key),
                value.map(|v| ByteBuf::from(v.to_vec())),
            )
        })
        .collect()
}

fn unexpected(node: &str, answer: &TxnAnswer) -> Abort {
    tracing::error!(
        participant = node,
        "unexpected answer to a transaction's step: {answer:?}"
    );
    Abort::Conflict
}
