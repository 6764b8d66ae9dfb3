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

use super::engine::{Engine, Fjall, Pair, Space, Write};
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

/// The engine, reopened after it fails.
pub struct Healing {
    dir: PathBuf,
    /// `None` between closing a failed engine and opening it again.
    engine: RwLock<Option<Fjall>>,
    failure: Mutex<Option<Failure>>,
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
        let reopened = Fjall::open(&self.dir).and_then(|fjall| {
            // A deletion goes through the journal and the fsync like any
            // write, and leaves nothing to read back.
            fjall.commit(vec![(Space::Calls, PROBE_KEY.to_vec(), None)], true)?;
            Ok(fjall)
        });
        match reopened {
            Ok(fjall) => {
                *engine = Some(fjall);
                drop(engine);
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
                if let Some(failure) = &mut *self.lock_failure() {
                    failure.cause = format!("the storage engine cannot be reopened yet: {e}");
                }
                false
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

/// Writes, syncs and removes a small file in `dir`: `Err` is what the
/// operating system said (a full disk, no descriptors left, read-only).
fn probe_file(dir: &Path) -> Result<(), String> {
    let path = dir.join(".crucial-probe");
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&[0u8; 4096])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    written.map_err(|e| e.to_string())
}

impl Engine for Healing {
    fn commit(&self, writes: Vec<Write>, sync: bool) -> Result<(), String> {
        self.writable()?;
        self.with(|fjall| fjall.commit(writes, sync))
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
