//! `santa`: runs the three variants, checks the invariants, prints each time.
//!
//! Usage: `santa [--deliveries 15] [--elves 10] [--pace-micros 2000] [--runs 3] [--variant 1|2|3]`

use santa::{check, run, Config};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    santa::link();
    let mut config = Config {
        deliveries: 15,
        elves: 10,
        pace_micros: 2000,
        seed: 7,
        run: "santa".into(),
    };
    let mut runs = 3;
    let mut variants = vec![1u8, 2, 3];
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).ok_or("every option takes a value")?;
        match pair[0].as_str() {
            "--deliveries" => config.deliveries = value.parse()?,
            "--elves" => config.elves = value.parse()?,
            "--pace-micros" => config.pace_micros = value.parse()?,
            "--runs" => runs = value.parse()?,
            "--variant" => variants = vec![value.parse()?],
            other => return Err(format!("unknown option {other}").into()),
        }
    }
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
