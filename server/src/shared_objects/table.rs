//! The object table: `(type name, key) -> object`, sharded, one lock per object.
//!
//! Calls on one object are serialized by its mutex (linearizable); calls on
//! different objects take different locks and run in parallel. The shard locks
//! are held only to find or insert an object, never while a method runs.

use super::cell::{CallLog, ObjectCell};
use super::census::Census;
use super::parking;
use super::residency::Residency;
use crucial::__private::registry::{ObjectBox, SharedTypeEntry};
use crucial::ObjectInfo;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};

const SHARDS: usize = 64;

type Shard = RwLock<HashMap<&'static str, HashMap<Box<str>, Arc<ObjectCell>>>>;

/// What [`ObjectTable::adopt`] did with an object handed over.
pub enum Adopted {
    /// No copy was here: it is now.
    New(Arc<ObjectCell>),
    /// It replaced a copy restored from this node's disk (that copy's
    /// stored state must go first).
    Replaced(Arc<ObjectCell>),
    /// The copy here stays; the one handed over is dropped.
    Kept,
}

/// All objects of a node.
pub struct ObjectTable {
    shards: Vec<Shard>,
    /// Bytes of persistent objects in memory, and their passivation.
    pub residency: Arc<Residency>,
    /// What each application namespace (keys made by
    /// `placement::namespaced`) holds, for the per-application quotas.
    census: Mutex<HashMap<Box<str>, Arc<Census>>>,
}

/// The application namespace of a key, if it is in one.
fn namespace_of(key: &str) -> Option<&str> {
    match crucial_protocol::placement::without_namespace(key) {
        ("", _) => None,
        (application, _) => Some(application),
    }
}

impl Default for ObjectTable {
    fn default() -> Self {
        ObjectTable::new(None)
    }
}

impl ObjectTable {
    /// An empty table whose persistent objects may take `memory_limit` bytes.
    pub fn new(memory_limit: Option<usize>) -> ObjectTable {
        ObjectTable {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            residency: Arc::new(Residency::new(memory_limit)),
            census: Mutex::default(),
        }
    }

    /// Counts an object that came into the table in its application's
    /// census (if its key is in a namespace).
    fn enter(&self, cell: &ObjectCell) {
        let Some(application) = namespace_of(&cell.key) else {
            return;
        };
        let census = {
            let mut all = self.census.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(all.entry(application.into()).or_default())
        };
        cell.lock().counted.enter(census);
    }

    /// `application`'s census: its objects held here and their bytes.
    pub fn census_of(&self, application: &str) -> Option<Arc<Census>> {
        let census = self.census.lock().unwrap_or_else(|e| e.into_inner());
        census.get(application).cloned()
    }

