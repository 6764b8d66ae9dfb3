//! The receiver: adopts the objects another node hands off.

use super::LambdaObjects;
use crate::shared_objects::{Persist, Poison};
use crate::state::NodeState;
use crucial::RemoteError;
use crucial_protocol::codec;
use crucial_protocol::wire::{Adopt, Outcome};

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
            node.durable(persist.save_created(&cell))
                .await
                .map_err(|reason| RemoteError::NotDurable {
                    type_name: entry.name.to_string(),
                    key: object.key.to_string(),
                    method: "<moved state>".into(),
                    reason,
                })?;
        }
    }
    if !adopt.lambda.is_empty() {
        let objects: LambdaObjects = adopt
            .lambda
            .into_iter()
            .map(|moved| {
                let entries = moved
                    .entries
                    .into_iter()
                    .map(|(k, v)| (k.into_vec(), bytes::Bytes::from(v.into_vec())))
                    .collect();
                (moved.object, entries)
            })
            .collect();
        count += objects.len();
        if let Some(storage) = &node.storage {
            let writes = objects.iter().flat_map(|(id, entries)| {
                entries
                    .iter()
                    .map(move |(k, v)| (id, k.as_slice(), Some(v.as_ref())))
            });
            let ticket = storage.save_entries(writes, None).ticket;
            node.durable(ticket)
                .await
                .map_err(|reason| RemoteError::NotDurable {
                    type_name: "<lambda objects>".into(),
                    key: adopt.from.to_string(),
                    method: "<moved entries>".into(),
                    reason,
                })?;
        }
        node.lambdas.store.put_objects(objects);
    }
    node.metrics.moved_in(count);
    if let Some(cluster) = node.cluster.get() {
        cluster.objects_arrived();
    }
    codec::encode(&()).map_err(|e| RemoteError::Protocol {
        reason: e.to_string(),
    })
}
