//! The code generated for an object type's impl block: for each shipped
//! method a `MethodId`, a row of the node's dispatch table and wire-type
//! checks; the type's registry entry; and the proxy's methods (blocking, an
//! `_async` twin, and a `_timeout` twin for blocking methods). A method that
//! cannot be shipped still gets a proxy stub of the same name, so that callers
//! do not add "no method found" errors to the one that explains it.

use super::contains_impl_trait;
use crate::ast::{Method, ObjectImpl};
use crate::check::{ImplVerdict, Shipping};
use crate::fingerprint::fnv1a;
use crate::names;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Type;

/// Generates one impl block's items, one method per item.
pub struct MethodsGen<'a> {
    imp: &'a ObjectImpl,
    verdict: &'a ImplVerdict,
}

impl<'a> MethodsGen<'a> {
    /// A generator for `imp` as judged by `verdict`.
    pub fn new(imp: &'a ObjectImpl, verdict: &'a ImplVerdict) -> Self {
        MethodsGen { imp, verdict }
    }

    /// The impl block and everything generated for it.
    pub fn generate(&self) -> TokenStream {
        let item = self.emitted_item();
        if !self.verdict.expandable {
            return quote!(#item);
        }
        let ids = self.method_ids();
        let wire_checks = self.wire_checks();
        let registry = self.registry_entry();
        let proxy = self.proxy_impl();
        quote! {
            #item

            const _: () = {
                #ids
                #wire_checks
                #registry
                #proxy
            };
        }
    }

    /// The user's impl block, minus methods whose name a generated
    /// constructor of the type takes (they would be defined twice).
    fn emitted_item(&self) -> syn::ItemImpl {
        let omitted: Vec<&Ident> = self
            .imp
            .methods
            .iter()
            .zip(&self.verdict.shipping)
            .filter(|(_, shipping)| **shipping == Shipping::Omit)
            .map(|(m, _)| m.ident())
            .collect();
        let mut item = self.imp.item.clone();
        item.items.retain(|impl_item| match impl_item {
            syn::ImplItem::Fn(f) => !omitted.contains(&&f.sig.ident),
            _ => true,
        });
        item
    }

    fn self_ty(&self) -> &Type {
        &self.imp.item.self_ty
    }

    /// The methods that can be shipped, with their index in the model.
    fn shipped(&self) -> impl Iterator<Item = (usize, &'a Method)> + '_ {
        self.imp
            .methods
            .iter()
            .enumerate()
            .filter(|(index, _)| self.verdict.shipping[*index] == Shipping::Ship)
    }

    fn id_const(index: usize) -> Ident {
        format_ident!("__CRUCIAL_METHOD_{}", index)
    }

    /// One `MethodId` const per shipped method: name, fingerprint, mutability.
    fn method_ids(&self) -> TokenStream {
        self.shipped()
            .map(|(index, m)| {
                let id_const = Self::id_const(index);
                let name = m.ident().to_string();
                let fingerprint = fnv1a(&m.signature());
                let read_only = !m.mutable();
                let blocking = m.poll_of().is_some();
                quote! {
                    const #id_const: ::crucial::__private::MethodId = ::crucial::__private::MethodId {
                        name: #name,
                        fingerprint: #fingerprint,
                        read_only: #read_only,
                        blocking: #blocking,
                    };
                }
            })
            .collect()
    }

    /// Compile-time checks, spanned on each type, that arguments and results
    /// can cross the wire.
    fn wire_checks(&self) -> TokenStream {
        let checks = self.shipped().flat_map(|(_, m)| {
            m.params
                .iter()
                .map(|p| &p.ty)
                .chain(m.reply_type())
                .map(|ty| {
                    quote_spanned! {ty.span()=>
                        ::crucial::__private::assert_wire::<#ty>();
                    }
                })
                .collect::<Vec<_>>()
        });
        quote! {
            #[allow(dead_code)]
            fn _crucial_assert_wire_types() {
                #(#checks)*
            }
        }
    }

    /// The node's dispatch row of one method: decode, call, encode.
    fn dispatch_entry(&self, index: usize, m: &Method) -> TokenStream {
        let self_ty = self.self_ty();
        let ident = m.ident();
        let id_const = Self::id_const(index);
        let signature = m.signature();
        let names: Vec<&Ident> = m.params.iter().map(|p| &p.name).collect();
        let types: Vec<&Type> = m.params.iter().map(|p| &p.ty).collect();
        let closure_output = m.output.as_ref().map(|t| quote!(-> #t));
        let (receiver, dispatch) = match (m.mutable(), m.poll_of().is_some()) {
            (true, false) => (quote!(&mut #self_ty), quote!(dispatch_mut)),
            (false, false) => (quote!(&#self_ty), quote!(dispatch_ref)),
            (true, true) => (quote!(&mut #self_ty), quote!(dispatch_poll_mut)),
            (false, true) => (quote!(&#self_ty), quote!(dispatch_poll_ref)),
        };
        quote! {
            ::crucial::__private::MethodEntry {
                id: #id_const,
                signature: #signature,
                invoke: |object, args| {
                    ::crucial::__private::#dispatch(
                        object,
                        args,
                        |this: #receiver, (#(#names,)*): (#(#types,)*)| #closure_output {
                            <#self_ty>::#ident(this, #(#names),*)
                        },
                    )
                },
            }
        }
    }

    /// The type's entry in the link-time registry, with its dispatch table.
    fn registry_entry(&self) -> TokenStream {
        let self_ty = self.self_ty();
        let entries = self
            .shipped()
            .map(|(index, m)| self.dispatch_entry(index, m));
        quote! {
            #[::crucial::__private::linkme::distributed_slice(::crucial::__private::SHARED_TYPES)]
            #[linkme(crate = ::crucial::__private::linkme)]
            static __CRUCIAL_SHARED_TYPE: ::crucial::__private::SharedTypeEntry =
                ::crucial::__private::SharedTypeEntry::new::<#self_ty>(
                    &[#(#entries),*],
                    ::crucial::__private::module_path!(),
                );
        }
    }

    /// `impl CounterProxy { ... }`: the proxy's methods.
    fn proxy_impl(&self) -> TokenStream {
        let proxy = names::proxy_path(self.self_ty());
        let methods = self.imp.methods.iter().enumerate().map(|(index, m)| {
            match self.verdict.shipping[index] {
                Shipping::Ship => {
                    let id_const = Self::id_const(index);
                    let mut out = self.blocking_method(m, &id_const);
                    out.extend(self.async_twin(m, &id_const));
                    if m.poll_of().is_some() {
                        out.extend(self.timeout_twin(m, &id_const));
                    }
                    out
                }
                Shipping::Stub => self.stub(m),
                Shipping::Skip | Shipping::Omit => TokenStream::new(),
            }
        });
        quote! {
            #[allow(clippy::all)]
            impl #proxy {
                #(#methods)*
            }
        }
    }

    /// What the caller receives, as a type.
    fn reply(m: &Method) -> TokenStream {
        match m.reply_type() {
            Some(t) => quote!(#t),
            None => quote!(()),
        }
    }

    /// The proxy method of the same name: ships the call and blocks for the result.
    fn blocking_method(&self, m: &Method, id_const: &Ident) -> TokenStream {
        let (vis, docs, ident) = (&m.vis, &m.docs, m.ident());
        let names: Vec<&Ident> = m.params.iter().map(|p| &p.name).collect();
        let types: Vec<&Type> = m.params.iter().map(|p| &p.ty).collect();
        let reply = Self::reply(m);
        quote! {
            #(#docs)*
            #vis fn #ident(&self, #(#names: #types),*) -> ::crucial::__private::ApiResult<#reply> {
                self.core.call_blocking(&#id_const, &(#(#names,)*))
            }
        }
    }

    /// `name_async`: the same call as a `Send + 'static` future.
    fn async_twin(&self, m: &Method, id_const: &Ident) -> TokenStream {
        let vis = &m.vis;
        let ident = names::async_method(m.ident());
        let names: Vec<&Ident> = m.params.iter().map(|p| &p.name).collect();
        let types: Vec<&Type> = m.params.iter().map(|p| &p.ty).collect();
        let reply = Self::reply(m);
        let doc = format!("Async twin of [`Self::{}`]: same call, awaited.", m.ident());
        quote! {
            #[doc = #doc]
            #vis fn #ident(&self, #(#names: #types),*)
                -> impl ::crucial::__private::Future<Output = ::crucial::__private::ApiResult<#reply>>
                    + ::crucial::__private::Send + 'static
            {
                self.core.call_async(&#id_const, &(#(#names,)*))
            }
        }
    }

    /// `name_timeout` of a blocking method: gives up after a time.
    fn timeout_twin(&self, m: &Method, id_const: &Ident) -> TokenStream {
        let vis = &m.vis;
        let ident = names::timeout_method(m.ident());
        let timeout = names::timeout_parameter();
        let names: Vec<&Ident> = m.params.iter().map(|p| &p.name).collect();
        let types: Vec<&Type> = m.params.iter().map(|p| &p.ty).collect();
        let reply = Self::reply(m);
        let doc = format!(
            "[`Self::{}`] that gives up after `timeout` with `RemoteError::Timeout`.",
            m.ident()
        );
        quote! {
            #[doc = #doc]
            #vis fn #ident(
                &self,
                #(#names: #types,)*
                #timeout: ::crucial::__private::Duration,
            ) -> ::crucial::__private::ApiResult<#reply> {
                self.core.call_waiting(&#id_const, &(#(#names,)*), #timeout)
            }
        }
    }

    /// A proxy method for a method that cannot be shipped: same name and
    /// parameters, never called (the build already fails with the reason).
    fn stub(&self, m: &Method) -> TokenStream {
        let (vis, ident) = (&m.vis, m.ident());
        let (generics, where_clause) = (&m.sig.generics, &m.sig.generics.where_clause);
        let names: Vec<&Ident> = m.params.iter().map(|p| &p.name).collect();
        let types: Vec<&Type> = m.params.iter().map(|p| &p.ty).collect();
        let reply = match m.reply_type() {
            Some(t) if !contains_impl_trait(t) => quote!(#t),
            _ => quote!(()),
        };
        quote! {
            #[allow(unused_variables)]
            #vis fn #ident #generics (&self, #(#names: #types),*) -> ::crucial::__private::ApiResult<#reply>
                #where_clause
            {
                ::crucial::__private::unreachable!("a #[shared] method that did not compile")
            }
        }
    }
}
