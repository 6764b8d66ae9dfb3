//! A reply slot: where the connection's reader drops the answer to one request,
//! waking either a blocked thread or an async task.

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
}

/// Shared between a waiting caller and the connection's reader.
#[derive(Default)]
pub struct Slot {
    state: Mutex<State>,
    ready: Condvar,
    done: AtomicBool,
}

impl Slot {
    /// A new, empty slot.
    pub fn new() -> Arc<Slot> {
        Arc::new(Slot::default())
    }

    /// Delivers the reply (only the first delivery counts).
    pub fn complete(&self, reply: Reply) {
        let (waker, sleeping) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.reply.is_some() {
                return;
            }
            state.reply = Some(reply);
            self.done.store(true, Ordering::Release);
            (state.waker.take(), state.sleeping)
        };
        if sleeping {
            self.ready.notify_one();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Blocks the calling thread until the reply arrives, first busy-waiting for
    /// up to `spin`. A sequential caller whose reply is tens of microseconds away
    /// saves the futex wake-up, which on virtual machines costs as much as the
    /// network round trip; callers with company pass zero and sleep at once.
    pub fn wait_spinning(&self, spin: Duration) -> Reply {
        if !spin.is_zero() {
            let start = Instant::now();
            let mut polls = 0u32;
            while !self.done.load(Ordering::Acquire) {
                std::hint::spin_loop();
                polls += 1;
                if polls % 64 == 0 && start.elapsed() > spin {
                    break;
                }
            }
        }
        self.wait()
    }

    /// Blocks the calling thread until the reply arrives.
    pub fn wait(&self) -> Reply {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reply) = state.reply.take() {
                return reply;
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
        let mut state = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.reply.take() {
            Some(reply) => Poll::Ready(reply),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
