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
//! * Built-in objects: [`AtomicI32`], [`AtomicI64`], [`AtomicBool`], [`AtomicBytes`],
//!   [`List`] and [`Map`].
//!
//! With no configuration the program is a complete system: the first proxy call
//! starts an in-process server on a loopback port (the *embedded default*) and
//! cloud threads run on local threads. Set `CRUCIAL_SERVER=host:port` to use a
//! separately started `crucial-server`.
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

#![warn(missing_docs)]

extern crate self as crucial;

mod aws;
mod builtins;
mod client;
pub mod codec;
mod embedded;
mod error;
pub mod function;
pub mod lambda;
mod proxy;
pub mod registry;
mod rounds;
mod thread;
pub mod wire;

pub use builtins::atomic::{
    AtomicBool, AtomicBoolProxy, AtomicI32, AtomicI32Proxy, AtomicI64, AtomicI64Proxy,
};
pub use builtins::bytes::{AtomicBytes, AtomicBytesProxy};
pub use builtins::list::{List, ListProxy, ListState, ListStateProxy};
pub use builtins::map::{Map, MapProxy, MapState, MapStateProxy, MergeOp, Ordered, Summable};
pub use builtins::sync::{
    ticket, Barrier, BarrierProxy, BarrierWaitResult, CountDownLatch, CountDownLatchProxy, Future,
    FutureProxy, FutureState, FutureStateProxy, Semaphore, SemaphoreProxy,
};
pub use bytes::Bytes;
pub use client::{Client, Config, Membership, Ring, ENV_SERVER};
pub use crucial_macros::{cloud_thread, shared};
pub use embedded::{EmbeddedServer, EMBEDDED_SERVERS};
pub use error::{Error, RemoteError, Result};
pub use proxy::{ProxyCore, SharedProxy};
pub use registry::SharedType;
pub use rounds::Rounds;
#[cfg(feature = "lambda")]
pub use thread::LambdaExecutor;
pub use thread::{
    interpret_lambda_response, invoke_http, panic_message, run_registered, spawn_by_name,
    CloudThread, Execution, Executor, Invocation, JoinHandle, LocalExecutor, ProcessExecutor,
    RegisteredRunnable, Runnable, SpawnOptions,
};

/// Everything generated code needs, under one hidden path. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::proxy::{ProxyCore, SharedProxy};
    pub use crate::registry::{
        dispatch_mut, dispatch_poll_mut, dispatch_poll_ref, dispatch_ref, CloudThreadEntry,
        MethodEntry, MethodId, SharedType, SharedTypeEntry, CLOUD_THREADS, SHARED_TYPES,
    };
    pub use crate::thread::{run_runnable, run_thread, spawn_thread, RegisteredRunnable};
    pub use core::clone::Clone;
    pub use core::convert::Into;
    pub use core::fmt::{Debug, Formatter, Result as FmtResult};
    pub use core::future::Future;
    pub use core::marker::Send;
    pub use core::option::Option;
    pub use core::result::Result;
    pub use core::time::Duration;
    pub use core::{concat, module_path};
    pub use linkme;
    pub use std::string::String;

    /// Compile-time check that a `#[shared]` struct can live on a server.
    pub fn assert_shared_state<T>()
    where
        T: Default + serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
    }

    /// Compile-time check that a value can cross the wire.
    pub fn assert_wire<T>()
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
    }

    /// Compile-time check that a `#[cloud_thread]` struct is runnable.
    pub fn assert_runnable<T: crate::Runnable>() {}
}
