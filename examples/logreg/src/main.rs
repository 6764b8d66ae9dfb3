//! `logreg`: the client. Prints loss and accuracy per iteration and the time.

use logreg::{parse_args, prepare, report, worker, Weights};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    logreg::link();
    let params = parse_args(std::env::args().skip(1))?;
    println!(
        "logistic regression: {} points x {} features, {} iterations, {} cloud threads",
        params.data.points, params.data.dims, params.iterations, params.threads
    );
    prepare(&params)?;
    let start = Instant::now();
    let handles: Vec<_> = (0..params.threads)
        .map(|t| worker::spawn(params.clone(), t))
        .collect();
    let mut times = Vec::new();
    for h in handles {
        times.push(h.join()??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    report(
        &Weights::shared(params.key("weights")).history()?,
        &times,
        elapsed,
    );
    Ok(())
}
