//! Built-in shared objects, written as ordinary `#[shared]` types: one path for everything.
//!
//! The generic collections ([`List<T>`](crate::List), [`Map<K, V>`](crate::Map))
//! are typed facades over concrete shared states that hold encoded values, because
//! a server cannot instantiate a generic type it was not compiled with.

pub mod atomic;
pub mod bytes;
pub mod list;
pub mod map;
pub mod sync;
