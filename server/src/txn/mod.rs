//! Transactions over lambda objects (LambdaStore's storage layer, on one
//! node): objects made of entries in key order, entry sets as the unit of
//! versioning and locking, Silo-style optimistic concurrency control, and
//! workflows re-executed on conflict. `#[lambda_object]` functions run in a
//! [`Transaction`]; a transaction spanning nodes adds two-phase commit around
//! the same lock-validate-install steps (`Transaction::commit` is written as
//! those steps so that prepare = lock + validate and commit = install).

mod census;
mod decision;
mod entry_set;
#[cfg(test)]
mod fields_test;
#[cfg(test)]
mod history;
mod host;
mod object;
mod participant;
mod provisional;
mod spanning;
#[cfg(test)]
mod spanning_history;
mod transaction;
mod workflow;

#[cfg(feature = "cluster")]
pub use decision::forget;
pub use decision::{resolve, Resolution};
pub use host::{Fate, TxHost};
#[cfg(feature = "cluster")]
pub use participant::Held;
pub use participant::{one_key, Access, Installed, PartCopy, Participant, Read, TxnId};
pub use provisional::Meeting;
#[cfg(feature = "cluster")]
pub use spanning::{CallError, Called, Mapping, Part};
pub use spanning::{Decision, MapResults, MapReturns, MapStep, NodeId, Reach, Spanning};
pub use transaction::{Abort, ObjectEntries, Stance, Store, Transaction, Writes};
pub use workflow::{retry, Committed, Failure, Limits};
#[cfg(test)]
pub use workflow::{run, run_with_host};
