//! One client connection: read frames, run requests, write replies in batches.
//!
//! The reader decodes every complete frame in what it read. A lone request runs
//! inline (the sequential caller's fast path, no task hop). A batch is split into
//! up to `workers` chunks that run as separate tasks, so calls on different
//! objects use every core, while each chunk still answers with one write.
//! Replies go through an [`Outbox`]: appended under a short lock and written
//! with a non-blocking `try_write`; if the socket is full, a flusher task waits
//! for it to drain, so a slow client never blocks a worker.

use crate::dedup::Outcome;
use crate::dispatch::{self, Session};
use crate::metrics::Metrics;
use crate::node::NodeState;
use crate::table::ObjectCell;
use bytes::{Buf, BytesMut};
use crucial::codec;
use crucial::wire::{self, Frame, FrameDecoder};
use crucial::RemoteError;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Largest frame accepted before the `Hello` handshake.
const HANDSHAKE_MAX_FRAME: usize = 1024;

struct OutState {
    buf: BytesMut,
    flushing: bool,
    closed: bool,
}

/// The write side of a connection, shared by every task answering on it.
pub struct Outbox {
    stream: Arc<TcpStream>,
    state: Mutex<OutState>,
    backlog: Notify,
    /// Calls of this connection parked on objects, by token, so they can be
    /// removed when the client goes away.
    parked: Mutex<HashMap<u64, Weak<ObjectCell>>>,
    /// Every reply passes here, so error replies are counted here.
    metrics: Arc<Metrics>,
}

impl Outbox {
    fn new(stream: Arc<TcpStream>, metrics: Arc<Metrics>) -> Arc<Outbox> {
        Arc::new(Outbox {
            stream,
            state: Mutex::new(OutState {
                buf: BytesMut::with_capacity(16 * 1024),
                flushing: false,
                closed: false,
            }),
            backlog: Notify::new(),
            parked: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Appends replies and writes as much as the socket takes without blocking.
    pub(crate) fn send(&self, replies: &[(u64, Outcome)]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return;
        }
        for (id, outcome) in replies {
            if let Err(error) = outcome {
                self.metrics.error(error);
            }
            append_reply(&mut state.buf, *id, outcome);
        }
        if state.flushing {
            return; // the flusher task will pick these up
        }
        while !state.buf.is_empty() {
            match self.stream.try_write(&state.buf) {
                Ok(n) => state.buf.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    state.flushing = true;
                    self.backlog.notify_one();
                    return;
                }
                Err(_) => {
                    state.closed = true;
                    state.buf.clear();
                    return;
                }
            }
        }
    }

    /// Writes the backlog whenever the socket was full.
    async fn flusher(self: Arc<Self>) {
        loop {
            self.backlog.notified().await;
            loop {
                if self.stream.writable().await.is_err() {
                    self.close();
                    return;
                }
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.closed {
                    return;
                }
                match self.stream.try_write(&state.buf) {
                    Ok(n) => state.buf.advance(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => {
                        state.closed = true;
                        state.buf.clear();
                        return;
                    }
                }
                if state.buf.is_empty() {
                    state.flushing = false;
                    break;
                }
            }
        }
    }

    /// Records a call of this connection parked on `cell`.
    pub(crate) fn track(&self, token: u64, cell: Weak<ObjectCell>) {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, cell);
    }

    /// Forgets a parked call that was answered.
    pub(crate) fn untrack(&self, token: u64) {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
    }

    /// Removes this connection's parked calls from their objects: a client that
    /// is gone must not take anything, and its calls must not cost memory.
    fn purge_parked(&self) {
        let parked = std::mem::take(&mut *self.parked.lock().unwrap_or_else(|e| e.into_inner()));
        for (token, cell) in parked {
            if let Some(cell) = cell.upgrade() {
                cell.lock().parked.retain(|p| p.token != token);
            }
        }
    }

    /// The node's counters.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the client is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        state.buf.clear();
    }
}

