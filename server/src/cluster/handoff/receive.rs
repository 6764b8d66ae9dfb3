//! The receiver: adopts the objects another node hands off.

use super::LambdaObjects;
use crate::cluster::app_replication;
use crate::cluster::replication;
use crate::shared_objects::{Adopted, Persist, Poison};
use crate::state::NodeState;
use crate::txn::Meeting;
use crucial::RemoteError;
use crucial_protocol::codec;
use crucial_protocol::placement::LAMBDA_HOME;
use crucial_protocol::wire::{Adopt, MovedEntries, Outcome};
use std::collections::HashMap;
use std::sync::Arc;

/// `Adopt`: takes over objects another node hands off. Remembered replies go
/// in first, so a retried call never finds its object without its reply.
/// Of two copies of one object, the one restored from a disk when its node
/// started is the older (the other was started afresh while that node was
/// away): an object held here is kept unless it is such a copy and the one
/// handed over is not; likewise for an application's lambda objects.
pub async fn adopt(node: &NodeState, adopt: Adopt<'_>) -> Outcome {
    for reply in adopt.replies {
        node.dedup.adopt(reply.client, reply.request, reply.outcome);
    }
    let mut count = 0;
    let mut heads = Vec::new();
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
        let (cell, replaced) = match node.table.adopt(entry, object.key, value, object.restored) {
            Adopted::New(cell) => (cell, false),
            Adopted::Replaced(cell) => {
                tracing::warn!(
                    type_name = entry.name,
                    key = object.key,
                    from = adopt.from,
                    "replaced the copy this node restored from its disk: the object was \
                     started afresh while this node was away"
                );
                (cell, true)
            }
            Adopted::Kept => {
                tracing::warn!(
                    type_name = entry.name,
                    key = object.key,
                    from = adopt.from,
                    "kept the copy already here: the one handed over was restored from the \
                     sender's disk, and the object was started afresh while it was away"
                );
                continue;
            }
        };
        count += 1;
        {
            let mut state = cell.lock();
            if let Some((method, message)) = object.poison {
                state.poison = Some(Poison { method, message });
            }
            state.version = state.version.max(object.version);
            state.counted.sized(object.state.len());
        }
        if let Some(cluster) = node.cluster.get() {
            // This node heads it now: a backup of it here is older.
            cluster.replication.take(entry.name, object.key);
            if replication::factor(cluster, entry) > 1 {
                heads.push(Arc::clone(&cell));
            }
        }
        if let (Some(storage), true) = (&node.storage, entry.persistent) {
            let not_durable = |reason| RemoteError::NotDurable {
                type_name: entry.name.to_string(),
                key: object.key.to_string(),
                method: "<moved state>".into(),
                reason,
            };
            if replaced {
                // The old copy's snapshot and logged calls go first: none of
                // them may be replayed over the new copy at a restart.
                node.durable(storage.delete(entry.name, object.key))
                    .await
                    .map_err(not_durable)?;
            }
            let persist = Persist {
                storage,
                residency: &node.table.residency,
                reply_to: None,
            };
            node.durable(persist.save_created(&cell))
                .await
                .map_err(not_durable)?;
        }
    }
    if let (Some(cluster), false) = (node.cluster.get(), heads.is_empty()) {
        // Their replica sets get them before the handoff is acknowledged (the
        // old head's replicas may drop their backups once the view settles).
        let failed = replication::sync(node, cluster, &heads).await.len();
        if failed > 0 {
            tracing::warn!(
                failed,
                "adopted objects not sent to their replica set: they are sent again with \
                 their next write"
            );
        }
    }
    if !adopt.lambda.is_empty() {
        count += adopt_lambda(node, adopt.from, adopt.lambda).await?;
    }
    node.metrics.moved_in(count);
    if let Some(cluster) = node.cluster.get() {
        cluster.objects_arrived();
    }
    codec::encode(&()).map_err(|e| RemoteError::Protocol {
        reason: e.to_string(),
    })
}

/// Adopts lambda objects, an application at a time: an application either
/// replaces a provisional copy here whole, or is put in, or is dropped (see
/// [`Meeting`]); its entries are on disk before they are served.
async fn adopt_lambda(
    node: &NodeState,
    from: &str,
    moved: Vec<MovedEntries>,
) -> Result<usize, RemoteError> {
    let store = &node.lambdas.store;
    let mut meetings: HashMap<String, Meeting> = HashMap::new();
    let mut replaced: LambdaObjects = Vec::new();
    let mut objects: LambdaObjects = Vec::new();
    for moved in moved {
        store.observe(moved.version);
        let app = &store.home(&moved.object);
        let meeting = match meetings.get(app) {
            Some(meeting) => *meeting,
            None => {
                let held = store.holds_home(app);
                let meeting = store.provisional.meet(app, from, moved.restored, held);
                match meeting {
                    Meeting::Replace => {
                        tracing::warn!(
                            application = %app,
                            from,
                            "replaced the lambda objects this node restored from its disk: the \
                             application was started afresh while this node was away"
                        );
                        replaced.extend(store.take_home(app));
                    }
                    Meeting::Drop => tracing::warn!(
                        application = %app,
                        from,
                        "kept the lambda objects already here: the ones handed over were \
                         restored from the sender's disk, and the application was started \
                         afresh while it was away"
                    ),
                    Meeting::Take => {}
                }
                meetings.insert(app.clone(), meeting);
                meeting
            }
        };
        if meeting == Meeting::Drop {
            continue;
        }
        let entries = moved
            .entries
            .into_iter()
            .map(|(k, v)| (k.into_vec(), bytes::Bytes::from(v.into_vec())))
            .collect();
        objects.push((moved.object, entries));
    }
    if let Some(storage) = &node.storage {
        let not_durable = |reason| RemoteError::NotDurable {
            type_name: LAMBDA_HOME.into(),
            key: from.to_string(),
            method: "<moved entries>".into(),
            reason,
        };
        if !replaced.is_empty() {
            // The provisional copy's entries go first, so that none of them
            // comes back at a restart beside the new copy's.
            let deletes = replaced.iter().flat_map(|(id, entries)| {
                entries.iter().map(move |(k, _)| (id, k.as_slice(), None))
            });
            let ticket = storage.save_entries(deletes, None, Vec::new()).ticket;
            node.durable(ticket).await.map_err(not_durable)?;
        }
        let writes = objects.iter().flat_map(|(id, entries)| {
            entries
                .iter()
                .map(move |(k, v)| (id, k.as_slice(), Some(v.as_ref())))
        });
        let ticket = storage.save_entries(writes, None, Vec::new()).ticket;
        node.durable(ticket).await.map_err(not_durable)?;
    }
    let count = objects.len();
    let mut apps: Vec<String> = objects.iter().map(|(id, _)| store.home(id)).collect();
    apps.sort();
    apps.dedup();
    store.put_objects(objects);
    if let Some(cluster) = node.cluster.get() {
        for app in &apps {
            // This node is their head now: a backup of them here is older.
            cluster.replication.take_app(app);
        }
        if app_replication::factor(cluster) > 1 {
            // Their replica set gets them before the handoff is acknowledged.
            for app in &apps {
                if !app_replication::sync(node, cluster, app).await {
                    tracing::warn!(
                        application = %app,
                        "adopted lambda objects not sent to their replica set: sent again \
                         with their next write"
                    );
                }
            }
        }
    }
    Ok(count)
}
