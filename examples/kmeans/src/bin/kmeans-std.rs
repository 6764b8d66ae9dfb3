//! `kmeans-std`: the same algorithm on plain `std::thread`s: the same `Centroids`
//! type behind a `Mutex` instead of `#[shared]`, a `std::sync::Barrier`, an
//! `AtomicU32` iteration counter. Its final cost is bit-for-bit the Crucial one.

use kmeans::{parse_args, report, run_std};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (params, _) = parse_args(std::env::args().skip(1))?;
    println!(
        "k-means (std threads): {} points x {} dims, k = {}, {} iterations, {} threads",
        params.shape.points, params.shape.dims, params.k, params.iterations, params.threads
    );
    let start = Instant::now();
    let (history, timings) = run_std(&params);
    report(&history, &timings, start.elapsed().as_secs_f64());
    Ok(())
}
