//! Every rule the macros enforce, each written once and applied the same way
//! wherever the same situation occurs (a generic item, an `async` function, a
//! reference crossing the wire, ...). Rules record their errors in the
//! [`Ctxt`] and never stop: the user sees every mistake in one build. Each
//! check returns what can still be expanded, so that one mistake gives one error.

mod lambda_object;
mod rules;

pub use lambda_object::{lambda_impl, lambda_struct, LambdaVerdict};

use crate::ast::{Method, ObjectImpl, ObjectKind, ObjectStruct, ThreadFn};
use crate::ctxt::Ctxt;
use crate::names;
use quote::ToTokens;
use rules::{callable, concrete, impl_target, Subject};
use syn::{Item, ItemStruct};

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
        ("#[lambda_object]", Item::Enum(e)) => (
            &e.enum_token,
            "#[lambda_object] goes on a struct whose fields are storage fields and on its impl \
             block, not on an enum; keep the enum in a field: `value: Cell<MyEnum>`"
                .into(),
        ),
        ("#[lambda_object]", Item::Fn(f)) => (
            &f.sig.fn_token,
            "#[lambda_object] goes on a struct and its impl block, not on a function; to run \
             a function as a cloud thread use #[cloud_thread]"
                .into(),
        ),
        ("#[lambda_object]", other) => (
            other,
            "#[lambda_object] goes on a struct whose fields are storage fields (`Cell<T>`, \
             `Map<K, V>`, `MultiMap<K, V>`, `Set<T>`) and on its inherent impl block"
                .into(),
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
    let expandable = impl_target(cx, kind, &imp.item);
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
