//! `#[cloud_thread]` on a struct implementing `crucial::Runnable` (the paper's style):
//! the struct is the thread's input, `Runnable::run` its body.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemStruct;

pub fn expand(item: ItemStruct) -> syn::Result<TokenStream> {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            item.generics.span(),
            "a #[cloud_thread] struct cannot be generic: it is registered and invoked by name \
             with one concrete type",
        ));
    }
    let ident = &item.ident;
    let name = ident.to_string();
    let assert = quote_spanned! {ident.span()=>
        const _: fn() = || {
            ::crucial::__private::assert_runnable::<#ident>();
        };
    };
    Ok(quote! {
        #item

        #assert

        impl ::crucial::__private::RegisteredRunnable for #ident {
            const NAME: &'static str =
                ::crucial::__private::concat!(::crucial::__private::module_path!(), "::", #name);
        }

        const _: () = {
            #[::crucial::__private::linkme::distributed_slice(::crucial::__private::CLOUD_THREADS)]
            #[linkme(crate = ::crucial::__private::linkme)]
            static __CRUCIAL_CLOUD_THREAD: ::crucial::__private::CloudThreadEntry =
                ::crucial::__private::CloudThreadEntry {
                    name: <#ident as ::crucial::__private::RegisteredRunnable>::NAME,
                    run: ::crucial::__private::run_runnable::<#ident>,
                };
        };
    })
}
