//! Deduplication of retried requests: a bounded memory of recent replies per client.
//!
//! A request is named by `(client id, request id)`. A client that lost its
//! connection re-sends in-flight mutating calls with the same ids; the node
//! answers them from here instead of running them again. Each client keeps its
//! last `window` replies; at most `clients` clients are remembered, the least
//! recently seen being forgotten first. Read-only calls are not recorded.
//!
//! The layout follows from a profile of the node under 64 pipelined
//! connections, where this table took a quarter of the node's CPU when it was
//! one lock over a map of clients, each a hash map of requests plus an
//! eviction queue (five hash operations and two global lock round trips per
//! call, and a cache miss to drop the oldest entry):
//! - clients are spread over [`SHARDS`] locks, so connections rarely contend;
//! - a client's window is a ring of request ids sorted by id, beside a ring of
//!   their entries: clients number their requests in increasing order, so
//!   recording is a push at the back, finding a running request is a scan of
//!   the newest few ids (a binary search for older ones), and forgetting the
//!   oldest is a pop at the front (ids arriving out of order, as when a batch
//!   runs in two tasks, are inserted in place: correct and merely slower);
//! - the least recently seen client is found with a queue of `(client, time
//!   seen)` checked lazily (a client seen again since it was queued is queued
//!   again), not by scanning every client.

use crucial::__private::wire::Outcome;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Number of independently locked parts of a large table.
const SHARDS: usize = 32;

/// Below this many remembered clients the table is one part, so the limit is
/// exact (tests and small nodes); above it each part keeps its share.
const SHARD_FROM_CLIENTS: usize = 1024;

/// What to do with an incoming mutating request.
pub enum Begin {
    /// First time seen: run it, then call [`Dedup::finish`].
    Fresh,
    /// Already answered: send this again.
    Done(Outcome),
    /// Running right now (a retry raced the original): wait, then ask again.
    InFlight(Arc<Notify>),
}

enum Entry {
    /// Running; the notifier is created only if a retry comes to wait for it.
    Running(Option<Arc<Notify>>),
    /// Answered; `true` if the reply is also on disk (a call on a persistent
    /// object), so forgetting it must delete it there too.
    Done(Outcome, bool),
}

impl Entry {
    /// Forgets the entry. Retries waiting for a running request are woken:
    /// they ask again, find nothing and run (the bounded memory has lost that
    /// request; waiting would never end, as `finish` finds no entry to wake).
    /// Returns whether the reply was on disk.
    fn forget(self) -> bool {
        match self {
            Entry::Running(Some(notify)) => {
                notify.notify_waiters();
                false
            }
            Entry::Running(None) => false,
            Entry::Done(_, stored) => stored,
        }
    }

    /// What a request that finds this entry does.
    fn begin(&mut self) -> Begin {
        match self {
            Entry::Done(outcome, _) => Begin::Done(outcome.clone()),
            Entry::Running(notify) => Begin::InFlight(Arc::clone(
                notify.get_or_insert_with(|| Arc::new(Notify::new())),
            )),
        }
    }
}

/// One client's recent requests, sorted by request id. The ids are kept apart
/// from the entries, so a search touches a few cache lines of ids only.
struct Window {
    ids: VecDeque<u64>,
    entries: VecDeque<Entry>,
    last_seen: u64,
}

/// How many of the newest ids are scanned before a binary search: the
/// requests still running, which `finish` asks for, are among them.
const SCAN_NEWEST: usize = 32;

impl Window {
    fn new(now: u64) -> Window {
        Window {
            ids: VecDeque::new(),
            entries: VecDeque::new(),
            last_seen: now,
        }
    }

    /// Where `request` is (`Ok`) or would go (`Err`).
    fn find(&self, request: u64) -> Result<usize, usize> {
        let len = self.ids.len();
        for (back, &id) in self.ids.iter().rev().take(SCAN_NEWEST).enumerate() {
            if id == request {
                return Ok(len - 1 - back);
            }
            if id < request {
                return Err(len - back);
            }
        }
        self.ids.binary_search(&request)
    }

    fn get_mut(&mut self, request: u64) -> Option<&mut Entry> {
        let at = self.find(request).ok()?;
        self.entries.get_mut(at)
    }

