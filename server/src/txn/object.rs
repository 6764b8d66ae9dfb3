//! One lambda object's entries, in key order, partitioned into entry sets by
//! guards: set `i` holds the keys in `[guards[i-1], guards[i])`. An object
//! starts as one entry set; a commit splits a contended set at a key it writes.

use super::census::EXISTS;
use super::entry_set::EntrySet;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

struct Partition {
    guards: Vec<Vec<u8>>,
    sets: Vec<Arc<EntrySet>>,
}

impl Partition {
    /// The index of the set holding `key`.
    fn index(&self, key: &[u8]) -> usize {
        self.guards.partition_point(|g| g.as_slice() <= key)
    }
}

/// A recorded read: the set and the version it had before the value was read.
pub type Seen = (Arc<EntrySet>, u64);

/// The entries of one object.
pub struct LambdaObject {
    partition: RwLock<Partition>,
    entries: RwLock<BTreeMap<Vec<u8>, Bytes>>,
}

impl LambdaObject {
    /// An empty object: one entry set at `version`.
    pub fn new(version: u64) -> LambdaObject {
        LambdaObject {
            partition: RwLock::new(Partition {
                guards: Vec::new(),
                sets: vec![Arc::new(EntrySet::new(version))],
            }),
            entries: RwLock::default(),
        }
    }

    fn partition(&self) -> RwLockReadGuard<'_, Partition> {
        self.partition.read().unwrap_or_else(|e| e.into_inner())
    }

    fn entries(&self) -> RwLockReadGuard<'_, BTreeMap<Vec<u8>, Bytes>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn entries_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Bytes>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The set that holds `key` now.
    pub fn set_for(&self, key: &[u8]) -> Arc<EntrySet> {
        let partition = self.partition();
        Arc::clone(&partition.sets[partition.index(key)])
    }

    /// Its entries and their bytes (keys and values), for listings.
    pub fn size(&self) -> (usize, usize) {
        let entries = self.entries();
        let bytes = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        (entries.len(), bytes)
    }

    /// How many entry sets the object has.
    #[cfg(test)]
    pub fn sets(&self) -> usize {
        self.partition().sets.len()
    }

    /// Reads one entry without locking: the version of its set first, then
    /// the value (a stale version is caught at validation).
    pub fn read(&self, key: &[u8]) -> (Seen, Option<Bytes>) {
        let set = self.set_for(key);
        let version = set.version();
        let value = self.entries().get(key).cloned();
        ((set, version), value)
    }

    /// Reads the entries in `[from, to)` (`to`: `None` for the end): the
    /// versions of every set the range touches first, then the values. A key
    /// inserted into the range later changes one of those versions, so a scan
    /// sees no phantoms.
    /// An empty range (`to <= from`, as `Map::range(1..=0)` asks) reads
    /// nothing: no key can ever be in it.
    pub fn scan(&self, from: &[u8], to: Option<&[u8]>) -> (Vec<Seen>, Vec<(Vec<u8>, Bytes)>) {
        if to.is_some_and(|to| to <= from) {
            return (Vec::new(), Vec::new());
        }
        let seen = {
            let partition = self.partition();
            let first = partition.index(from);
            let last = match to {
                Some(to) => partition
                    .guards
                    .partition_point(|g| g.as_slice() < to)
                    .max(first),
                None => partition.sets.len() - 1,
            };
            partition.sets[first..=last]
                .iter()
                .map(|set| (Arc::clone(set), set.version()))
                .collect()
        };
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        let values = self
            .entries()
            .range::<[u8], _>((Bound::Included(from), upper))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (seen, values)
    }

    /// Every entry with the version of its set, read before the entries (so
    /// never above the commit that wrote the value read).
    pub fn versioned_entries(&self) -> Vec<(Vec<u8>, Bytes, u64)> {
        let partition = self.partition();
        let versions: Vec<u64> = partition.sets.iter().map(|s| s.version()).collect();
        self.entries()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), versions[partition.index(k)]))
            .collect()
    }

    /// Installs a committed transaction's writes to this object (its sets
    /// are locked by the committer). Returns 1 if that made the object
    /// exist (a constructor's marker came), -1 if it ended it, else 0.
    #[must_use = "the store counts objects by what this returns"]
    pub fn install<'a>(
        &self,
        writes: impl IntoIterator<Item = (&'a [u8], &'a Option<Bytes>)>,
    ) -> i64 {
        let mut entries = self.entries_mut();
        let existed = entries.contains_key(EXISTS);
        for (key, value) in writes {
            match value {
                Some(value) => entries.insert(key.to_vec(), value.clone()),
                None => entries.remove(key),
            };
        }
        i64::from(entries.contains_key(EXISTS)) - i64::from(existed)
    }

    /// Whether a constructor made it (its marker is installed).
    pub fn exists(&self) -> bool {
        self.entries().contains_key(EXISTS)
    }

    /// Splits `set`, locked by the caller, at `at` into two sets at `version`
    /// and retires it. Returns `false` (and changes nothing) when `at` is the
    /// set's first key, where there is nothing to split.
    pub fn split(&self, set: &Arc<EntrySet>, at: &[u8], version: u64) -> bool {
        let mut partition = self.partition.write().unwrap_or_else(|e| e.into_inner());
        let Some(i) = partition.sets.iter().position(|s| Arc::ptr_eq(s, set)) else {
            return false;
        };
        if i > 0 && partition.guards[i - 1].as_slice() >= at {
            return false;
        }
        partition.guards.insert(i, at.to_vec());
        partition.sets.splice(
            i..=i,
            [
                Arc::new(EntrySet::new(version)),
                Arc::new(EntrySet::new(version)),
            ],
        );
        set.retire(version);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(object: &LambdaObject, key: &[u8], value: &'static [u8]) {
        let _ = object.install([(key, &Some(Bytes::from_static(value)))]);
    }

    #[test]
    fn a_split_gives_each_half_its_own_set_and_retires_the_old_one() {
        let object = LambdaObject::new(1);
        put(&object, b"a", b"1");
        put(&object, b"m", b"2");
        let whole = object.set_for(b"a");
        assert!(Arc::ptr_eq(&whole, &object.set_for(b"z")));
        assert!(object.split(&whole, b"m", 5));
        assert_eq!(object.sets(), 2);
        let (low, high) = (object.set_for(b"a"), object.set_for(b"m"));
        assert!(!Arc::ptr_eq(&low, &high));
        assert!(Arc::ptr_eq(&high, &object.set_for(b"zz")));
        assert_eq!((low.version(), high.version()), (5, 5));
        assert!(!whole.still(1, false), "the old set is retired");
        // No split at a set's own first key.
        assert!(!object.split(&high, b"m", 6));
        assert_eq!(object.sets(), 2);
    }

    #[test]
    fn a_scan_records_every_set_it_touches() {
        let object = LambdaObject::new(1);
        for key in [&b"a"[..], b"c", b"e", b"g"] {
            put(&object, key, b"x");
        }
        let whole = object.set_for(b"a");
        assert!(object.split(&whole, b"d", 2));
        let (seen, values) = object.scan(b"b", Some(b"f"));
        assert_eq!(seen.len(), 2);
        assert_eq!(
            values.iter().map(|(k, _)| k.as_slice()).collect::<Vec<_>>(),
            [&b"c"[..], b"e"]
        );
        let (seen, _) = object.scan(b"a", Some(b"d"));
        assert_eq!(
            seen.len(),
            1,
            "[a, d) stops before the set that starts at d"
        );
        let (seen, values) = object.scan(b"", None);
        assert_eq!((seen.len(), values.len()), (2, 4));
    }
}
