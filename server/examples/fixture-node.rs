//! A node that also hosts the integration tests' fixture types
//! (`tests/common/fixtures.rs`): `crucial-server`'s command line with these
//! types linked in, started as a process by the integration tests.
//!
//! Usage: as `crucial-server` (`--listen`, `--max-frame-size`, `--data-dir`,
//! `--durability`, ...); prints `... listening on ADDR`.

#[path = "../tests/common/bank.rs"]
mod bank;
#[path = "../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../tests/common/shaped.rs"]
mod shaped;

fn main() {
    crucial_server::cli::main();
}
