//! A transaction over lambda objects: Silo-style optimistic concurrency
//! control with entry sets as the unit of versioning (LambdaStore 4.3).
//!
//! *Execution*: reads record the version of the entry set they read (loaded
//! before the value, without a lock) and are cached, so a transaction sees one
//! value per key; writes are buffered, and reads see them.
//!
//! *Commit*: (1) lock the entry sets of every written key, in one global order
//! (no deadlock); a set split meanwhile is looked up again. (2) Take the
//! commit's number from the store's clock: this is the serialization point.
//! (3) Validate: every set read must still have the version the read saw,
//! not be retired, and not be locked by another commit. (4) Install the
//! writes, split the written sets that saw a conflict at their first written
//! key, and unlock at the commit's number.
//!
//! Why this is strictly serializable, in the order of commit numbers: if `T2`
//! read what `T1` wrote, `T2` saw `T1`'s number as the version, and `T2` took
//! its own number later from the same clock, so `T1 < T2`. If `T1` read a set
//! that `T2` overwrote, `T1` validated before `T2` locked that set (else `T1`
//! would have seen the lock or the new version and aborted), and `T1` took
//! its number before validating while `T2` took its own after locking, so
//! `T1 < T2`. Two writers of one set hold its lock in turn. And a transaction
//! that committed before another began has the smaller number, since numbers
//! only grow: the order respects real time. A read-only transaction takes a
//! number and validates its reads the same way. Splits are done under the
//! split set's lock, and give the new sets the commit's number and retire the
//! old set, so a read of the old set fails validation and a writer that
//! looked it up looks again. The history test in `txn/history.rs` checks this
//! against recorded runs.
//!
//! The commit is three steps a node can run apart, as a participant of a
//! commit across nodes will: [`Transaction::prepare`] (lock, number, validate:
//! the transaction can no longer conflict), then [`Prepared::commit`] (install,
//! queue for the disk, unlock) or [`Prepared::abort`] (unlock, nothing
//! written). A workflow on one node runs them in sequence
//! ([`Transaction::commit_durably`]). The numbers come from a [`CommitClock`],
//! the node's own counter today; a timestamp shared across nodes can replace it.

use super::census::{LambdaCensus, EXISTS};
use super::entry_set::{EntrySet, Locking};
use super::object::{LambdaObject, Seen};
use super::provisional::Provisional;
use crate::storage::{Storage, Ticket};
use bytes::Bytes;
use crucial::store::TxError;
use crucial::ObjectId;
use crucial_protocol::placement::{lambda_home, lambda_home_parts, DECISIONS};
use crucial_protocol::wire::Outcome;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Why a transaction stopped before committing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// Another transaction changed what this one read, or held a lock it
    /// needed: re-execute.
    Conflict,
    /// The deadline passed (checked at every read, write and commit).
    Deadline,
    /// The function failed (its error, a child call's, or a panic): nothing
    /// is written, and re-executing would fail again.
    Failed(TxError),
    /// The node's store cannot write (the reason names the cause): nothing is
    /// written or installed.
    NotDurable(String),
}

/// A commit's writes on their way to the disk.
#[derive(Debug)]
pub struct Durably {
    /// Resolves when they are durable (or failed).
    pub ticket: Ticket,
    /// The keys written: if the ticket fails, [`Store::restore_from_disk`]
    /// puts back what the disk holds, so the failed commit is seen by nobody.
    pub written: Vec<Key>,
}

/// Where commit numbers come from: the serialization order of commits.
pub trait CommitClock: Send + Sync + 'static {
    /// A number larger than every number handed out before (a commit's).
    fn tick(&self) -> u64;
    /// A number no later commit is below (a new object's first version).
    fn now(&self) -> u64;
    /// Makes every later number larger than `seen` (a number another node
    /// gave the entries this node takes over).
    fn observe(&self, seen: u64);
}

/// The node's commit clock: a hybrid logical clock. A commit's number is
/// the wall clock in nanoseconds since the Unix epoch, or one above the last
/// number handed out or observed if that is larger. Numbers only grow, and
/// those of nodes that share a wall clock (one machine; machines within the
/// clocks' skew) follow real time: a commit that ended before another began
/// has the smaller number even when the two share no node. (Real-time order
/// itself does not depend on it: see `txn/participant.rs`.) A node restarted
/// numbers above everything it numbered before, without storing the clock.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Default for Counter {
    fn default() -> Self {
        Counter(AtomicU64::new(wall_ns()))
    }
}

/// Nanoseconds since the Unix epoch.
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl CommitClock for Counter {
    fn tick(&self) -> u64 {
        let wall = wall_ns();
        let last = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(wall.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        wall.max(last + 1)
    }

    fn now(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn observe(&self, seen: u64) {
        self.0.fetch_max(seen, Ordering::AcqRel);
    }
}

/// The lambda objects of one node, the clock their commits are numbered by,
/// and the data directory their entries are kept in (if any).
pub struct Store {
    objects: RwLock<HashMap<ObjectId, Arc<LambdaObject>>>,
    clock: Box<dyn CommitClock>,
    storage: Option<Arc<Storage>>,
    /// Types whose stored shape this build cannot read, with the reason.
    unreadable: RwLock<HashMap<String, String>>,
    /// Applications whose copy here is provisional (restored from a disk).
    pub provisional: Provisional,
    /// Commits whose writes wait for their replicas (see
    /// [`Store::replicate_commits`]).
    unreplicated: Unreplicated,
    /// Prepare skips validating reads: a deliberately broken engine, for the
    /// runs that show the history checkers catch it.
    weakened: std::sync::atomic::AtomicBool,
    /// Which objects are placed on their own (see [`Store::home`]).
    by_object: ByObject,
    /// Objects per application, against `--app-max-lambda-objects`.
    pub census: LambdaCensus,
}

/// Whether an object is placed on its own (its type's
/// `placement = "object"`) rather than with its application.
pub type ByObject = fn(&ObjectId) -> bool;

/// The numbers of commits installed here whose writes the replicas have not
/// acknowledged yet: a workflow that may have read them answers only once
/// they are acknowledged (a failover could lose them until then).
#[derive(Default)]
struct Unreplicated {
    on: std::sync::atomic::AtomicBool,
    pending: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    changed: tokio::sync::Notify,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            objects: RwLock::default(),
            clock: Box::<Counter>::default(),
            storage: None,
            unreadable: RwLock::default(),
            provisional: Provisional::default(),
            unreplicated: Unreplicated::default(),
            weakened: std::sync::atomic::AtomicBool::new(false),
            by_object: |_| false,
            census: LambdaCensus::default(),
        }
    }
}

