//! Control requests: the handshake, creating and deleting objects, listings.

use super::route;
use super::{Plane, Session};
use crate::cluster;
use crate::quota::Quota;
use crate::shared_objects::Persist;
use crate::state::NodeState;
use crucial::RemoteError;

/// A prepared part counts as in doubt once it waited this long for its
/// decision (a decision normally comes within a round trip or two).
const IN_DOUBT_AFTER: std::time::Duration = std::time::Duration::from_millis(100);
use crucial_protocol::codec;
use crucial_protocol::wire::{
    ObjectInfo, Outcome, Request, ServerInfo, WorkflowStats, PROTOCOL_VERSION,
};

fn encode<T: serde::Serialize>(value: &T) -> Outcome {
    codec::encode(value).map_err(|e| RemoteError::Protocol {
        reason: format!("cannot encode reply: {e}"),
    })
}

/// The error of a create or delete whose write to disk failed.
fn not_durable<'a>(
    type_name: &'a str,
    key: &'a str,
    what: &'a str,
) -> impl FnOnce(String) -> RemoteError + 'a {
    move |reason| RemoteError::NotDurable {
        type_name: type_name.to_string(),
        key: key.to_string(),
        method: what.to_string(),
        reason,
    }
}

/// `Err` naming the cause while the node's store cannot write, for a request
/// that writes to it.
fn writable(node: &NodeState, persistent: bool) -> Result<(), String> {
    match (&node.storage, persistent) {
        (Some(storage), true) => storage.writable(),
        _ => Ok(()),
    }
}

/// `Hello`: checks the protocol version and names the client for dedup.
pub fn hello(
    node: &NodeState,
    session: &mut Session,
    protocol: u32,
    client_id: u64,
    token: Option<&str>,
) -> Outcome {
    if protocol != PROTOCOL_VERSION {
        return protocol_mismatch(protocol);
    }
    let port = match session.plane {
        Plane::Client => crate::auth::Port::Client,
        Plane::Peer => crate::auth::Port::Peer,
    };
    session.client_id = Some(match &node.auth {
        None => client_id,
        Some(auth) => match auth.admit(port, token) {
            Ok(identity) => {
                if session.identity.as_ref() != Some(&identity) {
                    session.connection_quota = None;
                }
                if let crate::auth::Identity::Application(application) = &identity {
                    if session.connection_quota.is_none() {
                        let held = node
                            .quotas
                            .take(application, Quota::Connections, || {
                                "a new connection was refused".into()
                            })
                            .inspect_err(|error| node.metrics.error(error))?;
                        session.connection_quota = Some(std::sync::Arc::new(held));
                    }
                }
                let scoped = crate::auth::client_id_of(&identity, client_id);
                session.identity = Some(identity);
                scoped
            }
            Err(reason) => {
                tracing::warn!(port = port.name(), "a connection was refused: {reason}");
                let error = RemoteError::Unauthenticated {
                    port: port.name().into(),
                    reason,
                };
                node.metrics.error(&error);
                return Err(error);
            }
        },
    });
    encode(&ServerInfo {
        protocol: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_string(),
        types: (node.registry.shared_types().len() + node.registry.lambda_types().len()) as u32,
        view: node.cluster.get().map(|cluster| cluster.view()),
    })
}

/// The answer to a `Hello` of another protocol version.
pub fn protocol_mismatch(protocol: u32) -> Outcome {
    Err(RemoteError::Protocol {
        reason: format!(
            "client speaks protocol {protocol}, this node speaks {PROTOCOL_VERSION}; \
             rebuild client and server from the same crucial version"
        ),
    })
}

