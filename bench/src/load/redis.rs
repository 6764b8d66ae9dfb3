//! The load generator's Redis driver: RESP over the same kind of connection,
//! the commands a Redis user would send for the same work.

use super::workload::OpKind;
use super::Protocol;
use bytes::BytesMut;

/// The Lua script standing for a user type's method: two counters of one hash,
/// updated next to the data (what `Tally::record` does on a Crucial node).
pub const METHOD_SCRIPT: &str = "redis.call('HINCRBY', KEYS[1], 'inside', ARGV[1]); \
                                 return redis.call('HINCRBY', KEYS[1], 'total', ARGV[2])";

/// Encodes commands and decodes replies of one connection.
pub struct RedisProtocol {
    value: Vec<u8>,
    script_sha: String,
    next_id: u64,
}

impl RedisProtocol {
    /// A driver whose `SET` writes `data` bytes; `script_sha` is [`METHOD_SCRIPT`]'s.
    pub fn new(data: usize, script_sha: String) -> RedisProtocol {
        RedisProtocol {
            value: vec![0x5a; data],
            script_sha,
            next_id: 0,
        }
    }
}

/// Appends a RESP array of bulk strings.
pub fn command(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
}

/// The length of the first complete RESP value in `buf` and whether it is an
/// error; `None` if more bytes are needed.
pub fn reply_len(buf: &[u8]) -> Option<(usize, bool)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = &buf[1..line_end];
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b':' => Some((after, false)),
        b'-' => Some((after, true)),
        b'$' => {
            let n: i64 = std::str::from_utf8(line).ok()?.parse().ok()?;
            if n < 0 {
                return Some((after, false));
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some((end, false))
        }
        b'*' => {
            let n: i64 = std::str::from_utf8(line).ok()?.parse().ok()?;
            let mut at = after;
            for _ in 0..n.max(0) {
                let (len, error) = reply_len(&buf[at..])?;
                if error {
                    return Some((at + len, true));
                }
                at += len;
            }
            Some((at, false))
        }
        _ => Some((buf.len(), true)),
    }
}

impl Protocol for RedisProtocol {
    fn handshake(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        command(&mut out, &[b"PING"]);
        self.next_id = 0;
        out
    }

    fn encode(&mut self, op: OpKind, key: u64, second_of_pair: bool, out: &mut Vec<u8>) -> u64 {
        let key = format!("load:{key}");
        let key = key.as_bytes();
        match op {
            OpKind::Incr => command(out, &[b"INCR", key]),
            OpKind::Get => command(out, &[b"GET", key]),
            OpKind::Set => command(out, &[b"SET", key, &self.value]),
            OpKind::Method => command(
                out,
                &[
                    b"EVALSHA",
                    self.script_sha.as_bytes(),
                    b"1",
                    key,
                    b"1",
                    b"2",
                ],
            ),
            OpKind::Sem if second_of_pair => command(out, &[b"BLPOP", key, b"0"]),
            OpKind::Sem => command(out, &[b"LPUSH", key, b"1"]),
        }
        self.next_id += 1;
        self.next_id
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<u64>, String> {
        match reply_len(buf) {
            None => Ok(None),
            Some((len, error)) => {
                let reply = buf.split_to(len);
                if error {
                    return Err(String::from_utf8_lossy(&reply).trim().to_string());
                }
                // Replies come in order; the driver matches them by order.
                Ok(Some(0))
            }
        }
    }

    fn ordered(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_measured_whole() {
        assert_eq!(reply_len(b":12\r\n"), Some((5, false)));
        assert_eq!(reply_len(b"+OK\r\n+OK"), Some((5, false)));
        assert_eq!(reply_len(b"$3\r\nabc\r\n"), Some((9, false)));
        assert_eq!(reply_len(b"$3\r\nab"), None);
        assert_eq!(reply_len(b"$-1\r\n"), Some((5, false)));
        assert_eq!(
            reply_len(b"*2\r\n$1\r\nk\r\n$1\r\n1\r\n"),
            Some((18, false))
        );
        assert_eq!(reply_len(b"-ERR no\r\n"), Some((9, true)));
        let mut out = Vec::new();
        command(&mut out, &[b"INCR", b"k"]);
        assert_eq!(out, b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n");
    }
}
