//! A store that heals: the engine behind a wrapper that notices when it
//! fails, names the cause, refuses writes meanwhile, and reopens it once the
//! cause is gone — no restart needed.
//!
//! fjall stops for good after an I/O error (it is *poisoned*: every later
//! write answers `Poisoned`, even once the disk has room again), and the
//! error it answers then does not say what happened. So on a failure the
//! wrapper asks the file system itself — it writes, syncs and removes a small
//! probe file in the data directory — and the operating system's answer is
//! the cause a client is told ("No space left on device", "Too many open
//! files", "Read-only file system"). Every second the node calls
//! [`Healing::heal`]: while the probe still fails nothing changes; once it
//! passes, the engine is closed and opened again (recovering from its
//! journal, as after a crash), a probe write is committed with an fsync, and
//! writes are accepted again.
//!
//! A failed write must not come back. fjall may still hold its bytes (a
//! journal buffer it could not flush) and write them when it is closed, once
//! the disk has room: reopened, the store would then hold a write its caller
//! was told failed. So when a write fails, the wrapper reads what the store
//! holds for each key it touched (the failed write is not among it), and the
//! reopened store gets exactly those values back, in the same commit as the
//! probe, before it takes any other write.

use super::engine::{Engine, Fjall, Pair, Space, Write};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

/// Why the store does not write, and since when.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The cause, as the operating system or the engine said it.
    pub cause: String,
    /// When writes started to fail.
    pub since: Instant,
}

/// What the store held for each key a failed write touched.
type Preimages = BTreeMap<(Space, Vec<u8>), Option<Vec<u8>>>;

/// The engine, reopened after it fails.
pub struct Healing {
    dir: PathBuf,
    /// `None` between closing a failed engine and opening it again.
    engine: RwLock<Option<Fjall>>,
    failure: Mutex<Option<Failure>>,
    /// What the store held, before the failed writes, for each key they
    /// touched: written back when the engine is reopened.
    restore: Mutex<Preimages>,
    failures_total: AtomicU64,
    recoveries_total: AtomicU64,
}

/// The key of the probe write when the engine was reopened (a deletion, in
/// the calls' space, of a key no object has: `type \0 key` never starts with 0xFF).
const PROBE_KEY: &[u8] = b"\xff\xffcrucial-probe";

impl Healing {
    /// Opens the engine in `dir`.
    pub fn open(dir: &Path) -> Result<Healing, String> {
        Ok(Healing {
            dir: dir.to_path_buf(),
            engine: RwLock::new(Some(Fjall::open(dir)?)),
            failure: Mutex::default(),
            restore: Mutex::default(),
            failures_total: AtomicU64::new(0),
            recoveries_total: AtomicU64::new(0),
        })
    }

    /// Why writes fail now, if they do.
    pub fn failure(&self) -> Option<Failure> {
        self.lock_failure().clone()
    }

