//! The cluster with real processes: etcd (Debian's `etcd-server`) and
//! `fixture-node` processes on loopback, joined through it; clients in this
//! process, each standing for a cloud thread.

mod common;

use common::bank::{Account, AccountRef};
use common::cluster::{
    admin, connect, free_port, objects_on, port_of, terminate, view_of, wait_for_views, Etcd, Link,
    Proxy,
};
use common::fixtures::Ledger;
use common::{wait_until, DataDir, RawConnection, ServerProcess};
use crucial::{AtomicI64, Barrier, Client, Error, RemoteError};
use crucial_protocol::placement::{Placement, View, LAMBDA_HOME};
use crucial_protocol::wire::{ObjectRef, Request};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ACCOUNTS: usize = 48;

fn client_of(nodes: &[&ServerProcess]) -> Client {
    connect(&nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>())
}

/// One transfer of the bank: takes `amount` from one account and gives it to
/// another (two calls), then counts it. Every call must succeed: the client
/// follows redirects and waits for moving objects on its own.
fn transfer(client: &Client, from: usize, to: usize, amount: i64) {
    let take = client.open::<AtomicI64>(format!("acct/{from}"));
    let give = client.open::<AtomicI64>(format!("acct/{to}"));
    take.fetch_add(-amount).expect("take");
    give.fetch_add(amount).expect("give");
    client
        .open::<AtomicI64>("bank/transfers")
        .fetch_add(1)
        .expect("count");
}

