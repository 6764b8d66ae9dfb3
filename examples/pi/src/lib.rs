//! Monte Carlo estimation of π: the Crucial paper's Listing 1.
//!
//! Cloud threads draw random points in the unit square, count those inside the
//! quarter circle and add their count to one shared counter; the client reads
//! the counter after joining them. Everything annotated lives here, in the
//! library, so the client (`pi`), the server (`pi-server`) and the function
//! (`pi-function`) binaries all link the same registry.

use crucial::{cloud_thread, shared, AtomicI64};
use serde::{Deserialize, Serialize};

/// Key of the shared counter of points inside the circle.
pub const COUNTER: &str = "pi/inside";

/// Key of the shared [`Tally`].
pub const TALLY: &str = "pi/tally";

/// A user-defined shared object: per-thread results aggregated on the server,
/// where the estimate is also computed (method shipping: only two numbers travel).
#[shared]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    inside: u64,
    total: u64,
    threads: u32,
}

#[shared]
impl Tally {
    /// Adds one thread's result.
    pub fn record(&mut self, inside: u64, total: u64) {
        self.inside += inside;
        self.total += total;
        self.threads += 1;
    }

    /// The estimate of π over everything recorded (NaN when empty).
    pub fn estimate(&self) -> f64 {
        4.0 * self.inside as f64 / self.total as f64
    }

    /// How many threads reported.
    pub fn threads(&self) -> u32 {
        self.threads
    }
}

/// A small, fast, seedable generator (xorshift64*), so each thread's sample is
/// reproducible and the example needs no dependency.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        // SplitMix64 step so that nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// A uniform `f64` in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// How many of `points` random points fall inside the unit circle.
pub fn count_inside(points: u64, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let mut count = 0;
    for _ in 0..points {
        let (x, y) = (rng.next_f64(), rng.next_f64());
        if x * x + y * y <= 1.0 {
            count += 1;
        }
    }
    count
}

/// One cloud thread of the simulation: counts its points and adds them to the
/// shared counter (`counter.addAndGet(count)` in the paper).
#[cloud_thread]
pub fn estimate(points: u64, seed: u64) -> crucial::Result<u64> {
    let count = count_inside(points, seed);
    AtomicI64::shared(COUNTER).fetch_add(count as i64)?;
    Tally::shared(TALLY).record(count, points)?;
    Ok(count)
}

/// The command line of `pi` and `pi-std`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    version,
    about = "Estimates π by Monte Carlo in threads that add their counts to one shared counter \
             (Listing 1 of the Crucial paper)"
)]
pub struct Args {
    /// Threads.
    #[arg(default_value_t = 4)]
    pub threads: u64,
    /// Random points per thread.
    #[arg(default_value_t = 25_000_000)]
    pub points: u64,
}

/// Referenced from each binary's `main` so the linker keeps this crate's
/// registrations (see the guide, "Binaries and the linker").
#[inline(never)]
pub fn link() {
    crucial_server::link();
}
