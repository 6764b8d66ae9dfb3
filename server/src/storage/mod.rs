//! The storage layer: everything of a node that must survive a restart goes
//! through here — persistent objects and their remembered replies now; lambda
//! object entries and replication state next.
//!
//! What is written per call ([`Change`]): either the object's new state (a
//! snapshot) or the call itself (method and arguments) appended to the
//! object's call log, whichever is smaller — a call is logged while the calls
//! logged since the last snapshot stay smaller than the state; then the next
//! change is a snapshot, and the calls it covers are deleted with it. A
//! counter is snapshotted on every call (its state is smaller than a call);
//! a map of 100k entries logs its small calls and is snapshotted about once
//! per state-size worth of calls, so no call rewrites it whole and at most
//! twice the written bytes reach the disk. Recovery replays the logged calls on
//! the snapshot, which is why methods of persistent types must be
//! deterministic (as Crucial's state-machine replication also requires). The
//! reply of a deduplicated call is in the same atomic batch. The guide's
//! *Durability* page has the measurements behind this choice.
//!
//! Records carry a format byte, so a later layout can be told apart. An object
//! record holds its type's shape fingerprint: a node built with a changed type
//! reports the mismatch instead of decoding garbage.

mod commit;
mod engine;
mod health;
mod records;

pub use commit::{Durability, Ticket};
pub use engine::Space;
pub use health::Failure;

use commit::Committer;
use crucial::__private::panic_message;
use crucial::__private::registry::{ObjectBox, SharedTypeEntry};
use crucial_protocol::wire::Outcome;
use engine::{Engine, Pair, Write, LOCKED};
use health::Healing;
use records::{
    call_key, calls_prefix, decode, encode, entry_key, object_key, reply_key, split_call_key,
    split_entry_key, split_object_key, CallRecord, EntryRecord, ObjectRecord,
};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A call logged after an object's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCall {
    /// Its number in the object's log.
    pub seq: u64,
    /// The method's registered name.
    pub method: String,
    /// Its encoded arguments.
    pub args: Vec<u8>,
}

/// A persistent object as stored: a snapshot and the calls logged after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Registered type name.
    pub type_name: String,
    /// Object key.
    pub key: String,
    /// Fingerprint of the type's shape when the state was written.
    pub shape: u64,
    /// Logged calls up to this number are in `state`.
    pub applied: u64,
    /// The encoded state.
    pub state: Vec<u8>,
    /// Calls logged after the snapshot, in order.
    pub calls: Vec<StoredCall>,
}

impl StoredObject {
    /// The object as this build's `entry` reads it (the snapshot, with the
    /// logged calls replayed on it), or why it cannot: a type whose shape
    /// changed is never decoded.
    pub fn revive(&self, entry: &SharedTypeEntry) -> Result<ObjectBox, String> {
        if self.shape != entry.shape {
            return Err(format!(
                "it was written by a build whose `{}` had other fields (shape {:016x}, this \
                 build's is {:016x})",
                entry.name, self.shape, entry.shape
            ));
        }
        let mut value = (entry.decode_state)(&self.state)
            .map_err(|e| format!("its stored state does not decode: {e}"))?;
        for call in self.calls.iter().filter(|c| c.seq > self.applied) {
            let method = entry.method(&call.method).ok_or_else(|| {
                format!(
                    "its logged call {} is to `{}`, which this build's `{}` does not have",
                    call.seq, call.method, entry.name
                )
            })?;
            match catch_unwind(AssertUnwindSafe(|| {
                (method.invoke)(&mut *value, &call.args)
            })) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(format!(
                        "its logged call {} to `{}` does not replay: {e:?}",
                        call.seq, call.method
                    ))
                }
                Err(panic) => {
                    return Err(format!(
                        "its logged call {} to `{}` panicked on replay: {}",
                        call.seq,
                        call.method,
                        panic_message(&*panic)
                    ))
                }
            }
        }
        Ok(value)
    }

    /// The number of its newest logged call (or of the snapshot).
    pub fn last_seq(&self) -> u64 {
        self.calls
            .last()
            .map_or(self.applied, |c| c.seq.max(self.applied))
    }

    /// Bytes of its logged calls after the snapshot.
    pub fn logged_bytes(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| c.seq > self.applied)
            .map(|c| call_size(&c.method, &c.args))
            .sum()
    }
}