/// Runs the bank with `threads` clients until `stop`; returns the transfers made.
fn bank_until(
    nodes: Vec<String>,
    threads: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let made = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (nodes, stop, made) = (nodes.clone(), Arc::clone(&stop), Arc::clone(&made));
                std::thread::spawn(move || {
                    let client = connect(&nodes);
                    let mut i = t as u64;
                    while !stop.load(Ordering::Relaxed) {
                        i = i
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let from = (i >> 33) as usize % ACCOUNTS;
                        let to = (from + 1 + (i >> 17) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                        transfer(&client, from, to, (i % 50) as i64 + 1);
                        made.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a bank thread failed");
        }
        made.load(Ordering::Relaxed)
    })
}

/// The bank's invariants: money is neither made nor lost, every transfer
/// counted exactly once.
fn check_bank(client: &Client, transfers: u64) {
    let total: i64 = (0..ACCOUNTS)
        .map(|a| {
            client
                .open::<AtomicI64>(format!("acct/{a}"))
                .load()
                .expect("balance")
        })
        .sum();
    assert_eq!(total, 0, "the bank's total moved");
    let counted = client
        .open::<AtomicI64>("bank/transfers")
        .load()
        .expect("count");
    assert_eq!(counted as u64, transfers, "transfers counted once each");
}

/// Every object listed by a node is owned by it in its view.
fn every_object_on_its_owner(nodes: &[&ServerProcess]) -> usize {
    let mut total = 0;
    for node in nodes {
        let placement = Placement::new(view_of(&node.addr));
        for object in objects_on(&node.addr) {
            assert_eq!(
                placement.owner(&object.type_name, &object.key),
                node.addr,
                "{} `{}` is on {} but not its owner",
                object.type_name,
                object.key,
                node.addr
            );
            total += 1;
        }
    }
    total
}

#[test]
fn three_nodes_run_the_bank_and_spread_the_objects() {
    let etcd = Etcd::start("three");
    let a = etcd.node("three", &[]);
    let b = etcd.node("three", &[]);
    let c = etcd.node("three", &[]);
    wait_for_views(&[&a, &b, &c], 3);
    // One bootstrap address is enough: the handshake carries the view.
    let client = client_of(&[&a]);
    client.ping().expect("ping");
    assert_eq!(client.servers().len(), 3, "the client found every node");

    let stop = Arc::new(AtomicBool::new(false));
    let bank = bank_until(vec![a.addr.clone()], 8, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let transfers = bank.join().expect("bank");
    assert!(transfers > 0);
    check_bank(&client, transfers);

    // Each node's object count, through the admin plane.
    let status = admin(&b, &["status"]).expect("crucial-admin status");
    let nodes = status["nodes"].as_array().expect("rows");
    assert_eq!(nodes.len(), 3, "{status}");
    let counts: Vec<u64> = nodes
        .iter()
        .map(|n| n["objects"].as_u64().unwrap())
        .collect();
    eprintln!("{transfers} transfers; objects per node: {counts:?}");
    assert!(counts.iter().all(|&n| n > 0), "objects spread: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), ACCOUNTS as u64 + 1);
    assert_eq!(every_object_on_its_owner(&[&a, &b, &c]), ACCOUNTS + 1);

    let listed = admin(&c, &["objects"]).expect("crucial-admin objects");
    assert_eq!(listed["objects"].as_array().unwrap().len(), ACCOUNTS + 1);
    // Delete through any node: the admin finds the owner.
    let deleted = admin(&a, &["delete", "crucial::AtomicI64", "bank/transfers"]).expect("delete");
    assert_eq!(deleted["existed"], true, "{deleted}");
    assert_eq!(
        client.open::<AtomicI64>("bank/transfers").load().unwrap(),
        0
    );
}

#[test]
fn the_cluster_keeps_one_replicas_setting_and_refuses_a_node_that_disagrees() {
    let etcd = Etcd::start("settings");
    let a = etcd.node("settings", &["--replicas", "2"]);
    // Without the flag a node takes the cluster's setting.
    let b = etcd.node("settings", &[]);
    wait_for_views(&[&a, &b], 2);
    let status = admin(&b, &["status"]).expect("crucial-admin status");
    assert_eq!(status["replicas"], 2, "{status}");
    let refused = etcd
        .try_node("settings", &["--replicas", "3"])
        .err()
        .expect("a node with another --replicas is refused");
    assert!(
        refused.contains("start it with --replicas 2"),
        "it says what to do: {refused}"
    );
    assert_eq!(
        view_of(&a.addr).nodes.len(),
        2,
        "the refused node never joined"
    );
}

#[test]
fn a_node_joins_and_another_drains_while_the_bank_runs() {
    let etcd = Etcd::start("elastic");
    let a = etcd.node("elastic", &[]);
    let b = etcd.node("elastic", &[]);
    let c = etcd.node("elastic", &[]);
    wait_for_views(&[&a, &b, &c], 3);
    let stop = Arc::new(AtomicBool::new(false));
    let bank = bank_until(
        vec![a.addr.clone(), b.addr.clone(), c.addr.clone()],
        6,
        Arc::clone(&stop),
    );
    std::thread::sleep(Duration::from_millis(700));

    let d = etcd.node("elastic", &[]);
    wait_for_views(&[&a, &b, &c, &d], 4);
    std::thread::sleep(Duration::from_millis(700));
    // Drained through the admin plane: it answers once the handoff is done.
    let drained = admin(&a, &["drain"]).expect("crucial-admin drain");
    eprintln!("drain: {drained}");
    let mut a = a;
    let status = a.wait();
    assert!(status.success(), "the drained node exits cleanly: {status}");
    wait_for_views(&[&b, &c, &d], 3);
    std::thread::sleep(Duration::from_millis(700));

    stop.store(true, Ordering::Relaxed);
    let transfers = bank.join().expect("no call failed");
    let client = client_of(&[&b]);
    check_bank(&client, transfers);
    let held = every_object_on_its_owner(&[&b, &c, &d]);
    assert_eq!(held, ACCOUNTS + 1, "every object on its new owner");
    assert!(!objects_on(&d.addr).is_empty(), "the new node took objects");
    eprintln!("{transfers} transfers across a join and a drain");
}

#[test]
fn barrier_waiters_parked_on_a_moving_object_are_released_on_its_new_owner() {
    let etcd = Etcd::start("barrier");
    let a = etcd.node("barrier", &[]);
    let b = etcd.node("barrier", &[]);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a]);
    client.ping().expect("ping");
    // A barrier key that lives on `a`, so draining `a` moves it.
    let placement = Placement::new(view_of(&a.addr));
    let key = (0..1000)
        .map(|i| format!("phase/{i}"))
        .find(|k| placement.owner("crucial::Barrier", k) == a.addr)
        .expect("a key on a");
    assert!(client.create(&key, &Barrier::new(3)).expect("create"));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let barrier = client.open::<Barrier>(key.clone());
            std::thread::spawn(move || barrier.wait())
        })
        .collect();
    wait_until("two waiters parked", || {
        objects_on(&a.addr)
            .iter()
            .any(|o| o.key == key && o.parked == 2)
    });

    let mut a = a;
    terminate(&a);
    assert!(a.wait().success());
    wait_until("the waiters parked again on the new owner", || {
        objects_on(&b.addr)
            .iter()
            .any(|o| o.key == key && o.parked == 2)
    });
    let leader = client.open::<Barrier>(key.clone()).wait().expect("arrive");
    let leaders = waiters
        .into_iter()
        .map(|w| w.join().expect("waiter").expect("released").is_leader())
        .filter(|l| *l)
        .count();
    assert_eq!(leaders + usize::from(leader.is_leader()), 1, "one leader");
}

