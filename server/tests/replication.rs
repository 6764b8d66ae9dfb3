//! Replication with real processes: etcd and `fixture-node` processes on
//! loopback with `--replicas 2`, killed with SIGKILL while clients write.

mod common;

use common::cluster::{objects_on, view_of, Etcd};
use common::fixtures::{DurableBank, Ledger};
use common::{wait_until, ServerProcess};
use crucial::{Client, Config};
use crucial_protocol::placement::Placement;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn connect(addrs: &[String]) -> Client {
    addrs
        .iter()
        .fold(Config::new(), |config, addr| config.server(addr.clone()))
        .connect()
        .expect("client")
}

fn wait_for_views(nodes: &[&ServerProcess], count: usize) {
    wait_until(&format!("every node sees {count} members"), || {
        nodes.iter().all(|n| view_of(&n.addr).nodes.len() == count)
    });
}

const BANKS: usize = 6;
const ACCOUNTS: usize = 8;
const EACH: i64 = 1000;
const CALLERS: usize = 4;

/// Acknowledged transfers, per bank and caller.
type Acknowledged = Arc<Mutex<HashMap<(usize, usize), u64>>>;

/// `CALLERS` threads transfer inside random banks until `stop`; every call
/// must succeed (the client retries through the failover), and each one
/// acknowledged is counted.
fn transfers_until(
    nodes: Vec<String>,
    stop: Arc<AtomicBool>,
    acknowledged: Acknowledged,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..CALLERS)
        .map(|caller| {
            let (nodes, stop, acknowledged) =
                (nodes.clone(), Arc::clone(&stop), Arc::clone(&acknowledged));
            std::thread::spawn(move || {
                let client = connect(&nodes);
                let mut i = caller as u64 + 1;
                while !stop.load(Ordering::Relaxed) {
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let bank = (i >> 40) as usize % BANKS;
                    let from = (i >> 33) as usize % ACCOUNTS;
                    let to = (from + 1 + (i >> 17) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                    client
                        .open::<DurableBank>(format!("bank/{bank}"))
                        .transfer(caller, from, to, (i % 50) as i64 + 1)
                        .expect("a transfer through the failover");
                    *acknowledged
                        .lock()
                        .unwrap()
                        .entry((bank, caller))
                        .or_default() += 1;
                }
            })
        })
        .collect()
}

/// Every bank holds its total, and each caller's acknowledged transfers were
/// applied exactly once.
fn audit(client: &Client, acknowledged: &Acknowledged) {
    let acknowledged = acknowledged.lock().unwrap();
    for bank in 0..BANKS {
        let (total, applied) = client
            .open::<DurableBank>(format!("bank/{bank}"))
            .audit()
            .expect("audit");
        assert_eq!(total, EACH * ACCOUNTS as i64, "bank/{bank}'s total moved");
        for (caller, applied) in applied.iter().enumerate() {
            let acked = acknowledged.get(&(bank, caller)).copied().unwrap_or(0);
            assert_eq!(
                *applied, acked,
                "bank/{bank}, caller {caller}: {applied} applied, {acked} acknowledged"
            );
        }
    }
}

#[test]
fn with_two_replicas_a_killed_head_loses_no_acknowledged_transfer() {
    let etcd = Etcd::start("rf2");
    let flags = ["--replicas", "2"];
    let mut nodes = [
        etcd.node("rf2", &flags),
        etcd.node("rf2", &flags),
        etcd.node("rf2", &flags),
    ];
    wait_for_views(&nodes.iter().collect::<Vec<_>>(), 3);
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let client = connect(&addrs);
    for bank in 0..BANKS {
        client
            .open::<DurableBank>(format!("bank/{bank}"))
            .open(ACCOUNTS, EACH, CALLERS)
            .expect("open");
    }
    // The node to kill heads at least one bank.
    let placement = Placement::new(view_of(&addrs[0]));
    let victim = (0..3)
        .find(|&n| {
            (0..BANKS).any(|b| placement.owner("DurableBank", &format!("bank/{b}")) == addrs[n])
        })
        .expect("some node heads a bank");
    let headed: Vec<usize> = (0..BANKS)
        .filter(|b| placement.owner("DurableBank", &format!("bank/{b}")) == addrs[victim])
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Acknowledged::default();
    let callers = transfers_until(addrs.clone(), Arc::clone(&stop), Arc::clone(&acknowledged));
    std::thread::sleep(Duration::from_millis(700));
    nodes[victim].kill(); // SIGKILL: no handoff, no goodbye
    let survivors: Vec<&ServerProcess> =
        (0..3).filter(|&n| n != victim).map(|n| &nodes[n]).collect();
    wait_for_views(&survivors, 2);
    // The callers go on through the failover, then a while after it.
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().expect("a caller failed");
    }
    let on_survivors = connect(&survivors.iter().map(|n| n.addr.clone()).collect::<Vec<_>>());
    audit(&on_survivors, &acknowledged);
    // The banks the killed node headed are held by a survivor now.
    for bank in headed {
        let key = format!("bank/{bank}");
        assert!(
            survivors
                .iter()
                .any(|n| objects_on(&n.addr).iter().any(|o| o.key == key)),
            "{key} was taken over by a survivor"
        );
    }

    // The killed node comes back (a new member, empty): the banks stay whole.
    nodes[victim] = etcd.node("rf2", &flags);
    wait_for_views(&nodes.iter().collect::<Vec<_>>(), 3);
    let client = connect(&nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>());
    audit(&client, &acknowledged);
}

#[test]
fn with_two_replicas_every_object_survives_two_kills_one_after_another() {
    let etcd = Etcd::start("rf2seq");
    let flags = ["--replicas", "2"];
    let mut nodes = vec![
        etcd.node("rf2seq", &flags),
        etcd.node("rf2seq", &flags),
        etcd.node("rf2seq", &flags),
    ];
    wait_for_views(&nodes.iter().collect::<Vec<_>>(), 3);
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let client = connect(&addrs);
    let keys: Vec<String> = (0..24).map(|i| format!("l/{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        client
            .open::<Ledger>(key.clone())
            .put(0, i as u64)
            .expect("put");
    }
    // Kill one node; once the cluster repaired (a new view settled, every
    // object again on two nodes), kill another: with rf = 2, each crash
    // leaves one copy, and the repair makes a second before the next.
    for round in 0..2 {
        let victim = round;
        nodes[victim].kill();
        let alive: Vec<&ServerProcess> = nodes.iter().skip(victim + 1).collect();
        if round == 0 {
            // A fresh member replaces it, so the next crash leaves two.
            let fresh = etcd.node("rf2seq", &flags);
            nodes.push(fresh);
            let alive: Vec<&ServerProcess> = nodes.iter().skip(1).collect();
            wait_for_views(&alive, 3);
            // Let the repair land (the new view's steps send every object to
            // its replica set before they say done).
            std::thread::sleep(Duration::from_secs(1));
        } else {
            wait_for_views(&alive, 2);
        }
        let client = connect(
            &nodes
                .iter()
                .skip(victim + 1)
                .map(|n| n.addr.clone())
                .collect::<Vec<_>>(),
        );
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(
                client.open::<Ledger>(key.clone()).get(0).expect("no Lost"),
                Some(i as u64),
                "{key} after kill {round}"
            );
        }
        // A key never written is not `Lost` because it falls in a crashed
        // head's range: with two copies, its backup would have come.
        for i in 0..16 {
            let fresh = format!("fresh/{round}/{i}");
            assert_eq!(
                client.open::<Ledger>(fresh).get(0).expect("a new key"),
                None
            );
        }
    }
}
