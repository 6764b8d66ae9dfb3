//! Every rule the macros enforce, each written once and applied the same way
//! wherever the same situation occurs (a generic item, an `async` function, a
//! reference crossing the wire, ...). Rules record their errors in the
//! [`Ctxt`] and never stop: the user sees every mistake in one build. Each
//! check returns what can still be expanded, so that one mistake gives one error.

use crate::ast::{Method, ObjectImpl, ObjectKind, ObjectStruct, Param, StorageField, ThreadFn};
use crate::ctxt::Ctxt;
use crate::names;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Generics, Item, ItemStruct, Signature, Type};

/// What a rule is about; every message names it the same way.
#[derive(Debug, Clone, Copy)]
enum Subject {
    ObjectStruct(ObjectKind),
    ObjectImpl(ObjectKind),
    Method(ObjectKind),
    ThreadFn,
    ThreadStruct,
}

impl Subject {
    /// `a #[shared] method`, `a #[cloud_thread] function`, ...
    fn noun(self) -> String {
        match self {
            Subject::ObjectStruct(kind) => format!("a {} struct", kind.attr()),
            Subject::ObjectImpl(kind) => format!("a {} impl block", kind.attr()),
            Subject::Method(kind) => format!("a {} method", kind.attr()),
            Subject::ThreadFn => "a #[cloud_thread] function".into(),
            Subject::ThreadStruct => "a #[cloud_thread] struct".into(),
        }
    }

