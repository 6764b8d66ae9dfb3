//! What a lambda object's function sees of the workflow it runs in: its own
//! object's id, the workflow's clock and random source, and handles on other
//! objects whose functions it calls as child jobs of the same transaction.

use super::fields::LambdaObject;
use super::host::{ChildCall, Host, Shipped, TxError};
use crate::ObjectId;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The entry key that says an object exists: field number `u16::MAX`, which
/// no struct reaches. A constructor writes it; every method reads it, so
/// creating an object conflicts with workflows that found it missing (the
/// node counts objects by it, for its quotas).
pub const EXISTS: [u8; 2] = [0xFF, 0xFF];

/// The kinds of function a `#[lambda_object]` impl declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// `#[constructor]`: makes its object; fails if it exists.
    Constructor,
    /// `&self`: reads its object.
    Read,
    /// `&mut self`: may write its object.
    Write,
    /// No receiver: belongs to the type, not to an object.
    Static,
}

impl FunctionKind {
    /// How listings show it.
    pub fn label(self) -> &'static str {
        match self {
            FunctionKind::Constructor => "constructor",
            FunctionKind::Read => "read",
            FunctionKind::Write => "write",
            FunctionKind::Static => "static",
        }
    }
}

/// Identity of a lambda object's function, shared by the client handle and
/// the node's registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionId {
    /// Function name.
    pub name: &'static str,
    /// FNV-1a of the normalized signature.
    pub fingerprint: u64,
    /// Constructor, read, write or static.
    pub kind: FunctionKind,
}

/// The running workflow, as one function call in it sees it. A function
/// declares it as an optional first parameter, `wf: &Workflow`.
///
/// * [`Workflow::at`] and [`Workflow::statics`] give typed handles on other
///   objects' functions (and on this object's own), called as child jobs of
///   the same transaction: `wf.at::<Thread>(id).add_comment(text).await?`.
///   Several can be started and joined together.
/// * [`Workflow::unix_time_ms`] and [`Workflow::random`] are the workflow's
///   clock and random source: the time is read once per execution, and the
///   random sequence is seeded by the request, so a re-executed workflow
///   draws the same numbers.
#[derive(Clone)]
pub struct Workflow {
    core: Arc<Core>,
    this: Option<Arc<ObjectId>>,
    /// The transaction as this call's fields see it: the workflow's, or,
    /// for a child call with a time limit of its own, the workflow's behind
    /// that limit.
    host: Arc<dyn Host>,
    /// A function runs in this view (`false`: the node's root view, whose
    /// first function's limit is the transaction's own deadline).
    entered: bool,
}

struct Core {
    unix_time_ms: u64,
    seed: u64,
    draws: AtomicU64,
    /// Child calls offered to other nodes (each seeds the random source of
    /// the one it sends from this count, apart from `draws`).
    offered: AtomicU64,
}

impl fmt::Debug for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workflow")
            .field("this", &self.this)
            .field("unix_time_ms", &self.core.unix_time_ms)
            .finish_non_exhaustive()
    }
}

impl Workflow {
    /// A workflow's root, run by the node over `host` (`this`: the object
    /// the client called, `None` for a static function).
    #[doc(hidden)]
    pub fn new(
        host: Arc<dyn Host>,
        this: Option<ObjectId>,
        unix_time_ms: u64,
        seed: u64,
    ) -> Workflow {
        Workflow {
            core: Arc::new(Core {
                unix_time_ms,
                seed,
                draws: AtomicU64::new(0),
                offered: AtomicU64::new(0),
            }),
            this: this.map(Arc::new),
            host,
            entered: false,
        }
    }

    /// The object whose function is running (`None` in a static function).
    pub fn this(&self) -> Option<&ObjectId> {
        self.this.as_deref()
    }

    /// The workflow's time, in milliseconds since the Unix epoch, read once
    /// when this execution began (every call of the execution sees it).
    pub fn unix_time_ms(&self) -> u64 {
        self.core.unix_time_ms
    }

    /// The next number of the workflow's random sequence (SplitMix64, seeded
    /// by the request: a re-execution draws the same numbers in the same
    /// order).
    pub fn random(&self) -> u64 {
        let n = self.core.draws.fetch_add(1, Ordering::Relaxed);
        mix(self
            .core
            .seed
            .wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    /// A handle on the functions (constructors and methods) of object `id`
    /// of type `T`, called as child jobs of this workflow.
    pub fn at<T: LambdaFunctions>(&self, id: impl ObjectKey) -> T::Calls<'_> {
        let id = id.into_object_id(T::APPLICATION, T::TYPE_NAME);
        T::calls(self, id)
    }

    /// A handle on the static functions of type `T`.
    pub fn statics<T: LambdaFunctions>(&self) -> T::Statics<'_> {
        T::statics(self)
    }

