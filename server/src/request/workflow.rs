//! A client's call of a lambda object's function, step by step: resolve the
//! function and refuse what a client may not call, deduplicate, run the
//! workflow on the workflow pool under a watchdog, wait for its writes to be
//! durable, record the reply.

use super::call::Applied;
use super::retry::replay;
use super::route;
use crate::lambda_objects::{execute, Ended, Gate, Invocation};
use crate::state::NodeState;
use crate::txn::{Committed, Failure};
use crucial::__private::registry::{FunctionEntry, LambdaTypeEntry};
use crucial::__private::store::FunctionKind;
use crucial::store::TxError;
use crucial::{ObjectId, RemoteError};
use crucial_protocol::wire::{Invoke, MapInvoke, MovedReply, Objects, Outcome};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after a workflow's time limit the watchdog answers, if the
/// workflow has not ended by itself (every host call checks the deadline, so
/// a workflow that touches storage ends within one access of it).
const WATCHDOG_GRACE: Duration = Duration::from_millis(20);

/// Applies an `Invoke` from client `client`; the reply comes later, from a
/// task of its own, so the connection keeps reading meanwhile.
pub fn invoke(node: &Arc<NodeState>, client: u64, id: u64, invoke: Invoke<'_>) -> Applied {
    start(node, client, id, invoke, None)
}

/// Applies a `Map` from client `client`: a workflow at the application's
/// home that runs the function on every selected object
/// (`lambda_objects/map.rs`).
pub fn map(node: &Arc<NodeState>, client: u64, id: u64, map: MapInvoke<'_>) -> Applied {
    start(node, client, id, map.invoke, Some(map.objects))
}

fn start(
    node: &Arc<NodeState>,
    client: u64,
    id: u64,
    invoke: Invoke<'_>,
    over: Option<Objects>,
) -> Applied {
    let start = Instant::now();
    // 1. Resolve the function, and refuse what a client may not call.
    let (ty, function) = match resolve(node, &invoke, over.is_some()) {
        Ok(resolved) => resolved,
        Err(error) => return Applied::Now(Some(Err(error))),
    };
    let object = invoke
        .key
        .map(|key| ObjectId::new(invoke.application, invoke.type_name, key));
    // The workflow runs at its object's home (a static function's: its
    // application's) and reaches the other homes' objects from there.
    let home = match &object {
        Some(id) => node.lambdas.store.home(id),
        None => invoke.application.to_string(),
    };
    // Every workflow is deduplicated: even a `&self` function may write
    // other objects through its child calls.
    let invocation = Invocation {
        type_entry: ty,
        function,
        object,
        args: invoke.args.to_vec(),
        seed: seed(client, id),
        reply_to: node.storage.is_some().then_some((client, id)),
        home: home.clone(),
        over,
    };
    let node = Arc::clone(node);
    Applied::Later(Box::pin(async move {
        // A read-only call on an object this node is a light replica of
        // runs here, checked at the object's owner; else the owner serves it.
        if let Some(outcome) = light(&node, &invocation).await {
            node.metrics
                .call(ty.name, function.id.name, start.elapsed());
            return Some(outcome);
        }
        // In a cluster a home's lambda objects live on the owner of the
        // home (or on a node that kept them when their move timed out);
        // elsewhere, a redirect, and meanwhile a move, a wait. The guard
        // keeps the home here until the workflow ends.
        let _here = match route::application(&node, &home).await {
            Ok(guard) => guard,
            Err(redirect) => return Some(Err(redirect)),
        };
        // 2. A retried call is answered from the dedup table.
        if let Some(outcome) = replay(&node, client, id).await {
            return Some(outcome);
        }
        // 3. Run the workflow; 4. no reply leaves before its writes are durable.
        let (outcome, stored) = run(&node, invocation, (client, id)).await;
        // 5. Record the outcome.
        node.metrics
            .call(ty.name, function.id.name, start.elapsed());
        node.dedup.finish(client, id, &outcome, stored);
        Some(outcome)
    }))
}

