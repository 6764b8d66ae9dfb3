//! # Crucial for Rust
//!
//! Write an ordinary multi-threaded Rust program; run its threads as serverless
//! functions that share state through linearizable distributed objects.
//!
//! * [`macro@shared`] on a struct and its `impl` block makes a *shared object*: a
//!   typed proxy (`Type::shared("key")`) ships every method call to the server that
//!   owns the object, where calls on one object are serialized (linearizable) and
//!   calls on different objects run in parallel.
//! * [`macro@cloud_thread`] on a function makes a *cloud thread*: `work::spawn(args)`
//!   starts it on the configured executor and `join()` returns its typed result.
//! * [`macro@lambda_object`] on a struct of storage fields ([`store::Cell`],
//!   [`store::Map`], [`store::MultiMap`], [`store::Set`]) and its `impl` block makes
//!   a *lambda object*: its functions run next to its entries, call other objects'
//!   functions, and each client call is one strictly serializable transaction
//!   (a *workflow*), re-executed on conflict.
//! * Built-in objects: [`AtomicI32`], [`AtomicI64`], [`AtomicBool`], [`AtomicBytes`],
//!   [`List`] and [`Map`].
//!
//! With no configuration the program is a complete system: the first proxy call
//! starts an in-process server on a loopback port (the *embedded default*) and
//! cloud threads run on local threads. Set `CRUCIAL_SERVER=host:port` to use a
//! separately started `crucial-server`; [`Config`] and [`Context`] say the rest.
//!
//! ```
//! use crucial::{cloud_thread, AtomicI64};
//!
//! #[cloud_thread]
//! fn count(n: i64) -> crucial::Result<i64> {
//!     AtomicI64::shared("total").fetch_add(n)
//! }
//!
//! fn main() -> crucial::Result<()> {
//! #   crucial_server::link(); // the embedded server (see "Binaries and the linker")
//!     let handles: Vec<_> = (1..=4).map(count::spawn).collect();
//!     for h in handles {
//!         h.join()??;
//!     }
//!     assert_eq!(AtomicI64::shared("total").load()?, 10);
//!     Ok(())
//! }
//! ```
//!
//! Every proxy method has a blocking form (cloud threads are threads) and an
//! `_async` twin returning a `Send + 'static` future:
//! `counter.fetch_add(1)?` or `counter.fetch_add_async(1).await?`.
//!
//! A lambda object, its constructor, a transfer across two objects as one
//! workflow, and the abort that leaves nothing behind:
//!
//! ```
//! use crucial::store::{Cell, TxError, Workflow};
//!
//! #[crucial::lambda_object]
//! pub struct Account {
//!     balance: Cell<i64>,
//! }
//!
//! #[crucial::lambda_object]
//! impl Account {
//!     #[constructor]
//!     pub fn open(&mut self, balance: i64) -> Result<(), TxError> {
//!         self.balance.set(&balance)
//!     }
//!
//!     pub fn balance(&self) -> Result<i64, TxError> {
//!         Ok(self.balance.get()?.unwrap_or(0))
//!     }
//!
//!     #[protected]
//!     pub fn credit(&mut self, amount: i64) -> Result<(), TxError> {
//!         let balance = self.balance()? + amount;
//!         if balance < 0 {
//!             return Err(TxError::abort("insufficient funds"));
//!         }
//!         self.balance.set(&balance)
//!     }
//!
//!     /// Both credits or neither: one transaction.
//!     pub async fn transfer(&mut self, wf: &Workflow, to: crucial::ObjectId, amount: i64) -> Result<(), TxError> {
//!         let me = wf.this().expect("an account").clone();
//!         wf.at::<Account>(to).credit(amount).await?;
//!         wf.at::<Account>(me).credit(-amount).await
//!     }
//! }
//!
//! fn main() -> crucial::Result<()> {
//! #   crucial_server::link();
//!     let ann = Account::open("ann", 100)?;
//!     let bob = Account::open("bob", 0)?;
//!     ann.transfer(bob.id().clone(), 30)?;
//!     assert!(ann.transfer(bob.id().clone(), 500).is_err()); // aborted: nothing written
//!     assert_eq!((ann.balance()?, bob.balance()?), (70, 30));
//!     assert!(ann.credit(1_000).is_err()); // protected: not for clients
//!     Ok(())
//! }
//! ```

#![warn(missing_docs)]

extern crate self as crucial;

pub mod __private;
mod builtins;
mod client;
mod codec;
mod config;
mod context;
mod embedded;
mod error;
mod function;
mod proxy;
mod registry;
mod rounds;
pub mod store;
mod thread;

pub use builtins::atomic::{
    AtomicBool, AtomicBoolProxy, AtomicI32, AtomicI32Proxy, AtomicI64, AtomicI64Proxy,
};
pub use builtins::bytes::{AtomicBytes, AtomicBytesProxy};
pub use builtins::list::{List, ListProxy};
pub use builtins::map::{Map, MapProxy, MergeOp, Ordered, Summable};
pub use builtins::sync::{
    ticket, Barrier, BarrierProxy, BarrierWaitResult, CountDownLatch, CountDownLatchProxy, Future,
    FutureProxy, Semaphore, SemaphoreProxy,
};
pub use bytes::Bytes;
pub use client::{Client, Tls, Token};
pub use config::{Config, ENV_SERVER, ENV_TLS_CA, ENV_TLS_SERVER_NAME, ENV_TOKEN, ENV_TOKEN_FILE};
pub use context::Context;
pub use crucial_macros::{cloud_thread, lambda_object, shared};
pub use crucial_protocol::ObjectId;
pub use error::{Error, RemoteError, Result};
// The protocol, under the names the crate has always used for it.
use crucial_protocol::{placement, wire};
pub use proxy::SharedProxy;
pub use registry::SharedType;
pub use rounds::Rounds;
#[cfg(feature = "lambda")]
pub use thread::executor::LambdaExecutor;
pub use thread::executor::{Execution, Executor, Invocation, LocalExecutor, ProcessExecutor};
pub use thread::options::SpawnOptions;
pub use thread::runnable::{RegisteredRunnable, Runnable};
pub use thread::{spawn_by_name, CloudThread, JoinHandle};
pub use wire::{MethodInfo, ObjectInfo, ServerInfo, TypeInfo, WorkflowStats};

/// The entry point of a function binary (deployed to AWS Lambda, run under the
/// local Lambda host or `cargo lambda watch`, or one-shot by the `process`
/// executor). The body of the binary's `main`:
///
/// ```no_run
/// // my_app::link(); // first keep the crate's #[cloud_thread] registrations
/// crucial::lambda::run();
/// ```
///
/// It serves the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is set; otherwise
/// it reads one invocation from stdin and writes its outcome to stdout.
pub mod lambda {
    pub use crate::function::run;
}
