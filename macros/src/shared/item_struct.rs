//! `#[shared]` on a struct: parse -> validate -> expand.

use crate::args::SharedArgs;
use crate::names;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemStruct;

/// The validated model of a shared struct.
struct SharedStruct {
    item: ItemStruct,
    args: SharedArgs,
}

pub fn expand(args: TokenStream, item: ItemStruct) -> syn::Result<TokenStream> {
    let args = SharedArgs::parse(args)?;
    let model = validate(SharedStruct { item, args })?;
    Ok(generate(&model))
}

fn validate(model: SharedStruct) -> syn::Result<SharedStruct> {
    let generics = &model.item.generics;
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        return Err(syn::Error::new(
            generics.span(),
            "a #[shared] struct cannot be generic: the server must know its concrete type; \
             use concrete field types (for typed collections see `crucial::List<T>` and \
             `crucial::Map<K, V>`, which wrap a concrete shared state)",
        ));
    }
    Ok(model)
}

fn generate(model: &SharedStruct) -> TokenStream {
    let item = &model.item;
    let ident = &item.ident;
    let vis = &item.vis;
    let proxy = names::proxy(ident);
    let wire_name = match &model.args.name {
        Some(lit) => quote!(#lit),
        None => {
            let text = ident.to_string();
            quote!(#text)
        }
    };
    let persistent = model.args.persistent;
    let assert = quote_spanned! {ident.span()=>
        const _: fn() = || {
            ::crucial::__private::assert_shared_state::<#ident>();
        };
    };
    let proxy_doc = format!(
        "Client proxy of the shared object type [`{ident}`]: each method ships the call \
         to the server that owns the object. Obtain one with [`{ident}::shared`]."
    );
    let shared_doc = format!(
        "Opens the shared `{ident}` named `key`. The object is created from `Default` \
         on the server at its first call; the proxy is cheap to clone and to send."
    );
    let shared_with_doc = format!(
        "Opens the shared `{ident}` named `key`, creating it from `initial` now if it \
         does not exist yet (an existing object is left as it is)."
    );
    quote! {
        #item

        impl ::crucial::__private::SharedType for #ident {
            const NAME: &'static str = #wire_name;
            const PERSISTENT: bool = #persistent;
            type Proxy = #proxy;
        }

        #assert

        #[doc = #proxy_doc]
        #vis struct #proxy {
            core: ::crucial::__private::ProxyCore,
        }

        impl ::crucial::__private::Clone for #proxy {
            fn clone(&self) -> Self {
                #proxy { core: ::crucial::__private::Clone::clone(&self.core) }
            }
        }

        impl ::crucial::__private::Debug for #proxy {
            fn fmt(&self, f: &mut ::crucial::__private::Formatter<'_>) -> ::crucial::__private::FmtResult {
                ::crucial::__private::Debug::fmt(&self.core, f)
            }
        }

        impl ::crucial::__private::SharedProxy for #proxy {
            fn core(&self) -> &::crucial::__private::ProxyCore {
                &self.core
            }

            fn from_core(core: ::crucial::__private::ProxyCore) -> Self {
                #proxy { core }
            }
        }

        impl #ident {
            #[doc = #shared_doc]
            #vis fn shared<K: ::crucial::__private::Into<::crucial::__private::String>>(key: K) -> #proxy {
                #proxy {
                    core: ::crucial::__private::ProxyCore::new(
                        <#ident as ::crucial::__private::SharedType>::NAME,
                        ::crucial::__private::Into::into(key),
                    ),
                }
            }

            #[doc = #shared_with_doc]
            #vis fn shared_with<K: ::crucial::__private::Into<::crucial::__private::String>>(
                key: K,
                initial: #ident,
            ) -> ::crucial::Result<#proxy> {
                ::crucial::__private::Result::map(
                    ::crucial::__private::ProxyCore::create(
                        <#ident as ::crucial::__private::SharedType>::NAME,
                        ::crucial::__private::Into::into(key),
                        &initial,
                    ),
                    |core| #proxy { core },
                )
            }
        }
    }
}
