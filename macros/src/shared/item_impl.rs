//! `#[shared]` on an inherent impl block: parse -> validate -> expand.
//!
//! Every method with a `&self` or `&mut self` receiver is shipped: the proxy gets
//! a blocking method of the same name and an `_async` twin, and the server gets a
//! dispatch entry keyed by name and signature fingerprint. Associated functions
//! without a receiver (constructors, helpers) stay local and are left alone.

use crate::args;
use crate::fingerprint::{canonical, fnv1a};
use crate::names;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, ReturnType, Type, Visibility};

/// The validated model of a shared impl block.
struct SharedImpl {
    item: ItemImpl,
    self_ty: Type,
    proxy: TokenStream,
    methods: Vec<ShippedMethod>,
}

/// One method that runs on the server.
struct ShippedMethod {
    ident: Ident,
    vis: Visibility,
    mutable: bool,
    args: Vec<(Ident, Type)>,
    output: Option<Type>,
    /// `Some(T)` when the method returns `Poll<T>` (a blocking method).
    poll_of: Option<Type>,
    docs: Vec<syn::Attribute>,
    signature: String,
}

/// `Poll<T>` (by its last path segment, as `std::task::Poll<T>` or an import) -> `T`.
fn poll_inner(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Poll" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match (args.args.len(), args.args.first()) {
        (1, Some(syn::GenericArgument::Type(inner))) => Some(inner.clone()),
        _ => None,
    }
}

pub fn expand(attr: TokenStream, item: ItemImpl) -> syn::Result<TokenStream> {
    args::expect_empty(
        attr,
        "#[shared] on an impl block (put `persistent` or `name = ...` on the struct)",
    )?;
    let model = parse(item)?;
    validate_names(&model)?;
    Ok(generate(&model))
}

fn parse(item: ItemImpl) -> syn::Result<SharedImpl> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[shared] goes on the type's inherent impl block (`impl MyType { ... }`), \
             not on a trait impl",
        ));
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            item.generics.span(),
            "a #[shared] impl block cannot be generic: shared objects have one concrete type",
        ));
    }
    let proxy = proxy_path(&item.self_ty)?;
    let mut methods = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for impl_item in &item.items {
        if let ImplItem::Fn(method) = impl_item {
            match parse_method(method) {
                Ok(Some(m)) => methods.push(m),
                Ok(None) => {}
                Err(e) => match &mut errors {
                    Some(all) => all.combine(e),
                    None => errors = Some(e),
                },
            }
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    Ok(SharedImpl {
        self_ty: (*item.self_ty).clone(),
        item,
        proxy,
        methods,
    })
}

/// `Counter` -> `CounterProxy`, `super::Counter` -> `super::CounterProxy`.
fn proxy_path(self_ty: &Type) -> syn::Result<TokenStream> {
    let path =
        match self_ty {
            Type::Path(p) if p.qself.is_none() => &p.path,
            other => return Err(syn::Error::new(
                other.span(),
                "#[shared] impl blocks must name the struct by path, e.g. `impl Counter { ... }`",
            )),
        };
    let mut path = path.clone();
    let last = path.segments.last_mut().expect("a path has a segment");
    if !last.arguments.is_empty() {
        return Err(syn::Error::new(
            last.arguments.span(),
            "a #[shared] type cannot be generic: the server must know its concrete type",
        ));
    }
    last.ident = names::proxy(&last.ident);
    Ok(quote!(#path))
}

fn parse_method(method: &ImplItemFn) -> syn::Result<Option<ShippedMethod>> {
    let sig = &method.sig;
    let receiver = match sig.inputs.first() {
        Some(FnArg::Receiver(r)) => r,
        _ => return Ok(None), // an associated function: stays local
    };
    if receiver.reference.is_none() {
        return Err(syn::Error::new(
            receiver.span(),
            "a #[shared] method cannot take `self` by value: the object lives on the server \
             and is never moved out; take `&self` (read-only) or `&mut self` (mutating)",
        ));
    }
    if receiver.colon_token.is_some() {
        return Err(syn::Error::new(
            receiver.ty.span(),
            "a #[shared] method takes `&self` or `&mut self`; typed receivers like \
             `self: Box<Self>` are not supported",
        ));
    }
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "a #[shared] method cannot be `async`: it runs under the object's lock on the \
             server and must not suspend; make it a plain `fn` (the proxy still gets an \
             `_async` twin for callers)",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a #[shared] method cannot be generic: the server dispatches on one concrete \
             signature; use concrete argument types",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new(
            variadic.span(),
            "variadic methods cannot be shipped",
        ));
    }
    let mut args = Vec::new();
    for (index, input) in sig.inputs.iter().skip(1).enumerate() {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        reject_references(&pat_type.ty, "argument")?;
        args.push((
            names::parameter(&pat_type.pat, index),
            (*pat_type.ty).clone(),
        ));
    }
    let output = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => {
            reject_references(ty, "return type")?;
            Some((**ty).clone())
        }
    };
    let mutable = receiver.mutability.is_some();
    let signature = format!(
        "fn {}({}{}){}",
        sig.ident,
        if mutable { "&mut self" } else { "&self" },
        args.iter()
            .map(|(n, t)| format!(", {}: {}", n, canonical(t)))
            .collect::<String>(),
        output
            .as_ref()
            .map(|t| format!(" -> {}", canonical(t)))
            .unwrap_or_default(),
    );
    let docs = method
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    let poll_of = output.as_ref().and_then(poll_inner);
    Ok(Some(ShippedMethod {
        ident: sig.ident.clone(),
        vis: method.vis.clone(),
        mutable,
        args,
        output,
        poll_of,
        docs,
        signature,
    }))
}

