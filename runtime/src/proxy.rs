//! What every generated proxy holds: which object, and which client to reach it through.

use crate::client::Client;
use crate::context::Context;
use crate::registry::{MethodId, SharedType};
use crate::wire::{Call, ObjectRef, Request};
use crate::{codec, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Methods every proxy has besides its type's own (import the trait to use them).
///
/// ```
/// # crucial_server::link();
/// use crucial::{AtomicI64, SharedProxy};
/// let counter = AtomicI64::shared("hits");
/// assert_eq!(counter.key(), "hits");
/// counter.delete()?;
/// # Ok::<(), crucial::Error>(())
/// ```
pub trait SharedProxy: Clone + Send + Sync + 'static {
    #[doc(hidden)]
    fn core(&self) -> &ProxyCore;

    #[doc(hidden)]
    fn from_core(core: ProxyCore) -> Self;

    /// The object's key.
    fn key(&self) -> &str {
        self.core().key()
    }

    /// The object's registered type name.
    fn type_name(&self) -> &'static str {
        self.core().type_name()
    }

    /// Deletes the object on its server (clearing any poison). Returns whether it existed.
    /// The next call through any proxy recreates it from `Default`.
    fn delete(&self) -> Result<bool> {
        let core = self.core();
        core.client()?.delete(core.type_name, &core.key)
    }
}

impl Client {
    /// Opens a proxy on this client (rather than the global one).
    pub fn open<T: SharedType>(&self, key: impl Into<String>) -> T::Proxy {
        T::Proxy::from_core(ProxyCore::with_client(T::NAME, key.into(), self.clone()))
    }
}

/// The object reference and client behind a proxy. Used by generated code.
#[derive(Clone)]
pub struct ProxyCore {
    type_name: &'static str,
    key: Arc<str>,
    client: Option<Client>,
}

impl std::fmt::Debug for ProxyCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("type", &self.type_name)
            .field("key", &self.key)
            .finish()
    }
}

impl ProxyCore {
    /// A proxy core on the global client.
    pub fn new(type_name: &'static str, key: String) -> ProxyCore {
        ProxyCore {
            type_name,
            key: key.into(),
            client: None,
        }
    }

    /// A proxy core on a given client.
    pub fn with_client(type_name: &'static str, key: String, client: Client) -> ProxyCore {
        ProxyCore {
            type_name,
            key: key.into(),
            client: Some(client),
        }
    }

    /// Creates the object from an initial state unless it exists (global client).
    pub fn create<T: Serialize>(type_name: &'static str, key: String, initial: &T) -> Result<Self> {
        let core = ProxyCore::new(type_name, key);
        let state = codec::encode(initial)?;
        let object = core.object();
        let payload = Request::Create {
            object,
            state: &state,
        }
        .encode()?;
        let reply = core.client()?.call(object, &payload, true)?;
        let _created: bool = codec::decode(&reply)?;
        Ok(core)
    }

    /// The object's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The registered type name.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The client this proxy calls through.
    pub fn client(&self) -> Result<&Client> {
        match &self.client {
            Some(client) => Ok(client),
            None => Context::global().map(Context::client),
        }
    }

    fn object(&self) -> ObjectRef<'_> {
        ObjectRef {
            type_name: self.type_name,
            key: &self.key,
        }
    }

    fn payload<A: Serialize>(
        &self,
        method: &MethodId,
        args: &A,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let args = codec::encode(args)?;
        Ok(Request::Call(Call {
            object: self.object(),
            method: method.name,
            fingerprint: method.fingerprint,
            args: &args,
            timeout_ms: timeout.as_millis().min(u128::from(u64::MAX)) as u64,
        })
        .encode()?)
    }

    /// Ships a call and blocks for its result.
    pub fn call_blocking<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &MethodId,
        args: &A,
    ) -> Result<R> {
        self.call_waiting(method, args, Duration::ZERO)
    }

    /// Ships a call to a blocking method and blocks for its result, which the
    /// node turns into `RemoteError::Timeout` after `timeout` (zero: no limit).
    pub fn call_waiting<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &MethodId,
        args: &A,
        timeout: Duration,
    ) -> Result<R> {
        let payload = self.payload(method, args, timeout)?;
        let reply = self
            .client()?
            .call(self.object(), &payload, !method.blocking)?;
        codec::decode(&reply)
    }

    /// Ships a call; the returned future resolves to its result. Arguments are
    /// encoded before this returns, so the future borrows nothing.
    pub fn call_async<A: Serialize, R: DeserializeOwned + Send + 'static>(
        &self,
        method: &MethodId,
        args: &A,
    ) -> impl Future<Output = Result<R>> + Send + 'static {
        let call = self.client().and_then(|client| {
            let payload = self.payload(method, args, Duration::ZERO)?;
            Ok(client.call_async(self.object(), payload))
        });
        async move {
            let reply = call?.await?;
            codec::decode(&reply)
        }
    }
}
