//! Lambda objects on a real node process: functions run as workflows
//! (transactions) next to their objects' entries; misuse is a typed error for
//! its caller only; time limits hold while the node keeps serving; retries
//! and restarts apply a workflow once, and acknowledged ones survive kill -9;
//! and concurrent transfers are strictly serializable, as a history checker
//! confirms.

mod common;

use common::bank::{Account, AccountRef, Audit, Board, Seen};
use common::{http_get, DataDir, RawConnection, ServerProcess};
use crucial::{Client, Error, ObjectId, RemoteError};
use crucial_protocol::codec;
use crucial_protocol::wire::{Invoke, Outcome, Request};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn account(client: &Client, key: &str) -> AccountRef {
    Account::at(key).with_client(client.clone())
}

/// The remote error of a call that must fail.
fn remote<T: std::fmt::Debug>(result: crucial::Result<T>) -> RemoteError {
    match result {
        Err(Error::Remote(error)) => error,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[test]
fn constructors_methods_and_static_functions_run_as_workflows() {
    let node = ServerProcess::fixture_node_with(&[]);
    let client = node.client();
    let (a, b) = (account(&client, "a"), account(&client, "b"));
    a.open("ann".into(), 100).expect("open a");
    b.open("bob".into(), 5).expect("open b");
    assert_eq!(a.owner().expect("owner"), "ann");
    let (from, to) = a.transfer(b.id().clone(), 30).expect("transfer");
    assert_eq!((from.balance, to.balance), (100, 5), "what each side was");
    assert_eq!((a.balance().unwrap(), b.balance().unwrap()), (70, 35));
    // A static function reads several objects in one workflow.
    let audit = a
        .audit(vec![a.id().clone(), b.id().clone()])
        .expect("audit");
    let total: i64 = audit.iter().map(|(_, s)| s.balance).sum();
    assert_eq!(total, 105);
    assert_eq!(audit[0].1.version, 1);
    // The workflow's clock is the wall clock; its random draws differ.
    let (time, x, y) = a.dice().expect("dice");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(time <= now && now - time < 60_000, "{time} vs {now}");
    assert_ne!(x, y);
    // The async twin and the type's own constructor.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(a.balance_async()).expect("async"), 70);
    // The node lists the type with its functions.
    let types = client.list_types().expect("types");
    let listed = types.iter().find(|t| t.name == "Account").expect("listed");
    assert!(
        listed.methods.iter().any(|m| m.signature
            == "protected write fn credit(&mut self, amount: i64) -> Result<Seen, TxError>"),
        "{:?}",
        listed.methods
    );
}

/// A map call on a node with no cluster: every object is here, the
/// results come back in key order, a range and a list select, and a listed
/// key with no object is `NoObject`.
#[test]
fn a_map_call_on_one_node_runs_over_the_selected_objects_in_key_order() {
    use crucial::store::Objects;
    let node = ServerProcess::fixture_node_with(&[]);
    let client = node.client();
    for (i, key) in ["e", "a", "d", "b", "c"].iter().enumerate() {
        account(&client, key)
            .open(format!("owner {key}"), 10 * (i as i64 + 1))
            .expect("open");
    }
    let all = Account::map(Objects::All)
        .with_client(client.clone())
        .balance()
        .expect("a map over every account");
    let keys: Vec<&str> = all.iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["a", "b", "c", "d", "e"]);
    assert_eq!(all.get("e"), Some(&10));
    assert_eq!(all.reduce(0, |sum, b| sum + b), 150);
    let range = Objects::Range {
        from: "b".into(),
        to: Some("d".into()),
    };
    let some = Account::map(range)
        .with_client(client.clone())
        .owner()
        .expect("a range");
    let owners: Vec<String> = some.into_iter().map(|(_, owner)| owner).collect();
    assert_eq!(owners, ["owner b", "owner c"]);
    let missing = Account::map(Objects::Keys(vec!["c".into(), "zz".into()]))
        .with_client(client.clone())
        .balance();
    assert!(
        matches!(remote(missing), RemoteError::NoObject { .. }),
        "a listed key with no object"
    );
}

#[test]
fn each_misuse_is_a_typed_error_for_that_caller_only() {
    let node = ServerProcess::fixture_node_with(&[]);
    let client = node.client();
    let a = account(&client, "a");
    a.open("ann".into(), 10).expect("open");
    // A constructor makes its object once.
    assert_eq!(
        remote(a.open("again".into(), 99)),
        RemoteError::ObjectExists {
            object: "crucial-server/Account/a".into()
        }
    );
    assert_eq!(
        a.owner().unwrap(),
        "ann",
        "the failed constructor wrote nothing"
    );
    // A method on an object no constructor made.
    assert_eq!(
        remote(account(&client, "ghost").balance()),
        RemoteError::NoObject {
            object: "crucial-server/Account/ghost".into()
        }
    );
    // A child call on a missing object fails the whole workflow: nothing of
    // the parent's part is written either.
    assert!(matches!(
        remote(a.transfer(ObjectId::new("crucial-server", "Account", "ghost"), 1)),
        RemoteError::NoObject { .. }
    ));
    assert_eq!(a.balance().unwrap(), 10);
    // Protected functions are for other functions, not for clients.
    assert_eq!(
        remote(a.credit(1_000)),
        RemoteError::Protected {
            type_name: "Account".into(),
            function: "credit".into()
        }
    );
    // A panic aborts the transaction and reaches the caller.
    match remote(a.set_then_panic(-7)) {
        RemoteError::Panicked { message, key, .. } => {
            assert_eq!(key, "a");
            assert!(message.contains("boom after setting -7"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        a.balance().unwrap(),
        10,
        "nothing of the panicking workflow"
    );
    // A function's own error aborts its workflow with its message.
    account(&client, "b").open("bob".into(), 0).expect("open b");
    match remote(account(&client, "b").transfer(a.id().clone(), 5)) {
        RemoteError::WorkflowFailed { message, .. } => {
            assert!(message.contains("insufficient funds"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Another application's object.
    let foreign =
        Account::at(ObjectId::new("elsewhere", "Account", "a")).with_client(client.clone());
    assert!(matches!(
        remote(foreign.balance()),
        RemoteError::WrongApplication { .. }
    ));
    // A handle opened with another type's id fails before anything is sent.
    let wrong =
        Account::at(ObjectId::new("crucial-server", "Board", "a")).with_client(client.clone());
    assert!(matches!(wrong.balance(), Err(Error::Object(_))));
    // Arguments that do not decode as the function's.
    let fingerprint = AccountRef::__CRUCIAL_FN_balance.fingerprint;
    // A signature the node's build does not have for that function.
    let mismatched = crucial::__private::testing::roundtrip_with_id(
        &client,
        0,
        1 << 40,
        &Request::Invoke(Invoke {
            application: "crucial-server",
            type_name: "Account",
            key: Some("a"),
            function: "owner",
            fingerprint,
            args: &[],
        })
        .encode()
        .unwrap(),
    );
    assert!(matches!(
        mismatched,
        Err(Error::Remote(RemoteError::IncompatibleMethod { .. }))
    ));
    let transfer = AccountRef::__CRUCIAL_FN_transfer.fingerprint;
    let garbage = crucial::__private::testing::roundtrip_with_id(
        &client,
        0,
        (1 << 40) + 1,
        &Request::Invoke(Invoke {
            application: "crucial-server",
            type_name: "Account",
            key: Some("a"),
            function: "transfer",
            fingerprint: transfer,
            args: &[0xFF],
        })
        .encode()
        .unwrap(),
    );
    assert!(matches!(
        garbage,
        Err(Error::Remote(RemoteError::BadArguments { .. }))
    ));
    // After all of that, the node serves everyone as before.
    assert_eq!(a.balance().unwrap(), 10);
    // The node lists the objects constructors made, not those only looked for.
    let listed: Vec<(String, String)> = client
        .list_objects()
        .expect("list")
        .into_iter()
        .filter(|o| o.type_name == "Account")
        .map(|o| (o.type_name, o.key))
        .collect();
    assert_eq!(
        listed,
        [
            ("Account".to_string(), "a".to_string()),
            ("Account".into(), "b".into())
        ]
    );
}

#[test]
fn a_function_past_its_time_limit_is_aborted_while_the_node_keeps_serving() {
    let node = ServerProcess::fixture_node_with(&["--metrics", "127.0.0.1:0"]);
    let client = node.client();
    let a = account(&client, "a");
    a.open("ann".into(), 1).expect("open");
    // A function that touches storage stops at its next access.
    assert!(matches!(
        remote(a.read_forever()),
        RemoteError::WorkflowTimeout { limit_ms: 100, .. }
    ));
    // A child call runs under its own, shorter, limit.
    assert!(matches!(
        remote(a.call_a_slow_child()),
        RemoteError::WorkflowTimeout { .. }
    ));
    // One that spins in native code cannot be stopped: the watchdog answers
    // at the limit, and the node serves others meanwhile.
    let spinner = {
        let a = a.clone();
        std::thread::spawn(move || a.spin(3_000))
    };
    std::thread::sleep(Duration::from_millis(400));
    let metrics = node.metrics.clone().expect("metrics");
    let (_, page) = http_get(&metrics);
    assert!(
        page.contains("crucial_runaway_functions 1"),
        "the spinning function is counted:\n{page}"
    );
    assert!(
        page.contains("crucial_workflow_threads 3"),
        "its thread was replaced in the pool (2 workers on this node):\n{page}"
    );
    assert_eq!(a.balance().expect("served meanwhile"), 1);
    assert!(matches!(
        remote(spinner.join().unwrap()),
        RemoteError::WorkflowTimeout { limit_ms: 100, .. }
    ));
    let (_, page) = http_get(&metrics);
    assert!(
        page.contains("crucial_calls_total{type=\"Account\",method=\"spin\"} 1"),
        "{page}"
    );
    assert!(
        page.contains("crucial_workflows_timed_out_total 3"),
        "{page}"
    );
}

#[test]
fn a_retried_workflow_is_applied_once_even_across_kill_9() {
    let dir = DataDir::new("lambda-dedup");
    let mut node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let client = node.client();
    account(&client, "a")
        .open("ann".into(), 100)
        .expect("open a");
    account(&client, "b").open("bob".into(), 0).expect("open b");
    let transfer = |conn: &mut RawConnection, id: u64| -> Outcome {
        let args =
            codec::encode(&(ObjectId::new("crucial-server", "Account", "b"), 10i64)).unwrap();
        let request = Request::Invoke(Invoke {
            application: "crucial-server",
            type_name: "Account",
            key: Some("a"),
            function: "transfer",
            fingerprint: AccountRef::__CRUCIAL_FN_transfer.fingerprint,
            args: &args,
        });
        conn.request(id, &request.encode().unwrap())
    };
    let seen =
        |outcome: Outcome| -> (Seen, Seen) { codec::decode(&outcome.expect("commits")).unwrap() };
    let client_id = 0xBA2C;
    let mut conn = RawConnection::open(&node.addr, client_id);
    let first = seen(transfer(&mut conn, 1));
    assert_eq!(
        seen(transfer(&mut conn, 1)),
        first,
        "answered from the dedup table"
    );
    let second = seen(transfer(&mut conn, 2));
    node.kill();

    let node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let client = node.client();
    assert_eq!(
        (
            account(&client, "a").balance().unwrap(),
            account(&client, "b").balance().unwrap()
        ),
        (80, 20),
        "both committed transfers are back"
    );
    let mut conn = RawConnection::open(&node.addr, client_id);
    assert_eq!(
        seen(transfer(&mut conn, 2)),
        second,
        "the reply came back from disk"
    );
    assert_eq!(account(&client, "a").balance().unwrap(), 80, "applied once");
}

/// One workflow a client saw: when it was sent and answered, and what it read.
#[derive(Debug, Clone)]
struct Observed {
    start: Instant,
    end: Instant,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    /// A transfer: the versions it read (and so wrote over) per account.
    Transfer(Vec<(String, u64)>),
    /// An audit: the versions it read per account.
    Audit(Vec<(String, u64)>),
}

#[test]
fn concurrent_transfers_are_strictly_serializable() {
    const ACCOUNTS: usize = 6;
    const THREADS: usize = 8;
    const PER_THREAD: usize = 150;
    let node = ServerProcess::fixture_node_with(&["--metrics", "127.0.0.1:0"]);
    let client = node.client();
    let ids: Vec<ObjectId> = (0..ACCOUNTS)
        .map(|i| {
            let a = account(&client, &format!("acct-{i}"));
            a.open(format!("owner {i}"), 1_000).expect("open");
            a.id().clone()
        })
        .collect();
    let history = Arc::new(Mutex::new(Vec::<Observed>::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, ids, history) = (client.clone(), ids.clone(), Arc::clone(&history));
            std::thread::spawn(move || {
                let mut rng = 0x9E37_79B9u64.wrapping_mul(t as u64 + 1);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for _ in 0..PER_THREAD {
                    let from = next() as usize % ACCOUNTS;
                    let to = (from + 1 + next() as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                    let start = Instant::now();
                    let op = if next() % 5 == 0 {
                        let audit: Audit = Account::at(&ids[0])
                            .with_client(client.clone())
                            .audit(ids.clone())
                            .expect("an audit commits");
                        let total: i64 = audit.iter().map(|(_, s)| s.balance).sum();
                        assert_eq!(total, 1_000 * ACCOUNTS as i64, "an audit sees one state");
                        Op::Audit(
                            audit
                                .iter()
                                .map(|(id, s)| (id.key.clone(), s.version))
                                .collect(),
                        )
                    } else {
                        let amount = (next() % 50) as i64 + 1;
                        match Account::at(&ids[from])
                            .with_client(client.clone())
                            .transfer(ids[to].clone(), amount)
                        {
                            Ok((f, d)) => Op::Transfer(vec![
                                (ids[from].key.clone(), f.version),
                                (ids[to].key.clone(), d.version),
                            ]),
                            // Insufficient funds: aborted, wrote nothing.
                            Err(Error::Remote(RemoteError::WorkflowFailed { .. })) => continue,
                            Err(e) => panic!("transfer: {e}"),
                        }
                    };
                    let end = Instant::now();
                    history.lock().unwrap().push(Observed { start, end, op });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client thread");
    }
    let history = history.lock().unwrap().clone();
    let total: i64 = ids
        .iter()
        .map(|id| {
            Account::at(id)
                .with_client(client.clone())
                .balance()
                .unwrap()
        })
        .sum();
    assert_eq!(
        total,
        1_000 * ACCOUNTS as i64,
        "money is neither made nor lost"
    );
    let transfers = history
        .iter()
        .filter(|o| matches!(o.op, Op::Transfer(_)))
        .count();
    assert!(
        transfers > THREADS * PER_THREAD / 2,
        "{transfers} transfers committed"
    );
    check_strictly_serializable(&history);
    let (_, page) = http_get(node.metrics.as_ref().expect("metrics"));
    let metric = |name: &str| -> u64 {
        page.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} in\n{page}"))
    };
    eprintln!(
        "{} workflows committed in {} executions",
        metric("crucial_workflows_committed_total "),
        metric("crucial_workflow_executions_total ")
    );
}

/// Checks that the committed workflows have a serial order that (1) gives
/// every workflow the versions it read — the writer of version `v + 1` of an
/// account comes after every reader of version `v`, and after the writer of
/// `v` — and (2) respects real time: a workflow answered before another was
/// sent comes first. Panics with a cycle if there is none.
fn check_strictly_serializable(history: &[Observed]) {
    // Per account, who wrote over each version, and who read it.
    let mut writer_of: HashMap<(&str, u64), usize> = HashMap::new();
    let mut readers_of: HashMap<(&str, u64), Vec<usize>> = HashMap::new();
    for (i, o) in history.iter().enumerate() {
        match &o.op {
            Op::Transfer(seen) => {
                for (key, version) in seen {
                    let previous = writer_of.insert((key.as_str(), *version), i);
                    assert!(
                        previous.is_none(),
                        "two transfers wrote over version {version} of {key}: a lost update"
                    );
                }
            }
            Op::Audit(seen) => {
                for (key, version) in seen {
                    readers_of
                        .entry((key.as_str(), *version))
                        .or_default()
                        .push(i);
                }
            }
        }
    }
    let n = history.len();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (&(key, version), &w) in &writer_of {
        // The writer of the version this one read comes first.
        if let Some(version) = version.checked_sub(1) {
            if let Some(&before) = writer_of.get(&(key, version)) {
                edges[before].push(w);
            }
        }
        // Readers of the version it overwrote come before it.
        for &r in readers_of.get(&(key, version)).into_iter().flatten() {
            edges[r].push(w);
        }
    }
    for (&(key, version), readers) in &readers_of {
        // A reader comes after the writer of what it read.
        if let Some(version) = version.checked_sub(1) {
            if let Some(&w) = writer_of.get(&(key, version)) {
                for &r in readers {
                    edges[w].push(r);
                }
            }
        }
    }
    // Real time: sorted by end, each workflow precedes those sent after it ended.
    let mut by_start: Vec<usize> = (0..n).collect();
    by_start.sort_by_key(|&i| history[i].start);
    for i in 0..n {
        let first_after = by_start.partition_point(|&j| history[j].start <= history[i].end);
        // One edge to the earliest one is enough when chained below, but the
        // set is small: add them all.
        for &j in &by_start[first_after..] {
            edges[i].push(j);
        }
    }
    // A topological order exists iff there is no cycle.
    let mut indegree = vec![0usize; n];
    for targets in &edges {
        for &t in targets {
            indegree[t] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut ordered = 0;
    while let Some(i) = ready.pop() {
        ordered += 1;
        for &t in &edges[i] {
            indegree[t] -= 1;
            if indegree[t] == 0 {
                ready.push(t);
            }
        }
    }
    assert_eq!(
        ordered,
        n,
        "no serial order respects what the workflows read and real time: {} of {n} in a cycle",
        n - ordered
    );
}

#[test]
fn writers_of_one_big_object_all_commit_and_the_counts_add_up() {
    let node = ServerProcess::fixture_node_with(&[]);
    let client = node.client();
    let board = Board::at("board").with_client(client.clone());
    board.create().expect("create");
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let board = board.clone();
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    board.bump(t * 1000 + i % 10).expect("bump");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let counters = board.counters().expect("counters");
    assert_eq!(counters.len(), 40);
    assert!(counters.iter().all(|(_, n)| *n == 20), "{counters:?}");
}

#[test]
fn the_checker_refuses_a_lost_update_and_a_stale_read() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let transfer = |start, end, seen: &[(&str, u64)]| Observed {
        start: at(start),
        end: at(end),
        op: Op::Transfer(seen.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
    };
    let audit = |start, end, seen: &[(&str, u64)]| Observed {
        start: at(start),
        end: at(end),
        op: Op::Audit(seen.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
    };
    // A serial history passes.
    check_strictly_serializable(&[
        transfer(0, 1, &[("a", 0), ("b", 0)]),
        audit(2, 3, &[("a", 1), ("b", 1)]),
        transfer(4, 5, &[("b", 1), ("c", 0)]),
    ]);
    // Two transfers that both overwrote version 0 of `a`.
    let lost = std::panic::catch_unwind(|| {
        check_strictly_serializable(&[
            transfer(0, 1, &[("a", 0), ("b", 0)]),
            transfer(0, 1, &[("a", 0), ("c", 0)]),
        ])
    });
    assert!(lost.is_err(), "a lost update passed");
    // An audit that began after a transfer ended but read what it overwrote.
    let stale = std::panic::catch_unwind(|| {
        check_strictly_serializable(&[
            transfer(0, 1, &[("a", 0), ("b", 0)]),
            audit(2, 3, &[("a", 0), ("b", 1)]),
        ])
    });
    assert!(stale.is_err(), "a stale read passed");
}

#[test]
fn acknowledged_transfers_survive_kill_9_whole_and_unacknowledged_ones_are_whole_or_absent() {
    const ACCOUNTS: usize = 6;
    const CALLERS: usize = 4;
    let dir = DataDir::new("lambda-kill");
    let mut node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let client = node.client();
    let ids: Vec<ObjectId> = (0..ACCOUNTS)
        .map(|i| {
            let a = account(&client, &format!("k{i}"));
            a.open(format!("owner {i}"), 1_000).expect("open");
            a.id().clone()
        })
        .collect();
    // Each caller transfers until the node dies: what was acknowledged, and
    // the one transfer in flight when it died (its fate unknown).
    type Transfer = (usize, usize, i64);
    type Caller = (Vec<Transfer>, Option<Transfer>);
    let results: Arc<Mutex<Vec<Caller>>> = Arc::default();
    let threads: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let (client, ids, results) = (client.clone(), ids.clone(), Arc::clone(&results));
            std::thread::spawn(move || {
                let (mut acked, mut in_flight) = (Vec::new(), None);
                for i in 0.. {
                    let (from, to) = ((caller + i) % ACCOUNTS, (caller + 2 * i + 1) % ACCOUNTS);
                    if from == to {
                        continue;
                    }
                    let amount = (i % 7) as i64 + 1;
                    match Account::at(&ids[from])
                        .with_client(client.clone())
                        .transfer(ids[to].clone(), amount)
                    {
                        Ok(_) => acked.push((from, to, amount)),
                        Err(Error::Remote(RemoteError::WorkflowFailed { .. })) => {} // insufficient funds
                        Err(_) => {
                            in_flight = Some((from, to, amount)); // the node is gone
                            break;
                        }
                    }
                }
                results.lock().unwrap().push((acked, in_flight));
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    node.kill();
    for t in threads {
        t.join().expect("a caller");
    }
    let node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let client = node.client();
    let balances: Vec<i64> = ids
        .iter()
        .map(|id| {
            Account::at(id)
                .with_client(client.clone())
                .balance()
                .expect("recovered")
        })
        .collect();
    assert_eq!(
        balances.iter().sum::<i64>(),
        1_000 * ACCOUNTS as i64,
        "money is whole"
    );
    let results = results.lock().unwrap().clone();
    let acked: usize = results.iter().map(|(a, _)| a.len()).sum();
    assert!(acked > 50, "{acked} transfers acknowledged before the kill");
    // The balances are the acknowledged transfers plus some subset of the
    // in-flight ones, each whole: find it.
    let mut expected = vec![1_000i64; ACCOUNTS];
    for (from, to, amount) in results.iter().flat_map(|(a, _)| a) {
        expected[*from] -= amount;
        expected[*to] += amount;
    }
    let unknown: Vec<Transfer> = results.iter().filter_map(|(_, f)| *f).collect();
    let explained = (0..1u32 << unknown.len()).any(|subset| {
        let mut e = expected.clone();
        for (bit, (from, to, amount)) in unknown.iter().enumerate() {
            if subset & (1 << bit) != 0 {
                e[*from] -= amount;
                e[*to] += amount;
            }
        }
        e == balances
    });
    eprintln!(
        "{acked} transfers acknowledged before kill -9, {} in flight; balances {balances:?}",
        unknown.len()
    );
    assert!(
        explained,
        "balances {balances:?} are not the {acked} acknowledged transfers ({expected:?}) plus whole in-flight ones {unknown:?}"
    );
}
