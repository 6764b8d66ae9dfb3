//! A node's own connection to another member's peer port, for replication:
//! its replies are read by a task of the node's runtime, and its requests
//! are written by the caller itself (under an object's lock: frames leave in
//! the order they were started), queued for a flusher task only when the
//! socket is full. A copy and its acknowledgement thus cost no hand-off to
//! another thread — the client's [`Peer`](crucial::__private::peer::Peer),
//! built for cloud threads, reads with a thread of its own, and that hop
//! was most of a replicated write's time.

// Built into every node, driven only by membership on etcd (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use crate::net::net_stream::NetStream;
use crate::net::tls::TlsTransport;
use crate::net::transport::{read_more, write_all, Transport};
use bytes::{Bytes, BytesMut};
use crucial_protocol::wire::{
    decode_reply, write_frame, Frame, FrameDecoder, Request, PROTOCOL_VERSION,
};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};

type Answer = Result<Bytes, String>;

/// One connection to a member's peer port.
pub struct Link {
    addr: String,
    stream: Arc<NetStream>,
    next: AtomicU64,
    state: Mutex<State>,
    /// Wakes the reader when the link is closed.
    closed: Notify,
}

struct State {
    /// Why the link broke, once it did.
    dead: Option<String>,
    /// Replies awaited, by request id.
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    /// Bytes the socket did not take yet (written by the flusher).
    pending: Vec<u8>,
    flushing: bool,
}

