//! Map calls: one function of a lambda object type run on every object of a
//! selection ([`Objects`]) as one workflow. The node the call reaches (its
//! application's home) is the workflow's manager; every node runs the
//! function on the selected objects it holds, and the results come back in
//! key order as [`Mapped`], which the caller reduces as it likes.

use super::fields::LambdaObject;
use super::handle::HandleCore;
use super::workflow::FunctionId;
use crate::wire::{Invoke, MapInvoke, Request};
use crate::{codec, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_bytes::ByteBuf;
use std::future::Future;

pub use crate::wire::Objects;

/// What a map call returned: each object's key with its function's result,
/// in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped<R> {
    results: Vec<(String, R)>,
}

impl<R> Mapped<R> {
    /// How many objects the function ran on.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the selection held no object.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// The result of the object with `key`, if it was mapped.
    pub fn get(&self, key: &str) -> Option<&R> {
        self.results
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.results[i].1)
    }

    /// `(key, result)` pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &R)> {
        self.results.iter().map(|(k, r)| (k.as_str(), r))
    }

    /// Folds the results, in key order, with `reducer` from `init`.
    ///
    /// ```
    /// # let mapped = crucial::store::Mapped::from_pairs(vec![("a".into(), 2), ("b".into(), 3)]);
    /// let total = mapped.reduce(0, |sum, balance| sum + balance);
    /// assert_eq!(total, 5);
    /// ```
    pub fn reduce<A>(self, init: A, reducer: impl FnMut(A, R) -> A) -> A {
        self.results.into_iter().map(|(_, r)| r).fold(init, reducer)
    }

    /// Results from `(key, result)` pairs (sorted here by key), e.g. to test
    /// a reducer.
    pub fn from_pairs(mut results: Vec<(String, R)>) -> Mapped<R> {
        results.sort_by(|a, b| a.0.cmp(&b.0));
        Mapped { results }
    }
}

impl<R> IntoIterator for Mapped<R> {
    type Item = (String, R);
    type IntoIter = std::vec::IntoIter<(String, R)>;

    fn into_iter(self) -> Self::IntoIter {
        self.results.into_iter()
    }
}

/// The type, selection and client behind a generated map handle
/// (`ThreadMap` for a `Thread`).
#[derive(Clone, Debug)]
pub struct MapCore {
    statics: HandleCore,
    objects: Objects,
}

impl MapCore {
    /// A map over the `objects` of `T`, through the global client.
    pub fn new<T: LambdaObject>(objects: Objects) -> MapCore {
        MapCore {
            statics: HandleCore::statics::<T>(),
            objects,
        }
    }

    /// The same map through `client`.
    pub fn with_client(self, client: crate::Client) -> MapCore {
        MapCore {
            statics: self.statics.with_client(client),
            objects: self.objects,
        }
    }

    /// The objects it runs on.
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    fn payload<A: Serialize>(&self, function: &FunctionId, args: &A) -> Result<(String, Vec<u8>)> {
        let id = self.statics.id();
        let args = codec::encode(args)?;
        let payload = Request::Map(MapInvoke {
            invoke: Invoke {
                application: &id.application,
                type_name: &id.type_name,
                key: None,
                function: function.name,
                fingerprint: function.fingerprint,
                args: &args,
            },
            objects: self.objects.clone(),
        })
        .encode()?;
        // Like a static function: started at the application's home.
        Ok((
            crate::placement::lambda_home(&id.application, None),
            payload,
        ))
    }

    fn decode<R: DeserializeOwned>(reply: &[u8]) -> Result<Mapped<R>> {
        let pairs: Vec<(String, ByteBuf)> = codec::decode(reply)?;
        let results = pairs
            .into_iter()
            .map(|(key, value)| Ok((key, codec::decode::<R>(&value)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mapped { results })
    }

    /// Runs `function` on every selected object as one workflow and blocks
    /// for the results.
    pub fn invoke<A: Serialize, R: DeserializeOwned>(
        &self,
        function: &FunctionId,
        args: &A,
    ) -> Result<Mapped<R>> {
        let (home, payload) = self.payload(function, args)?;
        let reply = self
            .statics
            .client_ref()?
            .call(HandleCore::home_ref(&home), &payload, true)?;
        Self::decode(&reply)
    }

    /// Async twin of [`MapCore::invoke`].
    pub fn invoke_async<A: Serialize, R: DeserializeOwned + Send + 'static>(
        &self,
        function: &FunctionId,
        args: &A,
    ) -> impl Future<Output = Result<Mapped<R>>> + Send + 'static {
        let call = self.statics.client_ref().and_then(|client| {
            let (home, payload) = self.payload(function, args)?;
            Ok(client.call_async(HandleCore::home_ref(&home), payload))
        });
        async move {
            let reply = call?.await?;
            Self::decode(&reply)
        }
    }
}
