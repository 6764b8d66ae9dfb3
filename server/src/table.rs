//! The object table: `(type name, key) -> object`, sharded, one lock per object.
//!
//! Calls on one object are serialized by its mutex (linearizable); calls on
//! different objects take different locks and run in parallel. The shard locks
//! are held only to find or insert an object, never while a method runs.

use crucial::registry::{ObjectBox, SharedTypeEntry};
use crucial::wire::ObjectInfo;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

const SHARDS: usize = 64;

/// A panic that left an object's state untrustworthy.
#[derive(Debug, Clone)]
pub struct Poison {
    /// The mutating method that panicked.
    pub method: String,
    /// Its panic message.
    pub message: String,
}

/// An object and its bookkeeping, behind the object's lock.
pub struct ObjectState {
    /// The user's value.
    pub value: ObjectBox,
    /// Set when a mutating method panicked midway.
    pub poison: Option<Poison>,
    /// Blocking calls waiting for the object to change.
    pub parked: Vec<crate::parking::Parked>,
}

/// One object.
pub struct ObjectCell {
    /// Its type's registry entry.
    pub entry: &'static SharedTypeEntry,
    state: Mutex<ObjectState>,
}

impl ObjectCell {
    /// Locks the object. A panic inside a method is caught before it can poison
    /// the mutex, so the guard is always available.
    pub fn lock(&self) -> MutexGuard<'_, ObjectState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Shard = RwLock<HashMap<&'static str, HashMap<Box<str>, Arc<ObjectCell>>>>;

/// All objects of a node.
pub struct ObjectTable {
    shards: Vec<Shard>,
}

impl Default for ObjectTable {
    fn default() -> Self {
        ObjectTable {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }
}

impl ObjectTable {
    fn shard(&self, type_name: &str, key: &str) -> &Shard {
        let mut h = DefaultHasher::new();
        type_name.hash(&mut h);
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// The object, created from `Default` if absent.
    pub fn get_or_default(&self, entry: &'static SharedTypeEntry, key: &str) -> Arc<ObjectCell> {
        let shard = self.shard(entry.name, key);
        if let Some(cell) = shard
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(entry.name)
            .and_then(|objects| objects.get(key))
        {
            return Arc::clone(cell);
        }
        let mut shard = shard.write().unwrap_or_else(|e| e.into_inner());
        let cell = shard
            .entry(entry.name)
            .or_default()
            .entry(key.into())
            .or_insert_with(|| {
                Arc::new(ObjectCell {
                    entry,
                    state: Mutex::new(ObjectState {
                        value: (entry.create_default)(),
                        poison: None,
                        parked: Vec::new(),
                    }),
                })
            });
        Arc::clone(cell)
    }

    /// Inserts an object unless one exists; returns whether it was inserted.
    pub fn create(&self, entry: &'static SharedTypeEntry, key: &str, value: ObjectBox) -> bool {
        let mut shard = self
            .shard(entry.name, key)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let objects = shard.entry(entry.name).or_default();
        if objects.contains_key(key) {
            return false;
        }
        objects.insert(
            key.into(),
            Arc::new(ObjectCell {
                entry,
                state: Mutex::new(ObjectState {
                    value,
                    poison: None,
                    parked: Vec::new(),
                }),
            }),
        );
        true
    }

    /// Removes an object; returns whether it existed. Calls already holding the
    /// object finish on the removed copy; calls parked on it get `Deleted`.
    pub fn delete(&self, type_name: &str, key: &str) -> bool {
        let removed = {
            let mut shard = self
                .shard(type_name, key)
                .write()
                .unwrap_or_else(|e| e.into_inner());
            shard
                .get_mut(type_name)
                .and_then(|objects| objects.remove(key))
        };
        match removed {
            Some(cell) => {
                crate::parking::fail_all(&mut cell.lock(), &cell, key);
                true
            }
            None => false,
        }
    }

    /// Every object, sorted.
    pub fn list(&self) -> Vec<ObjectInfo> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            for (type_name, objects) in shard.iter() {
                for (key, cell) in objects {
                    let state = cell.lock();
                    all.push(ObjectInfo {
                        type_name: type_name.to_string(),
                        key: key.to_string(),
                        poisoned: state.poison.is_some(),
                        parked: state.parked.len() as u32,
                    });
                }
            }
        }
        all.sort();
        all
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .map(HashMap::len)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Whether the table holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
