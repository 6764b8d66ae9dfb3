//! Logs that could repeat thousands of times a second (every write refused
//! while a disk is full) pass at most once a second, with the count of
//! those held back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// One log line's gate: `static GATE: Throttle = Throttle::new();`.
pub struct Throttle {
    /// Milliseconds since the process's first throttled log, plus one, at
    /// the last line let through (0: never).
    last: AtomicU64,
    held: AtomicU64,
}

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl Throttle {
    /// A gate that has let nothing through yet.
    pub const fn new() -> Throttle {
        Throttle {
            last: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(n)`: log now, `n` lines were held back since the last one;
    /// `None`: hold this one back.
    pub fn pass(&self) -> Option<u64> {
        let now = now_ms();
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last + 1000 {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| self.held.swap(0, Ordering::Relaxed))
            .or_else(|| {
                self.held.fetch_add(1, Ordering::Relaxed);
                None
            })
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn a_burst_passes_once_and_counts_the_rest() {
        let gate = Throttle::new();
        assert_eq!(gate.pass(), Some(0));
        assert_eq!((0..500).filter(|_| gate.pass().is_some()).count(), 0);
        assert_eq!(gate.held.load(std::sync::atomic::Ordering::Relaxed), 500);
    }
}