impl Store {
    /// The lambda objects kept in `storage`: every stored entry is loaded,
    /// and every commit's writes are stored. The applications of the objects
    /// `provisional` picks are provisional copies (see [`Provisional`]).
    pub fn recover(
        storage: Arc<Storage>,
        provisional: impl Fn(&ObjectId) -> bool,
        by_object: ByObject,
    ) -> Result<Store, String> {
        let mut apps = std::collections::HashSet::new();
        let mut store = Store {
            storage: Some(Arc::clone(&storage)),
            by_object,
            ..Store::default()
        };
        for (object, key, value) in storage.entries()? {
            let value = Some(Bytes::from(value));
            store.install_into(&object, &store.object(&object), [(key.as_slice(), &value)]);
            if provisional(&object) {
                apps.insert(store.home(&object));
            }
        }
        store.provisional = Provisional::from_disk(apps);
        Ok(store)
    }

    /// The object with `id`, made empty on first touch (so that a read of a
    /// missing object records a version too, and its creation conflicts).
    pub fn object(&self, id: &ObjectId) -> Arc<LambdaObject> {
        if let Some(object) = self
            .objects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Arc::clone(object);
        }
        let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
        let version = self.clock.now();
        Arc::clone(
            objects
                .entry(id.clone())
                .or_insert_with(|| Arc::new(LambdaObject::new(version))),
        )
    }

    /// This store with the objects `by_object` picks placed on their own
    /// (else every object with its application).
    pub fn placed_by(mut self, by_object: ByObject) -> Store {
        self.by_object = by_object;
        self
    }

    /// The home of object `id`: the key the cluster places, moves and copies
    /// it by — its application's name, or, for an object placed on its own,
    /// its own key (`crucial_protocol::placement::lambda_home`).
    pub fn home(&self, id: &ObjectId) -> String {
        if id.type_name == DECISIONS {
            return id.key.clone();
        }
        let object = (self.by_object)(id).then_some((id.type_name.as_str(), id.key.as_str()));
        lambda_home(&id.application, object)
    }

    /// Whether `home` is object `id`'s home: [`Store::home`] without
    /// building the string (every access of a workflow in a cluster asks).
    pub fn at_home(&self, id: &ObjectId, home: &str) -> bool {
        if id.type_name == DECISIONS {
            return id.key == home;
        }
        match lambda_home_parts(home) {
            (app, None) => id.application == app && !(self.by_object)(id),
            (app, Some((type_name, key))) => {
                id.application == app
                    && id.type_name == type_name
                    && id.key == key
                    && (self.by_object)(id)
            }
        }
    }

    /// Queues part `part` of a transaction across nodes, prepared here, for
    /// the disk under `key`: the ticket to wait for (`None`: no data
    /// directory).
    pub fn save_prepared(&self, key: [u8; 16], part: Vec<u8>) -> Option<Ticket> {
        let storage = self.storage.as_ref()?;
        Some(storage.save_prepared(key, part).ticket)
    }

    /// Queues the deletion of a prepared part's record (it aborted).
    pub fn forget_prepared(&self, key: [u8; 16]) {
        if let Some(storage) = &self.storage {
            let _ = storage.forget_prepared(key);
        }
    }

    /// The prepared parts on this store's disk, by key.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn prepared_on_disk(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        match &self.storage {
            Some(storage) => storage.prepared().unwrap_or_else(|e| {
                tracing::error!("cannot read the prepared parts on disk: {e}");
                Vec::new()
            }),
            None => Vec::new(),
        }
    }

    /// Refuses objects of `type_name` from now on, saying `reason`.
    pub fn mark_unreadable(&self, type_name: &str, reason: String) {
        self.unreadable
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(type_name.to_string(), reason);
    }

    /// Why objects of `type_name` cannot be read, if they cannot.
    pub fn unreadable(&self, type_name: &str) -> Option<String> {
        self.unreadable
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(type_name)
            .cloned()
    }

    /// The value of one stored entry, outside any transaction (for the
    /// node's own records at start).
    pub fn peek(&self, id: &ObjectId, key: &[u8]) -> Option<Bytes> {
        self.object(id).read(key).1
    }

    /// Every object with entries, with its entry count and bytes. (Objects
    /// only ever read while missing have none and are left out.)
    pub fn list(&self) -> Vec<(ObjectId, usize, usize)> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = objects
            .iter()
            .filter_map(|(id, object)| {
                let (entries, bytes) = object.size();
                (entries > 0).then(|| (id.clone(), entries, bytes))
            })
            .collect();
        all.sort();
        all
    }

    /// The objects of `type_name` in `application` that `objects` selects
    /// and this store holds (with entries: made by a constructor), in key
    /// order.
    pub fn objects_of(
        &self,
        application: &str,
        type_name: &str,
        objects: &crucial_protocol::wire::Objects,
    ) -> Vec<ObjectId> {
        let held = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<ObjectId> = held
            .iter()
            .filter(|(id, object)| {
                id.application == application
                    && id.type_name == type_name
                    && objects.takes(&id.key)
                    && object.size().0 > 0
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// After a commit's write to disk failed: puts back, in memory, what the
    /// disk holds for every key it wrote, so that the failed commit is seen
    /// by nobody from now on (a workflow that read it is re-executed).
    pub fn restore_from_disk(self: &Arc<Self>, written: &[Key]) {
        let Some(storage) = &self.storage else {
            return;
        };
        let mut txn = self.begin(None);
        for (id, key) in written {
            match storage.entry(id, key) {
                Ok(value) => {
                    txn.writes
                        .insert((id.clone(), key.clone()), value.map(Bytes::from));
                }
                Err(e) => tracing::error!(
                    "cannot read back entry of {id} to undo a commit that is not durable: {e}"
                ),
            }
        }
        if let Err(abort) = txn.install_in_memory() {
            tracing::error!("cannot undo a commit that is not durable: {abort:?}");
        }
    }

    /// Takes every object whose home is `home` out of the store, with its
    /// entries (its owner is another node now). No workflow of the home may
    /// run meanwhile (the cluster holds them back).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's (feature "cluster")
    pub fn take_home(&self, home: &str) -> ObjectEntries {
        let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<ObjectId> = objects
            .keys()
            .filter(|id| self.at_home(id, home))
            .cloned()
            .collect();
        ids.into_iter()
            .filter_map(|id| {
                let object = objects.remove(&id)?;
                if object.exists() {
                    self.census.counted(&id.application, -1);
                }
                let (_, entries) = object.scan(&[], None);
                (!entries.is_empty()).then_some((id, entries))
            })
            .collect()
    }

    /// Whether this node has objects at home `home` with entries.
    pub fn holds_home(&self, home: &str) -> bool {
        self.objects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(id, object)| self.at_home(id, home) && object.size().0 > 0)
    }

    /// Puts objects in (handed over by another node, or given back after a
    /// handoff that could not be delivered).
    pub fn put_objects(&self, objects: ObjectEntries) {
        for (id, entries) in objects {
            let values: Vec<(Vec<u8>, Option<Bytes>)> =
                entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
            let object = self.object(&id);
            self.install_into(&id, &object, values.iter().map(|(k, v)| (k.as_slice(), v)));
        }
    }

    /// Installs `writes` into `object` (the one of `id`), counting it in or
    /// out of its application's census if they made or ended it.
    fn install_into<'a>(
        &self,
        id: &ObjectId,
        object: &LambdaObject,
        writes: impl IntoIterator<Item = (&'a [u8], &'a Option<Bytes>)>,
    ) {
        let made = object.install(writes);
        self.census.counted(&id.application, made);
    }

    /// The commit clock now: no later commit is numbered below it.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff's (feature "cluster")
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Numbers later commits above `seen` (entries taken over from a node
    /// whose commits were numbered up to it).
    pub fn observe(&self, seen: u64) {
        self.clock.observe(seen);
    }

    /// From now on, every commit with writes is recorded as unreplicated
    /// until [`Store::replicated`] is called with its number.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn replicate_commits(&self) {
        self.unreplicated.on.store(true, Ordering::Release);
    }

    /// The replicas acknowledged (or gave up on) commit `tid`'s writes.
    pub fn replicated(&self, tid: u64) {
        self.unreplicated
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tid);
        self.unreplicated.changed.notify_waiters();
    }

    /// Stops waiting for the commits numbered below `tid` (their replication
    /// was abandoned).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the cluster's (feature "cluster")
    pub fn forget_unreplicated_below(&self, tid: u64) {
        let mut pending = self
            .unreplicated
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *pending = pending.split_off(&tid);
        drop(pending);
        self.unreplicated.changed.notify_waiters();
    }

    /// Resolves once no commit numbered below `tid` waits for its replicas:
    /// everything a transaction numbered `tid` can have read is on them.
    pub async fn wait_replicated(&self, tid: u64) {
        loop {
            let changed = self.unreplicated.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let oldest = self
                .unreplicated
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .first()
                .copied();
            if oldest.is_none_or(|oldest| oldest >= tid) {
                return;
            }
            changed.await;
        }
    }

    /// Every entry of the objects at home `home` with the version of its
    /// entry set (read before the value: never above the commit that wrote
    /// it), and the clock when the snapshot began.
    pub fn snapshot_home(&self, home: &str) -> (u64, Vec<Versioned>) {
        let as_of = self.clock.now();
        let objects: Vec<(ObjectId, Arc<LambdaObject>)> = self
            .objects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(id, _)| self.at_home(id, home))
            .map(|(id, object)| (id.clone(), Arc::clone(object)))
            .collect();
        let mut entries = Vec::new();
        for (id, object) in objects {
            for (key, value, version) in object.versioned_entries() {
                entries.push(((id.clone(), key), Some(value), version));
            }
        }
        (as_of, entries)
    }

    /// Installs entries taken over from another node (a backup promoted):
    /// in memory, as a commit of its own numbered above `seen`, and on disk;
    /// returns the disk's ticket, if the store has a data directory.
    pub fn install_taken_over(
        self: &Arc<Self>,
        entries: Vec<(Key, Option<Bytes>)>,
        seen: u64,
    ) -> Result<Option<Ticket>, String> {
        self.observe(seen);
        let ticket = match &self.storage {
            Some(storage) if !entries.is_empty() => Some(
                storage
                    .save_entries(
                        entries
                            .iter()
                            .map(|((id, key), value)| (id, key.as_slice(), value.as_deref())),
                        None,
                        Vec::new(),
                    )
                    .ticket,
            ),
            _ => None,
        };
        let mut txn = self.begin(None);
        txn.writes.extend(entries);
        txn.install_in_memory()
            .map_err(|abort| format!("cannot install the entries: {abort:?}"))?;
        Ok(ticket)
    }

    /// Breaks the engine on purpose: from now on a prepare does not validate
    /// what the transaction read (lost updates, write skew). Only for runs
    /// that show a history checker catches a broken engine.
    pub fn weaken_validation(&self) {
        self.weakened.store(true, Ordering::Relaxed);
    }

    fn skips_validation(&self) -> bool {
        self.weakened.load(Ordering::Relaxed)
    }

    /// Starts a transaction that gives up at `deadline`.
    pub fn begin(self: &Arc<Self>, deadline: Option<Instant>) -> Transaction {
        Transaction {
            store: Arc::clone(self),
            objects: HashMap::new(),
            reads: Vec::new(),
            read_sets: HashSet::new(),
            cache: HashMap::new(),
            writes: BTreeMap::new(),
            deadline,
            reply: None,
            stance: Stance::Optimistic,
            pinned: Vec::new(),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.tick()
    }
}

