//! Persistent objects on a node with a data directory, against real node
//! processes killed with SIGKILL: acknowledged writes survive, a retry after
//! the restart is answered from the recovered dedup table, and an object
//! written by a build whose type had another shape is reported, not decoded.

mod common;

use common::fixtures::{DurableBank, Ledger};
use common::shaped::Shaped;
use common::{DataDir, RawConnection, ServerProcess};
use crucial::__private::registry::registry;
use crucial::{Error, RemoteError};
use crucial_protocol::codec;
use crucial_protocol::wire::{Call, ObjectRef, Outcome, Request};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const CALLERS: usize = 8;
const ACCOUNTS: usize = 16;

#[test]
fn acknowledged_transfers_survive_kill_9_and_none_is_applied_twice() {
    let dir = DataDir::new("bank");
    let mut node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let client = node.client();
    let bank = client.open::<DurableBank>("bank");
    bank.open(ACCOUNTS, 1000, CALLERS).expect("open");

    // Callers transfer until the node dies; each counts what was acknowledged
    // and what it attempted.
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..CALLERS).map(|_| AtomicU64::new(0)).collect());
    let attempted: Arc<Vec<AtomicU64>> =
        Arc::new((0..CALLERS).map(|_| AtomicU64::new(0)).collect());
    let running = Arc::new(AtomicBool::new(true));
    let threads: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let bank = bank.clone();
            let (acked, attempted, running) = (
                Arc::clone(&acked),
                Arc::clone(&attempted),
                Arc::clone(&running),
            );
            std::thread::spawn(move || {
                let mut i = caller;
                while running.load(Ordering::Relaxed) {
                    let (from, to) = (i % ACCOUNTS, (i * 7 + 3) % ACCOUNTS);
                    attempted[caller].fetch_add(1, Ordering::SeqCst);
                    match bank.transfer(caller, from, to, (i % 50) as i64) {
                        Ok(()) => acked[caller].fetch_add(1, Ordering::SeqCst),
                        Err(_) => break, // the node is gone
                    };
                    i += CALLERS;
                }
            })
        })
        .collect();
    common::wait_until("a few hundred transfers are acknowledged", || {
        acked.iter().map(|a| a.load(Ordering::SeqCst)).sum::<u64>() >= 400
    });
    node.kill(); // SIGKILL, mid-load
    running.store(false, Ordering::Relaxed);
    for t in threads {
        t.join().expect("caller");
    }

    let node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let client = node.client();
    let (total, applied) = client.open::<DurableBank>("bank").audit().expect("audit");
    assert_eq!(total, ACCOUNTS as i64 * 1000, "money was created or lost");
    for caller in 0..CALLERS {
        let (acked, attempted) = (
            acked[caller].load(Ordering::SeqCst),
            attempted[caller].load(Ordering::SeqCst),
        );
        // Every acknowledged transfer is there; the one in flight at the kill
        // may or may not be; nothing is there twice.
        assert!(
            applied[caller] >= acked && applied[caller] <= attempted,
            "caller {caller}: {} applied, {acked} acknowledged, {attempted} attempted",
            applied[caller]
        );
    }
}

/// `Shaped::bump` on `key`, as request `id` of the connection.
fn bump(conn: &mut RawConnection, id: u64, key: &str) -> Outcome {
    let fingerprint = registry()
        .shared_type("Shaped")
        .and_then(|t| t.method("bump"))
        .expect("Shaped::bump is registered")
        .id
        .fingerprint;
    let call = Request::Call(Call {
        object: ObjectRef {
            type_name: "Shaped",
            key,
        },
        method: "bump",
        fingerprint,
        args: &codec::encode(&()).expect("args"),
        timeout_ms: 0,
    });
    conn.request(id, &call.encode().expect("call"))
}

fn count(outcome: Outcome) -> i64 {
    codec::decode::<i64>(&outcome.expect("the call succeeds")).expect("an i64")
}

