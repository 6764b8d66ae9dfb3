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

use crate::objects::{ParkedCalls, ReplySink};
use crate::state::NodeState;
use bytes::{Buf, BytesMut};
use crucial::__private::wire::{encode_outcome, Outcome};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpStream;
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

/// A connection's reply sink.
pub struct Outbox {
    stream: Arc<TcpStream>,
    node: Arc<NodeState>,
    state: Mutex<OutState>,
    /// Wakes the flusher when the socket was full.
    backlog: Notify,
    /// Wakes the reader when the backlog went below the bound or work finished.
    progress: Notify,
    /// Requests handed to worker tasks and not finished yet.
    in_flight: AtomicUsize,
    parked: ParkedCalls,
}

impl Outbox {
    /// The outbox of a connection on `stream`; start [`Outbox::flusher`] beside it.
    pub fn new(stream: Arc<TcpStream>, node: Arc<NodeState>) -> Arc<Outbox> {
        Arc::new(Outbox {
            stream,
            node,
            state: Mutex::new(OutState {
                buf: BytesMut::with_capacity(16 * 1024),
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
        for (id, outcome) in replies {
            if let Err(error) = outcome {
                self.node.metrics.error(error);
            }
            encode_outcome(&mut state.buf, *id, outcome);
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
        }
        self.account(&mut state);
    }

    /// Brings the node's backlog gauge up to date (no atomic op when nothing waits).
    fn account(&self, state: &mut OutState) {
        let now = state.buf.len();
        if now != state.reported {
            self.node
                .metrics
                .backlog(now as i64 - state.reported as i64);
            state.reported = now;
        }
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
                let done = state.buf.is_empty();
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
        self.lock().buf.len() >= self.node.config.max_backlog
            || self.in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT
    }

    /// Resolves once the outbox is not [congested](Outbox::congested) (or closed).
    pub async fn uncongested(&self) {
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if !self.congested() || self.is_closed() {
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
                if state.buf.is_empty() || state.closed {
                    return;
                }
            }
            progress.await;
        }
    }

    /// Stops sending: drops what is unsent and wakes everyone waiting.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.buf.clear();
        self.account(&mut state);
        drop(state);
        self.progress.notify_waiters();
        self.backlog.notify_one();
    }
}

impl ReplySink for Outbox {
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
