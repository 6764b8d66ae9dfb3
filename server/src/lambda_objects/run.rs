//! One client call of a lambda object's function, run as a workflow: every
//! execution in a fresh transaction (the call itself in `call.rs`, a map
//! call's in `map.rs`), the first error of an execution deciding its fate,
//! and a handshake with the watchdog so that a workflow the watchdog gave
//! up on can never commit afterwards.

use super::call::{call_function, unix_time_ms, Invocation, Ran};
use crate::txn::{retry, Abort, Committed, Failure, Limits, Reach, Spanning, Store, TxHost};
use crucial::__private::store::{Host, Workflow};
use crucial::store::TxError;
use crucial_protocol::wire::Outcome;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Why a workflow ended without committing, as the node reports it.
#[derive(Debug)]
pub enum Ended {
    /// The transaction layer's verdict (conflicts, deadline, a failure).
    Failure(Failure),
    /// The arguments did not decode.
    BadArguments(String),
    /// The function panicked (the message).
    Panicked(String),
}

/// The workflow's state, shared with its watchdog: running, committing, or
/// given up by the watchdog (then it must not commit).
#[derive(Default)]
pub struct Gate(AtomicU8);

const RUNNING: u8 = 0;
const COMMITTING: u8 = 1;
const GIVEN_UP: u8 = 2;

impl Gate {
    /// The watchdog gives up on the workflow unless it is committing right
    /// now; `false`: it is (wait for its outcome, which comes at once).
    pub fn give_up(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn begin_execution(&self) {
        let _ = self
            .0
            .compare_exchange(COMMITTING, RUNNING, Ordering::AcqRel, Ordering::Acquire);
    }

    fn may_commit(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Runs `invocation` as one workflow on `store` (reaching other nodes'
/// objects through `reach`, in a cluster), re-executed on conflict within
/// `limits`. Blocks: call it off the node's reactor.
pub fn execute(
    store: &Arc<Store>,
    reach: Option<&Arc<dyn Reach>>,
    limits: Limits,
    gate: &Gate,
    invocation: &Invocation,
) -> Result<Committed<Vec<u8>>, Ended> {
    let mut bad_arguments = None;
    let mut panicked = None;
    let deadline = std::time::Instant::now() + limits.time;
    // Child calls go to their objects' nodes until one of them reaches a
    // third node; from then on this workflow runs them here.
    let shipping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let result = retry(store, limits, |txn| {
        gate.begin_execution();
        panicked = None;
        let spanning = match reach {
            Some(reach) => {
                Spanning::reaching(txn, Arc::clone(reach), invocation.home.clone(), deadline)
                    .shipping(Arc::clone(&shipping))
            }
            None => Spanning::local(txn),
        };
        let host = Arc::new(TxHost::new(spanning));
        let ran = match &invocation.over {
            Some(objects) => super::map::run_map(&host, store, invocation, objects),
            None => {
                let wf = Workflow::new(
                    Arc::clone(&host) as Arc<dyn Host>,
                    invocation.object.clone(),
                    unix_time_ms(),
                    invocation.seed,
                );
                call_function(&wf, invocation.function, &invocation.args)
            }
        };
        let value = match ran {
            Ran::Returned(value) => value,
            Ran::BadArguments(reason) => {
                bad_arguments = Some(reason);
                Err(TxError::Encode("bad arguments".into()))
            }
            Ran::Panicked(message) => {
                panicked = Some(message.clone());
                Err(TxError::Failed {
                    function: String::new(),
                    message,
                })
            }
        };
        // The first error of the execution decides (a conflict the function
        // swallowed, or turned into a panic with `unwrap`, is re-executed).
        let value = match host.doomed() {
            Some(error) => Err(Abort::from(error)),
            None => value.map_err(Abort::from),
        };
        let mut txn = host.take();
        let value = value?;
        if !gate.may_commit() {
            return Err(Abort::Deadline);
        }
        if let Some((client, request)) = invocation.reply_to {
            let outcome: Outcome = Ok(value.clone());
            txn.local_mut().reply_with(client, request, outcome);
        }
        Ok((value, txn))
    });
    result.map_err(|failure| match (bad_arguments, panicked, failure) {
        (Some(reason), _, Failure::Failed(_)) => Ended::BadArguments(reason),
        (_, Some(message), Failure::Failed(_)) => Ended::Panicked(message),
        (_, _, failure) => Ended::Failure(failure),
    })
}
