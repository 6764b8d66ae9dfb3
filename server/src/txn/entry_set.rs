//! An entry set: the unit of versioning and locking of lambda objects
//! (LambdaStore 4.3.1). One word holds its version, a lock bit and a retired
//! bit, as Silo's TID word does; reads take no lock, they only load the word.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const LOCKED: u64 = 1;
const RETIRED: u64 = 2;
const FLAGS: u32 = 2;

/// A range of one object's entries with one version.
#[derive(Debug)]
pub struct EntrySet {
    word: AtomicU64,
    /// Commits that aborted on this set (a changed version, or its lock held
    /// by another): a set that saw one is split at its next written key.
    conflicts: AtomicU32,
}

/// What a lock attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Locking {
    /// Locked by the caller.
    Locked,
    /// Another commit holds it.
    Busy,
    /// Split away: the caller must look up the key's set again.
    Retired,
}

impl EntrySet {
    /// A set at `version`, unlocked.
    pub fn new(version: u64) -> EntrySet {
        EntrySet {
            word: AtomicU64::new(version << FLAGS),
            conflicts: AtomicU32::new(0),
        }
    }

    /// The version a read records (taken before the value is read).
    pub fn version(&self) -> u64 {
        self.word.load(Ordering::Acquire) >> FLAGS
    }

    /// Whether a read of `version`, recorded earlier, still holds: same
    /// version, not retired, and not locked unless by the validator itself.
    pub fn still(&self, version: u64, locked_by_me: bool) -> bool {
        let word = self.word.load(Ordering::Acquire);
        word >> FLAGS == version && word & RETIRED == 0 && (word & LOCKED == 0 || locked_by_me)
    }

    /// Tries to lock the set for a commit.
    pub fn try_lock(&self) -> Locking {
        let word = self.word.load(Ordering::Acquire);
        if word & RETIRED != 0 {
            return Locking::Retired;
        }
        if word & LOCKED != 0 {
            return Locking::Busy;
        }
        match self
            .word
            .compare_exchange(word, word | LOCKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Locking::Locked,
            Err(now) if now & RETIRED != 0 => Locking::Retired,
            Err(_) => Locking::Busy,
        }
    }

    /// Unlocks at `version` (the committing transaction's, or the old one
    /// after an abort).
    pub fn unlock(&self, version: u64) {
        self.word.store(version << FLAGS, Ordering::Release);
    }

    /// Retires a locked set that was split: readers that recorded it fail
    /// validation, writers look their keys up again.
    pub fn retire(&self, version: u64) {
        self.word
            .store((version << FLAGS) | RETIRED, Ordering::Release);
    }

    /// Counts an abort caused by this set.
    pub fn conflicted(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether it saw a conflict since it was made.
    pub fn contended(&self) -> bool {
        self.conflicts.load(Ordering::Relaxed) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_holds_until_the_version_changes_or_another_locks() {
        let set = EntrySet::new(7);
        let seen = set.version();
        assert!(set.still(seen, false));
        assert_eq!(set.try_lock(), Locking::Locked);
        assert_eq!(set.try_lock(), Locking::Busy);
        assert!(!set.still(seen, false), "locked by another");
        assert!(set.still(seen, true), "locked by the validator");
        set.unlock(9);
        assert!(!set.still(seen, false), "a newer version");
        assert_eq!(set.version(), 9);
        assert_eq!(set.try_lock(), Locking::Locked);
        set.retire(10);
        assert_eq!(set.try_lock(), Locking::Retired);
        assert!(!set.still(10, false), "retired");
    }
}
