//! An object type's struct, and what an object attribute was put on.

use super::method::ObjectImpl;
use super::ObjectKind;
use syn::{Item, ItemStruct};

/// The struct of an object type.
pub struct ObjectStruct {
    /// `#[shared]` (or, next, `#[lambda_object]`).
    pub kind: ObjectKind,
    /// The user's struct, emitted unchanged.
    pub item: ItemStruct,
}

/// What an object attribute was put on.
#[allow(clippy::large_enum_variant)] // one per macro call, moved once
pub enum ObjectTarget {
    /// The type's struct.
    Struct(ObjectStruct),
    /// An impl block of the type.
    Impl(ObjectImpl),
    /// Anything else (an enum, a trait, a function, ...): `check` explains.
    Other(Item),
}

/// Sorts the item an object attribute is on.
pub fn parse_object(kind: ObjectKind, item: Item) -> ObjectTarget {
    match item {
        Item::Struct(item) => ObjectTarget::Struct(ObjectStruct { kind, item }),
        Item::Impl(item) => ObjectTarget::Impl(ObjectImpl::parse(kind, item)),
        other => ObjectTarget::Other(other),
    }
}
