//! `#[cloud_thread]`: on a free `fn` or on a struct implementing `crucial::Runnable`.

mod item_fn;
mod item_struct;

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::Item;

/// Entry point: dispatches on the kind of item the attribute is on.
pub fn expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    crate::args::expect_empty(args, "#[cloud_thread]")?;
    let item: Item = syn::parse2(input)?;
    match item {
        Item::Fn(item) => item_fn::expand(item),
        Item::Struct(item) => item_struct::expand(item),
        other => Err(syn::Error::new(
            other.span(),
            "#[cloud_thread] goes on a free function, or on a struct that implements \
             `crucial::Runnable`",
        )),
    }
}
