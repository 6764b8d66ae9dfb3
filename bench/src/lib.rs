//! Benchmark programs of Crucial for Rust. Each binary prints tables with the
//! peer (Redis, plain threads) measured in the same run:
//!
//! * `bench`: call latency and throughput against Redis;
//! * `bench-barrier`: barrier rounds against a polling barrier on Redis;
//! * `bench-apps`: k-means, logistic regression and Santa Claus against plain threads;
//! * `bench-spawn`: spawn + join of an empty cloud thread on each executor.
//!
//! `bench/plot.py` draws the guide's plots from their saved outputs in `bench/results/`.

pub mod stats;
pub mod systems;

/// `main` of every bench binary starts with this: when re-executed with
/// `--serve`, the process is the Crucial node under test instead.
pub fn serve_if_asked() -> bool {
    if std::env::args().any(|a| a == "--serve") {
        systems::serve_node();
        return true;
    }
    false
}
