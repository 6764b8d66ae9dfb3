//! What a node counts, and its `/metrics` page in Prometheus' text format.
//!
//! Counters are plain atomics bumped on the request path (a relaxed add each);
//! the per-method call counters live in a map built once from the registry, so
//! no lock is taken to count, and rendering the page never waits for an
//! object's lock (a long method must not block a scrape). The object count is
//! read from the table when the page is scraped ([`Metrics::render`]);
//! `crucial-server --metrics ADDR` serves the page (`net/metrics_http.rs`).

use crate::shared_objects::ResidencyGauges;
use crucial::__private::registry::Registry;
use crucial::RemoteError;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Upper bounds of the call-duration histogram's buckets, in microseconds.
const BUCKETS_MICROS: [u64; 14] = [
    5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000, 1_000_000,
];

/// Why the node closed a client connection (each a limit with its flag).
#[derive(Debug, Clone, Copy)]
pub enum Closed {
    /// Refused at once: `--max-connections` were open.
    MaxConnections,
    /// No `Hello` within `--handshake-timeout`.
    HandshakeTimeout,
    /// A frame not whole within `--frame-timeout`.
    FrameTimeout,
    /// Nothing to do for `--idle-timeout`.
    IdleTimeout,
    /// A frame length too absurd to skip (more than 4x `--max-frame-size`).
    FrameSize,
}

impl Closed {
    const ALL: [(Closed, &'static str); 5] = [
        (Closed::MaxConnections, "max_connections"),
        (Closed::HandshakeTimeout, "handshake_timeout"),
        (Closed::FrameTimeout, "frame_timeout"),
        (Closed::IdleTimeout, "idle_timeout"),
        (Closed::FrameSize, "frame_size"),
    ];
}

/// A few counters read together (the admin plane's status).
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the admin plane's (feature "cluster")
pub struct Counts {
    /// Request frames since start.
    pub requests: u64,
    /// Time since start.
    pub uptime: Duration,
    /// Objects taken over from other nodes.
    pub moved_in: u64,
    /// Objects handed off to other nodes.
    pub moved_out: u64,
}

/// Counters of one node.
pub struct Metrics {
    started: Instant,
    connections_open: AtomicU64,
    connections_total: AtomicU64,
    requests_total: AtomicU64,
    calls: HashMap<(&'static str, &'static str), AtomicU64>,
    replayed_total: AtomicU64,
    parked_total: AtomicU64,
    parked_now: Arc<AtomicI64>,
    backlog_bytes: AtomicI64,
    request_buffer_bytes: AtomicI64,
    closed: [AtomicU64; Closed::ALL.len()],
    paused_total: AtomicU64,
    stalled_total: AtomicU64,
    moved_out_total: AtomicU64,
    moved_in_total: AtomicU64,
    views_settled_total: AtomicU64,
    errors: [AtomicU64; RemoteError::KINDS.len()],
    /// Cumulative per bucket when rendered; stored per bucket (last = over the top).
    duration_buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    duration_sum_nanos: AtomicU64,
}

impl Metrics {
    /// Zeroed counters with one call counter per method of every registered
    /// shared type and per function of every lambda object type.
    pub fn new(registry: &'static Registry) -> Metrics {
        let mut calls = HashMap::new();
        for entry in registry.shared_types() {
            for method in entry.methods {
                calls.insert((entry.name, method.id.name), AtomicU64::new(0));
            }
        }
        for entry in registry.lambda_types() {
            for function in entry.functions {
                calls.insert((entry.name, function.id.name), AtomicU64::new(0));
            }
        }
        Metrics {
            started: Instant::now(),
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            calls,
            replayed_total: AtomicU64::new(0),
            parked_total: AtomicU64::new(0),
            parked_now: Arc::default(),
            backlog_bytes: AtomicI64::new(0),
            request_buffer_bytes: AtomicI64::new(0),
            closed: Default::default(),
            paused_total: AtomicU64::new(0),
            stalled_total: AtomicU64::new(0),
            moved_out_total: AtomicU64::new(0),
            moved_in_total: AtomicU64::new(0),
            views_settled_total: AtomicU64::new(0),
            errors: Default::default(),
            duration_buckets: Default::default(),
            duration_sum_nanos: AtomicU64::new(0),
        }
    }