fn reject_references(ty: &Type, what: &str) -> syn::Result<()> {
    match ty {
        Type::Reference(r) => Err(syn::Error::new(
            r.and_token.span(),
            format!(
                "a #[shared] method's {what} cannot be a reference: values cross the network \
                 by copy; use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`)"
            ),
        )),
        Type::ImplTrait(t) => Err(syn::Error::new(
            t.span(),
            format!("a #[shared] method's {what} cannot be `impl Trait`; name a concrete type"),
        )),
        Type::Paren(p) => reject_references(&p.elem, what),
        Type::Tuple(t) => t.elems.iter().try_for_each(|e| reject_references(e, what)),
        _ => Ok(()),
    }
}

fn validate_names(model: &SharedImpl) -> syn::Result<()> {
    for m in &model.methods {
        let name = m.ident.to_string();
        if names::TYPE_CONSTRUCTORS.contains(&name.as_str()) {
            return Err(syn::Error::new(
                m.ident.span(),
                format!(
                    "`{name}` clashes with the constructor that #[shared] generates \
                     (`Type::{name}(key)` opens a proxy); rename the method"
                ),
            ));
        }
        for suffix in ["_async", "_timeout"] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            let twin_exists = model
                .methods
                .iter()
                .any(|o| o.ident == base && (suffix == "_async" || o.poll_of.is_some()));
            if twin_exists {
                let twin = if suffix == "_async" {
                    "async"
                } else {
                    "timeout"
                };
                return Err(syn::Error::new(
                    m.ident.span(),
                    format!(
                        "`{name}` clashes with the {twin} twin that #[shared] generates for \
                         `{base}`; rename one of the two methods"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn generate(model: &SharedImpl) -> TokenStream {
    let item = &model.item;
    let self_ty = &model.self_ty;
    let proxy = &model.proxy;
    let mut consts = Vec::new();
    let mut entries = Vec::new();
    let mut proxy_methods = Vec::new();
    let mut asserts = Vec::new();
    for (index, m) in model.methods.iter().enumerate() {
        let ident = &m.ident;
        let name = ident.to_string();
        let id_const = format_ident!("__CRUCIAL_METHOD_{}", index);
        let fingerprint = fnv1a(&m.signature);
        let read_only = !m.mutable;
        let blocking = m.poll_of.is_some();
        let signature = &m.signature;
        consts.push(quote! {
            const #id_const: ::crucial::__private::MethodId = ::crucial::__private::MethodId {
                name: #name,
                fingerprint: #fingerprint,
                read_only: #read_only,
                blocking: #blocking,
            };
        });
        let arg_names: Vec<&Ident> = m.args.iter().map(|(n, _)| n).collect();
        let arg_types: Vec<&Type> = m.args.iter().map(|(_, t)| t).collect();
        for ty in arg_types
            .iter()
            .copied()
            .chain(m.poll_of.as_ref().or(m.output.as_ref()))
        {
            asserts.push(quote_spanned! {ty.span()=>
                ::crucial::__private::assert_wire::<#ty>();
            });
        }
        // What the caller receives: `T` of `Poll<T>` for blocking methods.
        let output = match (&m.poll_of, &m.output) {
            (Some(t), _) | (None, Some(t)) => quote!(#t),
            (None, None) => quote!(()),
        };
        let closure_output = m.output.as_ref().map(|t| quote!(-> #t));
        let (receiver, dispatch) = match (m.mutable, blocking) {
            (true, false) => (quote!(&mut #self_ty), quote!(dispatch_mut)),
            (false, false) => (quote!(&#self_ty), quote!(dispatch_ref)),
            (true, true) => (quote!(&mut #self_ty), quote!(dispatch_poll_mut)),
            (false, true) => (quote!(&#self_ty), quote!(dispatch_poll_ref)),
        };
        entries.push(quote! {
            ::crucial::__private::MethodEntry {
                id: #id_const,
                signature: #signature,
                invoke: |object, args| {
                    ::crucial::__private::#dispatch(
                        object,
                        args,
                        |this: #receiver, (#(#arg_names,)*): (#(#arg_types,)*)| #closure_output {
                            <#self_ty>::#ident(this, #(#arg_names),*)
                        },
                    )
                },
            }
        });
        let vis = &m.vis;
        let docs = &m.docs;
        let async_ident = names::async_method(ident);
        let async_doc = format!("Async twin of [`Self::{name}`]: same call, awaited.");
        if blocking {
            let timeout_ident = names::timeout_method(ident);
            let timeout = names::timeout_parameter();
            let timeout_doc = format!(
                "[`Self::{name}`] that gives up after `timeout` with `RemoteError::Timeout`."
            );
            proxy_methods.push(quote! {
                #[doc = #timeout_doc]
                #vis fn #timeout_ident(
                    &self,
                    #(#arg_names: #arg_types,)*
                    #timeout: ::crucial::__private::Duration,
                ) -> ::crucial::Result<#output> {
                    self.core.call_waiting(&#id_const, &(#(#arg_names,)*), #timeout)
                }
            });
        }
        proxy_methods.push(quote! {
            #(#docs)*
            #vis fn #ident(&self, #(#arg_names: #arg_types),*) -> ::crucial::Result<#output> {
                self.core.call_blocking(&#id_const, &(#(#arg_names,)*))
            }

            #[doc = #async_doc]
            #vis fn #async_ident(&self, #(#arg_names: #arg_types),*)
                -> impl ::crucial::__private::Future<Output = ::crucial::Result<#output>>
                    + ::crucial::__private::Send + 'static
            {
                self.core.call_async(&#id_const, &(#(#arg_names,)*))
            }
        });
    }
    quote! {
        #item

        const _: () = {
            #(#consts)*

            #[allow(dead_code)]
            fn _crucial_assert_wire_types() {
                #(#asserts)*
            }

            #[::crucial::__private::linkme::distributed_slice(::crucial::__private::SHARED_TYPES)]
            #[linkme(crate = ::crucial::__private::linkme)]
            static __CRUCIAL_SHARED_TYPE: ::crucial::__private::SharedTypeEntry =
                ::crucial::__private::SharedTypeEntry::new::<#self_ty>(
                    &[#(#entries),*],
                    ::crucial::__private::module_path!(),
                );

            #[allow(clippy::all)]
            impl #proxy {
                #(#proxy_methods)*
            }
        };
    }
}
