//! `logreg`: the client. Prints loss and accuracy per iteration and the time.

use logreg::{parse_args, report, run_crucial};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    logreg::link();
    let (params, write) = parse_args(std::env::args().skip(1))?;
    if let Some(prefix) = write {
        params.write_files(&prefix)?;
        println!("wrote {prefix}-x.npy and {prefix}-y.npy");
    }
    println!(
        "logistic regression: {} points x {} features, {} iterations, {} cloud threads",
        params.data.points, params.data.dims, params.iterations, params.threads
    );
    let start = Instant::now();
    let (history, times) = run_crucial(&params)?;
    report(&history, &times, start.elapsed().as_secs_f64());
    Ok(())
}
