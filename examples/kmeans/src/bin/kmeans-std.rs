//! `kmeans-std`: the same algorithm on plain `std::thread`s: the same `Centroids`
//! type behind a `Mutex` instead of `#[shared]`, a `std::sync::Barrier`, an
//! `AtomicU32` iteration counter. Its final cost is bit-for-bit the Crucial one.
//! Takes the same options as `kmeans`.

use clap::Parser;
use kmeans::{report, run_std, Args};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let params = match Args::parse().params() {
        Ok((params, _)) => params,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "k-means (std threads): {} points x {} dims, k = {}, {} iterations, {} threads",
        params.shape.points, params.shape.dims, params.k, params.iterations, params.threads
    );
    let start = Instant::now();
    let (history, timings) = run_std(&params);
    report(&history, &timings, start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
