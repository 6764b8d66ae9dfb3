//! One client connection: read frames, apply them, hand replies to the outbox.
//!
//! The reader decodes every complete frame in what it read. A lone request runs
//! inline (the sequential caller's fast path, no task hop). A batch is split into
//! up to `workers` chunks that run as separate tasks, so calls on different
//! objects use every core, while each chunk still answers with one write.
//!
//! Backpressure is checked before every request, not only before every read:
//! while the client leaves more than `--max-backlog` of replies unread, no
//! request of it runs (one read can hold a thousand requests, each with a
//! large reply), and a client stuck that way past the stall timeout is
//! disconnected. The timeouts of a connection are kept here too: a `Hello`
//! within the handshake timeout, a frame whole within the frame timeout, and
//! no idle connection past the idle timeout.

use super::clients::Member;
use super::outbox::Outbox;
use super::transport::Transport;
use crate::metrics::Closed;
use crate::request::{apply, Applied, Durable, Plane, Session};
use crate::shared_objects::{deliver, Delivery, ReplySink};
use crate::state::NodeState;
use bytes::{Bytes, BytesMut};
use crucial::RemoteError;
use crucial_protocol::wire::{Frame, FrameDecoder, Outcome};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// A workflow's reply, to come.
type Later = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Outcome>> + Send>>;

/// Largest frame accepted before the `Hello` handshake.
const HANDSHAKE_MAX_FRAME: usize = 1024;

/// The read buffer a connection keeps; a larger frame grows it for as long as
/// it takes to arrive, and that growth counts against `--max-client-memory`.
const READ_BUFFER: usize = 16 * 1024;

/// Replies of a batch sent together once they reach this many bytes (the rest
/// of the batch goes on, so its replies do not pile up in memory first).
const SEND_AT: usize = 64 * 1024;

/// Why a connection's reader stopped.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The client closed, broke the protocol, stalled or timed out.
    Client,
    /// The node is stopping.
    NodeStopping,
}

/// Serves one connection until the client goes away or the node stops.
pub async fn serve<T: Transport>(
    stream: T,
    node: Arc<NodeState>,
    member: Arc<Member>,
    plane: Plane,
) {
    let stream = Arc::new(stream);
    let outbox = Outbox::new(Arc::clone(&stream), Arc::clone(&node), Arc::clone(&member));
    node.metrics.connection_opened();
    let flusher = tokio::spawn(Arc::clone(&outbox).flusher());
    let mut reader = Reader::new(&node, &outbox, &member, plane);
    if reader.run(&stream).await == Ended::NodeStopping {
        stop(&node, &outbox).await;
    }
    drop(reader);
    outbox.close();
    outbox.parked().purge();
    flusher.abort();
    node.metrics.connection_closed();
}

/// Refuses a connection past `--max-connections`: tells the client why (as
/// the answer to its `Hello`) and closes it, without a task or a wait.
pub fn refuse(stream: TcpStream, node: &NodeState, open: usize) {
    let error = RemoteError::Limit {
        limit: "--max-connections".into(),
        value: open as u64,
        detail: "the node serves as many connections as it may: this one is closed; \
                 retry later or reach another node"
            .into(),
    };
    node.metrics.error(&error);
    node.metrics.closed(Closed::MaxConnections);
    let mut frame = BytesMut::new();
    crucial_protocol::wire::encode_outcome(&mut frame, 0, &Err(error));
    let _ = stream.try_write(&frame);
}

/// Answers a plain-frame client on a TLS port (its `Hello` gets this
/// error, in a plain frame) and closes the connection.
pub fn tell_tls_expected(stream: TcpStream, node: &NodeState) {
    let error = RemoteError::Protocol {
        reason: "this port speaks TLS: give the client the CA of the node's certificate \
                 (`Config::tls`, or CRUCIAL_TLS_CA=FILE)"
            .into(),
    };
    node.metrics.error(&error);
    let mut frame = BytesMut::new();
    crucial_protocol::wire::encode_outcome(&mut frame, 0, &Err(error));
    let _ = stream.try_write(&frame);
}

/// A clean stop: the calls already read finish, the calls parked for this
/// client get `ShuttingDown`, and the replies are written (for at most the
/// shutdown grace) before the connection closes.
async fn stop<T: Transport>(node: &NodeState, outbox: &Outbox<T>) {
    let grace = node.config.shutdown_grace;
    let _ = tokio::time::timeout(grace, async {
        outbox.idle().await;
        outbox
            .parked()
            .fail_all(|type_name, key, method| RemoteError::ShuttingDown {
                type_name: type_name.to_string(),
                key: key.to_string(),
                method: method.to_string(),
            });
        outbox.drained().await;
    })
    .await;
}

