//! A history checker for the transaction engine: concurrent transfer and
//! audit workflows record what each committed execution read and wrote, and
//! the checker replays them in commit-number order on a model — every read
//! must see the model's value at that point (serializability in that order),
//! and a workflow that finished before another began must have the smaller
//! number (strictness).

use super::transaction::Transaction;
use super::{run, Abort, Limits, Store};
use bytes::Bytes;
use crucial::ObjectId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const ACCOUNTS: usize = 6;
const THREADS: usize = 4;
const WORKFLOWS: usize = 400;
const START: u64 = 1000;

/// What one committed workflow did.
#[derive(Debug, Clone)]
struct Record {
    tid: u64,
    attempts: u32,
    begin: Instant,
    end: Instant,
    reads: Vec<(usize, u64)>,
    writes: Vec<(usize, u64)>,
}

fn account(i: usize) -> ObjectId {
    ObjectId::new("bank", "Account", format!("acct-{i}"))
}

fn balance(txn: &mut Transaction, i: usize, reads: &mut Vec<(usize, u64)>) -> Result<u64, Abort> {
    let value = txn.get(&account(i), b"balance")?.map_or(START, |b| {
        u64::from_le_bytes(b.as_ref().try_into().expect("8 bytes"))
    });
    reads.push((i, value));
    Ok(value)
}

fn set(
    txn: &mut Transaction,
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

fn workload(store: &Arc<Store>, seed: u64) -> Vec<Record> {
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
        let committed = run(store, Limits::default(), |txn| {
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
        })
        .expect("commits within the limits");
        if audit {
            assert_eq!(
                committed.value,
                START * ACCOUNTS as u64,
                "an audit saw money move"
            );
        }
        records.push(Record {
            tid: committed.tid,
            attempts: committed.attempts,
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
fn check(mut history: Vec<Record>) {
    history.sort_by_key(|r| r.tid);
    for pair in history.windows(2) {
        assert!(pair[0].tid < pair[1].tid, "two commits share a number");
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
                    "commit {} finished before {} began but is ordered after it",
                    a.tid,
                    b.tid
                );
            }
        }
    }
    assert_eq!(model.values().sum::<u64>(), START * ACCOUNTS as u64);
}

#[test]
fn concurrent_transfers_and_audits_are_strictly_serializable() {
    let store = Arc::new(Store::default());
    let history: Vec<Record> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                s.spawn(move || workload(store, 0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1)))
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
