//! `#[shared]`: on a struct it declares a shared object type; on the struct's
//! inherent `impl` it ships the methods to the server.

mod item_impl;
mod item_struct;

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::Item;

/// Entry point: dispatches on the kind of item the attribute is on.
pub fn expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let item: Item = syn::parse2(input)?;
    match item {
        Item::Struct(item) => item_struct::expand(args, item),
        Item::Impl(item) => item_impl::expand(args, item),
        Item::Enum(item) => Err(syn::Error::new(
            item.enum_token.span(),
            "#[shared] goes on a struct and its impl block, not on an enum; \
             wrap the enum in a struct field: `#[shared] struct State { value: MyEnum }`",
        )),
        Item::Trait(item) => Err(syn::Error::new(
            item.trait_token.span(),
            "#[shared] cannot go on a trait: shared objects are concrete types; \
             put it on a struct and on that struct's inherent impl block",
        )),
        Item::Fn(item) => Err(syn::Error::new(
            item.sig.fn_token.span(),
            "#[shared] goes on a struct and its impl block, not on a function; \
             to run a function as a cloud thread use #[cloud_thread]",
        )),
        Item::Union(item) => Err(syn::Error::new(
            item.union_token.span(),
            "#[shared] cannot go on a union; use a struct",
        )),
        other => Err(syn::Error::new(
            other.span(),
            "#[shared] goes on a struct and on its inherent impl block",
        )),
    }
}
