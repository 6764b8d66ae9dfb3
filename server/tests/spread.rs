//! Lambda objects placed object by object (`placement = "object"`) on a
//! cluster of real node processes: the objects of one application spread
//! over every node, and workflows that touch objects of several nodes commit
//! with two-phase commit over the peer plane (the engine's side, and its
//! history checker over three nodes, is in `txn/spanning_history.rs`).

mod common;

use common::bank::{Audit, Seen, SpreadAccount};
use common::cluster::{
    admin, connect, free_port, listed_per_node, port_of, view_of, wait_for_views, Etcd, Link,
};
use common::{DataDir, ServerProcess};
use crucial::ObjectId;
use crucial_protocol::placement::{lambda_home, Placement, LAMBDA_HOME};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ACCOUNTS: usize = 12;
const EACH: i64 = 1000;

/// `ACCOUNTS` accounts, as many on each node of `addrs` (placed by the
/// ring of the nodes' view, as the client and the nodes place them).
fn accounts(addrs: &[String]) -> Vec<ObjectId> {
    let placement = Placement::new(view_of(&addrs[0]));
    let per_node = ACCOUNTS / addrs.len();
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::new();
    for i in 0.. {
        let id = SpreadAccount::at(format!("acct-{i}")).id().clone();
        let home = lambda_home(&id.application, Some((&id.type_name, &id.key)));
        let owner = placement.owner(LAMBDA_HOME, &home).to_string();
        let count = taken.entry(owner).or_default();
        if *count < per_node {
            *count += 1;
            ids.push(id);
        }
        if ids.len() == ACCOUNTS {
            return ids;
        }
    }
    unreachable!()
}

/// Opens every account of `ids` with [`EACH`].
fn open_all(client: &crucial::Client, ids: &[ObjectId]) {
    for id in ids {
        SpreadAccount::at(id.clone())
            .with_client(client.clone())
            .open(EACH)
            .expect("open");
    }
}

fn three(etcd: &Etcd, name: &str, flags: &[&str]) -> (Vec<ServerProcess>, Vec<String>) {
    let nodes: Vec<ServerProcess> = (0..3).map(|_| etcd.node(name, flags)).collect();
    wait_for_views(&nodes.iter().collect::<Vec<_>>(), 3);
    let addrs = nodes.iter().map(|n| n.addr.clone()).collect();
    (nodes, addrs)
}

/// One acknowledged transfer: the accounts (indexes) and what each was
/// before it.
type Transfer = (usize, usize, Seen, Seen);