#[test]
fn a_client_with_a_stale_view_is_redirected() {
    let etcd = Etcd::start("stale");
    let a = etcd.node("stale", &[]);
    let b = etcd.node("stale", &[]);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a, &b]);
    for i in 0..64 {
        client
            .open::<AtomicI64>(format!("k/{i}"))
            .fetch_add(1)
            .expect("add");
    }
    let old_epoch = view_of(&a.addr).epoch;
    let c = etcd.node("stale", &[]);
    wait_for_views(&[&a, &b, &c], 3);
    // The client still routes by the two-node view: calls on keys `c` took
    // go to their old owner, which redirects them.
    assert_eq!(client.servers().len(), 2);
    for i in 0..64 {
        let value = client
            .open::<AtomicI64>(format!("k/{i}"))
            .fetch_add(1)
            .expect("add after the join");
        assert_eq!(value, 1, "k/{i} kept its value across the move");
    }
    assert_eq!(
        client.servers().len(),
        3,
        "the redirect carried the new view"
    );
    assert!(view_of(&c.addr).epoch > old_epoch);
    assert!(!objects_on(&c.addr).is_empty());
}

#[test]
fn nodes_cut_off_from_etcd_past_their_lease_serve_nothing_until_it_answers() {
    let mut etcd = Etcd::start("outage");
    let a = etcd.node("outage", &[]);
    let b = etcd.node("outage", &[]);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a]);
    let counter = client.open::<AtomicI64>("outage/hits");
    counter.fetch_add(1).expect("before");

    etcd.stop();
    // Past the lease (2 s): either node may have been declared gone, and its
    // objects given to another, so neither serves (no split brain).
    std::thread::sleep(Duration::from_secs(3));
    for node in [&a, &b] {
        let mut raw = RawConnection::open(&node.addr, 7);
        let delete = Request::Delete {
            object: ObjectRef {
                type_name: "crucial::AtomicI64",
                key: "outage/hits",
            },
        };
        match raw.request(1, &delete.encode().expect("delete")) {
            Err(RemoteError::Fenced { node: fenced, .. }) => assert_eq!(fenced, node.addr),
            other => panic!("{} must be fenced, got {other:?}", node.addr),
        }
    }
    // A client's call is retried meanwhile and served once etcd answers
    // again (a restarted etcd keeps the leases: nobody left the view).
    let waiting = {
        let client = client.clone();
        std::thread::spawn(move || client.open::<AtomicI64>("outage/hits").fetch_add(1))
    };
    std::thread::sleep(Duration::from_millis(500));
    etcd.restart();
    assert_eq!(waiting.join().expect("joined").expect("served after"), 1);
    let c = etcd.node("outage", &[]);
    wait_for_views(&[&a, &b, &c], 3);
    assert_eq!(counter.load().expect("after"), 2);
}

