//! Group commit. With `sync`, writes are queued (under their object's lock, so
//! writes to one object reach the engine in the order they happened) and
//! committed in groups: whoever *leads* takes everything queued, writes it as
//! one atomic batch, fsyncs, and answers every ticket at once, so with many
//! callers one fsync covers all of them. The leader is the caller itself when
//! no commit is under way ([`Committer::lead`], called by the task that waits
//! for a batch's replies): a lone caller then pays no hand-off to another
//! thread and back (two wake-ups, ~25 µs each on an idle core here). While a
//! commit is under way, writes queue up; when it ends, if some are queued, the
//! committing thread is woken to lead the next group (one hand-off, shared by
//! the whole group). Writes whose submitter does not lead (deletions,
//! creations, forgotten replies) wake the thread at once.
//!
//! With `interval` and `none` nothing waits for an fsync, so the caller writes
//! its batch to the engine itself (still under the object's lock) and its
//! ticket is ready at once. The thread then only fsyncs, every interval and at
//! the end.

use super::engine::{Engine, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A call is acknowledged after its write is fsynced: nothing acknowledged
    /// is lost, even on power failure. One fsync covers every call that
    /// finished meanwhile (group commit).
    Sync,
    /// A call is acknowledged once its write is in the engine (the operating
    /// system's buffers), and the node fsyncs every interval: a crash of the
    /// node loses nothing, a power failure loses at most the last interval.
    Interval(Duration),
    /// Never fsync (the operating system writes back when it likes; a clean
    /// stop syncs): a crash of the node loses nothing, a power failure may
    /// lose anything not yet written back.
    None,
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Durability, String> {
        match s {
            "sync" => Ok(Durability::Sync),
            "none" => Ok(Durability::None),
            _ => match s.strip_prefix("interval=").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => Ok(Durability::Interval(Duration::from_millis(ms))),
                _ => Err(format!(
                    "`{s}` is not a durability; expected `sync`, `interval=MS` (MS > 0) or `none`"
                )),
            },
        }
    }
}

/// Resolves once a queued write is as durable as the node promises (or failed).
pub type Ticket = oneshot::Receiver<Result<(), String>>;

struct Pending {
    seq: u64,
    writes: Vec<Write>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Most writes grouped into one batch (bounds a batch's memory).
const MAX_GROUP: usize = 4096;

/// Writes waiting for a leader, numbered in the order they were queued.
#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    /// The last sequence number handed out.
    last: u64,
    /// Set when the committer is dropped: the thread drains and ends.
    closed: bool,
}

/// What the callers, the leaders and the thread share.
struct Shared {
    engine: Arc<dyn Engine>,
    durability: Durability,
    queue: Mutex<Queue>,
    /// Wakes the thread: writes to lead, an interval's fsync, the end.
    wake: Condvar,
    /// Held while a group is committed, so groups reach the engine in order.
    leading: Mutex<()>,
    /// The highest sequence number such that it and every earlier write are
    /// in the engine (readable), durable or not. Passivation uses it to drop
    /// an object from memory only once its last write can be read back.
    applied: AtomicU64,
    /// Writes committed without an fsync since the last one.
    dirty: AtomicBool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits one group, holding `_leading`: takes what is queued, writes it
    /// with an fsync, answers its tickets, and wakes the thread if more was
    /// queued meanwhile.
    fn commit_group(&self, _leading: MutexGuard<'_, ()>) {
        let group: Vec<Pending> = {
            let mut queue = self.queue();
            let n = queue.pending.len().min(MAX_GROUP);
            queue.pending.drain(..n).collect()
        };
        let Some(newest) = group.last().map(|p| p.seq) else {
            return;
        };
        let mut group = group;
        let writes: Vec<Write> = group
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.writes))
            .collect();
        let result = self.engine.commit(writes, true);
        if let Err(e) = &result {
            failed(e);
        }
        self.applied.fetch_max(newest, Ordering::AcqRel);
        for pending in group {
            let _ = pending.done.send(result.clone());
        }
        drop(_leading);
        if !self.queue().pending.is_empty() {
            self.wake.notify_one();
        }
    }
}

