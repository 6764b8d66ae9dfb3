//! The rules of `#[lambda_object]`: a struct of storage fields, and an impl
//! block of functions.

use super::rules::{callable, concrete, impl_target, Subject};
use crate::ast::{Function, FunctionKind, LambdaImpl, ObjectKind, ObjectStruct, StorageField};
use crate::ctxt::Ctxt;
use quote::ToTokens;
use syn::Type;

/// A `#[lambda_object]` struct: concrete, named fields, each a storage field
/// (the number of its type arguments is the compiler's to check, on the
/// struct as written). Returns whether it can be expanded: a field that is
/// not a storage field is reported here and bound to nothing by the
/// expansion, so the impl block's functions still find the struct's
/// `LambdaObject` impl and the one mistake gives one error.
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
    }
    ok
}

/// What can be generated for a `#[lambda_object]` impl block.
pub struct LambdaVerdict {
    /// The block itself is usable.
    pub expandable: bool,
    /// The type's time limit in milliseconds (0: the node's).
    pub type_limit_ms: u64,
    /// Per function (in model order): `Some(limit in ms, 0: the type's)` if
    /// its handles and registry row can be generated.
    pub functions: Vec<Option<u64>>,
}

/// Names the macro generates on the type (`Thread::at`, `Thread::map`) and
/// on its handles (`ThreadRef::id`, `ThreadRef::with_client`,
/// `ThreadCalls::id`, `ThreadMap::with_client`).
const RESERVED: [&str; 4] = ["at", "map", "id", "with_client"];

/// A `#[lambda_object]` impl block and its functions.
pub fn lambda_impl(cx: &Ctxt, imp: &LambdaImpl, type_limit: Option<&syn::LitStr>) -> LambdaVerdict {
    let expandable = impl_target(cx, ObjectKind::Lambda, &imp.item);
    let type_limit_ms = type_limit.and_then(|lit| time_limit(cx, lit)).unwrap_or(0);
    let functions = imp
        .functions
        .iter()
        .map(|f| {
            let before = cx.count();
            let limit = function(cx, imp, f);
            (cx.count() == before).then_some(limit)
        })
        .collect();
    LambdaVerdict {
        expandable,
        type_limit_ms,
        functions,
    }
}

/// One function; returns its own time limit (0: none).
fn function(cx: &Ctxt, imp: &LambdaImpl, f: &Function) -> u64 {
    let subject = Subject::Function;
    for error in &f.malformed {
        cx.syn_error(error.clone());
    }
    if let Some(receiver) = &f.receiver {
        if receiver.reference.is_none() || receiver.colon_token.is_some() {
            cx.error_spanned_by(
                receiver,
                "a #[lambda_object] function takes `&self` (reads its object), `&mut self` (may \
                 write it) or no receiver (static): its object is its stored entries, never a \
                 value to move",
            );
        }
    }
    if let (Some(span), FunctionKind::Constructor) = (f.constructor, f.kind) {
        let writes = f
            .receiver
            .as_ref()
            .is_some_and(|r| r.reference.is_some() && r.mutability.is_some());
        if !writes {
            cx.error_at(
                span,
                "a #[constructor] takes `&mut self`: it fills in the fields of the object it \
                 creates (`fn create(&mut self, title: String)`)",
            );
        }
        if !constructor_returns_unit(f.output.as_ref()) {
            cx.error_spanned_by(
                f.output
                    .as_ref()
                    .expect("only a declared type can be other than `()`"),
                "a #[constructor] returns nothing or `Result<(), E>`: its caller gets a handle on \
                 the new object",
            );
        }
    }
    if let Some(wf) = &f.workflow {
        if let Type::Reference(r) = &wf.ty {
            if let Some(mutability) = &r.mutability {
                cx.error_spanned_by(
                    mutability,
                    "take the workflow as `&Workflow`: it is shared by every call of the workflow",
                );
            }
        }
    }
    callable(cx, subject, &f.sig, &f.params, f.output.as_ref());
    let name = f.ident().to_string();
    if RESERVED.contains(&name.as_str()) {
        cx.error_spanned_by(
            f.ident(),
            format!(
                "`{name}` clashes with what #[lambda_object] generates (`Type::at(key)`, \
                 `Type::map(objects)`, and `id`/`with_client` on the type's handles); rename \
                 the function"
            ),
        );
    }
    if let Some(base) = name.strip_suffix("_async") {
        if imp.functions.iter().any(|o| o.ident() == base) {
            cx.error_spanned_by(
                f.ident(),
                format!(
                    "`{name}` clashes with the async twin that #[lambda_object] generates for \
                     `{base}`; rename one of the two functions"
                ),
            );
        }
    }
    f.time_limit
        .as_ref()
        .and_then(|lit| time_limit(cx, lit))
        .unwrap_or(0)
}

/// Whether a constructor's declared return type is `()` or `Result<(), E>`.
fn constructor_returns_unit(output: Option<&Type>) -> bool {
    let unit = |ty: &Type| matches!(ty, Type::Tuple(t) if t.elems.is_empty());
    match output {
        None => true,
        Some(ty) if unit(ty) => true,
        Some(Type::Path(p)) => p.path.segments.last().is_some_and(|last| {
            last.ident == "Result"
                && matches!(&last.arguments, syn::PathArguments::AngleBracketed(a)
                    if matches!(a.args.first(), Some(syn::GenericArgument::Type(t)) if unit(t)))
        }),
        Some(_) => false,
    }
}

/// A time limit as written (`"500ms"`, `"2s"`), in milliseconds.
pub fn time_limit(cx: &Ctxt, lit: &syn::LitStr) -> Option<u64> {
    let text = lit.value();
    let parsed = if let Some(ms) = text.strip_suffix("ms") {
        ms.trim().parse::<u64>().ok()
    } else if let Some(s) = text.strip_suffix('s') {
        s.trim()
            .parse::<u64>()
            .ok()
            .and_then(|s| s.checked_mul(1000))
    } else {
        None
    };
    match parsed {
        Some(ms) if ms > 0 => Some(ms),
        _ => {
            cx.error_spanned_by(
                lit,
                format!(
                    "`{text}` is not a time limit: write a positive whole number of milliseconds \
                     or seconds, like \"500ms\" or \"2s\""
                ),
            );
            None
        }
    }
}
