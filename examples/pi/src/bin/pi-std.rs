//! `pi-std`: the same program on plain `std::thread`s and a `std` atomic, kept
//! beside the Crucial version to show how little changes (see the README).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let pi::Args { threads, points } = clap::Parser::parse();

    let counter = Arc::new(AtomicI64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                let count = pi::count_inside(points, i);
                counter.fetch_add(count as i64, Ordering::SeqCst);
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("thread panicked");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = threads * points;
    let estimate = 4.0 * counter.load(Ordering::SeqCst) as f64 / total as f64;

    println!(
        "pi ~= {estimate:.6} (error {:.6})",
        (estimate - std::f64::consts::PI).abs()
    );
    println!(
        "{total} points in {threads} threads, {elapsed:.3} s, {:.1} M points/s",
        total as f64 / elapsed / 1e6
    );
}