/// Runs `invocation` here as a light replica of its object's home, if it is
/// a read-only call (`&self`) and this node is one (`cluster/light.rs`):
/// its outcome, or `None` (the ordinary path then sends it to the owner).
/// Not deduplicated: it writes nothing, and a retry runs it again.
#[cfg(feature = "cluster")]
async fn light(node: &Arc<NodeState>, invocation: &Invocation) -> Option<Outcome> {
    use crate::cluster::light::{owner_if_light, serve, LightCall};
    if invocation.function.id.kind != FunctionKind::Read || invocation.over.is_some() {
        return None;
    }
    let cluster = Arc::clone(node.cluster.get()?);
    let owner = owner_if_light(&cluster, &invocation.home)?;
    let call = LightCall {
        type_entry: invocation.type_entry,
        function: invocation.function,
        object: invocation.object.clone()?,
        args: invocation.args.clone(),
        seed: invocation.seed,
        home: invocation.home.clone(),
    };
    serve(node, &cluster, call, owner).await
}

/// Without the `cluster` feature no node is a light replica.
#[cfg(not(feature = "cluster"))]
async fn light(_: &Arc<NodeState>, _: &Invocation) -> Option<Outcome> {
    None
}

/// Sends a commit's decision to the other nodes that took part and waits
/// for their acknowledgements (they are sent it again, and ask for it,
/// meanwhile); once all acknowledged, its record is deleted with the next
/// ones.
async fn deliver(node: &NodeState, decision: crate::txn::Decision) {
    let txn = decision.txn();
    match tokio::task::spawn_blocking(move || decision.deliver()).await {
        Ok(Ok(record)) => node.lambdas.participant.forget(record),
        Ok(Err(reason)) => {
            // Decided and recorded: the participants that did not answer
            // install it when it reaches them, or when they ask.
            tracing::warn!(?txn, "committed, not yet on every participant: {reason}");
        }
        Err(e) => tracing::error!(?txn, "phase two's task ended: {e}"),
    }
}

