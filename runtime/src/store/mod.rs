//! Storage fields of lambda objects: the types a `#[lambda_object]` struct's
//! fields are declared with. Each is a handle on one field of one object in
//! the running workflow's transaction: reads record versions, writes are
//! buffered until the workflow commits, and every access may fail with a
//! [`TxError`] that the function passes on with `?`.
//!
//! | field | holds | entries |
//! |---|---|---|
//! | [`Cell<T>`] | one value | one |
//! | [`Map<K, V>`] | keys to values, in key order, with range scans | one per key |
//! | [`MultiMap<K, V>`] | keys to sets of values | one per pair |
//! | [`Set<T>`] | values in order, each once | one per value |
//!
//! Keys are ordered as their types order them (`Ord`), through an
//! order-preserving encoding.

pub(crate) mod fields;
pub(crate) mod handle;
pub(crate) mod host;
mod join;
pub(crate) mod key;
pub(crate) mod map;
pub(crate) mod workflow;

pub use fields::{Cell, Map, MultiMap, Set};
pub use host::TxError;
pub use join::{join, join_all};
pub use map::{Mapped, Objects};
pub use workflow::{FunctionKind, LambdaFunctions, ObjectKey, Workflow};
