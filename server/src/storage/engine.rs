//! The embedded engine under the storage layer, behind the one small trait the
//! rest of the node sees. fjall was chosen by measurement (`bench-storage`, and
//! the guide's *Benchmarks* chapter): a durable small write costs about half of
//! redb's.

use std::path::Path;

/// The parts of the store, each its own ordered key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Space {
    /// Persistent objects: `type \0 key` -> shape fingerprint and state.
    Objects,
    /// Remembered replies: `client, request` (big-endian) -> outcome.
    Dedup,
    /// Calls logged since an object's last snapshot: `object, seq` -> method
    /// and arguments.
    Calls,
    /// Lambda objects' entries: `object id, entry key` -> value.
    Entries,
    /// Parts of transactions across nodes prepared here and not yet decided:
    /// `manager, seq` (big-endian) -> the part (`wire::PreparedCopy`).
    Prepared,
}

/// One change in an atomic batch: a value to store, or `None` to delete.
pub type Write = (Space, Vec<u8>, Option<Vec<u8>>);

/// A stored key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// What the storage layer needs of an engine.
pub trait Engine: Send + Sync + 'static {
    /// Applies every write atomically (all or none after a crash); with
    /// `sync`, durably before returning.
    fn commit(&self, writes: Vec<Write>, sync: bool) -> Result<(), String>;
    /// Makes every committed write durable.
    fn sync(&self) -> Result<(), String>;
    /// Every pair of a space, in key order.
    fn scan(&self, space: Space) -> Result<Vec<Pair>, String>;
    /// Every pair of a space whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, space: Space, prefix: &[u8]) -> Result<Vec<Pair>, String>;
    /// The value stored under `key`, if any (committed writes only).
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
}

/// The error of opening a store that another process holds.
pub const LOCKED: &str = "another process holds it";

/// Largest memtable of the objects' key space.
const MEMTABLE_BYTES: u64 = 16 << 20;

/// fjall: an LSM tree with a write-ahead journal.
pub struct Fjall {
    db: fjall::Database,
    objects: fjall::Keyspace,
    dedup: fjall::Keyspace,
    calls: fjall::Keyspace,
    entries: fjall::Keyspace,
    prepared: fjall::Keyspace,
}

