//! A node's part in workflows managed by other nodes: for each such
//! transaction, the reads and buffered writes it made here, then its
//! prepared state until the manager's decision.
//!
//! The commit across nodes is two-phase commit over each node's optimistic
//! concurrency control:
//!
//! 1. *Prepare*, on every participant: lock the sets written here, take a
//!    number from this node's clock, validate every read made here, and
//!    *pin* the sets read (a pinned set cannot be locked by a writer until
//!    the outcome; [`EntrySet::pin`](super::entry_set::EntrySet::pin)). The
//!    vote is the number, or an abort.
//! 2. *Commit* at the largest number proposed (`T`), on every participant:
//!    move the clock past `T`, install at `T`, unlock, unpin. Or *abort*:
//!    unlock and unpin, nothing written.
//!
//! Why this is strictly serializable. Between the moment its last
//! participant prepared and the moment its first participant applied the
//! outcome, a transaction holds, on every node at once, the lock of each set
//! it writes and a pin on each set it reads, each still at the version it
//! read. Call any instant of that window its *lock point*. Two conflicting
//! transactions cannot both hold their sets at the same instant (a lock
//! excludes a lock and a pin), and whichever goes first changed or read the
//! set before the other took it, so conflicts order transactions as their
//! lock points do; the lock point lies between a transaction's start and
//! its reply, so that order also respects real time. A commit on one node
//! without 2PC (Silo's: lock, number, validate, install) has its lock point
//! at its number, and mixes with these the same way. The commit numbers
//! follow the lock points wherever transactions conflict: the participant
//! that applies `T1` first moves its clock past `T1`, and a later writer or
//! reader of what `T1` touched there takes its number after that. Between
//! transactions that share no node, numbers follow real time only as far as
//! the nodes' wall clocks agree (the clock is hybrid, `Counter`); the
//! history checkers run on one machine and check both.
//!
//! A transaction's parts here are dropped when its deadline passes before it
//! prepared (a manager that crashed mid-workflow). A prepared part stays
//! until the decision arrives: that is the price of two-phase commit. A part
//! that waited too long asks the owner of the decision's record
//! (`txn/decision.rs`), which answers even if the manager crashed.

use super::transaction::{Abort, Durably, Prepared, Stance, Store, Transaction, Writes};
use bytes::Bytes;
use crucial::ObjectId;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A transaction's identity across nodes: the node that manages it (the
/// node its workflow's root runs on) and a number unique there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId {
    /// The manager's node id.
    pub manager: u64,
    /// Unique among the manager's transactions.
    pub seq: u64,
}

/// Which transaction a read on another node belongs to, and how it reads.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// The transaction.
    pub txn: TxnId,
    /// Its part there is dropped if not prepared by then.
    pub deadline: Instant,
    /// How it meets contention ([`Stance`]): the part here does the same.
    pub stance: Stance,
}

/// What happened to a transaction here, remembered for a while so that a
/// repeated message gets the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at this number.
    Committed(u64),
    /// Aborted (by its manager, its deadline, or a failed prepare).
    Aborted,
}

/// How many outcomes are remembered.
const REMEMBERED: usize = 65_536;

enum Stage {
    /// Reading and writing: nothing locked yet.
    Running(Transaction),
    /// Locked, pinned, numbered: waits for the decision.
    Prepared(Prepared),
    /// Restored from a copy, with the other parts restored with it (one per
    /// home copy it was in): waits for the decision.
    Restored(Vec<Arc<Mutex<Group>>>),
}

/// Parts restored together, from the copies a node took over or from its
/// disk: their sets are held under one lock. Two live parts never held a
/// set against each other where they prepared, but here the sets may be
/// cut differently (a node's objects start with few sets), and a copy of a
/// part that ended may be among them: restored one by one they could refuse
/// each other. The group installs, once every member is decided, the writes
/// of those that committed.
pub struct Group {
    prepared: Option<Prepared>,
    members: BTreeMap<TxnId, Member>,
}

struct Member {
    writes: Writes,
    outcome: Option<Outcome>,
    /// Its key on this node's disk, if it was restored from there.
    disk_key: Option<[u8; 16]>,
}

