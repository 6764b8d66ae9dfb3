//! `logreg`: the client. Prints loss and accuracy per iteration and the time.
//! `logreg --help` lists the options.

use clap::Parser;
use logreg::{report, run_crucial, Args, Weights};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    logreg::link();
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
    if let Some(prefix) = write {
        params.write_files(&prefix)?;
        println!("wrote {prefix}-x.npy and {prefix}-y.npy");
    }
    println!(
        "logistic regression: {} points x {} features, {} iterations, {} cloud threads",
        params.data.points, params.data.dims, params.iterations, params.threads
    );
    let start = Instant::now();
    let weights = Weights::shared(params.key("weights"));
    let iterations = params.iterations;
    let progress = datasets::Progress::start("logistic regression", move || {
        weights
            .history()
            .map(|h| format!("iteration {} of {iterations}", h.len()))
            .unwrap_or_default()
    });
    let result = run_crucial(&params);
    drop(progress);
    let (history, times) = result?;
    report(&history, &times, start.elapsed().as_secs_f64());
    Ok(())
}