/// A raw `Delete` of `key` on `addr`: how a test asks a node whether it is
/// fenced (the request is refused before it runs).
fn fenced(addr: &str, key: &str) -> bool {
    let mut raw = RawConnection::open(addr, 7);
    let delete = Request::Delete {
        object: ObjectRef {
            type_name: "Ledger",
            key,
        },
    };
    matches!(
        raw.request(1, &delete.encode().expect("delete")),
        Err(RemoteError::Fenced { .. })
    )
}

#[test]
fn a_node_cut_off_from_etcd_alone_stops_when_its_lease_expired_and_returns_as_a_new_member() {
    let etcd = Etcd::start("alone");
    let link = Link::to(&etcd.endpoint());
    let dir = DataDir::new("alone-a");
    let flags = ["--data-dir", dir.arg()];
    let mut a = etcd.node_via(&link.addr, "alone", 0, &flags);
    let b = etcd.node("alone", &[]);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a, &b]);
    let keys: Vec<String> = (0..16).map(|i| format!("alone/{i}")).collect();
    for key in &keys {
        client.open::<Ledger>(key.clone()).put(0, 7).expect("put");
    }
    let placement = Placement::new(view_of(&b.addr));
    let on_a: Vec<&String> = keys
        .iter()
        .filter(|k| placement.owner("Ledger", k) == a.addr)
        .collect();
    assert!(on_a.len() >= 2, "keys on both nodes");
    let (a_addr, port) = (a.addr.clone(), port_of(&a));

    // Cut off alone: the node fences itself within its lease, the other
    // declares it crashed once the lease expires.
    link.cut();
    wait_until("the cut-off node fences itself", || {
        fenced(&a_addr, on_a[0])
    });
    wait_for_views(&[&b], 1);
    let on_b = client_of(&[&b]);
    let afresh = on_b.open::<Ledger>(on_a[0].clone());
    assert_lost(afresh.get(0), &a_addr, "a key of the cut-off node");
    assert!(!on_b.delete("Ledger", on_a[0]).expect("start it afresh"));
    for value in 1..=5 {
        afresh.put(0, value).expect("a write to the new copy");
    }
    assert!(
        fenced(&a_addr, on_a[0]),
        "still fenced: no second copy served"
    );

    // Back in touch, it learns its lease expired and stops, saying why.
    link.heal();
    let status = a.wait_within(Duration::from_secs(30));
    assert!(
        !status.success(),
        "a node whose lease expired exits with an error"
    );
    let said = a.stderr();
    assert!(said.contains("etcd lease expired"), "it says why: {said}");

    // Restarted on its data directory, it rejoins: the key started afresh
    // keeps its five writes, the others come back from its disk.
    a = etcd.node_at("alone", port, &flags);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a, &b]);
    let ledger = client.open::<Ledger>(on_a[0].clone());
    assert_eq!(
        ledger.get(0).expect("get"),
        Some(5),
        "the new history stands"
    );
    for key in &on_a[1..] {
        let ledger = client.open::<Ledger>((*key).clone());
        assert_eq!(ledger.get(0).expect("get"), Some(7), "{key} came back");
    }
}