/// Callers transferring between random accounts until `stop`; each returns
/// the transfers acknowledged to it.
fn transfers_until(
    addrs: &[String],
    ids: &[ObjectId],
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<Transfer>>> {
    (0..3u64)
        .map(|caller| {
            let (addrs, ids, stop) = (addrs.to_vec(), ids.to_vec(), Arc::clone(stop));
            std::thread::spawn(move || {
                let client = connect(&addrs);
                let mut done = Vec::new();
                let mut i = caller + 11;
                while !stop.load(Ordering::Relaxed) {
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let from = (i >> 33) as usize % ACCOUNTS;
                    let to = (from + 1 + (i >> 17) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                    let (a, b) = SpreadAccount::at(ids[from].clone())
                        .with_client(client.clone())
                        .transfer(ids[to].clone(), (i % 5) as i64 + 1)
                        .expect("a transfer");
                    done.push((from, to, a, b));
                }
                done
            })
        })
        .collect()
}

fn audit(client: &crucial::Client, ids: &[ObjectId]) -> Audit {
    SpreadAccount::at(ids[0].clone())
        .with_client(client.clone())
        .audit(ids.to_vec())
        .expect("an audit")
}

/// The history check: every audit saw the bank's total; per account, the
/// versions the acknowledged transfers saw before they wrote it are exactly
/// 0, 1, 2, ... each once (each transfer read what the one before wrote: no
/// lost update, none applied twice); and the final audit sees the last.
fn check(history: &[Transfer], audits: &[Audit], last: &Audit) -> Result<(), String> {
    for seen in audits.iter().chain([last]) {
        let total: i64 = seen.iter().map(|(_, s)| s.balance).sum();
        if total != EACH * ACCOUNTS as i64 {
            return Err(format!("an audit saw a total of {total}"));
        }
    }
    // Per account: the version each acknowledged write saw before it.
    let mut writes: Vec<Vec<u64>> = vec![Vec::new(); ACCOUNTS];
    for (from, to, a, b) in history {
        writes[*from].push(a.version);
        writes[*to].push(b.version);
    }
    for (account, (mut seen, (_, end))) in writes.into_iter().zip(last).enumerate() {
        seen.sort();
        for (expected, version) in seen.iter().enumerate() {
            if *version != expected as u64 {
                return Err(format!(
                    "account {account}: a transfer saw version {version} where the serial \
                     order has {expected} (versions seen: {seen:?})"
                ));
            }
        }
        if end.version != seen.len() as u64 {
            return Err(format!(
                "account {account}: version {} after {} acknowledged writes",
                end.version,
                seen.len()
            ));
        }
    }
    Ok(())
}

/// Opens the accounts, runs three transferring callers and an auditor for
/// `secs`, and checks the history.
fn run_bank(addrs: &[String], ids: &[ObjectId], secs: u64) -> Result<(usize, usize), String> {
    let client = connect(addrs);
    open_all(&client, ids);
    let stop = Arc::new(AtomicBool::new(false));
    let callers = transfers_until(addrs, ids, &stop);
    let mut audits = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        audits.push(audit(&client, ids));
    }
    stop.store(true, Ordering::Relaxed);
    let history: Vec<Transfer> = callers
        .into_iter()
        .flat_map(|c| c.join().expect("a caller failed"))
        .collect();
    let last = audit(&client, ids);
    eprintln!(
        "{} transfers and {} audits across {} nodes",
        history.len(),
        audits.len(),
        addrs.len()
    );
    check(&history, &audits, &last)?;
    Ok((history.len(), audits.len()))
}

/// How many decision records the cluster holds (`crucial-admin objects`:
/// a record is 24 bytes).
fn decision_records(node: &ServerProcess) -> usize {
    let listed = admin(node, &["objects"]).expect("crucial-admin objects");
    let rows = listed["objects"].as_array().expect("rows");
    let bytes: u64 = rows
        .iter()
        .filter(|row| row["type_name"] == "<decisions>")
        .map(|row| row["bytes"].as_u64().unwrap_or_default())
        .sum();
    bytes as usize / 24
}

fn spread_bank(name: &str, flags: &[&str]) {
    let etcd = Etcd::start(name);
    let (nodes, addrs) = three(&etcd, name, flags);
    let ids = accounts(&addrs);
    let (transfers, audits) = run_bank(&addrs, &ids, 3).expect("a serializable history");
    assert!(transfers > 0 && audits > 0);
    let counts = listed_per_node(&nodes[0], "SpreadAccount");
    eprintln!("accounts per node: {counts:?}");
    // The decisions' records are deleted once acknowledged (every second).
    std::thread::sleep(Duration::from_millis(2500));
    let records = decision_records(&nodes[0]);
    eprintln!("decision records left: {records}");
    assert!(
        records < transfers / 10,
        "{records} decision records left after {transfers} transfers"
    );
    assert_eq!(counts, [ACCOUNTS / 3; 3], "every node holds its share");
}

#[test]
fn one_applications_objects_spread_over_every_node_and_transfers_across_them_stay_serializable() {
    spread_bank("spread", &[]);
}

#[test]
fn spread_objects_with_two_copies_each_stay_serializable() {
    spread_bank("spread-rf2", &["--replicas", "2"]);
}

#[test]
fn the_history_check_catches_commits_that_skip_validation() {
    let etcd = Etcd::start("spread-weak");
    let (_nodes, addrs) = three(&etcd, "spread-weak", &["--weaken-validation"]);
    let ids = accounts(&addrs);
    let caught = run_bank(&addrs, &ids, 3);
    eprintln!("weakened run: {caught:?}");
    assert!(caught.is_err(), "a broken engine passed the history check");
}

#[test]
fn a_child_call_sent_to_one_node_that_reaches_a_third_runs_on_the_manager_instead() {
    let etcd = Etcd::start("spread-via");
    let (_nodes, addrs) = three(&etcd, "spread-via", &[]);
    let ids = accounts(&addrs);
    let client = connect(&addrs);
    open_all(&client, &ids);
    // The accounts by node (four on each).
    let placement = Placement::new(view_of(&addrs[0]));
    let mut by_node: HashMap<String, Vec<ObjectId>> = HashMap::new();
    for id in &ids {
        let home = lambda_home(&id.application, Some((&id.type_name, &id.key)));
        let node = placement.owner(LAMBDA_HOME, &home).to_string();
        by_node.entry(node).or_default().push(id.clone());
    }
    let nodes: Vec<Vec<ObjectId>> = by_node.into_values().collect();
    assert_eq!(nodes.len(), 3);
    let mut moved = 0;
    for round in 0..30 {
        // From, via and to on three different nodes, the roles rotating.
        let pick = |k: usize| &nodes[(round + k) % 3][round % (ACCOUNTS / 3)];
        let (from, via, to) = (pick(0), pick(1), pick(2));
        let (a, b) = SpreadAccount::at(from.clone())
            .with_client(client.clone())
            .transfer_via(via.clone(), to.clone(), 1)
            .expect("a transfer through a third node");
        assert!(a.balance >= 1 && b.balance >= 0);
        moved += 1;
    }
    assert!(moved > 0, "no three accounts on three nodes");
    let seen = audit(&client, &ids);
    assert_eq!(
        seen.iter().map(|(_, s)| s.balance).sum::<i64>(),
        EACH * ACCOUNTS as i64
    );
    let versions: u64 = seen.iter().map(|(_, s)| s.version).sum();
    assert_eq!(versions, 2 * moved, "each transfer applied once: {seen:?}");
    let stats = client.workflow_stats().expect("stats");
    eprintln!("{moved} transfers through a third node; {stats:?}");
    assert!(stats.spanning >= moved, "they committed with 2PC");
}

#[test]
fn decisions_a_participant_missed_are_delivered_again() {
    // Every fifth transaction's commit (or abort) is not sent the first
    // time: its participants stay prepared — their sets locked and pinned —
    // until the manager sends it again. Nothing may be lost or applied
    // twice, and the bank must not stall.
    let etcd = Etcd::start("spread-lost");
    let flags = [
        "--drop-phase-two-every",
        "5",
        "--workflow-attempts",
        "100000",
    ];
    let (_nodes, addrs) = three(&etcd, "spread-lost", &flags);
    let ids = accounts(&addrs);
    let (transfers, audits) = run_bank(&addrs, &ids, 3).expect("a serializable history");
    assert!(transfers > 0 && audits > 0);
}

/// An audit of `ids` whose workflow starts at `root`.
fn audit_from(
    client: &crucial::Client,
    root: &ObjectId,
    ids: &[ObjectId],
) -> crucial::Result<Audit> {
    SpreadAccount::at(root.clone())
        .with_client(client.clone())
        .audit(ids.to_vec())
}

/// Whether a call failed without writing anything: it ran out of time or
/// attempts while sets were held by transactions in doubt, or its objects
/// were on a node that was down (one copy: lost until it restarts).
///
/// Never `NoObject`: every account exists. (Once in about seven loaded
/// runs, a transfer right after a failover was told one did not: a call
/// that found the crashed head's backup already taken by another call was
/// served before that call had installed it. `Cluster::take_over` closes
/// the application's gate with the take.)
fn not_applied(error: &crucial::Error) -> bool {
    matches!(
        error,
        crucial::Error::Remote(
            crucial::RemoteError::WorkflowTimeout { .. }
                | crucial::RemoteError::WorkflowConflicts { .. }
                | crucial::RemoteError::Lost { .. }
        )
    )
}

/// Which node of a cross-node transaction a kill test kills.
#[derive(Clone, Copy, PartialEq)]
enum Victim {
    /// The node every workflow starts on (it manages them).
    Manager,
    /// The node every workflow reaches (it takes part).
    Participant,
    /// The node holding both accounts of every transfer: its commits write
    /// two of its homes (each account is a home), the second one's copy
    /// 600 ms after the first's (`--delay-between-homes-ms`).
    Alone,
}

/// `kill -9` of one node while transfers and audits run, every one of them
/// between an account of the victim and accounts of the other nodes: as
/// `Victim::Manager`, every workflow starts at one of the victim's
/// accounts; as `Victim::Participant`, every workflow starts elsewhere and
/// reaches the victim's accounts. Managers wait 600 ms between recording a
/// decision and sending it for one commit in four (`--delay-phase-two-ms`),
/// and the kill comes
/// once parts are prepared and waiting: for decisions that died with their
/// manager, or on a participant whose parts die with it (restored by the
/// replicas of its homes from their copies, `--replicas 2`). Nothing
/// half-applied, acknowledged transfers all there once, every audit sees
/// the total; parts in doubt learn their outcome from the decision's record.
///
/// With `Restart`, there is one copy of each object and every node has a
/// data directory: the victim comes back from its disk at once, and the
/// parts it had prepared are restored from there. With `Cut`, every peer
/// port is behind a [`Link`] and the victim's is cut instead of a kill: its
/// parts in doubt learn their outcome by asking while no decision reaches
/// them.
fn fault_mid_commit(name: &str, victim: Victim, fault: Fault) {
    let etcd = Etcd::start(name);
    let dirs: Vec<DataDir> = (0..3)
        .map(|i| DataDir::new(&format!("{name}-{i}")))
        .collect();
    let peers: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let links: Vec<Link> = peers.iter().map(|peer| Link::to(peer)).collect();
    // Decisions held long enough for the fault to come before they are
    // sent, once a part is seen waiting (on a loaded machine too).
    let delay = if fault == Fault::Cut { "1000" } else { "600" };
    let flags = |i: usize, delayed: bool| {
        let mut flags = vec!["--workflow-attempts", "100000"];
        match fault {
            Fault::Failover => flags.extend(["--replicas", "2"]),
            Fault::Restart => flags.extend(["--data-dir", dirs[i].arg()]),
            Fault::Cut => flags.extend([
                "--peer-listen",
                peers[i].as_str(),
                "--advertise-peer",
                links[i].addr.as_str(),
            ]),
        }
        if delayed {
            flags.extend(["--delay-phase-two-ms", delay]);
        }
        if i == 0 && victim == Victim::Alone {
            flags.extend(["--delay-between-homes-ms", "600"]);
        }
        flags
    };
    let delays = |i: usize| match victim {
        Victim::Manager => i == 0,
        Victim::Participant => i != 0,
        Victim::Alone => false,
    };
    let mut nodes: Vec<ServerProcess> = (0..3)
        .map(|i| etcd.node(name, &flags(i, delays(i))))
        .collect();
    wait_for_views(&nodes.iter().collect::<Vec<_>>(), 3);
    let mut addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let ids = accounts(&addrs);
    let placement = Placement::new(view_of(&addrs[0]));
    let on_victim = |id: &ObjectId| {
        let home = lambda_home(&id.application, Some((&id.type_name, &id.key)));
        placement.owner(LAMBDA_HOME, &home) == addrs[0]
    };
    let (mine, others): (Vec<usize>, Vec<usize>) = (0..ACCOUNTS).partition(|i| on_victim(&ids[*i]));
    assert_eq!(mine.len(), ACCOUNTS / 3);
    // Workflows start at `roots` and reach `reached`.
    let (roots, reached) = match victim {
        Victim::Manager => (mine.clone(), others.clone()),
        Victim::Participant => (others.clone(), mine.clone()),
        Victim::Alone => (mine.clone(), mine.clone()),
    };
    let client = connect(&addrs);
    open_all(&client, &ids);
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..3u64)
        .map(|caller| {
            let (addrs, ids, stop) = (addrs.clone(), ids.clone(), Arc::clone(&stop));
            let (roots, reached) = (roots.clone(), reached.clone());
            std::thread::spawn(move || {
                let client = connect(&addrs);
                let (mut done, mut refused) = (Vec::new(), 0);
                let mut i = caller + 23;
                while !stop.load(Ordering::Relaxed) {
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let from = roots[(i >> 33) as usize % roots.len()];
                    let mut to = reached[(i >> 17) as usize % reached.len()];
                    if to == from {
                        to = reached[((i >> 17) as usize + 1) % reached.len()];
                    }
                    // Both ways, so that no account runs dry.
                    let amount = [1, 2, -1, -2][(i >> 7) as usize % 4];
                    match SpreadAccount::at(ids[from].clone())
                        .with_client(client.clone())
                        .transfer(ids[to].clone(), amount)
                    {
                        Ok((a, b)) => done.push((from, to, a, b)),
                        Err(e) if not_applied(&e) => refused += 1,
                        Err(e) => panic!("a transfer: {e}"),
                    }
                }
                (done, refused)
            })
        })
        .collect();
    let root = ids[roots[0]].clone();
    let auditor = {
        let (addrs, ids, stop) = (addrs.clone(), ids.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let client = connect(&addrs);
            let (mut audits, mut refused) = (Vec::new(), 0);
            while !stop.load(Ordering::Relaxed) {
                match audit_from(&client, &root, &ids) {
                    Ok(seen) => audits.push(seen),
                    Err(e) if not_applied(&e) => refused += 1,
                    Err(e) => panic!("an audit: {e}"),
                }
            }
            (audits, refused)
        })
    };
    // The kill comes once the participants hold prepared parts (their
    // decisions are 600 ms or more away).
    std::thread::sleep(Duration::from_millis(500));
    let participants = match victim {
        Victim::Manager | Victim::Alone => connect(&addrs[1..]),
        Victim::Participant => connect(&addrs[..1]),
    };
    let waited = std::time::Instant::now();
    if victim == Victim::Alone {
        // No part waits anywhere: most of the victim's time is spent
        // between its homes' copies; the kill lands there.
        std::thread::sleep(Duration::from_millis(1000));
    }
    while victim != Victim::Alone && participants.workflow_stats().expect("stats").in_doubt == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "no part in doubt"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let resolved_before = participants.workflow_stats().expect("stats").resolved;
    match fault {
        Fault::Failover => nodes[0].kill(),
        Fault::Restart => {
            nodes[0].kill();
            let port = port_of(&nodes[0]);
            nodes[0] = etcd.node_at(name, port, &flags(0, delays(0)));
            wait_for_views(&nodes.iter().collect::<Vec<_>>(), 3);
        }
        Fault::Cut => {
            links[0].cut();
            std::thread::sleep(Duration::from_secs(4));
            let resolved = participants.workflow_stats().expect("stats").resolved;
            assert!(
                resolved > resolved_before,
                "parts in doubt resolved while the cut lasted"
            );
            links[0].heal();
        }
    }
    std::thread::sleep(Duration::from_secs(7));
    stop.store(true, Ordering::Relaxed);
    let (audits, refused_audits) = auditor.join().expect("the auditor failed");
    let mut history: Vec<Transfer> = Vec::new();
    let mut refused = 0;
    for caller in callers {
        let (done, r) = caller.join().expect("a caller failed");
        history.extend(done);
        refused += r;
    }
    if fault == Fault::Failover {
        nodes.remove(0);
        addrs.remove(0);
    }
    let client = connect(&addrs);
    // Read account by account (nothing runs now): the audit is a static
    // function, run at the application's home, which stays lost after a
    // node with the only copy crashed, even once it is back.
    let last: Audit = ids
        .iter()
        .map(|id| {
            let seen = SpreadAccount::at(id.clone())
                .with_client(client.clone())
                .seen()
                .expect("an account after the kill");
            (id.clone(), seen)
        })
        .collect();
    let stats = client.workflow_stats().expect("stats");
    eprintln!(
        "{} transfers ({refused} refused), {} audits ({refused_audits} refused), \
         {} faulted; now: {stats:?}",
        history.len(),
        audits.len(),
        match victim {
            Victim::Manager => "manager",
            Victim::Participant => "participant",
            Victim::Alone => "node with both accounts",
        }
    );
    check(&history, &audits, &last).expect("nothing half-applied or lost");
    assert!(history.len() > 20, "transfers ran");
    if fault != Fault::Restart {
        // After a restart, the managers' decisions sent again may reach the
        // restored parts before they ask.
        assert!(stats.resolved > 0, "the fault left parts in doubt");
    }
}

