//! Parsing of attribute arguments: `#[shared(persistent, name = "...")]`.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{LitStr, Token};

/// Arguments accepted by `#[shared]` on a struct.
#[derive(Default)]
pub struct SharedArgs {
    /// `persistent`: the object outlives the application and is replicated.
    pub persistent: bool,
    /// `name = "..."`: the type name used on the wire instead of the struct's ident.
    pub name: Option<LitStr>,
}

enum SharedArg {
    Persistent,
    Name(LitStr),
}

impl Parse for SharedArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let ident: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
        match ident.to_string().as_str() {
            "persistent" => Ok(SharedArg::Persistent),
            "name" => {
                input.parse::<Token![=]>().map_err(|e| {
                    syn::Error::new(e.span(), "expected `name = \"TypeName\"`")
                })?;
                let lit: LitStr = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`name` takes a string literal: `name = \"TypeName\"`")
                })?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(lit.span(), "`name` must not be empty"));
                }
                Ok(SharedArg::Name(lit))
            }
            other => Err(syn::Error::new(
                ident.span(),
                format!(
                    "unknown #[shared] argument `{other}`; expected `persistent` or `name = \"...\"`"
                ),
            )),
        }
    }
}

impl SharedArgs {
    /// Parses the arguments of `#[shared(...)]` on a struct.
    pub fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let list = syn::parse::Parser::parse2(
            Punctuated::<SharedArg, Token![,]>::parse_terminated,
            tokens,
        )?;
        let mut args = SharedArgs::default();
        for arg in list {
            match arg {
                SharedArg::Persistent => args.persistent = true,
                SharedArg::Name(lit) => {
                    if args.name.is_some() {
                        return Err(syn::Error::new(lit.span(), "`name` is given twice"));
                    }
                    args.name = Some(lit)
                }
            }
        }
        Ok(args)
    }
}

/// Fails with a spanned error if an attribute that takes no arguments got some.
pub fn expect_empty(tokens: TokenStream, what: &str) -> syn::Result<()> {
    if let Some(first) = tokens.into_iter().next() {
        return Err(syn::Error::new(
            first.span(),
            format!("{what} takes no arguments"),
        ));
    }
    Ok(())
}