#[test]
fn a_crashed_nodes_objects_are_reported_lost_not_recreated() {
    let etcd = Etcd::start("crash");
    let a = etcd.node("crash", &[]);
    let mut b = etcd.node("crash", &[]);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a]);
    for i in 0..32 {
        client
            .open::<AtomicI64>(format!("c/{i}"))
            .fetch_add(5)
            .expect("add");
    }
    let placement = Placement::new(view_of(&a.addr));
    let on_b: Vec<String> = (0..32)
        .map(|i| format!("c/{i}"))
        .filter(|k| placement.owner("crucial::AtomicI64", k) == b.addr)
        .collect();
    assert!(!on_b.is_empty());
    b.kill(); // SIGKILL: no handoff
    wait_for_views(&[&a], 1);

    for i in 0..32 {
        let key = format!("c/{i}");
        let result = client.open::<AtomicI64>(key.clone()).load();
        if on_b.contains(&key) {
            match result {
                Err(Error::Remote(RemoteError::Lost { lost_node, .. })) => {
                    assert_eq!(lost_node, b.addr)
                }
                other => panic!("{key} was on the crashed node, got {other:?}"),
            }
        } else {
            assert_eq!(result.expect("kept"), 5, "{key} lived on the survivor");
        }
    }
    // Deleting a lost object starts it afresh.
    let lost = &on_b[0];
    assert!(!client.delete("crucial::AtomicI64", lost).expect("delete"));
    assert_eq!(
        client
            .open::<AtomicI64>(lost.clone())
            .load()
            .expect("fresh"),
        0
    );
    // A node that joins later still knows (the loss is recorded in etcd).
    let c = etcd.node("crash", &[]);
    wait_for_views(&[&a, &c], 2);
    let still_lost = on_b[1..]
        .iter()
        .filter(|k| {
            matches!(
                client.open::<AtomicI64>((*k).clone()).load(),
                Err(Error::Remote(RemoteError::Lost { .. }))
            )
        })
        .count();
    assert_eq!(still_lost, on_b.len() - 1);
}

fn account(client: &Client, key: &str) -> AccountRef {
    Account::at(key).with_client(client.clone())
}

#[test]
fn lambda_objects_move_with_their_application_on_a_join_and_a_drain_under_load() {
    let etcd = Etcd::start("lambda");
    let a = etcd.node("lambda", &[]);
    let b = etcd.node("lambda", &[]);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a]);
    let (x, y) = (account(&client, "x"), account(&client, "y"));
    x.open("xena".into(), 100).expect("open x");
    y.open("yann".into(), 0).expect("open y");
    let app = "crucial-server";

    // Transfers back and forth all along: workflows keep running while the
    // application moves.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, nodes) = (Arc::clone(&stop), vec![a.addr.clone()]);
        std::thread::spawn(move || {
            let client = connect(&nodes);
            let (x, y) = (account(&client, "x"), account(&client, "y"));
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (from, to) = if done % 2 == 0 { (&x, &y) } else { (&y, &x) };
                from.transfer(to.id().clone(), 1)
                    .expect("a transfer during the moves");
                done += 1;
            }
            done
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // A third node on a port that makes it the application's owner.
    let members = view_of(&a.addr).nodes;
    let port = (0..500)
        .map(|_| free_port())
        .find(|port| {
            let mut nodes = members.clone();
            nodes.push(format!("127.0.0.1:{port}"));
            nodes.sort();
            let addr = format!("127.0.0.1:{port}");
            Placement::new(View::new(0, nodes)).owner(LAMBDA_HOME, app) == addr
        })
        .expect("a port whose node owns the application");
    let c = etcd.node_at("lambda", port, &[]);
    wait_for_views(&[&a, &b, &c], 3);
    let accounts_on = |node: &ServerProcess| {
        objects_on(&node.addr)
            .iter()
            .filter(|o| o.type_name == "Account")
            .count()
    };
    wait_until("the accounts moved to the new owner", || {
        accounts_on(&c) == 2
    });
    assert_eq!(accounts_on(&a) + accounts_on(&b), 0);
    std::thread::sleep(Duration::from_millis(300));

    // The new owner drains: they move on again.
    let mut c = c;
    terminate(&c);
    assert!(c.wait().success());
    wait_for_views(&[&a, &b], 2);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let transfers = load.join().expect("no transfer failed");
    assert_eq!(accounts_on(&a) + accounts_on(&b), 2);
    // Transfers alternate x -> y and y -> x: each applied exactly once leaves
    // x at 100 or 99.
    let (bx, by) = (x.balance().expect("x"), y.balance().expect("y"));
    assert_eq!(bx + by, 100, "money neither made nor lost");
    assert_eq!(
        bx,
        100 - (transfers % 2) as i64,
        "each of {transfers} transfers applied once"
    );
    eprintln!("{transfers} transfers across a join and a drain of the application's owner");
}

