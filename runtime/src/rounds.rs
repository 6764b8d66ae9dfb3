//! Per-round gathering for iterative algorithms.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Collects one value per worker for each round and hands them over, in worker
/// order, once every worker has contributed. Put it in a `#[shared]` aggregate
/// (k-means centroids, gradient sums) to reduce on the server deterministically,
/// whatever order the workers arrive in.
///
/// ```
/// let mut rounds = crucial::Rounds::new(2);
/// assert_eq!(rounds.add(0, 1, "b"), None);
/// assert_eq!(rounds.add(0, 0, "a"), Some(vec!["a", "b"])); // worker order
/// assert_eq!(rounds.add(0, 1, "late"), None); // a completed round stays completed
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rounds<P> {
    workers: usize,
    pending: BTreeMap<u32, Vec<Option<P>>>,
    completed: Option<u32>,
}

impl<P> Default for Rounds<P> {
    fn default() -> Self {
        Rounds {
            workers: 0,
            pending: BTreeMap::new(),
            completed: None,
        }
    }
}

impl<P> Rounds<P> {
    /// Rounds of `workers` contributions each.
    pub fn new(workers: usize) -> Self {
        Rounds {
            workers: workers.max(1),
            ..Rounds::default()
        }
    }

    /// Records `worker`'s value for `round`; a repeated value (a re-executed
    /// worker) replaces the first. Returns all values in worker order when this
    /// call completes the round, once per round; values for a round that is
    /// already completed are ignored.
    pub fn add(&mut self, round: u32, worker: usize, value: P) -> Option<Vec<P>> {
        if self.completed.is_some_and(|done| round <= done) || worker >= self.workers {
            return None;
        }
        let slots = self
            .pending
            .entry(round)
            .or_insert_with(|| (0..self.workers).map(|_| None).collect());
        slots[worker] = Some(value);
        if slots.iter().any(Option::is_none) {
            return None;
        }
        let values = self.pending.remove(&round)?.into_iter().flatten().collect();
        self.completed = Some(round);
        self.pending.retain(|r, _| *r > round);
        Some(values)
    }
}
