//! `logreg-std`: the same program on plain threads: the same `Weights` type
//! behind a `Mutex`, and a `std::sync::Barrier`.

use logreg::{parse_args, report, run_std};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (params, write) = parse_args(std::env::args().skip(1))?;
    if let Some(prefix) = write {
        params.write_files(&prefix)?;
        println!("wrote {prefix}-x.npy and {prefix}-y.npy");
    }
    println!(
        "logistic regression (std threads): {} points x {} features, {} iterations, {} threads",
        params.data.points, params.data.dims, params.iterations, params.threads
    );
    let start = Instant::now();
    let (history, times) = run_std(&params);
    report(&history, &times, start.elapsed().as_secs_f64());
    Ok(())
}
