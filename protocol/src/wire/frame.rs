//! Framing: incremental decoding with a size limit that never loses sync.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes before the payload: the `u32` length and the `u64` request id.
pub const HEADER_LEN: usize = 12;

/// One decoded frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole frame within the limit.
    Complete {
        /// The request id from the header.
        id: u64,
        /// The payload.
        payload: Bytes,
    },
    /// A frame over the limit. Its bytes are being skipped; the caller should
    /// answer `id` with an error and carry on.
    TooLarge {
        /// The request id from the header.
        id: u64,
        /// The payload size announced by the header.
        size: u64,
    },
}

/// Appends one frame (header + payload) to `out`.
pub fn write_frame(out: &mut Vec<u8>, id: u64, payload: &[u8]) {
    let len = (payload.len() + 8) as u32;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Decodes frames from a byte buffer filled by any reader (tokio or std).
#[derive(Debug)]
pub struct FrameDecoder {
    limit: usize,
    skipping: u64,
}

impl FrameDecoder {
    /// A decoder that accepts payloads of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        FrameDecoder { limit, skipping: 0 }
    }

    /// Changes the payload limit for the frames that follow.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The payload limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether the bytes of an oversized frame are still being dropped.
    pub fn skipping(&self) -> bool {
        self.skipping > 0
    }

    /// Takes the next frame out of `buf`, or `None` if more bytes are needed.
    /// Oversized frames come out as [`Frame::TooLarge`] once their header is in,
    /// and their remaining bytes are dropped as they arrive.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            if self.skipping > 0 {
                let n = (self.skipping as usize).min(buf.len());
                buf.advance(n);
                self.skipping -= n as u64;
                if self.skipping > 0 {
                    return None;
                }
            }
            if buf.len() < HEADER_LEN {
                return None;
            }
            let len = u32::from_be_bytes(buf[0..4].try_into().expect("4 bytes")) as u64;
            let id = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
            if len < 8 {
                // A frame too short to hold its id: skip its bytes, report it as empty.
                buf.advance(4);
                self.skipping = len;
                continue;
            }
            let size = len - 8;
            if size > self.limit as u64 {
                buf.advance(HEADER_LEN);
                self.skipping = size;
                return Some(Frame::TooLarge { id, size });
            }
            let total = HEADER_LEN + size as usize;
            if buf.len() < total {
                buf.reserve(total - buf.len());
                return None;
            }
            buf.advance(HEADER_LEN);
            let payload = buf.split_to(size as usize).freeze();
            return Some(Frame::Complete { id, payload });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bytes: &[u8], limit: usize, chunk: usize) -> Vec<Frame> {
        let mut decoder = FrameDecoder::new(limit);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(f) = decoder.decode(&mut buf) {
                out.push(f);
            }
        }
        out
    }

    #[test]
    fn decodes_in_any_chunking() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, 1, b"hello");
        write_frame(&mut bytes, 2, b"");
        write_frame(&mut bytes, 3, &[9; 100]);
        for chunk in [1, 3, 7, 1000] {
            let got = frames(&bytes, 1024, chunk);
            assert_eq!(got.len(), 3, "chunk {chunk}");
            assert_eq!(
                got[0],
                Frame::Complete {
                    id: 1,
                    payload: Bytes::from_static(b"hello")
                }
            );
            assert_eq!(
                got[1],
                Frame::Complete {
                    id: 2,
                    payload: Bytes::new()
                }
            );
        }
    }

    #[test]
    fn oversized_frame_is_reported_and_skipped_without_losing_sync() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, 7, &[1; 5000]);
        write_frame(&mut bytes, 8, b"ok");
        for chunk in [1, 100, 10_000] {
            let got = frames(&bytes, 1000, chunk);
            assert_eq!(
                got,
                vec![
                    Frame::TooLarge { id: 7, size: 5000 },
                    Frame::Complete {
                        id: 8,
                        payload: Bytes::from_static(b"ok")
                    }
                ]
            );
        }
    }
}
