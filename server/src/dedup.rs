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
//!
//! Memory is bounded in bytes as well as in entries ([`DedupLimits`]): a
//! client's replies beyond its share, and the least recently seen clients
//! beyond the table's, are forgotten; a reply larger than `max_reply` is
//! remembered only as its size, so a retry of its call is told the call ran
//! (and is not run again) instead of getting the reply; and clients not seen
//! for `forget_after` are forgotten by [`Dedup::forget_idle`], which the node
//! calls every second.

use crucial::RemoteError;
use crucial_protocol::wire::Outcome;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// What an entry costs beyond its reply's bytes (ids, queues, the enum).
const ENTRY_OVERHEAD: usize = 48;

/// The byte bounds of the table.
#[derive(Debug, Clone, Copy)]
pub struct DedupLimits {
    /// Bytes of remembered replies, all clients together (`--dedup-memory`).
    pub memory: usize,
    /// Bytes of one client's remembered replies (`--dedup-client-memory`).
    pub client_memory: usize,
    /// Larger replies are remembered by size only (`--dedup-max-reply`).
    pub max_reply: usize,
    /// Clients not seen this long are forgotten (`--dedup-forget-after`).
    pub forget_after: Duration,
}

impl Default for DedupLimits {
    fn default() -> Self {
        DedupLimits {
            memory: 128 << 20,
            client_memory: 4 << 20,
            max_reply: 64 << 10,
            forget_after: Duration::from_secs(600),
        }
    }
}

/// The table's size now, for the metrics page.
#[derive(Debug, Clone, Copy, Default)]
pub struct DedupGauges {
    /// Bytes of remembered replies (with their overhead).
    pub bytes: u64,
    /// Clients remembered.
    pub clients: u64,
    /// Replies too large to remember, since start.
    pub unremembered: u64,
    /// Clients forgotten because they were not seen for `forget_after`.
    pub forgotten_idle: u64,
}

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
    /// Answered with a reply of `size` bytes, too large to remember; `true`
    /// if the reply is on disk.
    Unremembered {
        size: usize,
        limit: usize,
        stored: bool,
    },
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
            Entry::Done(_, stored) | Entry::Unremembered { stored, .. } => stored,
        }
    }

    /// What a request that finds this entry does.
    fn begin(&mut self, request: u64) -> Begin {
        match self {
            Entry::Done(outcome, _) => Begin::Done(outcome.clone()),
            Entry::Unremembered { size, limit, .. } => {
                Begin::Done(Err(unremembered(request, *size, *limit)))
            }
            Entry::Running(notify) => Begin::InFlight(Arc::clone(
                notify.get_or_insert_with(|| Arc::new(Notify::new())),
            )),
        }
    }

    /// The bytes it takes (a running entry is counted once answered).
    fn cost(&self) -> usize {
        match self {
            Entry::Running(_) => 0,
            Entry::Done(outcome, _) => ENTRY_OVERHEAD + outcome_bytes(outcome),
            Entry::Unremembered { .. } => ENTRY_OVERHEAD,
        }
    }
}

/// A reply's bytes (an error's message, roughly).
fn outcome_bytes(outcome: &Outcome) -> usize {
    match outcome {
        Ok(reply) => reply.len(),
        Err(_) => 64,
    }
}

/// What a retry of a call whose reply was too large to remember is told.
fn unremembered(request: u64, size: usize, limit: usize) -> RemoteError {
    RemoteError::Limit {
        limit: "--dedup-max-reply".into(),
        value: limit as u64,
        detail: format!(
            "request {request} was retried: it ran before and is not run again, but its reply \
             ({size} bytes) was too large to remember for a retry; read the object to see its \
             effect"
        ),
    }
}

/// One client's recent requests, sorted by request id. The ids are kept apart
/// from the entries, so a search touches a few cache lines of ids only.
struct Window {
    ids: VecDeque<u64>,
    entries: VecDeque<Entry>,
    last_seen: u64,
    /// When it was last seen, in the table's coarse seconds.
    seen_at: u64,
    /// The entries' [`Entry::cost`], summed.
    bytes: usize,
}