/// Runs the workflow under its watchdog and turns its end into the reply
/// (and whether that reply is on disk with the commit).
/// `asker`: the client and request id, for the reply the replicas keep.
async fn run(node: &Arc<NodeState>, invocation: Invocation, asker: (u64, u64)) -> (Outcome, bool) {
    let (ty, function) = (invocation.type_entry, invocation.function);
    let object = invocation.object.clone();
    let stored = invocation.reply_to.is_some();
    let lambdas = &node.lambdas;
    let limits = lambdas.limits(ty, function);
    let gate = Arc::new(Gate::default());
    let (done, mut task) = tokio::sync::oneshot::channel();
    lambdas.pool.submit({
        let (node, gate) = (Arc::clone(node), Arc::clone(&gate));
        move || {
            let lambdas = &node.lambdas;
            let reach = lambdas.reach.get();
            let _ = done.send(execute(&lambdas.store, reach, limits, &gate, &invocation));
        }
    });
    let watchdog = tokio::time::sleep(limits.time + WATCHDOG_GRACE);
    let ended = tokio::select! {
        ended = &mut task => ended,
        _ = watchdog => {
            if gate.give_up() {
                // The function still runs (native code cannot be preempted):
                // answer now. Its thread is counted, and replaced in the
                // pool, until it returns; the gate keeps it from ever
                // committing.
                let held = (lambdas.metrics.runaway(), lambdas.pool.replacement());
                tokio::spawn(async move {
                    let _ = task.await;
                    drop(held);
                });
                Ok(Err(Ended::Failure(Failure::Deadline { limit: limits.time })))
            } else {
                task.await // committing right now: its outcome comes at once
            }
        }
    };
    let ended =
        ended.unwrap_or_else(|_| Err(Ended::Panicked("the workflow thread stopped".into())));
    let label = || format!("{}::{}", ty.name, function.id.name);
    let object_text = || match &object {
        Some(id) => id.to_string(),
        None => format!("{}/{} (static)", ty.application, ty.name),
    };
    let key = || object.as_ref().map(|o| o.key.clone()).unwrap_or_default();
    let outcome = match ended {
        Ok(Committed {
            value,
            attempts,
            durable: ticket,
            tid,
            writes,
            decision,
            checked,
        }) => {
            lambdas.metrics.committed(attempts);
            if checked {
                lambdas.metrics.checked();
            }
            if decision.as_ref().is_some_and(|d| d.participants() > 0) {
                lambdas.metrics.spanned();
            }
            tracing::trace!(
                tid,
                attempts,
                "workflow {} on {} committed",
                label(),
                object_text()
            );
            let not_durable = |reason| {
                Err(RemoteError::NotDurable {
                    type_name: ty.name.to_string(),
                    key: key(),
                    method: function.id.name.to_string(),
                    reason,
                })
            };
            if let Some(durably) = ticket {
                if let Err(reason) = node.durable(durably.ticket).await {
                    tracing::error!(
                        "workflow {} on {} is not durable: {reason}",
                        label(),
                        object_text()
                    );
                    // What it installed must not stay visible, nor be
                    // installed by the other nodes it reached (the
                    // decision's record is taken back with it).
                    lambdas.store.restore_from_disk(&durably.written);
                    lambdas.store.replicated(tid);
                    if let Some(decision) = decision {
                        let _ = tokio::task::spawn_blocking(move || decision.revoke()).await;
                    }
                    return (not_durable(reason), false);
                }
            }
            // Its writes on its application's replicas (with its reply, for
            // a retry after a failover), and what it read too.
            let reply = MovedReply {
                client: asker.0,
                request: asker.1,
                outcome: Ok(value.clone()),
            };
            // The root's home first: its copy holds the decision's record,
            // which the other homes' kept parts ask for after a failover.
            let root = decision.as_ref().map(|d| d.root().to_string());
            let replicated = crate::cluster::replicate_workflow_from(
                node,
                &writes,
                tid,
                Some(reply),
                root.as_deref(),
            )
            .await;
            // Phase two, now that the decision's record is durable and on
            // the replicas of its home. If the replicas did not take it,
            // this node may no longer be the home's head: the participants
            // ask its owner (who has the record, or records an abort).
            if let (Some(decision), Ok(())) = (decision, &replicated) {
                let (txn, kept) = (decision.txn(), decision.kept().to_vec());
                deliver(node, decision).await;
                if !kept.is_empty() {
                    lambdas.participant.unkeep(txn, &kept);
                }
            }
            match replicated {
                Ok(()) => Ok(value),
                Err(reason) => {
                    tracing::error!(
                        "workflow {} on {} is not on its replicas: {reason}",
                        label(),
                        object_text()
                    );
                    return (not_durable(reason), false);
                }
            }
        }
        Err(ended) => {
            let error = match ended {
                Ended::BadArguments(reason) => RemoteError::BadArguments {
                    type_name: ty.name.to_string(),
                    method: function.id.name.to_string(),
                    reason,
                },
                Ended::Panicked(message) => RemoteError::Panicked {
                    type_name: ty.name.to_string(),
                    key: key(),
                    method: function.id.name.to_string(),
                    message,
                },
                Ended::Failure(Failure::Conflicts { attempts }) => {
                    lambdas.metrics.given_up(attempts);
                    RemoteError::WorkflowConflicts {
                        function: label(),
                        object: object_text(),
                        attempts,
                    }
                }
                Ended::Failure(Failure::NotDurable(reason)) => RemoteError::NotDurable {
                    type_name: ty.name.to_string(),
                    key: key(),
                    method: function.id.name.to_string(),
                    reason,
                },
                Ended::Failure(Failure::Deadline { limit }) => {
                    lambdas.metrics.timed_out();
                    RemoteError::WorkflowTimeout {
                        function: label(),
                        object: object_text(),
                        limit_ms: limit.as_millis() as u64,
                    }
                }
                Ended::Failure(Failure::Failed(error)) => match error {
                    TxError::NoObject(id) => RemoteError::NoObject {
                        object: id.to_string(),
                    },
                    TxError::Exists(id) => RemoteError::ObjectExists {
                        object: id.to_string(),
                    },
                    TxError::Limit {
                        limit,
                        value,
                        detail,
                    } => {
                        node.quotas
                            .refused(ty.application, crate::quota::Quota::LambdaObjects);
                        RemoteError::Limit {
                            limit,
                            value,
                            detail,
                        }
                    }
                    TxError::Unreadable { type_name, reason } => RemoteError::Unreadable {
                        type_name,
                        key: key(),
                        reason,
                    },
                    other => RemoteError::WorkflowFailed {
                        function: label(),
                        object: object_text(),
                        message: other.to_string(),
                    },
                },
            };
            if !matches!(error, RemoteError::WorkflowTimeout { .. }) {
                lambdas.metrics.failed();
            }
            // Nothing was committed: the error is remembered in memory only.
            return (Err(error), false);
        }
    };
    (outcome, stored)
}

