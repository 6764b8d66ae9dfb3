//! The history checker over transactions that span nodes: three stores in
//! one process, each with its participant, the bank's accounts spread over
//! them, every workflow managed by the node of the account it starts at and
//! committed with two-phase commit when it reached another node. The same
//! checker as for one node (`txn/history.rs`): serializable in commit-number
//! order, and that order follows real time. Then the broken engines it must
//! catch, and write skew across two nodes step by step. (The real nodes'
//! runs, over the peer plane, are in `server/tests`.)

use super::decision;
use super::history::{account, check, workload, Body, Kv, Runner, ACCOUNTS, THREADS, WORKFLOWS};
use super::participant::{Access, Participant, TxnId};
use super::spanning::{NodeId, Reach, Spanning};
use super::transaction::{Abort, Stance, Store, Writes};
use super::{retry, Limits};
use bytes::Bytes;
use crucial::ObjectId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODES: usize = 3;

/// Nodes in one process: each node's participant, reached by direct calls.
struct InProcess {
    nodes: Vec<Arc<Participant>>,
    /// Participant operations sent (reads, prepares, commits, aborts).
    messages: AtomicU64,
    /// Read-only transactions ended with checks instead of 2PC.
    read_only: AtomicU64,
}

/// One node's view of the others.
struct Node {
    me: usize,
    all: Arc<InProcess>,
}

/// Where the test's objects live: account `i` (its home is its key) on
/// node `i % NODES`.
fn owner_index(home: &str) -> usize {
    let i: usize = home.trim_start_matches("acct-").parse().unwrap_or_default();
    i % NODES
}

impl Node {
    fn at(&self, node: &str) -> &Participant {
        self.all.messages.fetch_add(1, Ordering::Relaxed);
        &self.all.nodes[node.parse::<usize>().expect("a node number")]
    }
}

impl Reach for Node {
    fn me(&self) -> NodeId {
        self.me.to_string()
    }

    fn number(&self) -> u64 {
        self.me as u64
    }

    fn home(&self, object: &ObjectId) -> String {
        object.key.clone()
    }

    fn at_home(&self, object: &ObjectId, home: &str) -> bool {
        object.key == home
    }

    fn owner(&self, home: &str) -> NodeId {
        owner_index(home).to_string()
    }

    fn get(
        &self,
        node: &str,
        access: Access,
        object: &ObjectId,
        key: &[u8],
    ) -> Result<Option<Bytes>, Abort> {
        self.at(node).get(access, object, key)
    }

    fn scan(
        &self,
        node: &str,
        access: Access,
        object: &ObjectId,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, Abort> {
        self.at(node).scan(access, object, from, to)
    }

    fn prepare(
        &self,
        txn: TxnId,
        deadline: Instant,
        anchor: &ObjectId,
        parts: Vec<super::spanning::Part>,
    ) -> Vec<Result<u64, Abort>> {
        parts
            .into_iter()
            .map(|(node, writes, reached)| {
                self.at(&node)
                    .prepare(txn, deadline, anchor, writes, reached)
            })
            .collect()
    }

    fn commit(&self, txn: TxnId, nodes: &[NodeId], tid: u64) -> Result<(), String> {
        for node in nodes {
            self.at(node).commit(txn, tid)?;
        }
        Ok(())
    }

    fn abort(&self, txn: TxnId, nodes: &[NodeId]) {
        for node in nodes {
            let _ = self.at(node).abort(txn);
        }
    }

    fn validate(
        &self,
        txn: TxnId,
        _deadline: Instant,
        nodes: &[NodeId],
    ) -> Option<Vec<Result<(), Abort>>> {
        self.all.read_only.fetch_add(1, Ordering::Relaxed);
        Some(
            nodes
                .iter()
                .map(|node| self.at(node).validate(txn))
                .collect(),
        )
    }
}

fn cluster() -> (Arc<InProcess>, Vec<Arc<dyn Reach>>) {
    let all = Arc::new(InProcess {
        nodes: (0..NODES)
            .map(|_| Arc::new(Participant::new(Arc::new(Store::default()))))
            .collect(),
        messages: AtomicU64::new(0),
        read_only: AtomicU64::new(0),
    });
    let reach = (0..NODES)
        .map(|me| {
            Arc::new(Node {
                me,
                all: Arc::clone(&all),
            }) as Arc<dyn Reach>
        })
        .collect();
    (all, reach)
}

/// Runs each workflow on the node of the account it starts at.
struct Managed<'a> {
    all: &'a InProcess,
    reach: &'a [Arc<dyn Reach>],
}

