//! `Map<K, V>`: a shared hash map of encoded keys and values behind a typed facade,
//! with merges that run on the server so aggregates never ship the data.

use crate as crucial;
use crate::proxy::{ProxyCore, SharedProxy};
use crate::registry::SharedType;
use crate::{codec, Error, Result};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

/// A merge the server applies to a stored value: `stored = op(stored, operand)`.
/// A missing entry merges as if it held the operand's identity (0, empty, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeOp {
    /// Add `i64`s (wrapping).
    AddI64,
    /// Add `u64`s (wrapping).
    AddU64,
    /// Add `f64`s.
    AddF64,
    /// Add `Vec<f64>`s element-wise (the shorter is padded with zeros).
    AddF64s,
    /// Add `Vec<i64>`s element-wise (wrapping; the shorter is padded with zeros).
    AddI64s,
    /// Keep the larger `i64`.
    MaxI64,
    /// Keep the smaller `i64`.
    MinI64,
    /// Keep the larger `f64`.
    MaxF64,
    /// Keep the smaller `f64`.
    MinF64,
}

fn merge_values<T: Serialize + DeserializeOwned>(
    stored: Option<&Bytes>,
    operand: &Bytes,
    f: impl FnOnce(Option<T>, T) -> T,
) -> std::result::Result<Bytes, String> {
    let operand: T = codec::decode(operand).map_err(|e| format!("operand: {e}"))?;
    let stored: Option<T> = stored
        .map(|b| codec::decode(b))
        .transpose()
        .map_err(|e| format!("stored value is not of the merge's type: {e}"))?;
    codec::encode(&f(stored, operand))
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

fn add_vecs<T: Copy + Default>(a: Vec<T>, b: Vec<T>, add: impl Fn(T, T) -> T) -> Vec<T> {
    let (mut long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    for (x, y) in long.iter_mut().zip(short) {
        *x = add(*x, y);
    }
    long
}

impl MergeOp {
    fn apply(self, stored: Option<&Bytes>, operand: &Bytes) -> std::result::Result<Bytes, String> {
        match self {
            MergeOp::AddI64 => merge_values(stored, operand, |s: Option<i64>, o| {
                s.unwrap_or(0).wrapping_add(o)
            }),
            MergeOp::AddU64 => merge_values(stored, operand, |s: Option<u64>, o| {
                s.unwrap_or(0).wrapping_add(o)
            }),
            MergeOp::AddF64 => {
                merge_values(stored, operand, |s: Option<f64>, o| s.unwrap_or(0.0) + o)
            }
            MergeOp::AddF64s => merge_values(stored, operand, |s: Option<Vec<f64>>, o| {
                add_vecs(s.unwrap_or_default(), o, |x, y| x + y)
            }),
            MergeOp::AddI64s => merge_values(stored, operand, |s: Option<Vec<i64>>, o| {
                add_vecs(s.unwrap_or_default(), o, i64::wrapping_add)
            }),
            MergeOp::MaxI64 => merge_values(stored, operand, |s: Option<i64>, o| {
                s.map_or(o, |s| s.max(o))
            }),
            MergeOp::MinI64 => merge_values(stored, operand, |s: Option<i64>, o| {
                s.map_or(o, |s| s.min(o))
            }),
            MergeOp::MaxF64 => merge_values(stored, operand, |s: Option<f64>, o| {
                s.map_or(o, |s| s.max(o))
            }),
            MergeOp::MinF64 => merge_values(stored, operand, |s: Option<f64>, o| {
                s.map_or(o, |s| s.min(o))
            }),
        }
    }
}

/// The server-side state of every [`Map<K, V>`]: encoded keys to encoded values.
#[crucial::shared(name = "crucial::Map")]
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapState {
    entries: HashMap<Bytes, Bytes>,
}

#[crucial::shared]
impl MapState {
    /// The value of `key`.
    pub fn get(&self, key: Bytes) -> Option<Bytes> {
        self.entries.get(&key).cloned()
    }

    /// Sets `key`, returning the previous value.
    pub fn insert(&mut self, key: Bytes, value: Bytes) -> Option<Bytes> {
        self.entries.insert(key, value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: Bytes) -> Option<Bytes> {
        self.entries.remove(&key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: Bytes) -> bool {
        self.entries.contains_key(&key)
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key.
    pub fn keys(&self) -> Vec<Bytes> {
        self.entries.keys().cloned().collect()
    }

    /// Every entry.
    pub fn entries(&self) -> Vec<(Bytes, Bytes)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Merges `operand` into the value of `key` on the server; returns the new value.
    /// On a type mismatch nothing changes and the error says why.
    pub fn merge(
        &mut self,
        key: Bytes,
        op: MergeOp,
        operand: Bytes,
    ) -> std::result::Result<Bytes, String> {
        let merged = op.apply(self.entries.get(&key), &operand)?;
        self.entries.insert(key, merged.clone());
        Ok(merged)
    }
}

/// Values that `Map::merge_add` can sum on the server.
pub trait Summable: Serialize + DeserializeOwned {
    /// The server-side merge.
    const ADD: MergeOp;
}

/// Values that `Map::merge_max` / `merge_min` can compare on the server.
pub trait Ordered: Serialize + DeserializeOwned {
    /// Keep the larger.
    const MAX: MergeOp;
    /// Keep the smaller.
    const MIN: MergeOp;
}

impl Summable for i64 {
    const ADD: MergeOp = MergeOp::AddI64;
}
impl Summable for u64 {
    const ADD: MergeOp = MergeOp::AddU64;
}
impl Summable for f64 {
    const ADD: MergeOp = MergeOp::AddF64;
}
impl Summable for Vec<f64> {
    const ADD: MergeOp = MergeOp::AddF64s;
}
impl Summable for Vec<i64> {
    const ADD: MergeOp = MergeOp::AddI64s;
}
impl Ordered for i64 {
    const MAX: MergeOp = MergeOp::MaxI64;
    const MIN: MergeOp = MergeOp::MinI64;
}
impl Ordered for f64 {
    const MAX: MergeOp = MergeOp::MaxF64;
    const MIN: MergeOp = MergeOp::MinF64;
}

/// A shared, linearizable hash map from `K` to `V`.
///
/// Keys are compared by their encoding, which is the same as comparing values for
/// integers, strings, tuples and derived structs (not for floats or unordered maps).
///
/// ```
/// # crucial_server::link();
/// let words = crucial::Map::<String, i64>::shared("word-counts");
/// words.insert(&"a".to_string(), &1)?;
/// assert_eq!(words.merge_add(&"a".to_string(), &2)?, 3); // summed on the server
/// assert_eq!(words.get(&"a".to_string())?, Some(3));
/// # Ok::<(), crucial::Error>(())
/// ```
#[derive(Debug)]
pub struct Map<K, V>(PhantomData<fn() -> (K, V)>);

impl<K, V> Map<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    /// Opens the shared map named `key` (created empty on first use).
    pub fn shared(key: impl Into<String>) -> MapProxy<K, V> {
        MapProxy::from_core(ProxyCore::new(MapState::NAME, key.into()))
    }
}

/// A typed facade opens like any shared type: `client.open::<Map<K, V>>(key)`.
impl<K, V> SharedType for Map<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    const NAME: &'static str = MapState::NAME;
    const PERSISTENT: bool = false;
    type Proxy = MapProxy<K, V>;
}

/// Typed proxy of a [`Map<K, V>`].
#[derive(Debug)]
pub struct MapProxy<K, V> {
    raw: MapStateProxy,
    _entries: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for MapProxy<K, V> {
    fn clone(&self) -> Self {
        MapProxy {
            raw: self.raw.clone(),
            _entries: PhantomData,
        }
    }
}

impl<K: 'static, V: 'static> SharedProxy for MapProxy<K, V> {
    fn core(&self) -> &ProxyCore {
        self.raw.core()
    }
    fn from_core(core: ProxyCore) -> Self {
        MapProxy {
            raw: MapStateProxy::from_core(core),
            _entries: PhantomData,
        }
    }
}

fn enc<T: Serialize>(value: &T) -> Result<Bytes> {
    codec::encode(value).map(Bytes::from)
}

fn dec_opt<T: DeserializeOwned>(value: Option<Bytes>) -> Result<Option<T>> {
    value.map(|b| codec::decode(&b)).transpose()
}

impl<K, V> MapProxy<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        dec_opt(self.raw.get(enc(key)?)?)
    }

    /// Sets `key`, returning the previous value.
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>> {
        dec_opt(self.raw.insert(enc(key)?, enc(value)?)?)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        dec_opt(self.raw.remove(enc(key)?)?)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        self.raw.contains_key(enc(key)?)
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64> {
        self.raw.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> Result<bool> {
        self.raw.is_empty()
    }

    /// Every key (in no particular order).
    pub fn keys(&self) -> Result<Vec<K>> {
        self.raw.keys()?.iter().map(|b| codec::decode(b)).collect()
    }

    /// A copy of the whole map.
    pub fn to_map(&self) -> Result<HashMap<K, V>> {
        self.raw
            .entries()?
            .iter()
            .map(|(k, v)| Ok((codec::decode(k)?, codec::decode(v)?)))
            .collect()
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<()> {
        self.raw.clear()
    }

    fn merge(&self, key: &K, op: MergeOp, operand: &V) -> Result<V> {
        let merged = self
            .raw
            .merge(enc(key)?, op, enc(operand)?)?
            .map_err(Error::Object)?;
        codec::decode(&merged)
    }
}

impl<K, V> MapProxy<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + 'static,
    V: Summable + 'static,
{
    /// Adds `operand` to the value of `key` on the server (element-wise for vectors);
    /// returns the new value. Only the operand travels, never the map.
    pub fn merge_add(&self, key: &K, operand: &V) -> Result<V> {
        self.merge(key, V::ADD, operand)
    }
}

impl<K, V> MapProxy<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + 'static,
    V: Ordered + 'static,
{
    /// Keeps the larger of the stored value and `operand`; returns the new value.
    pub fn merge_max(&self, key: &K, operand: &V) -> Result<V> {
        self.merge(key, V::MAX, operand)
    }

    /// Keeps the smaller of the stored value and `operand`; returns the new value.
    pub fn merge_min(&self, key: &K, operand: &V) -> Result<V> {
        self.merge(key, V::MIN, operand)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_apply_on_encoded_values() {
        let b = |v: &dyn erased::Enc| Bytes::from(v.enc());
        let five = b(&5i64);
        let got = MergeOp::AddI64.apply(Some(&five), &b(&3i64)).unwrap();
        assert_eq!(codec::decode::<i64>(&got).unwrap(), 8);
        let got = MergeOp::AddF64s
            .apply(Some(&b(&vec![1.0f64, 2.0])), &b(&vec![0.5f64, 0.5, 7.0]))
            .unwrap();
        assert_eq!(
            codec::decode::<Vec<f64>>(&got).unwrap(),
            vec![1.5, 2.5, 7.0]
        );
        let got = MergeOp::MinI64.apply(None, &b(&4i64)).unwrap();
        assert_eq!(codec::decode::<i64>(&got).unwrap(), 4);
        assert!(MergeOp::AddF64s
            .apply(Some(&b(&"text")), &b(&vec![1.0f64]))
            .is_err());
    }

    mod erased {
        pub trait Enc {
            fn enc(&self) -> Vec<u8>;
        }
        impl<T: serde::Serialize> Enc for T {
            fn enc(&self) -> Vec<u8> {
                crate::codec::encode(self).unwrap()
            }
        }
    }
}
