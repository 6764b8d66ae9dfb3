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
//! Checks for one owner travel together: one message carries every check
//! that queued while the one before was on its way (as a group commit
//! does), so the owner's cost per light read falls as the load grows.
//!
//! Anything a light replica cannot serve — a write, a scan, an object of
//! another home, an owner it cannot reach, a check that keeps failing —
//! ends the light run: the call then takes the ordinary path, which sends
//! the client to the owner. Nothing a light run did is kept.

use super::light_cache::{PendingCheck, Stale};
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

/// Checks one message carries at most.
const CHECKS_PER_MESSAGE: usize = 256;

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
/// `None` when the owner must serve it. The function runs on the workflow
/// pool; the check is awaited off it, so a pool thread is never held for a
/// round trip to the owner and checks queue up to travel together.
pub async fn serve(
    node: &Arc<NodeState>,
    cluster: &Arc<Cluster>,
    invocation: LightCall,
    owner: String,
) -> Option<Outcome> {
    let limits = node
        .lambdas
        .limits(invocation.type_entry, invocation.function);
    let deadline = Instant::now() + limits.time;
    let invocation = Arc::new(invocation);
    let rt = tokio::runtime::Handle::current();
    for _ in 0..ATTEMPTS {
        let (done, ran) = tokio::sync::oneshot::channel();
        node.lambdas.pool.submit({
            let (node, cluster) = (Arc::clone(node), Arc::clone(cluster));
            let (invocation, owner, rt) = (Arc::clone(&invocation), owner.clone(), rt.clone());
            move || {
                let ran = run_once(&node, &cluster, &rt, &invocation, owner, deadline);
                let _ = done.send(ran);
            }
        });
        let (result, reads) = ran.await.ok()??;
        let stale = check(cluster, node.peer_id, &owner, reads).await?;
        if stale.is_empty() {
            node.lambdas.metrics.light();
            return Some(outcome_of(&invocation, result));
        }
        for (object, key, version, value) in stale {
            let value = value.map(|v| Bytes::from(v.into_vec()));
            let home = &invocation.home;
            cluster
                .light
                .put(home, object, key.into_vec(), version, value);
        }
    }
    None
}

/// The entries a light run read, `(object, key, version)` each.
type Reads = Vec<(ObjectId, ByteBuf, u64)>;

/// One run of `invocation` over the cache: its result and what it read, or
/// `None` if it needed what a light replica cannot serve. Blocks.
fn run_once(
    node: &Arc<NodeState>,
    cluster: &Arc<Cluster>,
    rt: &tokio::runtime::Handle,
    invocation: &LightCall,
    owner: String,
    deadline: Instant,
) -> Option<(Result<Vec<u8>, TxError>, Reads)> {
    let host = Arc::new(LightHost {
        node: Arc::clone(node),
        cluster: Arc::clone(cluster),
        rt: rt.clone(),
        owner,
        home: invocation.home.clone(),
        deadline,
        reads: Mutex::default(),
        doomed: Mutex::default(),
        outside: AtomicBool::new(false),
    });
    let result = run_child(
        Arc::clone(&host) as Arc<dyn Host>,
        invocation.function,
        invocation.object.clone(),
        &invocation.args,
        invocation.seed,
    );
    if host.outside.load(Ordering::Relaxed) || Instant::now() >= deadline {
        return None;
    }
    let reads = std::mem::take(&mut *host.reads.lock().unwrap_or_else(|e| e.into_inner()));
    Some((result, reads))
}

/// The owner's check of `reads`: the entries that changed (none: the run
/// holds), or `None` if the owner could not check them. Queued with the
/// other runs' checks for the same owner.
async fn check(cluster: &Arc<Cluster>, me: u64, owner: &str, reads: Reads) -> Option<Vec<Stale>> {
    let (queue, fresh) = cluster.light.checks(owner);
    if let Some(queued) = fresh {
        tokio::spawn(send_checks(
            Arc::clone(cluster),
            me,
            owner.to_string(),
            queued,
        ));
    }
    let (verdict, wait) = tokio::sync::oneshot::channel();
    queue.send(PendingCheck { reads, verdict }).ok()?;
    wait.await.ok().flatten()
}

/// The reply to a light run that ended with `result`, as the owner would
/// give it.
fn outcome_of(invocation: &LightCall, result: Result<Vec<u8>, TxError>) -> Outcome {
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
            object: invocation.object.to_string(),
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
    /// What it read.
    reads: Mutex<Reads>,
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

/// Sends the checks queued for `owner`: each message carries every check
/// that queued while the one before was on its way.
async fn send_checks(
    cluster: Arc<Cluster>,
    me: u64,
    owner: String,
    mut queued: tokio::sync::mpsc::UnboundedReceiver<PendingCheck>,
) {
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < CHECKS_PER_MESSAGE {
            match queued.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let runs = batch
            .iter_mut()
            .map(|check| std::mem::take(&mut check.reads))
            .collect();
        let op = TxnOp::Check { runs };
        match super::reach::ask_owner(&cluster, me, &owner, op, ASK_WITHIN).await {
            Ok(TxnAnswer::Checked(verdicts)) if verdicts.len() == batch.len() => {
                for (check, stale) in batch.into_iter().zip(verdicts) {
                    let _ = check.verdict.send(Some(stale));
                }
            }
            other => {
                tracing::debug!(%owner, "a light replica's checks got no verdict: {other:?}");
                for check in batch {
                    let _ = check.verdict.send(None);
                }
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