impl Group {
    /// Records `txn`'s outcome; once every member has one: what the group
    /// installed (the writes of the members that committed, at the largest
    /// number), and the disk keys of members whose records go on their own.
    fn decide(&mut self, txn: TxnId, outcome: Outcome) -> (Option<Installed>, Vec<[u8; 16]>) {
        if let Some(member) = self.members.get_mut(&txn) {
            member.outcome = Some(outcome);
        }
        if self.members.values().any(|m| m.outcome.is_none()) {
            return (None, Vec::new());
        }
        let Some(mut prepared) = self.prepared.take() else {
            return (None, Vec::new());
        };
        let mut committed: Vec<(u64, &Member)> = self
            .members
            .values()
            .filter_map(|m| match m.outcome {
                Some(Outcome::Committed(tid)) => Some((tid, m)),
                _ => None,
            })
            .collect();
        committed.sort_by_key(|(tid, _)| *tid);
        let mut forget = Vec::new();
        let Some(&(last, _)) = committed.last() else {
            prepared.abort();
            forget.extend(self.members.values().filter_map(|m| m.disk_key));
            return (None, forget);
        };
        let mut writes = BTreeMap::new();
        for (_, member) in &committed {
            for (key, value) in &member.writes {
                writes.insert(key.clone(), value.clone());
            }
        }
        for member in self.members.values() {
            match (member.outcome, member.disk_key) {
                (Some(Outcome::Committed(_)), Some(key)) => prepared.settling(key),
                (_, Some(key)) => forget.push(key),
                _ => {}
            }
        }
        prepared.replace_writes(writes);
        let at = prepared.tid().max(last);
        let (durably, writes) = prepared.commit_at(last);
        (Some((at, durably, writes)), forget)
    }
}

struct Part {
    stage: Stage,
    deadline: Instant,
    /// Once prepared: where the decision is recorded, and since when the
    /// part waits for it.
    waits: Option<(ObjectId, Instant)>,
    /// What it read, as key ranges (a replica restoring it pins them).
    reads: Vec<Read>,
}

impl Part {
    fn running(transaction: Transaction, deadline: Instant) -> Part {
        Part {
            stage: Stage::Running(transaction),
            deadline,
            waits: None,
            reads: Vec::new(),
        }
    }
}

/// What a part read: the keys of `object` in `[from, to)` (`to`: `None`
/// for the end). A read of one key `k` is `[k, k 0)`.
pub type Read = (ObjectId, Vec<u8>, Option<Vec<u8>>);

/// The range of one key.
pub fn one_key(object: &ObjectId, key: &[u8]) -> Read {
    let mut after = key.to_vec();
    after.push(0);
    (object.clone(), key.to_vec(), Some(after))
}

/// A prepared part, as the replicas of its homes keep it: restored on the
/// one that takes a home over, locked and pinned again, until its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct PartCopy {
    /// The transaction.
    pub txn: TxnId,
    /// Where its decision is recorded.
    pub anchor: ObjectId,
    /// The number this part proposed.
    pub proposed: u64,
    /// Its writes.
    pub writes: Writes,
    /// Its reads.
    pub reads: Vec<Read>,
}

/// This node's parts of transactions managed elsewhere.
pub struct Participant {
    store: Arc<Store>,
    parts: Mutex<HashMap<TxnId, Arc<Mutex<Option<Part>>>>>,
    ended: Mutex<(HashMap<TxnId, Outcome>, VecDeque<TxnId>)>,
    /// What the caller keeps alive while a part lives (the cluster's guards
    /// that keep the part's objects on this node).
    held: Mutex<HashMap<TxnId, Vec<Held>>>,
    /// Decision records of transactions this node managed whose every
    /// participant acknowledged the commit: to delete (`txn/decision.rs`).
    forgettable: Mutex<Vec<(ObjectId, Vec<u8>)>>,
    /// Prepared parts copied to the replicas of these homes...
    copied: Mutex<HashMap<TxnId, Vec<String>>>,
    /// ...whose outcome is known: their copies can be dropped.
    settled: Mutex<Vec<(String, TxnId)>>,
    /// Prepared parts stored on this node's disk.
    stored: Mutex<std::collections::HashSet<TxnId>>,
    /// This node's own writes to its homes other than a workflow's root's,
    /// kept on those homes' replicas as prepared parts until the commit's
    /// copies are there (listed in complete copies meanwhile).
    kept: Mutex<HashMap<TxnId, PartCopy>>,
}

/// A piece of a part installed: its number, its way to the disk, its
/// writes.
pub type Installed = (u64, Option<Durably>, Writes);

/// Something kept alive with a part.
pub type Held = Box<dyn Send + Sync>;