impl Fjall {
    /// Opens (or creates) the store in `dir`; [`LOCKED`] if another process
    /// (or another node in this one) has it open.
    pub fn open(dir: &Path) -> Result<Fjall, String> {
        let db = fjall::Database::builder(dir).open().map_err(|e| match e {
            fjall::Error::Locked => LOCKED.to_string(),
            e => e.to_string(),
        })?;
        // A smaller memtable than fjall's 64 MiB: it bounds the memory the
        // engine keeps of recent writes (beside `--memory-limit`) and how much
        // journal a restart replays.
        let objects = db
            .keyspace("objects", || {
                fjall::KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(|e| e.to_string())?;
        let dedup = db
            .keyspace("dedup", fjall::KeyspaceCreateOptions::default)
            .map_err(|e| e.to_string())?;
        let calls = db
            .keyspace("calls", fjall::KeyspaceCreateOptions::default)
            .map_err(|e| e.to_string())?;
        let entries = db
            .keyspace("entries", fjall::KeyspaceCreateOptions::default)
            .map_err(|e| e.to_string())?;
        let prepared = db
            .keyspace("prepared", fjall::KeyspaceCreateOptions::default)
            .map_err(|e| e.to_string())?;
        Ok(Fjall {
            db,
            objects,
            dedup,
            calls,
            entries,
            prepared,
        })
    }

    fn space(&self, space: Space) -> &fjall::Keyspace {
        match space {
            Space::Objects => &self.objects,
            Space::Dedup => &self.dedup,
            Space::Calls => &self.calls,
            Space::Entries => &self.entries,
            Space::Prepared => &self.prepared,
        }
    }
}

impl Fjall {
    /// [`Engine::commit`] of borrowed writes (the engine copies them anyway),
    /// so that a caller still has them if the commit fails.
    pub fn commit_all(&self, writes: &[Write], sync: bool) -> Result<(), String> {
        let mut batch = self.db.batch();
        for (space, key, value) in writes {
            match value {
                Some(value) => batch.insert(self.space(*space), key.as_slice(), value.as_slice()),
                None => batch.remove(self.space(*space), key.as_slice()),
            }
        }
        batch.commit().map_err(|e| e.to_string())?;
        if sync {
            self.sync()?;
        }
        Ok(())
    }
}

impl Engine for Fjall {
    fn commit(&self, writes: Vec<Write>, sync: bool) -> Result<(), String> {
        self.commit_all(&writes, sync)
    }

    fn sync(&self) -> Result<(), String> {
        self.db
            .persist(fjall::PersistMode::SyncData)
            .map_err(|e| e.to_string())
    }

    fn scan(&self, space: Space) -> Result<Vec<Pair>, String> {
        self.space(space).iter().map(pair).collect()
    }

    fn scan_prefix(&self, space: Space, prefix: &[u8]) -> Result<Vec<Pair>, String> {
        self.space(space).prefix(prefix).map(pair).collect()
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.space(space)
            .get(key)
            .map(|value| value.map(|v| v.to_vec()))
            .map_err(|e| e.to_string())
    }
}

fn pair(guard: fjall::Guard) -> Result<Pair, String> {
    guard
        .into_inner()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopening_and_deletes_apply() {
        let dir = std::env::temp_dir().join(format!("crucial-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let engine = Fjall::open(&dir).expect("open");
            engine
                .commit(
                    vec![
                        (Space::Objects, b"a".to_vec(), Some(b"1".to_vec())),
                        (Space::Objects, b"b".to_vec(), Some(b"2".to_vec())),
                        (Space::Dedup, b"x".to_vec(), Some(b"ok".to_vec())),
                    ],
                    true,
                )
                .expect("commit");
            engine
                .commit(vec![(Space::Objects, b"a".to_vec(), None)], true)
                .expect("delete");
        }
        let engine = Fjall::open(&dir).expect("reopen");
        assert_eq!(
            engine.scan(Space::Objects).expect("scan"),
            vec![(b"b".to_vec(), b"2".to_vec())]
        );
        assert_eq!(engine.scan(Space::Dedup).expect("scan").len(), 1);
        assert_eq!(
            engine.get(Space::Objects, b"b").expect("get"),
            Some(b"2".to_vec())
        );
        assert_eq!(engine.get(Space::Objects, b"a").expect("get"), None);
        assert_eq!(
            engine
                .scan_prefix(Space::Objects, b"b")
                .expect("prefix")
                .len(),
            1
        );
        assert!(engine
            .scan_prefix(Space::Objects, b"c")
            .expect("prefix")
            .is_empty());
        drop(engine);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The property healing relies on (`health.rs`): a store closed and opened
/// again in the same process, then crashed, keeps every committed write.
#[cfg(test)]
mod reopened_in_process {
    use super::*;

    const CHILD: &str = "CRUCIAL_REOPEN_TEST_DIR";

    fn key(i: u32) -> Vec<u8> {
        format!("k{i:05}").into_bytes()
    }

    fn put(engine: &Fjall, keys: std::ops::Range<u32>) {
        for i in keys {
            engine
                .commit(vec![(Space::Objects, key(i), Some(b"v".to_vec()))], true)
                .expect("commit");
        }
    }

    #[test]
    fn a_store_reopened_in_process_then_crashed_keeps_every_write() {
        if let Some(dir) = std::env::var_os(CHILD) {
            put(&Fjall::open(dir.as_ref()).expect("open"), 0..50);
            put(&Fjall::open(dir.as_ref()).expect("reopen"), 50..70);
            std::process::exit(0); // a crash: nothing is closed
        }
        let dir = std::env::temp_dir().join(format!("crucial-reopened-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "storage::engine::reopened_in_process::a_store_reopened_in_process_then_crashed_keeps_every_write"])
            .env(CHILD, &dir)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run the child");
        assert!(status.success());
        let engine = Fjall::open(&dir).expect("after the crash");
        assert_eq!(engine.scan(Space::Objects).expect("scan").len(), 70);
        drop(engine);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
