//! Moving objects between nodes: the sender's step through a view
//! (`send.rs`, run by a clustered node's handoff thread), and the receiver's
//! adoption (`receive.rs`).
//!
//! To step to a view, a node takes out every object it holds and does not own
//! in that view (each marked moved under its lock, so a call that already found
//! it is redirected), answers the calls parked on them with a redirect (their
//! clients re-send them, with the same ids, to the new owner, where they park
//! again: blocking methods are idempotent by their tickets), and sends the
//! objects in batches to their new owners with the node's remembered replies.
//! Once every batch is acknowledged (stored, and on disk for persistent
//! objects) it tells every member it is done with the view.

mod receive;
#[cfg(feature = "cluster")]
mod send;

pub use receive::adopt;
#[cfg(feature = "cluster")]
pub(super) use send::spawn;

/// An application's lambda objects with their entries.
type LambdaObjects = crate::txn::ObjectEntries;
