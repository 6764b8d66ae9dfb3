//! The three targets. Each panics on what must never happen, and the
//! driver catches and keeps the input.

use bytes::BytesMut;
use crucial_protocol::wire::{
    self, decode_reply, Frame, FrameDecoder, Request, Token, PROTOCOL_VERSION,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The payload limit the decoder targets and the node use: small, so an
/// allocation past it stands out.
pub const MAX_FRAME: usize = 64 * 1024;

/// Arbitrary bytes, cut into arbitrary chunks (the input's first byte picks
/// the chunk size), through the frame decoder; every payload it yields goes
/// on to the request decoder. Panics if a payload exceeds the limit or a
/// byte is lost.
pub fn frame(input: &[u8]) {
    let (chunk, bytes) = match input.split_first() {
        Some((first, rest)) => (1 + *first as usize, rest),
        None => return,
    };
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(frame) = decoder.decode(&mut buf) {
            match frame {
                Frame::Complete { payload, .. } => {
                    assert!(payload.len() <= MAX_FRAME, "a payload past the limit");
                    seen += wire::HEADER_LEN + payload.len();
                    request(&payload);
                }
                Frame::TooLarge { size, .. } => {
                    assert!(size > MAX_FRAME as u64, "a frame within the limit refused");
                }
            }
        }
    }
    assert!(seen <= bytes.len(), "more payload than input");
}

/// A payload through the request decoder; a request that decodes must
/// encode and decode to itself.
pub fn request(payload: &[u8]) {
    if let Ok(request) = Request::decode(payload) {
        let again = request.encode().expect("a decoded request encodes");
        assert_eq!(
            Request::decode(&again).expect("its encoding decodes"),
            request,
            "a request that does not round-trip"
        );
    }
    let _ = wire::hello_protocol(payload);
}

/// A node in this process, and the apply target against it.
pub struct Apply {
    node: crucial_server::NodeHandle,
    client_id: u64,
}

impl Apply {
    /// Starts a node on a loopback port (payload limit [`MAX_FRAME`]).
    pub fn start() -> Apply {
        let config = crucial_server::NodeConfig {
            listen: "127.0.0.1:0".into(),
            workers: 2,
            max_frame: MAX_FRAME,
            handshake_timeout: Duration::from_secs(2),
            ..crucial_server::NodeConfig::default()
        };
        Apply {
            node: crucial_server::start(config).expect("a node in this process"),
            client_id: 1,
        }
    }

    /// Sends one connection's worth of requests: the input split into
    /// payloads at every `0xff 0xfe` pair (so one input can hold several
    /// requests), each framed, after a `Hello`, then a `Ping`. The node
    /// must answer the `Ping` (or close the connection: it may, after a
    /// request that breaks the protocol). Panics if it does neither within
    /// 10 s, or if it stops serving new connections.
    pub fn apply(&mut self, input: &[u8]) {
        self.client_id += 1;
        let addr = self.node.addr();
        let mut stream = TcpStream::connect(addr).expect("the node accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut out = hello(self.client_id, Some(Token("fuzz")));
        let mut id = 0;
        for payload in split(input) {
            id += 1;
            if payload.len() <= MAX_FRAME {
                wire::write_frame(&mut out, id, payload);
            }
        }
        let ping = id + 1;
        wire::write_frame(&mut out, ping, &Request::Ping.encode().expect("ping"));
        if stream.write_all(&out).is_err() {
            // Closed before all of it was written: the node refused the
            // connection's protocol, which it may.
            return alive(addr);
        }
        let mut decoder = FrameDecoder::new(8 << 20);
        let mut buf = BytesMut::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            while let Some(frame) = decoder.decode(&mut buf) {
                if let Frame::Complete { id, payload } = frame {
                    assert!(
                        decode_reply(&payload).is_ok(),
                        "a reply that does not decode"
                    );
                    if id == ping {
                        return alive(addr);
                    }
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) => return alive(addr),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return alive(addr),
                Err(e) => panic!("the node neither answered the Ping nor closed: {e}"),
            }
        }
    }
}

/// A `Hello` frame (id 0) as client `client_id`.
fn hello(client_id: u64, token: Option<Token<'_>>) -> Vec<u8> {
    let hello = Request::Hello {
        protocol: PROTOCOL_VERSION,
        client_id,
        token,
    };
    let mut out = Vec::new();
    wire::write_frame(&mut out, 0, &hello.encode().expect("hello"));
    out
}

/// The input's payloads: split at each `0xff 0xfe`.
fn split(input: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < input.len() {
        if input[i] == 0xff && input[i + 1] == 0xfe {
            parts.push(&input[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    parts.push(&input[start..]);
    parts
}

/// Panics unless the node answers a new connection's `Ping`.
fn alive(addr: std::net::SocketAddr) {
    let mut stream = TcpStream::connect(addr).expect("the node still accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = hello(1, None);
    wire::write_frame(&mut out, 1, &Request::Ping.encode().expect("ping"));
    stream.write_all(&out).expect("the node takes a Ping");
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(frame) = decoder.decode(&mut buf) {
            if let Frame::Complete { id: 1, payload } = frame {
                assert!(
                    matches!(decode_reply(&payload), Ok(Ok(_))),
                    "the node does not answer a Ping"
                );
                return;
            }
        }
        let n = stream.read(&mut chunk).expect("the node answers a Ping");
        assert!(n > 0, "the node closed a healthy connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn an_input_splits_into_payloads() {
        assert_eq!(split(b"ab\xff\xfecd"), [&b"ab"[..], &b"cd"[..]]);
        assert_eq!(split(b""), [&b""[..]]);
    }
}
