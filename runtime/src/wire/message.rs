//! Request and reply messages. Requests borrow from the frame they arrived in.

use serde::{Deserialize, Serialize};

/// Bumped whenever the message layout changes; checked in the `Hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Names one object: its registered type name and its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef<'a> {
    /// Registered type name, e.g. `crucial::AtomicI64`.
    pub type_name: &'a str,
    /// The key given when the proxy was opened.
    pub key: &'a str,
}

/// A method call shipped to the object's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call<'a> {
    /// The target object.
    #[serde(borrow)]
    pub object: ObjectRef<'a>,
    /// Method name.
    pub method: &'a str,
    /// Fingerprint of the signature the client was built with.
    pub fingerprint: u64,
    /// Encoded argument tuple.
    #[serde(with = "serde_bytes")]
    pub args: &'a [u8],
    /// For blocking methods: give up after this many milliseconds (0: wait forever).
    pub timeout_ms: u64,
}

/// Everything a client can ask a node. The reply to each is a postcard
/// `Result<bytes, RemoteError>` whose bytes decode as documented per variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// First frame of a connection. Reply: [`ServerInfo`].
    Hello {
        /// [`PROTOCOL_VERSION`] of the client.
        protocol: u32,
        /// Random id of the client process, the first half of request identity.
        client_id: u64,
    },
    /// Run a method. Reply: the method's encoded return value.
    #[serde(borrow)]
    Call(Call<'a>),
    /// Create an object from an encoded initial state unless it exists. Reply: `bool` created.
    Create {
        /// The object.
        object: ObjectRef<'a>,
        /// Encoded initial state.
        #[serde(with = "serde_bytes")]
        state: &'a [u8],
    },
    /// Delete an object (and clear its poison). Reply: `bool` existed.
    Delete {
        /// The object.
        object: ObjectRef<'a>,
    },
    /// List the objects the node holds. Reply: `Vec<ObjectInfo>`.
    ListObjects,
    /// List the types in the node's registry. Reply: `Vec<TypeInfo>`.
    ListTypes,
    /// Liveness check. Reply: `()`.
    Ping,
}

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
