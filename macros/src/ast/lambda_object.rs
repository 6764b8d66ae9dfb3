//! A `#[lambda_object]` struct's storage fields, as written. Parsing records
//! what each field's type looks like; `check` judges it.

use syn::{Ident, ItemStruct, Type};

/// The four kinds of storage field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// `Cell<T>`: one value.
    Cell,
    /// `Map<K, V>`: keys to values.
    Map,
    /// `MultiMap<K, V>`: keys to sets of values.
    MultiMap,
    /// `Set<T>`: values.
    Set,
}

impl FieldKind {
    fn from_ident(ident: &Ident) -> Option<FieldKind> {
        Some(match ident.to_string().as_str() {
            "Cell" => FieldKind::Cell,
            "Map" => FieldKind::Map,
            "MultiMap" => FieldKind::MultiMap,
            "Set" => FieldKind::Set,
            _ => return None,
        })
    }
}

/// One field of a `#[lambda_object]` struct.
pub struct StorageField {
    /// Its name (`None` in a tuple struct, which `check` refuses).
    pub ident: Option<Ident>,
    /// Its type, as written.
    pub ty: Type,
    /// The storage kind its type names (`None`: not a storage field).
    pub kind: Option<FieldKind>,
}

/// The fields of `item`, in declaration order.
pub fn storage_fields(item: &ItemStruct) -> Vec<StorageField> {
    item.fields
        .iter()
        .map(|field| StorageField {
            ident: field.ident.clone(),
            ty: field.ty.clone(),
            kind: kind_of(&field.ty),
        })
        .collect()
}

/// The kind a type path's last segment names (`Cell`, `crucial::store::Map`,
/// ...).
fn kind_of(ty: &Type) -> Option<FieldKind> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    FieldKind::from_ident(&path.path.segments.last()?.ident)
}