#[test]
fn a_retry_after_kill_9_gets_the_original_reply_and_is_applied_once() {
    let dir = DataDir::new("dedup");
    let mut node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let client_id = 0xC0FFEE;
    let mut conn = RawConnection::open(&node.addr, client_id);
    assert_eq!(count(bump(&mut conn, 1, "c")), 1);
    assert_eq!(count(bump(&mut conn, 2, "c")), 2);
    node.kill();

    let node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let mut conn = RawConnection::open(&node.addr, client_id);
    // The client did not see the reply to request 2 (say) and re-sends it.
    assert_eq!(
        count(bump(&mut conn, 2, "c")),
        2,
        "answered from the recovered dedup table"
    );
    assert_eq!(
        count(bump(&mut conn, 3, "c")),
        3,
        "request 2 was applied once"
    );
    // Another client's request 2 is a different request.
    let mut other = RawConnection::open(&node.addr, client_id + 1);
    assert_eq!(count(bump(&mut other, 2, "c")), 4);
}

#[test]
fn an_object_written_by_another_shape_is_reported_and_the_node_serves_the_rest() {
    let dir = DataDir::new("shape");
    {
        let mut node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
        let client = node.client();
        assert_eq!(client.open::<Shaped>("old").bump().expect("bump"), 1);
        node.kill();
    }
    let node = ServerProcess::fixture_node_v2(&dir.0);
    let client = node.client();
    // The v2 `Shaped` proxy has the same method signature, so the call is
    // shipped; the node refuses to decode the old state.
    match client.open::<Shaped>("old").bump() {
        Err(Error::Remote(RemoteError::Unreadable {
            type_name,
            key,
            reason,
        })) => {
            assert_eq!((type_name.as_str(), key.as_str()), ("Shaped", "old"));
            assert!(reason.contains("other fields"), "{reason}");
        }
        other => panic!("expected Unreadable, got {other:?}"),
    }
    let error = client.open::<Shaped>("old").bump().unwrap_err().to_string();
    assert!(error.contains("delete the object"), "{error}");
    // Other objects, of the same type or another, are served.
    assert_eq!(
        client.open::<Shaped>("new").bump().expect("a fresh object"),
        1
    );
    let bank = client.open::<DurableBank>("b");
    bank.open(2, 5, 1).expect("open");
    assert_eq!(bank.audit().expect("audit").0, 10);
    // Deleting the unreadable object starts it afresh, on disk too.
    assert!(client.delete("Shaped", "old").expect("delete"));
    assert_eq!(client.open::<Shaped>("old").bump().expect("afresh"), 1);
}

#[test]
fn a_lambda_type_stored_with_other_fields_is_refused_and_one_with_a_field_added_is_served() {
    use common::shaped::{Gauge, Meter};
    let dir = DataDir::new("lambda-shape");
    {
        let mut node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
        let client = node.client();
        let gauge = Gauge::at("g").with_client(client.clone());
        gauge.create().expect("create");
        gauge.touch().expect("touch");
        let meter = Meter::at("m").with_client(client.clone());
        meter.create().expect("create");
        assert_eq!(meter.tick().expect("tick"), 1);
        node.kill();
    }
    // The same data directory under a build whose Gauge stores a String and
    // whose Meter has one more field.
    let node = ServerProcess::fixture_node_v2(&dir.0);
    let client = node.client();
    match Gauge::at("g").with_client(client.clone()).touch() {
        Err(Error::Remote(RemoteError::Unreadable {
            type_name, reason, ..
        })) => {
            assert_eq!(type_name, "Gauge");
            assert!(
                reason.contains("level: Cell<i64>") && reason.contains("level: Cell<String>"),
                "{reason}"
            );
        }
        other => panic!("expected Unreadable, got {other:?}"),
    }
    // A field added at the end: the stored count is read, the new field is empty.
    let meter = Meter::at("m").with_client(client.clone());
    assert_eq!(meter.tick().expect("a Meter with a field added"), 2);
    // The node's shape records are not listed as objects.
    let objects = client.list_objects().expect("list");
    assert!(
        objects.iter().all(|o| o.type_name != "__shape"),
        "{objects:?}"
    );
}

/// Starts `fixture-node` on `dir`; `Err(stderr)` if it exits instead of listening.
fn try_start(dir: &DataDir) -> Result<ServerProcess, String> {
    ServerProcess::try_start(common::fixture_command(
        "fixture-node",
        &["--data-dir", dir.arg()],
    ))
}

/// Bumps `Shaped` "c" to `n` on a fresh node on `dir`, then kills the node.
fn bumped_then_killed(dir: &DataDir, n: i64) {
    let mut node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let client = node.client();
    let counter = client.open::<Shaped>("c");
    for i in 1..=n {
        assert_eq!(counter.bump().expect("bump"), i);
    }
    node.kill();
}

