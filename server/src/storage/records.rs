//! How things are laid out on disk: the keys of each space and the records
//! under them. Every record starts with a format byte, so a later layout is
//! told apart instead of misread.

use serde::{Deserialize, Serialize};

/// The layout of every record written by this version (2: object records say
/// which logged calls they include).
pub const FORMAT: u8 = 2;

/// A persistent object's snapshot.
#[derive(Serialize, Deserialize)]
pub struct ObjectRecord<'a> {
    /// Fingerprint of the type's shape.
    pub shape: u64,
    /// Logged calls up to this sequence number are in `state`.
    pub applied: u64,
    /// The encoded state.
    #[serde(borrow, with = "serde_bytes")]
    pub state: &'a [u8],
}

/// One logged call.
#[derive(Serialize, Deserialize)]
pub struct CallRecord<'a> {
    /// The method's registered name.
    pub method: &'a str,
    /// Its encoded arguments.
    #[serde(borrow, with = "serde_bytes")]
    pub args: &'a [u8],
}

/// `type \0 key`: an object's key in the objects' space.
pub fn object_key(type_name: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(type_name.len() + 1 + key.len());
    k.extend_from_slice(type_name.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The type name and key of an object key.
pub fn split_object_key(k: &[u8]) -> Option<(String, String)> {
    let at = k.iter().position(|&b| b == 0)?;
    let type_name = std::str::from_utf8(&k[..at]).ok()?;
    let key = std::str::from_utf8(&k[at + 1..]).ok()?;
    Some((type_name.to_string(), key.to_string()))
}

/// The prefix of an object's logged calls: the object key's length, then the
/// key (so no object's prefix is another's).
pub fn calls_prefix(type_name: &str, key: &str) -> Vec<u8> {
    let object = object_key(type_name, key);
    let mut k = Vec::with_capacity(4 + object.len() + 8);
    k.extend_from_slice(&(object.len() as u32).to_be_bytes());
    k.extend_from_slice(&object);
    k
}

/// The key of one logged call: the object's prefix, then its number.
pub fn call_key(prefix: &[u8], seq: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The object key and the number of a logged call's key.
pub fn split_call_key(k: &[u8]) -> Option<(&[u8], u64)> {
    let len = u32::from_be_bytes(k.get(..4)?.try_into().ok()?) as usize;
    let object = k.get(4..4 + len)?;
    let seq = u64::from_be_bytes(k.get(4 + len..)?.try_into().ok()?);
    Some((object, seq))
}

/// A lambda object's entry key: the length of the encoded object id, the id,
/// then the entry's key within the object.
pub fn entry_key(object: &crucial::ObjectId, key: &[u8]) -> Vec<u8> {
    let id = postcard::to_allocvec(object).expect("an object id always encodes");
    let mut k = Vec::with_capacity(4 + id.len() + key.len());
    k.extend_from_slice(&(id.len() as u32).to_be_bytes());
    k.extend_from_slice(&id);
    k.extend_from_slice(key);
    k
}

/// The object id and the entry key of an entry key.
pub fn split_entry_key(k: &[u8]) -> Option<(crucial::ObjectId, &[u8])> {
    let len = u32::from_be_bytes(k.get(..4)?.try_into().ok()?) as usize;
    let object = postcard::from_bytes(k.get(4..4 + len)?).ok()?;
    Some((object, k.get(4 + len..)?))
}

/// A lambda object's entry value.
#[derive(Serialize, Deserialize)]
pub struct EntryRecord<'a>(#[serde(borrow, with = "serde_bytes")] pub &'a [u8]);

/// `client, request`, big-endian: a remembered reply's key.
pub fn reply_key(client: u64, request: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&client.to_be_bytes());
    k.extend_from_slice(&request.to_be_bytes());
    k
}

/// A record: the format byte, then the value.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend(postcard::to_allocvec(value).expect("a record always encodes"));
    out
}

/// A record's value, if it has this version's format.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!(
            "record format {other}, this node reads format {FORMAT}"
        )),
        None => Err("an empty record".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crucial_protocol::wire::Outcome;

    #[test]
    fn a_record_of_another_format_is_refused_not_decoded() {
        let mut bytes = encode(&Ok::<Vec<u8>, crucial::RemoteError>(vec![1]));
        bytes[0] = 9;
        let error = decode::<Outcome>(&bytes).unwrap_err();
        assert!(error.contains("record format 9"), "{error}");
    }

    #[test]
    fn entry_keys_split_back() {
        let id = crucial::ObjectId::new("forum", "Thread", "t\0x");
        let k = entry_key(&id, b"\x00\x01key");
        assert_eq!(split_entry_key(&k), Some((id, &b"\x00\x01key"[..])));
        assert_eq!(split_entry_key(&k[..3]), None);
    }

    #[test]
    fn call_keys_split_back_and_prefixes_do_not_overlap() {
        let a = calls_prefix("T", "a");
        let ab = calls_prefix("T", "ab");
        assert!(!ab.starts_with(&a), "`a`'s calls would include `ab`'s");
        let k = call_key(&ab, 7);
        let (object, seq) = split_call_key(&k).expect("splits");
        assert_eq!((object, seq), (&object_key("T", "ab")[..], 7));
        assert_eq!(split_call_key(&k[..k.len() - 1]), None);
    }
}
