//! A map call on its manager (the node of its application's home): the
//! selection split by the view every node has settled — a list of keys by
//! each key's owner, a range or all objects as "the ones you serve" — one
//! instance sent to each other node (`TxnOp::Map`, run by
//! `request/txn.rs`), this node's own objects run here meanwhile, all in the
//! one transaction of the workflow. Its commit validates every read of every
//! instance, so the map is strictly serializable like any workflow; the
//! results come back in key order.

use super::call::{block_on, call_function, unix_time_ms, Invocation, Ran};
use crate::txn::{MapResults, MapReturns, MapStep, NodeId, Store, TxHost};
use crucial::__private::store::{Host, Workflow};
use crucial::store::TxError;
use crucial::ObjectId;
use crucial_protocol::codec;
use crucial_protocol::wire::Objects;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Runs map call `invocation` over `objects` in the execution `host` holds:
/// the encoded `Vec<(key, result)>`, or how the first failing call ended.
pub fn run_map(
    host: &Arc<TxHost>,
    store: &Store,
    invocation: &Invocation,
    objects: &Objects,
) -> Ran {
    match map(host, store, invocation, objects) {
        Ok(results) => {
            let pairs: Vec<(String, ByteBuf)> = results
                .into_iter()
                .map(|(key, value)| (key, ByteBuf::from(value)))
                .collect();
            Ran::Returned(codec::encode(&pairs).map_err(|e| TxError::Encode(e.to_string())))
        }
        Err(ended) => ended,
    }
}

fn map(
    host: &Arc<TxHost>,
    store: &Store,
    invocation: &Invocation,
    objects: &Objects,
) -> Result<MapResults, Ran> {
    let failed = |error: TxError| Ran::Returned(Err(error));
    let (ty, function) = (invocation.type_entry, invocation.function);
    let step = |objects: Objects, epoch: u64| MapStep {
        application: ty.application.to_string(),
        type_name: ty.name.to_string(),
        objects,
        function: function.id.name.to_string(),
        fingerprint: function.id.fingerprint,
        args: invocation.args.clone(),
        seed: invocation.seed,
        epoch,
    };
    let id = |key: &str| ObjectId::new(ty.application, ty.name, key);
    // 1. The selection, split by node in the view every node must have
    //    settled (a node that has not refuses: the map runs again).
    let (epoch, others) = host
        .spanning(|s| s.map_view())
        .map_err(failed)?
        .unwrap_or_default();
    let (mine, theirs) = split(host, objects, &others, &id).map_err(failed)?;
    // 2. The other nodes' instances first: they run while this node runs its own.
    let mut sent: Vec<MapReturns> = Vec::with_capacity(theirs.len());
    for (node, objects) in theirs {
        let step = step(objects, epoch);
        sent.push(
            host.spanning(|s| s.map_remote(&node, step))
                .map_err(failed)?,
        );
    }
    // 3. This node's objects, each call a child of the workflow.
    let here = step(mine, epoch);
    let ids: Vec<ObjectId> = match &here.objects {
        Objects::Keys(keys) => keys.iter().map(|key| id(key)).collect(),
        selection => host
            .spanning(|s| {
                s.map_objects(&here, || {
                    store.objects_of(ty.application, ty.name, selection)
                })
            })
            .map_err(failed)?,
    };
    let mut results = Vec::with_capacity(ids.len());
    for object in ids {
        let key = object.key.clone();
        let wf = Workflow::new(
            Arc::clone(host) as Arc<dyn Host>,
            Some(object),
            unix_time_ms(),
            invocation.seed,
        );
        match call_function(&wf, function, &invocation.args) {
            Ran::Returned(Ok(value)) => results.push((key, value)),
            ended => return Err(ended),
        }
    }
    // 4. Theirs.
    for returns in sent {
        results.extend(block_on(returns).map_err(|abort| failed(abort.into()))?);
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    if results.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        // Two nodes served one object: the view moved under the map.
        return Err(failed(TxError::Conflict));
    }
    Ok(results)
}

/// This node's part of the selection and each other node's: a list of keys
/// goes by each key's owner; a range, or every object, to every node (each
/// runs the objects it serves).
fn split(
    host: &TxHost,
    objects: &Objects,
    others: &[NodeId],
    id: &impl Fn(&str) -> ObjectId,
) -> Result<(Objects, BTreeMap<NodeId, Objects>), TxError> {
    let Objects::Keys(keys) = objects else {
        let theirs = others
            .iter()
            .map(|node| (node.clone(), objects.clone()))
            .collect();
        return Ok((objects.clone(), theirs));
    };
    let mut mine = Vec::new();
    let mut theirs: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
    for key in keys {
        match host.spanning(|s| s.node_of(&id(key)))? {
            None => mine.push(key.clone()),
            Some(node) => theirs.entry(node).or_default().push(key.clone()),
        }
    }
    let theirs = theirs
        .into_iter()
        .map(|(node, keys)| (node, Objects::Keys(keys)))
        .collect();
    Ok((Objects::Keys(mine), theirs))
}