    /// A client connected.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A client went away.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request frame arrived.
    pub fn request(&self) {
        self.requests_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A method ran on an object; `elapsed` is from lookup to outcome (lock wait included).
    pub fn call(&self, type_name: &'static str, method: &'static str, elapsed: Duration) {
        self.count_call(type_name, method);
        let micros = elapsed.as_micros() as u64;
        let bucket = BUCKETS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BUCKETS_MICROS.len());
        self.duration_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// A call completed: counted by type and method (a parked call when it
    /// completes, without a duration sample).
    pub fn count_call(&self, type_name: &'static str, method: &'static str) {
        if let Some(counter) = self.calls.get(&(type_name, method)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A retried request was answered from the dedup table without running again.
    pub fn replayed(&self) {
        self.replayed_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A blocking call parked on its object: counted until the guard is dropped
    /// (however the call leaves its object).
    pub fn parked(&self) -> ParkedGuard {
        self.parked_total.fetch_add(1, Ordering::Relaxed);
        self.parked_now.fetch_add(1, Ordering::Relaxed);
        ParkedGuard(Arc::clone(&self.parked_now))
    }

    /// Blocking calls parked now.
    pub fn parked_now(&self) -> u64 {
        self.parked_now.load(Ordering::Relaxed).max(0) as u64
    }

    /// Replies waiting to be written grew (or shrank, when negative) by `delta` bytes.
    pub fn backlog(&self, delta: i64) {
        self.backlog_bytes.fetch_add(delta, Ordering::Relaxed);
    }

    /// Read buffers grew past their base size (a large frame arriving) or
    /// shrank back, by `delta` bytes.
    pub fn request_buffer(&self, delta: i64) {
        self.request_buffer_bytes
            .fetch_add(delta, Ordering::Relaxed);
    }

    /// The node closed (or refused) a connection because of a limit.
    pub fn closed(&self, why: Closed) {
        self.closed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection stopped being read because its client does not read its replies.
    pub fn paused(&self) {
        self.paused_total.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters the admin plane reports.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the admin plane's (feature "cluster")
    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.requests_total.load(Ordering::Relaxed),
            uptime: self.started.elapsed(),
            moved_in: self.moved_in_total.load(Ordering::Relaxed),
            moved_out: self.moved_out_total.load(Ordering::Relaxed),
        }
    }

    /// Objects handed off to their new owners.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's (feature "cluster")
    pub fn moved_out(&self, count: usize) {
        self.moved_out_total
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Objects taken over from other nodes.
    pub fn moved_in(&self, count: usize) {
        self.moved_in_total
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// The node settled a view of the cluster.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's (feature "cluster")
    pub fn view_settled(&self) {
        self.views_settled_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed because its client stayed stuck past the stall timeout.
    pub fn stalled(&self) {
        self.stalled_total.fetch_add(1, Ordering::Relaxed);
    }

    /// An error reply was sent.
    pub fn error(&self, error: &RemoteError) {
        self.errors[error.kind_index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one parked call in the `crucial_parked_calls` gauge while it lives.
#[derive(Debug)]
pub struct ParkedGuard(Arc<AtomicI64>);

impl Drop for ParkedGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the object table holds when the page is scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableGauges {
    /// Objects held now.
    pub objects: u64,
    /// Persistent objects' bytes in memory and their passivation.
    pub residency: ResidencyGauges,
    /// Snapshots and logged calls written to the data directory.
    pub written: (u64, u64),
    /// Persistent objects recovered from disk at start.
    pub recovered_objects: u64,
    /// Stored objects this build could not read at start.
    pub unreadable_objects: u64,
    /// How long the recovery took, in milliseconds.
    pub recovery_ms: u64,
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Resident memory of this process in bytes, from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl Metrics {
    /// The node's metrics page, in Prometheus' text exposition format (0.0.4).
    pub fn render(&self, table: TableGauges) -> String {
        let m = self;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();

        family(
            &mut out,
            "crucial_uptime_seconds",
            "gauge",
            "Seconds since the node started.",
        );
        let _ = writeln!(
            out,
            "crucial_uptime_seconds {:.3}",
            m.started.elapsed().as_secs_f64()
        );
        let backlog = m.backlog_bytes.load(Ordering::Relaxed).max(0) as u64;
        let r = table.residency;
        #[rustfmt::skip]
        let single: [(&str, &str, &str, u64); 24] = [
            ("crucial_connections_open", "gauge", "Client connections open now.", load(&m.connections_open)),
            ("crucial_connections_total", "counter", "Client connections accepted.", load(&m.connections_total)),
            ("crucial_requests_total", "counter", "Request frames received (calls and control requests).", load(&m.requests_total)),
            ("crucial_replayed_total", "counter", "Retried requests answered from the dedup table without running again.", load(&m.replayed_total)),
            ("crucial_parked_total", "counter", "Blocking calls that parked on their object.", load(&m.parked_total)),
            ("crucial_parked_calls", "gauge", "Blocking calls parked now.", m.parked_now.load(Ordering::Relaxed).max(0) as u64),
            ("crucial_objects", "gauge", "Shared objects held now.", table.objects),
            ("crucial_recovered_objects", "gauge", "Persistent objects recovered from the data directory at start.", table.recovered_objects),
            ("crucial_unreadable_objects", "gauge", "Stored objects this build could not read at start (changed type, damaged record).", table.unreadable_objects),
            ("crucial_recovery_milliseconds", "gauge", "Time the recovery from the data directory took at start.", table.recovery_ms),
            ("crucial_resident_object_bytes", "gauge", "Encoded size of the persistent objects in memory now.", r.resident),
            ("crucial_resident_object_bytes_peak", "gauge", "The most crucial_resident_object_bytes ever was.", r.peak),
            ("crucial_passivated_objects", "gauge", "Persistent objects on disk only now (brought back by their next call).", r.passivated),
            ("crucial_passivations_total", "counter", "Idle persistent objects dropped from memory to stay under the memory limit.", r.passivations),
            ("crucial_activations_total", "counter", "Passivated objects brought back from disk by a call.", r.activations),
            ("crucial_snapshots_written_total", "counter", "Whole states of persistent objects written (a call's change, when the state is smaller than the log would grow).", table.written.0),
            ("crucial_calls_logged_total", "counter", "Calls appended to their persistent object's log instead of writing its whole state.", table.written.1),
            ("crucial_reply_backlog_bytes", "gauge", "Reply bytes waiting for slow clients to read them, all connections.", backlog),
            ("crucial_request_buffer_bytes", "gauge", "Bytes of large request frames partly received, all connections (beyond each connection's 16 KiB buffer).", m.request_buffer_bytes.load(Ordering::Relaxed).max(0) as u64),
            ("crucial_read_pauses_total", "counter", "Times a connection stopped being read because its unread replies passed the bound.", load(&m.paused_total)),
            ("crucial_stalled_connections_closed_total", "counter", "Connections closed because their client read no reply for the stall timeout.", load(&m.stalled_total)),
            ("crucial_objects_moved_out_total", "counter", "Objects handed off to their new owner after a view change (cluster).", load(&m.moved_out_total)),
            ("crucial_objects_moved_in_total", "counter", "Objects taken over from another node after a view change (cluster).", load(&m.moved_in_total)),
            ("crucial_views_settled_total", "counter", "Views of the cluster this node settled (every handoff into it done).", load(&m.views_settled_total)),
        ];
        for (name, kind, help, value) in single {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            &mut out,
            "crucial_connections_closed_total",
            "counter",
            "Client connections the node closed or refused because of a limit, by limit.",
        );
        for ((_, reason), count) in Closed::ALL.iter().zip(&m.closed) {
            let _ = writeln!(
                out,
                "crucial_connections_closed_total{{reason=\"{reason}\"}} {}",
                load(count)
            );
        }
        if let Some(limit) = r.limit {
            let name = "crucial_memory_limit_bytes";
            family(
                &mut out,
                name,
                "gauge",
                "The node's --memory-limit for persistent objects.",
            );
            let _ = writeln!(out, "{name} {limit}");
        }
        if let Some(bytes) = resident_bytes() {
            let name = "process_resident_memory_bytes";
            family(&mut out, name, "gauge", "Resident memory size in bytes.");
            let _ = writeln!(out, "{name} {bytes}");
        }
        family(
            &mut out,
            "crucial_calls_total",
            "counter",
            "Method calls answered (errors included; a parked call when it completes), by type and method.",
        );
        let mut calls: Vec<_> = m.calls.iter().collect();
        calls.sort_by_key(|(key, _)| **key);
        for ((type_name, method), count) in calls {
            let _ = writeln!(
                out,
                "crucial_calls_total{{type=\"{}\",method=\"{}\"}} {}",
                escape(type_name),
                escape(method),
                load(count)
            );
        }

        family(
            &mut out,
            "crucial_errors_total",
            "counter",
            "Error replies, by kind.",
        );
        for (kind, count) in RemoteError::KINDS.iter().zip(&m.errors) {
            let _ = writeln!(
                out,
                "crucial_errors_total{{kind=\"{kind}\"}} {}",
                load(count)
            );
        }

        let name = "crucial_call_duration_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "Time from lookup to outcome of calls answered at once (lock wait included, parked time not).",
        );
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_MICROS.iter().enumerate() {
            cumulative += load(&m.duration_buckets[i]);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += load(&m.duration_buckets[BUCKETS_MICROS.len()]);
        let sum = load(&m.duration_sum_nanos) as f64 / 1e9;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
        out
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }

    #[test]
    fn durations_land_in_the_first_bucket_that_holds_them() {
        let m = Metrics::new(crucial::__private::registry::registry());
        m.call("t", "m", Duration::from_micros(3));
        m.call("t", "m", Duration::from_micros(10));
        m.call("t", "m", Duration::from_secs(5));
        let counts: Vec<u64> = m
            .duration_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 1, "3 µs <= 5 µs");
        assert_eq!(counts[1], 1, "10 µs <= 10 µs");
        assert_eq!(counts[BUCKETS_MICROS.len()], 1, "5 s is over the top");
    }
}