/// The reply to one request of a [`Link`].
pub struct Reply {
    link: Arc<Link>,
    answer: oneshot::Receiver<Answer>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    /// Connects to `addr` and performs the handshake as client `client_id`.
    pub async fn connect(
        addr: &str,
        client_id: u64,
        token: Option<&crucial::Token>,
        tls: Option<&Arc<rustls::ClientConfig>>,
        max_frame: usize,
        within: Duration,
    ) -> Result<Arc<Link>, String> {
        let fail = |e: String| format!("cannot connect to {addr}: {e}");
        let tcp = tokio::time::timeout(within, TcpStream::connect(addr))
            .await
            .map_err(|_| fail(format!("no answer in {within:?}")))?
            .map_err(|e| fail(e.to_string()))?;
        tcp.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
        let stream = match tls {
            None => NetStream::Tcp(tcp),
            Some(config) => {
                let tls = tokio::time::timeout(
                    within,
                    TlsTransport::connect(tcp, Arc::clone(config), addr),
                )
                .await
                .map_err(|_| fail("no TLS handshake".into()))?
                .map_err(|e| fail(format!("TLS handshake: {e}")))?;
                NetStream::Tls(Box::new(tls))
            }
        };
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_id,
            token: token.map(|t| crucial_protocol::wire::Token(t.expose())),
        }
        .encode()
        .map_err(|e| fail(e.to_string()))?;
        let mut frame = Vec::new();
        write_frame(&mut frame, 0, &hello);
        let mut decoder = FrameDecoder::new(max_frame);
        let mut buf = BytesMut::new();
        let handshake = async {
            write_all(&stream, &frame).await?;
            loop {
                if let Some(frame) = decoder.decode(&mut buf) {
                    return Ok::<_, std::io::Error>(frame);
                }
                if read_more(&stream, &mut buf).await? == 0 {
                    return Err(ErrorKind::UnexpectedEof.into());
                }
            }
        };
        let reply = tokio::time::timeout(within, handshake)
            .await
            .map_err(|_| fail("no handshake reply".into()))?
            .map_err(|e| fail(format!("handshake: {e}")))?;
        match reply {
            Frame::Complete { payload, .. } => match decode_reply(&payload) {
                Ok(Ok(_)) => {}
                Ok(Err(refused)) => return Err(fail(format!("handshake refused: {refused}"))),
                Err(e) => return Err(fail(format!("handshake: {e}"))),
            },
            Frame::TooLarge { .. } => return Err(fail("oversized handshake reply".into())),
        }
        let link = Arc::new(Link {
            addr: addr.to_string(),
            stream: Arc::new(stream),
            next: AtomicU64::new(1),
            state: Mutex::new(State {
                dead: None,
                waiting: HashMap::new(),
                pending: Vec::new(),
                flushing: false,
            }),
            closed: Notify::new(),
        });
        tokio::spawn(Arc::clone(&link).read(decoder, buf));
        Ok(link)
    }

    /// Whether the link broke (open a new one).
    pub fn is_dead(&self) -> bool {
        lock(&self.state).dead.is_some()
    }

    /// Sends `request` now: requests started one after another reach the
    /// member in that order. Must run inside the node's runtime.
    pub fn start(self: &Arc<Self>, request: &Request<'_>) -> Result<Reply, String> {
        let payload = request.encode().map_err(|e| e.to_string())?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::with_capacity(payload.len() + 12);
        write_frame(&mut frame, id, &payload);
        let (tx, answer) = oneshot::channel();
        let mut state = lock(&self.state);
        if let Some(reason) = &state.dead {
            return Err(format!("link to {} broke: {reason}", self.addr));
        }
        state.waiting.insert(id, tx);
        if state.pending.is_empty() && !state.flushing {
            match self.stream.try_write(&frame) {
                Ok(n) if n == frame.len() => {}
                Ok(n) => state.pending.extend_from_slice(&frame[n..]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    state.pending.extend_from_slice(&frame)
                }
                Err(e) => {
                    drop(state);
                    self.fail(&format!("write failed: {e}"));
                    return Err(format!("link to {}: write failed: {e}", self.addr));
                }
            }
        } else {
            state.pending.extend_from_slice(&frame);
        }
        if (!state.pending.is_empty() || self.stream.pending()) && !state.flushing {
            state.flushing = true;
            tokio::spawn(Arc::clone(self).flush());
        }
        Ok(Reply {
            link: Arc::clone(self),
            answer,
        })
    }

    /// Writes what the socket did not take, as it becomes writable.
    async fn flush(self: Arc<Self>) {
        loop {
            if let Err(e) = self.stream.writable().await {
                self.fail(&format!("write failed: {e}"));
                return;
            }
            let mut state = lock(&self.state);
            if state.dead.is_some() || (state.pending.is_empty() && !self.stream.pending()) {
                state.flushing = false;
                return;
            }
            match self.stream.try_write(&state.pending) {
                Ok(n) => {
                    state.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    state.flushing = false;
                    drop(state);
                    self.fail(&format!("write failed: {e}"));
                    return;
                }
            }
        }
    }

    /// Reads replies and hands each to its waiter, until the link breaks:
    /// everything the socket holds, before it waits for more.
    async fn read(self: Arc<Self>, mut decoder: FrameDecoder, mut buf: BytesMut) {
        loop {
            while let Some(frame) = decoder.decode(&mut buf) {
                let (id, answer) = match frame {
                    Frame::Complete { id, payload } => (
                        id,
                        match decode_reply(&payload) {
                            Ok(Ok(value)) => Ok(value),
                            Ok(Err(remote)) => Err(remote.to_string()),
                            Err(e) => Err(format!("bad reply: {e}")),
                        },
                    ),
                    Frame::TooLarge { id, size } => (id, Err(format!("reply of {size} bytes"))),
                };
                if let Some(waiter) = lock(&self.state).waiting.remove(&id) {
                    let _ = waiter.send(answer);
                }
            }
            match self.stream.try_read_buf(&mut buf) {
                Ok(0) => {
                    self.fail("closed by the member");
                    return;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.fail(&format!("read failed: {e}"));
                    return;
                }
            }
            tokio::select! {
                ready = self.stream.readable() => {
                    if let Err(e) = ready {
                        self.fail(&format!("read failed: {e}"));
                        return;
                    }
                }
                _ = self.closed.notified() => return,
            }
        }
    }

    /// Marks the link broken: every waiter gets `reason`.
    fn fail(&self, reason: &str) {
        let mut state = lock(&self.state);
        if state.dead.is_none() {
            state.dead = Some(reason.to_string());
        }
        for (_, waiter) in state.waiting.drain() {
            let _ = waiter.send(Err(reason.to_string()));
        }
        state.pending.clear();
        drop(state);
        self.closed.notify_one();
    }
}

impl Reply {
    /// Waits for the reply, at most `within`; a member that does not answer
    /// in time breaks the link (a new one is opened for the next request).
    pub async fn wait(self, within: Duration) -> Answer {
        match tokio::time::timeout(within, self.answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(format!("link to {} broke", self.link.addr)),
            Err(_) => {
                let reason = format!("no reply in {within:?}");
                self.link.fail(&reason);
                Err(format!("{}: {reason}", self.link.addr))
            }
        }
    }
}
