//! # crucial-protocol
//!
//! What clients and nodes of Crucial for Rust say to each other, in one crate
//! both depend on: the value encoding ([`codec`]), the framed wire
//! ([`wire`]: frames, requests — the client's and the node-to-node ones —
//! and replies), the errors a node answers with ([`RemoteError`]), the names
//! of lambda objects ([`ObjectId`]), and placement ([`placement`]: views and
//! the consistent-hash ring both sides route with).
//!
//! Users do not depend on it: the `crucial` crate re-exports what they match
//! on (`RemoteError`, `ObjectId`). Every message has its encoder and decoder
//! side by side here, with round-trip tests, so the node and the client cannot
//! drift apart.

#![warn(missing_docs)]

pub mod codec;
mod error;
mod object_id;
pub mod placement;
pub mod wire;

pub use error::{CodecError, RemoteError};
pub use object_id::ObjectId;
