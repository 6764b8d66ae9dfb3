//! Errors seen by users of proxies, cloud threads and clients.

use serde::{Deserialize, Serialize};

/// The result type of every remote operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a remote call or a cloud thread.
///
/// Errors are serializable so a cloud thread can return `crucial::Result<T>` and
/// its caller sees the error that happened remotely.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum Error {
    /// The server answered the call with an error; the connection is fine.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// No connection could be made to a node.
    #[error("cannot connect to crucial server {addr}: {reason}")]
    Connect {
        /// Address tried.
        addr: String,
        /// What the operating system or handshake said.
        reason: String,
    },
    /// The connection broke while the call was in flight (retried calls are deduplicated).
    #[error("connection to crucial server {addr} lost: {reason}")]
    Disconnected {
        /// Address of the node.
        addr: String,
        /// What broke.
        reason: String,
    },
    /// A value could not be encoded.
    #[error("cannot encode value: {0}")]
    Encode(String),
    /// A value could not be decoded (usually a client and a server built from different code).
    #[error("cannot decode value: {0}")]
    Decode(String),
    /// The configuration is incomplete or invalid.
    #[error("configuration error: {0}")]
    Config(String),
    /// A cloud thread failed: its function returned an error, panicked, or could not run.
    #[error("cloud thread `{thread}` failed (attempt {attempt}): {message}")]
    Thread {
        /// Registered name of the cloud thread.
        thread: String,
        /// Which attempt failed, from 1.
        attempt: u32,
        /// The remote panic or error message.
        message: String,
    },
    /// An operation on an object was refused by the object itself (for example a
    /// merge on a value of another type).
    #[error("object error: {0}")]
    Object(String),
}

pub use crucial_protocol::RemoteError;

impl From<crucial_protocol::CodecError> for Error {
    fn from(error: crucial_protocol::CodecError) -> Error {
        match error {
            crucial_protocol::CodecError::Encode(e) => Error::Encode(e),
            crucial_protocol::CodecError::Decode(e) => Error::Decode(e),
        }
    }
}
