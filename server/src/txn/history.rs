//! A history checker for the transaction engine: concurrent transfer and
//! audit workflows record what each committed execution read and wrote, and
//! the checker replays them in commit-number order on a model — every read
//! must see the model's value at that point (serializability in that order),
//! and a workflow that finished before another began must have the smaller
//! number (strictness).

use super::spanning::Spanning;
use super::transaction::Transaction;
use super::{run, Abort, Limits, Store};
use bytes::Bytes;
use crucial::ObjectId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub const ACCOUNTS: usize = 6;
pub const THREADS: usize = 4;
pub const WORKFLOWS: usize = 400;
const START: u64 = 1000;

/// What one committed workflow did.
#[derive(Debug, Clone)]
pub struct Record {
    tid: u64,
    pub attempts: u32,
    begin: Instant,
    end: Instant,
    reads: Vec<(usize, u64)>,
    writes: Vec<(usize, u64)>,
}

pub fn account(i: usize) -> ObjectId {
    ObjectId::new("bank", "Account", format!("acct-{i}"))
}

/// What the workload reads and writes through: one node's transaction, or
/// one that spans nodes.
pub trait Kv {
    /// One entry.
    fn get(&mut self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, Abort>;
    /// Sets one entry.
    fn put(&mut self, object: &ObjectId, key: &[u8], value: Bytes) -> Result<(), Abort>;
}

impl Kv for Transaction {
    fn get(&mut self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, Abort> {
        Transaction::get(self, object, key)
    }
    fn put(&mut self, object: &ObjectId, key: &[u8], value: Bytes) -> Result<(), Abort> {
        Transaction::put(self, object, key, value)
    }
}

impl Kv for Spanning {
    fn get(&mut self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, Abort> {
        Spanning::get(self, object, key)
    }
    fn put(&mut self, object: &ObjectId, key: &[u8], value: Bytes) -> Result<(), Abort> {
        self.write(object, key, Some(value))
    }
}

/// One workflow of the workload, as a runner gets it.
pub type Body<'a> = dyn FnMut(&mut dyn Kv) -> Result<u64, Abort> + 'a;

/// Runs one workflow (`from`: the account it starts at) to its commit: what
/// it returned, its number, its executions.
pub trait Runner: Sync {
    /// Runs `body` until it commits.
    fn run(&self, from: usize, body: &mut Body<'_>) -> (u64, u64, u32);
}

/// Every workflow on one store.
struct OneNode<'a>(&'a Arc<Store>);

impl Runner for OneNode<'_> {
    fn run(&self, _from: usize, body: &mut Body<'_>) -> (u64, u64, u32) {
        let committed = run(self.0, Limits::default(), |txn| body(txn as &mut dyn Kv))
            .expect("commits within the limits");
        (committed.value, committed.tid, committed.attempts)
    }
}

fn balance(txn: &mut dyn Kv, i: usize, reads: &mut Vec<(usize, u64)>) -> Result<u64, Abort> {
    let value = txn.get(&account(i), b"balance")?.map_or(START, |b| {
        u64::from_le_bytes(b.as_ref().try_into().expect("8 bytes"))
    });
    reads.push((i, value));
    Ok(value)
}

fn set(
    txn: &mut dyn Kv,
    i: usize,
    value: u64,
    writes: &mut Vec<(usize, u64)>,
) -> Result<(), Abort> {
    writes.push((i, value));
    txn.put(
        &account(i),
        b"balance",
        Bytes::copy_from_slice(&value.to_le_bytes()),
    )
}

/// xorshift64: a seeded random source for the workload.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Transfers between random accounts, one audit in ten, from one thread.
pub fn workload(runner: &dyn Runner, seed: u64) -> Vec<Record> {
    let mut random = seed;
    let mut records = Vec::new();
    for _ in 0..WORKFLOWS {
        let (from, to) = (
            next(&mut random) as usize % ACCOUNTS,
            next(&mut random) as usize % ACCOUNTS,
        );
        let amount = next(&mut random) % 50;
        let audit = next(&mut random) % 10 == 0;
        let begin = Instant::now();
        let mut log = (Vec::new(), Vec::new());
        let (value, tid, attempts) = runner.run(from, &mut |txn| {
            log = (Vec::new(), Vec::new());
            let (reads, writes) = &mut log;
            if audit {
                let mut total = 0;
                for i in 0..ACCOUNTS {
                    total += balance(txn, i, reads)?;
                }
                return Ok(total);
            }
            let a = balance(txn, from, reads)?;
            if a < amount || from == to {
                return Ok(0);
            }
            // Widen the window between reads and commit, so that workflows
            // overlap and conflict even on an idle machine.
            std::thread::yield_now();
            let b = balance(txn, to, reads)?;
            set(txn, from, a - amount, writes)?;
            set(txn, to, b + amount, writes)?;
            Ok(0)
        });
        if audit {
            assert_eq!(value, START * ACCOUNTS as u64, "an audit saw money move");
        }
        records.push(Record {
            tid,
            attempts,
            begin,
            end: Instant::now(),
            reads: log.0,
            writes: log.1,
        });
    }
    records
}

/// Replays `history` in commit order; panics at the first read no serial
/// execution in that order explains, or at a real-time inversion.
///
/// Nodes number commits from their own clocks, so two commits made at the
/// same nanosecond on two nodes may share a number. That is sound only if
/// they do not conflict (neither wrote what the other read or wrote): then
/// either order explains both, and the checker takes them as they come.
pub fn check(mut history: Vec<Record>) {
    history.sort_by_key(|r| r.tid);
    for (i, a) in history.iter().enumerate() {
        for b in history[i + 1..].iter().take_while(|b| b.tid == a.tid) {
            assert!(
                !conflict(a, b),
                "commits share the number {} and conflict: {a:?} {b:?}",
                a.tid
            );
        }
    }
    let mut model: HashMap<usize, u64> = (0..ACCOUNTS).map(|i| (i, START)).collect();
    for record in &history {
        for (i, seen) in &record.reads {
            assert_eq!(
                model[i], *seen,
                "commit {} read account {i}: not serializable",
                record.tid
            );
        }
        for (i, value) in &record.writes {
            model.insert(*i, *value);
        }
    }
    for a in &history {
        for b in &history {
            if a.end < b.begin {
                assert!(
                    a.tid < b.tid,
                    "commit {} finished before {} began but is not ordered before it",
                    a.tid,
                    b.tid
                );
            }
        }
    }
    assert_eq!(model.values().sum::<u64>(), START * ACCOUNTS as u64);
}

/// Whether one of two commits wrote an account the other read or wrote.
fn conflict(a: &Record, b: &Record) -> bool {
    let wrote = |r: &Record, i: usize| r.writes.iter().any(|(w, _)| *w == i);
    let touched = |r: &Record| {
        r.reads
            .iter()
            .chain(&r.writes)
            .map(|(i, _)| *i)
            .collect::<Vec<_>>()
    };
    touched(b).into_iter().any(|i| wrote(a, i)) || touched(a).into_iter().any(|i| wrote(b, i))
}

#[test]
fn concurrent_transfers_and_audits_are_strictly_serializable() {
    let store = Arc::new(Store::default());
    let history: Vec<Record> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let runner = OneNode(&store);
                s.spawn(move || workload(&runner, 0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1)))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    assert_eq!(history.len(), THREADS * WORKFLOWS);
    let again: u32 = history.iter().map(|r| r.attempts - 1).sum();
    println!(
        "{} workflows committed, {again} re-executions after conflicts",
        history.len()
    );
    check(history);
}

#[test]
fn the_checker_catches_a_lost_update() {
    // Two increments that both read 1000: no serial order explains both.
    let now = Instant::now();
    let record = |tid, value| Record {
        tid,
        attempts: 1,
        begin: now,
        end: now,
        reads: vec![(0, START)],
        writes: vec![(0, value)],
    };
    let caught =
        std::panic::catch_unwind(|| check(vec![record(1, START + 1), record(2, START + 1)]));
    assert!(caught.is_err());
}

#[test]
fn commits_of_two_nodes_may_share_a_number_only_if_they_do_not_conflict() {
    let now = Instant::now();
    let transfer = |from: usize, to: usize| Record {
        tid: 7,
        attempts: 1,
        begin: now,
        end: now,
        reads: vec![(from, START), (to, START)],
        writes: vec![(from, START - 1), (to, START + 1)],
    };
    // Disjoint transfers at one number: either order explains both.
    check(vec![transfer(0, 1), transfer(2, 3)]);
    // A transfer and an audit of what it wrote, at one number: no order is
    // told, so the checker refuses them even though the reads would pass.
    let audit = Record {
        writes: Vec::new(),
        reads: (0..ACCOUNTS).map(|i| (i, START)).collect(),
        ..transfer(0, 1)
    };
    let caught = std::panic::catch_unwind(|| check(vec![audit, transfer(2, 3)]));
    assert!(caught.is_err(), "a tie between conflicting commits passed");
}
