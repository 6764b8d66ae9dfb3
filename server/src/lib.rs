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

#![warn(missing_docs)]

pub mod cli;
mod config;
mod connection;
pub mod dedup;
mod dispatch;
mod embedded;
pub mod metrics;
mod node;
mod parking;
pub mod table;

pub use config::{Flavor, NodeConfig};
pub use node::{run, run_bound, runtime, serve, spawn, Bound, NodeState};

/// Makes sure the linker keeps this crate (and so the embedded server
/// registration) in a binary that otherwise only names it in `Cargo.toml`.
#[inline(never)]
pub fn link() {
    std::hint::black_box(&embedded::LINKED);
}