/// How many of the newest ids are scanned before a binary search: the
/// requests still running, which `finish` asks for, are among them.
const SCAN_NEWEST: usize = 32;

impl Window {
    fn new(now: u64, seen_at: u64) -> Window {
        Window {
            ids: VecDeque::new(),
            entries: VecDeque::new(),
            last_seen: now,
            seen_at,
            bytes: 0,
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

    /// Forgets one entry: its bytes (to take off the shard's) and its request
    /// id if its reply was on disk.
    fn remove(&mut self, at: usize) -> (usize, Option<u64>) {
        let (Some(id), Some(entry)) = (self.ids.remove(at), self.entries.remove(at)) else {
            return (0, None);
        };
        let cost = entry.cost();
        self.bytes -= cost;
        (cost, entry.forget().then_some(id))
    }

    /// Forgets the oldest answered entries until the window is within
    /// `budget` bytes (running ones stay: a retry of them waits for them).
    fn shrink_to(&mut self, budget: usize, client: u64, stored: &mut Vec<(u64, u64)>) -> usize {
        let mut freed = 0;
        let mut at = 0;
        while self.bytes > budget && at < self.entries.len() {
            if matches!(self.entries[at], Entry::Running(_)) {
                at += 1;
                continue;
            }
            let (cost, on_disk) = self.remove(at);
            freed += cost;
            stored.extend(on_disk.map(|id| (client, id)));
        }
        freed
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
    /// The windows' bytes, summed.
    bytes: usize,
}

impl Shard {
    /// Forgets the least recently seen client; its bytes (`None`: no client).
    fn forget_one(&mut self, stored: &mut Vec<(u64, u64)>) -> Option<usize> {
        while let Some((client, stamp)) = self.seen.pop_front() {
            let Some(window) = self.by_id.get(&client) else {
                continue;
            };
            if window.last_seen != stamp {
                // Seen again since it was queued: it goes to the back.
                self.seen.push_back((client, window.last_seen));
                continue;
            }
            return self.forget_client(client, stored);
        }
        None
    }

    /// Forgets one client; its bytes (`None`: it was not here).
    fn forget_client(&mut self, client: u64, stored: &mut Vec<(u64, u64)>) -> Option<usize> {
        let forgotten = self.by_id.remove(&client)?;
        let bytes = forgotten.bytes;
        self.bytes -= bytes;
        forgotten.forget_all(client, stored);
        Some(bytes)
    }
}

/// The node's deduplication table.
pub struct Dedup {
    shards: Box<[Mutex<Shard>]>,
    window: usize,
    clients_per_shard: usize,
    limits: DedupLimits,
    /// The byte budget of each shard (`limits.memory` shared out).
    shard_memory: usize,
    /// Bytes of every shard, summed (for the metrics page).
    bytes: AtomicUsize,
    clients: AtomicUsize,
    unremembered: AtomicU64,
    forgotten_idle: AtomicU64,
    /// Seconds since the table was made, advanced by [`Dedup::forget_idle`]:
    /// a clock that costs one load on the call path.
    coarse_now: AtomicU64,
    started: std::time::Instant,
    /// Replies on disk forgotten where nobody could delete them yet.
    on_disk: Mutex<Vec<(u64, u64)>>,
}

impl Dedup {
    /// A table remembering `window` replies for each of at most `max_clients`
    /// clients, within the byte `limits`.
    pub fn new(window: usize, max_clients: usize, limits: DedupLimits) -> Dedup {
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
            limits,
            shard_memory: (limits.memory / shards).max(1),
            bytes: AtomicUsize::new(0),
            clients: AtomicUsize::new(0),
            unremembered: AtomicU64::new(0),
            forgotten_idle: AtomicU64::new(0),
            coarse_now: AtomicU64::new(0),
            started: std::time::Instant::now(),
            on_disk: Mutex::default(),
        }
    }

    /// The table's size now.
    pub fn gauges(&self) -> DedupGauges {
        DedupGauges {
            bytes: self.bytes.load(Ordering::Relaxed) as u64,
            clients: self.clients.load(Ordering::Relaxed) as u64,
            unremembered: self.unremembered.load(Ordering::Relaxed),
            forgotten_idle: self.forgotten_idle.load(Ordering::Relaxed),
        }
    }

    /// Forgets the clients not seen for `forget_after`; returns the
    /// `(client, request)` of their replies that were on disk, for the caller
    /// to delete there. The node calls it every second.
    pub fn forget_idle(&self) -> Vec<(u64, u64)> {
        let now = self.started.elapsed().as_secs();
        self.coarse_now.store(now, Ordering::Relaxed);
        let horizon = self.limits.forget_after.as_secs().max(1);
        let mut stored = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let idle: Vec<u64> = shard
                .by_id
                .iter()
                .filter(|(_, w)| now.saturating_sub(w.seen_at) >= horizon)
                .filter(|(_, w)| !w.entries.iter().any(|e| matches!(e, Entry::Running(_))))
                .map(|(client, _)| *client)
                .collect();
            for client in idle {
                if let Some(freed) = shard.forget_client(client, &mut stored) {
                    self.client_forgotten(freed);
                    self.forgotten_idle.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        stored.append(&mut self.lock_on_disk());
        stored
    }

    fn freed(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    fn client_forgotten(&self, bytes: usize) {
        self.freed(bytes);
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }

    /// Replies on disk forgotten by [`Dedup::finish`] (which has no place to
    /// return them): deleted from disk with the next [`Dedup::forget_idle`].
    fn on_disk_forgotten(&self, mut forgotten: Vec<(u64, u64)>) {
        self.lock_on_disk().append(&mut forgotten);
    }

    fn lock_on_disk(&self) -> std::sync::MutexGuard<'_, Vec<(u64, u64)>> {
        self.on_disk.lock().unwrap_or_else(|e| e.into_inner())
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
        let seen_at = self.coarse_now.load(Ordering::Relaxed);
        let mut shard = self.shard(client);
        shard.clock += 1;
        let now = shard.clock;
        if !shard.by_id.contains_key(&client) {
            if shard.by_id.len() >= self.clients_per_shard {
                if let Some(freed) = shard.forget_one(forgotten) {
                    self.client_forgotten(freed);
                }
            }
            shard.seen.push_back((client, now));
            self.clients.fetch_add(1, Ordering::Relaxed);
        }
        let window = shard
            .by_id
            .entry(client)
            .or_insert_with(|| Window::new(now, seen_at));
        window.last_seen = now;
        window.seen_at = seen_at;
        let at = match window.find(request) {
            Ok(at) => return window.entries[at].begin(request),
            Err(at) => at,
        };
        window.insert(at, request);
        let mut freed = 0;
        while window.ids.len() > self.window {
            // The smallest id goes, unless it is the request just registered
            // (older than the whole window): that one is tracked while it runs.
            let (cost, on_disk) = window.remove(usize::from(at == 0));
            freed += cost;
            forgotten.extend(on_disk.map(|id| (client, id)));
        }
        shard.bytes -= freed;
        self.freed(freed);
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
            Some(entry) => entry.begin(request),
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
        let mut freed = 0;
        if let Some(window) = shard.by_id.get_mut(&client) {
            if let Ok(at) = window.find(request) {
                freed = window.remove(at).0;
            }
        }
        shard.bytes -= freed;
        self.freed(freed);
    }

    /// Every remembered reply, `(client, request, reply)`: what a node hands
    /// to the new owners of its objects with them.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's (feature "cluster")
    pub fn snapshot(&self) -> Vec<(u64, u64, Outcome)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (client, window) in &shard.by_id {
                for (id, entry) in window.ids.iter().zip(&window.entries) {
                    match entry {
                        Entry::Done(outcome, _) => all.push((*client, *id, outcome.clone())),
                        // The new owner remembers that it ran (as the error a retry gets).
                        Entry::Unremembered { size, limit, .. } => {
                            all.push((*client, *id, Err(unremembered(*id, *size, *limit))))
                        }
                        Entry::Running(_) => {}
                    }
                }
            }
        }
        all
    }

    /// Remembers a reply handed over by another node (in memory only). A
    /// retry of that request registered here and waiting for its object
    /// (it came before the object and this reply did, in a failover or a
    /// handoff) gets the reply too: the call checks again once its object is
    /// here ([`Dedup::peek`]) and answers with it instead of running again.
    pub fn adopt(&self, client: u64, request: u64, outcome: Outcome) {
        let mut forgotten = Vec::new();
        match self.begin_forgetting(client, request, &mut forgotten) {
            Begin::Fresh | Begin::InFlight(_) => self.finish(client, request, &outcome, false),
            Begin::Done(_) => {}
        }
    }

    /// Records the reply of a request registered with [`Dedup::begin_forgetting`];
    /// `stored`: the reply is on disk too.
    pub fn finish(&self, client: u64, request: u64, outcome: &Outcome, stored: bool) {
        let size = outcome_bytes(outcome);
        let done = if size > self.limits.max_reply {
            self.unremembered.fetch_add(1, Ordering::Relaxed);
            Entry::Unremembered {
                size,
                limit: self.limits.max_reply,
                stored,
            }
        } else {
            Entry::Done(outcome.clone(), stored)
        };
        let mut on_disk = Vec::new();
        let mut shard = self.shard(client);
        let Some(window) = shard.by_id.get_mut(&client) else {
            return;
        };
        let Some(entry) = window.get_mut(request) else {
            return;
        };
        let cost = done.cost() as isize - entry.cost() as isize;
        if let Entry::Running(Some(notify)) = std::mem::replace(entry, done) {
            notify.notify_waiters();
        }
        window.bytes = window.bytes.saturating_add_signed(cost);
        let freed = window.shrink_to(self.limits.client_memory, client, &mut on_disk);
        shard.bytes = shard.bytes.saturating_add_signed(cost) - freed;
        if cost > 0 {
            self.bytes.fetch_add(cost as usize, Ordering::Relaxed);
        } else {
            self.freed(cost.unsigned_abs());
        }
        self.freed(freed);
        // Past the table's share: the least recently seen other clients go.
        while shard.bytes > self.shard_memory && shard.by_id.len() > 1 {
            match shard.forget_one(&mut on_disk) {
                Some(freed) => self.client_forgotten(freed),
                None => break,
            }
        }
        drop(shard);
        if !on_disk.is_empty() {
            self.on_disk_forgotten(on_disk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_request_runs_again_and_a_snapshot_carries_replies() {
        let dedup = Dedup::new(8, 10, DedupLimits::default());
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        dedup.abandon(1, 1);
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        dedup.finish(1, 1, &Ok(vec![7]), false);
        assert!(matches!(dedup.begin(2, 5), Begin::Fresh)); // running: not handed over
        let snapshot = dedup.snapshot();
        assert_eq!(snapshot, vec![(1, 1, Ok(vec![7]))]);
        let other = Dedup::new(8, 10, DedupLimits::default());
        other.adopt(1, 1, Ok(vec![7]));
        assert!(matches!(other.begin(1, 1), Begin::Done(Ok(v)) if v == [7]));
    }

    #[test]
    fn a_reply_adopted_while_a_retry_of_it_waits_is_the_retrys_answer() {
        let dedup = Dedup::new(8, 10, DedupLimits::default());
        // The retry registered here, waiting for its object...
        assert!(matches!(dedup.begin(3, 9), Begin::Fresh));
        // ...when the object's former head's reply arrives with it.
        dedup.adopt(3, 9, Ok(vec![4]));
        assert!(matches!(dedup.peek(3, 9), Begin::Done(Ok(v)) if v == [4]));
        // An adopted reply never replaces one given here.
        dedup.adopt(3, 9, Ok(vec![5]));
        assert!(matches!(dedup.peek(3, 9), Begin::Done(Ok(v)) if v == [4]));
    }

    #[test]
    fn replays_a_finished_request_and_forgets_old_ones() {
        let dedup = Dedup::new(2, 10, DedupLimits::default());
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
        let dedup = Dedup::new(2, 1, DedupLimits::default());
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
        let dedup = Dedup::new(4, 2, DedupLimits::default());
        let _ = dedup.begin(1, 1);
        dedup.finish(1, 1, &Ok(vec![]), false);
        let _ = dedup.begin(2, 1);
        let _ = dedup.begin(3, 1); // evicts client 1
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
    }

    #[test]
    fn a_client_seen_again_is_not_the_one_forgotten() {
        let dedup = Dedup::new(4, 2, DedupLimits::default());
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
        let dedup = Dedup::new(3, 10, DedupLimits::default());
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
        let dedup = Dedup::new(2, 4096, DedupLimits::default());
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
        let dedup = Dedup::new(2, 1, DedupLimits::default());
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

    fn limits(memory: usize, client_memory: usize, max_reply: usize) -> DedupLimits {
        DedupLimits {
            memory,
            client_memory,
            max_reply,
            forget_after: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_reply_too_large_to_remember_is_not_run_again_on_a_retry() {
        let dedup = Dedup::new(8, 10, limits(1 << 20, 1 << 20, 100));
        let _ = dedup.begin(1, 1);
        dedup.finish(1, 1, &Ok(vec![0; 1000]), false);
        match dedup.begin(1, 1) {
            Begin::Done(Err(RemoteError::Limit { limit, .. })) => {
                assert_eq!(limit, "--dedup-max-reply")
            }
            _ => panic!("a retry is told the call ran"),
        }
        assert_eq!(dedup.gauges().unremembered, 1);
        assert!(
            dedup.gauges().bytes < 100,
            "only the entry's overhead is kept"
        );
    }

    #[test]
    fn a_clients_replies_stay_within_its_share_and_all_within_the_table() {
        let dedup = Dedup::new(1024, 10, limits(10_000, 4_000, 1_000));
        for id in 0..100 {
            let _ = dedup.begin(1, id);
            dedup.finish(1, id, &Ok(vec![0; 900]), false);
        }
        let one = dedup.gauges().bytes;
        assert!(one <= 4_000, "{one}");
        assert!(
            matches!(dedup.begin(1, 99), Begin::Done(Ok(_))),
            "the newest stay"
        );
        assert!(matches!(dedup.begin(1, 0), Begin::Fresh), "the oldest went");
        for client in 2..10 {
            for id in 0..10 {
                let _ = dedup.begin(client, id);
                dedup.finish(client, id, &Ok(vec![0; 900]), false);
            }
        }
        let all = dedup.gauges();
        assert!(all.bytes <= 10_000, "{all:?}");
        assert!(
            all.clients < 9,
            "least recently seen clients were forgotten: {all:?}"
        );
        assert!(
            matches!(dedup.peek(9, 9), Begin::Done(Ok(_))),
            "the newest client stays"
        );
    }

    #[test]
    fn clients_not_seen_for_a_while_are_forgotten_with_their_replies_on_disk() {
        let dedup = Dedup::new(8, 10, limits(1 << 20, 1 << 20, 1 << 10));
        let _ = dedup.begin(1, 1);
        dedup.finish(1, 1, &Ok(vec![1]), true);
        let _ = dedup.begin(2, 1); // still running: kept
        assert!(
            dedup.forget_idle().is_empty(),
            "seen less than a second ago"
        );
        std::thread::sleep(Duration::from_millis(1100));
        let on_disk = dedup.forget_idle(); // the clock says 1 s: both were seen at 0
        assert_eq!(on_disk, vec![(1, 1)]);
        assert!(matches!(dedup.peek(1, 1), Begin::Fresh));
        assert!(matches!(dedup.peek(2, 1), Begin::InFlight(_)));
        assert_eq!(dedup.gauges().clients, 1);
        assert_eq!(dedup.gauges().bytes, 0);
    }
}