/// What a logged call counts for, against its object's snapshot size.
pub fn call_size(method: &str, args: &[u8]) -> usize {
    method.len() + args.len()
}

/// What a mutating call writes.
pub enum Change<'a> {
    /// The whole state, which includes every call logged up to `applied`;
    /// the logged calls `covered` are deleted with it.
    Snapshot {
        /// The type's shape fingerprint.
        shape: u64,
        /// The encoded state.
        state: &'a [u8],
        /// The number of the newest call it includes.
        applied: u64,
        /// Logged calls it makes obsolete.
        covered: std::ops::RangeInclusive<u64>,
    },
    /// One call, appended to the object's log as number `seq`.
    Call {
        /// Its number.
        seq: u64,
        /// The method's registered name.
        method: &'a str,
        /// Its encoded arguments.
        args: &'a [u8],
    },
}

/// A write in the queue: its sequence number (see [`Storage::applied`]) and
/// the ticket that resolves when it is durable.
pub struct Queued {
    /// Its place in the order of writes.
    pub seq: u64,
    /// Resolves when it is as durable as the node promises.
    pub ticket: Ticket,
}

/// A lambda object's entry as stored: `(object, entry key, value)`.
pub type StoredEntry = (crucial::ObjectId, Vec<u8>, Vec<u8>);

/// A remembered reply, as recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    /// Client id.
    pub client: u64,
    /// Request id.
    pub request: u64,
    /// The reply the request got.
    pub outcome: Outcome,
}

/// A node's data directory, open.
pub struct Storage {
    dir: PathBuf,
    engine: Arc<Healing>,
    committer: Committer,
    snapshots: AtomicU64,
    logged_calls: AtomicU64,
    call_log: bool,
    caller_leads: bool,
}

