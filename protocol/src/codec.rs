//! The one place that knows the value encoding (postcard).
//!
//! Everything that crosses a process boundary — method arguments, results,
//! initial states, cloud-thread inputs — goes through these two functions, so the
//! format can change here and nowhere else.

use crate::CodecError as Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes a value into a fresh buffer.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_stdvec(value).map_err(|e| Error::Encode(e.to_string()))
}

/// Appends the encoding of a value to `out` (used to build frames without a copy).
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    postcard::to_io(value, out)
        .map(|_| ())
        .map_err(|e| Error::Encode(e.to_string()))
}

/// Decodes a value, requiring that every byte is consumed.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    decode_borrowed(bytes)
}

/// Decodes a value that may borrow from `bytes`, requiring that every byte is consumed.
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Error> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| Error::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::Decode(format!(
            "{} trailing bytes after the value",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_trailing_bytes() {
        let bytes = encode(&(7u64, String::from("x"))).unwrap();
        let back: (u64, String) = decode(&bytes).unwrap();
        assert_eq!(back, (7, "x".into()));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<(u64, String)>(&longer).is_err());
    }

    #[test]
    fn encode_into_appends() {
        let mut out = vec![1, 2];
        encode_into(&3u8, &mut out).unwrap();
        assert_eq!(out, vec![1, 2, 3]);
    }
}
