//! A workflow's transaction as its functions' storage fields see it: the
//! runtime's `Host` interface over [`Transaction`].

use super::transaction::{Abort, Transaction};
use bytes::Bytes;
use crucial::__private::store::Host;
use crucial::store::TxError;
use crucial::ObjectId;
use std::sync::Mutex;

impl From<Abort> for TxError {
    fn from(abort: Abort) -> TxError {
        match abort {
            Abort::Conflict => TxError::Conflict,
            Abort::Deadline => TxError::Deadline,
            // Entry accesses fail only with a deadline; a failed function is
            // the function's own error, not a host call's.
            Abort::Failed(reason) => TxError::Encode(reason),
        }
    }
}

impl From<TxError> for Abort {
    fn from(error: TxError) -> Abort {
        match error {
            TxError::Conflict => Abort::Conflict,
            TxError::Deadline => Abort::Deadline,
            other => Abort::Failed(other.to_string()),
        }
    }
}

/// The transaction of one execution of a workflow, shared by the handles of
/// its storage fields (and, next, by its concurrent child calls).
pub struct TxHost(Mutex<Option<Transaction>>);

impl TxHost {
    /// Wraps `txn` for the execution.
    pub fn new(txn: Transaction) -> TxHost {
        TxHost(Mutex::new(Some(txn)))
    }

    /// Takes the transaction back to commit it; field handles kept past the
    /// execution get a conflict from then on.
    pub fn take(&self) -> Transaction {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("an execution's transaction is taken once")
    }

    fn with<T>(&self, f: impl FnOnce(&mut Transaction) -> Result<T, Abort>) -> Result<T, TxError> {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(txn) => f(txn).map_err(TxError::from),
            None => Err(TxError::Conflict),
        }
    }
}

impl Host for TxHost {
    fn get(&self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, TxError> {
        self.with(|txn| txn.get(object, key))
    }

    fn put(&self, object: &ObjectId, key: &[u8], value: Bytes) -> Result<(), TxError> {
        self.with(|txn| txn.put(object, key, value))
    }

    fn delete(&self, object: &ObjectId, key: &[u8]) -> Result<(), TxError> {
        self.with(|txn| txn.delete(object, key))
    }

    fn scan(
        &self,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, TxError> {
        self.with(|txn| txn.scan(object, from, to))
    }
}