    /// Why it must have one concrete type.
    fn why_concrete(self) -> &'static str {
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
            Subject::Method(_) => {
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
fn concrete(cx: &Ctxt, subject: Subject, generics: &Generics) -> bool {
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
fn callable(
    cx: &Ctxt,
    subject: Subject,
    sig: &Signature,
    params: &[Param],
    output: Option<&Type>,
) -> bool {
    let before = cx.count();
    if let Some(asyncness) = &sig.asyncness {
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
fn crosses_the_wire(cx: &Ctxt, subject: Subject, ty: &Type, position: &str) {
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

/// Rule: an attribute goes only on the items it is made for.
pub fn wrong_item(cx: &Ctxt, attr: &str, item: &Item) {
    let (tokens, message): (&dyn ToTokens, String) = match (attr, item) {
        ("#[shared]", Item::Enum(e)) => (
            &e.enum_token,
            "#[shared] goes on a struct and its impl block, not on an enum; wrap the enum in a \
             struct field: `#[shared] struct State { value: MyEnum }`"
                .into(),
        ),
        ("#[shared]", Item::Trait(t)) => (
            &t.trait_token,
            "#[shared] cannot go on a trait: shared objects are concrete types; put it on a \
             struct and on that struct's inherent impl block"
                .into(),
        ),
        ("#[shared]", Item::Fn(f)) => (
            &f.sig.fn_token,
            "#[shared] goes on a struct and its impl block, not on a function; to run a \
             function as a cloud thread use #[cloud_thread]"
                .into(),
        ),
        ("#[shared]", Item::Union(u)) => (
            &u.union_token,
            "#[shared] cannot go on a union; use a struct".into(),
        ),
        ("#[shared]", other) => (
            other,
            "#[shared] goes on a struct and on its inherent impl block".into(),
        ),
        (_, other) => (
            other,
            format!(
                "{attr} goes on a free function, or on a struct that implements \
                 `crucial::Runnable`"
            ),
        ),
    };
    cx.error_spanned_by(tokens, message);
}

/// An object type's struct: returns whether its code can be generated.
pub fn object_struct(cx: &Ctxt, object: &ObjectStruct) -> bool {
    concrete(
        cx,
        Subject::ObjectStruct(object.kind),
        &object.item.generics,
    )
}

/// A `#[lambda_object]` struct: concrete, named fields, each a storage field
/// (the number of its type arguments is the compiler's to check, on the
/// struct as written). Returns whether it can be expanded.
pub fn lambda_struct(cx: &Ctxt, object: &ObjectStruct, fields: &[StorageField]) -> bool {
    let item = &object.item;
    let mut ok = concrete(cx, Subject::ObjectStruct(object.kind), &item.generics);
    if !matches!(item.fields, syn::Fields::Named(_)) {
        cx.error_spanned_by(
            &item.ident,
            "a #[lambda_object] struct needs named fields, each a storage field: \
             `struct Thread { title: Cell<String>, comments: Map<u32, Comment> }`",
        );
        return false;
    }
    if fields.len() > usize::from(u16::MAX) {
        cx.error_spanned_by(
            &item.ident,
            "a #[lambda_object] struct has at most 65535 fields",
        );
        ok = false;
    }
    for field in fields.iter().filter(|f| f.kind.is_none()) {
        let ty = &field.ty;
        let written = ty.to_token_stream().to_string();
        cx.error_spanned_by(
            ty,
            format!(
                "`{written}` is not a storage field: a #[lambda_object] field is a `Cell<T>`, \
                 `Map<K, V>`, `MultiMap<K, V>` or `Set<T>` from `crucial::store` (for one \
                 value of this type: `Cell<{written}>`)"
            ),
        );
        ok = false;
    }
    ok
}

/// What is generated for one method of an object type's impl block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shipping {
    /// Shipped: dispatch row, proxy method and twins.
    Ship,
    /// Cannot be shipped: the proxy gets a stub of the same name, so callers
    /// add no errors to the one that explains it.
    Stub,
    /// Its name is taken by a generated proxy twin: nothing generated for it.
    Skip,
    /// Its name is taken by a generated constructor of the type itself: left
    /// out of the emitted impl block too, or it would be defined twice.
    Omit,
}

/// What can be generated for an object type's impl block.
pub struct ImplVerdict {
    /// The block itself is usable (an inherent impl of a named, concrete type).
    pub expandable: bool,
    /// Per method (in model order).
    pub shipping: Vec<Shipping>,
}

/// An object type's impl block and its methods.
pub fn object_impl(cx: &Ctxt, imp: &ObjectImpl) -> ImplVerdict {
    let kind = imp.kind;
    let attr = kind.attr();
    let mut expandable = true;
    if let Some((_, path, _)) = &imp.item.trait_ {
        cx.error_spanned_by(
            path,
            format!(
                "{attr} goes on the type's inherent impl block (`impl MyType {{ ... }}`), not on \
                 a trait impl"
            ),
        );
        expandable = false;
    }
    expandable &= concrete(cx, Subject::ObjectImpl(kind), &imp.item.generics);
    match &*imp.item.self_ty {
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
    let shipping = imp
        .methods
        .iter()
        .map(|m| {
            let valid = method(cx, kind, m);
            match generated_names_are_free(cx, kind, imp, m) {
                Some(clash) => clash,
                None if valid => Shipping::Ship,
                None => Shipping::Stub,
            }
        })
        .collect();
    ImplVerdict {
        expandable,
        shipping,
    }
}

/// A method with a receiver: shipped to the node.
fn method(cx: &Ctxt, kind: ObjectKind, m: &Method) -> bool {
    let subject = Subject::Method(kind);
    let mut ok = true;
    if m.receiver.reference.is_none() {
        cx.error_spanned_by(
            &m.receiver,
            format!(
                "{} cannot take `self` by value: the object lives on the server and is never \
                 moved out; take `&self` (read-only) or `&mut self` (mutating)",
                subject.noun()
            ),
        );
        ok = false;
    } else if m.receiver.colon_token.is_some() {
        cx.error_spanned_by(
            &m.receiver.ty,
            format!(
                "{} takes `&self` or `&mut self`; typed receivers like `self: Box<Self>` are \
                 not supported",
                subject.noun()
            ),
        );
        ok = false;
    }
    callable(cx, subject, &m.sig, &m.params, m.output.as_ref()) && ok
}

/// Rule: a method's name must not collide with what the macro generates
/// (the type's constructors, the proxy's `_async` and `_timeout` twins).
/// Returns what to do with a method whose name is taken.
fn generated_names_are_free(
    cx: &Ctxt,
    kind: ObjectKind,
    imp: &ObjectImpl,
    m: &Method,
) -> Option<Shipping> {
    let attr = kind.attr();
    let name = m.ident().to_string();
    if names::TYPE_CONSTRUCTORS.contains(&name.as_str()) {
        cx.error_spanned_by(
            m.ident(),
            format!(
                "`{name}` clashes with the constructor that {attr} generates \
                 (`Type::{name}(key)` opens a proxy); rename the method"
            ),
        );
        return Some(Shipping::Omit);
    }
    for (suffix, twin) in [("_async", "async"), ("_timeout", "timeout")] {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        let clashes = imp
            .methods
            .iter()
            .any(|o| o.ident() == base && (twin == "async" || o.poll_of().is_some()));
        if clashes {
            cx.error_spanned_by(
                m.ident(),
                format!(
                    "`{name}` clashes with the {twin} twin that {attr} generates for `{base}`; \
                     rename one of the two methods"
                ),
            );
            return Some(Shipping::Skip);
        }
    }
    None
}

/// A `#[cloud_thread]` function: returns whether its code can be generated.
pub fn thread_fn(cx: &Ctxt, thread: &ThreadFn) -> bool {
    if let Some(receiver) = thread.item.sig.receiver() {
        cx.error_spanned_by(
            receiver,
            "#[cloud_thread] goes on a free function, not on a method: a cloud thread starts \
             from its arguments alone; move the state it needs into arguments or shared objects",
        );
        return false;
    }
    callable(
        cx,
        Subject::ThreadFn,
        &thread.item.sig,
        &thread.params,
        thread.output.as_ref(),
    )
}

/// A `#[cloud_thread]` struct: returns whether its code can be generated.
pub fn thread_struct(cx: &Ctxt, item: &ItemStruct) -> bool {
    concrete(cx, Subject::ThreadStruct, &item.generics)
}
