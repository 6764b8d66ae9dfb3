//! The entries a light replica fetched from the owners of the homes it
//! serves reads of (`light.rs`), with the versions of their entry sets.

// Filled and read only by light replicas (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use bytes::Bytes;
use crucial::ObjectId;
use std::collections::HashMap;
use std::sync::Mutex;

/// Entries of one home: `(version, value)` by object and key.
type HomeEntries = HashMap<(ObjectId, Vec<u8>), (u64, Option<Bytes>)>;

/// The entries this node fetched for the homes it is a light replica of.
/// An entry is only ever replaced by a newer one; a stale entry is caught
/// by the owner's check.
#[derive(Default)]
pub struct LightCache {
    homes: Mutex<HashMap<String, HomeEntries>>,
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

    /// Drops the entries of the homes `keep` does not pick (this node is no
    /// longer their light replica).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
        homes.retain(|home, _| keep(home));
    }
}
