//! Storage fields of lambda objects: `Cell<T>`, `Map<K, V>`, `MultiMap<K, V>`
//! and `Set<T>`. Each is a handle — the object, the field's index, the running
//! workflow's [`Host`] — and every access is an entry read or write of the
//! workflow's transaction.
//!
//! Layout: a field's entries are keyed by its index (two bytes, big-endian)
//! followed by the order-preserving encoding of the key ([`encode_key`]), so
//! each field is one range of its object and a key range is a byte range. A
//! `Cell` is the single entry at its prefix. Values are postcard; a map's or
//! set's value carries its key too, so scans decode without reversing the key
//! encoding.

use super::host::{Host, TxError};
use super::key::encode_key;
use crate::codec;
use crate::ObjectId;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// A range of entry keys.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// What every field handle holds.
#[derive(Clone)]
pub struct FieldRef {
    host: Arc<dyn Host>,
    object: Arc<ObjectId>,
    prefix: [u8; 2],
    name: &'static str,
}

impl fmt::Debug for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.object, self.name)
    }
}

impl FieldRef {
    /// Field number `index` (named `name`) of `object`, in the workflow `host`.
    pub fn new(
        host: Arc<dyn Host>,
        object: Arc<ObjectId>,
        index: u16,
        name: &'static str,
    ) -> FieldRef {
        FieldRef {
            host,
            object,
            prefix: index.to_be_bytes(),
            name,
        }
    }

