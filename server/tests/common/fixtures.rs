//! Fixture types shared by the integration tests (client side) and the
//! `fixture-node` example (the node that hosts them).

#![allow(dead_code)]

use serde::{Deserialize, Serialize};

/// A fixture type with methods that misbehave on purpose.
#[crucial::shared]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Faulty {
    value: i64,
}

#[crucial::shared]
impl Faulty {
    pub fn set(&mut self, value: i64) {
        self.value = value;
    }

    pub fn get(&self) -> i64 {
        self.value
    }

    /// Changes the value, then panics midway.
    pub fn set_then_panic(&mut self, value: i64) {
        self.value = value;
        panic!("boom after setting {value}");
    }

    pub fn read_panic(&self) -> i64 {
        panic!("read-only boom")
    }
}

/// A user type whose methods run on the node: money moves between accounts.
#[crucial::shared]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bank {
    accounts: Vec<i64>,
    calls: u64,
}

#[crucial::shared]
impl Bank {
    /// Opens `n` accounts of `each` unless already open.
    pub fn open(&mut self, n: usize, each: i64) {
        if self.accounts.is_empty() {
            self.accounts = vec![each; n];
        }
    }

    /// Moves `amount` if `from` holds it; every call is counted.
    pub fn transfer(&mut self, from: usize, to: usize, amount: i64) -> bool {
        self.calls += 1;
        if self.accounts[from] < amount {
            return false;
        }
        self.accounts[from] -= amount;
        self.accounts[to] += amount;
        true
    }

    /// The sum of all balances and the number of transfer calls applied.
    pub fn audit(&self) -> (i64, u64) {
        (self.accounts.iter().sum(), self.calls)
    }
}

/// A bank kept on disk by a node with a data directory: transfers count per
/// caller, so a test can tell which acknowledged transfers survived a crash.
#[crucial::shared(persistent)]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DurableBank {
    accounts: Vec<i64>,
    /// Transfers applied, per caller.
    applied: Vec<u64>,
}

#[crucial::shared]
impl DurableBank {
    /// Opens `n` accounts of `each` and `callers` counters unless already open.
    pub fn open(&mut self, n: usize, each: i64, callers: usize) {
        if self.accounts.is_empty() {
            self.accounts = vec![each; n];
            self.applied = vec![0; callers];
        }
    }

    /// Moves `amount` from `from` to `to` (overdraft allowed), counted for `caller`.
    pub fn transfer(&mut self, caller: usize, from: usize, to: usize, amount: i64) {
        self.accounts[from] -= amount;
        self.accounts[to] += amount;
        self.applied[caller] += 1;
    }

    /// The sum of all balances and the transfers applied per caller.
    pub fn audit(&self) -> (i64, Vec<u64>) {
        (self.accounts.iter().sum(), self.applied.clone())
    }
}

/// A persistent object of a few kilobytes, for passivation under a memory limit.
#[crucial::shared(persistent)]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Blob {
    data: Vec<u8>,
    writes: u64,
}

#[crucial::shared]
impl Blob {
    /// Fills the blob with `len` copies of `byte`; returns the writes so far.
    pub fn fill(&mut self, len: usize, byte: u8) -> u64 {
        self.data = vec![byte; len];
        self.writes += 1;
        self.writes
    }

    /// Its first byte, its length and its writes.
    pub fn check(&self) -> (Option<u8>, usize, u64) {
        (self.data.first().copied(), self.data.len(), self.writes)
    }
}

/// A persistent map big enough that its small calls are logged instead of
/// its whole state being rewritten.
#[crucial::shared(persistent)]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    entries: std::collections::BTreeMap<u64, u64>,
}

#[crucial::shared]
impl Ledger {
    /// Entries `0..n`, all zero.
    pub fn fill(&mut self, n: u64) {
        self.entries.extend((0..n).map(|k| (k, 0)));
    }

    /// Sets one entry; returns the old value.
    pub fn put(&mut self, key: u64, value: u64) -> Option<u64> {
        self.entries.insert(key, value)
    }

    /// Adds one to an entry; returns its new value (each acknowledged call
    /// returns a value no other call returned).
    pub fn bump(&mut self, key: u64) -> u64 {
        let value = self.entries.entry(key).or_default();
        *value += 1;
        *value
    }

    /// One entry.
    pub fn get(&self, key: u64) -> Option<u64> {
        self.entries.get(&key).copied()
    }

    /// The number of entries and the sum of their values.
    pub fn sum(&self) -> (usize, u64) {
        (self.entries.len(), self.entries.values().sum())
    }
}

/// A barrier of persistent state: with replicas, its waiters survive a crash
/// of its head (they re-send their arrival, with the same ticket, to the new
/// head, where it parks again).
#[crucial::shared(persistent)]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DurableBarrier {
    parties: usize,
    arrived: std::collections::BTreeSet<u64>,
    released: std::collections::BTreeMap<u64, bool>,
}

#[crucial::shared]
impl DurableBarrier {
    /// Sets the number of parties.
    pub fn set_parties(&mut self, parties: usize) {
        self.parties = parties;
    }

    /// Arrives with `ticket` (one per wait) and waits until all parties
    /// arrived; the last to arrive is told `true`.
    pub fn arrive(&mut self, ticket: u64) -> std::task::Poll<bool> {
        if let Some(leader) = self.released.remove(&ticket) {
            return std::task::Poll::Ready(leader);
        }
        self.arrived.insert(ticket);
        if self.arrived.len() >= self.parties.max(1) {
            for other in std::mem::take(&mut self.arrived) {
                if other != ticket {
                    self.released.insert(other, false);
                }
            }
            return std::task::Poll::Ready(true);
        }
        std::task::Poll::Pending
    }
}
