//! A workflow's transaction as its functions' storage fields see it: the
//! runtime's `Host` interface over [`Spanning`] (this node's part, and the
//! other nodes' objects through their participants).

use super::spanning::Spanning;
use super::transaction::Abort;
use bytes::Bytes;
use crucial::__private::store::{ChildCall, Host, Shipped};
use crucial::store::TxError;
use crucial::ObjectId;
use std::sync::Mutex;

impl From<Abort> for TxError {
    fn from(abort: Abort) -> TxError {
        match abort {
            Abort::Conflict => TxError::Conflict,
            Abort::Deadline => TxError::Deadline,
            Abort::Failed(error) => error,
            // Only a commit says it; a function never sees one.
            Abort::NotDurable(reason) => TxError::Aborted(reason),
        }
    }
}

impl From<TxError> for Abort {
    fn from(error: TxError) -> Abort {
        match error {
            TxError::Conflict => Abort::Conflict,
            TxError::Deadline => Abort::Deadline,
            other => Abort::Failed(other),
        }
    }
}

/// The transaction of one execution of a workflow, shared by the handles of
/// its storage fields and by its child calls, and the first error any of them
/// met (the workflow's fate, see [`Host::doom`]).
pub struct TxHost {
    txn: Mutex<Option<Spanning>>,
    doom: Fate,
}

/// The first error a workflow's accesses met, kept for [`Host::doom`] and
/// [`Host::doomed`] (by every host of a workflow's part).
#[derive(Default)]
pub struct Fate(Mutex<Option<TxError>>);

impl Fate {
    /// Records `error` unless one is recorded already.
    pub fn doom(&self, error: TxError) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(error);
    }

    /// The first error recorded.
    pub fn doomed(&self) -> Option<TxError> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl TxHost {
    /// Wraps `txn` for the execution.
    pub fn new(txn: Spanning) -> TxHost {
        TxHost {
            txn: Mutex::new(Some(txn)),
            doom: Fate::default(),
        }
    }

    /// Takes the transaction back to commit it; field handles kept past the
    /// execution get a conflict from then on.
    pub fn take(&self) -> Spanning {
        self.txn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("an execution's transaction is taken once")
    }

    /// Runs `f` on the execution's transaction; an error dooms the workflow.
    pub fn spanning<T>(
        &self,
        f: impl FnOnce(&mut Spanning) -> Result<T, Abort>,
    ) -> Result<T, TxError> {
        self.with(f)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Spanning) -> Result<T, Abort>) -> Result<T, TxError> {
        let result = match self.txn.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(txn) => f(txn).map_err(TxError::from),
            None => Err(TxError::Conflict),
        };
        if let Err(error) = &result {
            self.doom(error.clone());
        }
        result
    }
}

impl Host for TxHost {
    fn doom(&self, error: TxError) {
        self.doom.doom(error);
    }

    fn doomed(&self) -> Option<TxError> {
        self.doom.doomed()
    }

    fn readable(&self, type_name: &str) -> Result<(), TxError> {
        self.with(|txn| match txn.local_mut().unreadable(type_name) {
            Some(reason) => Err(Abort::Failed(TxError::Unreadable {
                type_name: type_name.to_string(),
                reason,
            })),
            None => Ok(()),
        })
    }

    fn get(&self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, TxError> {
        self.with(|txn| txn.get(object, key))
    }

    fn put(&self, object: &ObjectId, key: &[u8], value: Bytes) -> Result<(), TxError> {
        self.with(|txn| txn.write(object, key, Some(value)))
    }

    fn delete(&self, object: &ObjectId, key: &[u8]) -> Result<(), TxError> {
        self.with(|txn| txn.write(object, key, None))
    }

    fn scan(
        &self,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, TxError> {
        self.with(|txn| txn.scan(object, from, to))
    }

    fn ship(&self, call: ChildCall) -> Option<Shipped> {
        let called = self
            .txn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()?
            .ship(call)?;
        Some(Box::pin(async move { called.await.map_err(TxError::from) }))
    }
}
