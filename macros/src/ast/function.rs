//! A `#[lambda_object]` impl block and its functions, as written.
//!
//! Every `fn` of the block is a function of the type: `#[constructor]` ones
//! make their object, `&self` ones read it, `&mut self` ones may write it,
//! and those without a receiver are static. Each may take the running
//! workflow as its first parameter (`wf: &Workflow`), may be `async`, and may
//! be marked `#[protected]` and `#[time_limit = "500ms"]`. Those attributes
//! are the macro's own: parsing records and removes them.

use super::{output, params, Param};
use crate::fingerprint::canonical;
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, ImplItem, ItemImpl, Receiver, Signature, Type, Visibility};

/// A function's kind, as its signature and attributes declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// `#[constructor]`.
    Constructor,
    /// `&self`.
    Read,
    /// `&mut self`.
    Write,
    /// No receiver.
    Static,
}

impl FunctionKind {
    /// The runtime's `FunctionKind` variant.
    pub fn variant(self) -> &'static str {
        match self {
            FunctionKind::Constructor => "Constructor",
            FunctionKind::Read => "Read",
            FunctionKind::Write => "Write",
            FunctionKind::Static => "Static",
        }
    }
}

/// A `#[lambda_object]` impl block.
pub struct LambdaImpl {
    /// The user's block, without the macro's own attributes.
    pub item: ItemImpl,
    /// Its functions, in order.
    pub functions: Vec<Function>,
}

/// One function of a lambda object type.
pub struct Function {
    /// The signature as written.
    pub sig: Signature,
    /// Its visibility (the generated handles' functions get the same).
    pub vis: Visibility,
    /// Its doc comments.
    pub docs: Vec<Attribute>,
    /// The receiver, if any.
    pub receiver: Option<Receiver>,
    /// What it is.
    pub kind: FunctionKind,
    /// Where `#[constructor]` was written.
    pub constructor: Option<Span>,
    /// Where `#[protected]` was written.
    pub protected: Option<Span>,
    /// `#[time_limit = "..."]`, as written.
    pub time_limit: Option<syn::LitStr>,
    /// Attributes of the macro's that are written wrong (`#[protected(x)]`).
    pub malformed: Vec<syn::Error>,
    /// The `&Workflow` parameter, if declared.
    pub workflow: Option<Param>,
    /// The other typed parameters (the client's arguments).
    pub params: Vec<Param>,
    /// The declared return type.
    pub output: Option<Type>,
}

impl LambdaImpl {
    /// The model of an impl block (never fails: `check` judges it).
    pub fn parse(mut item: ItemImpl) -> LambdaImpl {
        let functions = item
            .items
            .iter_mut()
            .filter_map(|impl_item| match impl_item {
                ImplItem::Fn(function) => Some(Function::parse(function)),
                _ => None,
            })
            .collect();
        LambdaImpl { item, functions }
    }
}

impl Function {
    /// Parses `function`, taking the macro's attributes off it.
    fn parse(function: &mut syn::ImplItemFn) -> Function {
        let (mut constructor, mut protected, mut time_limit) = (None, None, None);
        let mut malformed = Vec::new();
        function.attrs.retain(|attr| {
            let path = attr.path();
            if path.is_ident("constructor") || path.is_ident("protected") {
                if let Err(e) = attr.meta.require_path_only() {
                    malformed.push(e);
                }
                if path.is_ident("constructor") {
                    constructor = Some(attr.span());
                } else {
                    protected = Some(attr.span());
                }
                false
            } else if path.is_ident("time_limit") {
                match &attr.meta {
                    syn::Meta::NameValue(syn::MetaNameValue {
                        value:
                            syn::Expr::Lit(syn::ExprLit {
                                lit: syn::Lit::Str(lit),
                                ..
                            }),
                        ..
                    }) => time_limit = Some(lit.clone()),
                    other => malformed.push(syn::Error::new(
                        other.span(),
                        "expected `#[time_limit = \"500ms\"]` (a number and `ms` or `s`)",
                    )),
                }
                false
            } else {
                true
            }
        });
        let sig = function.sig.clone();
        let receiver = sig.receiver().cloned();
        let kind = match (&receiver, constructor) {
            (_, Some(_)) => FunctionKind::Constructor,
            (None, None) => FunctionKind::Static,
            (Some(r), None) if r.mutability.is_some() => FunctionKind::Write,
            (Some(_), None) => FunctionKind::Read,
        };
        let mut all = params(sig.inputs.iter());
        let workflow = match all.first() {
            Some(first) if is_workflow(&first.ty) => Some(all.remove(0)),
            _ => None,
        };
        Function {
            output: output(&sig.output),
            docs: function
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("doc"))
                .cloned()
                .collect(),
            vis: function.vis.clone(),
            receiver,
            kind,
            constructor,
            protected,
            time_limit,
            malformed,
            workflow,
            params: all,
            sig,
        }
    }

    /// The function's name.
    pub fn ident(&self) -> &syn::Ident {
        &self.sig.ident
    }

    /// Declared `async`.
    pub fn is_async(&self) -> bool {
        self.sig.asyncness.is_some()
    }

    /// Returns a `Result` (by the last segment of its path, so aliases such
    /// as `crucial::store::Result<T>` count): its `Err` fails the workflow.
    pub fn fallible(&self) -> bool {
        matches!(&self.output, Some(Type::Path(p))
            if p.qself.is_none()
                && p.path.segments.last().is_some_and(|s| s.ident == "Result"))
    }

    /// The normalized signature whose hash identifies the function on the
    /// wire: `fn add_comment(&mut self, text: String) -> Result<u32, TxError>`
    /// (the workflow parameter is the node's, not the client's).
    pub fn signature(&self) -> String {
        let receiver = match self.kind {
            FunctionKind::Static => "",
            FunctionKind::Read => "&self",
            FunctionKind::Write | FunctionKind::Constructor => "&mut self",
        };
        let params = self
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, canonical(&p.ty)))
            .collect::<Vec<_>>();
        let all = std::iter::once(receiver.to_string())
            .filter(|r| !r.is_empty())
            .chain(params)
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "fn {}({all}){}",
            self.sig.ident,
            self.output
                .as_ref()
                .map(|t| format!(" -> {}", canonical(t)))
                .unwrap_or_default(),
        )
    }
}

/// `&Workflow`, `&crucial::store::Workflow`, `&mut Workflow` (which `check`
/// refuses): a reference to a path ending in `Workflow`.
fn is_workflow(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    matches!(&*r.elem, Type::Path(p)
        if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Workflow"))
}
