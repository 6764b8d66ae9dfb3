//! A reply slot: where the answer to one request lands, waking either a blocked
//! thread or an async task. A blocked thread can also be woken to take over
//! reading the connection (see `connection.rs`: leader/follower reading).

use crate::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The reply to one request: the encoded value or an error.
pub type Reply = Result<bytes::Bytes, Error>;

#[derive(Default)]
struct State {
    reply: Option<Reply>,
    waker: Option<Waker>,
    /// A thread sleeps on the condvar (so a notify, a syscall, is needed).
    sleeping: bool,
    /// The waiting thread was handed the connection's reader role.
    lead: bool,
}

/// Shared between a waiting caller and whoever reads the connection.
#[derive(Default)]
pub struct Slot {
    state: Mutex<State>,
    ready: Condvar,
    done: AtomicBool,
    /// Set with the reply or the reader role: what a spinning waiter watches.
    signaled: AtomicBool,
    /// Waited on by a thread (which can take over reading), not by a future.
    blocking: bool,
}

/// Why a waiting thread woke up.
pub enum Woken {
    /// Its reply arrived.
    Reply(Reply),
    /// It was handed the reader role: it must read until its reply arrives.
    Lead,
}

impl Slot {
    /// A slot for a thread that blocks for its reply.
    pub fn blocking() -> Arc<Slot> {
        Arc::new(Slot {
            blocking: true,
            ..Slot::default()
        })
    }

    /// A slot for an async task.
    pub fn for_task() -> Arc<Slot> {
        Arc::new(Slot::default())
    }

    /// Whether a thread (rather than a task) waits on this slot.
    pub fn is_blocking(&self) -> bool {
        self.blocking
    }

    /// Whether the reply is in (cheap: one atomic load).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers the reply (only the first delivery counts).
    pub fn complete(&self, reply: Reply) {
        let (waker, sleeping) = {
            let mut state = self.lock();
            if state.reply.is_some() || self.is_done() {
                return;
            }
            state.reply = Some(reply);
            self.done.store(true, Ordering::Release);
            self.signaled.store(true, Ordering::Release);
            (state.waker.take(), state.sleeping)
        };
        if sleeping {
            self.ready.notify_one();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Hands the reader role to the thread waiting here.
    pub fn promote(&self) {
        let sleeping = {
            let mut state = self.lock();
            state.lead = true;
            self.signaled.store(true, Ordering::Release);
            state.sleeping
        };
        if sleeping {
            self.ready.notify_one();
        }
    }

    /// Takes the reply, if it is in.
    pub fn take(&self) -> Option<Reply> {
        self.lock().reply.take()
    }

    /// [`Slot::wait`], first busy-waiting for up to `spin`: a reply or a
    /// hand-off that comes within it costs no wake-up.
    pub fn wait_spinning(&self, spin: Duration) -> Woken {
        if !spin.is_zero() {
            let start = Instant::now();
            let mut polls = 0u32;
            while !self.signaled.load(Ordering::Acquire) {
                std::hint::spin_loop();
                polls += 1;
                if polls % 64 == 0 && start.elapsed() > spin {
                    break;
                }
            }
        }
        self.wait()
    }

    /// Blocks the calling thread until its reply arrives or it is handed the
    /// reader role.
    pub fn wait(&self) -> Woken {
        let mut state = self.lock();
        loop {
            if let Some(reply) = state.reply.take() {
                return Woken::Reply(reply);
            }
            if std::mem::take(&mut state.lead) {
                return Woken::Lead;
            }
            state.sleeping = true;
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
            state.sleeping = false;
        }
    }

    /// A future that resolves to the reply.
    pub fn wait_async(self: Arc<Self>) -> SlotFuture {
        SlotFuture { slot: self }
    }
}

/// Future returned by [`Slot::wait_async`].
pub struct SlotFuture {
    slot: Arc<Slot>,
}

impl Future for SlotFuture {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut state = self.slot.lock();
        match state.reply.take() {
            Some(reply) => Poll::Ready(reply),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