/// The type and function a call names, if the node's registry has them with
/// the client's signature, for the same application, callable by a client.
fn resolve(
    node: &NodeState,
    invoke: &Invoke<'_>,
    map: bool,
) -> Result<(&'static LambdaTypeEntry, &'static FunctionEntry), RemoteError> {
    let ty =
        node.registry
            .lambda_type(invoke.type_name)
            .ok_or_else(|| RemoteError::UnknownType {
                type_name: invoke.type_name.to_string(),
                node: String::new(), // filled in by the client
            })?;
    if ty.application != invoke.application {
        return Err(RemoteError::WrongApplication {
            object: format!(
                "{}/{}/{}",
                invoke.application,
                invoke.type_name,
                invoke.key.unwrap_or_default()
            ),
            type_name: ty.name.to_string(),
            requested: invoke.application.to_string(),
            served: ty.application.to_string(),
        });
    }
    let function = ty
        .function(invoke.function)
        .ok_or_else(|| RemoteError::UnknownFunction {
            type_name: ty.name.to_string(),
            function: invoke.function.to_string(),
        })?;
    if function.id.fingerprint != invoke.fingerprint {
        return Err(RemoteError::IncompatibleMethod {
            type_name: ty.name.to_string(),
            method: function.id.name.to_string(),
            server_signature: function.signature.to_string(),
        });
    }
    if function.protected {
        return Err(RemoteError::Protected {
            type_name: ty.name.to_string(),
            function: function.id.name.to_string(),
        });
    }
    if map {
        let on_objects = matches!(function.id.kind, FunctionKind::Read | FunctionKind::Write);
        if !on_objects || invoke.key.is_some() {
            return Err(RemoteError::Protocol {
                reason: format!(
                    "`{}::{}` is {} function: a map call runs a `&self` or `&mut self` \
                     function and names no object",
                    ty.name,
                    function.id.name,
                    function.id.kind.label(),
                ),
            });
        }
    } else if (function.id.kind == FunctionKind::Static) != invoke.key.is_none() {
        return Err(RemoteError::Protocol {
            reason: format!(
                "`{}::{}` is {} function: the call must {}name an object",
                ty.name,
                function.id.name,
                function.id.kind.label(),
                if invoke.key.is_none() { "" } else { "not " }
            ),
        });
    }
    Ok((ty, function))
}

/// The workflow's random seed: the request's identity, mixed (SplitMix64's
/// finalizer), so that every execution of one request draws the same numbers.
fn seed(client: u64, request: u64) -> u64 {
    let mut z = client ^ request.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
