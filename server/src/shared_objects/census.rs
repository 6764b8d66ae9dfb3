//! What each application's shared objects hold of a node, for the
//! per-application quotas (`crate::quota`): how many objects, and how many
//! bytes of state.
//!
//! An object in an application's namespace enters its application's
//! [`Census`] when the table takes it in and leaves it when the table lets it
//! go (deleted, handed off, replaced); each object carries its part
//! ([`Counted`]) in its state, behind its own lock, so a write changes its
//! application's bytes with one atomic add and no global lock.
//!
//! An object's size is the size of its encoded state, measured (encoded)
//! after each write while it is small (up to [`SMALL`] bytes). Encoding a
//! large state after every write would make each write cost as much as the
//! whole object, so a larger one is measured again only every
//! [`REMEASURE_CALLS`] writes, or sooner once the arguments of the writes
//! since add up to its last measure; in between its size is the last measure
//! plus those arguments (the estimate the call log makes of what is on disk),
//! and measuring costs, in the long run, about as much as the writes' own
//! arguments. The estimate is high only for a large object rewritten since
//! its last measure by writes that replace rather than add; such an object
//! is measured at once when its estimate would put its application at its
//! quota, and before a write to it is refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Writes after which a large object's size is measured again at the latest.
pub const REMEASURE_CALLS: u32 = 64;

/// Objects up to this size are measured after every write (encoding 64 KiB
/// takes a few microseconds).
pub const SMALL: u64 = 64 * 1024;

/// One application's shared objects on the node.
#[derive(Debug, Default)]
pub struct Census {
    objects: AtomicU64,
    bytes: AtomicU64,
}

impl Census {
    /// Its objects held here.
    pub fn objects(&self) -> u64 {
        self.objects.load(Ordering::Relaxed)
    }

    /// The size of their states (see the module's doc).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// One object's part in its application's census.
#[derive(Debug, Default)]
pub struct Counted {
    /// The census it is counted in (none: not in a namespace, or not in the
    /// table any more).
    census: Option<Arc<Census>>,
    /// The bytes it adds to its census's.
    charged: u64,
    /// Its size when last measured...
    measured: u64,
    /// ... the arguments of the writes since ...
    unmeasured: u64,
    /// ... and how many writes there were.
    writes: u32,
}

impl Counted {
    /// Counts the object in `census`.
    pub fn enter(&mut self, census: Arc<Census>) {
        self.leave();
        census.objects.fetch_add(1, Ordering::Relaxed);
        census.bytes.fetch_add(self.charged, Ordering::Relaxed);
        self.census = Some(census);
    }

    /// Stops counting it (it left the table).
    pub fn leave(&mut self) {
        if let Some(census) = self.census.take() {
            census.objects.fetch_sub(1, Ordering::Relaxed);
            census.bytes.fetch_sub(self.charged, Ordering::Relaxed);
        }
    }

    /// Its application's census, while it is counted in one.
    pub fn census(&self) -> Option<&Census> {
        self.census.as_deref()
    }

    /// Its state is `bytes` long (measured now).
    pub fn sized(&mut self, bytes: usize) {
        self.measured = bytes as u64;
        self.unmeasured = 0;
        self.writes = 0;
        self.charge(self.measured);
    }

    /// After a write with `args` bytes of arguments, under a quota of
    /// `limit` bytes: the new size, measured by `measure` when it is due (see
    /// the module's doc).
    pub fn written(&mut self, args: usize, limit: u64, measure: impl FnOnce() -> Option<usize>) {
        let Some(census) = &self.census else { return };
        self.unmeasured += args as u64;
        self.writes += 1;
        let estimate = self.measured + self.unmeasured;
        let due = self.measured <= SMALL
            || self.unmeasured >= self.measured
            || self.writes >= REMEASURE_CALLS
            || census.bytes().saturating_sub(self.charged) + estimate >= limit;
        match if due { measure() } else { None } {
            Some(bytes) => self.sized(bytes),
            None => self.charge(estimate),
        }
    }

    /// Measures the object again if its size is an estimate (before a
    /// refusal rests on it).
    pub fn remeasure(&mut self, measure: impl FnOnce() -> Option<usize>) {
        if self.census.is_some() && self.unmeasured > 0 {
            if let Some(bytes) = measure() {
                self.sized(bytes);
            }
        }
    }

    fn charge(&mut self, bytes: u64) {
        if let Some(census) = &self.census {
            if bytes >= self.charged {
                census
                    .bytes
                    .fetch_add(bytes - self.charged, Ordering::Relaxed);
            } else {
                census
                    .bytes
                    .fetch_sub(self.charged - bytes, Ordering::Relaxed);
            }
        }
        self.charged = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_adds_its_size_while_counted_and_is_measured_when_due() {
        let census = Arc::new(Census::default());
        let mut a = Counted::default();
        a.sized(100_000);
        a.enter(Arc::clone(&census));
        assert_eq!((census.objects(), census.bytes()), (1, 100_000));
        // A large object's small writes are estimated until they add up to
        // its last measure.
        let mut measures = 0;
        for _ in 0..9 {
            a.written(10_000, u64::MAX, || {
                measures += 1;
                Some(1)
            });
        }
        assert_eq!((measures, census.bytes()), (0, 190_000));
        a.written(10_000, u64::MAX, || {
            measures += 1;
            Some(150_000)
        });
        assert_eq!((measures, census.bytes()), (1, 150_000));
        // Or after REMEASURE_CALLS writes, whatever their arguments.
        for _ in 0..REMEASURE_CALLS {
            a.written(0, u64::MAX, || {
                measures += 1;
                Some(90_000)
            });
        }
        assert_eq!((measures, census.bytes()), (2, 90_000));
        // Or when the estimate would reach the quota.
        a.written(20_000, 110_000, || {
            measures += 1;
            Some(91_000)
        });
        assert_eq!((measures, census.bytes()), (3, 91_000));
        // Before a refusal, an estimate is measured.
        a.written(1000, u64::MAX, || unreachable!("not due"));
        assert_eq!(census.bytes(), 92_000);
        a.remeasure(|| Some(90_500));
        assert_eq!(census.bytes(), 90_500);
        a.remeasure(|| unreachable!("measured already"));
        // A small object is measured after every write.
        let mut b = Counted::default();
        b.enter(Arc::clone(&census));
        b.written(5, u64::MAX, || Some(7));
        b.written(5, u64::MAX, || Some(3));
        assert_eq!((census.objects(), census.bytes()), (2, 90_503));
        // One leaves with its bytes; writes to it change nothing then.
        a.leave();
        assert_eq!((census.objects(), census.bytes()), (1, 3));
        a.written(10_000, u64::MAX, || Some(1000));
        assert_eq!(census.bytes(), 3);
    }
}