/// One entry: its object and its key.
pub type Key = (ObjectId, Vec<u8>);

/// An entry with its value (`None`: deleted) and version.
pub type Versioned = (Key, Option<Bytes>, u64);

/// A commit's writes: each entry and its new value (`None`: deleted).
pub type Writes = Vec<(Key, Option<Bytes>)>;

/// Lambda objects with their entries `(key, value)`: what moves between nodes.
pub type ObjectEntries = Vec<(ObjectId, Vec<(Vec<u8>, Bytes)>)>;

/// One object's share of a commit's writes.
type ObjectWrites<'a> = Vec<(&'a [u8], &'a Option<Bytes>)>;

/// How an execution meets contention, chosen from how its workflow's
/// earlier executions ended (`txn/workflow.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stance {
    /// Reads record versions, commits validate them (OCC).
    #[default]
    Optimistic,
    /// A reader that lost to writers too often: each set read is pinned at
    /// once (a reading pin), so that no ordinary writer can change it
    /// before this execution ends. A read of a set a writer holds locked is
    /// a conflict at once; pins never wait, so they cannot deadlock.
    PinReads,
    /// A writer that lost too often (to pinning readers, mostly): its locks
    /// pass reading pins (the reader fails its validation and runs again),
    /// never a prepared transaction's pins.
    Insist,
}

