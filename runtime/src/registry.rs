//! The link-time registry: every `#[shared]` type and `#[cloud_thread]` of every
//! crate linked into a binary, collected with `linkme` distributed slices.
//!
//! The server, the function binary and the client all read the same slices, so
//! whatever one of them can name, the others can run.

use crate::store::workflow::{FunctionId, FunctionKind, Workflow};
use crate::store::{fields::LambdaObject, TxError};
use crate::wire::{MethodInfo, TypeInfo};
use linkme::distributed_slice;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

/// Every `#[shared]` type linked into this binary.
#[distributed_slice]
pub static SHARED_TYPES: [SharedTypeEntry];

/// Every `#[lambda_object]` type (with its functions) linked into this binary.
#[distributed_slice]
pub static LAMBDA_TYPES: [LambdaTypeEntry];

/// Every `#[cloud_thread]` linked into this binary.
#[distributed_slice]
pub static CLOUD_THREADS: [CloudThreadEntry];

/// A server-side object: the user's struct behind a type-erased box.
pub type ObjectBox = Box<dyn Any + Send>;

/// Decodes arguments, runs one method on an object, encodes the result.
pub type Invoke = fn(&mut (dyn Any + Send), &[u8]) -> Result<Invoked, DispatchError>;

/// What running a method produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoked {
    /// The encoded return value.
    Ready(Vec<u8>),
    /// A blocking method said "not yet": park the call and run it again after
    /// the object next changes.
    Pending,
}

/// Why a dispatch failed before or after the user's method ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchError {
    /// The arguments did not decode as the method's parameter types.
    BadArguments(String),
    /// The result could not be encoded.
    BadResult(String),
    /// The object is not of the entry's type (a registry bug).
    WrongType,
}

/// Identity of a shipped method, shared by the proxy and the dispatch table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodId {
    /// Method name.
    pub name: &'static str,
    /// FNV-1a of the normalized signature.
    pub fingerprint: u64,
    /// `&self` methods are read-only (replication and deduplication skip them).
    pub read_only: bool,
    /// Returns `std::task::Poll<T>`: the node parks the call while it is pending.
    pub blocking: bool,
}

/// One row of a type's dispatch table.
#[derive(Debug, Clone, Copy)]
pub struct MethodEntry {
    /// Name, fingerprint and mutability.
    pub id: MethodId,
    /// Normalized signature, for error messages and `--list-types`.
    pub signature: &'static str,
    /// The decoder/caller/encoder generated for the method.
    pub invoke: Invoke,
}

/// Implemented by `#[shared]` structs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a #[shared] struct",
    label = "this type needs #[shared] on its definition",
    note = "add `#[crucial::shared]` to the struct declaration as well as to its impl block"
)]
pub trait SharedType: Sized + Send + 'static {
    /// Registered (wire) name: the struct's name unless `name = "..."` was given.
    const NAME: &'static str;
    /// Declared with `#[shared(persistent)]`.
    const PERSISTENT: bool;
    /// Fingerprint of the state's shape (its fields and their types), stored
    /// with a persisted object so that a node built with a changed type
    /// reports the mismatch instead of decoding garbage. `#[shared]` computes
    /// it; 0 means "not tracked".
    const SHAPE: u64 = 0;
    /// Copies of each object in a cluster, from `#[shared(persistent,
    /// replicas = N)]`; 0 (the default) means the cluster's `--replicas`.
    const REPLICAS: u8 = 0;
    /// The generated proxy type (`CounterProxy` for `Counter`).
    type Proxy: crate::SharedProxy;
}

/// One registered shared type.
#[derive(Debug)]
pub struct SharedTypeEntry {
    /// Registered (wire) name.
    pub name: &'static str,
    /// Module that defined it.
    pub module: &'static str,
    /// Declared `persistent`.
    pub persistent: bool,
    /// Dispatch table.
    pub methods: &'static [MethodEntry],
    /// Creates the object from `Default`.
    pub create_default: fn() -> ObjectBox,
    /// Creates the object from an encoded initial state.
    pub decode_state: fn(&[u8]) -> Result<ObjectBox, String>,
    /// Encodes an object's state (for the disk and for state transfer).
    pub encode_state: fn(&(dyn Any + Send)) -> Result<Vec<u8>, String>,
    /// Fingerprint of the state's shape ([`SharedType::SHAPE`]).
    pub shape: u64,
    /// Copies of each object in a cluster ([`SharedType::REPLICAS`]; 0: the
    /// cluster's default).
    pub replicas: u8,
}

impl SharedTypeEntry {
    /// The entry for `T` with its dispatch table (used by generated code).
    pub const fn new<T>(methods: &'static [MethodEntry], module: &'static str) -> Self
    where
        T: SharedType + Default + Serialize + DeserializeOwned,
    {
        SharedTypeEntry {
            name: T::NAME,
            module,
            persistent: T::PERSISTENT,
            methods,
            create_default: create_default::<T>,
            decode_state: decode_state::<T>,
            encode_state: encode_state::<T>,
            shape: T::SHAPE,
            replicas: T::REPLICAS,
        }
    }

