//! The load generator's Crucial driver: raw frames of the data-plane protocol,
//! exactly as the `crucial` client sends them, without the client library's
//! threads in the way.

use super::workload::OpKind;
use super::Protocol;
use bytes::BytesMut;
use crucial::__private::registry::registry;
use crucial::Bytes;
use crucial_protocol::codec;
use crucial_protocol::wire::{self, decode_reply, Call, Frame, FrameDecoder, ObjectRef, Request};

/// The fingerprint of a registered method.
fn fingerprint(type_name: &str, method: &str) -> u64 {
    registry()
        .shared_type(type_name)
        .and_then(|t| t.method(method))
        .map(|m| m.id.fingerprint)
        .unwrap_or_else(|| panic!("{type_name}::{method} is not registered"))
}

static NEXT_CLIENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Encodes requests and decodes replies of one connection.
pub struct CrucialProtocol {
    next_id: u64,
    decoder: FrameDecoder,
    value: Bytes,
    fingerprints: [u64; 6],
}

const TYPES: [(&str, &str); 6] = [
    ("crucial::AtomicI64", "fetch_add"),
    ("crucial::AtomicBytes", "get"),
    ("crucial::AtomicBytes", "set"),
    ("crucial_bench::Tally", "record"),
    ("crucial::Semaphore", "release"),
    ("crucial::Semaphore", "acquire"),
];

impl CrucialProtocol {
    /// A driver whose `set` writes `data` bytes.
    pub fn new(data: usize) -> CrucialProtocol {
        CrucialProtocol {
            next_id: 1,
            decoder: FrameDecoder::new(wire::DEFAULT_MAX_FRAME),
            value: Bytes::from(vec![0x5a; data]),
            fingerprints: TYPES.map(|(t, m)| fingerprint(t, m)),
        }
    }

    fn call(&mut self, which: usize, key: u64, args: &[u8], out: &mut Vec<u8>) -> u64 {
        let (type_name, method) = TYPES[which];
        let key = format!("load/{key}");
        let payload = Request::Call(Call {
            object: ObjectRef {
                type_name,
                key: &key,
            },
            method,
            fingerprint: self.fingerprints[which],
            args,
            timeout_ms: 0,
        })
        .encode()
        .expect("a call encodes");
        let id = self.next_id;
        self.next_id += 1;
        wire::write_frame(out, id, &payload);
        id
    }
}

impl Protocol for CrucialProtocol {
    fn handshake(&mut self) -> Vec<u8> {
        let hello = Request::Hello {
            protocol: wire::PROTOCOL_VERSION,
            // One client per connection, as separate processes would be: the
            // node deduplicates retries by (client, request id), and every
            // connection numbers its requests from 1.
            client_id: (std::process::id() as u64) << 32
                | NEXT_CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            token: None,
        }
        .encode()
        .expect("hello encodes");
        let mut out = Vec::new();
        wire::write_frame(&mut out, 0, &hello);
        self.next_id = 1;
        out
    }

    fn encode(&mut self, op: OpKind, key: u64, second_of_pair: bool, out: &mut Vec<u8>) -> u64 {
        match op {
            OpKind::Incr => self.call(0, key, &codec::encode(&(1i64,)).expect("args"), out),
            OpKind::Get => self.call(1, key, &codec::encode(&()).expect("args"), out),
            OpKind::Set => {
                let args = codec::encode(&(self.value.clone(),)).expect("args");
                self.call(2, key, &args, out)
            }
            OpKind::Method => self.call(3, key, &codec::encode(&(1u64, 2u64)).expect("args"), out),
            OpKind::Sem if second_of_pair => {
                self.call(5, key, &codec::encode(&(1u32,)).expect("args"), out)
            }
            OpKind::Sem => self.call(4, key, &codec::encode(&(1u32,)).expect("args"), out),
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<u64>, String> {
        match self.decoder.decode(buf) {
            None => Ok(None),
            Some(Frame::TooLarge { id, size }) => Err(format!("reply {id} of {size} bytes")),
            Some(Frame::Complete { id, payload }) => match decode_reply(&payload) {
                Ok(Ok(_)) => Ok(Some(id)),
                Ok(Err(remote)) => Err(format!("request {id}: {remote}")),
                Err(e) => Err(format!("request {id}: not a reply: {e}")),
            },
        }
    }

    fn ordered(&self) -> bool {
        false
    }
}
