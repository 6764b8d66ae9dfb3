//! What lambda objects' storage fields stand on. Built so far: the
//! order-preserving key encoding of `Map`, `MultiMap` and `Set` keys; the
//! field handles come next.

pub mod key;
