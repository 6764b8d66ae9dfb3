//! The model the macros work on. Parsing builds it from any well-formed item
//! without judging it; `check` then says everything that is wrong with it, and
//! `expand` generates code from it. One model serves both object kinds
//! (`#[shared]`, `#[lambda_object]`) and both forms of cloud thread.

mod function;
mod lambda_object;
mod method;
mod object;
mod thread;

pub use function::{Function, FunctionKind, LambdaImpl};
pub use lambda_object::{storage_fields, StorageField};
pub use method::{Method, ObjectImpl};
pub use object::{parse_object, ObjectStruct, ObjectTarget};
pub use thread::{parse_thread, ThreadFn, ThreadTarget};

use crate::names;
use syn::{FnArg, Ident, ReturnType, Type};

/// The kinds of object type the macros generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `#[shared]`: a Rust value whose methods run on its node, linearizably.
    Shared,
    /// `#[lambda_object]`: storage fields whose functions run next to them,
    /// each workflow one transaction.
    Lambda,
}

impl ObjectKind {
    /// The attribute, as written in messages.
    pub fn attr(self) -> &'static str {
        match self {
            ObjectKind::Shared => "#[shared]",
            ObjectKind::Lambda => "#[lambda_object]",
        }
    }
}

/// One typed parameter of a shipped method or a cloud thread.
#[derive(Clone)]
pub struct Param {
    /// The name generated code gives it (the user's, or `argN` for a pattern).
    pub name: Ident,
    /// Its type, as written.
    pub ty: Type,
}

/// The typed parameters among `inputs` (receivers are skipped).
fn params<'a>(inputs: impl Iterator<Item = &'a FnArg>) -> Vec<Param> {
    inputs
        .filter_map(|input| match input {
            FnArg::Typed(typed) => Some(typed),
            FnArg::Receiver(_) => None,
        })
        .enumerate()
        .map(|(index, typed)| Param {
            name: names::parameter(&typed.pat, index),
            ty: (*typed.ty).clone(),
        })
        .collect()
}

/// The declared return type, if any.
fn output(output: &ReturnType) -> Option<Type> {
    match output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    }
}
