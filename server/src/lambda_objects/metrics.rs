//! What a node counts of its workflows, for the `/metrics` page.

use crate::metrics::family;
use crucial::WorkflowStats;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Workflow counters of one node.
#[derive(Default)]
pub struct WorkflowMetrics {
    committed: AtomicU64,
    executions: AtomicU64,
    failed: AtomicU64,
    given_up: AtomicU64,
    timed_out: AtomicU64,
    spanning: AtomicU64,
    read_only: AtomicU64,
    steps: AtomicU64,
    resolved: AtomicU64,
    light: AtomicU64,
    runaway: Arc<AtomicI64>,
}

impl WorkflowMetrics {
    /// A workflow committed after `executions` executions.
    pub fn committed(&self, executions: u32) {
        self.committed.fetch_add(1, Ordering::Relaxed);
        self.executions
            .fetch_add(u64::from(executions), Ordering::Relaxed);
    }

    /// A workflow failed (its function's error, a panic, bad arguments).
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A workflow conflicted in every execution it was allowed.
    pub fn given_up(&self, executions: u32) {
        self.given_up.fetch_add(1, Ordering::Relaxed);
        self.executions
            .fetch_add(u64::from(executions), Ordering::Relaxed);
    }

    /// A workflow managed here committed with two-phase commit.
    pub fn spanned(&self) {
        self.spanning.fetch_add(1, Ordering::Relaxed);
    }

    /// A workflow managed here read on other nodes, wrote nowhere, and
    /// committed with checks of its reads there.
    pub fn checked(&self) {
        self.read_only.fetch_add(1, Ordering::Relaxed);
    }

    /// A read-only workflow ran here as a light replica of its object.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // light replicas' (feature "cluster")
    pub fn light(&self) {
        self.light.fetch_add(1, Ordering::Relaxed);
    }

    /// A step of another node's transaction was served here.
    pub fn step(&self) {
        self.steps.fetch_add(1, Ordering::Relaxed);
    }

    /// Prepared parts here learnt their decision by asking for it.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // membership's (feature "cluster")
    pub fn resolved(&self, parts: usize) {
        self.resolved.fetch_add(parts as u64, Ordering::Relaxed);
    }

    /// A workflow ran past its time limit.
    pub fn timed_out(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// The watchdog answered a workflow whose function still runs (a loop
    /// that touches no storage cannot be stopped in native code): counted
    /// until the guard is dropped, when the function returns.
    pub fn runaway(&self) -> RunawayGuard {
        self.runaway.fetch_add(1, Ordering::Relaxed);
        RunawayGuard(Arc::clone(&self.runaway))
    }

    /// The counts, for the `WorkflowStats` request.
    pub fn stats(&self) -> WorkflowStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkflowStats {
            committed: load(&self.committed),
            executions: load(&self.executions),
            failed: load(&self.failed),
            given_up: load(&self.given_up),
            timed_out: load(&self.timed_out),
            spanning: load(&self.spanning),
            read_only: load(&self.read_only),
            steps: load(&self.steps),
            resolved: load(&self.resolved),
            in_doubt: 0,
            light: load(&self.light),
        }
    }

    /// The metric families, in Prometheus' text format.
    pub fn render(&self, out: &mut String, threads: usize) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        #[rustfmt::skip]
        let rows: [(&str, &str, &str, u64); 12] = [
            ("crucial_workflows_committed_total", "counter", "Lambda-object workflows committed.", load(&self.committed)),
            ("crucial_workflow_executions_total", "counter", "Executions of workflows that committed or were given up (above the committed count: re-executions after conflicts).", load(&self.executions)),
            ("crucial_workflows_failed_total", "counter", "Workflows whose function failed or panicked (nothing written).", load(&self.failed)),
            ("crucial_workflows_given_up_total", "counter", "Workflows that conflicted in every execution allowed (--workflow-attempts).", load(&self.given_up)),
            ("crucial_workflows_timed_out_total", "counter", "Workflows aborted at their time limit.", load(&self.timed_out)),
            ("crucial_workflows_spanning_total", "counter", "Workflows managed here that committed with two-phase commit (they reached other nodes' objects).", load(&self.spanning)),
            ("crucial_workflows_read_only_spanning_total", "counter", "Workflows managed here that read other nodes' objects, wrote nowhere, and committed with a check of their reads there (no two-phase commit).", load(&self.read_only)),
            ("crucial_transaction_steps_total", "counter", "Steps of other nodes' transactions served here (reads, prepares, decisions).", load(&self.steps)),
            ("crucial_transactions_resolved_total", "counter", "Prepared parts here whose decision did not come and that learnt it from the decision's record (their manager crashed or was cut off).", load(&self.resolved)),
            ("crucial_workflows_light_total", "counter", "Read-only workflows run here as a light replica of their object (checked at its owner).", load(&self.light)),
            ("crucial_workflow_threads", "gauge", "Threads of the workflow pool now (one per core, plus one per runaway function).", threads as u64),
            ("crucial_runaway_functions", "gauge", "Functions still running after the watchdog answered their workflow's timeout (native code that touches no storage cannot be preempted; each holds one workflow thread, replaced in the pool).", self.runaway.load(Ordering::Relaxed).max(0) as u64),
        ];
        for (name, kind, help, value) in rows {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

/// Counts one runaway function until dropped.
pub struct RunawayGuard(Arc<AtomicI64>);

impl Drop for RunawayGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
