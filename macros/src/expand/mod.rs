//! Code generation: parse -> check -> generate, for each attribute.
//!
//! Whatever is wrong, the user's item is always emitted, with every error
//! found, and as much generated code as is still valid (a method that cannot
//! be shipped still gets a proxy stub), so that one mistake gives one error
//! instead of a cascade of "cannot find" errors (as thiserror's fallback does).

mod functions;
mod lambda_object;
mod methods;
mod object;
mod thread;

use crate::ast::{self, ObjectKind, ObjectTarget, ThreadTarget};
use crate::ctxt::Ctxt;
use crate::{attr, check};
use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

/// `#[shared]` on a struct or on its impl block.
pub fn shared(args: TokenStream, input: TokenStream) -> TokenStream {
    object_attribute(ObjectKind::Shared, args, input)
}

/// `#[lambda_object]` on a struct (its impl block's functions come next).
pub fn lambda_object(args: TokenStream, input: TokenStream) -> TokenStream {
    object_attribute(ObjectKind::Lambda, args, input)
}

fn object_attribute(kind: ObjectKind, args: TokenStream, input: TokenStream) -> TokenStream {
    let item: syn::Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => return with_errors(input, error.into_compile_error()),
    };
    let cx = Ctxt::new();
    let generated = match ast::parse_object(kind, item) {
        ObjectTarget::Struct(object) if kind == ObjectKind::Lambda => {
            let args = attr::object_args(&cx, args);
            if args.persistent {
                cx.error_at(
                    proc_macro2::Span::call_site(),
                    "lambda objects are always persistent (their entries live in the node's \
                     storage): remove `persistent`",
                );
            }
            if let Some(replicas) = &args.replicas {
                cx.error_spanned_by(
                    replicas,
                    "lambda objects are not replicated per type: they are copied with their \
                     application, by the cluster's `--replicas`; remove `replicas`",
                );
            }
            let fields = ast::storage_fields(&object.item);
            let expandable = check::lambda_struct(&cx, &object, &fields);
            lambda_object::LambdaGen::new(&object, &fields, &args, expandable).generate()
        }
        ObjectTarget::Struct(object) => {
            let args = attr::object_args(&cx, args);
            args.check_replicas(&cx);
            if let Some((word, _)) = &args.placement {
                cx.error_spanned_by(
                    word,
                    "`placement` is for #[lambda_object] types: a shared object is always \
                     placed on its own; remove `placement`",
                );
            }
            let expandable = check::object_struct(&cx, &object);
            object::ObjectGen::new(&object, &args, expandable).generate()
        }
        ObjectTarget::Impl(imp) if kind == ObjectKind::Lambda => {
            let type_limit = attr::lambda_impl_args(&cx, args);
            let imp = ast::LambdaImpl::parse(imp.item);
            let verdict = check::lambda_impl(&cx, &imp, type_limit.as_ref());
            functions::FunctionsGen::new(&imp, &verdict).generate()
        }
        ObjectTarget::Impl(imp) => {
            attr::expect_empty(
                &cx,
                args,
                &format!(
                    "{} on an impl block (put `persistent` or `name = ...` on the struct)",
                    kind.attr()
                ),
            );
            let verdict = check::object_impl(&cx, &imp);
            methods::MethodsGen::new(&imp, &verdict).generate()
        }
        ObjectTarget::Other(item) => {
            check::wrong_item(&cx, kind.attr(), &item);
            item.into_token_stream()
        }
    };
    with_errors(generated, cx.into_compile_errors())
}

/// `#[cloud_thread]` on a function or a `Runnable` struct.
pub fn cloud_thread(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: syn::Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => return with_errors(input, error.into_compile_error()),
    };
    let cx = Ctxt::new();
    attr::expect_empty(&cx, args, "#[cloud_thread]");
    let generated = match ast::parse_thread(item) {
        ThreadTarget::Fn(thread) => {
            let valid = check::thread_fn(&cx, &thread);
            thread::ThreadFnGen::new(&thread, valid).generate()
        }
        ThreadTarget::Struct(item) => {
            let valid = check::thread_struct(&cx, &item);
            thread::ThreadStructGen::new(&item, valid).generate()
        }
        ThreadTarget::Other(item) => {
            check::wrong_item(&cx, "#[cloud_thread]", &item);
            item.into_token_stream()
        }
    };
    with_errors(generated, cx.into_compile_errors())
}

fn with_errors(generated: TokenStream, errors: TokenStream) -> TokenStream {
    quote! {
        #generated
        #errors
    }
}

/// Whether `impl Trait` appears in a type (a stub cannot return one).
pub(crate) fn contains_impl_trait(ty: &syn::Type) -> bool {
    struct Find(bool);
    impl<'ast> syn::visit::Visit<'ast> for Find {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut find = Find(false);
    syn::visit::Visit::visit_type(&mut find, ty);
    find.0
}
