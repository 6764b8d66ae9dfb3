//! The code generated for an object type's struct: its registration as a
//! shared type, the check that it can live on a node, its proxy type, and the
//! constructors that open a proxy.

use crate::ast::ObjectStruct;
use crate::attr::ObjectArgs;
use crate::fingerprint::{canonical, fnv1a};
use crate::names;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

/// Generates one object type's struct-side items, one method per item.
pub struct ObjectGen<'a> {
    object: &'a ObjectStruct,
    args: &'a ObjectArgs,
    expandable: bool,
}

impl<'a> ObjectGen<'a> {
    /// A generator for `object`; `expandable: false` emits the struct alone.
    pub fn new(object: &'a ObjectStruct, args: &'a ObjectArgs, expandable: bool) -> Self {
        ObjectGen {
            object,
            args,
            expandable,
        }
    }

    /// The struct and everything generated for it.
    pub fn generate(&self) -> TokenStream {
        let item = &self.object.item;
        if !self.expandable {
            return quote!(#item);
        }
        let shared_type = self.shared_type_impl();
        let state_check = self.state_check();
        let proxy = self.proxy_struct();
        let proxy_traits = self.proxy_traits();
        let constructors = self.constructors();
        quote! {
            #item
            #shared_type
            #state_check
            #proxy
            #proxy_traits
            #constructors
        }
    }

    fn ident(&self) -> &syn::Ident {
        &self.object.item.ident
    }

    fn proxy(&self) -> syn::Ident {
        names::proxy(self.ident())
    }

    /// `impl SharedType`: the wire name, persistence, and the proxy type.
    fn shared_type_impl(&self) -> TokenStream {
        let ident = self.ident();
        let proxy = self.proxy();
        let wire_name = self.args.type_name(ident);
        let persistent = self.args.persistent;
        let shape = self.shape();
        let replicas = self.args.replicas.as_ref().map(|n| {
            let n = n.base10_parse::<u8>().unwrap_or(0);
            quote! { const REPLICAS: u8 = #n; }
        });
        quote! {
            impl ::crucial::__private::SharedType for #ident {
                const NAME: &'static str = #wire_name;
                const PERSISTENT: bool = #persistent;
                const SHAPE: u64 = #shape;
                #replicas
                type Proxy = #proxy;
            }
        }
    }

    /// Fingerprint of the state's shape: the fields (names, types, and their
    /// serde attributes) and the struct's serde attributes, in order. Doc
    /// comments and derives do not count: they do not change the encoding.
    fn shape(&self) -> u64 {
        let item = &self.object.item;
        let serde_attrs = |attrs: &[syn::Attribute]| -> String {
            attrs
                .iter()
                .filter(|a| a.path().is_ident("serde"))
                .map(canonical)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut text = serde_attrs(&item.attrs);
        for field in &item.fields {
            text.push('|');
            text.push_str(&serde_attrs(&field.attrs));
            if let Some(name) = &field.ident {
                text.push_str(&name.to_string());
                text.push(':');
            }
            text.push_str(&canonical(&field.ty));
        }
        fnv1a(&text)
    }

    /// A compile-time check, spanned on the struct's name, that the type can
    /// live on a node (`Default`, serde, `Send`).
    fn state_check(&self) -> TokenStream {
        let ident = self.ident();
        quote_spanned! {ident.span()=>
            const _: fn() = || {
                ::crucial::__private::assert_shared_state::<#ident>();
            };
        }
    }

    /// The proxy type: `CounterProxy` for `Counter`.
    fn proxy_struct(&self) -> TokenStream {
        let ident = self.ident();
        let vis = &self.object.item.vis;
        let proxy = self.proxy();
        let doc = format!(
            "Client proxy of the shared object type [`{ident}`]: each method ships the call \
             to the server that owns the object. Obtain one with [`{ident}::shared`]."
        );
        quote! {
            #[doc = #doc]
            #vis struct #proxy {
                core: ::crucial::__private::ProxyCore,
            }
        }
    }

    /// `Clone`, `Debug` and `SharedProxy` for the proxy.
    fn proxy_traits(&self) -> TokenStream {
        let proxy = self.proxy();
        quote! {
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
        }
    }

    /// `Type::shared(key)` and `Type::shared_with(key, initial)`.
    fn constructors(&self) -> TokenStream {
        let ident = self.ident();
        let vis = &self.object.item.vis;
        let proxy = self.proxy();
        let [shared, shared_with] = names::TYPE_CONSTRUCTORS
            .map(|name| proc_macro2::Ident::new(name, proc_macro2::Span::call_site()));
        let shared_doc = format!(
            "Opens the shared `{ident}` named `key`. The object is created from `Default` \
             on the server at its first call; the proxy is cheap to clone and to send."
        );
        let shared_with_doc = format!(
            "Opens the shared `{ident}` named `key`, creating it from `initial` now if it \
             does not exist yet (an existing object is left as it is)."
        );
        quote! {
            impl #ident {
                #[doc = #shared_doc]
                #vis fn #shared<K: ::crucial::__private::Into<::crucial::__private::String>>(key: K) -> #proxy {
                    #proxy {
                        core: ::crucial::__private::ProxyCore::new(
                            <#ident as ::crucial::__private::SharedType>::NAME,
                            ::crucial::__private::Into::into(key),
                        ),
                    }
                }

                #[doc = #shared_with_doc]
                #vis fn #shared_with<K: ::crucial::__private::Into<::crucial::__private::String>>(
                    key: K,
                    initial: #ident,
                ) -> ::crucial::__private::ApiResult<#proxy> {
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
}
