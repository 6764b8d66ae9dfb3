//! What control replies carry: the handshake's answer and the node's listings.

use serde::{Deserialize, Serialize};

/// The node's answer to `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The node's protocol version.
    pub protocol: u32,
    /// The node's crate version.
    pub version: String,
    /// How many shared types the node's registry holds.
    pub types: u32,
}

/// One object held by a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Registered type name.
    pub type_name: String,
    /// Key.
    pub key: String,
    /// Whether a mutating method panicked on it.
    pub poisoned: bool,
    /// Blocking calls parked on it.
    pub parked: u32,
    /// Kept on disk (a `persistent` type on a node with a data directory).
    pub persistent: bool,
    /// In memory now; `false` while passivated (on disk only, brought back
    /// by its next call).
    pub resident: bool,
    /// Encoded size of its state at its last write, in bytes (0 for objects
    /// that are not kept on disk: their size is not tracked).
    pub bytes: u64,
}

/// One registered shared type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    /// Registered (wire) name.
    pub name: String,
    /// Rust module that defines it.
    pub module: String,
    /// Declared `persistent`.
    pub persistent: bool,
    /// Its shipped methods.
    pub methods: Vec<MethodInfo>,
}

/// One shipped method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodInfo {
    /// Signature as written, normalized.
    pub signature: String,
    /// `&self` method.
    pub read_only: bool,
}
