//! Procedural macros of Crucial for Rust.
//!
//! Do not depend on this crate directly: use the `crucial` crate, which re-exports
//! [`macro@shared`], [`macro@lambda_object`] and [`macro@cloud_thread`] and provides the runtime that the
//! generated code calls through its hidden `::crucial::__private` path.
//!
//! Every macro runs the same three steps over one model: `ast` parses the item
//! into it (an object type with its kind, its methods; a cloud thread), `check`
//! applies every rule once and collects all errors in a `Ctxt`, and `expand`
//! generates code from it with one generator method per generated item. The
//! user's item is emitted even when there are errors, so one mistake gives one
//! error.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod fingerprint;
mod names;

use proc_macro::TokenStream;

/// Turns a struct and its inherent `impl` block into a distributed shared object.
///
/// Put it on the struct (optionally with `persistent`, `replicas = N` — copies
/// of each object in a cluster, 1 to 7, persistent types only, instead of the
/// cluster's `--replicas` — and `name = "..."`) and on the `impl` block whose
/// `&self` / `&mut self` methods should run on the server.
/// See the `crucial` crate documentation for the full contract.
#[proc_macro_attribute]
pub fn shared(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::shared(args.into(), input.into()).into()
}

/// Declares a lambda object type. On a struct whose fields are storage fields
/// (`Cell<T>`, `Map<K, V>`, `MultiMap<K, V>`, `Set<T>` from `crucial::store`):
/// binds them to one object in a running workflow's transaction (optional
/// argument `name = "..."`, the registered type name). On its `impl` block
/// (optional `time_limit = "2s"`): every `fn` is a function — `#[constructor]`,
/// `&self` (reads), `&mut self` (writes), or static — called by clients
/// through `Type::at(key)` (a `TypeRef` handle) and by other functions through
/// `wf.at::<Type>(id)`; `#[protected]` ones only by other functions;
/// `#[time_limit = "500ms"]` per function. See the `crucial` crate
/// documentation and the guide's *Lambda objects* chapter.
#[proc_macro_attribute]
pub fn lambda_object(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::lambda_object(args.into(), input.into()).into()
}

/// Registers a free function (or a `Runnable` struct) as a cloud thread.
///
/// For a function `fn work(a: A) -> R` it generates a module `work` holding
/// `spawn(a) -> crucial::JoinHandle<R>` and the registry entry that lets any
/// executor (local threads, processes, AWS Lambda) run it by name.
#[proc_macro_attribute]
pub fn cloud_thread(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::cloud_thread(args.into(), input.into()).into()
}
