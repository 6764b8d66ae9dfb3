//! An order-preserving encoding of keys: for two keys of one type, the byte
//! order of their encodings is the order of the values (`Ord` of integers,
//! strings, tuples, `Option`, enums by variant then content, ...). Lambda
//! objects' `Map`, `MultiMap` and `Set` fields store their entries under these
//! bytes, so a range of keys is a range of bytes. The encoding is one-way: an
//! entry's value carries its key too, for scans.
//!
//! - unsigned integers: big-endian; signed: big-endian with the sign bit
//!   flipped; floats: IEEE bits, all flipped when negative, else the sign bit
//!   flipped (total order, `-0.0 < +0.0`, NaN above everything);
//! - `bool`: one byte; `char`: as `u32`;
//! - strings and byte strings: each `0x00` byte written `0x00 0xFF`, then the
//!   terminator `0x00 0x00`, so `"a" < "a\0" < "ab"`;
//! - `Option`: `0x00` for `None`, `0x01` then the value for `Some`;
//! - sequences: `0x01` before each element, `0x00` at the end (a prefix sorts
//!   first);
//! - tuples, structs (fields in declaration order), newtypes: their parts in
//!   order; enums: the variant index as a big-endian `u32`, then the content.
//!
//! Maps as keys are refused (no order).
//!
//! ```
//! use crucial::__private::store::encode_key;
//! let (a, b) = (encode_key(&(1u32, "b")).unwrap(), encode_key(&(2u32, "a")).unwrap());
//! assert!(a < b);
//! assert!(encode_key(&-5i64).unwrap() < encode_key(&3i64).unwrap());
//! ```

use serde::ser::{self, Serialize};
use std::fmt;

/// A key that cannot be encoded (a map, or a custom error of its `Serialize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this key cannot be ordered: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

impl ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        KeyError(msg.to_string())
    }
}

/// The order-preserving bytes of `key`.
pub fn encode_key<T: Serialize + ?Sized>(key: &T) -> Result<Vec<u8>> {
    let mut out = KeyWriter(Vec::new());
    key.serialize(&mut out)?;
    Ok(out.0)
}

struct KeyWriter(Vec<u8>);

impl KeyWriter {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0.push(b);
            if b == 0 {
                self.0.push(0xFF);
            }
        }
        self.0.extend_from_slice(&[0, 0]);
    }
}

type Result<T> = std::result::Result<T, KeyError>;

/// Unsigned integers: big-endian bytes.
macro_rules! big_endian {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<()> {
            self.0.extend_from_slice(&v.to_be_bytes());
            Ok(())
        }
    )*};
}

/// Signed integers: the sign bit flipped, then big-endian bytes.
macro_rules! sign_flipped {
    ($($method:ident: $ty:ty as $unsigned:ty),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<()> {
            let flipped = (v as $unsigned) ^ (1 << (<$unsigned>::BITS - 1));
            self.0.extend_from_slice(&flipped.to_be_bytes());
            Ok(())
        }
    )*};
}