    fn insert(&mut self, at: usize, request: u64) {
        self.ids.insert(at, request);
        self.entries.insert(at, Entry::Running(None));
    }

    /// Forgets one entry; returns its request id if its reply was on disk.
    fn remove(&mut self, at: usize) -> Option<u64> {
        let id = self.ids.remove(at)?;
        self.entries.remove(at)?.forget().then_some(id)
    }

    /// Forgets every entry; pushes those whose reply was on disk.
    fn forget_all(self, client: u64, stored: &mut Vec<(u64, u64)>) {
        for (id, entry) in self.ids.into_iter().zip(self.entries) {
            if entry.forget() {
                stored.push((client, id));
            }
        }
    }
}

/// One lock's worth of clients.
#[derive(Default)]
struct Shard {
    by_id: HashMap<u64, Window>,
    /// `(client, time seen)` in the order clients were (re)queued.
    seen: VecDeque<(u64, u64)>,
    clock: u64,
}

impl Shard {
    /// Forgets the least recently seen client.
    fn forget_one(&mut self, stored: &mut Vec<(u64, u64)>) {
        while let Some((client, stamp)) = self.seen.pop_front() {
            let Some(window) = self.by_id.get(&client) else {
                continue;
            };
            if window.last_seen != stamp {
                // Seen again since it was queued: it goes to the back.
                self.seen.push_back((client, window.last_seen));
                continue;
            }
            if let Some(forgotten) = self.by_id.remove(&client) {
                forgotten.forget_all(client, stored);
            }
            return;
        }
    }
}

/// The node's deduplication table.
pub struct Dedup {
    shards: Box<[Mutex<Shard>]>,
    window: usize,
    clients_per_shard: usize,
}

impl Dedup {
    /// A table remembering `window` replies for each of at most `max_clients` clients.
    pub fn new(window: usize, max_clients: usize) -> Dedup {
        let max_clients = max_clients.max(1);
        let shards = if max_clients < SHARD_FROM_CLIENTS {
            1
        } else {
            SHARDS
        };
        Dedup {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            window: window.max(1),
            clients_per_shard: max_clients.div_ceil(shards),
        }
    }

    fn shard(&self, client: u64) -> std::sync::MutexGuard<'_, Shard> {
        // Fibonacci hashing: sequential and random ids both spread evenly.
        let mixed = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        let shard = &self.shards[mixed as usize % self.shards.len()];
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a request before running it.
    #[cfg(test)]
    pub fn begin(&self, client: u64, request: u64) -> Begin {
        self.begin_forgetting(client, request, &mut Vec::new())
    }

    /// Registers a request before running it; the `(client, request)` of
    /// remembered replies that were on disk and are forgotten to make room are
    /// pushed to `forgotten`, for the caller to delete from disk.
    pub fn begin_forgetting(
        &self,
        client: u64,
        request: u64,
        forgotten: &mut Vec<(u64, u64)>,
    ) -> Begin {
        let mut shard = self.shard(client);
        shard.clock += 1;
        let now = shard.clock;
        if !shard.by_id.contains_key(&client) {
            if shard.by_id.len() >= self.clients_per_shard {
                shard.forget_one(forgotten);
            }
            shard.seen.push_back((client, now));
        }
        let window = shard
            .by_id
            .entry(client)
            .or_insert_with(|| Window::new(now));
        window.last_seen = now;
        let at = match window.find(request) {
            Ok(at) => return window.entries[at].begin(),
            Err(at) => at,
        };
        window.insert(at, request);
        while window.ids.len() > self.window {
            // The smallest id goes, unless it is the request just registered
            // (older than the whole window): that one is tracked while it runs.
            if let Some(id) = window.remove(usize::from(at == 0)) {
                forgotten.push((client, id));
            }
        }
        Begin::Fresh
    }

    /// Looks a request up without registering it.
    pub fn peek(&self, client: u64, request: u64) -> Begin {
        let mut shard = self.shard(client);
        match shard
            .by_id
            .get_mut(&client)
            .and_then(|w| w.get_mut(request))
        {
            Some(entry) => entry.begin(),
            None => Begin::Fresh,
        }
    }

