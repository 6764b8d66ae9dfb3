//! `logreg-std`: the same program on plain threads: the same `Weights` type
//! behind a `Mutex`, and a `std::sync::Barrier`. Takes the same options as `logreg`.

use clap::Parser;
use logreg::{report, run_std, Args};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let (params, write) = match Args::parse().params() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(prefix) = write {
        if let Err(e) = params.write_files(&prefix) {
            eprintln!("error: {prefix}: {e}");
            return ExitCode::FAILURE;
        }
        println!("wrote {prefix}-x.npy and {prefix}-y.npy");
    }
    println!(
        "logistic regression (std threads): {} points x {} features, {} iterations, {} threads",
        params.data.points, params.data.dims, params.iterations, params.threads
    );
    let start = Instant::now();
    let (history, times) = run_std(&params);
    report(&history, &times, start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
