//! `mapsync`: runs both variants and prints their times.
//!
//! Usage: `mapsync [THREADS] [POINTS_PER_THREAD] [RUNS]` (default 16 x 5M, 5 runs)

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    mapsync::link();
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let threads = args.next().transpose()?.unwrap_or(16) as u32;
    let points = args.next().transpose()?.unwrap_or(5_000_000);
    let runs = args.next().transpose()?.unwrap_or(5).max(1);
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