    /// Failures since start, and recoveries from them.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.failures_total.load(Ordering::Relaxed),
            self.recoveries_total.load(Ordering::Relaxed),
        )
    }

    /// `Err` (saying why) while the store does not write.
    pub fn writable(&self) -> Result<(), String> {
        match &*self.lock_failure() {
            None => Ok(()),
            Some(failure) => Err(refusal(failure)),
        }
    }

    fn lock_failure(&self) -> std::sync::MutexGuard<'_, Option<Failure>> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a failed write: the cause is what the file system says now,
    /// or the engine's error if the file system is fine. Returns the error a
    /// caller is told.
    fn failed(&self, engine_error: &str) -> String {
        let cause = probe_file(&self.dir)
            .err()
            .unwrap_or_else(|| format!("the storage engine failed: {engine_error}"));
        let mut failure = self.lock_failure();
        let failure = failure.get_or_insert_with(|| {
            self.failures_total.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                dir = %self.dir.display(),
                "the store cannot write: {cause} (engine: {engine_error}); persistent writes are \
                 refused until it can, checked every second"
            );
            Failure {
                cause,
                since: Instant::now(),
            }
        });
        refusal(failure)
    }

    /// Tries to make a failed store write again: if the file system takes a
    /// probe file, reopens the engine and commits a probe with an fsync.
    /// Returns whether the store is healthy. Called every second.
    pub fn heal(&self) -> bool {
        let Some(failure) = self.failure() else {
            return true;
        };
        if let Err(cause) = probe_file(&self.dir) {
            if cause != failure.cause {
                if let Some(failure) = &mut *self.lock_failure() {
                    failure.cause = cause;
                }
            }
            return false;
        }
        let mut engine = self.engine.write().unwrap_or_else(|e| e.into_inner());
        // Close the failed engine before opening it again (it holds the
        // directory's lock).
        drop(engine.take());
        let restore: Vec<Write> = self
            .lock_restore()
            .iter()
            .map(|((space, key), value)| (*space, key.clone(), value.clone()))
            .collect();
        for (space, key, value) in &restore {
            tracing::debug!(?space, key = ?String::from_utf8_lossy(key), restored = value.as_ref().map(Vec::len), "restore");
        }
        let reopened = Fjall::open(&self.dir).and_then(|fjall| {
            // The keys the failed writes touched get their old values back;
            // the probe, a deletion, goes through the journal and the fsync
            // like any write and leaves nothing to read back.
            let mut writes = restore;
            writes.push((Space::Calls, PROBE_KEY.to_vec(), None));
            fjall.commit(writes, true)?;
            Ok(fjall)
        });
        match reopened {
            Ok(fjall) => {
                *engine = Some(fjall);
                drop(engine);
                self.lock_restore().clear();
                *self.lock_failure() = None;
                self.recoveries_total.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    dir = %self.dir.display(),
                    "the store writes again after {:?} (reopened)",
                    failure.since.elapsed()
                );
                true
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "the store cannot be reopened yet: {e}");
                if let Some(failure) = &mut *self.lock_failure() {
                    failure.cause = format!("the storage engine cannot be reopened yet: {e}");
                }
                false
            }
        }
    }

    fn lock_restore(&self) -> std::sync::MutexGuard<'_, Preimages> {
        self.restore.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers what the store holds for the keys of a write that failed
    /// (the first failure's value of a key is the one before every failed write).
    fn remember_before(&self, fjall: &Fjall, writes: &[Write]) {
        let mut restore = self.lock_restore();
        for (space, key, _) in writes {
            if restore.contains_key(&(*space, key.clone())) {
                continue;
            }
            match fjall.get(*space, key) {
                Ok(value) => {
                    restore.insert((*space, key.clone()), value);
                }
                Err(e) => tracing::error!(
                    "cannot read a key a failed write touched ({e}): it may come back when \
                     the store is reopened"
                ),
            }
        }
    }

    /// Runs `f` on the open engine, or says why there is none.
    fn with<T>(&self, f: impl FnOnce(&Fjall) -> Result<T, String>) -> Result<T, String> {
        let engine = self.engine.read().unwrap_or_else(|e| e.into_inner());
        match &*engine {
            Some(fjall) => f(fjall),
            None => Err(self
                .writable()
                .err()
                .unwrap_or_else(|| "the storage engine is being reopened".into())),
        }
    }
}

/// What a write is told while the store fails.
fn refusal(failure: &Failure) -> String {
    format!(
        "the store cannot write: {} (for {:.1} s; the node retries every second and \
         takes writes again once it can)",
        failure.cause,
        failure.since.elapsed().as_secs_f64()
    )
}

/// Free space below which a failed store is not reopened: a disk with a few
/// kilobytes left (a failed write's bytes given back) would fail the next
/// writes again at once; waiting for some room keeps the store from flapping.
const FREE_TO_REOPEN: u64 = 16 << 20;

/// Writes, syncs and removes a small file in `dir`, and checks there is
/// [`FREE_TO_REOPEN`] left: `Err` is what the operating system said (a full
/// disk, no descriptors left, read-only).
fn probe_file(dir: &Path) -> Result<(), String> {
    let path = dir.join(".crucial-probe");
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&[0u8; 4096])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    written.map_err(|e| e.to_string())?;
    match free_bytes(dir) {
        Some(free) if free < FREE_TO_REOPEN => Err(format!(
            "No space left on device: {} KiB free, writes resume once {} MiB are",
            free >> 10,
            FREE_TO_REOPEN >> 20
        )),
        _ => Ok(()),
    }
}

/// Bytes free for unprivileged writes on the file system of `dir`.
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes one struct for a NUL-terminated path.
    let ok = unsafe { libc::statvfs(path.as_ptr(), &mut stats) } == 0;
    #[allow(clippy::unnecessary_cast)] // the fields' types differ between Unixes
    ok.then(|| stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// Free space is not checked off Unix.
#[cfg(not(unix))]
fn free_bytes(_: &Path) -> Option<u64> {
    None
}

impl Engine for Healing {
    fn commit(&self, writes: Vec<Write>, sync: bool) -> Result<(), String> {
        self.writable()?;
        self.with(|fjall| {
            fjall
                .commit_all(&writes, sync)
                .inspect_err(|_| self.remember_before(fjall, &writes))
        })
        .map_err(|e| self.failed(&e))
    }

    fn sync(&self) -> Result<(), String> {
        self.writable()?;
        self.with(Fjall::sync).map_err(|e| self.failed(&e))
    }

    fn scan(&self, space: Space) -> Result<Vec<Pair>, String> {
        self.with(|fjall| fjall.scan(space))
    }

    fn scan_prefix(&self, space: Space, prefix: &[u8]) -> Result<Vec<Pair>, String> {
        self.with(|fjall| fjall.scan_prefix(space, prefix))
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.with(|fjall| fjall.get(space, key))
    }
}
