//! `List<T>`: a shared list of encoded values behind a typed facade.

use crate as crucial;
use crate::proxy::{ProxyCore, SharedProxy};
use crate::registry::SharedType;
use crate::{codec, Result};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// The server-side state of every [`List<T>`]: encoded elements.
#[crucial::shared(name = "crucial::List")]
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState {
    items: Vec<Bytes>,
}

#[crucial::shared]
impl ListState {
    /// Appends an element.
    pub fn push(&mut self, item: Bytes) {
        self.items.push(item);
    }

    /// Appends many elements; returns the new length.
    pub fn extend(&mut self, items: Vec<Bytes>) -> u64 {
        self.items.extend(items);
        self.items.len() as u64
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<Bytes> {
        self.items.pop()
    }

    /// The element at `index`.
    pub fn get(&self, index: u64) -> Option<Bytes> {
        self.items.get(index as usize).cloned()
    }

    /// Replaces the element at `index`, returning the old one (`None` if out of range).
    pub fn set(&mut self, index: u64, item: Bytes) -> Option<Bytes> {
        self.items
            .get_mut(index as usize)
            .map(|slot| std::mem::replace(slot, item))
    }

    /// Removes the element at `index` (`None` if out of range).
    pub fn remove(&mut self, index: u64) -> Option<Bytes> {
        let index = index as usize;
        (index < self.items.len()).then(|| self.items.remove(index))
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.items.len() as u64
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Vec<Bytes> {
        self.items.clone()
    }
}

/// A shared, linearizable list of `T`, like `Vec<T>` behind a lock.
///
/// ```
/// # crucial_server::link();
/// let list = crucial::List::<String>::shared("names");
/// list.push(&"ada".to_string())?;
/// assert_eq!(list.get(0)?, Some("ada".to_string()));
/// # Ok::<(), crucial::Error>(())
/// ```
#[derive(Debug)]
pub struct List<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + 'static> List<T> {
    /// Opens the shared list named `key` (created empty on first use).
    pub fn shared(key: impl Into<String>) -> ListProxy<T> {
        ListProxy::from_core(ProxyCore::new(ListState::NAME, key.into()))
    }
}

/// A typed facade opens like any shared type: `client.open::<List<T>>(key)`.
impl<T: Serialize + DeserializeOwned + 'static> SharedType for List<T> {
    const NAME: &'static str = ListState::NAME;
    const PERSISTENT: bool = false;
    type Proxy = ListProxy<T>;
}

/// Typed proxy of a [`List<T>`].
#[derive(Debug)]
pub struct ListProxy<T> {
    raw: ListStateProxy,
    _items: PhantomData<fn() -> T>,
}

impl<T> Clone for ListProxy<T> {
    fn clone(&self) -> Self {
        ListProxy {
            raw: self.raw.clone(),
            _items: PhantomData,
        }
    }
}

impl<T: 'static> SharedProxy for ListProxy<T> {
    fn core(&self) -> &ProxyCore {
        self.raw.core()
    }
    fn from_core(core: ProxyCore) -> Self {
        ListProxy {
            raw: ListStateProxy::from_core(core),
            _items: PhantomData,
        }
    }
}

fn decode_opt<T: DeserializeOwned>(item: Option<Bytes>) -> Result<Option<T>> {
    item.map(|b| codec::decode(&b)).transpose()
}

impl<T: Serialize + DeserializeOwned + 'static> ListProxy<T> {
    /// Appends an element.
    pub fn push(&self, item: &T) -> Result<()> {
        self.raw.push(codec::encode(item)?.into())
    }

    /// Appends many elements in one call; returns the new length.
    pub fn extend<'a>(&self, items: impl IntoIterator<Item = &'a T>) -> Result<u64>
    where
        T: 'a,
    {
        let encoded = items
            .into_iter()
            .map(|i| codec::encode(i).map(Bytes::from))
            .collect::<Result<Vec<_>>>()?;
        self.raw.extend(encoded)
    }

    /// Removes and returns the last element.
    pub fn pop(&self) -> Result<Option<T>> {
        decode_opt(self.raw.pop()?)
    }

    /// The element at `index`.
    pub fn get(&self, index: u64) -> Result<Option<T>> {
        decode_opt(self.raw.get(index)?)
    }

    /// Replaces the element at `index`, returning the old one (`None` if out of range).
    pub fn set(&self, index: u64, item: &T) -> Result<Option<T>> {
        decode_opt(self.raw.set(index, codec::encode(item)?.into())?)
    }

    /// Removes the element at `index`.
    pub fn remove(&self, index: u64) -> Result<Option<T>> {
        decode_opt(self.raw.remove(index)?)
    }

    /// Number of elements.
    pub fn len(&self) -> Result<u64> {
        self.raw.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> Result<bool> {
        self.raw.is_empty()
    }

    /// Removes every element.
    pub fn clear(&self) -> Result<()> {
        self.raw.clear()
    }

    /// A copy of the whole list.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.raw
            .to_vec()?
            .iter()
            .map(|b| codec::decode(b))
            .collect()
    }
}
