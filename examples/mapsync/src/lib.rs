//! Synchronizing the end of a map phase (section 6.3.1 of the Crucial paper).
//!
//! Sixteen cloud threads each run a Monte Carlo simulation (the π example's
//! work). The client needs the sum of their counts, and two ways of getting it
//! are compared:
//!
//! * **futures**: each thread sets its own [`crucial::Future`]; the client waits
//!   on each future and reduces the values itself;
//! * **auto-reduce**: each thread adds its count into one shared counter on the
//!   server and counts down a [`crucial::CountDownLatch`]; the client waits on the
//!   latch and reads one number — the reduce phase is gone.
//!
//! Threads also record when they finished (`fetch_max` of a timestamp), so the
//! client can tell the synchronization time: from the last thread's end to the
//! result in the client's hands.

use crucial::{cloud_thread, AtomicI64, CountDownLatch, Future};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (threads and client share the clock here).
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Key of a run's shared object.
pub fn key(run: &str, name: &str) -> String {
    format!("{run}/{name}")
}

/// Map task of the futures variant: sets `future-{index}` to its count.
#[cloud_thread]
pub fn map_to_future(run: String, index: u32, points: u64) -> crucial::Result<()> {
    let inside = pi::count_inside(points, u64::from(index));
    AtomicI64::shared(key(&run, "finished")).fetch_max(now_micros())?;
    Future::<u64>::shared(key(&run, &format!("future-{index}"))).set(&inside)?;
    Ok(())
}

/// Map task of the auto-reduce variant: adds its count on the server.
#[cloud_thread]
pub fn map_auto_reduce(run: String, index: u32, points: u64) -> crucial::Result<()> {
    let inside = pi::count_inside(points, u64::from(index));
    AtomicI64::shared(key(&run, "sum")).fetch_add(inside as i64)?;
    AtomicI64::shared(key(&run, "finished")).fetch_max(now_micros())?;
    CountDownLatch::shared(key(&run, "done")).count_down()?;
    Ok(())
}

/// Referenced from each binary's `main` so the linker keeps the registrations.
#[inline(never)]
pub fn link() {
    pi::link();
}
