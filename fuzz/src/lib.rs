//! Fuzzing the wire on stable Rust (no libFuzzer, no nightly): three
//! targets, a structure-aware mutator that starts from valid requests, and
//! a driver ([`run`]) that counts panics and the largest allocation.
//!
//! - [`targets::frame`]: arbitrary bytes, in arbitrary chunks, through the
//!   frame decoder (a header's length field may claim 4 GiB);
//! - [`targets::request`]: a payload through the request decoder (nested
//!   lengths may claim huge sizes), and a decoded request round-trips;
//! - [`targets::Apply`]: requests, framed, sent to a real node in this
//!   process over a real connection after a `Hello`; the node must answer a
//!   `Ping` after them, or close the connection, and keep serving others.
//!
//! The corpus in `fuzz/corpus/` (seeds and inputs saved from runs) is
//! replayed by `cargo test -p crucial-fuzz`, with a short run.

pub mod alloc;
pub mod mutate;
pub mod seeds;
pub mod targets;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Panics anywhere in the process (the target's thread, or a node's task
/// that the node itself caught): each one fails the input that was running.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs `check(input)`; whether it panicked, or anything panicked meanwhile.
fn panicked(check: &mut impl FnMut(&[u8]), input: &[u8]) -> bool {
    let before = PANICS.load(Ordering::SeqCst);
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| check(input))).is_err();
    caught || PANICS.load(Ordering::SeqCst) != before
}

/// A panic hook, as `std::panic::take_hook` gives it.
type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send>;

/// Counts panics instead of printing them, until the guard drops.
struct Counting(Option<Hook>);

impl Counting {
    fn install() -> Counting {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }));
        Counting(Some(previous))
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            std::panic::set_hook(previous);
        }
    }
}

/// What one target's run found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// Inputs run.
    pub inputs: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Inputs that panicked (saved by the driver).
    pub panics: Vec<Vec<u8>>,
    /// The largest single allocation while the target ran, in bytes.
    pub largest_allocation: usize,
}

/// Runs `target` on `inputs` inputs made by the mutator from `seeds`,
/// seeded with `seed`; each input's panic is caught and kept.
pub fn run(
    target: &'static str,
    seeds: &[Vec<u8>],
    inputs: u64,
    seed: u64,
    mut check: impl FnMut(&[u8]),
) -> Report {
    let mut mutator = mutate::Mutator::new(seed);
    let mut report = Report {
        target,
        ..Report::default()
    };
    let _counting = Counting::install();
    alloc::reset();
    let started = Instant::now();
    for _ in 0..inputs {
        let input = mutator.input(seeds);
        if panicked(&mut check, &input) {
            report.panics.push(input);
        }
        report.inputs += 1;
    }
    report.elapsed = started.elapsed();
    report.largest_allocation = alloc::largest();
    report
}

/// Replays saved inputs through `check`; the ones that panic.
pub fn replay(inputs: &[Vec<u8>], mut check: impl FnMut(&[u8])) -> Vec<Vec<u8>> {
    let _counting = Counting::install();
    inputs
        .iter()
        .filter(|input| panicked(&mut check, input))
        .cloned()
        .collect()
}

/// The files of a corpus directory, in name order.
pub fn corpus(dir: &std::path::Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths.iter().map(std::fs::read).collect()
}
