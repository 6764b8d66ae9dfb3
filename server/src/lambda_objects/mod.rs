//! Lambda objects on a node: the transactional store their entries live in,
//! the workflows that run their functions (on a pool of their own, never on
//! the reactor), the limits those run under, and what the node counts of them.
//! The request path is `request/workflow.rs`.

mod call;
mod map;
mod metrics;
mod pool;
mod run;
mod shape;

pub use call::{run_child, Invocation};
pub use metrics::WorkflowMetrics;
pub use pool::Pool;
pub use run::{execute, Ended, Gate};
pub use shape::is_record;

use crate::storage::Storage;
use crate::txn::{Limits, Participant, Reach, Store};
use crucial::__private::registry::{registry, FunctionEntry, LambdaTypeEntry};
use crucial::ObjectId;
use std::sync::Arc;
use std::time::Duration;

/// Whether a lambda object is placed on its own (its type is declared
/// `placement = "object"`), not with its application.
pub fn placed_by_object(id: &ObjectId) -> bool {
    registry()
        .lambda_type(&id.type_name)
        .is_some_and(|ty| ty.by_object && ty.application == id.application)
}

/// A node's lambda objects.
pub struct Lambdas {
    /// Their entries, versions and commit clock.
    pub store: Arc<Store>,
    /// The node's cap on a workflow's time (also the limit of functions that
    /// declare none).
    pub time_cap: Duration,
    /// Executions a workflow may take.
    pub attempts: u32,
    /// What the node counts.
    pub metrics: WorkflowMetrics,
    /// The threads workflows run on.
    pub pool: Pool,
    /// The threads child calls sent here by other nodes' workflows run on:
    /// apart from `pool`, whose threads may wait for other nodes, so that
    /// two nodes whose workflows call each other's objects never wait for
    /// each other's threads. (Created on first use: a node outside a
    /// cluster never gets one.)
    pub children: std::sync::OnceLock<Pool>,
    threads: usize,
    /// This node's parts of transactions managed by other nodes.
    pub participant: Participant,
    /// How this node's workflows reach the objects of other nodes (set when
    /// the node joins a cluster).
    pub reach: std::sync::OnceLock<Arc<dyn Reach>>,
}

impl Lambdas {
    /// Lambda objects in memory (`storage: None`) or kept in `storage`
    /// (every stored entry is loaded now).
    pub fn open(
        storage: Option<Arc<Storage>>,
        time_cap: Duration,
        attempts: u32,
        threads: usize,
    ) -> Result<Lambdas, String> {
        let store = match &storage {
            // The node's own records are nobody's copy: never provisional.
            Some(storage) => Arc::new(Store::recover(
                Arc::clone(storage),
                |id| !shape::is_record(id),
                placed_by_object,
            )?),
            None => Arc::new(Store::default().placed_by(placed_by_object)),
        };
        if let Some(storage) = &storage {
            shape::check(&store, storage, &registry().lambda_types());
        }
        Ok(Lambdas {
            participant: Participant::new(Arc::clone(&store)),
            reach: std::sync::OnceLock::new(),
            store,
            time_cap,
            attempts: attempts.max(1),
            metrics: WorkflowMetrics::default(),
            pool: Pool::new(threads),
            children: std::sync::OnceLock::new(),
            threads,
        })
    }

    /// The pool of child calls sent here ([`Lambdas::children`]).
    pub fn children(&self) -> &Pool {
        self.children.get_or_init(|| Pool::new(self.threads))
    }

    /// The limits a call of `function` runs under: its own time limit, else
    /// its type's, else the node's, never above the node's.
    pub fn limits(&self, ty: &LambdaTypeEntry, function: &FunctionEntry) -> Limits {
        let declared = [function.time_limit_ms, ty.time_limit_ms]
            .into_iter()
            .find(|&ms| ms > 0)
            .map_or(self.time_cap, Duration::from_millis);
        Limits {
            attempts: self.attempts,
            time: declared.min(self.time_cap),
        }
    }
}