    /// Finds a method by name.
    pub fn method(&self, name: &str) -> Option<&'static MethodEntry> {
        self.methods.iter().find(|m| m.id.name == name)
    }

    /// Description for listings.
    pub fn info(&self) -> TypeInfo {
        TypeInfo {
            name: self.name.to_string(),
            module: self.module.to_string(),
            persistent: self.persistent,
            methods: self
                .methods
                .iter()
                .map(|m| MethodInfo {
                    signature: m.signature.to_string(),
                    read_only: m.id.read_only,
                })
                .collect(),
        }
    }
}

fn create_default<T: Default + Send + 'static>() -> ObjectBox {
    Box::new(T::default())
}

fn decode_state<T: DeserializeOwned + Send + 'static>(bytes: &[u8]) -> Result<ObjectBox, String> {
    crate::codec::decode::<T>(bytes)
        .map(|v| Box::new(v) as ObjectBox)
        .map_err(|e| e.to_string())
}

fn encode_state<T: Serialize + 'static>(value: &(dyn Any + Send)) -> Result<Vec<u8>, String> {
    let value = value
        .downcast_ref::<T>()
        .ok_or_else(|| "the object is not of its entry's type".to_string())?;
    crate::codec::encode(value).map_err(|e| e.to_string())
}

/// A running function's future: its encoded return value, or why the
/// workflow fails.
pub type FunctionFuture<'w> = Pin<Box<dyn Future<Output = Result<Vec<u8>, TxError>> + 'w>>;

/// Decodes a client's arguments and starts the function on the object the
/// workflow was started for. `Err`: the arguments do not decode.
pub type RunFunction = for<'w> fn(&'w Workflow, &[u8]) -> Result<FunctionFuture<'w>, String>;

/// One function of a lambda object type.
#[derive(Debug, Clone, Copy)]
pub struct FunctionEntry {
    /// Name, fingerprint and kind.
    pub id: FunctionId,
    /// `#[protected]`: callable from other functions only, never by clients.
    pub protected: bool,
    /// Its own time limit in milliseconds (0: the type's).
    pub time_limit_ms: u64,
    /// Normalized signature, for error messages and `--list-types`.
    pub signature: &'static str,
    /// The decoder/caller/encoder generated for it.
    pub run: RunFunction,
}

/// One registered lambda object type.
#[derive(Debug)]
pub struct LambdaTypeEntry {
    /// The application it belongs to.
    pub application: &'static str,
    /// Registered type name.
    pub name: &'static str,
    /// Module that defined it.
    pub module: &'static str,
    /// Its storage fields' names.
    pub fields: &'static [&'static str],
    /// Its fields as declared (`name: Type`), for the stored-shape check.
    pub shape: &'static [&'static str],
    /// Its functions' time limit in milliseconds (0: the node's).
    pub time_limit_ms: u64,
    /// Its functions.
    pub functions: &'static [FunctionEntry],
    /// Placed object by object (see `LambdaObject::BY_OBJECT`).
    pub by_object: bool,
}

impl LambdaTypeEntry {
    /// The entry for `T` (used by generated code).
    pub const fn new<T: LambdaObject>(
        functions: &'static [FunctionEntry],
        time_limit_ms: u64,
        module: &'static str,
    ) -> Self {
        LambdaTypeEntry {
            application: T::APPLICATION,
            name: T::TYPE_NAME,
            module,
            fields: T::FIELDS,
            shape: T::SHAPE,
            by_object: T::BY_OBJECT,
            time_limit_ms,
            functions,
        }
    }

    /// Finds a function by name.
    pub fn function(&self, name: &str) -> Option<&'static FunctionEntry> {
        self.functions.iter().find(|f| f.id.name == name)
    }

    /// Description for listings.
    pub fn info(&self) -> TypeInfo {
        TypeInfo {
            name: self.name.to_string(),
            module: self.module.to_string(),
            persistent: true,
            methods: self
                .functions
                .iter()
                .map(|f| MethodInfo {
                    signature: format!(
                        "{}{} {}",
                        if f.protected { "protected " } else { "" },
                        f.id.kind.label(),
                        f.signature
                    ),
                    read_only: f.id.kind == FunctionKind::Read,
                })
                .collect(),
        }
    }
}

/// One registered cloud thread: `name -> fn(encoded args) -> encoded result`.
#[derive(Debug)]
pub struct CloudThreadEntry {
    /// Registered name (module path of the function or struct).
    pub name: &'static str,
    /// Decodes the input, runs the thread, encodes the output. Errors are messages.
    pub run: fn(&[u8]) -> Result<Vec<u8>, String>,
}

/// The registry of this binary, indexed and checked for duplicate names.
#[derive(Debug)]
pub struct Registry {
    types: HashMap<&'static str, &'static SharedTypeEntry>,
    lambda_types: HashMap<&'static str, &'static LambdaTypeEntry>,
    threads: HashMap<&'static str, &'static CloudThreadEntry>,
    problems: Vec<String>,
}