    /// Whether object `id` of type `T` exists (a constructor made it). The
    /// answer is part of the transaction: a workflow that creates the object
    /// meanwhile conflicts with this one.
    pub fn exists<T: LambdaObject>(&self, id: impl ObjectKey) -> Result<bool, TxError> {
        let id = id.into_object_id(T::APPLICATION, T::TYPE_NAME);
        self.check(self.host.get(&id, &EXISTS).map(|v| v.is_some()))
    }

    /// The transaction, for binding fields.
    #[doc(hidden)]
    pub fn host(&self) -> Arc<dyn Host> {
        Arc::clone(&self.host)
    }

    /// The id of the object whose function runs, shared with its fields.
    #[doc(hidden)]
    pub fn this_arc(&self) -> Arc<ObjectId> {
        Arc::clone(
            self.this
                .as_ref()
                .expect("generated code binds fields only for object functions"),
        )
    }

    /// The object the workflow was started on (an empty id for a static
    /// function's workflow, which no object function accepts).
    #[doc(hidden)]
    pub fn target(&self) -> ObjectId {
        self.this
            .as_deref()
            .cloned()
            .unwrap_or_else(|| ObjectId::new("", "", ""))
    }

    /// Enters function `function` of kind `kind` on `object` (`None` for a
    /// static): checks that the object is of the function's type and exists
    /// (or, for a constructor, does not, and marks it existing). Returns the
    /// view the function runs with: for a child call with `limit_ms` > 0, its
    /// accesses fail with `Deadline` once that time has passed (the
    /// workflow's own deadline, which the node derived from the first
    /// function's limit, applies anyway). A failure dooms the workflow.
    #[doc(hidden)]
    pub fn enter(
        &self,
        object: Option<ObjectId>,
        kind: FunctionKind,
        type_name: &str,
        function: &str,
        limit_ms: u64,
    ) -> Result<Workflow, TxError> {
        let failed = |message: String| TxError::Failed {
            function: format!("{type_name}::{function}"),
            message,
        };
        self.check(self.host.readable(type_name))?;
        let this = match object {
            _ if kind == FunctionKind::Static => None,
            None => return self.fail(failed("called without an object".into())),
            Some(id) if id.type_name != type_name => {
                return self.fail(failed(format!("object {id} is not a {type_name}")))
            }
            Some(id) => {
                let exists = self.check(self.host.get(&id, &EXISTS))?.is_some();
                match (kind, exists) {
                    (FunctionKind::Constructor, true) => return self.fail(TxError::Exists(id)),
                    (FunctionKind::Constructor, false) => {
                        let marked = self.host.put(&id, &EXISTS, bytes::Bytes::new());
                        self.check(marked)?;
                    }
                    (_, false) => return self.fail(TxError::NoObject(id)),
                    (_, true) => {}
                }
                Some(Arc::new(id))
            }
        };
        let host = match limit_ms {
            ms if ms > 0 && self.entered => Arc::new(Limited {
                host: Arc::clone(&self.host),
                deadline: Instant::now() + Duration::from_millis(ms),
            }) as Arc<dyn Host>,
            _ => Arc::clone(&self.host),
        };
        Ok(Workflow {
            core: Arc::clone(&self.core),
            this,
            host,
            entered: true,
        })
    }

    /// Sends child call `function` on `object` with `args` to the node that
    /// holds the object, if that is another node (generated code, before it
    /// enters the function): the future of its result, decoded; `None`: run
    /// it here. A failure dooms the workflow, as one here would.
    #[doc(hidden)]
    pub fn ship<R, A>(
        &self,
        object: &ObjectId,
        function: &FunctionId,
        args: &A,
    ) -> Option<impl std::future::Future<Output = Result<R, TxError>> + Send + 'static>
    where
        R: serde::de::DeserializeOwned + 'static,
        A: serde::Serialize + ?Sized,
    {
        let args = match crate::codec::encode(args) {
            Ok(args) => args,
            Err(e) => {
                // Cannot be sent: run it here, where it needs no encoding.
                let _ = e;
                return None;
            }
        };
        let call = ChildCall {
            object: object.clone(),
            function: function.name,
            fingerprint: function.fingerprint,
            args,
            seed: {
                let n = self.core.offered.fetch_add(1, Ordering::Relaxed);
                mix(self.core.seed ^ n.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03))
            },
        };
        let shipped = self.host.ship(call)?;
        let host = Arc::clone(&self.host);
        Some(async move {
            let result = shipped.await.and_then(|bytes| {
                crate::codec::decode::<R>(&bytes).map_err(|e| TxError::Decode {
                    what: "a child call's result".into(),
                    reason: e.to_string(),
                })
            });
            if let Err(error) = &result {
                host.doom(error.clone());
            }
            result
        })
    }

    /// What function `function` returned, as its caller sees it: a user
    /// error fails (and dooms) the workflow with the error's message.
    #[doc(hidden)]
    pub fn finish<T>(&self, function: &str, result: Result<T, String>) -> Result<T, TxError> {
        result.or_else(|message| {
            self.fail(TxError::Failed {
                function: function.to_string(),
                message,
            })
        })
    }

    fn check<T>(&self, result: Result<T, TxError>) -> Result<T, TxError> {
        result.or_else(|e| self.fail(e))
    }

    fn fail<T>(&self, error: TxError) -> Result<T, TxError> {
        self.host.doom(error.clone());
        Err(error)
    }
}