    fn key<K: Serialize + ?Sized>(&self, parts: &[&K]) -> Result<Vec<u8>, TxError> {
        let mut key = self.prefix.to_vec();
        for part in parts {
            key.extend(encode_key(*part).map_err(|e| TxError::Encode(e.to_string()))?);
        }
        Ok(key)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, TxError> {
        codec::decode(bytes).map_err(|e| TxError::Decode {
            what: format!("{self:?}"),
            reason: e.to_string(),
        })
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes, TxError> {
        codec::encode(value)
            .map(Bytes::from)
            .map_err(|e| TxError::Encode(format!("{self:?}: {e}")))
    }

    /// The entries whose key starts with `start` (a whole field, or one key
    /// of a multimap), or lie in `bounds` after the prefix.
    fn scan(&self, bounds: KeyRange) -> Result<Vec<Bytes>, TxError> {
        let from = match bounds.0 {
            Bound::Included(k) => k,
            // Encodings are prefix-free, so the smallest key after `k` and
            // all that it starts is `k` followed by a zero byte.
            Bound::Excluded(mut k) => {
                k.push(0);
                k
            }
            Bound::Unbounded => self.prefix.to_vec(),
        };
        let to = match bounds.1 {
            Bound::Excluded(k) => Some(k),
            Bound::Included(mut k) => {
                k.push(0);
                Some(k)
            }
            Bound::Unbounded => after(&self.prefix),
        };
        Ok(self
            .host
            .scan(&self.object, &from, to.as_deref())?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    fn bounds<K: Serialize>(&self, range: &impl RangeBounds<K>) -> Result<KeyRange, TxError> {
        let map = |b: Bound<&K>| -> Result<Bound<Vec<u8>>, TxError> {
            Ok(match b {
                Bound::Included(k) => Bound::Included(self.key(&[k])?),
                Bound::Excluded(k) => Bound::Excluded(self.key(&[k])?),
                Bound::Unbounded => Bound::Unbounded,
            })
        };
        Ok((map(range.start_bound())?, map(range.end_bound())?))
    }
}

/// The smallest byte string after every string that starts with `prefix`
/// (`None`: there is none, the prefix is all `0xFF`).
fn after(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

macro_rules! field_handle {
    ($name:ident < $($p:ident),* >) => {
        impl<$($p),*> $name<$($p),*> {
            /// A handle on a field of an object (used by generated code).
            pub fn new(field: FieldRef) -> Self {
                $name { field, _types: PhantomData }
            }
        }

        impl<$($p),*> fmt::Debug for $name<$($p),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.field)
            }
        }
    };
}

/// One value.
pub struct Cell<T> {
    field: FieldRef,
    _types: PhantomData<fn() -> T>,
}
field_handle!(Cell<T>);

impl<T: Serialize + DeserializeOwned> Cell<T> {
    /// The value, if it was ever set.
    pub fn get(&self) -> Result<Option<T>, TxError> {
        let f = &self.field;
        f.host
            .get(&f.object, &f.prefix)?
            .map(|b| f.decode(&b))
            .transpose()
    }

    /// Sets the value.
    pub fn set(&self, value: &T) -> Result<(), TxError> {
        let f = &self.field;
        f.host.put(&f.object, &f.prefix, f.encode(value)?)
    }

    /// Unsets the value.
    pub fn clear(&self) -> Result<(), TxError> {
        let f = &self.field;
        f.host.delete(&f.object, &f.prefix)
    }
}

impl<T: Serialize + DeserializeOwned + Default> Cell<T> {
    /// The value, or `T::default()` if it was never set.
    pub fn get_or_default(&self) -> Result<T, TxError> {
        Ok(self.get()?.unwrap_or_default())
    }
}

/// Keys to values, in key order.
pub struct Map<K, V> {
    field: FieldRef,
    _types: PhantomData<fn() -> (K, V)>,
}
field_handle!(Map<K, V>);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> Map<K, V> {
    /// The value under `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, TxError> {
        let f = &self.field;
        match f.host.get(&f.object, &f.key(&[key])?)? {
            Some(bytes) => Ok(Some(f.decode::<(K, V)>(&bytes)?.1)),
            None => Ok(None),
        }
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> Result<bool, TxError> {
        let f = &self.field;
        Ok(f.host.get(&f.object, &f.key(&[key])?)?.is_some())
    }

    /// Sets the value under `key` (without reading the old one, so a blind
    /// write conflicts with nobody's reads but those of this key).
    pub fn insert(&self, key: &K, value: &V) -> Result<(), TxError> {
        let f = &self.field;
        f.host
            .put(&f.object, &f.key(&[key])?, f.encode(&(key, value))?)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> Result<(), TxError> {
        let f = &self.field;
        f.host.delete(&f.object, &f.key(&[key])?)
    }

    /// The entries whose keys lie in `range`, in key order.
    pub fn range(&self, range: impl RangeBounds<K>) -> Result<Vec<(K, V)>, TxError> {
        let f = &self.field;
        f.scan(f.bounds(&range)?)?
            .iter()
            .map(|b| f.decode(b))
            .collect()
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Result<Vec<(K, V)>, TxError> {
        self.range(..)
    }
}

/// Keys to sets of values: `(key, value)` pairs in order.
pub struct MultiMap<K, V> {
    field: FieldRef,
    _types: PhantomData<fn() -> (K, V)>,
}
field_handle!(MultiMap<K, V>);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> MultiMap<K, V> {
    fn pair_key(&self, key: &K, value: &V) -> Result<Vec<u8>, TxError> {
        let mut k = self.field.key(&[key])?;
        k.extend(encode_key(value).map_err(|e| TxError::Encode(e.to_string()))?);
        Ok(k)
    }

    /// Adds `value` under `key` (once: a pair is there or not).
    pub fn insert(&self, key: &K, value: &V) -> Result<(), TxError> {
        let f = &self.field;
        f.host.put(
            &f.object,
            &self.pair_key(key, value)?,
            f.encode(&(key, value))?,
        )
    }

    /// Removes `value` from under `key`.
    pub fn remove(&self, key: &K, value: &V) -> Result<(), TxError> {
        let f = &self.field;
        f.host.delete(&f.object, &self.pair_key(key, value)?)
    }

    /// Whether `value` is under `key`.
    pub fn contains(&self, key: &K, value: &V) -> Result<bool, TxError> {
        let f = &self.field;
        Ok(f.host
            .get(&f.object, &self.pair_key(key, value)?)?
            .is_some())
    }

    /// The values under `key`, in order.
    pub fn get(&self, key: &K) -> Result<Vec<V>, TxError> {
        let f = &self.field;
        let start = f.key(&[key])?;
        let end = after(&start).map_or(Bound::Unbounded, Bound::Excluded);
        f.scan((Bound::Included(start), end))?
            .iter()
            .map(|b| Ok(f.decode::<(K, V)>(b)?.1))
            .collect()
    }

    /// Every pair, in order.
    pub fn entries(&self) -> Result<Vec<(K, V)>, TxError> {
        let f = &self.field;
        f.scan((Bound::Unbounded, Bound::Unbounded))?
            .iter()
            .map(|b| f.decode(b))
            .collect()
    }
}

/// Values, in order, each once.
pub struct Set<T> {
    field: FieldRef,
    _types: PhantomData<fn() -> T>,
}
field_handle!(Set<T>);

impl<T: Serialize + DeserializeOwned> Set<T> {
    /// Adds `value`.
    pub fn insert(&self, value: &T) -> Result<(), TxError> {
        let f = &self.field;
        f.host.put(&f.object, &f.key(&[value])?, f.encode(value)?)
    }

    /// Removes `value`.
    pub fn remove(&self, value: &T) -> Result<(), TxError> {
        let f = &self.field;
        f.host.delete(&f.object, &f.key(&[value])?)
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: &T) -> Result<bool, TxError> {
        let f = &self.field;
        Ok(f.host.get(&f.object, &f.key(&[value])?)?.is_some())
    }

    /// The values in `range`, in order.
    pub fn range(&self, range: impl RangeBounds<T>) -> Result<Vec<T>, TxError> {
        let f = &self.field;
        f.scan(f.bounds(&range)?)?
            .iter()
            .map(|b| f.decode(b))
            .collect()
    }

    /// Every value, in order.
    pub fn values(&self) -> Result<Vec<T>, TxError> {
        self.range(..)
    }
}

#[cfg(test)]
mod tests {
    use super::after;

    #[test]
    fn after_a_prefix_comes_its_increment() {
        assert_eq!(after(&[0, 1]), Some(vec![0, 2]));
        assert_eq!(after(&[0, 0xFF]), Some(vec![1]));
        assert_eq!(after(&[0xFF, 0xFF]), None);
    }
}
