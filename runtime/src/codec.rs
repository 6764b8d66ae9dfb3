//! The value encoding, with the `crucial` crate's errors: everything that
//! crosses a process boundary — method arguments, results, initial states,
//! cloud-thread inputs — goes through these functions (and generated code
//! reaches them as `::crucial::__private::codec`). The encoding itself lives
//! in `crucial-protocol`, so the format can change there and nowhere else.

use crate::Error;
use crucial_protocol::codec as protocol;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes a value into a fresh buffer.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    Ok(protocol::encode(value)?)
}

/// Appends the encoding of a value to `out` (used to build frames without a copy).
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    Ok(protocol::encode_into(value, out)?)
}

/// Decodes a value, requiring that every byte is consumed.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    Ok(protocol::decode(bytes)?)
}

/// Decodes a value that may borrow from `bytes`, requiring that every byte is consumed.
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Error> {
    Ok(protocol::decode_borrowed(bytes)?)
}