/// What happens to the victim.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// Killed; its objects fail over to their copies (`--replicas 2`).
    Failover,
    /// Killed, and back at once from its data directory (one copy).
    Restart,
    /// Nobody reaches its peer port for 4 s (it reaches the others, and
    /// etcd): decisions for it are lost meanwhile (one copy).
    Cut,
}

#[test]
fn a_manager_killed_mid_commit_leaves_nothing_half_applied() {
    fault_mid_commit("spread-kill-manager", Victim::Manager, Fault::Failover);
}

#[test]
fn a_participant_killed_mid_commit_leaves_nothing_half_applied() {
    fault_mid_commit(
        "spread-kill-participant",
        Victim::Participant,
        Fault::Failover,
    );
}

#[test]
fn a_commit_writing_two_homes_of_a_killed_node_fails_over_whole() {
    fault_mid_commit("spread-kill-alone", Victim::Alone, Fault::Failover);
}

#[test]
fn a_participant_cut_off_from_its_managers_learns_their_decisions_by_asking() {
    fault_mid_commit("spread-cut-participant", Victim::Participant, Fault::Cut);
}

#[test]
fn a_participant_restarted_from_its_disk_finishes_what_it_prepared() {
    fault_mid_commit(
        "spread-restart-participant",
        Victim::Participant,
        Fault::Restart,
    );
}

