//! # crucial-server
//!
//! The storage node of Crucial for Rust: it holds shared objects in memory and
//! runs their methods (method shipping). Calls on one object are serialized;
//! calls on different objects run in parallel. Every type it can host comes from
//! the link-time registry of the binary it is linked into, so an application's
//! server binary is two lines:
//!
//! ```no_run
//! // In `src/bin/my-app-server.rs`:
//! // my_app::link(); // reference the crate that defines the shared types
//! crucial_server::cli::main();
//! ```
//!
//! Linking this crate also gives the `crucial` client its *embedded default*:
//! with `CRUCIAL_SERVER` unset, the first call starts a node on a loopback port
//! inside the process.
//!
//! The path of one call: `net/connection.rs` reads a frame, `request::apply`
//! turns it into an outcome (running it on its object in `shared_objects/`), and the
//! connection's outbox (`net/outbox.rs`), the node's one reply sink, writes the
//! reply. The guide's *Architecture* chapter walks through it.

#![warn(missing_docs)]

#[cfg(feature = "cluster")]
pub mod admin;
mod auth;
pub mod cli;
mod cluster;
mod config;
mod dedup;
mod embedded_node;
mod lambda_objects;
mod metrics;
mod net;
mod node;
mod quota;
mod recovery;
mod request;
mod shared_objects;
mod state;
mod storage;
mod throttle;
mod txn;

pub use config::{ClusterConfig, EtcdAccess, EtcdPassword, Flavor, NodeConfig};
pub use node::{run, run_bound, run_until, runtime, spawn, start, Bound, NodeHandle};
pub use quota::QuotaLimits;
pub use storage::Durability;

/// Makes sure the linker keeps this crate (and so the embedded server
/// registration) in a binary that otherwise only names it in `Cargo.toml`.
#[inline(never)]
pub fn link() {
    std::hint::black_box(&embedded_node::LINKED);
}