/// SplitMix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A child call's view of the transaction under its own time limit.
struct Limited {
    host: Arc<dyn Host>,
    deadline: Instant,
}

impl Limited {
    fn check(&self) -> Result<(), TxError> {
        if Instant::now() < self.deadline {
            return Ok(());
        }
        self.host.doom(TxError::Deadline);
        Err(TxError::Deadline)
    }
}

impl Host for Limited {
    fn doom(&self, error: TxError) {
        self.host.doom(error);
    }

    fn doomed(&self) -> Option<TxError> {
        self.host.doomed()
    }

    fn readable(&self, type_name: &str) -> Result<(), TxError> {
        self.host.readable(type_name)
    }

    fn get(&self, object: &ObjectId, key: &[u8]) -> Result<Option<bytes::Bytes>, TxError> {
        self.check()?;
        self.host.get(object, key)
    }

    fn put(&self, object: &ObjectId, key: &[u8], value: bytes::Bytes) -> Result<(), TxError> {
        self.check()?;
        self.host.put(object, key, value)
    }

    fn delete(&self, object: &ObjectId, key: &[u8]) -> Result<(), TxError> {
        self.check()?;
        self.host.delete(object, key)
    }

    fn scan(
        &self,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, bytes::Bytes)>, TxError> {
        self.check()?;
        self.host.scan(object, from, to)
    }

    fn ship(&self, call: ChildCall) -> Option<Shipped> {
        self.host.ship(call)
    }
}

/// Implemented by `#[lambda_object]` types: their typed handles for calls
/// inside a workflow (generated: `ThreadCalls` and `ThreadStatics` for
/// `Thread`).
pub trait LambdaFunctions: LambdaObject {
    /// Constructors and methods of one object, called from a workflow.
    type Calls<'w>;
    /// Static functions, called from a workflow.
    type Statics<'w>;
    /// The handle on object `id`.
    fn calls(wf: &Workflow, id: ObjectId) -> Self::Calls<'_>;
    /// The handle on the type's static functions.
    fn statics(wf: &Workflow) -> Self::Statics<'_>;
}

/// What names an object of a known type: its key (`"t-42"`, a `String`), or
/// a whole [`ObjectId`] (kept as it is, so a foreign id is reported, not
/// silently re-typed).
pub trait ObjectKey {
    /// The id, given the type's application and name.
    fn into_object_id(self, application: &str, type_name: &str) -> ObjectId;
}

impl ObjectKey for ObjectId {
    fn into_object_id(self, _: &str, _: &str) -> ObjectId {
        self
    }
}

impl ObjectKey for &ObjectId {
    fn into_object_id(self, _: &str, _: &str) -> ObjectId {
        self.clone()
    }
}

impl ObjectKey for &str {
    fn into_object_id(self, application: &str, type_name: &str) -> ObjectId {
        ObjectId::new(application, type_name, self)
    }
}

impl ObjectKey for String {
    fn into_object_id(self, application: &str, type_name: &str) -> ObjectId {
        ObjectId::new(application, type_name, self)
    }
}

impl ObjectKey for &String {
    fn into_object_id(self, application: &str, type_name: &str) -> ObjectId {
        ObjectId::new(application, type_name, self.as_str())
    }
}

/// A function's return value as `Ok`/`Err`: a `Result` whose error displays
/// (the message a failed workflow reports). Generated code uses it for
/// functions declared to return a `Result`.
pub trait Fallible {
    /// The value of a success.
    type Ok;
    /// The success, or the error's message.
    fn into_outcome(self) -> Result<Self::Ok, String>;
}

impl<T, E: fmt::Display> Fallible for Result<T, E> {
    type Ok = T;
    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}
