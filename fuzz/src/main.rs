//! `crucial-fuzz`: runs the wire's fuzz targets on stable Rust and prints a
//! table; inputs that panic are written to `fuzz/crashes/`.
//!
//! ```text
//! cargo run --release -p crucial-fuzz -- --inputs 10000000 --seed 1
//! cargo run --release -p crucial-fuzz -- --target apply --inputs 200000
//! cargo run --release -p crucial-fuzz -- --save-corpus 40   # refresh fuzz/corpus/
//! ```

use crucial_fuzz::{alloc, run, seeds, targets, Report};
use std::path::PathBuf;

#[global_allocator]
static WATCHING: alloc::Watching = alloc::Watching;

fn usage() -> ! {
    eprintln!(
        "usage: crucial-fuzz [--target frame|request|apply|all] [--inputs N] [--seed S] \
         [--save-corpus N]"
    );
    std::process::exit(2)
}

fn main() {
    let mut target = "all".to_string();
    let mut inputs: u64 = 100_000;
    let mut seed: u64 = 1;
    let mut save = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--target" => target = value(),
            "--inputs" => inputs = value().parse().unwrap_or_else(|_| usage()),
            "--seed" => seed = value().parse().unwrap_or_else(|_| usage()),
            "--save-corpus" => save = Some(value().parse::<u64>().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(n) = save {
        save_corpus(&dir.join("corpus"), n, seed);
        return;
    }
    let (frames, requests) = (seeds::frames(), seeds::requests());
    let mut reports = Vec::new();
    if matches!(target.as_str(), "frame" | "all") {
        reports.push(run("frame", &frames, inputs, seed, targets::frame));
    }
    if matches!(target.as_str(), "request" | "all") {
        reports.push(run("request", &requests, inputs, seed, targets::request));
    }
    if matches!(target.as_str(), "apply" | "all") {
        let mut node = targets::Apply::start();
        // The apply target opens a connection per input: a tenth as many.
        let n = if target == "all" { inputs / 10 } else { inputs };
        reports.push(run("apply", &requests, n, seed, |i| node.apply(i)));
    }
    print(&reports);
    let mut failed = false;
    for report in &reports {
        for input in &report.panics {
            let path =
                dir.join("crashes")
                    .join(format!("{}-{:016x}.bin", report.target, fnv(input)));
            let _ = std::fs::create_dir_all(path.parent().expect("a directory"));
            let _ = std::fs::write(&path, input);
            eprintln!("panicked: {}", path.display());
            failed = true;
        }
        let bound = 4 * targets::MAX_FRAME;
        if report.target != "apply" && report.largest_allocation > bound {
            eprintln!(
                "{}: an allocation of {} bytes, past 4 x the frame limit",
                report.target, report.largest_allocation
            );
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}

fn print(reports: &[Report]) {
    println!(
        "{:<8} {:>12} {:>9} {:>12} {:>7} {:>18}",
        "target", "inputs", "seconds", "inputs/s", "panics", "largest alloc (B)"
    );
    for r in reports {
        let secs = r.elapsed.as_secs_f64();
        println!(
            "{:<8} {:>12} {:>9.1} {:>12.0} {:>7} {:>18}",
            r.target,
            r.inputs,
            secs,
            r.inputs as f64 / secs.max(1e-9),
            r.panics.len(),
            r.largest_allocation
        );
    }
    println!("frame limit: {} bytes", targets::MAX_FRAME);
}

/// Writes the seeds and `n` mutated inputs per target to `dir/<target>/`.
fn save_corpus(dir: &std::path::Path, n: u64, seed: u64) {
    for (target, seeds) in [("frame", seeds::frames()), ("request", seeds::requests())] {
        let out = dir.join(target);
        std::fs::create_dir_all(&out).expect("corpus directory");
        let mut mutator = crucial_fuzz::mutate::Mutator::new(seed);
        let inputs = seeds
            .iter()
            .cloned()
            .chain((0..n).map(|_| mutator.input(&seeds)));
        for input in inputs {
            let path = out.join(format!("{:016x}.bin", fnv(&input)));
            std::fs::write(path, input).expect("write a corpus file");
        }
    }
}

/// FNV-1a, for file names.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
