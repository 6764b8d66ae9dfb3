//! `mapsync`: runs both variants and prints their times.
//!
//! Usage: `mapsync [THREADS] [POINTS_PER_THREAD] [RUNS]` (default 16 x 5M, 5 runs)

use clap::Parser;
use crucial::{AtomicI64, CountDownLatch, Future, SharedProxy};
use mapsync::{key, map_auto_reduce, map_to_future, now_micros};
use std::time::Instant;

struct Outcome {
    total: f64,
    sync: f64,
    inside: u64,
}

fn futures(run: &str, threads: u32, points: u64) -> crucial::Result<Outcome> {
    let finished = AtomicI64::shared(key(run, "finished"));
    finished.store(0)?;
    let futures: Vec<_> = (0..threads)
        .map(|i| {
            let f = Future::<u64>::shared(key(run, &format!("future-{i}")));
            f.delete().map(|_| f)
        })
        .collect::<crucial::Result<_>>()?;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|i| map_to_future::spawn(run.to_string(), i, points))
        .collect();
    let mut inside = 0;
    for f in &futures {
        inside += f.get()?; // the client-side reduce
    }
    let done = now_micros();
    let total = start.elapsed().as_secs_f64();
    for h in handles {
        h.join()??;
    }
    let sync = (done - finished.load()?) as f64 / 1e6;
    Ok(Outcome {
        total,
        sync,
        inside,
    })
}

fn auto_reduce(run: &str, threads: u32, points: u64) -> crucial::Result<Outcome> {
    let finished = AtomicI64::shared(key(run, "finished"));
    finished.store(0)?;
    let sum = AtomicI64::shared(key(run, "sum"));
    sum.store(0)?;
    let latch = CountDownLatch::shared(key(run, "done"));
    latch.delete()?;
    CountDownLatch::shared_with(key(run, "done"), CountDownLatch::new(u64::from(threads)))?;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|i| map_auto_reduce::spawn(run.to_string(), i, points))
        .collect();
    latch.wait()?;
    let inside = sum.load()? as u64;
    let done = now_micros();
    let total = start.elapsed().as_secs_f64();
    for h in handles {
        h.join()??;
    }
    let sync = (done - finished.load()?) as f64 / 1e6;
    Ok(Outcome {
        total,
        sync,
        inside,
    })
}

/// Synchronizing the end of a map phase: one future per cloud thread and a
/// client-side reduce, against an aggregate that reduces on the server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Cloud threads.
    #[arg(default_value_t = 16)]
    threads: u32,
    /// Random points per thread.
    #[arg(default_value_t = 5_000_000)]
    points: u64,
    /// Runs of each variant (the mean is printed).
    #[arg(default_value_t = 5)]
    runs: u64,
}

fn main() -> std::process::ExitCode {
    mapsync::link();
    match run_all(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_all(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (threads, points, runs) = (args.threads, args.points, args.runs.max(1));
    println!("map phase: {threads} cloud threads x {points} points, mean of {runs} runs");
    println!("| variant | total (ms) | sync (ms) | pi |");
    println!("|---|---|---|---|");
    type Variant = fn(&str, u32, u64) -> crucial::Result<Outcome>;
    let variants: [(&str, Variant); 2] = [
        ("one Future per thread + client reduce", futures),
        ("auto-reduce in a shared aggregate", auto_reduce),
    ];
    for (name, variant) in variants {
        let (mut total, mut sync, mut inside) = (0.0, 0.0, 0);
        for r in 0..runs {
            let o = variant(&format!("mapsync/{r}"), threads, points)?;
            total += o.total;
            sync += o.sync;
            inside = o.inside;
        }
        let n = runs as f64;
        println!(
            "| {name} | {:.2} | {:.3} | {:.6} |",
            total / n * 1e3,
            sync / n * 1e3,
            4.0 * inside as f64 / (u64::from(threads) * points) as f64
        );
    }
    Ok(())
}