/// One transaction: its reads, its buffered writes, its deadline.
pub struct Transaction {
    store: Arc<Store>,
    objects: HashMap<ObjectId, Arc<LambdaObject>>,
    reads: Vec<Seen>,
    /// The sets in `reads`, by address (a map call reads thousands).
    read_sets: HashSet<usize>,
    cache: HashMap<Key, Option<Bytes>>,
    writes: BTreeMap<Key, Option<Bytes>>,
    deadline: Option<Instant>,
    reply: Option<(u64, u64, Outcome)>,
    /// How it meets contention.
    stance: Stance,
    /// Sets this transaction's reads pinned (reading pins), until it
    /// prepares, commits or is dropped.
    pinned: Vec<Arc<EntrySet>>,
}

impl Drop for Transaction {
    /// A transaction dropped before it prepared releases its read pins.
    fn drop(&mut self) {
        unpin_reading(&self.pinned);
    }
}

impl Transaction {
    /// Stores the reply to request `request` of client `client` with the
    /// commit's writes, in the same atomic batch: a client that retries after
    /// a crash gets it instead of a second execution.
    pub fn reply_with(&mut self, client: u64, request: u64, outcome: Outcome) {
        self.reply = Some((client, request, outcome));
    }

    /// Why the store refuses objects of `type_name`, if it does.
    pub fn unreadable(&self, type_name: &str) -> Option<String> {
        self.store.unreadable(type_name)
    }

