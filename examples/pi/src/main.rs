//! `pi`: the client. Runs on the embedded default with no setup, or against a
//! server with `CRUCIAL_SERVER=host:port`.
//!
//! Usage: `pi [THREADS] [POINTS_PER_THREAD]` (default 4 threads x 25M points); `pi --help`.

use clap::Parser;
use crucial::{AtomicI64, SharedProxy};
use pi::{Args, Tally};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    pi::link();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(Args { threads, points }: Args) -> Result<(), Box<dyn std::error::Error>> {
    let counter = AtomicI64::shared(pi::COUNTER);
    counter.store(0)?;
    let tally = Tally::shared(pi::TALLY);
    tally.delete()?; // start from an empty tally when the server is reused
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|i| pi::estimate::spawn(points, i))
        .collect();
    for handle in handles {
        handle.join()??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = threads * points;
    let estimate = 4.0 * counter.load()? as f64 / total as f64;

    println!(
        "pi ~= {estimate:.6} (error {:.6})",
        (estimate - std::f64::consts::PI).abs()
    );
    println!(
        "server-side tally: {:.6} from {} threads",
        tally.estimate()?,
        tally.threads()?
    );
    println!(
        "{total} points in {threads} cloud threads, {elapsed:.3} s, {:.1} M points/s",
        total as f64 / elapsed / 1e6
    );
    let context = crucial::Context::global()?;
    println!(
        "executor: {}, server: {}",
        context.executor().name(),
        std::env::var(crucial::ENV_SERVER)
            .map(|s| s.to_string())
            .unwrap_or_else(|_| format!("embedded at {}", context.client().servers().join(",")))
    );
    Ok(())
}
