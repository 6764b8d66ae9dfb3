//! CloudForum, the example application of the LambdaStore paper, on lambda
//! objects: accounts, communities, threads and comments, where starting a
//! thread and commenting are workflows across several objects, each one
//! strictly serializable transaction.
//!
//! * `objects`: the lambda objects and their functions;
//! * `load`: a load generator over any backend (the usual forum mix);
//! * `backend`: the lambda-object backend and the invariant check.
//!
//! `cargo run --release -p forum` runs the mix on the embedded node and checks
//! the invariants; `forum-server` is a node that runs the functions.

pub mod backend;
pub mod load;
pub mod objects;

pub use backend::{check, Checked, LambdaForum};
pub use objects::{Account, Comment, Community, IndexEntry, Page, Thread};

/// Referenced from each binary's `main` so the linker keeps this crate's
/// registrations (see the guide, "Binaries and the linker").
#[inline(never)]
pub fn link() {
    crucial_server::link();
}