/// The node of every account `crucial-admin objects` lists, by key.
fn accounts_listed(node: &ServerProcess) -> HashMap<String, String> {
    let listed = admin(node, &["objects"]).expect("crucial-admin objects");
    listed["objects"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|row| row["type_name"] == "SpreadAccount")
        .map(|row| {
            let text = |field: &str| row[field].as_str().unwrap_or_default().to_string();
            (text("key"), text("node"))
        })
        .collect()
}

/// The node `crucial-admin objects` lists account `key` on.
fn listed_on(node: &ServerProcess, key: &str) -> Option<String> {
    accounts_listed(node).remove(key)
}

/// `crucial-admin migrate` moves one hot account (half of all transfers
/// take from it) to another node while transfers and audits run, with two
/// copies of every account, then `--back` to where the ring places it: no
/// workflow fails (its calls wait for the move), every other account stays
/// where it was, and the history check holds across both moves.
#[test]
fn a_hot_account_migrated_while_transfers_run_moves_alone_and_nothing_fails() {
    let name = "spread-migrate";
    let etcd = Etcd::start(name);
    let (nodes, addrs) = three(&etcd, name, &["--replicas", "2"]);
    let ids = accounts(&addrs);
    let client = connect(&addrs);
    open_all(&client, &ids);
    let hot = &ids[0].key;
    let ring_owner = listed_on(&nodes[0], hot).expect("the hot account is listed");
    // Bad requests are refused, saying why, and move nothing.
    let refused = admin(
        &nodes[0],
        &["migrate", "crucial::AtomicI64", "x", "--to", &addrs[1]],
    )
    .expect_err("a shared object is placed by the ring");
    assert!(refused.contains("not a lambda object type"), "{refused}");
    let refused = admin(
        &nodes[0],
        &["migrate", "SpreadAccount", hot, "--to", "10.9.9.9:1"],
    )
    .expect_err("not a member");
    assert!(refused.contains("not a member of the cluster"), "{refused}");
    let before: HashMap<String, Option<String>> = ids
        .iter()
        .map({
            let listed = accounts_listed(&nodes[0]);
            move |id| (id.key.clone(), listed.get(&id.key).cloned())
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..3u64)
        .map(|caller| {
            let (addrs, ids, stop) = (addrs.clone(), ids.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let client = connect(&addrs);
                let (mut done, mut slowest) = (Vec::new(), Duration::ZERO);
                let mut i = caller + 5;
                while !stop.load(Ordering::Relaxed) {
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let other = 1 + (i >> 33) as usize % (ACCOUNTS - 1);
                    let (from, to) = match i >> 63 {
                        0 => (0, other),
                        _ => (
                            other,
                            (other + 1 + (i >> 17) as usize % (ACCOUNTS - 1)) % ACCOUNTS,
                        ),
                    };
                    // Both ways, so that the hot account never runs dry.
                    let amount = [1, 2, -1, -2][(i >> 7) as usize % 4];
                    let started = std::time::Instant::now();
                    let (a, b) = SpreadAccount::at(ids[from].clone())
                        .with_client(client.clone())
                        .transfer(ids[to].clone(), amount)
                        .expect("a transfer while an account moves");
                    slowest = slowest.max(started.elapsed());
                    done.push((from, to, a, b));
                }
                (done, slowest)
            })
        })
        .collect();
    let auditor = {
        let (addrs, ids, stop) = (addrs.clone(), ids.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let client = connect(&addrs);
            let mut audits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                audits.push(audit(&client, &ids));
            }
            audits
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    let target = addrs
        .iter()
        .find(|a| **a != ring_owner)
        .expect("another node")
        .clone();
    let started = std::time::Instant::now();
    let moved = admin(
        &nodes[1],
        &["migrate", "SpreadAccount", hot, "--to", &target],
    )
    .expect("crucial-admin migrate");
    eprintln!("migrated in {:?}: {moved}", started.elapsed());
    assert_eq!(moved["from"], ring_owner.as_str());
    assert_eq!(moved["to"], target.as_str());
    assert_eq!(listed_on(&nodes[0], hot), Some(target.clone()));
    let after = accounts_listed(&nodes[2]);
    for id in &ids[1..] {
        assert_eq!(
            after.get(&id.key).cloned(),
            before[&id.key],
            "{} moved",
            id.key
        );
    }
    let status = admin(&nodes[2], &["status"]).expect("crucial-admin status");
    assert_eq!(
        status["placed"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    // Transfers go on with the account at its new node, then it goes back.
    std::thread::sleep(Duration::from_millis(800));
    let started = std::time::Instant::now();
    let back = admin(&nodes[2], &["migrate", "SpreadAccount", hot, "--back"])
        .expect("crucial-admin migrate --back");
    eprintln!("moved back in {:?}: {back}", started.elapsed());
    assert_eq!(back["to"], ring_owner.as_str());
    assert_eq!(listed_on(&nodes[1], hot), Some(ring_owner));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (mut history, mut slowest): (Vec<Transfer>, Duration) = (Vec::new(), Duration::ZERO);
    for caller in callers {
        let (done, slow) = caller.join().expect("a caller failed");
        history.extend(done);
        slowest = slowest.max(slow);
    }
    let audits = auditor.join().expect("the auditor failed");
    let last = audit(&client, &ids);
    eprintln!(
        "{} transfers (the slowest took {slowest:?}), {} audits",
        history.len(),
        audits.len()
    );
    check(&history, &audits, &last).expect("a serializable history across the moves");
    assert!(history.len() > 20, "transfers ran");
}

/// Read-only workflows the cluster's light replicas ran, all nodes together.
fn light_reads(addrs: &[String]) -> u64 {
    connect(addrs).workflow_stats().expect("stats").light
}

/// `crucial-admin light` gives a hot, read-mostly account light replicas on
/// the two other nodes while a writer transfers from it and readers read
/// it (`seen`, a `&self` function) through clients connected before, which
/// find the change in the view and send reads to all three nodes in turn:
/// the light replicas serve most of their share,
/// checked at the owner, and every read is linearizable — per version one
/// balance, the one the acknowledged transfers say; a read after a
/// caller's own transfer sees it; a caller's reads never go back. `--off`
/// ends it: the light replicas serve no more.
#[test]
fn light_replicas_of_a_hot_account_serve_its_reads_and_every_read_is_linearizable() {
    let name = "spread-light";
    let etcd = Etcd::start(name);
    let (nodes, addrs) = three(&etcd, name, &[]);
    let ids = accounts(&addrs);
    let client = connect(&addrs);
    open_all(&client, &ids);
    let hot = ids[0].clone();
    let owner = listed_on(&nodes[0], &hot.key).expect("the hot account is listed");
    let others: Vec<String> = addrs.iter().filter(|a| **a != owner).cloned().collect();
    let refused = admin(
        &nodes[0],
        &["light", "SpreadAccount", &hot.key, "--on", "10.9.9.9:1"],
    )
    .expect_err("not a member");
    assert!(refused.contains("not a member of the cluster"), "{refused}");
    let before = light_reads(&addrs);
    let stop = Arc::new(AtomicBool::new(false));
    // (version, balance) of every read, and of every state a transfer saw.
    let reader = |seed: u64| {
        let (addrs, hot, stop) = (addrs.clone(), hot.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let client = connect(&addrs);
            let mut seen: Vec<(u64, i64)> = Vec::new();
            let mut last = 0;
            let mut i = seed;
            while !stop.load(Ordering::Relaxed) {
                let now = SpreadAccount::at(hot.clone())
                    .with_client(client.clone())
                    .seen()
                    .expect("a read");
                assert!(
                    now.version >= last,
                    "a read went back: {} after {last}",
                    now.version
                );
                last = now.version;
                seen.push((now.version, now.balance));
                i += 1;
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            seen
        })
    };
    let readers: Vec<_> = (0..2).map(reader).collect();
    let writer = {
        let (addrs, ids, stop) = (addrs.clone(), ids.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let client = connect(&addrs);
            let mut states: Vec<(u64, i64)> = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let amount = if i % 2 == 0 { 3 } else { -3 };
                let to = ids[1 + (i as usize % (ACCOUNTS - 1))].clone();
                let (before, _) = SpreadAccount::at(ids[0].clone())
                    .with_client(client.clone())
                    .transfer(to, amount)
                    .expect("a transfer");
                states.push((before.version, before.balance));
                states.push((before.version + 1, before.balance - amount));
                // Its own write, read back (from any of the three nodes).
                let after = SpreadAccount::at(ids[0].clone())
                    .with_client(client.clone())
                    .seen()
                    .expect("a read after a write");
                assert!(
                    after.version > before.version,
                    "a read after a transfer missed it: version {} after {}",
                    after.version,
                    before.version
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            states
        })
    };
    // Light replicas given while the callers run: their clients, connected
    // before, find them in the view within a second.
    std::thread::sleep(Duration::from_millis(300));
    let on = others.join(",");
    let lit = admin(
        &nodes[1],
        &["light", "SpreadAccount", &hot.key, "--on", &on],
    )
    .expect("crucial-admin light");
    eprintln!("light replicas: {lit}");
    assert_eq!(lit["owner"], owner.as_str());
    assert_eq!(lit["light"].as_array().map(Vec::len), Some(2), "{lit}");
    let status = admin(&nodes[2], &["status"]).expect("crucial-admin status");
    assert_eq!(
        status["light"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let states = writer.join().expect("the writer failed");
    let reads: Vec<(u64, i64)> = readers
        .into_iter()
        .flat_map(|r| r.join().expect("a reader failed"))
        .collect();
    let balances: HashMap<u64, i64> = states.iter().copied().collect();
    for (version, balance) in &states {
        assert_eq!(
            balances[version], *balance,
            "two balances at version {version}"
        );
    }
    for (version, balance) in &reads {
        if let Some(expected) = balances.get(version) {
            assert_eq!(
                balance, expected,
                "a read saw {balance} at version {version}"
            );
        }
    }
    let served = light_reads(&addrs) - before;
    eprintln!(
        "{} reads, {} transfers; {served} read-only workflows served by the light replicas",
        reads.len(),
        states.len() / 2
    );
    // Two of three nodes serve light for the last 3 s of about 3.3, from
    // when each client looked at the view again (within a second).
    assert!(
        served as usize > reads.len() / 5,
        "the light replicas served {served} of {} reads",
        reads.len()
    );
    // Off: the light replicas serve no more.
    let off = admin(&nodes[0], &["light", "SpreadAccount", &hot.key, "--off"])
        .expect("crucial-admin light --off");
    assert_eq!(off["light"].as_array().map(Vec::len), Some(0), "{off}");
    let after_off = light_reads(&addrs);
    let fresh = connect(&addrs);
    for _ in 0..30 {
        SpreadAccount::at(hot.clone())
            .with_client(fresh.clone())
            .seen()
            .expect("a read");
    }
    assert_eq!(
        light_reads(&addrs),
        after_off,
        "a light replica served after --off"
    );
}
