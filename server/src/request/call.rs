//! A method call, step by step: resolve the method, deduplicate, run it on its
//! object, record the outcome.

use super::retry::replay;
use super::route;
use crate::cluster;
use crate::dedup::Begin;
use crate::shared_objects::{run_call, Delivery, ObjectCell, Park, Persist, Ran, ReplySink};
use crate::state::NodeState;
use crate::storage::Ticket;
use crucial::__private::registry::{MethodEntry, SharedTypeEntry};
use crucial::RemoteError;
use crucial_protocol::wire::{Call, Outcome};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What applying a request produced.
pub enum Applied {
    /// The reply (`None`: the call parked; its reply comes later).
    Now(Option<Outcome>),
    /// The call ran on a persistent object; its reply may leave once its
    /// write is durable ([`Durable::finish`]). The connection waits for it
    /// beside the rest of the batch, so the batch's writes share one fsync and
    /// the connection keeps reading meanwhile.
    Durable(Durable),
    /// A workflow of lambda objects: runs off the reactor and answers when it
    /// ends (`None`: no reply), in a task of its own.
    Later(Pin<Box<dyn Future<Output = Option<Outcome>> + Send>>),
}

/// A call whose reply waits for its write to be durable: on this node's
/// disk (`ticket`), on its object's replicas (`copies`), or both.
pub struct Durable {
    ticket: Option<Ticket>,
    copies: Option<Box<Copies>>,
    ran: Ran,
    cell: Arc<ObjectCell>,
    record: Record,
}

/// What a call on a replicated object waits for (boxed in [`Durable`]).
#[allow(clippy::large_enum_variant)]
enum Copies {
    /// A write: its copy sent to every replica and acknowledged.
    Write {
        replicated: cluster::Replicated,
        reply: Option<crucial_protocol::wire::MovedReply>,
        /// Its copy, sent as soon as it ran.
        sent: Option<cluster::replication::Sent>,
    },
    /// A read: the state it read (of `version`) acknowledged.
    Read {
        cluster: Arc<cluster::member::Cluster>,
        version: u64,
    },
}

impl Copies {
    async fn wait(self, node: &NodeState, cell: &ObjectCell) -> Result<(), String> {
        use cluster::replication;
        match self {
            Copies::Write {
                replicated,
                reply,
                sent,
            } => {
                let cluster = &replicated.cluster;
                let targets = replicated.targets;
                replication::replicate(node, cluster, cell, targets, reply, sent).await
            }
            Copies::Read { cluster, version } => replication::acked(&cluster, cell, version).await,
        }
    }
}

impl Durable {
    /// The request id to answer.
    pub fn id(&self) -> u64 {
        self.record.id
    }

    /// Waits for the write (on disk and on the replicas at once), then
    /// records and returns the reply. A write that failed answers
    /// `NotDurable`.
    pub async fn finish(self, node: &NodeState) -> Option<Outcome> {
        let Durable {
            ticket,
            copies,
            ran,
            cell,
            record,
        } = self;
        let (entry, method) = (record.entry, record.method);
        let stored = ticket.is_some();
        let disk = async {
            match ticket {
                Some(ticket) => node.durable(ticket).await,
                None => Ok(()),
            }
        };
        let replicas = async {
            match copies {
                Some(copies) => (*copies).wait(node, &cell).await,
                None => Ok(()),
            }
        };
        let (disk, replicas) = tokio::join!(disk, replicas);
        if let Err(reason) = replicas {
            let key = cell.key.to_string();
            tracing::error!(
                "{}::{} on `{key}` is not replicated: {reason}",
                entry.name,
                method.id.name
            );
            let ran = match ran {
                Ran::Done(_) => Ran::Done(Err(RemoteError::NotDurable {
                    type_name: entry.name.to_string(),
                    key,
                    method: method.id.name.to_string(),
                    reason: format!("not replicated: {reason}"),
                })),
                Ran::Parked => Ran::Parked,
            };
            return record.finish(node, ran, stored && disk.is_ok());
        }
        match disk {
            Ok(()) => record.finish(node, ran, stored),
            Err(reason) => {
                let key = cell.key.to_string();
                static GATE: crate::throttle::Throttle = crate::throttle::Throttle::new();
                if let Some(held) = GATE.pass() {
                    tracing::error!(
                        held,
                        "{}::{} on `{key}` is not durable: {reason}",
                        entry.name,
                        method.id.name
                    );
                }
                // What the call changed must not stay visible: the object
                // leaves memory, and its next call reads the last state that
                // reached the disk.
                node.table.residency.forget_unsaved(&cell);
                let ran = match ran {
                    Ran::Done(_) => Ran::Done(Err(RemoteError::NotDurable {
                        type_name: entry.name.to_string(),
                        key,
                        method: method.id.name.to_string(),
                        reason,
                    })),
                    Ran::Parked => Ran::Parked,
                };
                record.finish(node, ran, false)
            }
        }
    }
}

