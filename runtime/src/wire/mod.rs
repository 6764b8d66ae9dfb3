//! The data-plane wire: length-delimited frames over TCP carrying postcard messages.
//!
//! A frame is `[len: u32 BE][request id: u64 BE][payload]`, where `len` counts the
//! id and the payload. The request id sits outside the payload so a node can
//! answer the right caller even when the payload is oversized or does not decode.
//! Requests from one client are numbered by a per-client sequence that doubles as
//! the request id; with the client id sent in the `Hello`, `(client id, id)` names
//! a request uniquely so retries can be deduplicated.

mod frame;
mod message;

pub use frame::{write_frame, Frame, FrameDecoder, HEADER_LEN};
pub use message::{
    Call, MethodInfo, ObjectInfo, ObjectRef, Request, ServerInfo, TypeInfo, PROTOCOL_VERSION,
};

/// Default largest frame a node or client accepts: 8 MiB (above Lambda's 6 MB payloads).
pub const DEFAULT_MAX_FRAME: usize = 8 << 20;