#[test]
fn objects_owed_to_an_unreachable_new_owner_are_delivered_once_it_answers() {
    let etcd = Etcd::start("owed");
    let a = etcd.node("owed", &[]);
    let b = etcd.node("owed", &[]);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a]);
    for i in 0..64 {
        client
            .open::<AtomicI64>(format!("o/{i}"))
            .fetch_add(1)
            .expect("fill");
    }
    // `c` is reachable only through proxies that hold connections, on its data
    // port and on its peer port: it joins (etcd sees it) but its peers cannot
    // hand it anything.
    let (proxy, target) = Proxy::start();
    let (peer_proxy, peer_target) = Proxy::start();
    let (port, peer_port) = (free_port(), free_port());
    *target.lock().unwrap() = Some(format!("127.0.0.1:{port}"));
    *peer_target.lock().unwrap() = Some(format!("127.0.0.1:{peer_port}"));
    let peer_listen = format!("127.0.0.1:{peer_port}");
    let c = etcd.node_at(
        "owed",
        port,
        &[
            "--advertise",
            &proxy.addr,
            "--peer-listen",
            &peer_listen,
            "--advertise-peer",
            &peer_proxy.addr,
            "--lease-ttl",
            "30",
        ],
    );
    wait_until("a and b see c", || view_of(&a.addr).nodes.len() == 3);
    std::thread::sleep(Duration::from_millis(2500));
    // Objects that stay on a and b answer meanwhile.
    let placement = Placement::new(view_of(&a.addr));
    let staying = (0..64)
        .map(|i| format!("o/{i}"))
        .find(|k| placement.owner("crucial::AtomicI64", k) != proxy.addr)
        .unwrap();
    assert_eq!(client.open::<AtomicI64>(staying).load().expect("stays"), 1);
    proxy.open();
    peer_proxy.open();
    wait_for_views(&[&a, &b], 3);
    wait_until("everything handed to c", || {
        admin(&a, &["status"]).is_ok_and(|s| {
            s["nodes"]
                .as_array()
                .is_some_and(|n| n.len() == 3 && n.iter().all(|n| n["state"] == "serving"))
        })
    });
    for i in 0..64 {
        let value = client
            .open::<AtomicI64>(format!("o/{i}"))
            .load()
            .expect("after");
        assert_eq!(value, 1, "o/{i} kept its value");
    }
    drop(c);
}

#[test]
fn a_handoff_sent_to_the_port_clients_use_is_refused() {
    let etcd = Etcd::start("planes");
    let a = etcd.node("planes", &[]);
    let mut raw = common::RawConnection::open(&a.addr, 0xbad);
    let forged = Request::Adopt(crucial_protocol::wire::Adopt {
        from: "127.0.0.1:1",
        epoch: u64::MAX,
        objects: Vec::new(),
        replies: Vec::new(),
        lambda: Vec::new(),
    });
    match raw.request(1, &forged.encode().expect("encode")) {
        Err(RemoteError::Protocol { reason }) => {
            assert!(reason.contains("peer port"), "{reason}")
        }
        other => panic!("a forged Adopt on the client port: {other:?}"),
    }
    let done = Request::HandoffDone {
        from: "127.0.0.1:1",
        epoch: u64::MAX,
        kept: Vec::new(),
    };
    assert!(matches!(
        raw.request(2, &done.encode().expect("encode")),
        Err(RemoteError::Protocol { .. })
    ));
    // The connection still serves its client.
    let client = client_of(&[&a]);
    client
        .open::<AtomicI64>("after")
        .fetch_add(1)
        .expect("served");
}