impl Storage {
    /// Opens (or creates) the store in `dir`; the error names the directory.
    pub fn open(dir: &Path, durability: Durability) -> Result<Storage, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
        let engine = Arc::new(Healing::open(dir).map_err(|e| {
            if e == LOCKED {
                format!(
                    "cannot open the data directory {}: {e} (is a node running on it?): stop \
                     that node first, or give this one another --data-dir",
                    dir.display()
                )
            } else {
                format!(
                    "cannot open the data directory {}: {e} (a damaged store: restore it from \
                     a backup or move it away to start empty)",
                    dir.display()
                )
            }
        })?);
        let committer = Committer::start(Arc::clone(&engine) as Arc<dyn Engine>, durability);
        Ok(Storage {
            dir: dir.to_path_buf(),
            engine,
            committer,
            snapshots: AtomicU64::new(0),
            logged_calls: AtomicU64::new(0),
            call_log: true,
            caller_leads: false,
        })
    }

    /// With `true`, the task that waits for a call's write commits it itself
    /// when no commit is under way ([`Storage::lead`]), blocking its thread
    /// for the fsync; for a runtime with more than one worker thread.
    pub fn with_caller_leads(mut self, on: bool) -> Storage {
        self.caller_leads = on;
        self
    }

    /// Commits what is queued on this thread if no commit is under way
    /// (`sync` durability, callers leading): see `commit.rs`.
    pub fn lead(&self) {
        if self.caller_leads {
            self.committer.lead();
        }
    }

    /// Waits until a queued write is durable, committing it on this thread if
    /// no commit is under way (see `commit.rs`); `Err` says why it is not.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), String> {
        self.lead();
        ticket
            .await
            .unwrap_or_else(|_| Err("the storage layer stopped".to_string()))
    }

    /// With `false`, every change is a snapshot: no call is logged (for types
    /// whose methods are not deterministic, or to compare).
    pub fn with_call_log(mut self, on: bool) -> Storage {
        self.call_log = on;
        self
    }

    /// Whether small calls on large objects are logged.
    pub fn call_log(&self) -> bool {
        self.call_log
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `Err` (naming the cause) while the store cannot write: a write is
    /// refused before it changes anything in memory.
    pub fn writable(&self) -> Result<(), String> {
        self.engine.writable()
    }

    /// Why the store cannot write now, if it cannot.
    pub fn failure(&self) -> Option<Failure> {
        self.engine.failure()
    }

    /// Write failures since start, and recoveries from them.
    pub fn health_counts(&self) -> (u64, u64) {
        self.engine.counts()
    }

    /// Tries to make a failed store write again (see `health.rs`); whether
    /// it writes. The node calls it every second.
    pub fn heal(&self) -> bool {
        self.engine.heal()
    }

    /// Logs that a stored object cannot be read by this build (at recovery,
    /// or when a passivated object comes back).
    pub fn report_unreadable(&self, type_name: &str, key: &str, reason: &str) {
        tracing::warn!(
            "{}: object `{key}` of type `{type_name}` is unreadable: {reason}",
            self.dir.display()
        );
    }

    /// Queues a change of an object (and the reply of the request that made
    /// it, if deduplicated) as one atomic write. Call it while holding the
    /// object's lock, so an object's changes reach the disk in order, and
    /// [`Storage::lead`] once the lock is released, before waiting.
    pub fn save(
        &self,
        type_name: &str,
        key: &str,
        change: Change<'_>,
        reply: Option<(u64, u64, &Outcome)>,
    ) -> Queued {
        let mut writes: Vec<Write> = Vec::with_capacity(2);
        match change {
            Change::Snapshot {
                shape,
                state,
                applied,
                covered,
            } => {
                self.snapshots.fetch_add(1, Ordering::Relaxed);
                let record = ObjectRecord {
                    shape,
                    applied,
                    state,
                };
                writes.push((
                    Space::Objects,
                    object_key(type_name, key),
                    Some(encode(&record)),
                ));
                let prefix = calls_prefix(type_name, key);
                writes.extend(covered.map(|seq| (Space::Calls, call_key(&prefix, seq), None)));
            }
            Change::Call { seq, method, args } => {
                self.logged_calls.fetch_add(1, Ordering::Relaxed);
                writes.push((
                    Space::Calls,
                    call_key(&calls_prefix(type_name, key), seq),
                    Some(encode(&CallRecord { method, args })),
                ))
            }
        }
        self.submit(writes, reply)
    }

    /// Queues `writes`, and the reply of the request that made them if
    /// deduplicated, as one atomic write.
    fn submit(&self, mut writes: Vec<Write>, reply: Option<(u64, u64, &Outcome)>) -> Queued {
        if let Some((client, request, outcome)) = reply {
            writes.push((
                Space::Dedup,
                reply_key(client, request),
                Some(encode(outcome)),
            ));
        }
        let (seq, ticket) = self.committer.submit(writes, self.caller_leads);
        Queued { seq, ticket }
    }

    /// Snapshots and logged calls written since the node started.
    pub fn written(&self) -> (u64, u64) {
        (
            self.snapshots.load(Ordering::Relaxed),
            self.logged_calls.load(Ordering::Relaxed),
        )
    }

    /// The highest write sequence number such that it and every earlier write
    /// can be read back ([`Storage::load`]).
    pub fn applied(&self) -> u64 {
        self.committer.applied()
    }

    /// Queues the deletion of an object and of its logged calls.
    pub fn delete(&self, type_name: &str, key: &str) -> Ticket {
        let mut writes = vec![(Space::Objects, object_key(type_name, key), None)];
        match self
            .engine
            .scan_prefix(Space::Calls, &calls_prefix(type_name, key))
        {
            Ok(calls) => writes.extend(calls.into_iter().map(|(k, _)| (Space::Calls, k, None))),
            Err(e) => tracing::error!("cannot list the logged calls of {type_name} `{key}`: {e}"),
        }
        self.committer.submit(writes, false).1
    }

    /// Queues the deletion of remembered replies the node has forgotten.
    pub fn forget_replies(&self, replies: &[(u64, u64)]) -> Ticket {
        self.committer
            .submit(
                replies
                    .iter()
                    .map(|&(client, request)| (Space::Dedup, reply_key(client, request), None))
                    .collect(),
                false,
            )
            .1
    }

    /// One stored object, if there is one (a passivated object coming back).
    pub fn load(&self, type_name: &str, key: &str) -> Result<Option<StoredObject>, String> {
        let Some(bytes) = self
            .engine
            .get(Space::Objects, &object_key(type_name, key))?
        else {
            return Ok(None);
        };
        let calls = self
            .engine
            .scan_prefix(Space::Calls, &calls_prefix(type_name, key))?
            .into_iter()
            .map(|(k, v)| self.call(&k, &v))
            .collect::<Result<Vec<_>, _>>()?;
        self.object(type_name.to_string(), key.to_string(), &bytes, calls)
            .map(Some)
    }

    /// Every stored object with its logged calls; a record that does not
    /// decode is an error naming it.
    pub fn objects(&self) -> Result<Vec<StoredObject>, String> {
        let mut calls: HashMap<Vec<u8>, Vec<StoredCall>> = HashMap::new();
        for (k, v) in self.engine.scan(Space::Calls)? {
            let call = self.call(&k, &v)?;
            let (object, _) = split_call_key(&k).expect("checked by `call`");
            calls.entry(object.to_vec()).or_default().push(call);
        }
        self.engine
            .scan(Space::Objects)?
            .into_iter()
            .map(|(k, v)| {
                let (type_name, key) = split_object_key(&k)
                    .ok_or_else(|| format!("{}: an object key is damaged", self.dir.display()))?;
                let logged = calls.remove(&k).unwrap_or_default();
                self.object(type_name, key, &v, logged)
            })
            .collect()
    }

    fn object(
        &self,
        type_name: String,
        key: String,
        bytes: &[u8],
        calls: Vec<StoredCall>,
    ) -> Result<StoredObject, String> {
        let record: ObjectRecord<'_> = decode(bytes).map_err(|e| {
            format!(
                "{}: the record of {type_name} `{key}` is damaged: {e}",
                self.dir.display()
            )
        })?;
        Ok(StoredObject {
            shape: record.shape,
            applied: record.applied,
            state: record.state.to_vec(),
            calls,
            type_name,
            key,
        })
    }

    fn call(&self, k: &[u8], v: &[u8]) -> Result<StoredCall, String> {
        let damaged = |what: String| format!("{}: a logged call {what}", self.dir.display());
        let (_, seq) = split_call_key(k).ok_or_else(|| damaged("has a damaged key".into()))?;
        let record: CallRecord<'_> =
            decode(v).map_err(|e| damaged(format!("(number {seq}) is damaged: {e}")))?;
        Ok(StoredCall {
            seq,
            method: record.method.to_string(),
            args: record.args.to_vec(),
        })
    }

    /// Queues a committed transaction's writes to lambda objects' entries
    /// (`None`: deleted), with the reply of the request that ran it, as one
    /// atomic write. Call it while the transaction
    /// still holds its entry sets' locks, so commits reach the disk in order.
    ///
    /// `settles`: the keys of prepared parts ([`Storage::save_prepared`])
    /// these writes decide, deleted in the same atomic write — so a part
    /// found on disk at a restart never has its writes there already.
    pub fn save_entries<'a>(
        &self,
        writes: impl IntoIterator<Item = (&'a crucial::ObjectId, &'a [u8], Option<&'a [u8]>)>,
        reply: Option<(u64, u64, &Outcome)>,
        settles: Vec<[u8; 16]>,
    ) -> Queued {
        let mut writes: Vec<Write> = writes
            .into_iter()
            .map(|(object, key, value)| {
                let record = value.map(|v| encode(&EntryRecord(v)));
                (Space::Entries, entry_key(object, key), record)
            })
            .collect();
        writes.extend(
            settles
                .into_iter()
                .map(|key| (Space::Prepared, key.to_vec(), None)),
        );
        self.submit(writes, reply)
    }

    /// Queues a part of a transaction across nodes, prepared here, under
    /// `key` (its manager and number): a restart finds it and asks for its
    /// outcome. Its vote waits for the ticket.
    pub fn save_prepared(&self, key: [u8; 16], part: Vec<u8>) -> Queued {
        self.submit(vec![(Space::Prepared, key.to_vec(), Some(part))], None)
    }

    /// Queues the deletion of a prepared part that ended without writes
    /// here (aborted: one left behind is asked for, and changes nothing).
    pub fn forget_prepared(&self, key: [u8; 16]) -> Queued {
        self.submit(vec![(Space::Prepared, key.to_vec(), None)], None)
    }

    /// Every prepared part on disk, by key.
    pub fn prepared(&self) -> Result<Vec<Pair>, String> {
        self.engine.scan(Space::Prepared)
    }

    /// One stored entry of a lambda object, if there is one.
    pub fn entry(&self, object: &crucial::ObjectId, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let Some(record) = self.engine.get(Space::Entries, &entry_key(object, key))? else {
            return Ok(None);
        };
        let EntryRecord(value) = decode(&record)
            .map_err(|e| format!("{}: an entry's value is damaged ({e})", self.dir.display()))?;
        Ok(Some(value.to_vec()))
    }

    /// Every stored entry of every lambda object.
    pub fn entries(&self) -> Result<Vec<StoredEntry>, String> {
        self.engine
            .scan(Space::Entries)?
            .into_iter()
            .map(|(k, v)| {
                let damaged =
                    |what: &str| format!("{}: an entry's {what} is damaged", self.dir.display());
                let (object, key) = split_entry_key(&k).ok_or_else(|| damaged("key"))?;
                let EntryRecord(value) =
                    decode(&v).map_err(|e| damaged(&format!("value ({e})")))?;
                Ok((object, key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    /// Every remembered reply.
    pub fn replies(&self) -> Result<Vec<StoredReply>, String> {
        self.engine
            .scan(Space::Dedup)?
            .into_iter()
            .map(|(k, v)| {
                let ids: [u8; 16] = k.as_slice().try_into().map_err(|_| {
                    format!(
                        "{}: a remembered reply's key is damaged",
                        self.dir.display()
                    )
                })?;
                let outcome = decode(&v).map_err(|e| {
                    format!("{}: a remembered reply is damaged: {e}", self.dir.display())
                })?;
                Ok(StoredReply {
                    client: u64::from_be_bytes(ids[..8].try_into().expect("8 bytes")),
                    request: u64::from_be_bytes(ids[8..].try_into().expect("8 bytes")),
                    outcome,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crucial::RemoteError;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crucial-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn snapshot(state: &[u8], applied: u64) -> Change<'_> {
        Change::Snapshot {
            shape: 7,
            state,
            applied,
            covered: 1..=applied,
        }
    }

    async fn done(queued: Queued) {
        queued.ticket.await.expect("answered").expect("saved");
    }

    #[tokio::test]
    async fn objects_and_replies_come_back_after_reopening() {
        let dir = temp_dir("storage-roundtrip");
        {
            let storage = Storage::open(&dir, Durability::Sync).expect("open");
            let ok = Ok(vec![5]);
            done(storage.save("Counter", "a", snapshot(&[1, 2], 0), Some((9, 1, &ok)))).await;
            let failed = Err(RemoteError::ShuttingDown {
                type_name: "Counter".into(),
                key: "a".into(),
                method: "m".into(),
            });
            done(storage.save("Counter", "a", snapshot(&[3], 0), Some((9, 2, &failed)))).await;
            done(storage.save("Tally", "spaces ok", snapshot(&[], 0), None)).await;
            storage
                .forget_replies(&[(9, 1)])
                .await
                .expect("answered")
                .expect("forgot");
        }
        let storage = Storage::open(&dir, Durability::Sync).expect("reopen");
        let objects = storage.objects().expect("objects");
        assert_eq!(objects.len(), 2);
        assert_eq!(
            objects[0],
            StoredObject {
                type_name: "Counter".into(),
                key: "a".into(),
                shape: 7,
                applied: 0,
                state: vec![3],
                calls: Vec::new(),
            }
        );
        assert_eq!(
            storage.load("Counter", "a").expect("load").map(|o| o.state),
            Some(vec![3])
        );
        assert_eq!(storage.load("Counter", "b").expect("load"), None);
        let replies = storage.replies().expect("replies");
        assert_eq!(replies.len(), 1);
        assert_eq!((replies[0].client, replies[0].request), (9, 2));
        assert!(replies[0].outcome.is_err());
        drop(storage);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn logged_calls_come_back_until_a_snapshot_covers_them() {
        let dir = temp_dir("storage-calls");
        let storage = Storage::open(&dir, Durability::Sync).expect("open");
        let call = |seq, args: &'static [u8]| Change::Call {
            seq,
            method: "put",
            args,
        };
        done(storage.save("Map", "m", snapshot(&[0], 0), None)).await;
        done(storage.save("Map", "ma", snapshot(&[9], 0), None)).await;
        for seq in 1..=3 {
            done(storage.save("Map", "m", call(seq, b"kv"), None)).await;
        }
        done(storage.save("Map", "ma", call(1, b"other"), None)).await;
        let m = storage.load("Map", "m").expect("load").expect("stored");
        assert_eq!(m.calls.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!((m.last_seq(), m.logged_bytes()), (3, 3 * 5));
        // A snapshot that includes calls 1 and 2 deletes them; 3 stays.
        done(storage.save(
            "Map",
            "m",
            Change::Snapshot {
                shape: 7,
                state: &[2],
                applied: 2,
                covered: 1..=2,
            },
            None,
        ))
        .await;
        drop(storage);
        let storage = Storage::open(&dir, Durability::Sync).expect("reopen");
        let all = storage.objects().expect("objects");
        let m = all.iter().find(|o| o.key == "m").expect("m");
        assert_eq!((m.applied, m.state.clone()), (2, vec![2]));
        assert_eq!(m.calls.iter().map(|c| c.seq).collect::<Vec<_>>(), [3]);
        let ma = all.iter().find(|o| o.key == "ma").expect("ma");
        assert_eq!(ma.calls.len(), 1);
        assert_eq!(ma.calls[0].args, b"other");
        // Deleting an object deletes its log.
        storage
            .delete("Map", "m")
            .await
            .expect("answered")
            .expect("deleted");
        assert_eq!(storage.load("Map", "m").expect("load"), None);
        assert!(storage
            .objects()
            .expect("objects")
            .iter()
            .all(|o| o.key != "m"));
        drop(storage);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unopenable_directory_is_named() {
        let file = temp_dir("storage-file");
        std::fs::write(&file, b"not a directory").expect("write");
        let error = Storage::open(&file, Durability::Sync)
            .err()
            .expect("refused");
        assert!(error.contains(&file.display().to_string()), "{error}");
        let _ = std::fs::remove_file(&file);
    }
}