/// Floats: positive ones with the sign bit set, negative ones with every bit
/// flipped (so more negative sorts first), then big-endian bytes.
macro_rules! float_ordered {
    ($($method:ident: $ty:ty as $bits:ty),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<()> {
            let bits: $bits = v.to_bits();
            let sign: $bits = 1 << (<$bits>::BITS - 1);
            let ordered = if bits & sign != 0 { !bits } else { bits ^ sign };
            self.0.extend_from_slice(&ordered.to_be_bytes());
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut KeyWriter {
    type Ok = ();
    type Error = KeyError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = ser::Impossible<(), KeyError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.0.push(v as u8);
        Ok(())
    }
    big_endian! {
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128,
    }
    sign_flipped! {
        serialize_i8: i8 as u8, serialize_i16: i16 as u16, serialize_i32: i32 as u32,
        serialize_i64: i64 as u64, serialize_i128: i128 as u128,
    }
    float_ordered! {
        serialize_f32: f32 as u32, serialize_f64: f64 as u64,
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.serialize_u32(v as u32)
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.bytes(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.bytes(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        self.0.push(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.0.push(1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.serialize_u32(index)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        self.serialize_u32(index)?;
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>> {
        Ok(Seq(self))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self> {
        self.serialize_u32(index)?;
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(KeyError(
            "a map has no order; use a sorted Vec of pairs as the key".into(),
        ))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self> {
        self.serialize_u32(index)?;
        Ok(self)
    }
}

/// A sequence: each element after a `0x01`, then `0x00`.
pub struct Seq<'a>(&'a mut KeyWriter);

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = KeyError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.0 .0.push(1);
        value.serialize(&mut *self.0)
    }
    fn end(self) -> Result<()> {
        self.0 .0.push(0);
        Ok(())
    }
}

macro_rules! in_order {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for &mut KeyWriter {
            type Ok = ();
            type Error = KeyError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

in_order!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

macro_rules! fields_in_order {
    ($($trait:ident),*) => {$(
        impl ser::$trait for &mut KeyWriter {
            type Ok = ();
            type Error = KeyError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                _: &'static str,
                value: &T,
            ) -> Result<()> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

fields_in_order!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    /// Every pair of `values`: the encodings compare as the values do.
    fn same_order<T: Serialize + Ord + fmt::Debug>(values: &[T]) {
        for a in values {
            for b in values {
                let (ea, eb) = (encode_key(a).unwrap(), encode_key(b).unwrap());
                assert_eq!(ea.cmp(&eb), a.cmp(b), "{a:?} vs {b:?}: {ea:?} vs {eb:?}");
            }
        }
    }

    #[test]
    fn integers_keep_their_order() {
        same_order(&[i64::MIN, -300, -1, 0, 1, 255, 256, i64::MAX]);
        same_order(&[i8::MIN, -1, 0, 1, i8::MAX]);
        same_order(&[0u32, 1, 255, 256, 65_536, u32::MAX]);
        same_order(&[i128::MIN, -1, 0, i128::MAX]);
    }

    #[test]
    fn strings_and_bytes_keep_their_order_with_nul_bytes_and_prefixes() {
        same_order(&[
            "", "\0", "\0\0", "a", "a\0", "a\0b", "ab", "b", "ba", "\u{ff}", "é",
        ]);
        same_order(&[
            vec![],
            vec![0u8],
            vec![0, 0],
            vec![0, 255],
            vec![1],
            vec![255, 0],
        ]);
    }

    #[test]
    fn tuples_options_sequences_and_enums_keep_their_order() {
        same_order(&[(1u32, "b"), (1, "ba"), (2, ""), (2, "a")]);
        same_order(&[None, Some(0i32), Some(5)]);
        same_order(&[vec![], vec![1u16], vec![1, 2], vec![2]]);
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord, Debug)]
        enum Kind {
            Low,
            Mid(u8),
            High { x: i16, y: String },
        }
        same_order(&[
            Kind::Low,
            Kind::Mid(0),
            Kind::Mid(9),
            Kind::High {
                x: -1,
                y: "z".into(),
            },
            Kind::High {
                x: 3,
                y: "a".into(),
            },
        ]);
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord, Debug)]
        struct Date {
            year: u16,
            month: u8,
            day: u8,
        }
        same_order(&[
            Date {
                year: 2025,
                month: 12,
                day: 31,
            },
            Date {
                year: 2026,
                month: 1,
                day: 1,
            },
            Date {
                year: 2026,
                month: 1,
                day: 2,
            },
        ]);
    }

    #[test]
    fn floats_keep_their_total_order() {
        let floats = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1e-9, 3.0, f64::INFINITY];
        for pair in floats.windows(2) {
            assert!(
                encode_key(&pair[0]).unwrap() < encode_key(&pair[1]).unwrap(),
                "{pair:?}"
            );
        }
    }

    #[test]
    fn random_pairs_keep_their_order() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let values: Vec<(i64, String)> = (0..300)
            .map(|_| {
                let n = (next() % 2000) as i64 - 1000;
                let len = (next() % 4) as usize;
                let s: String = (0..len)
                    .map(|_| [b'\0', b'a', b'b'][next() as usize % 3] as char)
                    .collect();
                (n, s)
            })
            .collect();
        same_order(&values);
    }

    #[test]
    fn a_map_key_is_refused_with_a_reason() {
        let error = encode_key(&BTreeMap::from([(1, 2)])).unwrap_err();
        assert!(error.to_string().contains("sorted Vec of pairs"), "{error}");
    }
}
