//! The code generated for a `#[lambda_object]` impl block: for each function,
//! its identity, its in-workflow call (a child job of the running
//! transaction), its client calls (blocking and `_async`), the node's entry
//! point, and the type's row in the link-time registry.

use crate::ast::{Function, FunctionKind, LambdaImpl};
use crate::check::LambdaVerdict;
use crate::fingerprint::fnv1a;
use crate::names;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ImplItem, Type};

/// Generates one lambda object type's functions.
pub struct FunctionsGen<'a> {
    imp: &'a LambdaImpl,
    verdict: &'a LambdaVerdict,
}

/// `::crucial::__private::store`, where generated code finds the runtime.
fn rt() -> TokenStream {
    quote!(::crucial::__private::store)
}

impl<'a> FunctionsGen<'a> {
    /// A generator for `imp`, judged by `verdict`.
    pub fn new(imp: &'a LambdaImpl, verdict: &'a LambdaVerdict) -> Self {
        FunctionsGen { imp, verdict }
    }

    /// The impl block and everything generated for it.
    pub fn generate(&self) -> TokenStream {
        if !self.verdict.expandable {
            let item = &self.imp.item;
            return quote!(#item);
        }
        let item = self.emitted_item();
        let handles = self.handles();
        let ids = self.ids_and_entries();
        let in_workflow = self.in_workflow();
        let client = self.client();
        let wire_checks = self.wire_checks();
        let registry = self.registry_entry();
        quote! {
            #item
            #handles
            #ids
            #in_workflow
            #client
            #wire_checks
            #registry
        }
    }

    fn self_ty(&self) -> &Type {
        &self.imp.item.self_ty
    }

    /// The type's own name (the last segment of its path; `check` made sure
    /// it is one). The handles are declared beside the impl block, by it.
    fn type_ident(&self) -> Ident {
        match self.self_ty() {
            Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
            _ => None,
        }
        .unwrap_or_else(|| Ident::new("Unknown", Span::call_site()))
    }

    /// `ThreadRef`, `ThreadCalls<'w>`, `ThreadStatics<'w>`, `Thread::at`, and
    /// `impl LambdaFunctions`. Their functions come from the impl block.
    fn handles(&self) -> TokenStream {
        let ident = self.type_ident();
        let vis = quote!(pub);
        let (handle, calls, statics, map) = (
            names::handle(&ident),
            names::calls(&ident),
            names::statics(&ident),
            names::map_handle(&ident),
        );
        let p = quote!(::crucial::__private::store);
        let handle_doc = format!(
            "Client handle on one [`{ident}`] lambda object: each function call runs as one \
             workflow (a transaction) on the node that owns the object. Open one with \
             [`{ident}::at`] or a constructor."
        );
        let calls_doc = format!(
            "Handle on one [`{ident}`] object's functions inside a workflow \
             (`wf.at::<{ident}>(id)`): each call is a child job of the running transaction."
        );
        let statics_doc = format!(
            "Handle on [`{ident}`]'s static functions inside a workflow \
             (`wf.statics::<{ident}>()`)."
        );
        let at_doc = format!(
            "The client handle on the `{ident}` with `key` (a key or an [`ObjectId`]). Nothing \
             is sent until a function is called.\n\n[`ObjectId`]: ::crucial::ObjectId"
        );
        let map_doc = format!(
            "Client handle of a map call over [`{ident}`] objects: each function call runs the \
             function on every selected object as one workflow, on the nodes that hold them, \
             and returns the results in key order. Open one with [`{ident}::map`]."
        );
        let map_fn_doc = format!(
            "A map call over the `{ident}` objects `objects` selects ([`Objects::All`], a key \
             range, or a list of keys). Nothing is sent until a function is called.\n\n\
             [`Objects::All`]: ::crucial::store::Objects::All"
        );
        quote! {
            #[doc = #map_doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #map {
                #[doc(hidden)]
                pub core: #p::MapCore,
            }

            impl #map {
                /// The same map call, through `client` instead of the global one.
                #vis fn with_client(self, client: ::crucial::Client) -> Self {
                    #map { core: self.core.with_client(client) }
                }
            }