/// The read side of one connection.
struct Reader<'a, T> {
    node: &'a Arc<NodeState>,
    outbox: &'a Arc<Outbox<T>>,
    member: &'a Member,
    sink: Arc<dyn ReplySink>,
    session: Session,
    decoder: FrameDecoder,
    buf: BytesMut,
    /// Bytes of `buf` beyond [`READ_BUFFER`] counted in the client memory.
    counted: usize,
    opened: Instant,
    /// When the frame now partly in `buf` started to arrive.
    frame_started: Option<Instant>,
    /// Ticks when the timeouts are looked at (no timer is touched per read).
    check: tokio::time::Interval,
}

impl<T> Drop for Reader<'_, T> {
    fn drop(&mut self) {
        self.member.account(self.counted, 0);
    }
}

impl<'a, T: Transport> Reader<'a, T> {
    fn new(
        node: &'a Arc<NodeState>,
        outbox: &'a Arc<Outbox<T>>,
        member: &'a Member,
        plane: Plane,
    ) -> Self {
        Reader {
            node,
            outbox,
            member,
            sink: Arc::clone(outbox) as Arc<dyn ReplySink>,
            session: Session {
                plane,
                ..Session::default()
            },
            // Until the handshake, only a Hello-sized frame is accepted, so a
            // stray protocol (an HTTP request, say) cannot make the node wait
            // for gigabytes.
            decoder: FrameDecoder::new(HANDSHAKE_MAX_FRAME),
            buf: BytesMut::with_capacity(READ_BUFFER),
            counted: 0,
            opened: Instant::now(),
            frame_started: None,
            check: {
                let mut check = tokio::time::interval(check_period(&node.config));
                check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                check
            },
        }
    }

    fn handshaken(&self) -> bool {
        self.session.client_id.is_some()
    }

    async fn run(&mut self, stream: &T) -> Ended {
        let mut stop = self.node.stop_signal();
        let mut batch: Vec<(u64, Bytes)> = Vec::new();
        // Bytes already in `buf` after the handshake are decoded before
        // reading more (a `Hello` sent in one write with what follows it).
        let mut decode_first = false;
        loop {
            if self.outbox.congested() {
                tokio::select! {
                    ended = wait_until_not(self.node, self.outbox, Outbox::congested) => {
                        if let Some(ended) = ended {
                            return ended;
                        }
                    }
                    _ = stop.stopped() => return Ended::NodeStopping,
                }
                // The node, not the client, kept the frame waiting.
                self.frame_started = self.frame_started.map(|_| Instant::now());
            }
            if !std::mem::take(&mut decode_first) {
                match self.read(stream, &mut stop).await {
                    Ok(()) => {}
                    Err(ended) => return ended,
                }
            }
            // Before the handshake one frame at a time: the `Hello` changes
            // the frame limit for what follows it.
            let mut early = Vec::new();
            let mut decoded = false;
            while let Some(frame) = self.decoder.decode(&mut self.buf) {
                decoded = true;
                self.node.metrics.request();
                match frame {
                    Frame::Complete { id, payload } => batch.push((id, payload)),
                    Frame::TooLarge { id, size } => {
                        early.push((id, Err(self.too_large(size))));
                        if !self.may_skip(size) {
                            self.outbox.send(early);
                            self.node.metrics.closed(Closed::FrameSize);
                            return Ended::Client;
                        }
                    }
                }
                if !self.handshaken() {
                    break;
                }
            }
            self.track_frame(decoded);
            self.account_buffer();
            if !early.is_empty() {
                self.outbox.send(early);
                if !self.handshaken() {
                    return Ended::Client;
                }
            }
            if batch.is_empty() {
                continue;
            }
            if !self.handshaken() {
                // The handshake, alone and inline.
                let sent = apply_all(
                    self.node,
                    &mut self.session,
                    &self.sink,
                    self.outbox,
                    &mut batch,
                )
                .await;
                if sent.is_err() || !self.handshaken() {
                    return Ended::Client; // a connection that fails its handshake is closed
                }
                self.decoder.set_limit(self.node.config.max_frame);
                decode_first = !self.buf.is_empty();
                continue;
            }
            if self.apply(&mut batch).await.is_err() {
                return Ended::Client;
            }
        }
    }

