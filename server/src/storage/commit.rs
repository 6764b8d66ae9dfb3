//! Group commit: with `sync`, one thread writes to the engine for everyone.
//! Callers queue their writes (under their object's lock, so writes to one
//! object reach the engine in the order they happened) and wait on a ticket;
//! the thread takes everything queued since its last commit, writes it as one
//! atomic batch, fsyncs, and answers every ticket at once. With many callers
//! one fsync covers all of them.
//!
//! With `interval` and `none` nothing waits for an fsync, so the caller writes
//! its batch to the engine itself (still under the object's lock) and its
//! ticket is ready at once: a hand-off to the thread and back would cost two
//! wake-ups per call for nothing. The thread then only fsyncs, every interval
//! and at the end.

use super::engine::{Engine, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
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

/// Where submitted writes stand: each submission gets the next sequence
/// number, and `applied` is the highest one such that it and every earlier
/// one are in the engine (readable), durable or not. Passivation uses it to
/// drop an object from memory only once its last write can be read back.
#[derive(Default)]
struct Progress {
    /// The queue's sending side and the last number handed out, under one
    /// lock, so numbers enter the queue in order.
    submitted: Mutex<u64>,
    applied: AtomicU64,
}

/// Most writes grouped into one batch (bounds a batch's memory).
const MAX_GROUP: usize = 4096;

/// The committing thread and its queue.
pub struct Committer {
    queue: Option<mpsc::Sender<Pending>>,
    progress: Arc<Progress>,
    thread: Option<JoinHandle<()>>,
    /// Set when callers commit themselves (no fsync per call).
    inline: Option<Arc<dyn Engine>>,
    /// Writes committed without an fsync since the last one.
    dirty: Arc<AtomicBool>,
}

impl Committer {
    /// Starts the thread that commits to `engine`.
    pub fn start(engine: Arc<dyn Engine>, durability: Durability) -> Committer {
        let (queue, rx) = mpsc::channel();
        let dirty = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let inline = (durability != Durability::Sync).then(|| Arc::clone(&engine));
        let thread = {
            let dirty = Arc::clone(&dirty);
            let progress = Arc::clone(&progress);
            std::thread::Builder::new()
                .name("crucial-commit".into())
                .spawn(move || run(&*engine, durability, rx, &dirty, &progress))
                .expect("spawn the commit thread")
        };
        Committer {
            queue: Some(queue),
            progress,
            thread: Some(thread),
            inline,
            dirty,
        }
    }

    /// Queues writes; the ticket resolves when they are committed. Returns
    /// the submission's sequence number too (see [`Committer::applied`]).
    pub fn submit(&self, writes: Vec<Write>) -> (u64, Ticket) {
        let (done, ticket) = oneshot::channel();
        if let Some(engine) = &self.inline {
            let seq = {
                let mut last = self
                    .progress
                    .submitted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                *last += 1;
                *last
            };
            let result = engine.commit(writes, false);
            if let Err(e) = &result {
                tracing::error!("storage commit failed: {e}");
            }
            self.dirty.store(true, Ordering::Release);
            // Inline commits of different objects may finish out of order;
            // an object's own writes are ordered by its lock, which is all a
            // reader of `applied` relies on (it holds that lock).
            self.progress.applied.fetch_max(seq, Ordering::AcqRel);
            let _ = done.send(result);
            return (seq, ticket);
        }
        let mut last = self
            .progress
            .submitted
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *last += 1;
        let seq = *last;
        let pending = Pending { seq, writes, done };
        if let Some(queue) = &self.queue {
            if let Err(mpsc::SendError(pending)) = queue.send(pending) {
                let _ = pending
                    .done
                    .send(Err("the storage layer has stopped".to_string()));
            }
        }
        (seq, ticket)
    }

    /// The highest sequence number whose writes, and all earlier ones, are in
    /// the engine.
    pub fn applied(&self) -> u64 {
        self.progress.applied.load(Ordering::Acquire)
    }
}

impl Drop for Committer {
    /// Commits what is queued, syncs, and stops the thread.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    engine: &dyn Engine,
    durability: Durability,
    rx: mpsc::Receiver<Pending>,
    dirty: &AtomicBool,
    progress: &Progress,
) {
    let interval = match durability {
        Durability::Interval(every) => every,
        _ => Duration::from_secs(3600),
    };
    let mut last_sync = Instant::now();
    loop {
        let wait = interval.saturating_sub(last_sync.elapsed());
        let first = match rx.recv_timeout(wait) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => {
                if durability != Durability::None && dirty.swap(false, Ordering::AcqRel) {
                    log_failure(engine.sync());
                }
                last_sync = Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let writes: Vec<Write> = group
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.writes))
            .collect();
        let sync = durability == Durability::Sync;
        let newest = group.last().map_or(0, |p| p.seq);
        let result = engine.commit(writes, sync);
        progress.applied.fetch_max(newest, Ordering::AcqRel);
        if let Err(e) = &result {
            tracing::error!("storage commit failed: {e}");
        }
        if !sync {
            dirty.store(true, Ordering::Release);
        }
        for pending in group {
            let _ = pending.done.send(result.clone());
        }
        if let Durability::Interval(every) = durability {
            if last_sync.elapsed() >= every && dirty.swap(false, Ordering::AcqRel) {
                log_failure(engine.sync());
                last_sync = Instant::now();
            }
        }
    }
    if dirty.swap(false, Ordering::AcqRel) {
        log_failure(engine.sync());
    }
}

fn log_failure(result: Result<(), String>) {
    if let Err(e) = result {
        tracing::error!("storage sync failed: {e}");
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
                    .submit(vec![(Space::Objects, vec![i as u8], Some(vec![1]))])
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

    #[tokio::test]
    async fn interval_mode_acknowledges_before_syncing_and_syncs_later() {
        let engine = Arc::new(Counting::default());
        let committer = Committer::start(
            engine.clone(),
            Durability::Interval(Duration::from_millis(20)),
        );
        committer
            .submit(vec![(Space::Objects, vec![1], Some(vec![1]))])
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
