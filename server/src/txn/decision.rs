//! Where a transaction across nodes records its decision, and how a
//! participant left in doubt learns it.
//!
//! The manager's own part of the transaction writes one entry, the
//! *decision record*, in the decisions object of its root's home (type
//! [`DECISIONS`], key = the home: it lives, moves and is copied with the
//! objects of that home). The record is locked from the manager's prepare
//! on, and installed as `Committed(T)` with the manager's other writes, in
//! the same commit; that commit is on disk and on the home's replicas before
//! any participant is told to commit. So the record and the manager's writes
//! survive a crash together or not at all.
//!
//! A participant whose prepared part waits too long for the decision asks
//! the home's owner ([`resolve`]): a record says committed (at `T`); no
//! record means the manager never decided to commit, and the owner records
//! an abort in its place (*presumed abort*) so that a manager still running
//! cannot commit after all; a record still locked means the manager is
//! deciding right now (ask again).
//!
//! A record is deleted once every participant acknowledged the commit
//! (no one will ask for it again); aborts recorded by a resolver stay.

use super::participant::TxnId;
use super::transaction::{Abort, Durably, Store, Writes};
use bytes::Bytes;
use crucial::ObjectId;
use crucial_protocol::placement::{lambda_home_parts, DECISIONS};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The object holding the decisions of the transactions whose root runs at
/// `home`.
pub fn anchor(home: &str) -> ObjectId {
    let (application, _) = lambda_home_parts(home);
    ObjectId::new(application, DECISIONS, home)
}

/// The key of `txn`'s record in its anchor.
pub fn record_key(txn: TxnId) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&txn.manager.to_be_bytes());
    key.extend_from_slice(&txn.seq.to_be_bytes());
    key
}

/// The record of a commit at `tid`.
pub fn committed(tid: u64) -> Bytes {
    Bytes::copy_from_slice(&tid.to_be_bytes())
}

/// The record of an abort.
fn aborted() -> Bytes {
    Bytes::new()
}

/// What a record says: committed at this number, or (`None`) aborted.
fn read(record: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(record).ok().map(u64::from_be_bytes)
}

/// A transaction's outcome as its anchor's owner knows it.
#[derive(Debug)]
pub enum Resolution {
    /// Committed at this number.
    Committed(u64),
    /// Aborted. If this call recorded the abort, its way to the disk and
    /// its writes (for the home's replicas) with their number: the answer
    /// waits for both.
    Aborted(Option<(u64, Option<Durably>, Writes)>),
    /// The manager is deciding (the record is locked): ask again.
    Undecided,
}

/// How long resolving may take on the anchor's owner.
const RESOLVE_WITHIN: Duration = Duration::from_secs(2);

/// The outcome of `txn`, whose decision is recorded in `anchor` on this
/// node's `store` (presumed abort: no record is recorded as an abort).
pub fn resolve(store: &Arc<Store>, txn: TxnId, anchor: &ObjectId) -> Resolution {
    let key = record_key(txn);
    let mut t = store.begin(Some(Instant::now() + RESOLVE_WITHIN));
    match t.get(anchor, &key) {
        Ok(Some(record)) => {
            return match read(&record) {
                Some(tid) => Resolution::Committed(tid),
                None => Resolution::Aborted(None),
            }
        }
        Ok(None) => {}
        Err(_) => return Resolution::Undecided,
    }
    if t.put(anchor, &key, aborted()).is_err() {
        return Resolution::Undecided;
    }
    match t.commit_durably() {
        Ok(recorded) => Resolution::Aborted(Some(recorded)),
        // Locked by the manager's prepare, or written meanwhile.
        Err(Abort::Conflict) | Err(Abort::Deadline) => Resolution::Undecided,
        Err(abort) => {
            tracing::warn!(?txn, "cannot record a presumed abort: {abort:?}");
            Resolution::Undecided
        }
    }
}

/// Deletes the records of `done` (every participant acknowledged their
/// commits) in one commit on `store`: its number, way to the disk and
/// writes, for the replicas. `None`: nothing to delete, or it conflicted
/// (they are deleted with the next ones).
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
pub fn forget(
    store: &Arc<Store>,
    done: &[(ObjectId, Vec<u8>)],
) -> Option<(u64, Option<Durably>, Writes)> {
    if done.is_empty() {
        return None;
    }
    let mut t = store.begin(Some(Instant::now() + RESOLVE_WITHIN));
    for (anchor, key) in done {
        t.delete(anchor, key).ok()?;
    }
    t.commit_durably().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(seq: u64) -> TxnId {
        TxnId { manager: 7, seq }
    }

    #[test]
    fn no_record_is_recorded_as_an_abort_and_stays_one() {
        let store = Arc::new(Store::default());
        let anchor = anchor("bank");
        assert!(matches!(
            resolve(&store, txn(1), &anchor),
            Resolution::Aborted(Some(_))
        ));
        assert!(matches!(
            resolve(&store, txn(1), &anchor),
            Resolution::Aborted(None)
        ));
    }

    #[test]
    fn a_committed_record_answers_its_number_and_a_locked_one_undecided() {
        let store = Arc::new(Store::default());
        let anchor = anchor("bank");
        let mut manager = store.begin(None);
        manager
            .put(&anchor, &record_key(txn(2)), committed(0))
            .unwrap();
        let mut prepared = manager.prepare().unwrap();
        assert!(matches!(
            resolve(&store, txn(2), &anchor),
            Resolution::Undecided
        ));
        assert!(prepared.rewrite(&anchor, &record_key(txn(2)), committed(42)));
        prepared.commit_at(42);
        assert!(matches!(
            resolve(&store, txn(2), &anchor),
            Resolution::Committed(tid) if tid >= 42
        ));
        let forgotten = forget(&store, &[(anchor.clone(), record_key(txn(2)))]);
        assert!(forgotten.is_some());
        assert_eq!(store.peek(&anchor, &record_key(txn(2))), None);
    }

    #[test]
    fn a_decisions_object_lives_at_its_home() {
        let store = Store::default();
        let anchor = anchor("bank\u{1f}Account\u{1f}a");
        assert_eq!(anchor.application, "bank");
        assert_eq!(store.home(&anchor), "bank\u{1f}Account\u{1f}a");
        assert!(store.at_home(&anchor, "bank\u{1f}Account\u{1f}a"));
        assert!(!store.at_home(&anchor, "bank"));
    }
}
