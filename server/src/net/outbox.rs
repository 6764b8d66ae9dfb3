//! The write side of a client connection, and the node's one place where reply
//! frames are encoded and written: every reply, whether the connection's own
//! reader produced it, a call on another connection released a parked call, or
//! a timer expired one, arrives here through [`ReplySink::send`].
//!
//! Replies are appended under a short lock and written with a non-blocking
//! `try_write`; if the socket is full, a flusher task waits for it to drain, so
//! a slow client never blocks a worker. The unsent bytes are the connection's
//! *backlog*: once it passes the node's bound, the connection's reader stops
//! reading requests (TCP then pushes back on the client) until the flusher has
//! written it below the bound again.

use super::clients::Member;
use super::transport::Transport;
use crate::shared_objects::{ParkedCalls, ReplySink};
use crate::state::NodeState;
use bytes::{Buf, BytesMut};
use crucial::RemoteError;
use crucial_protocol::wire::{encode_outcome, Outcome};
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Requests of one connection running in worker tasks at once, at most; past
/// this the reader waits too (a client that outruns the node's CPU).
pub const MAX_IN_FLIGHT: usize = 16 * 1024;

struct OutState {
    /// Encoded replies not yet written.
    buf: BytesMut,
    /// The flusher owns writing until the buffer is empty.
    flushing: bool,
    closed: bool,
    /// The backlog last added to the node's gauge.
    reported: usize,
}

/// A connection's reply sink, over its byte stream `T`.
pub struct Outbox<T> {
    stream: Arc<T>,
    node: Arc<NodeState>,
    /// The connection's share of the node's client memory.
    member: Arc<Member>,
    state: Mutex<OutState>,
    /// `state.buf.len()`, readable without the lock.
    unsent: AtomicUsize,
    /// When the connection opened, and the last request read or reply queued
    /// (milliseconds since it opened): what the idle timeout measures.
    opened: Instant,
    active_ms: AtomicU64,
    /// Wakes the flusher when the socket was full.
    backlog: Notify,
    /// Wakes the reader when the backlog went below the bound or work finished.
    progress: Notify,
    /// Requests handed to worker tasks and not finished yet.
    in_flight: AtomicUsize,
    parked: ParkedCalls,
}