    /// Remembers a reply recovered from disk; replies it pushes out of the
    /// bounded memory go to `forgotten`.
    pub fn restore(
        &self,
        client: u64,
        request: u64,
        outcome: Outcome,
        forgotten: &mut Vec<(u64, u64)>,
    ) {
        if let Begin::Fresh = self.begin_forgetting(client, request, forgotten) {
            self.finish(client, request, &outcome, true);
        }
    }

    /// Forgets a registered request that was not applied (it belongs to
    /// another node now): a retry runs it, there or here. Waiting retries are
    /// woken to ask again.
    pub fn abandon(&self, client: u64, request: u64) {
        let mut shard = self.shard(client);
        if let Some(window) = shard.by_id.get_mut(&client) {
            if let Ok(at) = window.find(request) {
                if let (Some(_), Some(entry)) = (window.ids.remove(at), window.entries.remove(at)) {
                    entry.forget();
                }
            }
        }
    }

    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's (feature "cluster")
    /// Every remembered reply, `(client, request, reply)`: what a node hands
    /// to the new owners of its objects with them.
    pub fn snapshot(&self) -> Vec<(u64, u64, Outcome)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (client, window) in &shard.by_id {
                for (id, entry) in window.ids.iter().zip(&window.entries) {
                    if let Entry::Done(outcome, _) = entry {
                        all.push((*client, *id, outcome.clone()));
                    }
                }
            }
        }
        all
    }

    /// Remembers a reply handed over by another node (in memory only).
    pub fn adopt(&self, client: u64, request: u64, outcome: Outcome) {
        let mut forgotten = Vec::new();
        if let Begin::Fresh = self.begin_forgetting(client, request, &mut forgotten) {
            self.finish(client, request, &outcome, false);
        }
    }

    /// Records the reply of a request registered with [`Dedup::begin_forgetting`];
    /// `stored`: the reply is on disk too.
    pub fn finish(&self, client: u64, request: u64, outcome: &Outcome, stored: bool) {
        let mut shard = self.shard(client);
        let Some(entry) = shard
            .by_id
            .get_mut(&client)
            .and_then(|w| w.get_mut(request))
        else {
            return;
        };
        if let Entry::Running(Some(notify)) =
            std::mem::replace(entry, Entry::Done(outcome.clone(), stored))
        {
            notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_request_runs_again_and_a_snapshot_carries_replies() {
        let dedup = Dedup::new(8, 10);
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        dedup.abandon(1, 1);
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        dedup.finish(1, 1, &Ok(vec![7]), false);
        assert!(matches!(dedup.begin(2, 5), Begin::Fresh)); // running: not handed over
        let snapshot = dedup.snapshot();
        assert_eq!(snapshot, vec![(1, 1, Ok(vec![7]))]);
        let other = Dedup::new(8, 10);
        other.adopt(1, 1, Ok(vec![7]));
        assert!(matches!(other.begin(1, 1), Begin::Done(Ok(v)) if v == [7]));
    }

    #[test]
    fn replays_a_finished_request_and_forgets_old_ones() {
        let dedup = Dedup::new(2, 10);
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        assert!(matches!(dedup.begin(1, 1), Begin::InFlight(_)));
        dedup.finish(1, 1, &Ok(vec![7]), false);
        assert!(matches!(dedup.begin(1, 1), Begin::Done(Ok(v)) if v == vec![7]));
        assert!(matches!(dedup.begin(1, 2), Begin::Fresh));
        assert!(matches!(dedup.begin(1, 3), Begin::Fresh));
        // Window of 2: request 1 is forgotten.
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        // Another client's ids are independent.
        assert!(matches!(dedup.begin(2, 2), Begin::Fresh));
    }

    #[tokio::test]
    async fn a_retry_waiting_for_a_forgotten_request_is_woken() {
        let dedup = Dedup::new(2, 1);
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        let Begin::InFlight(notify) = dedup.begin(1, 1) else {
            panic!("request 1 is running")
        };
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // Two newer requests push the running one out of the window of 2.
        let _ = dedup.begin(1, 2);
        let _ = dedup.begin(1, 3);
        tokio::time::timeout(std::time::Duration::from_secs(10), woken)
            .await
            .expect("the waiter is woken when its request is forgotten");
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        // The same when the whole client is forgotten.
        let Begin::InFlight(notify) = dedup.begin(1, 1) else {
            panic!("request 1 is running again")
        };
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let _ = dedup.begin(2, 1);
        tokio::time::timeout(std::time::Duration::from_secs(10), woken)
            .await
            .expect("the waiter is woken when its client is forgotten");
    }

    #[test]
    fn forgets_least_recently_seen_client() {
        let dedup = Dedup::new(4, 2);
        let _ = dedup.begin(1, 1);
        dedup.finish(1, 1, &Ok(vec![]), false);
        let _ = dedup.begin(2, 1);
        let _ = dedup.begin(3, 1); // evicts client 1
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
    }

    #[test]
    fn a_client_seen_again_is_not_the_one_forgotten() {
        let dedup = Dedup::new(4, 2);
        let _ = dedup.begin(1, 1);
        let _ = dedup.begin(2, 1);
        dedup.finish(2, 1, &Ok(vec![2]), false);
        let _ = dedup.begin(1, 2); // client 1 is now the most recently seen
        let _ = dedup.begin(3, 1); // evicts client 2
        assert!(matches!(dedup.begin(1, 1), Begin::InFlight(_)));
        assert!(matches!(dedup.begin(2, 1), Begin::Fresh));
    }

    #[test]
    fn requests_out_of_order_are_found_and_the_smallest_ids_forgotten() {
        let dedup = Dedup::new(3, 10);
        for id in [5, 2, 9] {
            assert!(matches!(dedup.begin(7, id), Begin::Fresh));
            dedup.finish(7, id, &Ok(vec![id as u8]), false);
        }
        for id in [2, 5, 9] {
            assert!(matches!(dedup.begin(7, id), Begin::Done(Ok(v)) if v == vec![id as u8]));
        }
        assert!(matches!(dedup.begin(7, 4), Begin::Fresh)); // window of 3: id 2 goes
        assert!(matches!(dedup.begin(7, 5), Begin::Done(_)));
        assert!(matches!(dedup.begin(7, 2), Begin::Fresh));
    }

    #[test]
    fn a_large_table_keeps_every_client_within_its_limit() {
        let dedup = Dedup::new(2, 4096);
        for client in 0..4096 {
            let _ = dedup.begin(client, 1);
            dedup.finish(client, 1, &Ok(vec![1]), false);
        }
        let remembered = (0..4096)
            .filter(|&c| matches!(dedup.peek(c, 1), Begin::Done(_)))
            .count();
        // Each of the 32 parts holds its share (128); hashing spreads clients
        // unevenly, so a few parts forget early.
        assert!(remembered > 3500 && remembered <= 4096, "{remembered}");
        for client in 4096..8192 {
            let _ = dedup.begin(client, 1);
        }
        let total: usize = dedup
            .shards
            .iter()
            .map(|s| s.lock().unwrap().by_id.len())
            .sum();
        assert!(total <= 4096, "{total}");
    }

    #[test]
    fn forgetting_a_reply_on_disk_reports_it_for_deletion() {
        let dedup = Dedup::new(2, 1);
        let mut forgotten = Vec::new();
        let _ = dedup.begin_forgetting(1, 1, &mut forgotten);
        dedup.finish(1, 1, &Ok(vec![]), true);
        let _ = dedup.begin_forgetting(1, 2, &mut forgotten);
        dedup.finish(1, 2, &Ok(vec![]), false);
        let _ = dedup.begin_forgetting(1, 3, &mut forgotten); // pushes request 1 out
        assert_eq!(forgotten, vec![(1, 1)]);
        let _ = dedup.begin_forgetting(1, 4, &mut forgotten); // request 2 was not on disk
        assert_eq!(forgotten, vec![(1, 1)]);
        dedup.finish(1, 4, &Ok(vec![]), true);
        let _ = dedup.begin_forgetting(2, 1, &mut forgotten); // client 1 goes, with request 4
        assert_eq!(forgotten, vec![(1, 1), (1, 4)]);
    }
}