impl Runner for Managed<'_> {
    fn run(&self, from: usize, body: &mut Body<'_>) -> (u64, u64, u32) {
        let root = from % NODES;
        let store = self.all.nodes[root].store();
        let limits = Limits::default();
        let committed = retry(store, limits, |txn| {
            let deadline = Instant::now() + limits.time;
            let home = account(from).key;
            let reach = Arc::clone(&self.reach[root]);
            let mut spanning = Spanning::reaching(txn, reach, home, deadline);
            let value = body(&mut spanning as &mut dyn Kv)?;
            Ok((value, spanning))
        })
        .expect("commits within the limits");
        if let Some(decision) = committed.decision {
            decision.deliver().expect("every participant installs");
        }
        (committed.value, committed.tid, committed.attempts)
    }
}

fn run_history(all: &Arc<InProcess>, reach: &[Arc<dyn Reach>]) -> Vec<super::history::Record> {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let runner = Managed { all, reach };
                    workload(&runner, 0xD1B5_4A32_D192_ED03 ^ (t as u64 + 1))
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    })
}

#[test]
fn transfers_and_audits_across_three_nodes_are_strictly_serializable() {
    let (all, reach) = cluster();
    let history = run_history(&all, &reach);
    assert_eq!(history.len(), THREADS * WORKFLOWS);
    let again: u32 = history.iter().map(|r| r.attempts - 1).sum();
    let messages = all.messages.load(Ordering::Relaxed);
    let read_only = all.read_only.load(Ordering::Relaxed);
    println!(
        "{} workflows over {NODES} nodes ({ACCOUNTS} accounts), {again} re-executions, \
         {messages} participant messages, {read_only} read-only ends without 2PC",
        history.len()
    );
    assert!(messages > 0, "workflows reached other nodes");
    assert!(read_only > 0, "audits that span nodes end with checks");
    for node in &all.nodes {
        assert!(node.in_doubt().is_empty(), "a transaction left in doubt");
    }
    check(history);
}

#[test]
fn the_checker_catches_prepares_that_skip_validation() {
    let (all, reach) = cluster();
    for node in &all.nodes {
        node.store().weaken_validation();
    }
    // The audit inside the workload or the checker afterwards must fail.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check(run_history(&all, &reach));
    }));
    assert!(caught.is_err(), "a broken engine passed the checker");
}

fn money(n: u64) -> Bytes {
    Bytes::copy_from_slice(&n.to_le_bytes())
}

/// Two doctors on call, on two nodes; each workflow takes one off call if
/// the other is on call. Run one after the other they leave one on call;
/// interleaved without pins, both go off call (write skew).
#[test]
fn write_skew_across_two_nodes_is_refused() {
    let (all, reach) = cluster();
    let (x, y) = (account(0), account(1)); // node 0, node 1
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in [&x, &y] {
        let owner = &all.nodes[owner_index(&id.key)];
        let mut t = owner.store().begin(None);
        t.put(id, b"on", money(1)).unwrap();
        t.commit().unwrap();
    }
    // T1 on node 0 reads y (on node 1) and writes x; T2 on node 1 reads x
    // (on node 0) and writes y.
    let mut t1 = Spanning::reaching(
        all.nodes[0].store().begin(None),
        Arc::clone(&reach[0]),
        x.key.clone(),
        deadline,
    );
    let mut t2 = Spanning::reaching(
        all.nodes[1].store().begin(None),
        Arc::clone(&reach[1]),
        y.key.clone(),
        deadline,
    );
    assert_eq!(t1.get(&y, b"on").unwrap(), Some(money(1)));
    assert_eq!(t2.get(&x, b"on").unwrap(), Some(money(1)));
    t1.write(&x, b"on", Some(money(0))).unwrap();
    t2.write(&y, b"on", Some(money(0))).unwrap();
    // T1 commits first (its read of y pinned on node 1 meanwhile); T2's
    // read of x, on node 0, no longer holds when T2 prepares.
    let first = t1.commit().map(deliver);
    let second = t2.commit().map(deliver);
    assert!(first.is_ok(), "{:?}", first.err());
    assert_eq!(second.err(), Some(Abort::Conflict));
    let on = |id: &ObjectId| all.nodes[owner_index(&id.key)].store().peek(id, b"on");
    assert_eq!((on(&x), on(&y)), (Some(money(0)), Some(money(1))));
    for node in &all.nodes {
        assert!(node.in_doubt().is_empty());
    }
}

