//! The rules several items share: what makes a type concrete, a signature
//! callable, a value able to cross the wire. Each records its errors in the
//! [`Ctxt`] under the subject's name.

use crate::ast::{ObjectKind, Param};
use crate::ctxt::Ctxt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Generics, Signature, Type};

/// What a rule is about; every message names it the same way.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    ObjectStruct(ObjectKind),
    ObjectImpl(ObjectKind),
    Method(ObjectKind),
    Function,
    ThreadFn,
    ThreadStruct,
}

impl Subject {
    /// `a #[shared] method`, `a #[cloud_thread] function`, ...
    pub fn noun(self) -> String {
        match self {
            Subject::ObjectStruct(kind) => format!("a {} struct", kind.attr()),
            Subject::ObjectImpl(kind) => format!("a {} impl block", kind.attr()),
            Subject::Method(kind) => format!("a {} method", kind.attr()),
            Subject::Function => "a #[lambda_object] function".into(),
            Subject::ThreadFn => "a #[cloud_thread] function".into(),
            Subject::ThreadStruct => "a #[cloud_thread] struct".into(),
        }
    }

    /// Why it must have one concrete type.
    pub fn why_concrete(self) -> &'static str {
        match self {
            Subject::ObjectStruct(ObjectKind::Lambda) => {
                "its entries are stored and its functions dispatched by one concrete type; use \
                 concrete types in its storage fields (`Map<u64, Comment>`)"
            }
            Subject::ObjectStruct(_) => {
                "the server must know its concrete type; use concrete field types (for typed \
                 collections see `crucial::List<T>` and `crucial::Map<K, V>`, which wrap a \
                 concrete shared state)"
            }
            Subject::ObjectImpl(_) => {
                "the server must know its concrete type; shared objects have one concrete type"
            }
            Subject::Method(_) | Subject::Function => {
                "the server dispatches on one concrete signature; use concrete argument types"
            }
            Subject::ThreadFn => "it is registered and invoked by name with one concrete signature",
            Subject::ThreadStruct => "it is registered and invoked by name with one concrete type",
        }
    }

    /// Why it cannot be `async`.
    fn why_not_async(self) -> &'static str {
        match self {
            Subject::ThreadFn => {
                "cloud threads are threads; make it a plain `fn` and use blocking calls \
                 (proxies have blocking methods)"
            }
            _ => {
                "it runs under the object's lock on the server and must not suspend; make it \
                 a plain `fn` (the proxy still gets an `_async` twin for callers)"
            }
        }
    }
}

/// Rule: no generic parameters and no `where` clause.
pub fn concrete(cx: &Ctxt, subject: Subject, generics: &Generics) -> bool {
    if generics.params.is_empty() && generics.where_clause.is_none() {
        return true;
    }
    cx.error_at(
        generics.span(),
        format!(
            "{} cannot be generic: {}",
            subject.noun(),
            subject.why_concrete()
        ),
    );
    false
}

/// Rules on a function's signature shared by shipped methods and cloud threads:
/// not `async`, not generic, not `unsafe`, not variadic, and every argument and
/// the return type can cross the wire.
pub fn callable(
    cx: &Ctxt,
    subject: Subject,
    sig: &Signature,
    params: &[Param],
    output: Option<&Type>,
) -> bool {
    let before = cx.count();
    // Lambda objects' functions may be `async`: they await child calls.
    if let (Some(asyncness), false) = (&sig.asyncness, matches!(subject, Subject::Function)) {
        cx.error_at(
            asyncness.span(),
            format!(
                "{} cannot be `async`: {}",
                subject.noun(),
                subject.why_not_async()
            ),
        );
    }
    concrete(cx, subject, &sig.generics);
    if let Some(unsafety) = &sig.unsafety {
        cx.error_at(
            unsafety.span(),
            format!(
                "{} cannot be `unsafe`: generated safe code calls it; put the unsafe part in an \
                 `unsafe` block inside it",
                subject.noun()
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, format!("{} cannot be variadic", subject.noun()));
    }
    for param in params {
        crosses_the_wire(cx, subject, &param.ty, "argument");
    }
    if let Some(output) = output {
        crosses_the_wire(cx, subject, output, "return type");
    }
    cx.count() == before
}

/// Rule: a value that crosses the wire is owned and named: no reference, no
/// `impl Trait`, no `Self`, anywhere in its type.
pub fn crosses_the_wire(cx: &Ctxt, subject: Subject, ty: &Type, position: &str) {
    struct Find<'a> {
        found: Option<(proc_macro2::Span, &'static str)>,
        _ty: std::marker::PhantomData<&'a ()>,
    }
    impl<'ast> Visit<'ast> for Find<'_> {
        fn visit_type(&mut self, ty: &'ast Type) {
            if self.found.is_some() {
                return;
            }
            match ty {
                Type::Reference(r) => {
                    self.found = Some((
                        r.and_token.span(),
                        "cannot be a reference: values cross the network by copy; use an \
                         owned type (`String` for `&str`, `Vec<T>` for `&[T]`)",
                    ))
                }
                Type::ImplTrait(t) => {
                    self.found = Some((
                        t.impl_token.span(),
                        "cannot be `impl Trait`: the other side needs one concrete type; name it",
                    ))
                }
                Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self") => {
                    self.found = Some((
                        p.span(),
                        "cannot name `Self`: the proxy and the node's dispatch table are other \
                         types; write the type's own name",
                    ))
                }
                _ => syn::visit::visit_type(self, ty),
            }
        }
    }
    let mut find = Find {
        found: None,
        _ty: std::marker::PhantomData,
    };
    find.visit_type(ty);
    if let Some((span, why)) = find.found {
        cx.error_at(span, format!("{}'s {position} {why}", subject.noun()));
    }
}

/// Rules on an object type's impl block itself: inherent, concrete, naming
/// the struct by path. Returns whether it can be expanded.
pub fn impl_target(cx: &Ctxt, kind: ObjectKind, item: &syn::ItemImpl) -> bool {
    let attr = kind.attr();
    let mut expandable = true;
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            format!(
                "{attr} goes on the type's inherent impl block (`impl MyType {{ ... }}`), not on \
                 a trait impl"
            ),
        );
        expandable = false;
    }
    expandable &= concrete(cx, Subject::ObjectImpl(kind), &item.generics);
    match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => {
            if let Some(last) = p.path.segments.last() {
                if !last.arguments.is_empty() {
                    cx.error_at(
                        last.arguments.span(),
                        format!(
                            "{} cannot be generic: {}",
                            Subject::ObjectImpl(kind).noun(),
                            Subject::ObjectImpl(kind).why_concrete()
                        ),
                    );
                    expandable = false;
                }
            }
        }
        other => {
            cx.error_spanned_by(
                other,
                format!("{attr} impl blocks must name the struct by path, e.g. `impl Counter {{ ... }}`"),
            );
            expandable = false;
        }
    }
    expandable
}
