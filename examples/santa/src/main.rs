//! `santa`: runs the three variants, checks the invariants, prints each time.
//!
//! Usage: `santa [--deliveries 15] [--elves 10] [--pace-micros 2000] [--runs 3] [--variant 1|2|3]`

use clap::Parser;
use santa::{check, run, Config};
use std::process::ExitCode;
use std::time::Instant;

/// The Santa Claus problem in three variants: plain threads with a std monitor,
/// threads with shared objects, cloud threads with shared objects.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Toy deliveries (epochs of the problem).
    #[arg(long, default_value_t = 15)]
    deliveries: u32,
    /// Elves.
    #[arg(long, default_value_t = 10)]
    elves: u32,
    /// Mean pause of an elf or reindeer between visits, in microseconds.
    #[arg(long, default_value_t = 2000)]
    pace_micros: u64,
    /// Runs of each variant (the mean is printed).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Run only this variant.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    variant: Option<u8>,
}

fn main() -> ExitCode {
    santa::link();
    match run_all(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_all(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config {
        deliveries: args.deliveries,
        elves: args.elves,
        pace_micros: args.pace_micros,
        seed: 7,
        run: "santa".into(),
    };
    let runs = args.runs.max(1);
    let variants = args.variant.map_or(vec![1u8, 2, 3], |v| vec![v]);
    println!(
        "Santa Claus: {} elves, 9 reindeer, {} deliveries, pace {} us, mean of {runs} runs",
        config.elves, config.deliveries, config.pace_micros
    );
    let names = [
        "",
        "1 plain threads, std monitor",
        "2 threads, shared objects",
        "3 cloud threads, shared objects",
    ];
    let mut baseline = None;
    println!("| variant | mean time (s) | overhead vs 1 | jobs | elf groups helped |");
    println!("|---|---|---|---|---|");
    for variant in variants {
        let mut total = 0.0;
        let mut last = Vec::new();
        for r in 0..runs {
            config.run = format!("santa/{variant}/{r}");
            let start = Instant::now();
            let jobs = run(variant, &config)?;
            total += start.elapsed().as_secs_f64();
            check(&jobs, &config).map_err(|e| format!("variant {variant}: {e}"))?;
            last = jobs;
        }
        let mean = total / f64::from(runs);
        let base = *baseline.get_or_insert(mean);
        let helped = last
            .iter()
            .filter(|j| matches!(j, santa::Job::Help { .. }))
            .count();
        println!(
            "| {} | {mean:.3} | {:+.1} % | {} | {helped} |",
            names[variant as usize],
            (mean / base - 1.0) * 100.0,
            last.len()
        );
    }
    println!("invariants hold: every delivery with all 9 reindeer, groups of exactly 3 elves, reindeer first");
    Ok(())
}
