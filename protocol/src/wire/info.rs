//! What control replies carry: the handshake's answer and the node's listings.

use serde::{Deserialize, Serialize};

/// The node's answer to `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The node's protocol version.
    pub protocol: u32,
    /// The node's crate version.
    pub version: String,
    /// How many shared types the node's registry holds.
    pub types: u32,
    /// The cluster's membership view as the node knows it (`None`: a node
    /// on its own, no cluster behind it).
    pub view: Option<crate::placement::View>,
}

/// One object held by a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The application it belongs to: a lambda object's, or the namespace a
    /// node that authenticates keeps a shared object in (empty: none).
    pub application: String,
    /// Registered type name.
    pub type_name: String,
    /// Key (as its client named it, without the application).
    pub key: String,
    /// Whether a mutating method panicked on it.
    pub poisoned: bool,
    /// Blocking calls parked on it.
    pub parked: u32,
    /// Kept on disk (a `persistent` type on a node with a data directory).
    pub persistent: bool,
    /// In memory now; `false` while passivated (on disk only, brought back
    /// by its next call).
    pub resident: bool,
    /// Encoded size of its state at its last write, in bytes (0 for objects
    /// that are not kept on disk: their size is not tracked).
    pub bytes: u64,
}

/// One registered shared type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    /// Registered (wire) name.
    pub name: String,
    /// Rust module that defines it.
    pub module: String,
    /// Declared `persistent`.
    pub persistent: bool,
    /// Its shipped methods.
    pub methods: Vec<MethodInfo>,
}

/// One shipped method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodInfo {
    /// Signature as written, normalized.
    pub signature: String,
    /// `&self` method.
    pub read_only: bool,
}

/// What a node counts of its lambda-object workflows since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowStats {
    /// Workflows committed.
    pub committed: u64,
    /// Executions of the workflows that committed or were given up: above
    /// `committed` by the re-executions after conflicts.
    pub executions: u64,
    /// Workflows whose function failed or panicked.
    pub failed: u64,
    /// Workflows that conflicted in every execution allowed.
    pub given_up: u64,
    /// Workflows aborted at their time limit.
    pub timed_out: u64,
    /// Workflows committed with two-phase commit (they reached objects on
    /// other nodes), counted by the node that managed them.
    pub spanning: u64,
    /// Workflows that read on other nodes and wrote nowhere, committed
    /// with a check of their reads there instead of two-phase commit.
    pub read_only: u64,
    /// Steps of other nodes' transactions served (reads, prepares,
    /// decisions): node-to-node messages.
    pub steps: u64,
    /// Prepared parts here whose decision did not come and that learnt it
    /// by asking (their manager crashed, or lost its link): resolved.
    pub resolved: u64,
    /// Parts prepared here that have waited more than 100 ms for their
    /// decision, now (a gauge: added up over nodes, not over time).
    pub in_doubt: u64,
    /// Read-only workflows this node ran as a light replica of their
    /// object (checked at its owner).
    pub light: u64,
}

impl WorkflowStats {
    /// Re-executions per committed workflow (0: no conflict at all).
    pub fn retry_rate(&self) -> f64 {
        if self.committed == 0 {
            return 0.0;
        }
        self.executions
            .saturating_sub(self.committed + self.given_up) as f64
            / self.committed as f64
    }

    /// The counts of `self` and `other` together (two nodes, or since a mark).
    pub fn plus(self, other: WorkflowStats) -> WorkflowStats {
        WorkflowStats {
            committed: self.committed + other.committed,
            executions: self.executions + other.executions,
            failed: self.failed + other.failed,
            given_up: self.given_up + other.given_up,
            timed_out: self.timed_out + other.timed_out,
            spanning: self.spanning + other.spanning,
            read_only: self.read_only + other.read_only,
            steps: self.steps + other.steps,
            resolved: self.resolved + other.resolved,
            in_doubt: self.in_doubt + other.in_doubt,
            light: self.light + other.light,
        }
    }

    /// What happened since `earlier` was read.
    pub fn since(self, earlier: WorkflowStats) -> WorkflowStats {
        WorkflowStats {
            committed: self.committed.saturating_sub(earlier.committed),
            executions: self.executions.saturating_sub(earlier.executions),
            failed: self.failed.saturating_sub(earlier.failed),
            given_up: self.given_up.saturating_sub(earlier.given_up),
            timed_out: self.timed_out.saturating_sub(earlier.timed_out),
            spanning: self.spanning.saturating_sub(earlier.spanning),
            read_only: self.read_only.saturating_sub(earlier.read_only),
            steps: self.steps.saturating_sub(earlier.steps),
            resolved: self.resolved.saturating_sub(earlier.resolved),
            in_doubt: self.in_doubt,
            light: self.light.saturating_sub(earlier.light),
        }
    }
}
