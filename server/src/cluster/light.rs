//! Light replicas: nodes named in the view (`View::light`,
//! `crucial-admin light`) that serve the read-only workflows of a hot,
//! read-mostly object besides its owner, so its reads use more than one
//! node's CPU.
//!
//! A light replica holds no copy of the object. It runs the workflow
//! (a `&self` function called on the object) over a [`LightHost`]: each
//! entry read comes from this node's cache of the object's entries, or, the
//! first time, from the owner (`TxnOp::Fetch`: the version of the entry's
//! set, then its value), and is recorded with its version. At the end the
//! owner checks every entry read is still at that version and unlocked
//! (`TxnOp::Check`) — every read came before the check and versions only
//! grow, so the workflow is serialized at the check and sees exactly the
//! commits before it — and answers only once those commits are on its
//! replicas. A stale entry comes back with the check's answer, the cache
//! takes it, and the workflow runs again (at most [`ATTEMPTS`] times).
//!
//! Anything a light replica cannot serve — a write, a scan, an object of
//! another home, an owner it cannot reach, a check that keeps failing —
//! ends the light run: the call then takes the ordinary path, which sends
//! the client to the owner. Nothing a light run did is kept.

use super::member::Cluster;
use crate::lambda_objects::run_child;
use crate::state::NodeState;
use bytes::Bytes;
use crucial::__private::registry::{FunctionEntry, LambdaTypeEntry};
use crucial::__private::store::Host;
use crucial::store::TxError;
use crucial::{ObjectId, RemoteError};
use crucial_protocol::placement::LAMBDA_HOME;
use crucial_protocol::wire::{Outcome, TxnAnswer, TxnOp};
use serde_bytes::ByteBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs of one call before it is sent to the owner instead.
pub const ATTEMPTS: usize = 4;

/// How long one question to the owner may take.
const ASK_WITHIN: Duration = Duration::from_secs(2);

/// A read-only call a light replica runs.
pub struct LightCall {
    /// The type.
    pub type_entry: &'static LambdaTypeEntry,
    /// The function (`&self`).
    pub function: &'static FunctionEntry,
    /// Its object.
    pub object: ObjectId,
    /// The encoded arguments.
    pub args: Vec<u8>,
    /// Seeds the workflow's random source.
    pub seed: u64,
    /// The object's home.
    pub home: String,
}

/// The owner of `home` if this node is one of its light replicas in its
/// newest view.
pub fn owner_if_light(cluster: &Cluster, home: &str) -> Option<String> {
    let placement = cluster.placement();
    placement
        .is_light(LAMBDA_HOME, home, &cluster.me)
        .then(|| placement.owner(LAMBDA_HOME, home).to_string())
}

/// Runs `invocation` (a read-only function on an object at its home) as a
/// light replica of that home, whose owner is `owner`: its outcome, or
/// `None` when the owner must serve it. Blocks: call it off the reactor.
pub fn serve(
    node: &Arc<NodeState>,
    cluster: &Arc<Cluster>,
    rt: &tokio::runtime::Handle,
    invocation: &LightCall,
    owner: &str,
) -> Option<Outcome> {
    let object = invocation.object.clone();
    let limits = node
        .lambdas
        .limits(invocation.type_entry, invocation.function);
    let deadline = Instant::now() + limits.time;
    for _ in 0..ATTEMPTS {
        let host = Arc::new(LightHost {
            node: Arc::clone(node),
            cluster: Arc::clone(cluster),
            rt: rt.clone(),
            owner: owner.to_string(),
            home: invocation.home.clone(),
            deadline,
            reads: Mutex::default(),
            doomed: Mutex::default(),
            outside: AtomicBool::new(false),
        });
        let result = run_child(
            Arc::clone(&host) as Arc<dyn Host>,
            invocation.function,
            object.clone(),
            &invocation.args,
            invocation.seed,
        );
        if host.outside.load(Ordering::Relaxed) || Instant::now() >= deadline {
            return None;
        }
        let reads: Vec<(ObjectId, ByteBuf, u64)> =
            std::mem::take(&mut *host.reads.lock().unwrap_or_else(|e| e.into_inner()));
        match host.ask(TxnOp::Check { reads })? {
            TxnAnswer::Done => {
                node.lambdas.metrics.light();
                return Some(outcome_of(invocation, &object, result));
            }
            TxnAnswer::Stale(newer) => {
                for (object, key, version, value) in newer {
                    let value = value.map(|v| Bytes::from(v.into_vec()));
                    let home = &invocation.home;
                    cluster
                        .light
                        .put(home, object, key.into_vec(), version, value);
                }
            }
            _ => return None,
        }
    }
    None
}

