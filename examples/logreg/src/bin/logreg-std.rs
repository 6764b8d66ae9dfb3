//! `logreg-std`: the same program on plain threads: the same `Weights` type
//! behind a `Mutex`, and a `std::sync::Barrier`.

use logreg::{parse_args, partial, report, Weights};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let params = parse_args(std::env::args().skip(1))?;
    println!(
        "logistic regression (std threads): {} points x {} features, {} iterations, {} threads",
        params.data.points, params.data.dims, params.iterations, params.threads
    );
    let weights = Arc::new(Mutex::new(Weights::new(&params)));
    let barrier = Arc::new(Barrier::new(params.threads));
    let start = Instant::now();
    let handles: Vec<_> = (0..params.threads)
        .map(|thread| {
            let (params, weights, barrier) =
                (params.clone(), Arc::clone(&weights), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let (x, y) = params
                    .data
                    .generate(params.data.fragment(thread, params.threads));
                let mut times = Vec::new();
                for iteration in 0..params.iterations {
                    let start = Instant::now();
                    let w = weights.lock().unwrap().get(iteration).expect("weights");
                    let p = partial(&x, &y, &w);
                    weights.lock().unwrap().update(iteration, thread, p);
                    barrier.wait();
                    times.push(start.elapsed().as_secs_f64());
                }
                times
            })
        })
        .collect();
    let times: Vec<Vec<f64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let elapsed = start.elapsed().as_secs_f64();
    report(&weights.lock().unwrap().history(), &times, elapsed);
    Ok(())
}
