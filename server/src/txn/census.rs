//! How many lambda objects each application holds in a store, for the
//! per-application quota `--app-max-lambda-objects` (see `crate::quota`).
//!
//! An object exists once a constructor ran on it: its `EXISTS` entry (the
//! runtime's marker key) is installed. Every change of a store's entries
//! passes through `LambdaObject::install`, which says whether the marker
//! came or went; objects that leave whole (a handoff) are counted out where
//! they are taken.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The entry key a constructor writes: the object exists while it is there.
pub const EXISTS: &[u8] = &crucial::__private::store::EXISTS;

/// Lambda objects per application, and the quota on them.
#[derive(Default)]
pub struct LambdaCensus {
    limit: OnceLock<u64>,
    counts: Mutex<HashMap<String, u64>>,
}

impl LambdaCensus {
    /// Sets the quota (`--app-max-lambda-objects`), once.
    pub fn limit_to(&self, limit: u64) {
        let _ = self.limit.set(limit);
    }

    /// The quota, if any.
    pub fn limit(&self) -> Option<u64> {
        self.limit.get().copied()
    }

    /// `application` has `delta` objects more (or fewer).
    pub fn counted(&self, application: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get_mut(application) {
            Some(n) => *n = n.saturating_add_signed(delta),
            None if delta > 0 => {
                counts.insert(application.to_string(), delta as u64);
            }
            None => {}
        }
    }

    /// `application`'s objects here.
    pub fn count(&self, application: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(application).copied().unwrap_or(0)
    }

    /// Every application's objects here.
    pub fn all(&self) -> HashMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_up_and_down_per_application() {
        let census = LambdaCensus::default();
        census.counted("bank", 1);
        census.counted("bank", 1);
        census.counted("blog", 1);
        census.counted("bank", -1);
        census.counted("gone", -1);
        assert_eq!((census.count("bank"), census.count("blog")), (1, 1));
        assert_eq!(census.count("gone"), 0);
        assert_eq!(census.limit(), None);
        census.limit_to(5);
        assert_eq!(census.limit(), Some(5));
    }
}
