//! Replies: every frame a node sends answers one request with the value's bytes
//! or an error. Encoder and decoder live side by side so the node and the client
//! cannot drift apart, and a new peer message reuses them instead of laying out
//! bytes by hand again.
//!
//! A reply payload is postcard's encoding of `Result<bytes, RemoteError>`:
//! `0x00`, a varint length and the value's bytes for `Ok`; `0x01` and the
//! encoded [`RemoteError`] for `Err`. What the value bytes hold depends on the
//! request (see [`Request`](super::Request)).

use super::frame::HEADER_LEN;
use crate::{codec, CodecError as Error, RemoteError};
use bytes::{BufMut, Bytes};

/// A reply before it is framed: the encoded value, or the error for the caller.
pub type Outcome = Result<Vec<u8>, RemoteError>;

/// Appends the frame answering request `id` with `outcome` to `out`.
///
/// The `Ok` case is laid out directly (tag, varint length, bytes) so the hot
/// path copies the value once; a test checks it is byte for byte postcard's own.
pub fn encode_reply(out: &mut impl BufMut, id: u64, outcome: Result<&[u8], &RemoteError>) {
    match outcome {
        Ok(value) => {
            let mut prefix = [0u8; 11];
            let n = 1 + varint(value.len() as u64, &mut prefix[1..]); // prefix[0] = 0: `Ok`
            put_header(out, id, n + value.len());
            out.put_slice(&prefix[..n]);
            out.put_slice(value);
        }
        Err(error) => {
            let payload = codec::encode(&Err::<(), _>(error)).unwrap_or_else(|e| {
                codec::encode(&Err::<(), _>(RemoteError::Protocol {
                    reason: format!("cannot encode reply: {e}"),
                }))
                .expect("an error reply encodes")
            });
            put_header(out, id, payload.len());
            out.put_slice(&payload);
        }
    }
}

/// [`encode_reply`] for an owned [`Outcome`].
pub fn encode_outcome(out: &mut impl BufMut, id: u64, outcome: &Outcome) {
    encode_reply(out, id, outcome.as_ref().map(Vec::as_slice));
}

/// Splits a reply payload into the value's bytes (a slice of `payload`, no
/// copy) or the node's error. `Err` means the payload is not a reply at all.
pub fn decode_reply(payload: &Bytes) -> Result<Result<Bytes, RemoteError>, Error> {
    let reply: Result<&serde_bytes::Bytes, RemoteError> = codec::decode_borrowed(payload)?;
    Ok(reply.map(|value| payload.slice_ref(value)))
}

fn put_header(out: &mut impl BufMut, id: u64, payload_len: usize) {
    out.put_u32((payload_len + 8) as u32);
    out.put_u64(id);
    debug_assert_eq!(HEADER_LEN, 12);
}

/// Writes `value` as a LEB128 varint (postcard's length prefix); returns its size.
fn varint(mut value: u64, out: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[n] = byte;
            return n + 1;
        }
        out[n] = byte | 0x80;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Frame, FrameDecoder};
    use bytes::BytesMut;

    fn frame(outcome: &Outcome) -> (u64, Bytes) {
        let mut buf = BytesMut::new();
        encode_outcome(&mut buf, 42, outcome);
        match FrameDecoder::new(1 << 20).decode(&mut buf) {
            Some(Frame::Complete { id, payload }) => {
                assert!(buf.is_empty(), "one frame, nothing after it");
                (id, payload)
            }
            other => panic!("no frame: {other:?}"),
        }
    }

    #[test]
    fn ok_replies_are_postcards_own_encoding_and_round_trip() {
        for size in [0usize, 1, 127, 128, 300, 16_383, 16_384, 20_000] {
            let value = vec![7u8; size];
            let (id, payload) = frame(&Ok(value.clone()));
            assert_eq!(id, 42);
            let expected =
                codec::encode(&Ok::<_, RemoteError>(serde_bytes::Bytes::new(&value))).unwrap();
            assert_eq!(&payload[..], &expected[..], "size {size}");
            assert_eq!(decode_reply(&payload).unwrap().unwrap(), value);
        }
    }

    #[test]
    fn error_replies_round_trip() {
        let error = RemoteError::Timeout {
            type_name: "crucial::Semaphore".into(),
            key: "s".into(),
            method: "acquire".into(),
            waited_ms: 150,
        };
        let (_, payload) = frame(&Err(error.clone()));
        assert_eq!(decode_reply(&payload).unwrap(), Err(error));
    }

    #[test]
    fn a_payload_that_is_no_reply_is_an_error() {
        assert!(decode_reply(&Bytes::from_static(&[9, 9, 9])).is_err());
        assert!(decode_reply(&Bytes::new()).is_err());
    }
}