    /// Waits until the socket is readable and reads, within the connection's
    /// timeouts; `Err` says why the connection ends.
    async fn read(&mut self, stream: &T, stop: &mut crate::state::StopSignal) -> Result<(), Ended> {
        loop {
            tokio::select! {
                readable = stream.readable() => {
                    if readable.is_err() {
                        return Err(Ended::Client);
                    }
                }
                _ = stop.stopped() => return Err(Ended::NodeStopping),
                () = self.member.evicted() => return Err(Ended::Client),
                _ = self.check.tick() => {
                    if let Some(reason) = self.expired() {
                        tracing::debug!(?reason, "closing a connection");
                        self.node.metrics.closed(reason);
                        return Err(Ended::Client);
                    }
                    continue;
                }
            }
            if self.buf.capacity() - self.buf.len() < READ_BUFFER / 4 {
                self.buf.reserve(READ_BUFFER);
            }
            match stream.try_read_buf(&mut self.buf) {
                Ok(0) => return Err(Ended::Client),
                Ok(_) => {
                    self.outbox.touch();
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return Err(Ended::Client),
            }
        }
    }

    /// The timeout this connection is past, if any (looked at every
    /// [`check_period`], so each is kept within a quarter of itself).
    fn expired(&self) -> Option<Closed> {
        let config = &self.node.config;
        if !self.handshaken() {
            return (self.opened.elapsed() >= config.handshake_timeout)
                .then_some(Closed::HandshakeTimeout);
        }
        if let Some(started) = self.frame_started {
            return (started.elapsed() >= config.frame_timeout).then_some(Closed::FrameTimeout);
        }
        let idle = config.idle_timeout;
        let idle_for = self.outbox.idle_for()?;
        (!idle.is_zero() && idle_for >= idle).then_some(Closed::IdleTimeout)
    }

    /// Starts or stops the frame timer: a partial frame left in the buffer
    /// after decoding started now, unless it is the one that was already
    /// arriving (nothing was decoded).
    fn track_frame(&mut self, decoded: bool) {
        let partial = !self.buf.is_empty() || self.decoder.skipping();
        self.frame_started = match (partial, decoded, self.frame_started) {
            (false, _, _) => None,
            (true, false, Some(started)) => Some(started),
            (true, _, _) => Some(Instant::now()),
        };
    }

    /// Counts the read buffer's growth past [`READ_BUFFER`] (a large frame
    /// arriving) in the node's client memory, and gives it back once the
    /// frame is out.
    fn account_buffer(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 4 * READ_BUFFER {
            self.buf = BytesMut::with_capacity(READ_BUFFER);
        }
        let now = self.buf.capacity().saturating_sub(READ_BUFFER);
        if now != self.counted {
            self.member.account(self.counted, now);
            self.node
                .metrics
                .request_buffer(now as i64 - self.counted as i64);
            self.counted = now;
        }
    }

    fn too_large(&self, size: u64) -> RemoteError {
        RemoteError::FrameTooLarge {
            size,
            limit: self.decoder.limit() as u64,
        }
    }

    /// An oversized frame's bytes are skipped (the connection stays in sync
    /// and usable) unless its length is absurd: then it is closed.
    fn may_skip(&self, size: u64) -> bool {
        let max_frame = self.node.config.max_frame as u64;
        self.handshaken() && size <= (4 * max_frame).max(64 << 20)
    }

    /// Applies a batch: inline (in order, one write) when it is small, or when
    /// other connections already keep every core applying — splitting it then
    /// adds task hops and writes but no parallelism (measured with 64
    /// connections pipelining 16 each: splitting always cost 1.7x the CPU per
    /// request of running inline); else in chunks on worker tasks. A peer's
    /// batch always runs in order: a member sends an object's copies one after
    /// another on one link and they must be applied in that order (split into
    /// chunks, a replica was seen applying version 22 before 21). `Err`: the
    /// client stalled or the connection closed.
    async fn apply(&mut self, batch: &mut Vec<(u64, Bytes)>) -> Result<(), Ended> {
        let node = self.node;
        let applying = node.applying.enter();
        let cores_busy = applying.others + 1 >= node.config.workers;
        let in_order = self.session.plane == Plane::Peer;
        if batch.len() <= node.config.inline_batch || cores_busy || in_order {
            return apply_all(node, &mut self.session, &self.sink, self.outbox, batch).await;
        }
        let chunks = node.config.workers.clamp(1, batch.len());
        let per_chunk = batch.len().div_ceil(chunks);
        while !batch.is_empty() {
            let take = per_chunk.min(batch.len());
            let mut chunk: Vec<_> = batch.drain(..take).collect();
            let node = Arc::clone(node);
            let outbox = Arc::clone(self.outbox);
            let sink = Arc::clone(&self.sink);
            let mut session = self.session.clone();
            let n = chunk.len();
            outbox.started(n);
            tokio::spawn(async move {
                let _applying = node.applying.enter();
                if apply_all(&node, &mut session, &sink, &outbox, &mut chunk)
                    .await
                    .is_err()
                {
                    outbox.close(); // stalled: the reader sees it closed and ends
                }
                outbox.finished(n);
            });
        }
        Ok(())
    }
}

/// How often a connection looks at its timeouts: a quarter of the shortest,
/// between 10 ms and 2.5 s (so 10 000 idle connections wake the node a few
/// thousand times a second at most).
fn check_period(config: &crate::config::NodeConfig) -> Duration {
    [
        config.handshake_timeout,
        config.frame_timeout,
        config.idle_timeout,
    ]
    .into_iter()
    .filter(|t| !t.is_zero())
    .min()
    .map_or(Duration::from_millis(2500), |t| t / 4)
    .clamp(Duration::from_millis(10), Duration::from_millis(2500))
}

/// Waits until `busy` is false for the outbox (the client read enough of its
/// replies); `Some` if the connection ends meanwhile (stalled past the stall
/// timeout, evicted, or closed).
async fn wait_until_not<T: Transport>(
    node: &NodeState,
    outbox: &Outbox<T>,
    busy: fn(&Outbox<T>) -> bool,
) -> Option<Ended> {
    node.metrics.paused();
    let waited = tokio::select! {
        waited = tokio::time::timeout(node.config.stall_timeout, outbox.until_not(busy)) => waited,
        () = outbox.evicted() => {
            outbox.close(); // its unsent replies are dropped now
            return Some(Ended::Client);
        }
    };
    if waited.is_err() {
        // Several tasks of one connection may wait here and time out on the
        // same tick: the one that closes it counts the stall.
        if outbox.close() {
            node.metrics.stalled();
            tracing::info!(
                "closing a connection whose client read no reply for {:?}",
                node.config.stall_timeout
            );
        }
        return Some(Ended::Client);
    }
    outbox.is_closed().then_some(Ended::Client)
}

/// Applies requests in order and sends their replies: together at the end,
/// or sooner when they reach [`SEND_AT`] bytes or the client has too many
/// unread (then the rest waits until it reads). `Err`: it stalled or closed.
async fn apply_all<T: Transport>(
    node: &Arc<NodeState>,
    session: &mut Session,
    sink: &Arc<dyn ReplySink>,
    outbox: &Arc<Outbox<T>>,
    requests: &mut Vec<(u64, Bytes)>,
) -> Result<(), Ended> {
    let mut replies = BatchReplies::with_capacity(requests.len());
    for (id, payload) in requests.drain(..) {
        if outbox.backlogged() {
            std::mem::take(&mut replies).send(node, outbox);
            if let Some(ended) = wait_until_not(node, outbox, Outbox::backlogged).await {
                return Err(ended);
            }
        }
        let applied = apply(node, session, sink, id, &payload, &mut replies.released).await;
        replies.push(id, applied);
        if replies.bytes >= SEND_AT {
            std::mem::take(&mut replies).send(node, outbox);
        }
    }
    replies.send(node, outbox);
    Ok(())
}

/// The replies of one batch: most are sent at once; those of calls on
/// persistent objects wait, all together, for their writes to be durable (the
/// batch's writes share one fsync), in a task of their own so that the
/// connection keeps reading meanwhile.
#[derive(Default)]
struct BatchReplies {
    now: Vec<(u64, Outcome)>,
    /// Bytes of the replies in `now`.
    bytes: usize,
    durable: Vec<Durable>,
    /// Workflows: each answers from a task of its own when it ends.
    later: Vec<(u64, Later)>,
    /// Replies to parked calls the batch released: they wait for the batch's
    /// writes too, as the state that released them is one of those writes.
    released: Vec<Delivery>,
}

impl BatchReplies {
    fn with_capacity(n: usize) -> BatchReplies {
        BatchReplies {
            now: Vec::with_capacity(n),
            ..BatchReplies::default()
        }
    }

