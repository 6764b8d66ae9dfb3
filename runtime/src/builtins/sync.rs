//! Synchronization objects on blocking methods, named and behaving like their
//! `std::sync` / `java.util.concurrent` counterparts. No waiter holds a server
//! thread and no client polls: a call that cannot proceed is parked on the node
//! and answered when a later call on the object lets it complete.

use crate as crucial;
use crate::codec;
use crate::proxy::{ProxyCore, SharedProxy};
use crate::registry::SharedType;
use crate::Result;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::future::Future as StdFuture;
use std::marker::PhantomData;
use std::task::Poll;
use std::time::Duration;

/// A fresh random ticket: names one blocking call across the node's re-runs of it.
pub fn ticket() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x9e37_79b9_7f4a_7c15);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// A reusable (cyclic) barrier for `parties` threads, like `std::sync::Barrier`.
///
/// ```
/// # crucial_server::link();
/// use crucial::Barrier;
/// let barrier = Barrier::shared_with("phase", Barrier::new(1))?;
/// assert!(barrier.wait()?.is_leader()); // a barrier of one never waits
/// # Ok::<(), crucial::Error>(())
/// ```
#[crucial::shared(name = "crucial::Barrier")]
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Barrier {
    parties: u32,
    generation: u64,
    arrived: HashSet<u64>,
    /// Tickets released but not yet answered, with their leader flag and generation.
    released: HashMap<u64, (bool, u64)>,
}

impl Barrier {
    /// An initial state for `shared_with`: a barrier of `parties` threads.
    pub fn new(parties: u32) -> Self {
        Barrier {
            parties,
            ..Barrier::default()
        }
    }
}

#[crucial::shared]
impl Barrier {
    /// Arrives with `ticket` (one per wait) and waits until `parties` tickets have
    /// arrived. The last to arrive is the leader. Prefer [`BarrierProxy::wait`].
    pub fn arrive(&mut self, ticket: u64) -> Poll<bool> {
        if let Some((leader, _)) = self.released.remove(&ticket) {
            return Poll::Ready(leader);
        }
        self.arrived.insert(ticket);
        if self.arrived.len() as u64 >= u64::from(self.parties.max(1)) {
            self.generation += 1;
            let generation = self.generation;
            for other in self.arrived.drain() {
                if other != ticket {
                    self.released.insert(other, (false, generation));
                }
            }
            // Forget releases nobody collected two generations later (dead clients).
            self.released.retain(|_, (_, g)| *g + 2 > generation);
            return Poll::Ready(true);
        }
        Poll::Pending
    }

    /// Number of parties.
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// Parties waiting in the current generation.
    pub fn waiting(&self) -> u32 {
        self.arrived.len() as u32
    }

    /// Completed generations.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// What [`BarrierProxy::wait`] returns, like `std::sync::BarrierWaitResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this thread was the leader of its generation (exactly one is).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl BarrierProxy {
    /// Blocks until all parties have called `wait` in this generation.
    pub fn wait(&self) -> Result<BarrierWaitResult> {
        self.arrive(ticket()).map(BarrierWaitResult)
    }

    /// [`Self::wait`] that gives up after `timeout` (the arrival is then still
    /// counted, as a thread that arrived and left would be).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<BarrierWaitResult> {
        self.arrive_timeout(ticket(), timeout)
            .map(BarrierWaitResult)
    }

    /// Async twin of [`Self::wait`].
    pub fn wait_async(
        &self,
    ) -> impl StdFuture<Output = Result<BarrierWaitResult>> + Send + 'static {
        let arrival = self.arrive_async(ticket());
        async move { arrival.await.map(BarrierWaitResult) }
    }
}

/// A counting semaphore, like `java.util.concurrent.Semaphore`.
///
/// ```
/// # crucial_server::link();
/// use crucial::Semaphore;
/// let slots = Semaphore::shared_with("slots", Semaphore::new(2))?;
/// slots.acquire(2)?;
/// assert!(!slots.try_acquire(1)?);
/// slots.release(2)?;
/// # Ok::<(), crucial::Error>(())
/// ```
#[crucial::shared(name = "crucial::Semaphore")]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Semaphore {
    permits: i64,
}

impl Semaphore {
    /// An initial state for `shared_with`: `permits` available permits.
    pub fn new(permits: i64) -> Self {
        Semaphore { permits }
    }
}

