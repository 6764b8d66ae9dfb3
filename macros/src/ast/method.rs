//! An object type's impl block and the methods it ships to the node.
//!
//! Every method with a `self` receiver is shipped: the proxy gets a blocking
//! method of the same name and an `_async` twin, and the node a dispatch entry
//! keyed by name and signature fingerprint. Associated functions without a
//! receiver (constructors, helpers) stay local and are not part of the model.

use super::{output, params, ObjectKind, Param};
use crate::fingerprint::canonical;
use syn::{Attribute, ImplItem, ItemImpl, Receiver, Signature, Type, Visibility};

/// An impl block under an object attribute.
pub struct ObjectImpl {
    /// The object kind of the attribute.
    pub kind: ObjectKind,
    /// The user's impl block, emitted unchanged.
    pub item: ItemImpl,
    /// Its methods with a `self` receiver, in order.
    pub methods: Vec<Method>,
}

/// One method with a `self` receiver.
pub struct Method {
    /// The signature as written.
    pub sig: Signature,
    /// Its visibility (the proxy method gets the same).
    pub vis: Visibility,
    /// Its doc comments (the proxy method gets them too).
    pub docs: Vec<Attribute>,
    /// The receiver as written (`&self`, `&mut self`, `self`, `self: Box<Self>`).
    pub receiver: Receiver,
    /// The typed parameters after the receiver.
    pub params: Vec<Param>,
    /// The declared return type.
    pub output: Option<Type>,
}

impl ObjectImpl {
    /// The model of an impl block (never fails: `check` judges it).
    pub fn parse(kind: ObjectKind, item: ItemImpl) -> ObjectImpl {
        let methods = item
            .items
            .iter()
            .filter_map(|impl_item| match impl_item {
                ImplItem::Fn(method) => Method::parse(method),
                _ => None,
            })
            .collect();
        ObjectImpl {
            kind,
            item,
            methods,
        }
    }
}

impl Method {
    fn parse(method: &syn::ImplItemFn) -> Option<Method> {
        let receiver = method.sig.receiver()?.clone();
        Some(Method {
            params: params(method.sig.inputs.iter()),
            output: output(&method.sig.output),
            docs: method
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("doc"))
                .cloned()
                .collect(),
            vis: method.vis.clone(),
            sig: method.sig.clone(),
            receiver,
        })
    }

    /// The method's name.
    pub fn ident(&self) -> &syn::Ident {
        &self.sig.ident
    }

    /// `&mut self` (may change the object) rather than `&self`.
    pub fn mutable(&self) -> bool {
        self.receiver.mutability.is_some()
    }

    /// `T` when the method returns `Poll<T>`: a blocking method, whose call the
    /// node parks while it is pending.
    pub fn poll_of(&self) -> Option<&Type> {
        let Type::Path(path) = self.output.as_ref()? else {
            return None;
        };
        let last = path.path.segments.last()?;
        if last.ident != "Poll" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        match (args.args.len(), args.args.first()) {
            (1, Some(syn::GenericArgument::Type(inner))) => Some(inner),
            _ => None,
        }
    }

    /// What a caller receives: `T` of `Poll<T>`, the return type, or `None` for `()`.
    pub fn reply_type(&self) -> Option<&Type> {
        self.poll_of().or(self.output.as_ref())
    }

    /// The normalized signature whose hash identifies the method on the wire:
    /// `fn add(&mut self, d: i64) -> i64`.
    pub fn signature(&self) -> String {
        format!(
            "fn {}({}{}){}",
            self.sig.ident,
            if self.mutable() { "&mut self" } else { "&self" },
            self.params
                .iter()
                .map(|p| format!(", {}: {}", p.name, canonical(&p.ty)))
                .collect::<String>(),
            self.output
                .as_ref()
                .map(|t| format!(" -> {}", canonical(t)))
                .unwrap_or_default(),
        )
    }
}