    fn push(&mut self, id: u64, applied: Applied) {
        match applied {
            Applied::Now(Some(outcome)) => {
                self.bytes += outcome.as_ref().map_or(64, Vec::len);
                self.now.push((id, outcome));
            }
            Applied::Now(None) => {}
            Applied::Durable(durable) => self.durable.push(durable),
            Applied::Later(later) => self.later.push((id, later)),
        }
    }

    fn send<T: Transport>(self, node: &Arc<NodeState>, outbox: &Arc<Outbox<T>>) {
        if !self.now.is_empty() {
            outbox.send(self.now);
        }
        for (id, later) in self.later {
            outbox.started(1);
            let outbox = Arc::clone(outbox);
            tokio::spawn(async move {
                if let Some(outcome) = later.await {
                    outbox.send(vec![(id, outcome)]);
                }
                outbox.finished(1);
            });
        }
        if self.durable.is_empty() {
            deliver(self.released);
            return;
        }
        let n = self.durable.len();
        outbox.started(n);
        let (node, outbox) = (Arc::clone(node), Arc::clone(outbox));
        let (durable, released) = (self.durable, self.released);
        tokio::spawn(async move {
            let mut replies = Vec::with_capacity(n);
            for call in durable {
                let id = call.id();
                if let Some(outcome) = call.finish(&node).await {
                    replies.push((id, outcome));
                }
            }
            outbox.send(replies);
            deliver(released);
            outbox.finished(n);
        });
    }
}
