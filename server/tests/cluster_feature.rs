//! `tests/cluster.rs` needs crucial-server's `cluster` feature, and cargo skips
//! a test target whose features are off without a word: this one says so.
//! `cargo test --workspace` turns the feature on (the bench crate asks for it).

#[cfg(not(feature = "cluster"))]
#[test]
fn the_cluster_tests_run() {
    panic!(
        "the cluster tests (tests/cluster.rs) were skipped: they need crucial-server's `cluster` \
         feature; run `cargo xtask test` (the README's test command) or \
         `cargo test -p crucial-server --features cluster`"
    );
}

#[cfg(feature = "cluster")]
#[test]
fn the_cluster_tests_run() {
    // tests/cluster.rs is built with this test binary's features.
}