/// `Lost` from a call, naming `node`; panics on anything else.
fn assert_lost<T: std::fmt::Debug>(result: Result<T, Error>, node: &str, what: &str) {
    match result {
        Err(Error::Remote(RemoteError::Lost { lost_node, .. })) => assert_eq!(lost_node, node),
        other => panic!("{what}: expected Lost with {node}, got {other:?}"),
    }
}

#[test]
fn a_crashed_nodes_lambda_objects_are_lost_then_back_or_started_afresh_never_merged() {
    let etcd = Etcd::start("lostapp");
    let dirs = [DataDir::new("lostapp-0"), DataDir::new("lostapp-1")];
    let start = |i: usize, port: u16| etcd.node_at("lostapp", port, &["--data-dir", dirs[i].arg()]);
    let mut nodes = [start(0, 0), start(1, 0)];
    wait_for_views(&[&nodes[0], &nodes[1]], 2);
    let app = "crucial-server";
    let placement = Placement::new(view_of(&nodes[0].addr));
    let holder = (0..2)
        .find(|&i| placement.owner(LAMBDA_HOME, app) == nodes[i].addr)
        .expect("one node owns the application");
    let survivor = 1 - holder;
    {
        let client = client_of(&[&nodes[0], &nodes[1]]);
        let (x, y) = (account(&client, "x"), account(&client, "y"));
        x.open("xena".into(), 100).expect("open x");
        y.open("yann".into(), 0).expect("open y");
        for _ in 0..7 {
            x.transfer(y.id().clone(), 1).expect("transfer");
        }
    }
    let holder_addr = nodes[holder].addr.clone();
    let port = port_of(&nodes[holder]);

    // 1. The holder crashes: its application is lost on the survivor (not
    // created from nothing), then back whole with the holder's data directory.
    nodes[holder].kill();
    wait_for_views(&[&nodes[survivor]], 1);
    let on_survivor = client_of(&[&nodes[survivor]]);
    assert_lost(account(&on_survivor, "x").balance(), &holder_addr, "x");
    assert_lost(
        account(&on_survivor, "z").open("zoe".into(), 5),
        &holder_addr,
        "a create-if-missing start-up",
    );
    nodes[holder] = start(holder, port);
    wait_for_views(&[&nodes[0], &nodes[1]], 2);
    let client = client_of(&[&nodes[0], &nodes[1]]);
    assert_eq!(account(&client, "x").balance().expect("x back"), 93);
    assert_eq!(account(&client, "y").balance().expect("y back"), 7);
    drop(client);

    // 2. It crashes again, and the application is started afresh on the
    // survivor: when the holder returns, its copy from disk gives way whole.
    nodes[holder].kill();
    wait_for_views(&[&nodes[survivor]], 1);
    assert_lost(account(&on_survivor, "x").balance(), &holder_addr, "x");
    assert!(!on_survivor.delete(LAMBDA_HOME, app).expect("start afresh"));
    account(&on_survivor, "x")
        .open("xavier".into(), 50)
        .expect("a new x");
    nodes[holder] = start(holder, port);
    wait_for_views(&[&nodes[0], &nodes[1]], 2);
    let client = client_of(&[&nodes[0], &nodes[1]]);
    let x = account(&client, "x");
    assert_eq!(x.balance().expect("x"), 50, "the new history");
    assert_eq!(x.owner().expect("x's owner"), "xavier");
    assert!(
        account(&client, "y").balance().is_err(),
        "y belongs to the old history: not merged into the new one"
    );
    wait_until("the application is on its owner", || {
        objects_on(&nodes[holder].addr)
            .iter()
            .any(|o| o.type_name == "Account")
    });
}

