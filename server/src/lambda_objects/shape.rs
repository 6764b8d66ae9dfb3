//! The stored shape of each lambda object type: the fields (`name: Type`, in
//! order) its entries were written with, kept as a record of the node's own
//! in the data directory. At start a node compares every registered type with
//! its record: the same fields, or the same with fields added at the end, is
//! served (and the record updated); anything else — a field removed, renamed,
//! reordered or given another type — makes the type unreadable, and every
//! call on its objects (from clients or from other functions) gets
//! `Unreadable` instead of entries decoded as the wrong type.

use crate::storage::Storage;
use crate::txn::Store;
use bytes::Bytes;
use crucial::__private::registry::LambdaTypeEntry;
use crucial::ObjectId;
use crucial_protocol::codec;
use std::sync::Arc;

/// The application and type of the node's shape records.
const RECORD_APPLICATION: &str = "crucial";
const RECORD_TYPE: &str = "__shape";

/// The record of `ty`'s shape.
fn record_id(ty: &LambdaTypeEntry) -> ObjectId {
    ObjectId::new(
        RECORD_APPLICATION,
        RECORD_TYPE,
        format!("{}/{}", ty.application, ty.name),
    )
}

/// Whether `id` is one of the node's shape records (left out of listings).
pub fn is_record(id: &ObjectId) -> bool {
    id.application == RECORD_APPLICATION && id.type_name == RECORD_TYPE
}

/// Compares every type with its stored shape; marks the unreadable ones in
/// `store` and records the shapes of the others.
pub fn check(store: &Arc<Store>, storage: &Storage, types: &[&'static LambdaTypeEntry]) {
    for ty in types {
        let id = record_id(ty);
        let current: Vec<String> = ty.shape.iter().map(|f| f.to_string()).collect();
        let stored: Option<Vec<String>> = match store.peek(&id, b"") {
            None => None,
            Some(bytes) => match codec::decode(&bytes) {
                Ok(stored) => Some(stored),
                Err(e) => {
                    let reason = format!("its shape record is damaged ({e})");
                    storage.report_unreadable(ty.name, "*", &reason);
                    store.mark_unreadable(ty.name, reason);
                    continue;
                }
            },
        };
        match stored {
            Some(stored) if stored == current => {}
            Some(stored) if current.starts_with(&stored) => write(store, storage, &id, &current),
            Some(stored) => {
                let reason = format!(
                    "its objects were written with fields ({}), this build's {} has ({}); only \
                     fields added at the end keep stored objects readable",
                    stored.join(", "),
                    ty.name,
                    current.join(", ")
                );
                storage.report_unreadable(ty.name, "*", &reason);
                store.mark_unreadable(ty.name, reason);
            }
            None => write(store, storage, &id, &current),
        }
    }
}

/// Records `shape` (queued with the next group commit; a record lost in a
/// crash is written again at the next start).
fn write(store: &Arc<Store>, storage: &Storage, id: &ObjectId, shape: &[String]) {
    let encoded = match codec::encode(&shape) {
        Ok(encoded) => encoded,
        Err(e) => {
            tracing::error!("cannot encode the shape of {id}: {e}");
            return;
        }
    };
    let mut txn = store.begin(None);
    let written = txn
        .put(id, b"", Bytes::from(encoded))
        .and_then(|()| txn.commit_durably());
    match written {
        // Not a workflow's: nobody waits for it on the replicas.
        Ok((tid, _, _)) => store.replicated(tid),
        Err(e) => tracing::error!("cannot record the shape of {id}: {e:?}"),
    }
    storage.lead();
}