/// What recording a call's outcome needs (step 5).
struct Record {
    entry: &'static SharedTypeEntry,
    method: &'static MethodEntry,
    client: u64,
    id: u64,
    /// Deduplicated: its reply is remembered.
    dedup: bool,
    start: Instant,
}

impl Record {
    /// Counts the outcome and remembers the reply of a deduplicated call
    /// (`stored`: the reply is on disk too).
    fn finish(self, node: &NodeState, ran: Ran, stored: bool) -> Option<Outcome> {
        match ran {
            Ran::Done(Err(mut moved @ RemoteError::NotOwner { .. })) => {
                // Its object was handed off before it ran: nothing ran, so
                // nothing is remembered; the client re-sends it to the owner.
                route::redirect(node, &mut moved);
                if self.dedup {
                    node.dedup.abandon(self.client, self.id);
                }
                Some(Err(moved))
            }
            Ran::Done(outcome) => {
                node.metrics
                    .call(self.entry.name, self.method.id.name, self.start.elapsed());
                if self.dedup {
                    node.dedup.finish(self.client, self.id, &outcome, stored);
                }
                Some(outcome)
            }
            Ran::Parked => None,
        }
    }
}

/// Applies a `Call` from client `client`; see [`super::apply`].
pub async fn call(
    node: &Arc<NodeState>,
    client: u64,
    sink: &Arc<dyn ReplySink>,
    id: u64,
    call: Call<'_>,
    released: &mut Vec<Delivery>,
) -> Applied {
    let start = Instant::now();
    // 1. Resolve the type and the method, and check the client's signature.
    let (entry, method) = match resolve(node, &call) {
        Ok(resolved) => resolved,
        Err(error) => return Applied::Now(Some(Err(error))),
    };
    // In a cluster, a node that does not own the object in its view runs
    // nothing and redirects.
    if let Err(redirect) = route::owned(node, entry.name, call.object.key) {
        return Applied::Now(Some(Err(redirect)));
    }
    // 2. A retried mutating call is answered from the dedup table. Blocking
    // calls are not deduplicated: a parked call of a lost connection is dropped
    // without running, so re-sending it is safe.
    let dedup = !method.id.read_only && !method.id.blocking;
    if dedup {
        if let Some(outcome) = replay(node, client, id).await {
            return Applied::Now(Some(outcome));
        }
    }
    // 3. Run it on its object (in a cluster, waiting for it if it is on its
    // way here).
    let (cell, came) = match route::object(node, entry, call.object.key).await {
        Ok(found) => found,
        Err(error) => {
            if dedup {
                node.dedup.abandon(client, id);
            }
            return Applied::Now(Some(Err(error)));
        }
    };
    // A retry whose object came from another node after it looked may find
    // the reply of its first run here now, handed over with the object by
    // the node that ran it (a crashed head's replica, a handoff): answered,
    // not run again.
    if dedup && came {
        if let Begin::Done(outcome) = node.dedup.peek(client, id) {
            return Applied::Now(Some(outcome));
        }
    }
    let park = Park {
        sink,
        id,
        timeout: Duration::from_millis(call.timeout_ms),
        max_per_sink: node.config.max_parked_per_connection,
        max_total: node.config.max_parked,
        quotas: &node.quotas,
    };
    // A persistent object's new state is queued for the disk under its lock,
    // with the reply when the call is deduplicated (one atomic write).
    let persist = match &node.storage {
        Some(storage) if entry.persistent => Some(Persist {
            storage,
            residency: &node.table.residency,
            reply_to: dedup.then_some((client, id)),
        }),
        _ => None,
    };
    // A store that cannot write refuses the write before it changes anything.
    if let (Some(persist), false) = (&persist, method.id.read_only) {
        if let Err(reason) = persist.storage.writable() {
            if dedup {
                node.dedup.abandon(client, id);
            }
            return Applied::Now(Some(Err(RemoteError::NotDurable {
                type_name: entry.name.to_string(),
                key: call.object.key.to_string(),
                method: method.id.name.to_string(),
                reason,
            })));
        }
    }
    // A replicated object's replica set, connections open before it runs.
    let replicated = cluster::replicated(node, entry, call.object.key, !method.id.read_only).await;
    let (ran, ticket, version) = run_call(
        &cell,
        method,
        call.args,
        park,
        persist,
        &node.metrics,
        released,
    );
    // 4. No reply leaves before its effect is durable.
    let record = Record {
        entry,
        method,
        client,
        id,
        dedup,
        start,
    };
    // 5. Nor before every replica has it (a read: the state it read).
    let copies = replicated.and_then(|replicated| {
        if !method.id.read_only {
            if let Ran::Done(Err(_)) = ran {
                return None;
            }
            let reply = match (&ran, dedup) {
                (Ran::Done(outcome), true) => {
                    Some(cluster::replication::reply(client, id, outcome))
                }
                _ => None,
            };
            if replicated.cluster.weaken_ack_at_head {
                // Tests only: the copy leaves 300 ms after the reply.
                let (node, cell) = (Arc::clone(node), Arc::clone(&cell));
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let cluster = &replicated.cluster;
                    let _ =
                        cluster::replication::replicate(&node, cluster, &cell, None, reply, None)
                            .await;
                });
                return None;
            }
            let sent = replicated.targets.as_ref().map(|targets| {
                let cluster = &replicated.cluster;
                cluster::replication::send(node, cluster, &cell, targets, reply.as_ref())
            });
            return Some(Box::new(Copies::Write {
                replicated,
                reply,
                sent,
            }));
        }
        let weakened = replicated.cluster.weaken_ack_at_head;
        (version > cell.lock().acked && !weakened).then(|| {
            Box::new(Copies::Read {
                cluster: replicated.cluster,
                version,
            })
        })
    });
    if ticket.is_none() && copies.is_none() {
        return Applied::Now(record.finish(node, ran, false));
    }
    Applied::Durable(Durable {
        ticket,
        copies,
        ran,
        cell,
        record,
    })
}

/// The type and method a call names, if the node's registry has them with the
/// client's signature.
fn resolve(
    node: &NodeState,
    call: &Call<'_>,
) -> Result<(&'static SharedTypeEntry, &'static MethodEntry), RemoteError> {
    let type_name = call.object.type_name;
    let entry = node
        .registry
        .shared_type(type_name)
        .ok_or_else(|| RemoteError::UnknownType {
            type_name: type_name.to_string(),
            node: String::new(), // filled in by the client, which knows the address it used
        })?;
    let method = entry
        .method(call.method)
        .ok_or_else(|| RemoteError::UnknownMethod {
            type_name: type_name.to_string(),
            method: call.method.to_string(),
        })?;
    if method.id.fingerprint != call.fingerprint {
        return Err(RemoteError::IncompatibleMethod {
            type_name: type_name.to_string(),
            method: call.method.to_string(),
            server_signature: method.signature.to_string(),
        });
    }
    Ok((entry, method))
}
