//! Names of generated items, in one place so the docs and the clash checks agree.

use proc_macro2::{Ident, Span};
use quote::format_ident;

/// The proxy type generated for a `#[shared]` struct: `Counter` -> `CounterProxy`.
pub fn proxy(ty: &Ident) -> Ident {
    format_ident!("{}Proxy", ty, span = ty.span())
}

/// The proxy of an impl block's self type, by path: `Counter` -> `CounterProxy`,
/// `super::Counter` -> `super::CounterProxy` (`check` made sure it is a path).
pub fn proxy_path(self_ty: &syn::Type) -> proc_macro2::TokenStream {
    match self_ty {
        syn::Type::Path(p) => {
            let mut path = p.path.clone();
            if let Some(last) = path.segments.last_mut() {
                last.ident = proxy(&last.ident);
            }
            quote::quote!(#path)
        }
        other => quote::quote!(#other),
    }
}

/// The client handle of a lambda object type: `Thread` -> `ThreadRef`.
pub fn handle(ty: &Ident) -> Ident {
    format_ident!("{}Ref", ty, span = ty.span())
}

/// The client handle of a map call over a lambda object type's objects:
/// `Thread` -> `ThreadMap`.
pub fn map_handle(ty: &Ident) -> Ident {
    format_ident!("{}Map", ty, span = ty.span())
}

/// The in-workflow handle on one object's functions: `Thread` -> `ThreadCalls`.
pub fn calls(ty: &Ident) -> Ident {
    format_ident!("{}Calls", ty, span = ty.span())
}

/// The in-workflow handle on a type's static functions: `Thread` ->
/// `ThreadStatics`.
pub fn statics(ty: &Ident) -> Ident {
    format_ident!("{}Statics", ty, span = ty.span())
}

/// The name the user's constructor or static function keeps in the emitted
/// impl block, so that the generated client function can take its name on
/// the type: `create` -> `__crucial_create`.
pub fn renamed_function(function: &Ident) -> Ident {
    format_ident!("__crucial_{}", function, span = function.span())
}

/// The hidden constant holding a function's identity on the client handle.
pub fn function_id(function: &Ident) -> Ident {
    format_ident!("__CRUCIAL_FN_{}", function)
}

/// The hidden entry point the node runs a client's call of a function through.
pub fn function_entry(function: &Ident) -> Ident {
    format_ident!("__crucial_run_{}", function)
}

/// The async twin of a proxy method: `add` -> `add_async`.
pub fn async_method(method: &Ident) -> Ident {
    format_ident!("{}_async", method, span = method.span())
}

/// Associated functions the `#[shared]` struct expansion adds to the user's type.
pub const TYPE_CONSTRUCTORS: [&str; 2] = ["shared", "shared_with"];

/// The timeout twin of a blocking proxy method: `acquire` -> `acquire_timeout`.
pub fn timeout_method(method: &Ident) -> Ident {
    format_ident!("{}_timeout", method, span = method.span())
}

/// The name a generated function gives a parameter: the user's own name when
/// the pattern is a plain identifier (so docs and errors read naturally),
/// `argN` for any other pattern.
pub fn parameter(pat: &syn::Pat, index: usize) -> Ident {
    match pat {
        syn::Pat::Ident(p) => Ident::new(&p.ident.to_string(), p.ident.span()),
        _ => format_ident!("arg{}", index),
    }
}

/// The `timeout` parameter of generated `_timeout` twins, hygienic so that it
/// never clashes with a user parameter of the same name.
pub fn timeout_parameter() -> Ident {
    Ident::new("timeout", Span::mixed_site())
}
