//! The host interface: what a lambda object's storage fields call — the
//! node's transaction, which records every read's version and buffers every
//! write until the workflow commits.

use crate::ObjectId;
use bytes::Bytes;
use std::fmt;

/// Why a storage access of a lambda-object function failed. Functions pass it
/// on with `?`; the node then re-executes the workflow (`Conflict`), answers a
/// timeout (`Deadline`), or fails the workflow with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxError {
    /// Another workflow changed what this one read: it will be re-executed.
    Conflict,
    /// The workflow's time limit passed.
    Deadline,
    /// A stored entry does not decode as the field's type (the type changed).
    Decode {
        /// What was being read.
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// A value or key cannot be encoded (a map used as a key, a failing
    /// `Serialize`).
    Encode(String),
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::Conflict => write!(f, "the workflow conflicted with another one"),
            TxError::Deadline => write!(f, "the workflow ran past its time limit"),
            TxError::Decode { what, reason } => {
                write!(f, "{what} does not decode: {reason} (did its type change?)")
            }
            TxError::Encode(reason) => write!(f, "cannot encode: {reason}"),
        }
    }
}

impl std::error::Error for TxError {}

/// The node's side of a running workflow, as its storage fields see it. Keys
/// are whole entry keys of `object` (field prefix included).
pub trait Host: Send + Sync {
    /// One entry.
    fn get(&self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, TxError>;
    /// Sets one entry.
    fn put(&self, object: &ObjectId, key: &[u8], value: Bytes) -> Result<(), TxError>;
    /// Deletes one entry.
    fn delete(&self, object: &ObjectId, key: &[u8]) -> Result<(), TxError>;
    /// The entries in `[from, to)` in key order (`to`: `None` for the end).
    fn scan(
        &self,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, TxError>;
}
