//! The threads workflows run on: a fixed pool (one per core by default)
//! taking jobs from one queue, so that under load a thread runs workflow
//! after workflow without sleeping in between, and a burst of calls does not
//! start a thread each (tokio's blocking pool would: 64 clients made 64
//! threads, each woken per call).
//!
//! Native code cannot be preempted: a function that loops without touching
//! storage keeps its thread. When the watchdog gives up on such a workflow it
//! asks for a [`Replacement`], so the pool keeps its number of free threads;
//! the extra thread leaves once the runaway function returns. A runaway thus
//! costs exactly its own thread, and never the node's reactor.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send>;

/// A pool of workflow threads.
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    jobs: VecDeque<Job>,
    /// Threads running now.
    threads: usize,
    /// Threads wanted: the pool's size plus one per runaway function.
    target: usize,
    /// Threads waiting for a job.
    idle: usize,
    stopped: bool,
}

impl Pool {
    /// A pool of `threads` threads (at least one).
    pub fn new(threads: usize) -> Pool {
        let pool = Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    threads: 0,
                    target: threads.max(1),
                    idle: 0,
                    stopped: false,
                }),
                ready: Condvar::new(),
            }),
        };
        pool.shared.fill();
        pool
    }

    /// Runs `job` on a pool thread.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        let mut state = self.shared.lock();
        state.jobs.push_back(Box::new(job));
        if state.idle > 0 {
            drop(state);
            self.shared.ready.notify_one();
        }
    }

    /// One more thread while the returned guard lives: for a runaway
    /// function that keeps its thread.
    pub fn replacement(&self) -> Replacement {
        self.shared.lock().target += 1;
        self.shared.fill();
        Replacement(Arc::clone(&self.shared))
    }

    /// Threads running now.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.ready.notify_all();
    }
}

/// Keeps one extra pool thread; dropped when the runaway function returns.
pub struct Replacement(Arc<Shared>);

impl Drop for Replacement {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.target = state.target.saturating_sub(1).max(1);
        drop(state);
        self.0.ready.notify_all(); // an idle thread above the target leaves
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts threads up to the target.
    fn fill(self: &Arc<Self>) {
        let mut state = self.lock();
        while state.threads < state.target && !state.stopped {
            state.threads += 1;
            let shared = Arc::clone(self);
            let started = std::thread::Builder::new()
                .name("crucial-workflow".into())
                .spawn(move || shared.work());
            if let Err(e) = started {
                state.threads -= 1;
                tracing::error!("cannot start a workflow thread: {e}");
                break;
            }
        }
    }

    /// A pool thread: jobs until the pool stops or has a thread too many.
    fn work(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                // A job catches its function's panics; one of its own must
                // not cost the pool a thread either (its caller sees the
                // dropped reply channel).
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    tracing::error!("a workflow job panicked outside its function");
                }
                state = self.lock();
                continue;
            }
            if state.stopped || state.threads > state.target {
                state.threads -= 1;
                return;
            }
            state.idle += 1;
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
            state.idle -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn jobs_run_and_a_runaway_gets_a_replacement_that_leaves_after_it() {
        let pool = Pool::new(1);
        let (tx, rx) = mpsc::channel();
        let (release, stuck) = mpsc::channel::<()>();
        // The only thread is taken by a job that does not return...
        pool.submit(move || {
            let _ = stuck.recv();
        });
        std::thread::sleep(Duration::from_millis(20));
        let replacement = pool.replacement();
        // ...yet the next job runs, on the replacement.
        let done = tx.clone();
        pool.submit(move || done.send(1).unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
        assert_eq!(pool.threads(), 2);
        // The runaway returns: the pool shrinks back to one thread.
        release.send(()).unwrap();
        drop(replacement);
        for _ in 0..200 {
            if pool.threads() == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.threads(), 1);
        pool.submit(move || tx.send(2).unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(2));
    }
}
