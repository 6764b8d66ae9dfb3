//! A workflow: a function run as one transaction, re-executed on conflict
//! (bounded, with backoff), so its effects happen exactly once or not at all.

use super::spanning::{Commit, Decision, Spanning};
use super::transaction::{Abort, Durably, Stance, Store, Transaction, Writes};
use crucial::store::TxError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long and how often a workflow may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Executions at most (the first one included).
    pub attempts: u32,
    /// Wall time for all executions together.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            attempts: 64,
            time: Duration::from_secs(10),
        }
    }
}

/// A committed workflow.
#[derive(Debug)]
pub struct Committed<T> {
    /// What the function returned.
    pub value: T,
    /// The commit's number: its place in the serial order.
    pub tid: u64,
    /// Executions it took (1: no conflict).
    pub attempts: u32,
    /// On a store with a data directory, resolves when the writes are
    /// durable: the reply waits for it.
    pub durable: Option<Durably>,
    /// What it wrote on this node (sent to the replicas of its homes).
    pub writes: Writes,
    /// Phase two for the other nodes that took part (`None`: committed on
    /// this node alone): delivered once `durable` resolved and `writes` are
    /// on their replicas.
    pub decision: Option<Decision>,
    /// It read on other nodes, wrote nowhere, and ended with checks of its
    /// reads there instead of two-phase commit.
    pub checked: bool,
}

/// Why a workflow did not commit. Nothing of it is visible in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Every execution allowed conflicted with others.
    Conflicts {
        /// Executions made.
        attempts: u32,
    },
    /// The time limit passed.
    Deadline {
        /// The limit.
        limit: Duration,
    },
    /// The function failed.
    Failed(TxError),
    /// The node's store cannot write: nothing was installed.
    NotDurable(String),
}

/// Executions that read optimistically; the later ones of a reader (a
/// workflow whose executions wrote nothing) pin what they read as they read
/// it ([`Stance::PinReads`]), so that a long reader that keeps losing to
/// short writers gets through. Writers never pin what they read (two that
/// did could then never lock it).
const OPTIMISTIC_ATTEMPTS: u32 = 3;

/// Executions of a writer before it insists ([`Stance::Insist`]): its locks
/// pass the pins of readers that pin what they read, so that a stream of
/// pinning readers (map audits back to back) cannot starve it either.
const PATIENT_ATTEMPTS: u32 = 6;

/// Runs `body` as one transaction, again after each conflict.
#[cfg(test)]
pub fn run<T>(
    store: &Arc<Store>,
    limits: Limits,
    mut body: impl FnMut(&mut Transaction) -> Result<T, Abort>,
) -> Result<Committed<T>, Failure> {
    retry(store, limits, |mut txn| {
        Ok((body(&mut txn)?, Spanning::local(txn)))
    })
}

/// Runs `body` as one transaction, again after each conflict, giving it the
/// transaction as the [`Host`] that storage fields (`crucial::store`) use.
/// (The node runs functions through `lambda_objects::execute`, which adds panics,
/// arguments and the watchdog.)
#[cfg(test)]
pub fn run_with_host<T>(
    store: &Arc<Store>,
    limits: Limits,
    mut body: impl FnMut(Arc<dyn crucial::__private::store::Host>) -> Result<T, TxError>,
) -> Result<Committed<T>, Failure> {
    use super::host::TxHost;
    use crucial::__private::store::Host;
    retry(store, limits, |txn| {
        let host = Arc::new(TxHost::new(Spanning::local(txn)));
        let value = body(Arc::clone(&host) as Arc<dyn Host>);
        // The first error of the execution decides, whatever the function
        // made of it.
        let value = match host.doomed() {
            Some(error) => Err(Abort::from(error)),
            None => value.map_err(Abort::from),
        };
        let txn = host.take();
        value.map(|value| (value, txn))
    })
}