#[crucial::shared]
impl Semaphore {
    /// Takes `n` permits, waiting until they are available. Waiters are retried in
    /// arrival order each time permits are released.
    pub fn acquire(&mut self, n: u32) -> Poll<()> {
        if self.permits >= i64::from(n) {
            self.permits -= i64::from(n);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Takes `n` permits if available now.
    pub fn try_acquire(&mut self, n: u32) -> bool {
        self.acquire(n).is_ready()
    }

    /// Returns `n` permits.
    pub fn release(&mut self, n: u32) {
        self.permits += i64::from(n);
    }

    /// Permits available now.
    pub fn available_permits(&self) -> i64 {
        self.permits
    }
}

/// A latch that opens when counted down to zero, like `java.util.concurrent.CountDownLatch`.
///
/// ```
/// # crucial_server::link();
/// use crucial::CountDownLatch;
/// let ready = CountDownLatch::shared_with("ready", CountDownLatch::new(1))?;
/// ready.count_down()?;
/// ready.wait()?; // open: returns at once
/// # Ok::<(), crucial::Error>(())
/// ```
#[crucial::shared(name = "crucial::CountDownLatch")]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountDownLatch {
    count: u64,
}

impl CountDownLatch {
    /// An initial state for `shared_with`: a latch that opens after `count` count-downs.
    pub fn new(count: u64) -> Self {
        CountDownLatch { count }
    }
}

#[crucial::shared]
impl CountDownLatch {
    /// Decrements the count (not below zero); returns what is left.
    pub fn count_down(&mut self) -> u64 {
        self.count = self.count.saturating_sub(1);
        self.count
    }

    /// Waits until the count is zero.
    pub fn wait(&self) -> Poll<()> {
        if self.count == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The current count.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The server-side state of every [`Future<T>`]: an encoded value, set once.
#[crucial::shared(name = "crucial::Future")]
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FutureState {
    value: Option<Bytes>,
}

#[crucial::shared]
impl FutureState {
    /// Sets the value unless it is set; returns whether this call set it.
    pub fn set(&mut self, value: Bytes) -> bool {
        if self.value.is_some() {
            return false;
        }
        self.value = Some(value);
        true
    }

    /// Waits for the value.
    pub fn get(&self) -> Poll<Bytes> {
        match &self.value {
            Some(v) => Poll::Ready(v.clone()),
            None => Poll::Pending,
        }
    }

    /// Whether the value is set.
    pub fn is_done(&self) -> bool {
        self.value.is_some()
    }
}

/// A shared write-once value that threads wait for, like a `CompletableFuture`.
///
/// ```
/// # crucial_server::link();
/// let answer = crucial::Future::<u64>::shared("answer");
/// assert!(answer.set(&42)?);
/// assert!(!answer.set(&7)?); // set once
/// assert_eq!(answer.get()?, 42);
/// # Ok::<(), crucial::Error>(())
/// ```
#[derive(Debug)]
pub struct Future<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + 'static> Future<T> {
    /// Opens the shared future named `key` (unset on first use).
    pub fn shared(key: impl Into<String>) -> FutureProxy<T> {
        FutureProxy::from_core(ProxyCore::new(FutureState::NAME, key.into()))
    }
}

/// A typed facade opens like any shared type: `client.open::<Future<T>>(key)`.
impl<T: Serialize + DeserializeOwned + 'static> SharedType for Future<T> {
    const NAME: &'static str = FutureState::NAME;
    const PERSISTENT: bool = false;
    type Proxy = FutureProxy<T>;
}

/// Typed proxy of a [`Future<T>`].
#[derive(Debug)]
pub struct FutureProxy<T> {
    raw: FutureStateProxy,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for FutureProxy<T> {
    fn clone(&self) -> Self {
        FutureProxy {
            raw: self.raw.clone(),
            _value: PhantomData,
        }
    }
}

impl<T: 'static> SharedProxy for FutureProxy<T> {
    fn core(&self) -> &ProxyCore {
        self.raw.core()
    }
    fn from_core(core: ProxyCore) -> Self {
        FutureProxy {
            raw: FutureStateProxy::from_core(core),
            _value: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> FutureProxy<T> {
    /// Sets the value unless it is set; returns whether this call set it.
    pub fn set(&self, value: &T) -> Result<bool> {
        self.raw.set(codec::encode(value)?.into())
    }

    /// Waits for the value.
    pub fn get(&self) -> Result<T> {
        codec::decode(&self.raw.get()?)
    }

    /// Waits for the value at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        codec::decode(&self.raw.get_timeout(timeout)?)
    }

    /// Async twin of [`Self::get`].
    pub fn get_async(&self) -> impl StdFuture<Output = Result<T>> + Send + 'static {
        let value = self.raw.get_async();
        async move { codec::decode(&value.await?) }
    }

    /// Whether the value is set.
    pub fn is_done(&self) -> Result<bool> {
        self.raw.is_done()
    }
}
