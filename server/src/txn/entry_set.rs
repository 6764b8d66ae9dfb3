//! An entry set: the unit of versioning and locking of lambda objects
//! (LambdaStore 4.3.1). One word holds its version, a lock bit and a retired
//! bit, as Silo's TID word does; reads take no lock, they only load the word.
//!
//! A transaction that spans nodes also *pins* the sets it read when it
//! prepares, until its outcome is known: a pinned set cannot be locked by a
//! writer, so what a prepared transaction read stays as it read it on every
//! node at once (see `txn/participant.rs`). Pins and locks exclude each other
//! the way Dekker's flags do: each side announces itself, then looks at the
//! other, so at least one of two racing sides sees the other and backs off.

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
    /// Pins: the low half counts prepared transactions that read this set
    /// and wait for their outcome (a writer never passes them); the high
    /// half counts *reading* pins, taken by a reader that lost to writers
    /// too often (`Transaction`'s `Stance::PinReads`) while it executes,
    /// which only an insisting writer passes (the reader then fails its
    /// validation: a reading pin only protects the reader's progress, never
    /// correctness).
    pins: AtomicU64,
}

/// One reading pin, in [`EntrySet::pins`].
const READING: u64 = 1 << 32;
/// The prepared pins, in [`EntrySet::pins`].
const PREPARED: u64 = READING - 1;

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
            pins: AtomicU64::new(0),
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

    /// Tries to lock the set for a commit; an `insisting` writer passes
    /// reading pins (not prepared ones).
    pub fn try_lock(&self, insisting: bool) -> Locking {
        let word = self.word.load(Ordering::Acquire);
        if word & RETIRED != 0 {
            return Locking::Retired;
        }
        if word & LOCKED != 0 {
            return Locking::Busy;
        }
        match self
            .word
            .compare_exchange(word, word | LOCKED, Ordering::SeqCst, Ordering::Acquire)
        {
            Ok(_) if self.pins.load(Ordering::SeqCst) & Self::blocking(insisting) != 0 => {
                // A prepared reader holds it: give it back untouched.
                self.word.store(word, Ordering::SeqCst);
                Locking::Busy
            }
            Ok(_) => Locking::Locked,
            Err(now) if now & RETIRED != 0 => Locking::Retired,
            Err(_) => Locking::Busy,
        }
    }

    /// The pins a writer cannot pass.
    fn blocking(insisting: bool) -> u64 {
        match insisting {
            true => PREPARED,
            false => u64::MAX,
        }
    }

    /// Pins the set for a prepared transaction that read it at `version`,
    /// if that read still holds (then `true`: no writer can lock the set
    /// until [`EntrySet::unpin`]); `false` leaves it unpinned.
    pub fn pin(&self, version: u64) -> bool {
        self.pin_by(1, version)
    }

    /// Releases a pin (the prepared transaction's outcome is applied).
    pub fn unpin(&self) {
        self.pins.fetch_sub(1, Ordering::SeqCst);
    }

    /// [`EntrySet::pin`] for a reader while it executes: a writer that
    /// insists passes it.
    pub fn pin_reading(&self, version: u64) -> bool {
        self.pin_by(READING, version)
    }

    /// Releases a reading pin.
    pub fn unpin_reading(&self) {
        self.pins.fetch_sub(READING, Ordering::SeqCst);
    }

    fn pin_by(&self, pin: u64, version: u64) -> bool {
        self.pins.fetch_add(pin, Ordering::SeqCst);
        let word = self.word.load(Ordering::SeqCst);
        let holds = word >> FLAGS == version && word & (RETIRED | LOCKED) == 0;
        if !holds {
            self.pins.fetch_sub(pin, Ordering::SeqCst);
        }
        holds
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
        assert_eq!(set.try_lock(false), Locking::Locked);
        assert_eq!(set.try_lock(false), Locking::Busy);
        assert!(!set.still(seen, false), "locked by another");
        assert!(set.still(seen, true), "locked by the validator");
        set.unlock(9);
        assert!(!set.still(seen, false), "a newer version");
        assert_eq!(set.version(), 9);
        assert_eq!(set.try_lock(false), Locking::Locked);
        set.retire(10);
        assert_eq!(set.try_lock(false), Locking::Retired);
        assert!(!set.still(10, false), "retired");
    }

    #[test]
    fn a_pinned_set_cannot_be_locked_and_a_locked_or_changed_set_cannot_be_pinned() {
        let set = EntrySet::new(7);
        assert!(set.pin(7));
        assert!(set.pin(7), "readers share a set");
        assert_eq!(set.try_lock(false), Locking::Busy);
        assert_eq!(set.version(), 7, "a refused lock leaves the word as it was");
        set.unpin();
        assert_eq!(set.try_lock(false), Locking::Busy, "one pin is left");
        set.unpin();
        assert_eq!(set.try_lock(false), Locking::Locked);
        assert!(!set.pin(7), "locked by a writer");
        set.unlock(8);
        assert!(!set.pin(7), "a newer version than the read");
        assert_eq!(
            set.try_lock(false),
            Locking::Locked,
            "failed pins leave nothing"
        );
    }

    #[test]
    fn an_insisting_writer_passes_reading_pins_and_never_a_prepared_one() {
        let set = EntrySet::new(7);
        assert!(set.pin_reading(7));
        assert_eq!(set.try_lock(false), Locking::Busy, "a reader's pin");
        assert_eq!(set.try_lock(true), Locking::Locked, "passed");
        assert!(!set.pin_reading(7), "locked");
        set.unlock(8);
        assert!(!set.still(7, false), "the reader fails its validation");
        assert!(set.pin(8));
        assert_eq!(set.try_lock(true), Locking::Busy, "a prepared pin");
        set.unpin();
        set.unpin_reading();
        assert_eq!(set.try_lock(false), Locking::Locked, "nothing left");
    }
}