    fn check(&self) -> Result<(), Abort> {
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(Abort::Deadline),
            _ => Ok(()),
        }
    }

    fn object(&mut self, id: &ObjectId) -> Arc<LambdaObject> {
        if let Some(object) = self.objects.get(id) {
            return Arc::clone(object);
        }
        let object = self.store.object(id);
        self.objects.insert(id.clone(), Arc::clone(&object));
        object
    }

    /// The entries it writes.
    pub fn written(&self) -> impl Iterator<Item = &Key> {
        self.writes.keys()
    }

    /// Meets contention as `stance` says from now on (a workflow chooses
    /// it after repeated conflicts, so that neither a long reader, such as
    /// an audit over many nodes, nor a writer is starved).
    pub fn take_stance(&mut self, stance: Stance) {
        self.stance = stance;
    }

    /// How it meets contention.
    pub fn stance(&self) -> Stance {
        self.stance
    }

    fn record(&mut self, seen: Seen) -> Result<(), Abort> {
        if self.read_sets.contains(&(Arc::as_ptr(&seen.0) as usize)) {
            return Ok(());
        }
        if self.stance == Stance::PinReads {
            if !seen.0.pin_reading(seen.1) {
                seen.0.conflicted();
                return Err(Abort::Conflict);
            }
            self.pinned.push(Arc::clone(&seen.0));
        }
        self.read_sets.insert(Arc::as_ptr(&seen.0) as usize);
        self.reads.push(seen);
        Ok(())
    }

    /// The value of `key` in `object`, as this transaction sees it.
    pub fn get(&mut self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, Abort> {
        self.check()?;
        let k = (object.clone(), key.to_vec());
        if let Some(value) = self.writes.get(&k).or_else(|| self.cache.get(&k)) {
            return Ok(value.clone());
        }
        let (seen, value) = self.object(object).read(key);
        self.record(seen)?;
        self.cache.insert(k, value.clone());
        Ok(value)
    }

    /// Sets `key` of `object` (visible to this transaction now, to others
    /// once it commits).
    pub fn put(&mut self, object: &ObjectId, key: &[u8], value: Bytes) -> Result<(), Abort> {
        self.check()?;
        if key == EXISTS {
            self.within_object_quota(object)?;
        }
        self.writes
            .insert((object.clone(), key.to_vec()), Some(value));
        Ok(())
    }

    /// Refuses a constructor that would make `object` one more of its
    /// application's objects than `--app-max-lambda-objects`: the workflow
    /// fails with the `Limit`, nothing of it written. Counted are the
    /// store's objects and the ones this transaction makes (workflows that
    /// race may pass the quota by the number of them at that moment).
    fn within_object_quota(&mut self, object: &ObjectId) -> Result<(), Abort> {
        let Some(limit) = self.store.census.limit() else {
            return Ok(());
        };
        let application = &object.application;
        let making = self
            .writes
            .iter()
            .filter(|((id, key), value)| {
                key.as_slice() == EXISTS && value.is_some() && id.application == *application
            })
            .count() as u64;
        let held = self.store.census.count(application);
        if held + making < limit || self.object(object).exists() {
            return Ok(());
        }
        Err(Abort::Failed(TxError::Limit {
            limit: "--app-max-lambda-objects".into(),
            value: limit,
            detail: format!(
                "the constructor of {object} would make a new lambda object: application \
                 `{application}` is at its quota of lambda objects on this node (other \
                 applications are not affected)"
            ),
        }))
    }

    /// Deletes `key` of `object`.
    pub fn delete(&mut self, object: &ObjectId, key: &[u8]) -> Result<(), Abort> {
        self.check()?;
        self.writes.insert((object.clone(), key.to_vec()), None);
        Ok(())
    }

    /// The entries of `object` in `[from, to)` (`to`: `None` for the end), in
    /// key order, with this transaction's own writes applied.
    pub fn scan(
        &mut self,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, Abort> {
        self.check()?;
        let (seen, stored) = self.object(object).scan(from, to);
        for seen in seen {
            self.record(seen)?;
        }
        Ok(with_writes(stored, &self.writes, object, from, to))
    }

    /// Whether it writes anything.
    pub fn writes_nothing(&self) -> bool {
        self.writes.is_empty()
    }

    /// A commit number taken now, from this node's clock (a read-only
    /// transaction that spans nodes takes its number once every read is
    /// done and before any is checked: see [`Transaction::commit_read_only`]).
    pub fn number_now(&self) -> u64 {
        self.store.tick()
    }

    /// Commits a transaction that writes nothing as number `tid`, taken
    /// with [`Transaction::number_now`] after its last read: its reads are
    /// validated here (and were on the other nodes it read), so it is
    /// serialized at `tid`, within its execution, before any later writer
    /// of what it read. Its reply, if any, is stored as a commit's.
    pub fn commit_read_only(self, tid: u64) -> Result<(u64, Option<Durably>, Writes), Abort> {
        debug_assert!(self.writes.is_empty(), "a read-only commit with writes");
        let mut prepared = self.prepare()?;
        prepared.tid = tid;
        let (durably, writes) = prepared.commit();
        Ok((tid, durably, writes))
    }

    /// The end of a part of a transaction that writes nothing anywhere
    /// (`TxnOp::Validate`): every set it read is still at the version read,
    /// not retired and not locked. Takes no lock and no number; dropping
    /// the transaction afterwards releases its read pins.
    pub fn validate_reads(&self) -> Result<(), Abort> {
        self.check()?;
        if self.store.skips_validation() {
            return Ok(());
        }
        for (set, version) in &self.reads {
            if !set.still(*version, false) {
                set.conflicted();
                return Err(Abort::Conflict);
            }
        }
        Ok(())
    }

    /// Installs writes in memory only, as a commit of its own (locks, a new
    /// version, unlock): any transaction that read the values they replace
    /// fails its validation and runs again.
    fn install_in_memory(mut self) -> Result<u64, Abort> {
        // Commits only hold locks for a moment: wait for them. A reader's
        // pin does not hold this install back (the reader runs again).
        self.stance = Stance::Insist;
        let mut attempts = 0;
        let locked = loop {
            match self.lock_write_sets() {
                Ok(locked) => break locked,
                Err(Abort::Conflict) if attempts < 10_000 => {
                    attempts += 1;
                    std::thread::yield_now();
                }
                Err(abort) => return Err(abort),
            }
        };
        let tid = self.store.tick();
        let writes = std::mem::take(&mut self.writes);
        for ((id, key), value) in &writes {
            self.store
                .install_into(id, &self.objects[id], [(key.as_slice(), value)]);
        }
        for lock in &locked {
            lock.set.unlock(tid);
        }
        Ok(tid)
    }

    /// Commits: returns the commit's number (its place in the serial order),
    /// or why it aborted (nothing written then).
    #[cfg(test)]
    pub fn commit(self) -> Result<u64, Abort> {
        self.commit_durably().map(|(tid, _, _)| tid)
    }

    /// Commits, and on a store with a data directory queues the writes for
    /// the disk before the entry sets are unlocked (so commits of one set
    /// reach the disk in their order); the ticket says when they are durable,
    /// and the workflow's reply must wait for it. One node's commit: prepare,
    /// then commit.
    pub fn commit_durably(self) -> Result<(u64, Option<Durably>, Writes), Abort> {
        let prepared = self.prepare()?;
        let tid = prepared.tid();
        let (durably, writes) = prepared.commit();
        Ok((tid, durably, writes))
    }

    /// The first step of a commit: locks the entry sets of every written key,
    /// takes the commit's number and validates every read. From here on the
    /// transaction cannot conflict: it must be [committed](Prepared::commit)
    /// or [aborted](Prepared::abort) (dropping it aborts). A store that cannot
    /// write refuses here, before anything is locked.
    pub fn prepare(self) -> Result<Prepared, Abort> {
        self.prepare_with(Reads::Validate)
    }

    /// The first step of a commit that spans nodes: [`Transaction::prepare`],
    /// and every set read (and not written) is also pinned until the commit
    /// or abort, so that no writer changes it before the outcome is known on
    /// every participant (see `txn/participant.rs`).
    pub fn prepare_pinned(self) -> Result<Prepared, Abort> {
        self.prepare_with(Reads::Pin)
    }

    /// Restores a part prepared on a node that crashed (`txn/participant.rs`):
    /// locks the sets it writes and pins those it read where it can, without
    /// validating (it was validated where it prepared; a set it cannot pin
    /// is held by another restored part, which can only be one already
    /// decided whose copy had not been dropped yet).
    pub fn prepare_restored(self) -> Result<Prepared, Abort> {
        self.prepare_with(Reads::PinWherePossible)
    }

    fn prepare_with(self, reads: Reads) -> Result<Prepared, Abort> {
        if reads != Reads::PinWherePossible {
            // A restored part installs what was decided elsewhere: neither
            // its deadline nor this disk's health may refuse it here.
            self.check()?;
            if let (Some(storage), false) = (&self.store.storage, self.writes.is_empty()) {
                storage.writable().map_err(Abort::NotDurable)?;
            }
        }
        let mut txn = self;
        let locked = txn.lock_write_sets()?;
        let tid = txn.store.tick();
        // Reading pins end here: a prepared transaction holds prepared
        // pins (taken, and the read checked, before the reading pin goes).
        let reading: Vec<Arc<EntrySet>> = std::mem::take(&mut txn.pinned);
        let mut pinned: Vec<Arc<EntrySet>> = Vec::new();
        let skip = txn.store.skips_validation();
        for (set, version) in &txn.reads {
            let mine = locked.iter().any(|l| Arc::ptr_eq(&l.set, set));
            let holds = match (reads, skip) {
                (Reads::PinWherePossible, _) => {
                    if !mine && set.pin(*version) {
                        pinned.push(Arc::clone(set));
                    }
                    true
                }
                (_, true) => true,
                (Reads::Pin, false) if !mine => {
                    let pinned_now = set.pin(*version);
                    if pinned_now {
                        pinned.push(Arc::clone(set));
                    }
                    pinned_now
                }
                (_, false) => set.still(*version, mine),
            };
            if !holds {
                set.conflicted();
                unlock(&locked);
                unpin(&pinned);
                unpin_reading(&reading);
                return Err(Abort::Conflict);
            }
        }
        unpin_reading(&reading);
        Ok(Prepared {
            txn,
            settles: Vec::new(),
            locked,
            pinned,
            tid,
            done: false,
        })
    }

    /// Locks the entry sets of every written key, in the order of their
    /// addresses; a set split meanwhile is looked up again. Gives up with a
    /// conflict if another commit keeps one locked.
    fn lock_write_sets(&mut self) -> Result<Vec<Locked>, Abort> {
        'resolve: loop {
            let mut wanted: Vec<Locked> = Vec::new();
            for (id, key) in self.writes.keys() {
                let object = Arc::clone(
                    self.objects
                        .entry(id.clone())
                        .or_insert_with(|| self.store.object(id)),
                );
                let set = object.set_for(key);
                if !wanted.iter().any(|w| Arc::ptr_eq(&w.set, &set)) {
                    wanted.push(Locked {
                        set,
                        object,
                        first_key: key.clone(),
                    });
                }
            }
            wanted.sort_by_key(|w| Arc::as_ptr(&w.set) as usize);
            // A set this transaction pinned when it read it is unpinned
            // before it locks it (its own pin would keep it out); a writer
            // that gets in between changes the version, which validation
            // sees.
            self.pinned.retain(|p| {
                let written = wanted.iter().any(|w| Arc::ptr_eq(&w.set, p));
                if written {
                    p.unpin_reading();
                }
                !written
            });
            let insisting = self.stance == Stance::Insist;
            let mut locked = Vec::with_capacity(wanted.len());
            for w in wanted {
                match lock_patiently(&w.set, insisting) {
                    Locking::Locked => locked.push(w),
                    Locking::Retired => {
                        unlock(&locked);
                        continue 'resolve;
                    }
                    Locking::Busy => {
                        w.set.conflicted();
                        unlock(&locked);
                        return Err(Abort::Conflict);
                    }
                }
            }
            return Ok(locked);
        }
    }
}