/// The committing thread and the queue.
pub struct Committer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts the thread that commits to `engine`.
    pub fn start(engine: Arc<dyn Engine>, durability: Durability) -> Committer {
        let shared = Arc::new(Shared {
            engine,
            durability,
            queue: Mutex::default(),
            wake: Condvar::new(),
            leading: Mutex::new(()),
            applied: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("crucial-commit".into())
                .spawn(move || run(&shared))
                .expect("spawn the commit thread")
        };
        Committer {
            shared,
            thread: Some(thread),
        }
    }

    /// Queues writes; the ticket resolves when they are committed. Returns
    /// the submission's sequence number too (see [`Committer::applied`]).
    /// With `will_lead`, the submitter promises to call [`Committer::lead`]
    /// soon (so the thread is not woken for it); otherwise the thread leads.
    pub fn submit(&self, writes: Vec<Write>, will_lead: bool) -> (u64, Ticket) {
        let (done, ticket) = oneshot::channel();
        let shared = &*self.shared;
        if shared.durability != Durability::Sync {
            let seq = {
                let mut queue = shared.queue();
                queue.last += 1;
                queue.last
            };
            let result = shared.engine.commit(writes, false);
            if let Err(e) = &result {
                failed(e);
            }
            shared.dirty.store(true, Ordering::Release);
            // Inline commits of different objects may finish out of order;
            // an object's own writes are ordered by its lock, which is all a
            // reader of `applied` relies on (it holds that lock).
            shared.applied.fetch_max(seq, Ordering::AcqRel);
            let _ = done.send(result);
            return (seq, ticket);
        }
        let seq = {
            let mut queue = shared.queue();
            if queue.closed {
                let _ = done.send(Err("the storage layer has stopped".to_string()));
                return (0, ticket);
            }
            queue.last += 1;
            let seq = queue.last;
            queue.pending.push(Pending { seq, writes, done });
            seq
        };
        if !will_lead {
            shared.wake.notify_one();
        }
        (seq, ticket)
    }

    /// Commits what is queued, with an fsync, on the calling thread — unless
    /// a commit is under way (its leader hands what queued meanwhile to the
    /// thread) or nothing is queued. Blocks for the fsync.
    pub fn lead(&self) {
        let shared = &*self.shared;
        if shared.durability != Durability::Sync {
            return;
        }
        let leading = match shared.leading.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        shared.commit_group(leading);
    }

    /// The highest sequence number whose writes, and all earlier ones, are in
    /// the engine.
    pub fn applied(&self) -> u64 {
        self.shared.applied.load(Ordering::Acquire)
    }
}

