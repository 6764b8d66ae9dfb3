//! Names of generated items, in one place so the docs and the clash checks agree.

use proc_macro2::Ident;
use quote::format_ident;

/// The proxy type generated for a `#[shared]` struct: `Counter` -> `CounterProxy`.
pub fn proxy(ty: &Ident) -> Ident {
    format_ident!("{}Proxy", ty, span = ty.span())
}

/// The async twin of a proxy method: `add` -> `add_async`.
pub fn async_method(method: &Ident) -> Ident {
    format_ident!("{}_async", method, span = method.span())
}

/// Associated functions the `#[shared]` struct expansion adds to the user's type.
pub const TYPE_CONSTRUCTORS: &[&str] = &["shared", "shared_with"];

/// The timeout twin of a blocking proxy method: `acquire` -> `acquire_timeout`.
pub fn timeout_method(method: &Ident) -> Ident {
    format_ident!("{}_timeout", method, span = method.span())
}