/// What a prepare does with the sets a transaction read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Checks each is still at the version read (a one-node commit).
    Validate,
    /// Pins each (checking the version), or fails (a participant's part).
    Pin,
    /// Pins each it can, checks nothing (a restored part).
    PinWherePossible,
}

/// A transaction between its prepare and its commit or abort: its write
/// sets locked, its number taken, its reads valid.
pub struct Prepared {
    txn: Transaction,
    /// The keys of the parts on disk this commit decides (deleted with its
    /// writes).
    settles: Vec<[u8; 16]>,
    locked: Vec<Locked>,
    /// Sets read and pinned (a participant's prepare).
    pinned: Vec<Arc<EntrySet>>,
    tid: u64,
    /// Committed or aborted (the locks are released).
    done: bool,
}

impl Prepared {
    /// The commit's number: its place in the serial order.
    pub fn tid(&self) -> u64 {
        self.tid
    }

    /// The second step: installs the writes, queues them for the disk (on a
    /// store with a data directory) while the sets are still locked, and
    /// unlocks them at the commit's number, splitting the sets that saw
    /// conflicts. Returns the writes' way to the disk, if they take one, and
    /// the writes (for the replicas).
    pub fn commit(mut self) -> (Option<Durably>, Writes) {
        self.install()
    }

    /// The second step of a commit that spans nodes, numbered `tid` (the
    /// largest number any participant proposed, never below this one's):
    /// the clock moves past it first, so every later commit here that
    /// touches these sets is numbered above it.
    pub fn commit_at(mut self, tid: u64) -> (Option<Durably>, Writes) {
        self.txn.store.observe(tid);
        self.tid = self.tid.max(tid);
        self.install()
    }

    /// Its commit also deletes the prepared part stored on disk under `key`
    /// (in the same atomic write).
    pub fn settling(&mut self, key: [u8; 16]) {
        self.settles.push(key);
    }

    /// Replaces what it writes with `writes` (keys of the sets it locked):
    /// parts restored together keep their sets under one lock, and install
    /// the writes of those that committed.
    pub fn replace_writes(&mut self, writes: BTreeMap<Key, Option<Bytes>>) {
        self.txn.writes = writes;
    }

    /// What it writes.
    pub fn writes(&self) -> impl Iterator<Item = (&Key, &Option<Bytes>)> {
        self.txn.writes.iter()
    }

    /// Replaces the value this prepared transaction writes to `key` of
    /// `object`, a key it already writes (its set is locked): a manager
    /// records the decision, known only once every participant voted, in
    /// the entry it locked at its prepare. `false`: it does not write it.
    pub fn rewrite(&mut self, object: &ObjectId, key: &[u8], value: Bytes) -> bool {
        match self.txn.writes.get_mut(&(object.clone(), key.to_vec())) {
            Some(slot) => {
                *slot = Some(value);
                true
            }
            None => false,
        }
    }

