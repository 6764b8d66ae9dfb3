//! Procedural macros of Crucial for Rust.
//!
//! Do not depend on this crate directly: use the `crucial` crate, which re-exports
//! [`macro@shared`] and [`macro@cloud_thread`] and provides the runtime that the
//! generated code calls through its hidden `::crucial::__private` path.
//!
//! Each macro is split into three steps: *parse* the item into a small model,
//! *validate* the model (every error is spanned on the offending token and says
//! how to fix it), and *expand* the model into code.

mod args;
mod cloud_thread;
mod fingerprint;
mod names;
mod shared;

use proc_macro::TokenStream;

/// Turns a struct and its inherent `impl` block into a distributed shared object.
///
/// Put it on the struct (optionally with `persistent` and `name = "..."`) and on
/// the `impl` block whose `&self` / `&mut self` methods should run on the server.
/// See the `crucial` crate documentation for the full contract.
#[proc_macro_attribute]
pub fn shared(args: TokenStream, input: TokenStream) -> TokenStream {
    shared::expand(args.into(), input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Registers a free function (or a `Runnable` struct) as a cloud thread.
///
/// For a function `fn work(a: A) -> R` it generates a module `work` holding
/// `spawn(a) -> crucial::JoinHandle<R>` and the registry entry that lets any
/// executor (local threads, processes, AWS Lambda) run it by name.
#[proc_macro_attribute]
pub fn cloud_thread(args: TokenStream, input: TokenStream) -> TokenStream {
    cloud_thread::expand(args.into(), input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
