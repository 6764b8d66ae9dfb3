//! `kmeans-std`: the same algorithm on plain `std::thread`s: the same `Centroids`
//! type behind a `Mutex` instead of `#[shared]`, a `std::sync::Barrier`, an
//! `AtomicU32` iteration counter. Its final cost is bit-for-bit the Crucial one.

use kmeans::{model, parse_args, Centroids, Timing};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (params, _) = parse_args(std::env::args().skip(1))?;
    println!(
        "k-means (std threads): {} points x {} dims, k = {}, {} iterations, {} threads",
        params.shape.points, params.shape.dims, params.k, params.iterations, params.threads
    );
    let centroids = Arc::new(Mutex::new(Centroids::new(
        params.initial_centroids(),
        params.k,
        params.shape.dims,
        params.threads,
    )));
    let barrier = Arc::new(Barrier::new(params.threads));
    let iterations = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..params.threads)
        .map(|thread| {
            let (params, centroids, barrier, iterations) = (
                params.clone(),
                Arc::clone(&centroids),
                Arc::clone(&barrier),
                Arc::clone(&iterations),
            );
            std::thread::spawn(move || {
                let points = params.fragment(thread).expect("points");
                let (k, dims) = (params.k, params.shape.dims);
                let mut timings = Vec::new();
                let mut iteration = iterations.load(Ordering::SeqCst);
                while iteration < params.iterations {
                    let start = Instant::now();
                    let current = centroids.lock().unwrap().get(iteration).expect("centroids");
                    let fetched = Instant::now();
                    let partial = model::assign(&points, &current, k, dims);
                    let computed = Instant::now();
                    centroids.lock().unwrap().update(iteration, thread, partial);
                    let updated = Instant::now();
                    barrier.wait();
                    let passed = Instant::now();
                    let _ = iterations.compare_exchange(
                        iteration,
                        iteration + 1,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    iteration += 1;
                    timings.push(Timing {
                        compute: (computed - fetched).as_secs_f64(),
                        update: (fetched - start + (updated - computed)).as_secs_f64(),
                        barrier: (passed - updated).as_secs_f64(),
                    });
                }
                timings
            })
        })
        .collect();
    let timings: Vec<Vec<Timing>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let elapsed = start.elapsed().as_secs_f64();
    let history = centroids.lock().unwrap().history();
    println!("| iteration | time (s) | compute | update | barrier | cost | centroid shift |");
    println!("|---|---|---|---|---|---|---|");
    for (i, (cost, shift)) in history.iter().enumerate() {
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