    fn install(&mut self) -> (Option<Durably>, Writes) {
        let writes = std::mem::take(&mut self.txn.writes);
        let mut by_object: BTreeMap<&ObjectId, ObjectWrites<'_>> = BTreeMap::new();
        for ((id, key), value) in &writes {
            by_object
                .entry(id)
                .or_default()
                .push((key.as_slice(), value));
        }
        for (id, object_writes) in by_object {
            self.txn
                .store
                .install_into(id, &self.txn.objects[id], object_writes);
        }
        let settles = std::mem::take(&mut self.settles);
        let durable = match &self.txn.store.storage {
            Some(storage) if !writes.is_empty() || !settles.is_empty() => Some(Durably {
                ticket: storage
                    .save_entries(
                        writes
                            .iter()
                            .map(|((id, key), value)| (id, key.as_slice(), value.as_deref())),
                        self.txn.reply.as_ref().map(|(c, r, o)| (*c, *r, o)),
                        settles,
                    )
                    .ticket,
                written: writes.keys().cloned().collect(),
            }),
            _ => None,
        };
        let tid = self.tid;
        let unreplicated = &self.txn.store.unreplicated;
        if !writes.is_empty() && unreplicated.on.load(Ordering::Acquire) {
            // Before the unlock: a reader of these writes finds them pending.
            unreplicated
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(tid);
        }
        for lock in &self.locked {
            let split = lock.set.contended() && lock.object.split(&lock.set, &lock.first_key, tid);
            if !split {
                lock.set.unlock(tid);
            }
        }
        unpin(&self.pinned);
        self.done = true;
        (durable, writes.into_iter().collect())
    }

    /// The other second step: releases the locks, writes nothing. The
    /// versions stay as they were, so readers are not disturbed. (A node
    /// commits its own workflows at once; the participant of a commit across
    /// nodes is the one that aborts after preparing.)
    #[allow(dead_code)] // used by tests until commits span nodes
    pub fn abort(mut self) {
        unlock(&self.locked);
        unpin(&self.pinned);
        self.done = true;
    }
}

impl Drop for Prepared {
    /// A prepared transaction neither committed nor aborted (a panic between
    /// the steps) is aborted: its locks must not outlive it.
    fn drop(&mut self) {
        if !self.done {
            unlock(&self.locked);
            unpin(&self.pinned);
        }
    }
}

/// A write set locked for a commit.
struct Locked {
    set: Arc<EntrySet>,
    object: Arc<LambdaObject>,
    /// The smallest key the transaction writes in it (where a split goes).
    first_key: Vec<u8>,
}

/// Unlocks sets at their unchanged versions (an aborted commit).
fn unlock(locked: &[Locked]) {
    for l in locked {
        l.set.unlock(l.set.version());
    }
}

