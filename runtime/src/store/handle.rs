//! What generated client handles of lambda objects hold (`ThreadRef` for a
//! `Thread`): the object's id and the client to reach its node through. Every
//! call starts one workflow on the node that owns the object.

use super::fields::LambdaObject;
use super::workflow::{FunctionId, FunctionKind};
use crate::client::Client;
use crate::context::Context;
use crate::wire::{Invoke, ObjectRef, Request};
use crate::{codec, Error, ObjectId, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;

/// The object (or, for static functions, the type) and client behind a
/// generated handle.
#[derive(Clone)]
pub struct HandleCore {
    id: ObjectId,
    client: Option<Client>,
}

impl std::fmt::Debug for HandleCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)
    }
}

impl HandleCore {
    /// A handle on object `id`, through the global client.
    pub fn new(id: ObjectId) -> HandleCore {
        HandleCore { id, client: None }
    }

    /// A handle on the static functions of `T`.
    pub fn statics<T: LambdaObject>() -> HandleCore {
        HandleCore::new(ObjectId::new(T::APPLICATION, T::TYPE_NAME, ""))
    }

    /// The same object through `client`.
    pub fn with_client(mut self, client: Client) -> HandleCore {
        self.client = Some(client);
        self
    }

    /// The object's id.
    pub fn id(&self) -> &ObjectId {
        &self.id
    }

    pub(crate) fn client_ref(&self) -> Result<&Client> {
        match &self.client {
            Some(client) => Ok(client),
            None => Context::global().map(Context::client),
        }
    }

    /// The request and the home key it is routed by (under `LAMBDA_HOME`).
    fn payload<T: LambdaObject, A: Serialize>(
        &self,
        function: &FunctionId,
        args: &A,
    ) -> Result<(String, Vec<u8>)> {
        if self.id.type_name != T::TYPE_NAME {
            return Err(Error::Object(format!(
                "object {} is not a {}: its handle was opened with another type's id",
                self.id,
                T::TYPE_NAME
            )));
        }
        let args = codec::encode(args)?;
        let key = (function.kind != FunctionKind::Static).then_some(self.id.key.as_str());
        let payload = Request::Invoke(Invoke {
            application: &self.id.application,
            type_name: &self.id.type_name,
            key,
            function: function.name,
            fingerprint: function.fingerprint,
            args: &args,
        })
        .encode()?;
        // A workflow runs on the node of the object it is called on (the
        // objects of a type placed with its application live together on
        // the application's node; a static function runs there too), and
        // reaches the others' objects from there.
        let object = (T::BY_OBJECT && key.is_some())
            .then_some((self.id.type_name.as_str(), self.id.key.as_str()));
        let home = crate::placement::lambda_home(&self.id.application, object);
        Ok((home, payload))
    }

    pub(crate) fn home_ref(home: &str) -> ObjectRef<'_> {
        ObjectRef {
            type_name: crate::placement::LAMBDA_HOME,
            key: home,
        }
    }

    /// Runs `function` as one workflow and blocks for its result.
    pub fn invoke<T: LambdaObject, A: Serialize, R: DeserializeOwned>(
        &self,
        function: &FunctionId,
        args: &A,
    ) -> Result<R> {
        let (home, payload) = self.payload::<T, A>(function, args)?;
        let client = self.client_ref()?;
        let reply = match function.kind {
            // A read-only call may be served by a light replica.
            FunctionKind::Read => client.call_reading(Self::home_ref(&home), &payload)?,
            _ => client.call(Self::home_ref(&home), &payload, true)?,
        };
        codec::decode(&reply)
    }

    /// Runs `function` as one workflow; the future resolves to its result.
    /// Arguments are encoded before this returns, so the future borrows
    /// nothing.
    pub fn invoke_async<T: LambdaObject, A: Serialize, R: DeserializeOwned + Send + 'static>(
        &self,
        function: &FunctionId,
        args: &A,
    ) -> impl Future<Output = Result<R>> + Send + 'static {
        let call = self.client_ref().and_then(|client| {
            let (home, payload) = self.payload::<T, A>(function, args)?;
            // A read-only call may be served by a light replica.
            let reading = function.kind == FunctionKind::Read;
            Ok(client.call_async_routed(Self::home_ref(&home), payload, reading))
        });
        async move {
            let reply = call?.await?;
            codec::decode(&reply)
        }
    }
}