/// Every request but `Hello`, `Call` and `Invoke`, after the handshake;
/// node-to-node ones only from the peer plane.
pub async fn control(node: &NodeState, session: &Session, request: Request<'_>) -> Outcome {
    let plane = session.plane;
    if let (
        Plane::Client,
        Request::Adopt(_) | Request::HandoffDone { .. } | Request::Replicate(_) | Request::Txn(_),
    ) = (plane, &request)
    {
        return Err(RemoteError::Protocol {
            reason: "handoffs, replication and transactions' steps are node-to-node requests: \
                     a node takes them only on its peer port (--peer-listen), from the members \
                     of its cluster, never on the port clients use"
                .into(),
        });
    }
    match request {
        Request::Create { object, state } => {
            route::owned(node, object.type_name, object.key)?;
            cluster::within_quota(node, object.type_name, object.key, "this create")?;
            cluster::within_byte_quota(node, object.type_name, object.key, state.len())?;
            let entry = node.registry.shared_type(object.type_name).ok_or_else(|| {
                RemoteError::UnknownType {
                    type_name: object.type_name.to_string(),
                    node: String::new(), // filled in by the client, which knows the address it used
                }
            })?;
            let value =
                (entry.decode_state)(state).map_err(|reason| RemoteError::BadArguments {
                    type_name: entry.name.to_string(),
                    method: "<initial state>".into(),
                    reason,
                })?;
            writable(node, entry.persistent)
                .map_err(not_durable(entry.name, object.key, "<create>"))?;
            let created = match node.cluster.get() {
                None => node.table.create(entry, object.key, value),
                Some(cluster) => {
                    // Created on purpose: not lost any more. Waits for the
                    // object if it is on its way (it then exists).
                    cluster.forgive(entry.name, object.key);
                    let mut value = Some(value);
                    let make = || value.take().unwrap_or_else(entry.create_default);
                    let (cell, made) = cluster
                        .cell(&node.table, entry, object.key, false, make)
                        .await?;
                    match made {
                        cluster::member::Made::Created => Some(cell),
                        cluster::member::Made::Found | cluster::member::Made::Arrived => None,
                        cluster::member::Made::Promoted => {
                            cluster::promoted(node, cluster, &cell).await?;
                            None
                        }
                    }
                }
            };
            if let Some(cell) = &created {
                cell.lock().counted.sized(state.len());
            }
            if let (Some(cell), Some(storage), true) = (&created, &node.storage, entry.persistent) {
                let persist = Persist {
                    storage,
                    residency: &node.table.residency,
                    reply_to: None,
                };
                if let Err(reason) = node.durable(persist.save_created(cell)).await {
                    // Not on disk: not created.
                    node.table.delete(entry.name, object.key);
                    return Err(not_durable(entry.name, object.key, "<create>")(reason));
                }
            }
            if let (Some(cell), Some(cluster)) = (&created, node.cluster.get()) {
                // Its first copy on its replicas, before the create is answered.
                cluster::replication::replicate(node, cluster, cell, None, None, None)
                    .await
                    .map_err(not_durable(entry.name, object.key, "<create>"))?;
            }
            encode(&created.is_some())
        }
        Request::Delete { object } => encode(&delete(node, object.type_name, object.key).await?),
        Request::ListObjects => {
            let mut objects = objects(node);
            // An application lists its own objects only.
            if let Some(own) = session.namespace() {
                objects.retain(|object| object.application == own);
            }
            encode(&objects)
        }
        Request::ListTypes => encode(
            &node
                .registry
                .shared_types()
                .iter()
                .map(|e| e.info())
                .chain(node.registry.lambda_types().iter().map(|e| e.info()))
                .collect::<Vec<_>>(),
        ),
        Request::Ping => encode(&()),
        Request::WorkflowStats => encode(&WorkflowStats {
            in_doubt: node
                .lambdas
                .participant
                .waiting_since(std::time::Instant::now() - IN_DOUBT_AFTER)
                .len() as u64,
            ..node.lambdas.metrics.stats()
        }),
        Request::View => encode(&node.cluster.get().map(|cluster| cluster.view())),
        // Objects are handed only to members of a cluster (a node on its own
        // has no peers, so an `Adopt` can only be forged).
        Request::Adopt(adopt) if node.cluster.get().is_some() => cluster::adopt(node, adopt).await,
        Request::Adopt(_) => Err(RemoteError::Protocol {
            reason: "a handoff to a node that is not in a cluster".into(),
        }),
        Request::HandoffDone { from, epoch, kept } => match node.cluster.get() {
            Some(cluster) => {
                cluster.done(from, epoch, kept);
                encode(&())
            }
            None => Err(RemoteError::Protocol {
                reason: "a handoff to a node that is not in a cluster".into(),
            }),
        },
        Request::Replicate(replicate) => match node.cluster.get() {
            Some(cluster) => {
                cluster::keep_copies(node, cluster, replicate)?;
                encode(&())
            }
            None => Err(RemoteError::Protocol {
                reason: "a replica's copy sent to a node that is not in a cluster".into(),
            }),
        },
        Request::Hello { .. }
        | Request::Call(_)
        | Request::Invoke(_)
        | Request::Map(_)
        | Request::Txn(_) => Err(RemoteError::Protocol {
            reason: "a Hello, a Call, an Invoke, a Map or a transaction's step is not a \
                     control request"
                .into(),
        }),
    }
}

/// Deletes an object this node owns; returns whether it existed.
pub async fn delete(node: &NodeState, type_name: &str, key: &str) -> Result<bool, RemoteError> {
    route::owned(node, type_name, key)?;
    if let Some(cluster) = node.cluster.get() {
        cluster.forgive(type_name, key);
    }
    let persistent = node
        .registry
        .shared_type(type_name)
        .is_none_or(|e| e.persistent);
    writable(node, persistent).map_err(not_durable(type_name, key, "<delete>"))?;
    let version = node
        .table
        .get(type_name, key)
        .map(|cell| cell.lock().version);
    let deleted = node.table.delete(type_name, key);
    if let (Some(cluster), Some(entry)) = (node.cluster.get(), node.registry.shared_type(type_name))
    {
        // Its replicas forget it too (and this node any backup of it): no
        // failover brings it back.
        cluster.replication.take(type_name, key);
        cluster::replication::tombstone(cluster, entry, key, version.unwrap_or(0))
            .await
            .map_err(not_durable(type_name, key, "<delete>"))?;
    }
    if let Some(storage) = &node.storage {
        if persistent {
            node.durable(storage.delete(type_name, key))
                .await
                .map_err(not_durable(type_name, key, "<delete>"))?;
        }
    }
    Ok(deleted)
}

/// Every object this node holds: shared objects, then lambda objects.
pub fn objects(node: &NodeState) -> Vec<ObjectInfo> {
    let mut objects = node.table.list(node.storage.is_some());
    // Lambda objects: their entries' bytes; always resident.
    let lambda = node.lambdas.store.list().into_iter();
    let lambda = lambda.filter(|(id, _, _)| !crate::lambda_objects::is_record(id));
    objects.extend(lambda.map(|(id, _, bytes)| ObjectInfo {
        application: id.application,
        type_name: id.type_name,
        key: id.key,
        poisoned: false,
        parked: 0,
        persistent: node.storage.is_some(),
        resident: true,
        bytes: bytes as u64,
    }));
    objects
}
