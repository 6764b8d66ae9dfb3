//! A function binary with misbehaving cloud threads, for the executor tests
//! (`tests/executors.rs`): it returns values and errors, panics, exits, sleeps
//! past its time limit, and fails only on its first attempt.

use crucial::{cloud_thread, AtomicI64};

/// Doubles `n`.
#[cloud_thread]
pub fn double(n: u64) -> u64 {
    n * 2
}

/// Adds one to the counter `key` and returns the count.
#[cloud_thread]
pub fn bump(key: String) -> i64 {
    AtomicI64::shared(key)
        .add_and_get(1)
        .unwrap_or_else(|e| panic!("cannot reach the node: {e}"))
}

/// Returns an error value (a value, not a failure: it is not retried).
#[cloud_thread]
pub fn refuse(reason: String) -> Result<u64, String> {
    Err(reason)
}

/// Panics.
#[cloud_thread]
pub fn boom() -> u64 {
    panic!("boom")
}

/// Exits the process.
#[cloud_thread]
pub fn exit(code: i32) -> u64 {
    std::process::exit(code)
}

/// Sleeps, then returns how long it slept.
#[cloud_thread]
pub fn sleep(millis: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(millis));
    millis
}

/// Panics the first time it runs for `key` (counted on the server), then succeeds.
#[cloud_thread]
pub fn flaky(key: String) -> crucial::Result<u64> {
    let runs = AtomicI64::shared(key).add_and_get(1)?;
    if runs == 1 {
        panic!("first attempt fails on purpose");
    }
    Ok(runs as u64)
}

fn main() {
    crucial::lambda::run();
}
