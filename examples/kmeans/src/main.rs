//! `kmeans`: the client. Spawns the cloud threads and prints per-iteration
//! times, a breakdown and the final cost.

use kmeans::{parse_args, report, run_crucial};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    kmeans::link();
    let (params, write) = parse_args(std::env::args().skip(1))?;
    if let Some(path) = write {
        let all = params.shape.generate(0..params.shape.points);
        kmeans::data::write_npy(path.as_ref(), params.shape.points, params.shape.dims, &all)?;
        println!(
            "wrote {} points x {} dims to {path}",
            params.shape.points, params.shape.dims
        );
    }
    println!(
        "k-means: {} points x {} dims, k = {}, {} iterations, {} cloud threads",
        params.shape.points, params.shape.dims, params.k, params.iterations, params.threads
    );
    let start = Instant::now();
    let (history, timings) = run_crucial(&params)?;
    report(&history, &timings, start.elapsed().as_secs_f64());
    Ok(())
}
