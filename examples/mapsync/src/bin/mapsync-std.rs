//! `mapsync-std`: the map phase on plain threads, synchronized by `join` (the
//! client reduces) and by a shared `AtomicU64` (auto-reduce).

use clap::Parser;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The map phase on plain threads: join + client reduce, and a shared atomic.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Threads.
    #[arg(default_value_t = 16)]
    threads: u64,
    /// Random points per thread.
    #[arg(default_value_t = 5_000_000)]
    points: u64,
}

fn main() {
    let Args { threads, points } = Args::parse();
    println!("map phase: {threads} threads x {points} points");

    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|i| std::thread::spawn(move || pi::count_inside(points, i)))
        .collect();
    let inside: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!(
        "join + client reduce: {:.2} ms, pi ~= {:.6}",
        start.elapsed().as_secs_f64() * 1e3,
        4.0 * inside as f64 / (threads * points) as f64
    );

    let start = Instant::now();
    let sum = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let sum = Arc::clone(&sum);
            std::thread::spawn(move || {
                sum.fetch_add(pi::count_inside(points, i), Ordering::SeqCst);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    println!(
        "shared atomic (auto-reduce): {:.2} ms, pi ~= {:.6}",
        start.elapsed().as_secs_f64() * 1e3,
        4.0 * sum.load(Ordering::SeqCst) as f64 / (threads * points) as f64
    );
}