#[test]
fn a_key_started_afresh_keeps_its_new_history_when_the_crashed_node_returns() {
    let etcd = Etcd::start("afresh");
    let dirs = [DataDir::new("afresh-0"), DataDir::new("afresh-1")];
    let start = |i: usize, port: u16| etcd.node_at("afresh", port, &["--data-dir", dirs[i].arg()]);
    let mut nodes = [start(0, 0), start(1, 0)];
    wait_for_views(&[&nodes[0], &nodes[1]], 2);
    let client = client_of(&[&nodes[0], &nodes[1]]);
    let keys: Vec<String> = (0..16).map(|i| format!("l/{i}")).collect();
    for key in &keys {
        client.open::<Ledger>(key.clone()).put(0, 7).expect("put");
    }
    let placement = Placement::new(view_of(&nodes[0].addr));
    let on_1: Vec<&String> = keys
        .iter()
        .filter(|k| placement.owner("Ledger", k) == nodes[1].addr)
        .collect();
    assert!(on_1.len() >= 2, "keys on both nodes");
    let (gone, port) = (nodes[1].addr.clone(), port_of(&nodes[1]));
    nodes[1].kill();
    wait_for_views(&[&nodes[0]], 1);

    let on_0 = client_of(&[&nodes[0]]);
    let afresh = on_0.open::<Ledger>(on_1[0].clone());
    assert_lost(afresh.get(0), &gone, "a persistent key of the crashed node");
    assert!(!on_0.delete("Ledger", on_1[0]).expect("start it afresh"));
    for value in 1..=5 {
        afresh.put(0, value).expect("a write to the new copy");
    }

    nodes[1] = start(1, port);
    wait_for_views(&[&nodes[0], &nodes[1]], 2);
    let client = client_of(&[&nodes[0], &nodes[1]]);
    assert_eq!(
        client.open::<Ledger>(on_1[0].clone()).get(0).expect("get"),
        Some(5),
        "the five acknowledged writes of the new copy stand"
    );
    for key in &on_1[1..] {
        let ledger = client.open::<Ledger>((*key).clone());
        assert_eq!(ledger.get(0).expect("get"), Some(7), "{key} came back");
    }
}

#[test]
fn a_node_restarted_before_its_lease_expired_rejoins_as_a_new_member() {
    let etcd = Etcd::start("quick");
    let dir = DataDir::new("quick");
    // A long lease: the restart is sure to come before it expires.
    let flags = ["--data-dir", dir.arg(), "--lease-ttl", "60"];
    let a = etcd.node("quick", &[]);
    let mut b = etcd.node("quick", &flags);
    wait_for_views(&[&a, &b], 2);
    let client = client_of(&[&a, &b]);
    let keys: Vec<String> = (0..16).map(|i| format!("q/{i}")).collect();
    for key in &keys {
        client
            .open::<AtomicI64>(key.clone())
            .fetch_add(3)
            .expect("add");
        client.open::<Ledger>(key.clone()).put(0, 7).expect("put");
    }
    let placement = Placement::new(view_of(&a.addr));
    let epoch = view_of(&a.addr).epoch;
    let (b_addr, port) = (b.addr.clone(), port_of(&b));
    b.kill();
    b = etcd.node_at("quick", port, &flags);
    wait_until("the restart is a new view", || {
        view_of(&a.addr).epoch > epoch && view_of(&b.addr).epoch == view_of(&a.addr).epoch
    });
    let client = client_of(&[&a, &b]);
    for key in &keys {
        let counter = client.open::<AtomicI64>(key.clone()).load();
        let ledger = client
            .open::<Ledger>(key.clone())
            .get(0)
            .expect("persistent");
        assert_eq!(ledger, Some(7), "{key} is back from the data directory");
        if placement.owner("crucial::AtomicI64", key) == b_addr {
            assert_lost(
                counter,
                &b_addr,
                "an ephemeral object of the restarted node",
            );
        } else {
            assert_eq!(counter.expect("kept"), 3, "{key} lived on the other node");
        }
    }
}
