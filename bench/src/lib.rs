//! Benchmark programs of Crucial for Rust. Each binary prints tables with the
//! peer (Redis, plain threads) measured in the same run:
//!
//! * `bench`: call latency and throughput against Redis;
//! * `bench-barrier`: barrier rounds against a polling barrier on Redis;
//! * `bench-apps`: k-means, logistic regression and Santa Claus against plain threads;
//! * `bench-spawn`: spawn + join of an empty cloud thread on each executor;
//! * `bench-load`: a `redis-benchmark`-style load generator (connections,
//!   pipeline depth, operation mix, key skew) driving the node and Redis alike;
//! * `bench-storage`: the embedded engines (redb, fjall) on the durable node's writes;
//! * `bench-durable`: persistent objects against Redis with an append-only file;
//! * `bench-lambda`: lambda objects (CloudForum's mix and a read-modify-write
//!   transaction) against Redis with client-side `WATCH`/`MULTI`/`EXEC` and
//!   PostgreSQL with serializable SQL functions;
//! * `bench-cluster`: the bank mix on 1..3 nodes (CPU per call beside
//!   calls/s) and the rebalance time and unavailability window of a join;
//! * `bench-replication`: persistent writes with 1..3 replicas against Redis
//!   with one replica (with and without `WAIT`), and the failover window;
//! * `bench-spread`: lambda objects placed object by object on 1..3 nodes (a
//!   transfer between two counters: two-phase commit when they are on two
//!   nodes) against Redis `WATCH`/`MULTI`/`EXEC` and PostgreSQL.
//!
//! `bench/plot.py` draws the guide's plots from their saved outputs in `bench/results/`.

pub mod cluster;
pub mod forum;
pub mod load;
pub mod postgres;
pub mod procfs;
pub mod rmw;
pub mod stats;
pub mod systems;
pub mod transfer;
pub mod writes;

use serde::{Deserialize, Serialize};

/// The user type of the load generator's `method` operation: two counters
/// updated by one method that runs next to them (Redis does the same in Lua).
#[crucial::shared(name = "crucial_bench::Tally")]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    inside: u64,
    total: u64,
}

#[crucial::shared]
impl Tally {
    /// Adds to both counters; returns the new total.
    pub fn record(&mut self, inside: u64, total: u64) -> u64 {
        self.inside += inside;
        self.total += total;
        self.total
    }
}

/// A persistent object for `bench-durable`: a counter and a value, kept on
/// disk by a node with a data directory.
#[crucial::shared(persistent, name = "crucial_bench::DurableCell")]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DurableCell {
    count: i64,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
}

#[crucial::shared]
impl DurableCell {
    /// Adds `n`; returns the new count.
    pub fn fetch_add(&mut self, n: i64) -> i64 {
        self.count += n;
        self.count
    }

    /// Replaces the value.
    pub fn set(&mut self, value: crucial::Bytes) {
        self.value = value.to_vec();
    }
}

/// Persistent k-means sums: 100 centroids of 25 dimensions (20 KB of state);
/// a call adds one point to one centroid (a 200-byte argument).
#[crucial::shared(persistent, name = "crucial_bench::Centroids")]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Centroids {
    sums: Vec<f64>,
    counts: Vec<u64>,
}

/// Centroids of [`Centroids`].
pub const CENTROIDS: usize = 100;
/// Dimensions of [`Centroids`].
pub const DIMENSIONS: usize = 25;

#[crucial::shared]
impl Centroids {
    /// Adds `point` to centroid `at`; returns that centroid's count.
    pub fn add(&mut self, at: u32, point: Vec<f64>) -> u64 {
        if self.sums.is_empty() {
            self.sums = vec![0.0; CENTROIDS * DIMENSIONS];
            self.counts = vec![0; CENTROIDS];
        }
        let at = at as usize % CENTROIDS;
        for (sum, x) in self.sums[at * DIMENSIONS..][..DIMENSIONS]
            .iter_mut()
            .zip(point)
        {
            *sum += x;
        }
        self.counts[at] += 1;
        self.counts[at]
    }

    /// The number of points added.
    pub fn points(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A persistent map of many entries; a call sets one.
#[crucial::shared(persistent, name = "crucial_bench::BigMap")]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BigMap {
    entries: std::collections::BTreeMap<u64, u64>,
}

#[crucial::shared]
impl BigMap {
    /// Entries `k -> k` for `k` in `0..n`.
    pub fn fill(&mut self, n: u64) {
        self.entries.extend((0..n).map(|k| (k, k)));
    }

    /// Sets one entry.
    pub fn put(&mut self, key: u64, value: u64) {
        self.entries.insert(key, value);
    }

    /// The number of entries.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }
}

/// A fresh directory `crucial-bench-NAME-PID` under `base` (default: the
/// system's temporary directory), for benches that measure a disk.
pub fn scratch_dir(base: Option<std::path::PathBuf>, name: &str) -> std::path::PathBuf {
    let dir = base
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("crucial-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the bench directory");
    dir
}

/// `main` of every bench binary starts with this: when re-executed with
/// `--serve`, the process is the Crucial node under test instead.
pub fn serve_if_asked() -> bool {
    if std::env::args().any(|a| a == "--serve") {
        systems::serve_node();
        return true;
    }
    if let Some(at) = std::env::args().position(|a| a == "--echo") {
        let sizes: Vec<usize> = std::env::args()
            .skip(at + 1)
            .take(2)
            .map(|v| v.parse().expect("--echo REQUEST_BYTES REPLY_BYTES"))
            .collect();
        systems::serve_echo(sizes[0], sizes[1]);
        return true;
    }
    if std::env::args().any(|a| a == "--spin") {
        // The "one core busy" condition: an unrelated process that never sleeps.
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
    false
}
