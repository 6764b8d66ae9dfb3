//! What a node counts, and its `/metrics` page in Prometheus' text format.
//!
//! Counters are plain atomics bumped on the request path (a relaxed add each);
//! the per-method call counters live in a map built once from the registry, so
//! no lock is taken to count. Gauges (objects held, calls parked) are read from
//! the object table when the page is scraped. `crucial-server --metrics ADDR`
//! serves the page.

use crate::node::NodeState;
use crucial::registry::Registry;
use crucial::RemoteError;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Upper bounds of the call-duration histogram's buckets, in microseconds.
const BUCKETS_MICROS: [u64; 14] = [
    5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000, 1_000_000,
];

/// Counters of one node.
pub struct Metrics {
    started: Instant,
    connections_open: AtomicU64,
    connections_total: AtomicU64,
    requests_total: AtomicU64,
    calls: HashMap<(&'static str, &'static str), AtomicU64>,
    replayed_total: AtomicU64,
    parked_total: AtomicU64,
    errors: [AtomicU64; RemoteError::KINDS.len()],
    /// Cumulative per bucket when rendered; stored per bucket (last = over the top).
    duration_buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    duration_sum_nanos: AtomicU64,
}

impl Metrics {
    /// Zeroed counters with one call counter per method of every registered type.
    pub fn new(registry: &'static Registry) -> Metrics {
        let mut calls = HashMap::new();
        for entry in registry.shared_types() {
            for method in entry.methods {
                calls.insert((entry.name, method.id.name), AtomicU64::new(0));
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

    /// A blocking call parked on its object.
    pub fn parked(&self) {
        self.parked_total.fetch_add(1, Ordering::Relaxed);
    }

    /// An error reply was sent.
    pub fn error(&self, error: &RemoteError) {
        self.errors[error.kind_index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The node's metrics page, in Prometheus' text exposition format (0.0.4).
pub fn render(node: &NodeState) -> String {
    let m = &node.metrics;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let objects = node.table.list();
    let parked_now: u64 = objects.iter().map(|o| o.parked as u64).sum();
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
    #[rustfmt::skip]
    let single: [(&str, &str, &str, u64); 7] = [
        ("crucial_connections_open", "gauge", "Client connections open now.", load(&m.connections_open)),
        ("crucial_connections_total", "counter", "Client connections accepted.", load(&m.connections_total)),
        ("crucial_requests_total", "counter", "Request frames received (calls and control requests).", load(&m.requests_total)),
        ("crucial_replayed_total", "counter", "Retried requests answered from the dedup table without running again.", load(&m.replayed_total)),
        ("crucial_parked_total", "counter", "Blocking calls that parked on their object.", load(&m.parked_total)),
        ("crucial_parked_calls", "gauge", "Blocking calls parked now.", parked_now),
        ("crucial_objects", "gauge", "Shared objects held now.", objects.len() as u64),
    ];
    for (name, kind, help, value) in single {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
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

/// Escapes a label value (`\`, `"` and newlines).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, node: Arc<NodeState>) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State(node): axum::extract::State<Arc<NodeState>>| async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        render(&node),
                    )
                },
            ),
        )
        .with_state(node);
    axum::serve(listener, app).await
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
        let m = Metrics::new(crucial::registry::registry());
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