impl Registry {
    fn build() -> Registry {
        let mut problems = Vec::new();
        let mut types = HashMap::new();
        for entry in SHARED_TYPES.iter() {
            if let Some(old) = types.insert(entry.name, entry) {
                problems.push(format!(
                    "shared type name `{}` is registered twice (in `{}` and `{}`); give one \
                     of them `#[shared(name = \"...\")]`",
                    entry.name, old.module, entry.module
                ));
            }
        }
        let mut lambda_types = HashMap::new();
        for entry in LAMBDA_TYPES.iter() {
            if let Some(old) = lambda_types.insert(entry.name, entry) {
                problems.push(format!(
                    "lambda object type name `{}` is registered twice (in `{}` and `{}`); give \
                     one of them `#[lambda_object(name = \"...\")]`",
                    entry.name, old.module, entry.module
                ));
            }
            if types.contains_key(entry.name) {
                problems.push(format!(
                    "`{}` names both a shared type and a lambda object type; rename one with \
                     `name = \"...\"`",
                    entry.name
                ));
            }
        }
        let mut threads = HashMap::new();
        for entry in CLOUD_THREADS.iter() {
            if threads.insert(entry.name, entry).is_some() {
                problems.push(format!("cloud thread `{}` is registered twice", entry.name));
            }
        }
        Registry {
            types,
            lambda_types,
            threads,
            problems,
        }
    }

    /// Looks a shared type up by its registered name.
    pub fn shared_type(&self, name: &str) -> Option<&'static SharedTypeEntry> {
        self.types.get(name).copied()
    }

    /// Looks a lambda object type up by its registered name.
    pub fn lambda_type(&self, name: &str) -> Option<&'static LambdaTypeEntry> {
        self.lambda_types.get(name).copied()
    }

    /// All lambda object types, sorted by name.
    pub fn lambda_types(&self) -> Vec<&'static LambdaTypeEntry> {
        let mut all: Vec<_> = self.lambda_types.values().copied().collect();
        all.sort_by_key(|e| e.name);
        all
    }

    /// Looks a cloud thread up by its registered name.
    pub fn cloud_thread(&self, name: &str) -> Option<&'static CloudThreadEntry> {
        self.threads.get(name).copied()
    }

    /// All shared types, sorted by name.
    pub fn shared_types(&self) -> Vec<&'static SharedTypeEntry> {
        let mut all: Vec<_> = self.types.values().copied().collect();
        all.sort_by_key(|e| e.name);
        all
    }

    /// All cloud threads, sorted by name.
    pub fn cloud_threads(&self) -> Vec<&'static CloudThreadEntry> {
        let mut all: Vec<_> = self.threads.values().copied().collect();
        all.sort_by_key(|e| e.name);
        all
    }

    /// Fails if two items were registered under one name.
    pub fn check(&self) -> Result<(), String> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems.join("\n"))
        }
    }
}

/// The registry of this binary (built once, on first use).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::build)
}

/// Generated dispatch for a `&mut self` method.
pub fn dispatch_mut<T, A, R>(
    object: &mut (dyn Any + Send),
    args: &[u8],
    method: impl FnOnce(&mut T, A) -> R,
) -> Result<Invoked, DispatchError>
where
    T: 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    dispatch_poll_mut(object, args, |this: &mut T, args| {
        std::task::Poll::Ready(method(this, args))
    })
}

/// Generated dispatch for a blocking `&mut self` method (returning `Poll<R>`).
pub fn dispatch_poll_mut<T, A, R>(
    object: &mut (dyn Any + Send),
    args: &[u8],
    method: impl FnOnce(&mut T, A) -> std::task::Poll<R>,
) -> Result<Invoked, DispatchError>
where
    T: 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    let this = object.downcast_mut::<T>().ok_or(DispatchError::WrongType)?;
    let args: A =
        crate::codec::decode(args).map_err(|e| DispatchError::BadArguments(e.to_string()))?;
    match method(this, args) {
        std::task::Poll::Ready(result) => crate::codec::encode(&result)
            .map(Invoked::Ready)
            .map_err(|e| DispatchError::BadResult(e.to_string())),
        std::task::Poll::Pending => Ok(Invoked::Pending),
    }
}

/// Generated dispatch for a blocking `&self` method (returning `Poll<R>`).
pub fn dispatch_poll_ref<T, A, R>(
    object: &mut (dyn Any + Send),
    args: &[u8],
    method: impl FnOnce(&T, A) -> std::task::Poll<R>,
) -> Result<Invoked, DispatchError>
where
    T: 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    dispatch_poll_mut(object, args, |this: &mut T, args| method(this, args))
}

/// Generated dispatch for a `&self` method.
pub fn dispatch_ref<T, A, R>(
    object: &mut (dyn Any + Send),
    args: &[u8],
    method: impl FnOnce(&T, A) -> R,
) -> Result<Invoked, DispatchError>
where
    T: 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    dispatch_mut(object, args, |this: &mut T, args| method(this, args))
}
