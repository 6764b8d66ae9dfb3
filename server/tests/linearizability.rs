//! Linearizability under faults. Threads run a random mix of operations on one
//! shared `AtomicI64` of a real node process while another thread cuts the
//! client's connection again and again, so calls fail mid-flight and are
//! retried (and deduplicated by the node). Every invocation and return is
//! recorded, and the history is checked by a linearizability tester
//! (`consistency_model`, the checker of the Stateright model checker): some
//! order of the operations, respecting real time, must explain every result.
//!
//! The check has teeth: with the node's deduplication turned off
//! (`--dedup-window 0`) retried increments apply twice and this test failed in
//! 3 runs of 3. Rejecting a history can take the checker minutes (it searches
//! every order); accepting one takes milliseconds.

mod common;

use common::fixtures::Bank;
use common::ServerProcess;
use consistency_model::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use crucial::AtomicI64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The sequential specification: what one `AtomicI64` does.
#[derive(Clone, Debug, Default)]
struct Counter(i64);

#[derive(Clone, Debug)]
enum Op {
    FetchAdd(i64),
    Load,
    CompareExchange(i64, i64),
}

#[derive(Clone, Debug, PartialEq)]
enum Ret {
    Previous(i64),
    Value(i64),
    Exchanged(Result<i64, i64>),
}

impl SequentialSpec for Counter {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        match *op {
            Op::FetchAdd(delta) => {
                let previous = self.0;
                self.0 += delta;
                Ret::Previous(previous)
            }
            Op::Load => Ret::Value(self.0),
            Op::CompareExchange(current, new) => {
                if self.0 == current {
                    self.0 = new;
                    Ret::Exchanged(Ok(current))
                } else {
                    Ret::Exchanged(Err(self.0))
                }
            }
        }
    }
}

type Tester = LinearizabilityTester<usize, Counter>;

/// Runs `op` on the node, recording its invocation before and its return after.
fn run(tester: &Mutex<Tester>, thread: usize, counter: &crucial::AtomicI64Proxy, op: Op) -> Ret {
    tester
        .lock()
        .unwrap()
        .on_invoke(thread, op.clone())
        .unwrap();
    let ret = match op {
        Op::FetchAdd(delta) => Ret::Previous(counter.fetch_add(delta).expect("fetch_add")),
        Op::Load => Ret::Value(counter.load().expect("load")),
        Op::CompareExchange(current, new) => Ret::Exchanged(
            counter
                .compare_exchange(current, new)
                .expect("compare_exchange"),
        ),
    };
    tester
        .lock()
        .unwrap()
        .on_return(thread, ret.clone())
        .unwrap();
    ret
}

/// A small deterministic generator, one per thread.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Cuts the client's connection to node 0 `cuts` times, 4 ms apart, then sets
/// `done`; returns how many cuts it made.
fn cut_connections(client: &crucial::Client, cuts: u64, done: &AtomicBool) -> u64 {
    let mut made = 0;
    for _ in 0..cuts {
        std::thread::sleep(Duration::from_millis(4));
        crucial::__private::testing::drop_connection(client, 0);
        made += 1;
    }
    done.store(true, Ordering::Relaxed);
    made
}

/// The value of one series on the node's metrics page.
fn metric(url: &str, series: &str) -> f64 {
    common::sample(&common::http_get(url).1, series)
}

