//! A client that blocks in `Semaphore::acquire` on the semaphore `gate` until it
//! is killed: `tests/sync.rs` kills it to check that a dead client's parked call
//! disappears from the node.
//!
//! Usage: `fixture-client HOST:PORT`; prints `acquiring` once connected.

use crucial::Semaphore;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .expect("usage: fixture-client HOST:PORT");
    let client = crucial::Config::new()
        .server(addr)
        .connect()
        .expect("client");
    let semaphore = client.open::<Semaphore>("gate");
    semaphore.available_permits().expect("connected");
    println!("acquiring");
    let _ = semaphore.acquire(1);
    println!("acquired (should not happen)");
}
