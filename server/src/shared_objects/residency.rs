//! Bounding the memory persistent objects take (`--memory-limit`): how many
//! bytes are resident, and passivation — writing idle objects out (they are on
//! disk already) and dropping them from memory; the next call brings one back
//! transparently ([`super::run`]).
//!
//! An object's size is the size of its encoded state, known from its last
//! write: exact for what is on disk, an estimate of what its Rust value takes
//! (a `Vec<u8>` is close to it, a `HashMap` of small entries may take two or
//! three times more). The limit bounds that sum; the process's whole resident
//! memory (engine caches included) is on the metrics page beside it.

use super::cell::ObjectCell;
use crate::storage::Storage;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Passivation starts above this fraction of the limit (in percent)...
const HIGH_PERCENT: usize = 90;
/// ... and stops below this one, so a pass frees room for many activations.
const LOW_PERCENT: usize = 70;

/// Resident bytes of persistent objects and what passivation did.
#[derive(Default)]
pub struct Residency {
    limit: Option<usize>,
    resident: AtomicUsize,
    peak: AtomicUsize,
    passivated: AtomicUsize,
    passivations: AtomicU64,
    activations: AtomicU64,
    /// A coarse clock (one tick per passivation pass) for least-recently-used.
    tick: AtomicU64,
    nudge: (Mutex<bool>, Condvar),
}

/// What the metrics page shows of residency.
#[derive(Debug, Default, Clone, Copy)]
pub struct ResidencyGauges {
    /// The limit, if any.
    pub limit: Option<u64>,
    /// Encoded bytes of the persistent objects in memory now.
    pub resident: u64,
    /// The most that ever was.
    pub peak: u64,
    /// Persistent objects on disk only now.
    pub passivated: u64,
    /// Objects written out and dropped from memory, in total.
    pub passivations: u64,
    /// Passivated objects brought back by a call, in total.
    pub activations: u64,
}

impl Residency {
    /// Tracks residency under `limit` bytes (none: nothing is passivated).
    pub fn new(limit: Option<usize>) -> Residency {
        Residency {
            limit,
            ..Residency::default()
        }
    }

    /// The current tick, to stamp an object's last use with.
    pub fn now(&self) -> u64 {
        self.tick.load(Ordering::Relaxed)
    }

    /// An object in memory went from `old` to `new` encoded bytes (0 for one
    /// that was not counted). Wakes the passivator past the high mark.
    pub fn resized(&self, old: usize, new: usize) {
        let resident = if new >= old {
            self.resident.fetch_add(new - old, Ordering::Relaxed) + (new - old)
        } else {
            self.resident.fetch_sub(old - new, Ordering::Relaxed) - (old - new)
        };
        self.peak.fetch_max(resident, Ordering::Relaxed);
        if let Some(limit) = self.limit {
            if resident > limit / 100 * HIGH_PERCENT {
                // Wake the passivator once per pass, not on every write.
                let (lock, wake) = &self.nudge;
                let mut nudged = lock.lock().unwrap_or_else(|e| e.into_inner());
                if !*nudged {
                    *nudged = true;
                    wake.notify_one();
                }
            }
        }
    }

    /// An object of `bytes` came back from disk.
    pub fn activated(&self, bytes: usize) {
        self.activations.fetch_add(1, Ordering::Relaxed);
        self.passivated.fetch_sub(1, Ordering::Relaxed);
        self.resized(0, bytes);
    }

    /// An object is on disk only (at recovery, or by passivation).
    pub fn left_memory(&self, bytes: usize) {
        self.passivated.fetch_add(1, Ordering::Relaxed);
        self.resized(bytes, 0);
    }

    /// Drops an object's value from memory after a write of it failed, so
    /// that what the failed call changed is seen by nobody: its next call
    /// reads back the last state that reached the disk (as for a passivated
    /// object).
    pub fn forget_unsaved(&self, cell: &ObjectCell) {
        let mut state = cell.lock();
        if state.value.take().is_some() {
            self.left_memory(state.log.bytes());
        }
    }

    /// A passivated object was deleted.
    pub fn forgot_passivated(&self) {
        self.passivated.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether an object of `bytes` more still fits under the low mark (at
    /// recovery: the rest stays on disk until called).
    pub fn has_room_for(&self, bytes: usize) -> bool {
        self.limit.is_none_or(|limit| {
            self.resident.load(Ordering::Relaxed) + bytes <= limit / 100 * LOW_PERCENT
        })
    }

    /// The gauges for the metrics page.
    pub fn gauges(&self) -> ResidencyGauges {
        let load = |a: &AtomicUsize| a.load(Ordering::Relaxed) as u64;
        ResidencyGauges {
            limit: self.limit.map(|l| l as u64),
            resident: load(&self.resident),
            peak: load(&self.peak),
            passivated: load(&self.passivated),
            passivations: self.passivations.load(Ordering::Relaxed),
            activations: self.activations.load(Ordering::Relaxed),
        }
    }

    /// The passivator's wait between passes: until a write crosses the high
    /// mark, or `timeout` passed (an object whose last write was not yet
    /// readable is retried then). Advances the clock.
    pub fn wait(&self, timeout: Duration) {
        let (lock, wake) = &self.nudge;
        let nudged = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut nudged = wake
            .wait_timeout_while(nudged, timeout, |nudged| !*nudged)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        *nudged = false;
        self.tick.fetch_add(1, Ordering::Relaxed);
    }

    /// One passivation pass over `cells`: above the high mark, the least
    /// recently used idle objects whose last write can be read back are
    /// dropped from memory until the low mark. Returns how many were.
    pub fn passivate(&self, cells: Vec<Arc<ObjectCell>>, storage: &Storage) -> usize {
        let Some(limit) = self.limit else { return 0 };
        if self.resident.load(Ordering::Relaxed) <= limit / 100 * HIGH_PERCENT {
            return 0;
        }
        let low = limit / 100 * LOW_PERCENT;
        let mut candidates: Vec<(u64, Arc<ObjectCell>)> = cells
            .into_iter()
            .filter(|cell| cell.entry.persistent)
            .map(|cell| (cell.last_used(), cell))
            .collect();
        candidates.sort_unstable_by_key(|(used, _)| *used);
        // Read after the cells were listed: a write queued later is newer
        // than this and keeps its object in memory.
        let applied = storage.applied();
        let mut dropped = 0;
        for (_, cell) in candidates {
            if self.resident.load(Ordering::Relaxed) <= low {
                break;
            }
            // A cell busy running a method is in use: skip it, never wait.
            let Some(mut state) = cell.try_lock() else {
                continue;
            };
            let idle = state.parked.is_empty()
                && state.poison.is_none()
                && state.unreadable.is_none()
                && state.last_write <= applied;
            if idle && state.value.take().is_some() {
                self.left_memory(state.log.bytes());
                self.passivations.fetch_add(1, Ordering::Relaxed);
                dropped += 1;
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_the_peak() {
        let r = Residency::new(Some(1000));
        r.resized(0, 600);
        r.resized(600, 400);
        r.left_memory(400);
        let g = r.gauges();
        assert_eq!((g.resident, g.peak, g.passivated), (0, 600, 1));
        r.activated(300);
        let g = r.gauges();
        assert_eq!((g.resident, g.passivated, g.activations), (300, 0, 1));
        assert!(r.has_room_for(400));
        assert!(!r.has_room_for(401));
    }

    #[test]
    fn no_limit_always_has_room() {
        let r = Residency::new(None);
        r.resized(0, usize::MAX / 2);
        assert!(r.has_room_for(1 << 40));
    }
}