impl Drop for Committer {
    /// Commits what is queued, syncs, and stops the thread.
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: with `sync`, leads every group nobody else leads; with
/// `interval`, fsyncs every interval; at the end, drains and syncs.
fn run(shared: &Shared) {
    let interval = match shared.durability {
        Durability::Interval(every) => Some(every),
        _ => None,
    };
    let mut last_sync = Instant::now();
    loop {
        let idle = |q: &mut Queue| q.pending.is_empty() && !q.closed;
        let queue = shared.queue();
        let queue = match interval {
            Some(every) => {
                let timeout = every.saturating_sub(last_sync.elapsed());
                shared
                    .wake
                    .wait_timeout_while(queue, timeout, idle)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => shared
                .wake
                .wait_while(queue, idle)
                .unwrap_or_else(|e| e.into_inner()),
        };
        let closed = queue.closed;
        let more = !queue.pending.is_empty();
        drop(queue);
        if more {
            let leading = shared.leading.lock().unwrap_or_else(|e| e.into_inner());
            shared.commit_group(leading);
            continue;
        }
        if let Some(every) = interval {
            if last_sync.elapsed() >= every {
                if shared.dirty.swap(false, Ordering::AcqRel) {
                    log_failure(shared.engine.sync());
                }
                last_sync = Instant::now();
            }
        }
        if closed {
            break;
        }
    }
    if shared.durability != Durability::Sync && shared.dirty.swap(false, Ordering::AcqRel) {
        log_failure(shared.engine.sync());
    }
}

fn log_failure(result: Result<(), String>) {
    if let Err(e) = result {
        tracing::error!("storage sync failed: {e}");
    }
}

/// Logs a failed commit (at most once a second: while a disk is full, every
/// write fails).
fn failed(error: &str) {
    static GATE: crate::throttle::Throttle = crate::throttle::Throttle::new();
    if let Some(held) = GATE.pass() {
        tracing::error!(held, "storage commit failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::engine::Space;
    use std::sync::Mutex;

    /// Counts commits and syncs, to see grouping.
    #[derive(Default)]
    struct Counting {
        commits: Mutex<Vec<usize>>,
        syncs: Mutex<usize>,
    }

    impl Engine for Counting {
        fn commit(&self, writes: Vec<Write>, sync: bool) -> Result<(), String> {
            std::thread::sleep(Duration::from_millis(2)); // an fsync's worth
            self.commits.lock().unwrap().push(writes.len());
            if sync {
                *self.syncs.lock().unwrap() += 1;
            }
            Ok(())
        }
        fn sync(&self) -> Result<(), String> {
            *self.syncs.lock().unwrap() += 1;
            Ok(())
        }
        fn scan(&self, _: Space) -> Result<Vec<crate::storage::engine::Pair>, String> {
            Ok(Vec::new())
        }
        fn scan_prefix(
            &self,
            _: Space,
            _: &[u8],
        ) -> Result<Vec<crate::storage::engine::Pair>, String> {
            Ok(Vec::new())
        }
        fn get(&self, _: Space, _: &[u8]) -> Result<Option<Vec<u8>>, String> {
            Ok(None)
        }
    }

    #[test]
    fn parses_the_durability_flag() {
        assert_eq!("sync".parse(), Ok(Durability::Sync));
        assert_eq!("none".parse(), Ok(Durability::None));
        assert_eq!(
            "interval=50".parse(),
            Ok(Durability::Interval(Duration::from_millis(50)))
        );
        let error = "interval=0".parse::<Durability>().unwrap_err();
        assert!(error.contains("expected `sync`, `interval=MS`"), "{error}");
        assert!("always".parse::<Durability>().is_err());
    }

    #[tokio::test]
    async fn many_callers_share_a_commit() {
        let engine = Arc::new(Counting::default());
        let committer = Committer::start(engine.clone(), Durability::Sync);
        let tickets: Vec<_> = (0..200)
            .map(|i| {
                committer
                    .submit(vec![(Space::Objects, vec![i as u8], Some(vec![1]))], false)
                    .1
            })
            .collect();
        for ticket in tickets {
            ticket.await.expect("answered").expect("committed");
        }
        assert_eq!(committer.applied(), 200);
        let commits = engine.commits.lock().unwrap().clone();
        assert_eq!(commits.iter().sum::<usize>(), 200);
        assert!(commits.len() < 200, "no grouping: {commits:?}");
        assert_eq!(*engine.syncs.lock().unwrap(), commits.len());
    }

    #[test]
    fn a_caller_that_leads_commits_everything_queued_on_its_own_thread() {
        let engine = Arc::new(Counting::default());
        let committer = Committer::start(engine.clone(), Durability::Sync);
        let mut tickets: Vec<Ticket> = (0..3)
            .map(|i| {
                committer
                    .submit(vec![(Space::Objects, vec![i], Some(vec![1]))], true)
                    .1
            })
            .collect();
        committer.lead();
        // Answered when `lead` returns: no other thread was involved.
        for ticket in &mut tickets {
            assert_eq!(ticket.try_recv(), Ok(Ok(())));
        }
        assert_eq!(*engine.commits.lock().unwrap(), vec![3]);
        assert_eq!(committer.applied(), 3);
        // Nothing queued: leading does nothing.
        committer.lead();
        assert_eq!(engine.commits.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn interval_mode_acknowledges_before_syncing_and_syncs_later() {
        let engine = Arc::new(Counting::default());
        let committer = Committer::start(
            engine.clone(),
            Durability::Interval(Duration::from_millis(20)),
        );
        committer
            .submit(vec![(Space::Objects, vec![1], Some(vec![1]))], false)
            .1
            .await
            .expect("answered")
            .expect("committed");
        assert_eq!(*engine.syncs.lock().unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(*engine.syncs.lock().unwrap() >= 1, "the interval sync ran");
        drop(committer);
    }
}
