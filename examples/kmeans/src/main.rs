//! `kmeans`: the client. Spawns the cloud threads and prints per-iteration
//! times, a breakdown and the final cost. `kmeans --help` lists the options.

use clap::Parser;
use kmeans::{report, run_crucial, Args, Centroids};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    kmeans::link();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (params, write) = args.params()?;
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
    let centroids = Centroids::shared(params.key("centroids"));
    let iterations = params.iterations;
    let progress = datasets::Progress::start("k-means", move || {
        centroids
            .history()
            .map(|h| format!("iteration {} of {iterations}", h.len()))
            .unwrap_or_default()
    });
    let result = run_crucial(&params);
    drop(progress);
    let (history, timings) = result?;
    report(&history, &timings, start.elapsed().as_secs_f64());
    Ok(())
}