/// `stored`, the entries of `object` in `[from, to)`, with the buffered
/// `writes` among them applied: what a transaction's scan returns.
pub fn with_writes(
    stored: Vec<(Vec<u8>, Bytes)>,
    writes: &BTreeMap<Key, Option<Bytes>>,
    object: &ObjectId,
    from: &[u8],
    to: Option<&[u8]>,
) -> Vec<(Vec<u8>, Bytes)> {
    let mut merged: BTreeMap<Vec<u8>, Bytes> = stored.into_iter().collect();
    let in_range = |k: &[u8]| k >= from && to.is_none_or(|to| k < to);
    for ((id, key), value) in writes {
        if id == object && in_range(key) {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
    }
    merged.into_iter().collect()
}

/// Releases the pins of a prepared reader.
fn unpin_reading(pinned: &[Arc<EntrySet>]) {
    for set in pinned {
        set.unpin_reading();
    }
}

fn unpin(pinned: &[Arc<EntrySet>]) {
    for set in pinned {
        set.unpin();
    }
}

/// A lock is held only while a commit validates and installs: spin a little,
/// then yield, then give up.
fn lock_patiently(set: &EntrySet, insisting: bool) -> Locking {
    for attempt in 0..200 {
        match set.try_lock(insisting) {
            Locking::Busy if attempt < 50 => std::hint::spin_loop(),
            Locking::Busy => std::thread::yield_now(),
            other => return other,
        }
    }
    Locking::Busy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: &str) -> ObjectId {
        ObjectId::new("test", "Thing", key)
    }

    fn bytes(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn writes_are_seen_by_their_transaction_and_by_later_ones() {
        let store = Arc::new(Store::default());
        let mut t = store.begin(None);
        assert_eq!(t.get(&id("a"), b"k").unwrap(), None);
        t.put(&id("a"), b"k", bytes("1")).unwrap();
        assert_eq!(t.get(&id("a"), b"k").unwrap(), Some(bytes("1")));
        let first = t.commit().unwrap();
        let mut t = store.begin(None);
        assert_eq!(t.get(&id("a"), b"k").unwrap(), Some(bytes("1")));
        t.delete(&id("a"), b"k").unwrap();
        assert!(t.commit().unwrap() > first);
        assert_eq!(store.begin(None).get(&id("a"), b"k").unwrap(), None);
    }

    #[test]
    fn a_read_overwritten_before_the_commit_aborts_it_and_writes_nothing() {
        let store = Arc::new(Store::default());
        let mut t1 = store.begin(None);
        t1.get(&id("a"), b"x").unwrap();
        t1.put(&id("b"), b"y", bytes("from t1")).unwrap();
        let mut t2 = store.begin(None);
        t2.put(&id("a"), b"x", bytes("from t2")).unwrap();
        t2.commit().unwrap();
        assert_eq!(t1.commit(), Err(Abort::Conflict));
        assert_eq!(store.begin(None).get(&id("b"), b"y").unwrap(), None);
    }

    #[test]
    fn a_key_inserted_into_a_scanned_range_aborts_the_scanner() {
        let store = Arc::new(Store::default());
        let mut t1 = store.begin(None);
        assert!(t1.scan(&id("a"), b"m", Some(b"n")).unwrap().is_empty());
        t1.put(&id("b"), b"count", bytes("0")).unwrap();
        let mut t2 = store.begin(None);
        t2.put(&id("a"), b"mm", bytes("phantom")).unwrap();
        t2.commit().unwrap();
        assert_eq!(t1.commit(), Err(Abort::Conflict));
    }

    #[test]
    fn a_scan_sees_its_own_writes_in_key_order() {
        let store = Arc::new(Store::default());
        let mut t = store.begin(None);
        t.put(&id("a"), b"b", bytes("2")).unwrap();
        t.commit().unwrap();
        let mut t = store.begin(None);
        t.put(&id("a"), b"a", bytes("1")).unwrap();
        t.put(&id("a"), b"c", bytes("3")).unwrap();
        t.delete(&id("a"), b"b").unwrap();
        let keys: Vec<Vec<u8>> = t
            .scan(&id("a"), b"", None)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, [b"a".to_vec(), b"c".to_vec()]);
    }

    /// Two transactions that read and write different keys of one object.
    fn disjoint_writers(store: &Arc<Store>) -> (Result<u64, Abort>, Result<u64, Abort>) {
        let (mut t1, mut t2) = (store.begin(None), store.begin(None));
        let map = id("map");
        t1.get(&map, b"apple").unwrap();
        t2.get(&map, b"zebra").unwrap();
        t1.put(&map, b"apple", bytes("1")).unwrap();
        t2.put(&map, b"zebra", bytes("2")).unwrap();
        (t1.commit(), t2.commit())
    }

    #[test]
    fn disjoint_keys_conflict_in_one_entry_set_and_not_once_it_split() {
        let store = Arc::new(Store::default());
        let map = id("map");
        // One entry set: the second commit sees the first's new version.
        let (first, second) = disjoint_writers(&store);
        assert!(first.is_ok());
        assert_eq!(second, Err(Abort::Conflict));
        assert_eq!(store.object(&map).sets(), 1);
        // The conflicted set splits at the next key written into it.
        let mut t = store.begin(None);
        t.put(&map, b"zebra", bytes("2")).unwrap();
        t.commit().unwrap();
        assert_eq!(store.object(&map).sets(), 2);
        let (first, second) = disjoint_writers(&store);
        assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
        // The same key still conflicts.
        let (mut t1, mut t2) = (store.begin(None), store.begin(None));
        t1.get(&map, b"zebra").unwrap();
        t2.get(&map, b"zebra").unwrap();
        t1.put(&map, b"zebra", bytes("3")).unwrap();
        t2.put(&map, b"zebra", bytes("4")).unwrap();
        assert!(t1.commit().is_ok());
        assert_eq!(t2.commit(), Err(Abort::Conflict));
    }

    #[test]
    fn a_transaction_that_read_a_set_split_after_its_read_aborts() {
        let store = Arc::new(Store::default());
        let map = id("map");
        let mut reader = store.begin(None);
        reader.get(&map, b"apple").unwrap();
        reader.put(&id("other"), b"k", bytes("1")).unwrap();
        let set = store.object(&map).set_for(b"apple");
        set.conflicted();
        let mut writer = store.begin(None);
        writer.put(&map, b"mango", bytes("1")).unwrap();
        writer.commit().unwrap();
        assert_eq!(store.object(&map).sets(), 2, "split at mango");
        assert_eq!(reader.commit(), Err(Abort::Conflict));
    }

    #[test]
    fn a_prepared_transaction_holds_its_sets_until_it_commits() {
        let store = Arc::new(Store::default());
        let mut t = store.begin(None);
        t.put(&id("a"), b"k", bytes("1")).unwrap();
        let prepared = t.prepare().unwrap();
        // A writer of the same set cannot prepare meanwhile.
        let mut other = store.begin(None);
        other.put(&id("a"), b"k", bytes("2")).unwrap();
        assert_eq!(other.prepare().err(), Some(Abort::Conflict));
        // Nothing is visible before the commit; then everything is.
        assert_eq!(store.peek(&id("a"), b"k"), None);
        let tid = prepared.tid();
        assert!(
            prepared.commit().0.is_none(),
            "no data directory, no disk write"
        );
        assert_eq!(store.peek(&id("a"), b"k"), Some(bytes("1")));
        let mut later = store.begin(None);
        later.put(&id("a"), b"k", bytes("3")).unwrap();
        assert!(later.commit().unwrap() > tid);
    }

    #[test]
    fn an_aborted_prepare_writes_nothing_and_disturbs_no_reader() {
        let store = Arc::new(Store::default());
        let mut setup = store.begin(None);
        setup.put(&id("a"), b"k", bytes("0")).unwrap();
        setup.commit().unwrap();
        let mut reader = store.begin(None);
        assert_eq!(reader.get(&id("a"), b"k").unwrap(), Some(bytes("0")));
        let mut t = store.begin(None);
        t.put(&id("a"), b"k", bytes("1")).unwrap();
        t.prepare().unwrap().abort();
        assert_eq!(store.peek(&id("a"), b"k"), Some(bytes("0")));
        // The version did not move: the reader still validates.
        reader.put(&id("b"), b"k", bytes("x")).unwrap();
        reader.commit().expect("the read is still valid");
        // And the set is free again.
        let mut again = store.begin(None);
        again.put(&id("a"), b"k", bytes("2")).unwrap();
        again.commit().unwrap();
        assert_eq!(store.peek(&id("a"), b"k"), Some(bytes("2")));
    }

    #[test]
    fn a_prepare_fails_on_a_read_overwritten_since_and_a_dropped_prepare_unlocks() {
        let store = Arc::new(Store::default());
        let mut reader = store.begin(None);
        assert_eq!(reader.get(&id("a"), b"k").unwrap(), None);
        reader.put(&id("b"), b"k", bytes("from the read")).unwrap();
        let mut writer = store.begin(None);
        writer.put(&id("a"), b"k", bytes("1")).unwrap();
        writer.commit().unwrap();
        assert_eq!(reader.prepare().err(), Some(Abort::Conflict));
        // Neither committed nor aborted: dropping it releases its locks.
        let mut t = store.begin(None);
        t.put(&id("c"), b"k", bytes("1")).unwrap();
        drop(t.prepare().unwrap());
        let mut after = store.begin(None);
        after.put(&id("c"), b"k", bytes("2")).unwrap();
        after.commit().expect("the set was unlocked");
    }

    #[test]
    fn the_node_clock_numbers_commits_in_order_and_after_what_it_observed() {
        let clock = Counter::default();
        let first = clock.tick();
        assert!(clock.tick() > first);
        assert!(clock.now() > first);
        let ahead = clock.now() + 1_000_000_000_000;
        clock.observe(ahead);
        assert_eq!(clock.tick(), ahead + 1, "above a number another node gave");
        let behind = Counter::default();
        let before = wall_ns();
        assert!(behind.tick() >= before, "a wall-clock time");
    }
}
