//! Attribute arguments: `#[shared(persistent, replicas = 3, name = "...")]` on an object's
//! struct; nothing anywhere else. Problems are recorded and parsing goes on.

use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{LitStr, Token};

/// Arguments of an object type's attribute on its struct.
#[derive(Default)]
pub struct ObjectArgs {
    /// `persistent`: the object outlives the application and is replicated.
    pub persistent: bool,
    /// `name = "..."`: the type name used on the wire instead of the struct's ident.
    pub name: Option<LitStr>,
    /// `replicas = N`: copies of each object in a cluster (persistent only),
    /// instead of the cluster's `--replicas`.
    pub replicas: Option<syn::LitInt>,
    /// The `replicas` word itself, for errors about the argument as a whole.
    pub replicas_word: Option<syn::Ident>,
    /// `placement = "object"` (lambda objects, the default): each object
    /// placed on its own; `placement = "application"`: every object of the
    /// type with its application (kept together on one node). The word and
    /// the value.
    pub placement: Option<(syn::Ident, LitStr)>,
}

impl ObjectArgs {
    /// Whether a lambda object type is placed object by object (unless it
    /// says `placement = "application"`).
    pub fn by_object(&self) -> bool {
        self.placement
            .as_ref()
            .is_none_or(|(_, lit)| lit.value() != "application")
    }

    /// A shared type's `replicas` needs `persistent`.
    pub fn check_replicas(&self, cx: &Ctxt) {
        if let (Some(word), false) = (&self.replicas_word, self.persistent) {
            cx.error_spanned_by(
                word,
                "`replicas` needs `persistent`: ephemeral objects have one copy and are lost \
                 with their node; write `#[shared(persistent, replicas = N)]`",
            );
        }
    }
}

impl ObjectArgs {
    /// The registered type name, as a string literal: `name = "..."` if given,
    /// else the struct's own name.
    pub fn type_name(&self, ident: &syn::Ident) -> LitStr {
        self.name
            .clone()
            .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()))
    }
}

enum ObjectArg {
    Persistent,
    Name(LitStr),
    Replicas(syn::Ident, syn::LitInt),
    Placement(syn::Ident, LitStr),
}

impl Parse for ObjectArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let ident: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
        match ident.to_string().as_str() {
            "persistent" => Ok(ObjectArg::Persistent),
            "name" => {
                input
                    .parse::<Token![=]>()
                    .map_err(|e| syn::Error::new(e.span(), "expected `name = \"TypeName\"`"))?;
                let lit: LitStr = input.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`name` takes a string literal: `name = \"TypeName\"`",
                    )
                })?;
                Ok(ObjectArg::Name(lit))
            }
            "replicas" => {
                let hint = "expected `replicas = N`, with N from 1 to 7";
                input
                    .parse::<Token![=]>()
                    .map_err(|e| syn::Error::new(e.span(), hint))?;
                let lit: syn::LitInt =
                    input.parse().map_err(|e| syn::Error::new(e.span(), hint))?;
                Ok(ObjectArg::Replicas(ident, lit))
            }
            "placement" => {
                let hint = "expected `placement = \"object\"` or `placement = \"application\"`";
                input
                    .parse::<Token![=]>()
                    .map_err(|e| syn::Error::new(e.span(), hint))?;
                let lit: LitStr = input.parse().map_err(|e| syn::Error::new(e.span(), hint))?;
                Ok(ObjectArg::Placement(ident, lit))
            }
            other => Err(syn::Error::new(
                ident.span(),
                format!(
                    "unknown argument `{other}`; expected `name = \"...\"` (and, for #[shared], \
                     `persistent` and `replicas = N`; for #[lambda_object], `placement = ...`)"
                ),
            )),
        }
    }
}

/// Parses `#[shared(...)]` on a struct; an argument that does not parse is
/// reported and the others still count.
pub fn object_args(cx: &Ctxt, tokens: TokenStream) -> ObjectArgs {
    let mut args = ObjectArgs::default();
    let list = match syn::parse::Parser::parse2(
        Punctuated::<ObjectArg, Token![,]>::parse_terminated,
        tokens,
    ) {
        Ok(list) => list,
        Err(error) => {
            cx.syn_error(error);
            return args;
        }
    };
    let mut replicas_ident = None;
    for arg in list {
        match arg {
            ObjectArg::Persistent => args.persistent = true,
            ObjectArg::Replicas(ident, lit) => {
                match lit.base10_parse::<u8>() {
                    Ok(1..=MAX_REPLICAS) if lit.suffix().is_empty() => {}
                    _ => cx.error_spanned_by(
                        &lit,
                        format!(
                            "`replicas` is the number of copies of each object: an integer \
                             from 1 to {MAX_REPLICAS}"
                        ),
                    ),
                }
                if args.replicas.is_some() {
                    cx.error_spanned_by(&lit, "`replicas` is given twice");
                }
                args.replicas = Some(lit);
                replicas_ident = Some(ident);
            }
            ObjectArg::Placement(ident, lit) => {
                if !matches!(lit.value().as_str(), "object" | "application") {
                    cx.error_spanned_by(
                        &lit,
                        "`placement` is \"object\" (each object on its own node) or \
                         \"application\" (every object of the application on one node)",
                    );
                } else if args.placement.is_some() {
                    cx.error_spanned_by(&lit, "`placement` is given twice");
                } else {
                    args.placement = Some((ident, lit));
                }
            }
            ObjectArg::Name(lit) => {
                if lit.value().trim().is_empty() {
                    cx.error_spanned_by(&lit, "`name` must not be empty");
                } else if args.name.is_some() {
                    cx.error_spanned_by(&lit, "`name` is given twice");
                } else {
                    args.name = Some(lit);
                }
            }
        }
    }
    args.replicas_word = replicas_ident;
    args
}

/// Most copies of one object `replicas = N` may ask for.
pub const MAX_REPLICAS: u8 = 7;

/// Records an error if an attribute that takes no arguments got some.
pub fn expect_empty(cx: &Ctxt, tokens: TokenStream, what: &str) {
    if let Some(first) = tokens.into_iter().next() {
        cx.error_at(first.span(), format!("{what} takes no arguments"));
    }
}

/// Parses `#[lambda_object(time_limit = "2s")]` on an impl block: the
/// default time limit of the type's functions, if given.
pub fn lambda_impl_args(cx: &Ctxt, tokens: TokenStream) -> Option<LitStr> {
    if tokens.is_empty() {
        return None;
    }
    let parsed = syn::parse::Parser::parse2(
        |input: ParseStream| -> syn::Result<LitStr> {
            let ident: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
            if ident != "time_limit" {
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "unknown #[lambda_object] argument `{ident}` on an impl block; expected \
                         `time_limit = \"2s\"` (put `name = ...` on the struct)"
                    ),
                ));
            }
            input.parse::<Token![=]>()?;
            let lit: LitStr = input.parse()?;
            let _: Option<Token![,]> = input.parse()?;
            Ok(lit)
        },
        tokens,
    );
    match parsed {
        Ok(lit) => Some(lit),
        Err(error) => {
            cx.syn_error(error);
            None
        }
    }
}