impl Participant {
    /// Parts of transactions over `store`'s objects.
    pub fn new(store: Arc<Store>) -> Participant {
        Participant {
            store,
            parts: Mutex::default(),
            ended: Mutex::default(),
            held: Mutex::default(),
            forgettable: Mutex::default(),
            copied: Mutex::default(),
            settled: Mutex::default(),
            stored: Mutex::default(),
            kept: Mutex::default(),
        }
    }

    /// A commit managed here keeps `part` (its writes to homes other than
    /// its root's) on their replicas: listed in their complete copies until
    /// [`Participant::unkeep`].
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the peer reach's (feature "cluster")
    pub fn keep(&self, part: PartCopy) {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(part.txn, part);
    }

    /// The commit's copies are on the replicas of `homes`: the kept part's
    /// copies there can go.
    pub fn unkeep(&self, txn: TxnId, homes: &[String]) {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&txn);
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(homes.iter().map(|home| (home.clone(), txn)));
    }

    /// The key a prepared part is stored under on disk.
    pub fn disk_key(txn: TxnId) -> [u8; 16] {
        let mut key = [0; 16];
        key[..8].copy_from_slice(&txn.manager.to_be_bytes());
        key[8..].copy_from_slice(&txn.seq.to_be_bytes());
        key
    }

    /// `txn`'s prepared part is on this node's disk: its commit deletes it
    /// with its writes, its abort after.
    pub fn stored(&self, txn: TxnId) {
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(txn);
        if let Some(Outcome::Aborted) = self.outcome(txn) {
            self.unstore_aborted(txn);
        }
    }

    fn unstore_aborted(&self, txn: TxnId) {
        let was = self
            .stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&txn);
        if was {
            self.store.forget_prepared(Self::disk_key(txn));
        }
    }

    /// `txn`'s prepared part here was copied to the replicas of `homes`.
    pub fn copied(&self, txn: TxnId, homes: Vec<String>) {
        self.copied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(txn, homes);
        // It may have aborted meanwhile (it cannot have committed: it has
        // not voted yet).
        if let Some(Outcome::Aborted) = self.outcome(txn) {
            self.settle(txn);
        }
    }

    /// `txn` committed here and its writes are on this node's replicas: the
    /// copies of its prepared part can go. (Not before: a replica that
    /// dropped the copy without the writes would lose them on a failover.)
    pub fn settle(&self, txn: TxnId) {
        let homes = self
            .copied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&txn);
        if let Some(homes) = homes {
            self.settled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(homes.into_iter().map(|home| (home, txn)));
        }
    }

    /// The homes whose replicas keep copies of parts that ended, with the
    /// transactions, taken: the copies can be dropped there.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn take_settled(&self) -> Vec<(String, TxnId)> {
        std::mem::take(&mut *self.settled.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `txn`'s part here as its replicas keep it, if it is prepared.
    pub fn copy(&self, txn: TxnId) -> Option<PartCopy> {
        let part = self.part(txn)?;
        let slot = part.lock().unwrap_or_else(|e| e.into_inner());
        let part = slot.as_ref()?;
        let (Stage::Prepared(prepared), Some((anchor, _))) = (&part.stage, &part.waits) else {
            return None;
        };
        Some(PartCopy {
            txn,
            anchor: anchor.clone(),
            proposed: prepared.tid(),
            writes: prepared
                .writes()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            reads: part.reads.clone(),
        })
    }

    /// Every part prepared here, and every part kept by a commit managed
    /// here, as their replicas keep them.
    pub fn copies(&self) -> Vec<PartCopy> {
        let txns: Vec<TxnId> = self.all_parts().into_iter().map(|(txn, _)| txn).collect();
        let mut copies: Vec<PartCopy> = txns.into_iter().filter_map(|txn| self.copy(txn)).collect();
        copies.extend(
            self.kept
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned(),
        );
        copies
    }

    /// Restores parts prepared on a node that crashed (or on this node
    /// before it restarted), from the copies its home's replica (this node)
    /// or its disk (`stored`) kept: their reads are pinned and their writes
    /// locked again, under one lock ([`Group`]), and they ask for their
    /// outcome at once. Call it before the objects serve anything. Parts
    /// decided here already are left out.
    pub fn restore_all(&self, copies: Vec<PartCopy>, stored: bool) -> Result<usize, Abort> {
        let copies: Vec<PartCopy> = copies
            .into_iter()
            .filter(|copy| self.outcome(copy.txn).is_none())
            .collect();
        if copies.is_empty() {
            return Ok(0);
        }
        let mut t = self.store.begin(None);
        let mut members = BTreeMap::new();
        for copy in &copies {
            for (object, from, to) in &copy.reads {
                t.scan(object, from, to.as_deref())?;
            }
            for ((object, key), value) in &copy.writes {
                match value {
                    Some(value) => t.put(object, key, value.clone())?,
                    None => t.delete(object, key)?,
                }
            }
            members.insert(
                copy.txn,
                Member {
                    writes: copy.writes.clone(),
                    outcome: None,
                    disk_key: stored.then(|| Self::disk_key(copy.txn)),
                },
            );
        }
        let group = Arc::new(Mutex::new(Group {
            prepared: Some(t.prepare_restored()?),
            members,
        }));
        let asked_long_ago = Instant::now()
            .checked_sub(std::time::Duration::from_secs(60))
            .unwrap_or_else(Instant::now);
        let restored = copies.len();
        let mut parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        for copy in copies {
            let part = parts
                .entry(copy.txn)
                .or_insert_with(|| Arc::new(Mutex::new(None)));
            let mut slot = part.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_mut() {
                Some(Part {
                    stage: Stage::Restored(groups),
                    ..
                }) => groups.push(Arc::clone(&group)),
                _ => {
                    *slot = Some(Part {
                        stage: Stage::Restored(vec![Arc::clone(&group)]),
                        deadline: Instant::now(),
                        waits: Some((copy.anchor, asked_long_ago)),
                        reads: copy.reads,
                    })
                }
            }
        }
        Ok(restored)
    }

    /// The transactions whose parts here were restored and wait.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn restored(&self) -> Vec<TxnId> {
        self.parts_where(|stage| matches!(stage, Stage::Restored(_)))
    }

    /// The transactions whose part here is at a stage `picks`.
    fn parts_where(&self, picks: impl Fn(&Stage) -> bool) -> Vec<TxnId> {
        self.all_parts()
            .into_iter()
            .filter(|(_, part)| {
                let slot = part.lock().unwrap_or_else(|e| e.into_inner());
                slot.as_ref().is_some_and(|part| picks(&part.stage))
            })
            .map(|(txn, _)| txn)
            .collect()
    }

    /// `txn`'s outcome for the groups of restored parts it is in: what they
    /// installed.
    fn decide_restored(
        &self,
        txn: TxnId,
        groups: &[Arc<Mutex<Group>>],
        outcome: Outcome,
    ) -> Vec<Installed> {
        let mut installed = Vec::new();
        for group in groups {
            let (done, forget) = group
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .decide(txn, outcome);
            installed.extend(done);
            for key in forget {
                self.store.forget_prepared(key);
            }
        }
        installed
    }

    /// The record of a transaction this node managed, which no participant
    /// will ask for again: deleted with the next ones
    /// ([`Participant::forgettable`]).
    pub fn forget(&self, record: (ObjectId, Vec<u8>)) {
        self.forgettable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// The records to delete, taken.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn forgettable(&self) -> Vec<(ObjectId, Vec<u8>)> {
        std::mem::take(&mut *self.forgettable.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The store the parts run on.
    #[cfg(test)]
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn part(&self, txn: TxnId) -> Option<Arc<Mutex<Option<Part>>>> {
        self.parts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&txn)
            .cloned()
    }

    /// Keeps `held` alive until `txn`'s part here ends (at once if it has).
    pub fn hold(&self, txn: TxnId, held: Held) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(txn)
            .or_default()
            .push(held);
        // The part may have ended meanwhile: `remember` records the outcome
        // before it releases, so one of the two sees the other.
        if self.outcome(txn).is_some() {
            self.release(txn);
        }
    }

    fn release(&self, txn: TxnId) {
        let released = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&txn);
        drop(released);
    }

    fn remember(&self, txn: TxnId, outcome: Outcome) {
        self.parts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&txn);
        {
            let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
            let (outcomes, order) = &mut *ended;
            if outcomes.insert(txn, outcome).is_none() {
                order.push_back(txn);
                if order.len() > REMEMBERED {
                    if let Some(oldest) = order.pop_front() {
                        outcomes.remove(&oldest);
                    }
                }
            }
        }
        self.release(txn);
        if outcome == Outcome::Aborted {
            self.settle(txn);
            self.unstore_aborted(txn);
        }
    }

    /// The outcome of `txn` here, if it ended and is remembered.
    pub fn outcome(&self, txn: TxnId) -> Option<Outcome> {
        self.ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(&txn)
            .copied()
    }

    /// Runs `access` in `txn`'s part here (begun at the first access, to end
    /// at `deadline`). A transaction that already prepared or ended here
    /// cannot read or write any more: a conflict (its manager re-executes).
    pub fn access<T>(
        &self,
        txn: TxnId,
        deadline: Instant,
        access: impl FnOnce(&mut Transaction) -> Result<T, Abort>,
    ) -> Result<T, Abort> {
        self.access_with(txn, deadline, Stance::Optimistic, access)
    }

    /// [`Participant::access`], the part meeting contention as `stance`
    /// says if it begins now.
    pub fn access_with<T>(
        &self,
        txn: TxnId,
        deadline: Instant,
        stance: Stance,
        access: impl FnOnce(&mut Transaction) -> Result<T, Abort>,
    ) -> Result<T, Abort> {
        self.access_reading(txn, deadline, stance, None, access)
    }

    /// [`Participant::access_with`] for a read of `read`, which the part
    /// remembers (it is pinned again where the part is restored).
    pub fn access_reading<T>(
        &self,
        txn: TxnId,
        deadline: Instant,
        stance: Stance,
        read: Option<Read>,
        access: impl FnOnce(&mut Transaction) -> Result<T, Abort>,
    ) -> Result<T, Abort> {
        if self.outcome(txn).is_some() {
            return Err(Abort::Conflict);
        }
        let part = {
            let mut parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(parts.entry(txn).or_insert_with(|| {
                let mut transaction = self.store.begin(Some(deadline));
                transaction.take_stance(stance);
                Arc::new(Mutex::new(Some(Part::running(transaction, deadline))))
            }))
        };
        let mut part = part.lock().unwrap_or_else(|e| e.into_inner());
        match part.as_mut() {
            Some(Part {
                stage: Stage::Running(transaction),
                reads,
                ..
            }) => {
                let value = access(transaction)?;
                reads.extend(read);
                Ok(value)
            }
            _ => Err(Abort::Conflict),
        }
    }

    /// The value of `key` in `object`, as `txn` sees it here.
    pub fn get(
        &self,
        access: Access,
        object: &crucial::ObjectId,
        key: &[u8],
    ) -> Result<Option<Bytes>, Abort> {
        let Access {
            txn,
            deadline,
            stance,
        } = access;
        let read = Some(one_key(object, key));
        self.access_reading(txn, deadline, stance, read, |t| t.get(object, key))
    }

    /// The entries of `object` in `[from, to)` as `txn` sees them here.
    pub fn scan(
        &self,
        access: Access,
        object: &crucial::ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, Abort> {
        let Access {
            txn,
            deadline,
            stance,
        } = access;
        let read = Some((object.clone(), from.to_vec(), to.map(<[u8]>::to_vec)));
        self.access_reading(txn, deadline, stance, read, |t| t.scan(object, from, to))
    }

    /// Phase one: adds `writes` (buffered by the manager) to `txn`'s part,
    /// then prepares it. The vote: the number proposed, or why not. A
    /// repeated prepare gets the same vote. A transaction unknown here is
    /// a no if it `reached` this node before (its part was lost: this node
    /// restarted, or took its objects over); else (it only wrote here, and
    /// the writes come now) it begins now. `anchor` holds the decision's
    /// record: a part that waits too long asks its owner.
    pub fn prepare(
        &self,
        txn: TxnId,
        deadline: Instant,
        anchor: &ObjectId,
        writes: Writes,
        reached: bool,
    ) -> Result<u64, Abort> {
        match self.outcome(txn) {
            Some(Outcome::Aborted) => return Err(Abort::Conflict),
            Some(Outcome::Committed(tid)) => return Ok(tid),
            None => {}
        }
        if reached && self.part(txn).is_none() {
            self.remember(txn, Outcome::Aborted);
            return Err(Abort::Conflict);
        }
        if !writes.is_empty() {
            self.access(txn, deadline, |t| {
                for ((object, key), value) in writes {
                    match value {
                        Some(value) => t.put(&object, &key, value)?,
                        None => t.delete(&object, &key)?,
                    }
                }
                Ok(())
            })?;
        }
        let Some(part) = self.part(txn) else {
            // Nothing read or written here: nothing to hold.
            return Ok(self.store.now());
        };
        let mut slot = part.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = slot.take() else {
            return Err(Abort::Conflict);
        };
        match current.stage {
            Stage::Prepared(prepared) => {
                let tid = prepared.tid();
                *slot = Some(Part {
                    stage: Stage::Prepared(prepared),
                    ..current
                });
                Ok(tid)
            }
            // Restored here: its manager never had this node's vote, and
            // aborts.
            Stage::Restored(groups) => {
                *slot = Some(Part {
                    stage: Stage::Restored(groups),
                    ..current
                });
                Err(Abort::Conflict)
            }
            Stage::Running(transaction) => match transaction.prepare_pinned() {
                Ok(prepared) => {
                    let tid = prepared.tid();
                    *slot = Some(Part {
                        stage: Stage::Prepared(prepared),
                        waits: Some((anchor.clone(), Instant::now())),
                        ..current
                    });
                    Ok(tid)
                }
                Err(abort) => {
                    drop(slot);
                    self.remember(txn, Outcome::Aborted);
                    Err(abort)
                }
            },
        }
    }

    /// Whether `txn`'s part here has writes (a child call or map instance
    /// answers it: a transaction that wrote nowhere ends with
    /// [`Participant::validate`]).
    pub fn wrote(&self, txn: TxnId) -> bool {
        let Some(part) = self.part(txn) else {
            return false;
        };
        let slot = part.lock().unwrap_or_else(|e| e.into_inner());
        !matches!(
            slot.as_ref(),
            Some(Part {
                stage: Stage::Running(transaction),
                ..
            }) if transaction.writes_nothing()
        )
    }

    /// The end of `txn`'s part here when the transaction wrote nothing
    /// anywhere: its reads still hold (versions unchanged, sets not
    /// locked), and the part is dropped with its pins and guards — no
    /// prepare, no record, no phase two. Strictly serializable because the
    /// manager asks only once every read of the transaction is done: each
    /// set read was unchanged from its read to its check here, and every
    /// read precedes every check, so all of them held at the earliest check
    /// (a commit that spans nodes keeps its sets locked from its prepare to
    /// its install, so a reader that saw it installed on one node and not
    /// on another finds the other locked or changed). Only for transactions
    /// that write nowhere: a reader whose reads are released before another
    /// part's writes are decided admits write skew (`participant.rs`'s
    /// pins exist for that). A repeated check gets the same answer.
    pub fn validate(&self, txn: TxnId) -> Result<(), Abort> {
        match self.outcome(txn) {
            Some(Outcome::Aborted) => return Err(Abort::Conflict),
            Some(Outcome::Committed(_)) => return Ok(()),
            None => {}
        }
        let Some(part) = self.part(txn) else {
            // It reached this node (the manager only asks those): its part
            // was lost (a restart, a takeover), and what it read with it.
            self.remember(txn, Outcome::Aborted);
            return Err(Abort::Conflict);
        };
        let mut slot = part.lock().unwrap_or_else(|e| e.into_inner());
        // Prepared or restored parts are not this check's to end.
        let Some(Part {
            stage: Stage::Running(transaction),
            ..
        }) = slot.as_ref()
        else {
            return Err(Abort::Conflict);
        };
        let checked = if transaction.writes_nothing() {
            transaction.validate_reads()
        } else {
            tracing::error!(
                ?txn,
                "a transaction that wrote here was asked to end as read-only: aborted"
            );
            Err(Abort::Conflict)
        };
        drop(slot.take());
        drop(slot);
        let outcome = match &checked {
            Ok(()) => Outcome::Committed(self.store.now()),
            Err(_) => Outcome::Aborted,
        };
        self.remember(txn, outcome);
        checked
    }

    /// Phase two, commit: installs `txn`'s writes here at `tid`. Returns,
    /// for each piece of the part (one, unless it was restored from the
    /// copies of several homes), the number it was installed at (`tid`, or
    /// above for a restored piece: this node's clock had passed it), its
    /// way to the disk (the manager's acknowledgement waits for it) and its
    /// writes (for this node's replicas). A repeated commit does nothing; a
    /// commit of a transaction that did not prepare here is refused (the
    /// manager never sends one).
    pub fn commit(&self, txn: TxnId, tid: u64) -> Result<Vec<Installed>, String> {
        if let Some(Outcome::Committed(_)) = self.outcome(txn) {
            return Ok(Vec::new());
        }
        let prepared = self.part(txn).and_then(|part| {
            let mut slot = part.lock().unwrap_or_else(|e| e.into_inner());
            match slot.take() {
                Some(Part {
                    stage: Stage::Prepared(prepared),
                    ..
                }) => Some(Ok(prepared)),
                Some(Part {
                    stage: Stage::Restored(groups),
                    ..
                }) => Some(Err(groups)),
                other => {
                    *slot = other;
                    None
                }
            }
        });
        let Some(prepared) = prepared else {
            return if self.outcome(txn).is_none() && self.part(txn).is_none() {
                // Prepared with nothing here (an empty part).
                self.store.observe(tid);
                self.remember(txn, Outcome::Committed(tid));
                Ok(Vec::new())
            } else {
                Err(format!("transaction {txn:?} is not prepared here"))
            };
        };
        let installed = match prepared {
            Ok(mut prepared) => {
                if self
                    .stored
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&txn)
                {
                    prepared.settling(Self::disk_key(txn));
                }
                let at = prepared.tid().max(tid);
                let (durably, writes) = prepared.commit_at(tid);
                vec![(at, durably, writes)]
            }
            Err(groups) => self.decide_restored(txn, &groups, Outcome::Committed(tid)),
        };
        self.remember(txn, Outcome::Committed(tid));
        Ok(installed)
    }

    /// Phase two, abort (or an execution its manager gave up): drops
    /// `txn`'s part here, unlocking and unpinning what it held. A restored
    /// part's group may install the parts restored with it that committed:
    /// what it installed (to make durable and copy, as a commit's).
    #[must_use = "a restored part's abort may install the others of its group"]
    pub fn abort(&self, txn: TxnId) -> Vec<Installed> {
        if let Some(Outcome::Committed(_)) = self.outcome(txn) {
            return Vec::new();
        }
        // An aborted part's record on disk is dropped before its sets are:
        // no part prepared on them later is on the disk before that.
        self.unstore_aborted(txn);
        let mut installed = Vec::new();
        if let Some(part) = self.part(txn) {
            let taken = part.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(Part {
                stage: Stage::Restored(groups),
                ..
            }) = taken
            {
                installed = self.decide_restored(txn, &groups, Outcome::Aborted);
            }
        }
        self.remember(txn, Outcome::Aborted);
        installed
    }

    /// Every part, each to be locked on its own.
    fn all_parts(&self) -> Vec<(TxnId, Arc<Mutex<Option<Part>>>)> {
        self.parts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, part)| (*id, Arc::clone(part)))
            .collect()
    }

    /// Drops the parts whose deadline passed before they prepared (their
    /// manager stopped sending); returns how many. Prepared parts stay.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn expire(&self, now: Instant) -> usize {
        let parts = self.all_parts();
        let mut expired = 0;
        for (txn, part) in parts {
            let mut slot = part.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(Part {
                stage: Stage::Running(_),
                deadline,
                ..
            }) = slot.as_ref()
            {
                if *deadline <= now {
                    slot.take();
                    drop(slot);
                    self.remember(txn, Outcome::Aborted);
                    expired += 1;
                }
            }
        }
        expired
    }

    /// Prepared parts that have waited for their decision since before
    /// `since`, with where the decision is recorded (their manager may have
    /// crashed: ask).
    pub fn waiting_since(&self, since: Instant) -> Vec<(TxnId, ObjectId)> {
        let mut waiting = Vec::new();
        for (txn, part) in self.all_parts() {
            if let Some(Part {
                waits: Some((anchor, prepared_at)),
                ..
            }) = part.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            {
                if *prepared_at < since {
                    waiting.push((txn, anchor.clone()));
                }
            }
        }
        waiting
    }

    /// Releases what is kept for transactions with no part here (their
    /// part ended, or never began).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn release_orphans(&self) {
        let orphans: Vec<TxnId> = {
            let parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
            self.held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .filter(|txn| !parts.contains_key(txn))
                .copied()
                .collect()
        };
        for txn in orphans {
            self.release(txn);
        }
    }

    /// Transactions prepared here and waiting for their decision.
    #[cfg(test)]
    pub fn in_doubt(&self) -> Vec<TxnId> {
        let mut waiting = self.parts_where(|stage| matches!(stage, Stage::Prepared(_)));
        waiting.sort();
        waiting
    }
}