/// The loop every form shares: one transaction per execution (begun on
/// this node's store, and reaching other nodes if `attempt` makes it so),
/// committed after `attempt` returns it with its value.
pub fn retry<T>(
    store: &Arc<Store>,
    limits: Limits,
    mut attempt: impl FnMut(Transaction) -> Result<(T, Spanning), Abort>,
) -> Result<Committed<T>, Failure> {
    let deadline = Instant::now() + limits.time;
    let mut attempts = 0;
    // Whether an execution that reached its commit wrote: a writer never
    // reads pessimistically (two writers that pinned what they read and
    // then lock it refuse each other for good).
    let mut writer = false;
    loop {
        attempts += 1;
        let mut txn = store.begin(Some(deadline));
        if attempts > OPTIMISTIC_ATTEMPTS && !writer {
            txn.take_stance(Stance::PinReads);
        } else if attempts > PATIENT_ATTEMPTS && writer {
            txn.take_stance(Stance::Insist);
        }
        let result = attempt(txn).and_then(|(value, txn)| {
            writer |= !txn.writes_nothing();
            txn.commit().map(|done| (value, done))
        });
        match result {
            Ok((
                value,
                Commit {
                    tid,
                    durable,
                    writes,
                    decision,
                    checked,
                },
            )) => {
                return Ok(Committed {
                    value,
                    tid,
                    attempts,
                    durable,
                    writes,
                    decision,
                    checked,
                })
            }
            Err(Abort::Conflict) if attempts < limits.attempts => backoff(attempts, deadline),
            Err(Abort::Conflict) => return Err(Failure::Conflicts { attempts }),
            Err(Abort::Deadline) => return Err(Failure::Deadline { limit: limits.time }),
            Err(Abort::Failed(reason)) => return Err(Failure::Failed(reason)),
            Err(Abort::NotDurable(reason)) => return Err(Failure::NotDurable(reason)),
        }
    }
}

/// Waits before re-executing: nothing the first time, then a random time
/// below an exponentially growing bound (10 µs doubling, at most ~10 ms),
/// so workflows that keep colliding spread out. The cap is about as long as
/// a transaction across nodes with copies holds its sets (four round trips
/// on a loaded machine): with 1 ms, a workflow on a hot account used up its
/// 64 attempts while one such commit held it. Never past the deadline.
fn backoff(attempts: u32, deadline: Instant) {
    if attempts < 2 {
        return;
    }
    let bound = 10u64 << (attempts - 2).min(10);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let wait = Duration::from_micros(nanos % (bound * 1000) / 1000 + 1);
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(wait.min(left));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use crucial::ObjectId;

    fn id(key: &str) -> ObjectId {
        ObjectId::new("test", "Counter", key)
    }

    #[test]
    fn a_failed_function_writes_nothing_and_is_not_retried() {
        let store = Arc::new(Store::default());
        let mut runs = 0;
        let failure = run(&store, Limits::default(), |txn| {
            runs += 1;
            txn.put(&id("a"), b"n", Bytes::from_static(b"1"))?;
            Err::<(), _>(Abort::Failed(TxError::Encode("no".into())))
        })
        .unwrap_err();
        assert_eq!(
            (failure, runs),
            (Failure::Failed(TxError::Encode("no".into())), 1)
        );
        let read = run(&store, Limits::default(), |txn| txn.get(&id("a"), b"n")).unwrap();
        assert_eq!(read.value, None);
    }

    #[test]
    fn conflicts_are_re_executed_until_the_limit() {
        let store = Arc::new(Store::default());
        let limits = Limits {
            attempts: 3,
            ..Limits::default()
        };
        let mut runs = 0;
        // Each execution reads a key, then another transaction overwrites it
        // before the commit: every execution conflicts.
        let failure = run(&store, limits, |txn| {
            runs += 1;
            txn.get(&id("a"), b"n")?;
            let mut other = store.begin(None);
            other.put(&id("a"), b"n", Bytes::from(runs.to_string()))?;
            other.commit()?;
            txn.put(&id("a"), b"m", Bytes::from_static(b"x"))
        })
        .unwrap_err();
        assert_eq!(failure, Failure::Conflicts { attempts: 3 });
        assert_eq!(runs, 3);
    }

    #[test]
    fn the_time_limit_stops_a_workflow() {
        let store = Arc::new(Store::default());
        let limits = Limits {
            time: Duration::from_millis(20),
            ..Limits::default()
        };
        let failure = run(&store, limits, |txn| -> Result<(), Abort> {
            loop {
                txn.get(&id("a"), b"n")?; // every host call checks the deadline
            }
        })
        .unwrap_err();
        assert_eq!(failure, Failure::Deadline { limit: limits.time });
    }
}