/// The same interleaving with the two prepares overlapping: T1 has
/// prepared on node 0 (its write of x locked, its read of y pinned on node
/// 1) when T2 prepares; T2 must be refused.
#[test]
fn a_prepared_readers_pin_refuses_a_writer_until_the_outcome() {
    let (all, _) = cluster();
    let (x, y) = (account(0), account(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    let txn = |seq| TxnId { manager: 9, seq };
    let (n0, n1) = (&all.nodes[0], &all.nodes[1]);
    let anchor = decision::anchor(&x.key);
    // T1: reads y on node 1, writes x on node 0.
    let read = |seq| Access {
        txn: txn(seq),
        deadline,
        stance: Stance::Optimistic,
    };
    n1.get(read(1), &y, b"on").unwrap();
    // T2: reads x on node 0, writes y on node 1.
    n0.get(read(2), &x, b"on").unwrap();
    let t1_x: Writes = vec![((x.clone(), b"on".to_vec()), Some(money(0)))];
    let t2_y: Writes = vec![((y.clone(), b"on".to_vec()), Some(money(0)))];
    let v1 = [
        n0.prepare(txn(1), deadline, &anchor, t1_x, false),
        n1.prepare(txn(1), deadline, &anchor, Vec::new(), false),
    ];
    assert!(v1.iter().all(Result::is_ok), "{v1:?}");
    // T2's read of x is locked by T1, its write of y pinned by T1.
    assert_eq!(
        n1.prepare(txn(2), deadline, &anchor, t2_y.clone(), false),
        Err(Abort::Conflict)
    );
    assert_eq!(
        n0.prepare(txn(2), deadline, &anchor, Vec::new(), false),
        Err(Abort::Conflict)
    );
    assert_eq!(n0.in_doubt(), [txn(1)]);
    assert_eq!(n1.in_doubt(), [txn(1)]);
    let tid = v1.iter().map(|v| *v.as_ref().unwrap()).max().unwrap();
    n0.commit(txn(1), tid).unwrap();
    n1.commit(txn(1), tid).unwrap();
    // Repeated messages get the same answers and change nothing.
    assert_eq!(
        n0.prepare(txn(1), deadline, &anchor, Vec::new(), false),
        Ok(tid)
    );
    assert!(n1.commit(txn(1), tid).is_ok());
    let _ = n0.abort(txn(1));
    assert_eq!(n0.store().peek(&x, b"on"), Some(money(0)));
    // The pin is gone: a writer of y gets through now.
    let mut writer = n1.store().begin(None);
    writer.put(&y, b"on", money(7)).unwrap();
    assert!(
        writer.commit().unwrap() > tid,
        "numbered after what it follows"
    );
}

#[test]
fn a_part_whose_manager_went_quiet_is_dropped_at_its_deadline_and_unlocks_nothing_twice() {
    let store = Arc::new(Store::default());
    let node = Participant::new(Arc::clone(&store));
    let x = account(0);
    let soon = Instant::now() + Duration::from_millis(1);
    let txn = TxnId { manager: 1, seq: 1 };
    let access = Access {
        txn,
        deadline: soon,
        stance: Stance::Optimistic,
    };
    node.get(access, &x, b"on").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(node.expire(Instant::now()), 1);
    assert_eq!(
        node.prepare(txn, soon, &decision::anchor(&x.key), Vec::new(), false),
        Err(Abort::Conflict),
        "an expired part votes no"
    );
    assert_eq!(node.get(access, &x, b"on"), Err(Abort::Conflict));
    let mut t = store.begin(None);
    t.put(&x, b"on", money(1)).unwrap();
    t.commit().expect("nothing held");
}

/// Phase two of a committed execution.
fn deliver(commit: super::spanning::Commit) -> u64 {
    if let Some(decision) = commit.decision {
        decision.deliver().expect("every participant installs");
    }
    commit.tid
}

/// A participant whose decision did not come (the manager crashed after
/// deciding, or before) learns it from the record at the manager's home:
/// the commit's number, or an abort presumed and recorded.
#[test]
fn a_participant_left_in_doubt_learns_the_outcome_from_the_record() {
    let (all, reach) = cluster();
    let (x, y) = (account(0), account(1)); // node 0, node 1
    let deadline = Instant::now() + Duration::from_secs(10);
    let (n0, n1) = (&all.nodes[0], &all.nodes[1]);
    let anchor = decision::anchor(&x.key);
    // Decided and recorded on node 0; the decision never reaches node 1.
    let mut t = Spanning::reaching(
        n0.store().begin(None),
        Arc::clone(&reach[0]),
        x.key.clone(),
        deadline,
    );
    t.write(&x, b"on", Some(money(5))).unwrap();
    t.write(&y, b"on", Some(money(6))).unwrap();
    let commit = t.commit().expect("commits");
    let decided = commit.decision.expect("spans two nodes");
    let waiting = n1.waiting_since(Instant::now() + Duration::from_secs(1));
    assert_eq!(waiting.len(), 1);
    let (txn, asked) = waiting[0].clone();
    assert_eq!(asked, anchor);
    drop(decided); // lost with its manager
    match decision::resolve(n0.store(), txn, &anchor) {
        decision::Resolution::Committed(tid) => {
            assert_eq!(tid, commit.tid);
            n1.commit(txn, tid).unwrap();
        }
        other => panic!("the record says committed: {other:?}"),
    }
    assert_eq!(n1.store().peek(&y, b"on"), Some(money(6)));
    assert!(n1.in_doubt().is_empty());
    // Prepared on node 1, never decided (the manager died after its
    // prepare): an abort is presumed, recorded, and answered again.
    let lost = TxnId {
        manager: 9,
        seq: 77,
    };
    let write_y: Writes = vec![((y.clone(), b"on".to_vec()), Some(money(0)))];
    n1.prepare(lost, deadline, &anchor, write_y, false).unwrap();
    assert!(matches!(
        decision::resolve(n0.store(), lost, &anchor),
        decision::Resolution::Aborted(Some(_))
    ));
    let _ = n1.abort(lost);
    assert!(matches!(
        decision::resolve(n0.store(), lost, &anchor),
        decision::Resolution::Aborted(None)
    ));
    assert_eq!(
        n1.store().peek(&y, b"on"),
        Some(money(6)),
        "nothing of it installed"
    );
    let mut writer = n1.store().begin(None);
    writer.put(&y, b"on", money(7)).unwrap();
    writer.commit().expect("its lock is gone");
}

/// A node that lost a transaction's part (it restarted, or took its objects
/// over from a node that crashed) votes no when the manager says it had
/// reached it: a yes would commit the other nodes' parts without the
/// writes of the lost one.
#[test]
fn a_participant_that_lost_the_part_it_was_sent_votes_no() {
    let node = Participant::new(Arc::new(Store::default()));
    let x = account(0);
    let anchor = decision::anchor(&x.key);
    let deadline = Instant::now() + Duration::from_secs(10);
    let txn = TxnId { manager: 3, seq: 1 };
    assert_eq!(
        node.prepare(txn, deadline, &anchor, Vec::new(), true),
        Err(Abort::Conflict)
    );
    // Only written there, by the manager: the writes come with the prepare.
    let other = TxnId { manager: 3, seq: 2 };
    let writes: Writes = vec![((x.clone(), b"on".to_vec()), Some(money(1)))];
    assert!(node
        .prepare(other, deadline, &anchor, writes, false)
        .is_ok());
}

/// Parts restored together (copies a node took over) keep their sets under
/// one lock, even where they share a set here (two live parts never did
/// where they prepared, but sets are cut differently on each node, and a
/// copy of a part that ended may be among them); once all are decided, the
/// writes of those that committed are installed, the others' not.
#[test]
fn parts_restored_together_share_their_sets_and_install_what_committed() {
    use super::participant::PartCopy;
    let store = Arc::new(Store::default());
    let node = Participant::new(Arc::clone(&store));
    let x = account(0);
    let anchor = decision::anchor(&x.key);
    let part = |seq: u64, key: &[u8], value: u64| PartCopy {
        txn: TxnId { manager: 4, seq },
        anchor: anchor.clone(),
        proposed: 1,
        writes: vec![((x.clone(), key.to_vec()), Some(money(value)))],
        reads: vec![super::participant::one_key(&x, b"on")],
    };
    let parts = vec![part(1, b"a", 10), part(2, b"b", 20), part(3, b"a", 30)];
    assert_eq!(node.restore_all(parts, false), Ok(3));
    // Held: a writer of the object conflicts until every part is decided.
    let mut writer = store.begin(None);
    writer.put(&x, b"on", money(1)).unwrap();
    assert_eq!(writer.commit(), Err(Abort::Conflict));
    let waiting = node.waiting_since(Instant::now());
    assert_eq!(waiting.len(), 3, "each asks for its outcome");
    let txn = |seq| TxnId { manager: 4, seq };
    assert!(
        node.commit(txn(1), 50).unwrap().is_empty(),
        "two still wait"
    );
    assert!(node.abort(txn(3)).is_empty(), "one still waits");
    let installed = node.commit(txn(2), 60).unwrap();
    assert_eq!(installed.len(), 1, "the group installs once");
    assert_eq!(
        store.peek(&x, b"a"),
        Some(money(10)),
        "1 committed, 3 did not"
    );
    assert_eq!(store.peek(&x, b"b"), Some(money(20)));
    let mut writer = store.begin(None);
    writer.put(&x, b"on", money(1)).unwrap();
    assert!(writer.commit().unwrap() > 60, "unlocked, numbered after");
}

/// A part of a transaction that wrote nowhere ends with a check of its
/// reads: refused if a writer changed or holds what it read, else dropped
/// with nothing left held (a writer locks the set at once).
#[test]
fn a_read_only_check_refuses_a_set_changed_or_locked_since_the_read() {
    let (all, _reach) = cluster();
    let x = account(1);
    let node = &all.nodes[owner_index(&x.key)];
    let store = node.store();
    let mut seed = store.begin(None);
    seed.put(&x, b"on", money(5)).unwrap();
    seed.commit().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let txn = |seq| TxnId { manager: 0, seq };
    let access = |seq| Access {
        txn: txn(seq),
        deadline,
        stance: Stance::Optimistic,
    };
    let write = |n| {
        let mut writer = store.begin(None);
        writer.put(&x, b"on", money(n)).unwrap();
        writer
    };

    node.get(access(1), &x, b"on").unwrap();
    write(6).commit().unwrap();
    assert_eq!(node.validate(txn(1)), Err(Abort::Conflict), "changed since");

    node.get(access(2), &x, b"on").unwrap();
    let prepared = write(7).prepare().unwrap();
    assert_eq!(node.validate(txn(2)), Err(Abort::Conflict), "locked");
    prepared.abort();

    assert_eq!(node.get(access(3), &x, b"on").unwrap(), Some(money(6)));
    assert!(!node.wrote(txn(3)));
    assert_eq!(node.validate(txn(3)), Ok(()));
    assert_eq!(node.validate(txn(3)), Ok(()), "a repeated check");
    assert!(node.in_doubt().is_empty());
    write(8).commit().expect("nothing of the reader is held");
    assert_eq!(
        node.get(access(3), &x, b"on"),
        Err(Abort::Conflict),
        "ended"
    );

    // A part with writes is not the check's to end.
    node.access(txn(4), deadline, |t| t.put(&x, b"on", money(9)))
        .unwrap();
    assert!(node.wrote(txn(4)));
    assert_eq!(node.validate(txn(4)), Err(Abort::Conflict));
    assert_eq!(store.peek(&x, b"on"), Some(money(8)));
}