    /// The objects held here and their bytes, per application (namespaced
    /// keys only).
    pub fn census(&self) -> HashMap<String, (u64, u64)> {
        let census = self.census.lock().unwrap_or_else(|e| e.into_inner());
        census
            .iter()
            .map(|(a, c)| (a.to_string(), (c.objects(), c.bytes())))
            .collect()
    }

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
        let mut made = false;
        let cell = shard
            .entry(entry.name)
            .or_default()
            .entry(key.into())
            .or_insert_with(|| {
                made = true;
                Arc::new(ObjectCell::new(entry, key, (entry.create_default)()))
            });
        let cell = Arc::clone(cell);
        if made {
            self.enter(&cell);
        }
        cell
    }

    /// The object if the table holds it.
    pub fn get(&self, type_name: &str, key: &str) -> Option<Arc<ObjectCell>> {
        self.shard(type_name, key)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(type_name)
            .and_then(|objects| objects.get(key))
            .cloned()
    }

    /// The object and `false`, or, if absent, the value `create` gives and
    /// `true` (`create` is asked under the lock that inserts it, so nothing
    /// can take the key's ownership away between its answer and the
    /// insertion; see the cluster); `None` if it gives none.
    pub fn get_or_create_if(
        &self,
        entry: &'static SharedTypeEntry,
        key: &str,
        create: impl FnOnce() -> Option<ObjectBox>,
    ) -> Option<(Arc<ObjectCell>, bool)> {
        if let Some(cell) = self.get(entry.name, key) {
            return Some((cell, false));
        }
        let mut shard = self
            .shard(entry.name, key)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let objects = shard.entry(entry.name).or_default();
        if let Some(cell) = objects.get(key) {
            return Some((Arc::clone(cell), false));
        }
        let cell = Arc::new(ObjectCell::new(entry, key, create()?));
        objects.insert(key.into(), Arc::clone(&cell));
        self.enter(&cell);
        Some((cell, true))
    }

    /// Takes out every object `leaves` picks, each marked moved under its lock
    /// (a call that found it before finds it moved and is redirected), shard
    /// by shard: calls on the other objects of a shard wait only while that
    /// shard is scanned.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's (feature "cluster")
    pub fn take_if(&self, mut leaves: impl FnMut(&str, &str) -> bool) -> Vec<Arc<ObjectCell>> {
        let mut taken = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(|e| e.into_inner());
            for (type_name, objects) in shard.iter_mut() {
                let keys: Vec<Box<str>> = objects
                    .keys()
                    .filter(|key| leaves(type_name, key))
                    .cloned()
                    .collect();
                for key in keys {
                    if let Some(cell) = objects.remove(&key) {
                        let mut state = cell.lock();
                        state.moved = true;
                        state.counted.leave();
                        drop(state);
                        taken.push(cell);
                    }
                }
            }
        }
        taken
    }

    /// Puts back objects taken out by [`ObjectTable::take_if`] (their handoff failed).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's (feature "cluster")
    pub fn put_back(&self, cells: Vec<Arc<ObjectCell>>) {
        for cell in cells {
            cell.lock().moved = false;
            let mut shard = self
                .shard(cell.entry.name, &cell.key)
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let objects = shard.entry(cell.entry.name).or_default();
            if objects
                .insert(cell.key.clone(), Arc::clone(&cell))
                .is_none()
            {
                self.enter(&cell);
            }
        }
    }

    /// Inserts an object unless one exists; returns it if it was inserted.
    pub fn create(
        &self,
        entry: &'static SharedTypeEntry,
        key: &str,
        value: ObjectBox,
    ) -> Option<Arc<ObjectCell>> {
        let mut shard = self
            .shard(entry.name, key)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let objects = shard.entry(entry.name).or_default();
        if objects.contains_key(key) {
            return None;
        }
        let cell = Arc::new(ObjectCell::new(entry, key, value));
        objects.insert(key.into(), Arc::clone(&cell));
        self.enter(&cell);
        Some(cell)
    }

    /// Puts in an object another node handed over, unless one is held here
    /// already. The one here gives way only if it is a copy restored from this
    /// node's disk that no call has used, and the one handed over is not:
    /// then the object was started afresh elsewhere while this node was away,
    /// and the copy here is the older one.
    pub fn adopt(
        &self,
        entry: &'static SharedTypeEntry,
        key: &str,
        value: ObjectBox,
        restored: bool,
    ) -> Adopted {
        let mut shard = self
            .shard(entry.name, key)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let objects = shard.entry(entry.name).or_default();
        let replaced = match objects.get(key) {
            None => false,
            Some(here) => {
                let mut state = here.lock();
                if !state.restored || restored || state.moved {
                    return Adopted::Kept;
                }
                state.moved = true;
                state.counted.leave();
                match state.value {
                    Some(_) => self.residency.resized(state.log.bytes(), 0),
                    None => self.residency.forgot_passivated(),
                }
                true
            }
        };
        let cell = Arc::new(ObjectCell::new(entry, key, value));
        objects.insert(key.into(), Arc::clone(&cell));
        self.enter(&cell);
        if replaced {
            Adopted::Replaced(cell)
        } else {
            Adopted::New(cell)
        }
    }

    /// Puts in a recovered object: in memory (`value`) or left on disk until
    /// its first call (`None`).
    pub fn restore(
        &self,
        entry: &'static SharedTypeEntry,
        key: &str,
        value: Option<ObjectBox>,
        log: CallLog,
    ) {
        match value {
            Some(_) => self.residency.resized(0, log.bytes()),
            None => self.residency.left_memory(0),
        }
        let cell = Arc::new(ObjectCell::stored(entry, key, value, log));
        cell.lock().counted.sized(log.bytes());
        self.insert(cell);
    }

    /// Puts in a stand-in for a stored object this build cannot read.
    pub fn insert_unreadable(&self, entry: &'static SharedTypeEntry, key: &str, reason: String) {
        self.insert(Arc::new(ObjectCell::unreadable(entry, key, reason)));
    }

    /// Puts in `cell`, replacing any object of its name (at recovery).
    fn insert(&self, cell: Arc<ObjectCell>) {
        let mut shard = self
            .shard(cell.entry.name, &cell.key)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let replaced = shard
            .entry(cell.entry.name)
            .or_default()
            .insert(cell.key.clone(), Arc::clone(&cell));
        if let Some(replaced) = replaced {
            replaced.lock().counted.leave();
        }
        self.enter(&cell);
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
                {
                    let mut state = cell.lock();
                    state.counted.leave();
                    match state.value {
                        Some(_) => self.residency.resized(state.log.bytes(), 0),
                        None => self.residency.forgot_passivated(),
                    }
                }
                parking::fail_deleted(&cell);
                true
            }
            None => false,
        }
    }

    /// Every object, sorted (`kept`: persistent types are kept on disk).
    /// Shard locks are released before object locks are taken, so a listing
    /// never waits on a method while blocking lookups.
    pub fn list(&self, kept: bool) -> Vec<ObjectInfo> {
        let mut all: Vec<ObjectInfo> = self
            .cells()
            .iter()
            .map(|cell| {
                let state = cell.lock();
                let (application, key) = crucial_protocol::placement::without_namespace(&cell.key);
                ObjectInfo {
                    application: application.to_string(),
                    type_name: cell.entry.name.to_string(),
                    key: key.to_string(),
                    poisoned: state.poison.is_some(),
                    parked: state.parked.len() as u32,
                    persistent: kept && cell.entry.persistent,
                    resident: state.value.is_some(),
                    bytes: state.log.bytes() as u64,
                }
            })
            .collect();
        all.sort();
        all
    }

    /// Every object's cell, at one moment.
    pub fn cells(&self) -> Vec<Arc<ObjectCell>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            all.extend(shard.values().flat_map(|objects| objects.values().cloned()));
        }
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
}
