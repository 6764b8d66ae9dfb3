//! The entries a light replica fetched from the owners of the homes it
//! serves reads of (`light.rs`), with the versions of their entry sets.

// Filled and read only by light replicas (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use bytes::Bytes;
use crucial::ObjectId;
use serde_bytes::ByteBuf;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// An entry a check found changed, as its owner holds it now.
pub type Stale = crucial_protocol::wire::EntryNow;

/// A light run's reads waiting to be checked at their owner, and where its
/// verdict goes: the entries that changed (none: it holds), or `None` when
/// the owner could not check it.
pub struct PendingCheck {
    /// `(object, key, version)` per entry read.
    pub reads: Vec<(ObjectId, ByteBuf, u64)>,
    /// The verdict.
    pub verdict: tokio::sync::oneshot::Sender<Option<Vec<Stale>>>,
}

/// Entries of one home: `(version, value)` by object and key.
type HomeEntries = HashMap<(ObjectId, Vec<u8>), (u64, Option<Bytes>)>;

/// The entries this node fetched for the homes it is a light replica of.
/// An entry is only ever replaced by a newer one; a stale entry is caught
/// by the owner's check.
#[derive(Default)]
pub struct LightCache {
    homes: Mutex<HashMap<String, HomeEntries>>,
    /// Per owner, the queue of its checks (one message carries every check
    /// that queued while the one before was on its way).
    checks: Mutex<HashMap<String, UnboundedSender<PendingCheck>>>,
}

impl LightCache {
    pub(super) fn get(
        &self,
        home: &str,
        object: &ObjectId,
        key: &[u8],
    ) -> Option<(u64, Option<Bytes>)> {
        let homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
        homes
            .get(home)?
            .get(&(object.clone(), key.to_vec()))
            .cloned()
    }

    pub(super) fn put(
        &self,
        home: &str,
        object: ObjectId,
        key: Vec<u8>,
        version: u64,
        value: Option<Bytes>,
    ) {
        let mut homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
        let entries = homes.entry(home.to_string()).or_default();
        let entry = entries.entry((object, key)).or_insert((0, None));
        if version >= entry.0 {
            *entry = (version, value);
        }
    }

    /// The queue of checks for `owner`, and its receiving end if the queue
    /// is new (whoever gets it starts the task that sends them).
    pub(super) fn checks(
        &self,
        owner: &str,
    ) -> (
        UnboundedSender<PendingCheck>,
        Option<UnboundedReceiver<PendingCheck>>,
    ) {
        let mut checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = checks.get(owner).filter(|q| !q.is_closed()) {
            return (queue.clone(), None);
        }
        let (queue, receiving) = unbounded_channel();
        checks.insert(owner.to_string(), queue.clone());
        (queue, Some(receiving))
    }

    /// Drops the entries of the homes `keep` does not pick (this node is no
    /// longer their light replica).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
        homes.retain(|home, _| keep(home));
    }
}
