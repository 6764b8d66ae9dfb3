//! A cloud thread: a free function, or a struct implementing `Runnable`.

use super::{output, params, Param};
use syn::{Item, ItemFn, ItemStruct, Type};

/// A `#[cloud_thread]` function.
pub struct ThreadFn {
    /// The user's function, emitted unchanged.
    pub item: ItemFn,
    /// Its typed parameters.
    pub params: Vec<Param>,
    /// Its declared return type.
    pub output: Option<Type>,
}

/// What `#[cloud_thread]` was put on.
#[allow(clippy::large_enum_variant)] // one per macro call, moved once
pub enum ThreadTarget {
    /// A function.
    Fn(ThreadFn),
    /// A struct (the paper's `Runnable` style).
    Struct(ItemStruct),
    /// Anything else: `check` explains.
    Other(Item),
}

/// Sorts the item `#[cloud_thread]` is on.
pub fn parse_thread(item: Item) -> ThreadTarget {
    match item {
        Item::Fn(item) => ThreadTarget::Fn(ThreadFn {
            params: params(item.sig.inputs.iter()),
            output: output(&item.sig.output),
            item,
        }),
        Item::Struct(item) => ThreadTarget::Struct(item),
        other => ThreadTarget::Other(other),
    }
}
