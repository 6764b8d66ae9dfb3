//! The data-plane wire: length-delimited frames over TCP carrying postcard messages.
//!
//! A frame is `[len: u32 BE][request id: u64 BE][payload]`, where `len` counts the
//! id and the payload. The request id sits outside the payload so a node can
//! answer the right caller even when the payload is oversized or does not decode.
//! Requests from one client are numbered by a per-client sequence that doubles as
//! the request id; with the client id sent in the `Hello`, `(client id, id)` names
//! a request uniquely so retries can be deduplicated.
//!
//! Every message has its encoder and decoder here, used by both the client and
//! the node: [`frame`](FrameDecoder) for the framing, [`Request`] for what a
//! client asks, [`encode_reply`]/[`decode_reply`] for every answer, and the
//! listing types the control replies carry.

mod frame;
mod info;
mod reply;
mod request;
mod txn;

pub use frame::{write_frame, Frame, FrameDecoder, HEADER_LEN};
pub use info::{MethodInfo, ObjectInfo, ServerInfo, TypeInfo, WorkflowStats};
pub use reply::{decode_reply, encode_outcome, encode_reply, Outcome};
pub use request::hello_protocol;
pub use request::{
    Adopt, AppCopy, Call, EntryCopy, Invoke, MapInvoke, MovedEntries, MovedObject, MovedReply,
    ObjectCopy, ObjectRef, Objects, PreparedCopy, Replicate, Request, Token, PROTOCOL_VERSION,
};
pub use txn::{EntryNow, TxnAnswer, TxnOp, TxnRefusal, TxnStep};

/// The host part of a `host:port` address, without an IPv6 literal's
/// brackets: the name a node's certificate must hold.
///
/// ```
/// use crucial_protocol::wire::host_of;
/// assert_eq!(host_of("node1.internal:7000"), "node1.internal");
/// assert_eq!(host_of("127.0.0.1:7000"), "127.0.0.1");
/// assert_eq!(host_of("[::1]:7000"), "::1");
/// ```
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Default largest frame a node or client accepts: 8 MiB (above Lambda's 6 MB payloads).
pub const DEFAULT_MAX_FRAME: usize = 8 << 20;
