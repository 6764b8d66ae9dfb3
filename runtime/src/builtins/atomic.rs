//! Linearizable atomics named and behaving like `std::sync::atomic`, minus the
//! `Ordering` arguments: every operation on a shared object is linearizable.

use crate as crucial;
use serde::{Deserialize, Serialize};

macro_rules! atomic_int {
    ($name:ident, $wire:literal, $int:ty) => {
        #[doc = concat!("A shared `", stringify!($int), "`, like `std::sync::atomic::", stringify!($name), "`.")]
        ///
        /// Arithmetic wraps on overflow, as in `std`.
        ///
        /// ```
/// # crucial_server::link();
        #[doc = concat!("let counter = crucial::", stringify!($name), "::shared(\"hits\");")]
        /// counter.store(40)?;
        /// assert_eq!(counter.fetch_add(2)?, 40);
        /// assert_eq!(counter.load()?, 42);
        /// # Ok::<(), crucial::Error>(())
        /// ```
        #[crucial::shared(name = $wire)]
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            value: $int,
        }

        impl $name {
            /// An initial state for `shared_with`.
            pub fn new(value: $int) -> Self {
                $name { value }
            }
        }

        #[crucial::shared]
        impl $name {
            /// Returns the value.
            pub fn load(&self) -> $int {
                self.value
            }

            /// Replaces the value.
            pub fn store(&mut self, value: $int) {
                self.value = value;
            }

            /// Replaces the value, returning the previous one.
            pub fn swap(&mut self, value: $int) -> $int {
                std::mem::replace(&mut self.value, value)
            }

            /// Stores `new` if the value is `current`. Returns the previous value:
            /// `Ok` if it was `current`, `Err` otherwise (as in `std`).
            pub fn compare_exchange(&mut self, current: $int, new: $int) -> Result<$int, $int> {
                if self.value == current {
                    self.value = new;
                    Ok(current)
                } else {
                    Err(self.value)
                }
            }

            /// Adds, returning the previous value.
            pub fn fetch_add(&mut self, delta: $int) -> $int {
                let old = self.value;
                self.value = old.wrapping_add(delta);
                old
            }

            /// Subtracts, returning the previous value.
            pub fn fetch_sub(&mut self, delta: $int) -> $int {
                let old = self.value;
                self.value = old.wrapping_sub(delta);
                old
            }

            /// Stores the maximum of the value and `value`, returning the previous value.
            pub fn fetch_max(&mut self, value: $int) -> $int {
                let old = self.value;
                self.value = old.max(value);
                old
            }

            /// Stores the minimum of the value and `value`, returning the previous value.
            pub fn fetch_min(&mut self, value: $int) -> $int {
                let old = self.value;
                self.value = old.min(value);
                old
            }

            /// Adds, returning the new value (Java's `addAndGet`).
            pub fn add_and_get(&mut self, delta: $int) -> $int {
                self.value = self.value.wrapping_add(delta);
                self.value
            }

            /// Adds one, returning the new value.
            pub fn increment_and_get(&mut self) -> $int {
                self.add_and_get(1)
            }
        }
    };
}

atomic_int!(AtomicI32, "crucial::AtomicI32", i32);
atomic_int!(AtomicI64, "crucial::AtomicI64", i64);

/// A shared `bool`, like `std::sync::atomic::AtomicBool`.
///
/// ```
/// # crucial_server::link();
/// let done = crucial::AtomicBool::shared("done");
/// assert_eq!(done.compare_exchange(false, true)?, Ok(false));
/// assert!(done.load()?);
/// # Ok::<(), crucial::Error>(())
/// ```
#[crucial::shared(name = "crucial::AtomicBool")]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtomicBool {
    value: bool,
}

impl AtomicBool {
    /// An initial state for `shared_with`.
    pub fn new(value: bool) -> Self {
        AtomicBool { value }
    }
}

#[crucial::shared]
impl AtomicBool {
    /// Returns the value.
    pub fn load(&self) -> bool {
        self.value
    }

    /// Replaces the value.
    pub fn store(&mut self, value: bool) {
        self.value = value;
    }

    /// Replaces the value, returning the previous one.
    pub fn swap(&mut self, value: bool) -> bool {
        std::mem::replace(&mut self.value, value)
    }

    /// Stores `new` if the value is `current`; `Ok(previous)` on success, `Err(actual)` otherwise.
    pub fn compare_exchange(&mut self, current: bool, new: bool) -> Result<bool, bool> {
        if self.value == current {
            self.value = new;
            Ok(current)
        } else {
            Err(self.value)
        }
    }

    /// Logical and, returning the previous value.
    pub fn fetch_and(&mut self, value: bool) -> bool {
        let old = self.value;
        self.value = old & value;
        old
    }

    /// Logical or, returning the previous value.
    pub fn fetch_or(&mut self, value: bool) -> bool {
        let old = self.value;
        self.value = old | value;
        old
    }

    /// Logical xor, returning the previous value.
    pub fn fetch_xor(&mut self, value: bool) -> bool {
        let old = self.value;
        self.value = old ^ value;
        old
    }
}