/// Appends one reply frame. An `Ok` reply is laid out by hand (postcard's
/// `Result::Ok` tag, a varint length, the bytes) to skip two copies on the hot path;
/// a unit test checks it decodes exactly as postcard's own encoding.
fn append_reply(buf: &mut BytesMut, id: u64, outcome: &Outcome) {
    match outcome {
        Ok(bytes) => {
            let mut prefix = [0u8; 11];
            let mut n = 1; // prefix[0] = 0: the `Ok` variant
            let mut len = bytes.len() as u64;
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    prefix[n] = byte;
                    n += 1;
                    break;
                }
                prefix[n] = byte | 0x80;
                n += 1;
            }
            let frame_len = (8 + n + bytes.len()) as u32;
            buf.reserve(wire::HEADER_LEN + n + bytes.len());
            buf.extend_from_slice(&frame_len.to_be_bytes());
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&prefix[..n]);
            buf.extend_from_slice(bytes);
        }
        Err(error) => {
            let payload = codec::encode(&Err::<(), _>(error)).unwrap_or_else(|e| {
                codec::encode(&Err::<(), _>(RemoteError::Protocol {
                    reason: format!("cannot encode reply: {e}"),
                }))
                .expect("an error reply encodes")
            });
            let mut frame = Vec::with_capacity(wire::HEADER_LEN + payload.len());
            wire::write_frame(&mut frame, id, &payload);
            buf.extend_from_slice(&frame);
        }
    }
}

/// Serves one connection until the client goes away.
pub async fn serve(stream: TcpStream, node: Arc<NodeState>) {
    let _ = stream.set_nodelay(true);
    let stream = Arc::new(stream);
    let outbox = Outbox::new(Arc::clone(&stream), Arc::clone(&node.metrics));
    node.metrics.connection_opened();
    let flusher = tokio::spawn(Arc::clone(&outbox).flusher());
    let mut session = Session::default();
    // Until the handshake, only a Hello-sized frame is accepted, so a stray
    // protocol (an HTTP request, say) cannot make the node wait for gigabytes.
    let mut decoder = FrameDecoder::new(HANDSHAKE_MAX_FRAME);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut batch: Vec<(u64, bytes::Bytes)> = Vec::new();
    'read: loop {
        if stream.readable().await.is_err() {
            break;
        }
        match stream.try_read_buf(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
        let mut early = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf) {
            node.metrics.request();
            match frame {
                Frame::Complete { id, payload } => batch.push((id, payload)),
                Frame::TooLarge { id, size } => early.push((
                    id,
                    Err(RemoteError::FrameTooLarge {
                        size,
                        limit: node.config.max_frame as u64,
                    }),
                )),
            }
        }
        if !early.is_empty() {
            outbox.send(&early);
            if session.client_id.is_none() {
                break 'read;
            }
        }
        if batch.is_empty() {
            continue;
        }
        if session.client_id.is_none() || batch.len() <= node.config.inline_batch {
            // Handshake or a lone request: run inline, in order.
            let mut replies = Vec::with_capacity(batch.len());
            for (id, payload) in batch.drain(..) {
                if let Some(outcome) =
                    dispatch::handle(&node, &mut session, &outbox, id, &payload).await
                {
                    replies.push((id, outcome));
                }
            }
            outbox.send(&replies);
            if session.client_id.is_none() {
                break 'read; // a connection that fails its handshake is closed
            }
            decoder.set_limit(node.config.max_frame);
            continue;
        }
        let chunks = node.config.workers.clamp(1, batch.len());
        let per_chunk = batch.len().div_ceil(chunks);
        while !batch.is_empty() {
            let take = per_chunk.min(batch.len());
            let chunk: Vec<_> = batch.drain(..take).collect();
            let node = Arc::clone(&node);
            let outbox = Arc::clone(&outbox);
            let mut session = session;
            tokio::spawn(async move {
                let mut replies = Vec::with_capacity(chunk.len());
                for (id, payload) in chunk {
                    if let Some(outcome) =
                        dispatch::handle(&node, &mut session, &outbox, id, &payload).await
                    {
                        replies.push((id, outcome));
                    }
                }
                outbox.send(&replies);
            });
        }
    }
    outbox.close();
    outbox.purge_parked();
    flusher.abort();
    node.metrics.connection_closed();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crucial::wire::FrameDecoder;

    #[test]
    fn hand_laid_ok_reply_matches_postcard() {
        for size in [0usize, 1, 127, 128, 300, 20_000] {
            let value = vec![7u8; size];
            let mut buf = BytesMut::new();
            append_reply(&mut buf, 42, &Ok(value.clone()));
            let Some(Frame::Complete { id, payload }) = FrameDecoder::new(1 << 20).decode(&mut buf)
            else {
                panic!("no frame");
            };
            assert_eq!(id, 42);
            let expected =
                codec::encode(&Ok::<_, RemoteError>(serde_bytes::Bytes::new(&value))).unwrap();
            assert_eq!(&payload[..], &expected[..], "size {size}");
        }
    }
}
