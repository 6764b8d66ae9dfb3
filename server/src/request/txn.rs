//! A step of a transaction another member manages, on this node (one of its
//! participants): a read, a prepare with the manager's writes, the decision.
//! Taken only on the peer port. The objects a step touches must be at home
//! here; the home's guard is then kept until the transaction's part here
//! ends, so a handoff waits for the decision instead of moving objects that
//! a prepared transaction holds.

use super::call::Applied;
use super::route;
use crate::state::NodeState;
use crate::txn::{Abort, Access, TxnId};
use bytes::Bytes;
use crucial::{ObjectId, RemoteError};
use crucial_protocol::codec;
use crucial_protocol::wire::{TxnAnswer, TxnOp, TxnRefusal, TxnStep};
use serde_bytes::ByteBuf;
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
    let txn = TxnId {
        manager: step.manager,
        seq: step.seq,
    };
    let deadline = Instant::now() + Duration::from_millis(step.deadline_ms);
    let access = Access {
        txn,
        deadline,
        pin_reads: step.pin_reads,
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
        TxnOp::Prepare { writes } => {
            let objects: Vec<&ObjectId> = writes.iter().map(|(object, _, _)| object).collect();
            match here(node, txn, objects).await {
                Err(refused) => {
                    participant.abort(txn);
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
                    participant
                        .prepare(txn, deadline, writes)
                        .map(TxnAnswer::Vote)
                        .map_err(refusal)
                }
            }
        }
        TxnOp::Commit { tid } => commit(node, txn, tid).await,
        TxnOp::Abort => {
            participant.abort(txn);
            Ok(TxnAnswer::Done)
        }
    };
    answer.unwrap_or_else(TxnAnswer::Refused)
}

/// Installs a decided commit here: in memory at once, then on disk and on
/// this node's replicas before the answer (the manager's reply waits for
/// every participant's).
async fn commit(node: &Arc<NodeState>, txn: TxnId, tid: u64) -> Result<TxnAnswer, TxnRefusal> {
    let lambdas = &node.lambdas;
    let (durably, writes) = lambdas
        .participant
        .commit(txn, tid)
        .map_err(TxnRefusal::Failed)?;
    if let Some(durably) = durably {
        if let Err(reason) = node.durable(durably.ticket).await {
            // Decided, installed, not on disk: the node's store is failing
            // (it leaves the cluster if it goes on failing).
            tracing::error!(?txn, "a decided commit is not durable here: {reason}");
            lambdas.store.replicated(tid);
            return Err(TxnRefusal::NotDurable(reason));
        }
    }
    crate::cluster::replicate_workflow(node, &writes, tid, None)
        .await
        .map_err(TxnRefusal::NotDurable)?;
    Ok(TxnAnswer::Done)
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