/// The reply to a light run that ended with `result`, as the owner would
/// give it.
fn outcome_of(
    invocation: &LightCall,
    object: &ObjectId,
    result: Result<Vec<u8>, TxError>,
) -> Outcome {
    let function = || {
        format!(
            "{}::{}",
            invocation.type_entry.name, invocation.function.id.name
        )
    };
    result.map_err(|error| match error {
        TxError::NoObject(id) => RemoteError::NoObject {
            object: id.to_string(),
        },
        other => RemoteError::WorkflowFailed {
            function: function(),
            object: object.to_string(),
            message: other.to_string(),
        },
    })
}

/// What a light run reads through: the cache, the owner on a miss.
struct LightHost {
    node: Arc<NodeState>,
    cluster: Arc<Cluster>,
    rt: tokio::runtime::Handle,
    owner: String,
    home: String,
    deadline: Instant,
    /// `(object, key, version)` per entry read.
    reads: Mutex<Vec<(ObjectId, ByteBuf, u64)>>,
    doomed: Mutex<Option<TxError>>,
    /// It needed what a light replica cannot serve.
    outside: AtomicBool,
}

impl LightHost {
    /// Ends the light run: the owner serves the call.
    fn outside(&self) -> TxError {
        self.outside.store(true, Ordering::Relaxed);
        TxError::Conflict
    }

    /// One question to the owner; `None` (and the run ends) if it fails.
    fn ask(&self, op: TxnOp) -> Option<TxnAnswer> {
        let me = self.node.peer_id;
        let asked = self.rt.block_on(super::reach::ask_owner(
            &self.cluster,
            me,
            &self.owner,
            op,
            ASK_WITHIN,
        ));
        match asked {
            Ok(TxnAnswer::Refused(refusal)) => {
                tracing::debug!(owner = %self.owner, ?refusal, "a light replica's question refused");
                None
            }
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::debug!(owner = %self.owner, "a light replica cannot ask the owner: {e}");
                None
            }
        }
    }
}

impl Host for LightHost {
    fn doom(&self, error: TxError) {
        let mut doomed = self.doomed.lock().unwrap_or_else(|e| e.into_inner());
        doomed.get_or_insert(error);
    }

    fn doomed(&self) -> Option<TxError> {
        self.doomed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn get(&self, object: &ObjectId, key: &[u8]) -> Result<Option<Bytes>, TxError> {
        if Instant::now() >= self.deadline {
            return Err(TxError::Deadline);
        }
        if !self.node.lambdas.store.at_home(object, &self.home) {
            return Err(self.outside());
        }
        let cache = &self.cluster.light;
        let (version, value) = match cache.get(&self.home, object, key) {
            Some(cached) => cached,
            None => {
                let op = TxnOp::Fetch {
                    object: object.clone(),
                    key: ByteBuf::from(key.to_vec()),
                };
                let Some(TxnAnswer::Fetched { version, value }) = self.ask(op) else {
                    return Err(self.outside());
                };
                let value = value.map(|v| Bytes::from(v.into_vec()));
                cache.put(
                    &self.home,
                    object.clone(),
                    key.to_vec(),
                    version,
                    value.clone(),
                );
                (version, value)
            }
        };
        self.reads.lock().unwrap_or_else(|e| e.into_inner()).push((
            object.clone(),
            ByteBuf::from(key.to_vec()),
            version,
        ));
        Ok(value)
    }

    fn put(&self, _: &ObjectId, _: &[u8], _: Bytes) -> Result<(), TxError> {
        Err(self.outside())
    }

    fn delete(&self, _: &ObjectId, _: &[u8]) -> Result<(), TxError> {
        Err(self.outside())
    }

    fn scan(
        &self,
        _: &ObjectId,
        _: &[u8],
        _: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, TxError> {
        Err(self.outside())
    }
}
