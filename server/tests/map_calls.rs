//! Map calls on a cluster of real node processes: one function run on every
//! selected lambda object, as one workflow, each node running it on the
//! objects it holds (`lambda_objects/map.rs`, `TxnOp::Map`).

mod common;

use common::bank::{Seen, SpreadAccount};
use common::cluster::{connect, listed_per_node, wait_for_views, Etcd};
use common::ServerProcess;
use crucial::store::{Mapped, Objects};
use crucial::ObjectId;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn three(etcd: &Etcd, name: &str, flags: &[&str]) -> (Vec<ServerProcess>, Vec<String>) {
    let nodes: Vec<ServerProcess> = (0..3).map(|_| etcd.node(name, flags)).collect();
    wait_for_views(&nodes.iter().collect::<Vec<_>>(), 3);
    let addrs = nodes.iter().map(|n| n.addr.clone()).collect();
    (nodes, addrs)
}

/// Runs `each(i)` for `0..n` on four threads.
fn on_four_threads(n: usize, each: impl Fn(usize) + Send + Sync + 'static) {
    let each = Arc::new(each);
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (each, next) = (Arc::clone(&each), Arc::clone(&next));
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                each(i);
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a worker");
    }
}

const OBJECTS: usize = 10_000;

fn key(i: usize) -> String {
    format!("m-{i:05}")
}

#[test]
fn a_map_over_ten_thousand_objects_on_three_nodes_matches_a_sequential_read() {
    let etcd = Etcd::start("map-10k");
    let (nodes, addrs) = three(&etcd, "map-10k", &[]);
    let client = connect(&addrs);
    {
        let client = client.clone();
        on_four_threads(OBJECTS, move |i| {
            SpreadAccount::at(key(i))
                .with_client(client.clone())
                .open(i as i64)
                .expect("open");
        });
    }
    let counts = listed_per_node(&nodes[0], "SpreadAccount");
    eprintln!("objects per node: {counts:?}");
    assert_eq!(counts.len(), 3, "every node holds some");
    assert_eq!(counts.iter().sum::<usize>(), OBJECTS);

    let started = std::time::Instant::now();
    let mapped: Mapped<Seen> = SpreadAccount::map(Objects::All)
        .with_client(client.clone())
        .seen()
        .expect("a map over every object");
    eprintln!("map over {} objects: {:?}", mapped.len(), started.elapsed());
    assert_eq!(mapped.len(), OBJECTS);

    // The same, read one object at a time.
    let sequential: Arc<std::sync::Mutex<Vec<(String, Seen)>>> = Arc::default();
    {
        let (client, sequential) = (client.clone(), Arc::clone(&sequential));
        on_four_threads(OBJECTS, move |i| {
            let seen = SpreadAccount::at(key(i))
                .with_client(client.clone())
                .seen()
                .expect("a read");
            sequential.lock().unwrap().push((key(i), seen));
        });
    }
    let sequential = Mapped::from_pairs(std::mem::take(&mut *sequential.lock().unwrap()));
    assert_eq!(
        mapped, sequential,
        "the map returns what one read per object returns"
    );
    let total = mapped.reduce(0i64, |sum, seen| sum + seen.balance);
    assert_eq!(total, (0..OBJECTS as i64).sum::<i64>());

    // A key range, and a list of keys spread over the nodes.
    let range = SpreadAccount::map(Objects::Range {
        from: key(2_000),
        to: Some(key(3_000)),
    })
    .with_client(client.clone())
    .seen()
    .expect("a map over a range");
    assert_eq!(range.len(), 1_000);
    assert!(range.iter().all(|(k, seen)| k >= key(2_000).as_str()
        && k < key(3_000).as_str()
        && seen.balance == k[2..].parse::<i64>().unwrap()));
    let keys: Vec<String> = [7, 70, 700, 7_000, 9_999].iter().map(|&i| key(i)).collect();
    let listed = SpreadAccount::map(Objects::Keys(keys.clone()))
        .with_client(client.clone())
        .seen()
        .expect("a map over a list");
    assert_eq!(
        listed
            .iter()
            .map(|(k, s)| (k.to_string(), s.balance))
            .collect::<Vec<_>>(),
        keys.iter()
            .map(|k| (k.clone(), k[2..].parse::<i64>().unwrap()))
            .collect::<Vec<_>>()
    );

    // Misuse: a key with no object, a protected function, a static one.
    let missing = SpreadAccount::map(Objects::Keys(vec![key(1), "nobody".into()]))
        .with_client(client.clone())
        .seen();
    assert!(
        matches!(
            missing,
            Err(crucial::Error::Remote(
                crucial::RemoteError::NoObject { .. }
            ))
        ),
        "{missing:?}"
    );
    let protected = SpreadAccount::map(Objects::All)
        .with_client(client.clone())
        .credit(1);
    assert!(
        matches!(
            protected,
            Err(crucial::Error::Remote(
                crucial::RemoteError::Protected { .. }
            ))
        ),
        "{protected:?}"
    );
    eprintln!("{:?}", client.workflow_stats().expect("stats"));
}

/// Audits by map call, back to back, while transfers between accounts of
/// every node run: each map is one transaction, so each sees the bank's
/// total; and neither side starves the other (a map that keeps losing pins
/// what it reads, a transfer that keeps losing passes those pins).
fn maps_see_the_total_while_transfers_run(name: &str, flags: &[&str]) {
    const ACCOUNTS: usize = 12;
    let etcd = Etcd::start(name);
    let (_nodes, addrs) = three(&etcd, name, flags);
    let client = connect(&addrs);
    let ids: Vec<ObjectId> = (0..ACCOUNTS)
        .map(|i| SpreadAccount::at(format!("acct-{i}")).id().clone())
        .collect();
    for id in &ids {
        SpreadAccount::at(id.clone())
            .with_client(client.clone())
            .open(1000)
            .expect("open");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..3u64)
        .map(|caller| {
            let (addrs, ids, stop) = (addrs.clone(), ids.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let client = connect(&addrs);
                let (mut i, mut done) = (caller + 5, 0);
                while !stop.load(Ordering::Relaxed) {
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let from = (i >> 33) as usize % ACCOUNTS;
                    let to = (from + 1 + (i >> 17) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                    SpreadAccount::at(ids[from].clone())
                        .with_client(client.clone())
                        .transfer(ids[to].clone(), (i % 5) as i64 + 1)
                        .expect("a transfer");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut maps = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let seen = SpreadAccount::map(Objects::All)
            .with_client(client.clone())
            .seen()
            .expect("a map audit");
        assert_eq!(seen.len(), ACCOUNTS);
        let total = seen.reduce(0, |sum, s| sum + s.balance);
        assert_eq!(
            total,
            1000 * ACCOUNTS as i64,
            "a map saw a total of {total}"
        );
        maps += 1;
    }
    eprintln!("{:?}", client.workflow_stats().expect("stats"));
    stop.store(true, Ordering::Relaxed);
    let transfers: usize = callers
        .into_iter()
        .map(|c| c.join().expect("a caller"))
        .sum();
    eprintln!("{transfers} transfers, {maps} map audits");
    assert!(transfers > 0 && maps > 0);
}

#[test]
fn a_map_sees_the_invariant_total_while_transfers_run() {
    maps_see_the_total_while_transfers_run("map-bank", &[]);
}

#[test]
fn a_map_sees_the_invariant_total_with_two_copies_each() {
    maps_see_the_total_while_transfers_run("map-bank-rf2", &["--replicas", "2"]);
}
