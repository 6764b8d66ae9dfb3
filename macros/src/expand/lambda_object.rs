//! The code generated for a `#[lambda_object]` struct: its `LambdaObject`
//! impl, which binds every storage field to its object in a running workflow.
//! (The handles its functions are called through come with the impl block.)

use crate::ast::{ObjectStruct, StorageField};
use crate::attr::ObjectArgs;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// A type as the stored-shape check compares it: canonical, every path cut
/// to its last segment (`crucial::store::Cell<crate::Comment>` ->
/// `Cell<Comment>`), so that writing a path another way changes nothing.
fn short_type(ty: &syn::Type) -> String {
    fn shorten(ty: &syn::Type) -> syn::Type {
        let mut ty = ty.clone();
        if let syn::Type::Path(p) = &mut ty {
            if p.qself.is_none() {
                if let Some(last) = p.path.segments.pop() {
                    let mut last = last.into_value();
                    if let syn::PathArguments::AngleBracketed(args) = &mut last.arguments {
                        for arg in args.args.iter_mut() {
                            if let syn::GenericArgument::Type(inner) = arg {
                                *inner = shorten(inner);
                            }
                        }
                    }
                    p.path = last.into();
                }
            }
        }
        ty
    }
    crate::fingerprint::canonical(&shorten(ty))
}

/// Generates one lambda object type's struct-side items.
pub struct LambdaGen<'a> {
    object: &'a ObjectStruct,
    fields: &'a [StorageField],
    args: &'a ObjectArgs,
    expandable: bool,
}

impl<'a> LambdaGen<'a> {
    /// A generator; `expandable: false` emits the struct alone.
    pub fn new(
        object: &'a ObjectStruct,
        fields: &'a [StorageField],
        args: &'a ObjectArgs,
        expandable: bool,
    ) -> Self {
        LambdaGen {
            object,
            fields,
            args,
            expandable,
        }
    }

    /// The struct and everything generated for it.
    pub fn generate(&self) -> TokenStream {
        let item = &self.object.item;
        if !self.expandable {
            return quote!(#item);
        }
        let lambda_object = self.lambda_object_impl();
        quote! {
            #item
            #lambda_object
        }
    }

    /// `impl LambdaObject`: the type name, the field names, and `at`, which
    /// binds each field (its index is its entries' prefix). Each binding is
    /// spanned on the field's type, so a key that is not `Ord` or a value that
    /// is not serde is reported there.
    fn lambda_object_impl(&self) -> TokenStream {
        let ident = &self.object.item.ident;
        let type_name = self.args.type_name(ident);
        let names: Vec<String> = self
            .fields
            .iter()
            .map(|f| {
                f.ident
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .collect();
        let shape: Vec<String> = self
            .fields
            .iter()
            .zip(&names)
            .map(|(field, name)| format!("{name}: {}", short_type(&field.ty)))
            .collect();
        let bindings = self
            .fields
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(index, (field, name))| {
                let field_ident = &field.ident;
                let ty = &field.ty;
                let index = index as u16;
                if field.kind.is_none() {
                    // Not a storage field (already reported): never bound,
                    // the struct cannot be built until it is fixed.
                    return quote! {
                        #field_ident: ::crucial::__private::unreachable!("not a storage field")
                    };
                }
                quote_spanned! {ty.span()=>
                    #field_ident: <#ty as ::crucial::__private::store::StorageField>::bind(
                        ::crucial::__private::store::FieldRef::new(
                            ::crucial::__private::Clone::clone(&host),
                            ::crucial::__private::Clone::clone(&id),
                            #index,
                            #name,
                        ),
                    )
                }
            });
        let by_object = self.args.by_object();
        quote! {
            impl ::crucial::__private::store::LambdaObject for #ident {
                const TYPE_NAME: &'static str = #type_name;
                const BY_OBJECT: bool = #by_object;
                const APPLICATION: &'static str = ::crucial::__private::env!("CARGO_PKG_NAME");
                const FIELDS: &'static [&'static str] = &[#(#names),*];
                const SHAPE: &'static [&'static str] = &[#(#shape),*];
                #[allow(unreachable_code)] // a field that is not a storage field (reported)
                fn open(
                    host: ::crucial::__private::store::Arc<dyn ::crucial::__private::store::Host>,
                    id: ::crucial::__private::store::Arc<::crucial::__private::store::ObjectId>,
                ) -> Self {
                    #ident { #(#bindings,)* }
                }
            }
        }
    }
}
