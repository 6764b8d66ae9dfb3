//! `kmeans`: the client. Spawns the cloud threads and prints per-iteration
//! times, a breakdown and the final cost.

use kmeans::{parse_args, prepare, worker, Centroids};
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
    prepare(&params)?;
    let start = Instant::now();
    let handles: Vec<_> = (0..params.threads)
        .map(|t| worker::spawn(params.clone(), t))
        .collect();
    let mut timings = Vec::new();
    for h in handles {
        timings.push(h.join()??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let history = Centroids::shared(params.key("centroids")).history()?;
    println!("| iteration | time (s) | compute | update | barrier | cost | centroid shift |");
    println!("|---|---|---|---|---|---|---|");
    for (i, (cost, shift)) in history.iter().enumerate() {
        // The slowest thread's view of the iteration.
        let t = timings
            .iter()
            .filter_map(|ts| ts.get(i))
            .max_by(|a, b| (a.compute + a.update).total_cmp(&(b.compute + b.update)))
            .copied()
            .unwrap_or_default();
        println!(
            "| {i} | {:.3} | {:.3} | {:.3} | {:.3} | {cost:.6e} | {shift:.4} |",
            t.compute + t.update + t.barrier,
            t.compute,
            t.update,
            t.barrier
        );
    }
    let cost = history.last().map(|h| h.0).unwrap_or(f64::NAN);
    println!("final cost: {cost:.10e}");
    println!("total: {elapsed:.3} s");
    Ok(())
}