impl<T: Transport> Outbox<T> {
    /// The outbox of a connection on `stream`; start [`Outbox::flusher`] beside it.
    pub fn new(stream: Arc<T>, node: Arc<NodeState>, member: Arc<Member>) -> Arc<Outbox<T>> {
        Arc::new(Outbox {
            stream,
            node,
            member,
            unsent: AtomicUsize::new(0),
            opened: Instant::now(),
            active_ms: AtomicU64::new(0),
            state: Mutex::new(OutState {
                buf: BytesMut::with_capacity(4 * 1024),
                flushing: false,
                closed: false,
                reported: 0,
            }),
            backlog: Notify::new(),
            progress: Notify::new(),
            in_flight: AtomicUsize::new(0),
            parked: ParkedCalls::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends replies and writes as much as the socket takes without blocking.
    fn push(&self, replies: &[(u64, Outcome)]) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        self.touch();
        let max_frame = self.node.config.max_frame;
        for (id, outcome) in replies {
            match outcome {
                Ok(reply) if reply.len() > max_frame => {
                    let error = reply_too_large(*id, reply.len(), max_frame);
                    self.node.metrics.error(&error);
                    encode_outcome(&mut state.buf, *id, &Err(error));
                }
                Err(error) => {
                    self.node.metrics.error(error);
                    encode_outcome(&mut state.buf, *id, outcome);
                }
                Ok(_) => encode_outcome(&mut state.buf, *id, outcome),
            }
        }
        if !state.flushing {
            while !state.buf.is_empty() {
                match self.stream.try_write(&state.buf) {
                    Ok(n) => state.buf.advance(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        state.flushing = true;
                        self.backlog.notify_one();
                        break;
                    }
                    Err(_) => {
                        state.closed = true;
                        state.buf.clear();
                        break;
                    }
                }
            }
            if state.buf.is_empty() && !state.closed && self.stream.pending() {
                // Taken, but not on the socket yet (TLS): the flusher ends it.
                state.flushing = true;
                self.backlog.notify_one();
            }
        }
        self.account(&mut state);
    }

    /// Brings the node's backlog gauge and client memory up to date (no
    /// atomic op when nothing waits).
    fn account(&self, state: &mut OutState) {
        let now = state.buf.len();
        if now != state.reported {
            self.node
                .metrics
                .backlog(now as i64 - state.reported as i64);
            self.member.account(state.reported, now);
            self.unsent.store(now, Ordering::Release);
            state.reported = now;
        }
    }

    /// Resolves once the node evicts this connection (`--max-client-memory`).
    pub async fn evicted(&self) {
        self.member.evicted().await;
    }

    /// Marks the connection active now (a request read, a reply queued).
    pub fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.active_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has had nothing to do: no request running or
    /// parked, no reply to send, no request read or reply queued since.
    /// `None` while it has something.
    pub fn idle_for(&self) -> Option<Duration> {
        let busy = self.unsent.load(Ordering::Acquire) > 0
            || self.in_flight.load(Ordering::Acquire) > 0
            || !self.parked.is_empty();
        if busy {
            return None;
        }
        let since = Duration::from_millis(self.active_ms.load(Ordering::Relaxed));
        Some(self.opened.elapsed().saturating_sub(since))
    }

    /// Writes the backlog whenever the socket was full.
    pub async fn flusher(self: Arc<Self>) {
        loop {
            self.backlog.notified().await;
            loop {
                if self.stream.writable().await.is_err() {
                    self.close();
                    return;
                }
                let mut state = self.lock();
                if state.closed {
                    return;
                }
                match self.stream.try_write(&state.buf) {
                    Ok(n) => state.buf.advance(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => {
                        drop(state);
                        self.close();
                        return;
                    }
                }
                self.account(&mut state);
                let done = state.buf.is_empty() && !self.stream.pending();
                if done {
                    state.flushing = false;
                }
                if state.buf.len() < self.node.config.max_backlog {
                    self.progress.notify_waiters();
                }
                if done {
                    break;
                }
            }
        }
    }

    /// Whether the reader should stop reading: too many unread reply bytes, or
    /// too many requests still running.
    pub fn congested(&self) -> bool {
        self.unsent.load(Ordering::Acquire) >= self.node.config.max_backlog
            || self.in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT
    }

    /// Whether the client leaves too many reply bytes unread (the part of
    /// [`Outbox::congested`] a task applying requests waits on: waiting for
    /// requests in flight there could wait for itself).
    pub fn backlogged(&self) -> bool {
        self.unsent.load(Ordering::Acquire) >= self.node.config.max_backlog
    }

    /// Resolves once `busy` is false (or the outbox is closed).
    pub async fn until_not(&self, busy: fn(&Outbox<T>) -> bool) {
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if !busy(self) || self.is_closed() {
                return;
            }
            progress.await;
        }
    }

    /// `n` requests were handed to a worker task.
    pub fn started(&self, n: usize) {
        self.in_flight.fetch_add(n, Ordering::AcqRel);
    }

    /// A worker task finished `n` requests.
    pub fn finished(&self, n: usize) {
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
        self.progress.notify_waiters();
    }

    /// Resolves once no request of this connection runs in a worker task.
    pub async fn idle(&self) {
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            progress.await;
        }
    }

    /// Resolves once every reply is written (or the connection is closed).
    pub async fn drained(&self) {
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let state = self.lock();
                if (state.buf.is_empty() && !self.stream.pending()) || state.closed {
                    return;
                }
            }
            progress.await;
        }
    }

    /// Stops sending: drops what is unsent and wakes everyone waiting.
    /// Returns whether it was open (the caller closed it).
    pub fn close(&self) -> bool {
        let mut state = self.lock();
        let was_open = !state.closed;
        state.closed = true;
        state.buf.clear();
        self.account(&mut state);
        drop(state);
        self.progress.notify_waiters();
        self.backlog.notify_one();
        was_open
    }
}

/// The error sent instead of a reply no frame can carry (the client would
/// refuse it): the call ran, its reply is lost.
fn reply_too_large(id: u64, size: usize, max_frame: usize) -> RemoteError {
    RemoteError::Limit {
        limit: "--max-frame-size".into(),
        value: max_frame as u64,
        detail: format!(
            "the reply to request {id} has {size} bytes, more than a frame may carry: \
             the call ran, but its reply cannot be sent (return less, or raise the limit \
             on the node and the client)"
        ),
    }
}

impl<T: Transport> ReplySink for Outbox<T> {
    fn send(&self, replies: Vec<(u64, Outcome)>) {
        if !replies.is_empty() {
            self.push(&replies);
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn parked(&self) -> &ParkedCalls {
        &self.parked
    }
}