/// The journal files of a data directory, largest first.
fn journals(dir: &DataDir) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .expect("data dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jnl"))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).map_or(0, |m| m.len())));
    assert!(!found.is_empty(), "no journal in {}", dir.0.display());
    found
}

/// The journal's length up to its last non-zero byte (the engine may
/// preallocate the file with zeros past what it wrote).
fn written_length(journal: &std::path::Path) -> u64 {
    let bytes = std::fs::read(journal).expect("journal");
    let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
    assert!(used > 1000, "the journal holds the writes: {used} bytes");
    used as u64
}

/// After damage, a node either refuses to start and names the data directory,
/// or serves a state the object really had (never garbage), and keeps going.
fn refuses_or_serves_a_past_state(dir: &DataDir, written: i64) {
    match try_start(dir) {
        Err(stderr) => {
            eprintln!("damaged data directory refused: {stderr}");
            assert!(
                stderr.contains(dir.arg()),
                "a refusal must name the data directory: {stderr}"
            )
        }
        Ok(node) => {
            let client = node.client();
            let now = client
                .open::<Shaped>("c")
                .bump()
                .expect("the object is served");
            eprintln!("damaged data directory recovered: {written} bumps written, next is {now}");
            assert!(
                (1..=written + 1).contains(&now),
                "after {written} bumps the next is {now}: not a state the object had"
            );
        }
    }
}

#[test]
fn a_truncated_journal_recovers_up_to_its_last_intact_record() {
    let dir = DataDir::new("truncated");
    bumped_then_killed(&dir, 200);
    let journal = &journals(&dir)[0];
    let used = written_length(journal);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(journal)
        .expect("open journal");
    file.set_len(used - used / 3).expect("truncate");
    drop(file);
    refuses_or_serves_a_past_state(&dir, 200);
}

#[test]
fn a_corrupted_journal_is_refused_or_cut_at_the_damage() {
    let dir = DataDir::new("corrupted");
    bumped_then_killed(&dir, 200);
    let journal = &journals(&dir)[0];
    let mut bytes = std::fs::read(journal).expect("journal");
    let middle = written_length(journal) as usize / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xA5;
    }
    std::fs::write(journal, bytes).expect("write journal");
    refuses_or_serves_a_past_state(&dir, 200);
}

#[test]
fn a_large_object_logs_its_calls_and_replays_them_after_kill_9() {
    const ENTRIES: u64 = 5000;
    const PUTS: u64 = 3000;
    let dir = DataDir::new("ledger");
    let mut node =
        ServerProcess::fixture_node_with(&["--data-dir", dir.arg(), "--metrics", "127.0.0.1:0"]);
    let client = node.client();
    let ledger = client.open::<Ledger>("ledger");
    ledger.fill(ENTRIES).expect("fill");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                for k in (t..PUTS).step_by(4) {
                    assert_eq!(ledger.put(k, k + 1).expect("put"), Some(0));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("putter");
    }
    let (_, page) = common::http_get(node.metrics.as_ref().expect("metrics"));
    let logged = common::sample(&page, "crucial_calls_logged_total");
    let snapshots = common::sample(&page, "crucial_snapshots_written_total");
    println!("{PUTS} puts on {ENTRIES} entries: {logged} calls logged, {snapshots} snapshots");
    // The state (~20 KB) is rewritten about once per its size in logged calls
    // (~6 bytes each), not on every put.
    assert!(logged >= (PUTS * 9 / 10) as f64, "{logged} logged");
    assert!((2.0..=5.0).contains(&snapshots), "{snapshots} snapshots");
    node.kill();

    let node = ServerProcess::fixture_node_with(&["--data-dir", dir.arg()]);
    let ledger = node.client().open::<Ledger>("ledger");
    let expected: u64 = (0..PUTS).map(|k| k + 1).sum();
    assert_eq!(ledger.sum().expect("sum"), (ENTRIES as usize, expected));
    for k in [0, 1, PUTS / 2, PUTS - 1, PUTS] {
        let want = if k < PUTS { k + 1 } else { 0 };
        assert_eq!(ledger.get(k).expect("get"), Some(want), "entry {k}");
    }
}