#[test]
fn an_atomic_stays_linearizable_while_connections_are_cut() {
    const THREADS: usize = 4;
    const MAX_OPS: usize = 300;
    const CUTS: u64 = 25;
    let server = ServerProcess::crucial_server(&["--metrics", "127.0.0.1:0"]);
    let client = crucial::Config::new()
        .server(server.addr.clone())
        .retries(8)
        .connect()
        .unwrap();
    let counter = client.open::<AtomicI64>("linearizable");
    let tester = Mutex::new(Tester::new(Counter(0)));
    let done = AtomicBool::new(false);
    let (ops, cuts) = std::thread::scope(|s| {
        let cutter = s.spawn(|| cut_connections(&client, CUTS, &done));
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (tester, done, counter) = (&tester, &done, counter.clone());
                s.spawn(move || {
                    let mut rng = Lcg(thread as u64 + 1);
                    let mut seen = 0;
                    let mut ops = 0;
                    while ops < MAX_OPS && !(done.load(Ordering::Relaxed) && ops >= 20) {
                        let op = match rng.next() % 20 {
                            0..=11 => Op::FetchAdd(1 + (rng.next() % 5) as i64),
                            12..=16 => Op::Load,
                            _ => Op::CompareExchange(seen, seen + 100),
                        };
                        seen = match run(tester, thread, &counter, op) {
                            Ret::Previous(v) | Ret::Value(v) => v,
                            Ret::Exchanged(Ok(_)) => seen + 100,
                            Ret::Exchanged(Err(actual)) => actual,
                        };
                        ops += 1;
                    }
                    ops
                })
            })
            .collect();
        let ops = workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .sum::<usize>();
        (ops, cutter.join().unwrap())
    });
    // A final read after every thread finished must see the end state.
    run(&tester, THREADS, &counter, Op::Load);

    let tester = tester.into_inner().unwrap();
    let order = tester.serialized_history();
    assert!(
        order.is_some(),
        "not linearizable: {ops} operations, history {tester:?}"
    );
    assert_eq!(order.unwrap().len(), ops + 1);
    assert_eq!(cuts, CUTS);
    let url = server.metrics.as_ref().unwrap();
    let connections = metric(url, "crucial_connections_total");
    let replayed = metric(url, "crucial_replayed_total");
    eprintln!(
        "{ops} operations, {CUTS} connection cuts, {connections} connections, \
         {replayed} retries answered from the dedup table"
    );
    assert!(connections >= 2.0, "the client reconnected after cuts");
}

/// The checker itself catches a lost update: two increments that both saw 0.
#[test]
fn the_checker_rejects_a_history_with_a_lost_update() {
    let mut tester = Tester::new(Counter(0));
    tester.on_invoke(0, Op::FetchAdd(1)).unwrap();
    tester.on_invoke(1, Op::FetchAdd(1)).unwrap();
    tester.on_return(0, Ret::Previous(0)).unwrap();
    tester.on_return(1, Ret::Previous(0)).unwrap();
    assert!(tester.serialized_history().is_none());
    // And a stale read after a completed write.
    let mut tester = Tester::new(Counter(0));
    tester.on_invoke(0, Op::FetchAdd(5)).unwrap();
    tester.on_return(0, Ret::Previous(0)).unwrap();
    tester.on_invoke(1, Op::Load).unwrap();
    tester.on_return(1, Ret::Value(0)).unwrap();
    assert!(tester.serialized_history().is_none());
    // A double application of one retried increment is caught as well.
    let mut tester = Tester::new(Counter(0));
    tester.on_invoke(0, Op::FetchAdd(2)).unwrap();
    tester.on_return(0, Ret::Previous(0)).unwrap();
    tester.on_invoke(0, Op::Load).unwrap();
    tester.on_return(0, Ret::Value(4)).unwrap();
    assert!(tester.serialized_history().is_none());
}

/// Method shipping under the same faults: a bank's total never changes and
/// every transfer call is applied exactly once (the node counts them).
#[test]
fn a_bank_keeps_its_total_and_applies_each_transfer_once_while_connections_are_cut() {
    const ACCOUNTS: usize = 8;
    const EACH: i64 = 1_000;
    let server = ServerProcess::fixture_node(crucial_protocol::wire::DEFAULT_MAX_FRAME);
    let client = crucial::Config::new()
        .server(server.addr.clone())
        .retries(8)
        .connect()
        .unwrap();
    let bank = client.open::<Bank>("bank");
    bank.open(ACCOUNTS, EACH).unwrap();
    let done = AtomicBool::new(false);
    let calls: u64 = std::thread::scope(|s| {
        s.spawn(|| cut_connections(&client, 25, &done));
        let tellers: Vec<_> = (0..4u64)
            .map(|teller| {
                let (bank, done) = (bank.clone(), &done);
                s.spawn(move || {
                    let mut rng = Lcg(teller + 11);
                    let mut calls = 0u64;
                    while !(done.load(Ordering::Relaxed) && calls >= 20) {
                        let from = (rng.next() % ACCOUNTS as u64) as usize;
                        let to = (rng.next() % ACCOUNTS as u64) as usize;
                        bank.transfer(from, to, 1 + (rng.next() % 300) as i64)
                            .expect("transfer");
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        tellers.into_iter().map(|t| t.join().unwrap()).sum()
    });
    let (total, applied) = bank.audit().unwrap();
    assert_eq!(total, ACCOUNTS as i64 * EACH, "money was created or lost");
    assert_eq!(applied, calls, "{calls} transfer calls, {applied} applied");
}
