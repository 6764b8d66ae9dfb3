//! The host interface: what a lambda object's storage fields call — the
//! node's transaction, which records every read's version and buffers every
//! write until the workflow commits.

use crate::ObjectId;
use bytes::Bytes;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A child call running on another node: its encoded return value.
pub type Shipped = Pin<Box<dyn Future<Output = Result<Vec<u8>, TxError>> + Send>>;

/// A child call a workflow may send to its object's node.
#[derive(Debug, Clone)]
pub struct ChildCall {
    /// The object.
    pub object: ObjectId,
    /// The function's name.
    pub function: &'static str,
    /// The function's signature fingerprint.
    pub fingerprint: u64,
    /// The encoded arguments.
    pub args: Vec<u8>,
    /// Seeds the call's random source there.
    pub seed: u64,
}

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
    /// The function gave up the workflow on purpose
    /// ([`TxError::abort`]): nothing of it is written.
    Aborted(String),
    /// The node's stored entries of this type were written by a build whose
    /// type had other fields: its objects are not served.
    Unreadable {
        /// The type.
        type_name: String,
        /// What differs.
        reason: String,
    },
    /// A method was called on an object that no constructor created.
    NoObject(ObjectId),
    /// A constructor was called on an object that exists.
    Exists(ObjectId),
    /// The node refused the workflow a resource: its application is at a
    /// quota (`limit` names the flag, `value` its setting). Nothing of it is
    /// written.
    Limit {
        /// The flag of the limit.
        limit: String,
        /// Its value.
        value: u64,
        /// What was refused and whose quota it is.
        detail: String,
    },
    /// A function of the workflow failed: it returned an error (its message
    /// is here) or named an object of another type. The whole workflow
    /// aborts, and its caller gets this.
    Failed {
        /// `Type::function`.
        function: String,
        /// What it said.
        message: String,
    },
}

impl TxError {
    /// Gives the workflow up with `message` (insufficient funds, a title
    /// too long, ...): `return Err(TxError::abort("..."))`. Nothing of it is
    /// written, and its caller gets the message.
    pub fn abort(message: impl Into<String>) -> TxError {
        TxError::Aborted(message.into())
    }

    /// Whether re-executing the workflow may succeed (a conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, TxError::Conflict)
    }
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
            TxError::Aborted(message) => write!(f, "{message}"),
            TxError::Unreadable { type_name, reason } => {
                write!(f, "objects of type {type_name} are stored in a form this build cannot read: {reason}")
            }
            TxError::NoObject(id) => {
                write!(f, "object {id} does not exist (no constructor made it)")
            }
            TxError::Exists(id) => write!(f, "object {id} exists already"),
            TxError::Limit {
                limit,
                value,
                detail,
            } => write!(f, "{detail} ({limit} {value})"),
            TxError::Failed { function, message } => write!(f, "{function} failed: {message}"),
        }
    }
}

impl std::error::Error for TxError {}

/// The node's side of a running workflow, as its storage fields see it. Keys
/// are whole entry keys of `object` (field prefix included).
///
/// A workflow is *doomed* by the first error any of its accesses or child
/// calls met: whatever its function returns afterwards (even if it swallowed
/// the error), the node acts on that first error — re-executes after a
/// conflict, aborts otherwise.
pub trait Host: Send + Sync {
    /// Records `error` as the workflow's fate unless one is recorded already.
    fn doom(&self, error: TxError);
    /// The first error recorded, if any.
    fn doomed(&self) -> Option<TxError>;
    /// Whether the node can read objects of `type_name` (their stored shape
    /// matches this build's type).
    fn readable(&self, type_name: &str) -> Result<(), TxError> {
        let _ = type_name;
        Ok(())
    }
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
    /// Runs `call` on the node that holds its object, inside this
    /// transaction, if that is another node and the host can send it there;
    /// `None`: the caller runs it here.
    fn ship(&self, call: ChildCall) -> Option<Shipped> {
        let _ = call;
        None
    }
}