            impl #ident {
                #[doc = #map_fn_doc]
                #vis fn map(objects: ::crucial::store::Objects) -> #map {
                    #map { core: #p::MapCore::new::<#ident>(objects) }
                }
            }

            #[doc = #handle_doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #handle {
                #[doc(hidden)]
                pub core: #p::HandleCore,
            }

            impl #handle {
                /// The object's id.
                #vis fn id(&self) -> &::crucial::ObjectId {
                    self.core.id()
                }

                /// The same object, reached through `client` instead of the global one.
                #vis fn with_client(self, client: ::crucial::Client) -> Self {
                    #handle { core: self.core.with_client(client) }
                }
            }

            #[doc = #calls_doc]
            #vis struct #calls<'w> {
                #[doc(hidden)]
                pub wf: &'w #p::Workflow,
                #[doc(hidden)]
                pub id: ::crucial::ObjectId,
            }

            impl #calls<'_> {
                /// The object's id.
                #vis fn id(&self) -> &::crucial::ObjectId {
                    &self.id
                }
            }

            #[doc = #statics_doc]
            #vis struct #statics<'w> {
                #[doc(hidden)]
                pub wf: &'w #p::Workflow,
            }

            impl #p::LambdaFunctions for #ident {
                type Calls<'w> = #calls<'w>;
                type Statics<'w> = #statics<'w>;
                fn calls(wf: &#p::Workflow, id: ::crucial::ObjectId) -> #calls<'_> {
                    #calls { wf, id }
                }
                fn statics(wf: &#p::Workflow) -> #statics<'_> {
                    #statics { wf }
                }
            }

            impl #ident {
                #[doc = #at_doc]
                #vis fn at<K: ::crucial::store::ObjectKey>(key: K) -> #handle {
                    #handle {
                        core: #p::HandleCore::new(::crucial::store::ObjectKey::into_object_id(
                            key,
                            <#ident as #p::LambdaObject>::APPLICATION,
                            <#ident as #p::LambdaObject>::TYPE_NAME,
                        )),
                    }
                }
            }
        }
    }

    /// The functions whose code can be generated, with their time limits.
    fn valid(&self) -> impl Iterator<Item = (&'a Function, u64)> + '_ {
        self.imp
            .functions
            .iter()
            .zip(&self.verdict.functions)
            .filter_map(|(f, limit)| limit.map(|limit| (f, limit)))
    }

    /// The user's block, with constructors and static functions renamed
    /// (`__crucial_create`) so that the client functions generated on the
    /// type can have their names.
    fn emitted_item(&self) -> syn::ItemImpl {
        let mut item = self.imp.item.clone();
        let renamed: Vec<&Ident> = self
            .valid()
            .filter(|(f, _)| matches!(f.kind, FunctionKind::Constructor | FunctionKind::Static))
            .map(|(f, _)| f.ident())
            .collect();
        for impl_item in &mut item.items {
            if let ImplItem::Fn(function) = impl_item {
                // `at` and `map` are the generated `Type::at` and
                // `Type::map` (an error says so).
                let generated = function.sig.ident == "at" || function.sig.ident == "map";
                if renamed.contains(&&function.sig.ident) || generated {
                    function.sig.ident = names::renamed_function(&function.sig.ident);
                    function.attrs.push(syn::parse_quote!(#[doc(hidden)]));
                }
            }
        }
        item
    }

    /// `Type::function`, for messages.
    fn label(&self, f: &Function) -> String {
        let ty = match self.self_ty() {
            Type::Path(p) => p
                .path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        format!("{ty}::{}", f.ident())
    }

    /// What callers receive: `T` of a `Result<T, E>`, the declared type, or `()`.
    fn reply(f: &Function) -> TokenStream {
        let rt = rt();
        match &f.output {
            None => quote!(()),
            Some(ty) if f.fallible() => match ok_type(ty) {
                Some(ok) => quote!(#ok),
                None => quote!(<#ty as #rt::Fallible>::Ok),
            },
            Some(ty) => quote!(#ty),
        }
    }

    /// On the client handle, hidden: each function's identity and the entry
    /// point the node runs a client's call through.
    fn ids_and_entries(&self) -> TokenStream {
        let rt = rt();
        let self_ty = self.self_ty();
        let handle = names::handle(&self.type_ident());
        let items = self.valid().map(|(f, _)| {
            let ident = f.ident();
            let name = ident.to_string();
            let id_const = names::function_id(ident);
            let entry = names::function_entry(ident);
            let kind = Ident::new(f.kind.variant(), Span::call_site());
            let fingerprint = fnv1a(&f.signature());
            let names: Vec<&Ident> = f.params.iter().map(|p| &p.name).collect();
            let types: Vec<&Type> = f.params.iter().map(|p| &p.ty).collect();
            let target = match f.kind {
                FunctionKind::Static => {
                    quote!(<#self_ty as #rt::LambdaFunctions>::statics(wf))
                }
                _ => quote!(<#self_ty as #rt::LambdaFunctions>::calls(wf, wf.target())),
            };
            quote! {
                #[doc(hidden)]
                #[allow(non_upper_case_globals)]
                pub const #id_const: #rt::FunctionId = #rt::FunctionId {
                    name: #name,
                    fingerprint: #fingerprint,
                    kind: #rt::FunctionKind::#kind,
                };

                #[doc(hidden)]
                pub fn #entry<'w>(
                    wf: &'w #rt::Workflow,
                    args: &[::core::primitive::u8],
                ) -> ::crucial::__private::Result<#rt::FunctionFuture<'w>, ::crucial::__private::String> {
                    let (#(#names,)*): (#(#types,)*) = ::crucial::__private::Result::map_err(
                        ::crucial::__private::codec::decode(args),
                        |e| ::crucial::__private::ToString::to_string(&e),
                    )?;
                    ::crucial::__private::Result::Ok(#rt::Box::pin(async move {
                        let value = #target.#ident(#(#names),*).await?;
                        ::crucial::__private::Result::map_err(
                            ::crucial::__private::codec::encode(&value),
                            |e| #rt::TxError::Encode(::crucial::__private::ToString::to_string(&e)),
                        )
                    }))
                }
            }
        });
        quote! {
            #[allow(clippy::all)]
            impl #handle {
                #(#items)*
            }
        }
    }

    /// `ThreadCalls` (constructors, methods) and `ThreadStatics` (static
    /// functions): each call enters the function (checks its object) and runs
    /// it natively in the same transaction.
    fn in_workflow(&self) -> TokenStream {
        let rt = rt();
        let self_ty = self.self_ty();
        let calls = names::calls(&self.type_ident());
        let statics = names::statics(&self.type_ident());
        let (mut on_object, mut on_type) = (Vec::new(), Vec::new());
        for (f, own_limit) in self.valid() {
            let ident = f.ident();
            let vis = &f.vis;
            let docs = &f.docs;
            let name = ident.to_string();
            let label = self.label(f);
            // A child call runs under its own limit, else its type's.
            let limit_ms = if own_limit > 0 {
                own_limit
            } else {
                self.verdict.type_limit_ms
            };
            let kind = Ident::new(f.kind.variant(), Span::call_site());
            let reply = Self::reply(f);
            let names: Vec<&Ident> = f.params.iter().map(|p| &p.name).collect();
            let types: Vec<&Type> = f.params.iter().map(|p| &p.ty).collect();
            let callee = match f.kind {
                FunctionKind::Constructor | FunctionKind::Static => names::renamed_function(ident),
                _ => ident.clone(),
            };
            let wf_arg = f.workflow.as_ref().map(|_| quote!(&wf,));
            let await_ = f.is_async().then(|| quote!(.await));
            let outcome = if f.fallible() {
                quote!(wf.finish(#label, #rt::Fallible::into_outcome(ret)))
            } else {
                quote!(::crucial::__private::Result::Ok(ret))
            };
            let (object, open, receiver) = match f.kind {
                FunctionKind::Static => (
                    quote!(::crucial::__private::Option::None),
                    quote!(),
                    quote!(),
                ),
                FunctionKind::Read => (
                    quote!(::crucial::__private::Option::Some(
                        ::crucial::__private::Clone::clone(&self.id)
                    )),
                    quote!(let this = <#self_ty as #rt::LambdaObject>::open(wf.host(), wf.this_arc());),
                    quote!(&this,),
                ),
                FunctionKind::Write | FunctionKind::Constructor => (
                    quote!(::crucial::__private::Option::Some(
                        ::crucial::__private::Clone::clone(&self.id)
                    )),
                    quote!(let mut this = <#self_ty as #rt::LambdaObject>::open(wf.host(), wf.this_arc());),
                    quote!(&mut this,),
                ),
            };
            // An object's function is offered to the object's node first
            // (`None`: it runs here, natively).
            let ship = match f.kind {
                FunctionKind::Static => quote!(),
                _ => {
                    let handle = names::handle(&self.type_ident());
                    let id_const = names::function_id(ident);
                    quote! {
                        if let ::crucial::__private::Option::Some(shipped) = self.wf.ship::<#reply, _>(
                            &self.id,
                            &#handle::#id_const,
                            &(#(&#names,)*),
                        ) {
                            return shipped.await;
                        }
                    }
                }
            };
            let body = quote! {
                #(#docs)*
                #vis async fn #ident(&self, #(#names: #types),*)
                    -> ::crucial::__private::Result<#reply, #rt::TxError>
                {
                    #ship
                    let wf = self.wf.enter(
                        #object,
                        #rt::FunctionKind::#kind,
                        <#self_ty as #rt::LambdaObject>::TYPE_NAME,
                        #name,
                        #limit_ms,
                    )?;
                    #open
                    let ret = <#self_ty>::#callee(#receiver #wf_arg #(#names),*) #await_;
                    #outcome
                }
            };
            match f.kind {
                FunctionKind::Static => on_type.push(body),
                _ => on_object.push(body),
            }
        }
        quote! {
            #[allow(clippy::all)]
            impl #calls<'_> {
                #(#on_object)*
            }

            #[allow(clippy::all)]
            impl #statics<'_> {
                #(#on_type)*
            }
        }
    }

    /// The client calls: methods on `ThreadRef`, constructors and static
    /// functions on `Thread`, each blocking with an `_async` twin.
    fn client(&self) -> TokenStream {
        let rt = rt();
        let self_ty = self.self_ty();
        let handle = names::handle(&self.type_ident());
        let map = names::map_handle(&self.type_ident());
        let (mut on_handle, mut on_type, mut on_map) = (Vec::new(), Vec::new(), Vec::new());
        for (f, _) in self.valid() {
            let ident = f.ident();
            let twin = names::async_method(ident);
            let vis = &f.vis;
            let docs = &f.docs;
            let id_const = names::function_id(ident);
            let reply = Self::reply(f);
            let names: Vec<&Ident> = f.params.iter().map(|p| &p.name).collect();
            let types: Vec<&Type> = f.params.iter().map(|p| &p.ty).collect();
            let twin_doc = format!("Async twin of [`Self::{ident}`].");
            // Every function is callable through a handle (constructors make
            // the handle's object; static functions ignore it, and go through
            // the handle's client).
            on_handle.push(quote! {
                #(#docs)*
                #vis fn #ident(&self, #(#names: #types),*) -> ::crucial::__private::ApiResult<#reply> {
                    self.core.invoke::<#self_ty, _, #reply>(&#handle::#id_const, &(#(#names,)*))
                }

                #[doc = #twin_doc]
                #vis fn #twin(&self, #(#names: #types),*)
                    -> impl ::crucial::__private::Future<Output = ::crucial::__private::ApiResult<#reply>>
                        + ::crucial::__private::Send + 'static
                {
                    self.core.invoke_async::<#self_ty, _, #reply>(&#handle::#id_const, &(#(#names,)*))
                }
            });
            match f.kind {
                FunctionKind::Read | FunctionKind::Write => on_map.push(quote! {
                    #(#docs)*
                    ///
                    /// Run on every object the map selects, as one workflow: each object's
                    /// result, in key order.
                    #vis fn #ident(&self, #(#names: #types),*)
                        -> ::crucial::__private::ApiResult<::crucial::store::Mapped<#reply>>
                    {
                        self.core.invoke::<_, #reply>(&#handle::#id_const, &(#(#names,)*))
                    }

                    #[doc = #twin_doc]
                    #vis fn #twin(&self, #(#names: #types),*)
                        -> impl ::crucial::__private::Future<
                            Output = ::crucial::__private::ApiResult<::crucial::store::Mapped<#reply>>,
                        > + ::crucial::__private::Send + 'static
                    {
                        self.core.invoke_async::<_, #reply>(&#handle::#id_const, &(#(#names,)*))
                    }
                }),
                FunctionKind::Constructor => on_type.push(quote! {
                    #(#docs)*
                    ///
                    /// Creates the object named `key` (a key or an `ObjectId`) and returns its handle.
                    #vis fn #ident<K: ::crucial::store::ObjectKey>(key: K, #(#names: #types),*)
                        -> ::crucial::__private::ApiResult<#handle>
                    {
                        let handle = <#self_ty>::at(key);
                        handle.#ident(#(#names),*)?;
                        ::crucial::__private::Result::Ok(handle)
                    }

                    #[doc = #twin_doc]
                    #vis fn #twin<K: ::crucial::store::ObjectKey>(key: K, #(#names: #types),*)
                        -> impl ::crucial::__private::Future<Output = ::crucial::__private::ApiResult<#handle>>
                            + ::crucial::__private::Send + 'static
                    {
                        let handle = <#self_ty>::at(key);
                        let call = handle.#twin(#(#names),*);
                        async move {
                            call.await?;
                            ::crucial::__private::Result::Ok(handle)
                        }
                    }
                }),
                FunctionKind::Static => on_type.push(quote! {
                    #(#docs)*
                    #vis fn #ident(#(#names: #types),*) -> ::crucial::__private::ApiResult<#reply> {
                        #rt::HandleCore::statics::<#self_ty>()
                            .invoke::<#self_ty, _, #reply>(&#handle::#id_const, &(#(#names,)*))
                    }

                    #[doc = #twin_doc]
                    #vis fn #twin(#(#names: #types),*)
                        -> impl ::crucial::__private::Future<Output = ::crucial::__private::ApiResult<#reply>>
                            + ::crucial::__private::Send + 'static
                    {
                        #rt::HandleCore::statics::<#self_ty>()
                            .invoke_async::<#self_ty, _, #reply>(&#handle::#id_const, &(#(#names,)*))
                    }
                }),
            }
        }
        quote! {
            #[allow(clippy::all)]
            impl #handle {
                #(#on_handle)*
            }

            #[allow(clippy::all)]
            impl #self_ty {
                #(#on_type)*
            }

            #[allow(clippy::all)]
            impl #map {
                #(#on_map)*
            }
        }
    }

    /// Compile-time checks, spanned on each type, that arguments and results
    /// can cross the wire.
    fn wire_checks(&self) -> TokenStream {
        let checks = self.valid().flat_map(|(f, _)| {
            let reply = Self::reply(f);
            let reply_span = f.output.as_ref().map_or(f.ident().span(), |t| t.span());
            f.params
                .iter()
                .map(|p| {
                    let ty = &p.ty;
                    quote_spanned! {ty.span()=> ::crucial::__private::assert_wire::<#ty>(); }
                })
                .chain(std::iter::once(
                    quote_spanned! {reply_span=> ::crucial::__private::assert_wire::<#reply>(); },
                ))
                .collect::<Vec<_>>()
        });
        quote! {
            const _: fn() = || {
                #(#checks)*
            };
        }
    }

    /// The type's entry in the link-time registry, with its functions.
    fn registry_entry(&self) -> TokenStream {
        let rt = rt();
        let self_ty = self.self_ty();
        let handle = names::handle(&self.type_ident());
        let rows = self.valid().map(|(f, limit)| {
            let ident = f.ident();
            let id_const = names::function_id(ident);
            let entry = names::function_entry(ident);
            let protected = f.protected.is_some();
            let signature = f.signature();
            quote! {
                #rt::FunctionEntry {
                    id: #handle::#id_const,
                    protected: #protected,
                    time_limit_ms: #limit,
                    signature: #signature,
                    run: #handle::#entry,
                }
            }
        });
        let type_limit = self.verdict.type_limit_ms;
        quote! {
            const _: () = {
                #[::crucial::__private::linkme::distributed_slice(#rt::LAMBDA_TYPES)]
                #[linkme(crate = ::crucial::__private::linkme)]
                static __CRUCIAL_LAMBDA_TYPE: #rt::LambdaTypeEntry = #rt::LambdaTypeEntry::new::<#self_ty>(
                    &[#(#rows),*],
                    #type_limit,
                    ::crucial::__private::module_path!(),
                );
            };
        }
    }
}

/// `T` of `Result<T, E>` (or of an alias `Result<T>`), if written with
/// arguments.
fn ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(ok) => Some(ok),
        _ => None,
    }
}
