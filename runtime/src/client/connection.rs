//! One long-lived, multiplexed connection to a node, shared by every thread of a process.
//!
//! **Writing.** A blocking caller writes its own frame, unless another caller is
//! writing: then it only appends, and that writer takes it along in its next
//! `write` (concurrent callers are batched without a timer or a hop). Async
//! tasks do the same while few requests are in flight; with many, they append
//! and a flusher thread writes everything appended since its last write in one
//! `write`, since tasks that run one after another on a runtime thread would
//! otherwise make one system call each.
//!
//! **Reading is a role** held by one thread at a time (leader/follower). A
//! blocking caller that finds the role free takes it and reads the socket
//! itself, completing every reply that arrives (other callers' included) until
//! its own is in; then it hands the role to another waiting thread, to the
//! helper thread when only async tasks wait, or frees it. A lone blocking call
//! thus costs one wake-up, the kernel waking the caller in `read`, as a Redis
//! client's does, instead of two (a reader thread, then the caller). Async tasks
//! cannot block in `read`, so the helper thread reads for them.
//!
//! Before blocking in `read`, a caller with at most one other request in flight
//! may poll the socket without blocking for a short while (the spin): on an idle core that
//! saves the core's wake-up when the reply is microseconds away. The spin turns
//! itself off for a while after it keeps missing, so callers that share cores
//! with other clients do not burn the CPU those need.

use super::any_stream::AnyStream;
use super::slot::{Reply, Slot, Woken};
use super::stream::Stream;
use crate::wire::{self, Frame, FrameDecoder, Request, ServerInfo, PROTOCOL_VERSION};
use crate::{codec, Error, RemoteError};
use bytes::BytesMut;
use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
struct WriteState {
    buf: Vec<u8>,
    writing: bool,
    closed: bool,
    /// The flusher sleeps on its condvar (so a notify, a syscall, is needed).
    flusher_idle: bool,
}

#[derive(Default)]
struct Shared {
    /// Requests in flight, by id.
    slots: HashMap<u64, Arc<Slot>>,
    /// Set once the connection failed.
    dead: Option<String>,
    /// Someone holds the reader role.
    reading: bool,
    /// The reader role was handed to the helper thread.
    helper_wanted: bool,
}

/// What the reader role works with.
struct ReadHalf {
    decoder: FrameDecoder,
    buf: BytesMut,
    chunk: Vec<u8>,
}

/// When a lone caller spins: only while the machine has an idle core (fewer
/// runnable threads than cores, sampled from `/proc/loadavg` at most every
/// 10 ms), and not for the next [`COOL_CALLS`] calls after [`MISSES_TO_COOL`]
/// spins in a row that saw nothing.
struct SpinPolicy {
    misses: AtomicU32,
    cool: AtomicU32,
}

const MISSES_TO_COOL: u32 = 4;

/// An async task writes its own frame while at most this many requests are in flight.
const DIRECT_WRITES_UP_TO: usize = 4;

/// A blocking caller may spin while at most this many requests are in flight.
const SPIN_UP_TO: usize = 2;
const COOL_CALLS: u32 = 256;

/// Whether the machine has a core no thread is running on, by the count of
/// runnable threads the kernel reports (this process's spinning threads
/// included, so many spinners stop each other). Sampled at most every 10 ms
/// for the whole process; without `/proc` it says yes.
fn idle_core() -> bool {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    static SAMPLED_AT: AtomicU64 = AtomicU64::new(0);
    static IDLE: AtomicBool = AtomicBool::new(true);
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
    let last = SAMPLED_AT.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 10
        && SAMPLED_AT
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let running = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| {
                let field = text.split_whitespace().nth(3)?;
                field.split('/').next()?.parse::<usize>().ok()
            });
        // `running` counts this thread too: an idle core is one more than that.
        IDLE.store(running.is_none_or(|r| r < cores), Ordering::Relaxed);
    }
    IDLE.load(Ordering::Relaxed)
}

impl SpinPolicy {
    fn new() -> SpinPolicy {
        SpinPolicy {
            misses: AtomicU32::new(0),
            cool: AtomicU32::new(0),
        }
    }

    /// How long this call may spin, at most `max`.
    fn budget(&self, max: Duration) -> Duration {
        if max.is_zero() {
            return max;
        }
        let cool = self.cool.load(Ordering::Relaxed);
        if cool > 0 {
            self.cool.store(cool - 1, Ordering::Relaxed);
            return Duration::ZERO;
        }
        if !idle_core() {
            return Duration::ZERO;
        }
        max
    }

    /// A spin ended with data (`hit`) or without.
    fn record(&self, hit: bool) {
        if hit {
            self.misses.store(0, Ordering::Relaxed);
        } else if self.misses.fetch_add(1, Ordering::Relaxed) + 1 >= MISSES_TO_COOL {
            self.misses.store(0, Ordering::Relaxed);
            self.cool.store(COOL_CALLS, Ordering::Relaxed);
        }
    }
}

/// A connection to one node.
pub struct Connection {
    addr: String,
    stream: AnyStream,
    write: Mutex<WriteState>,
    flush: Condvar,
    shared: Mutex<Shared>,
    helper: Condvar,
    reader: Mutex<ReadHalf>,
    spin: SpinPolicy,
    server: ServerInfo,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Connection {
    /// Connects, performs the `Hello` handshake and starts the reader thread.
    pub fn open(
        addr: &str,
        client_id: u64,
        token: Option<&super::Token>,
        tls: Option<&super::Tls>,
        max_frame: usize,
        connect_timeout: Duration,
    ) -> Result<Arc<Connection>, Error> {
        let fail = |reason: String| Error::Connect {
            addr: addr.to_string(),
            reason,
        };
        let sockaddrs: Vec<_> = addr
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve: {e}")))?
            .collect();
        let mut last = String::from("no address");
        let mut stream = None;
        for sa in sockaddrs {
            match TcpStream::connect_timeout(&sa, connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let stream = stream.ok_or_else(|| fail(last))?;
        stream.set_nodelay(true).map_err(|e| fail(e.to_string()))?;

        // Handshake, synchronously, before any other traffic.
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_id,
            token: token.map(|t| wire::Token(t.expose())),
        }
        .encode()?;
        let mut frame = Vec::new();
        wire::write_frame(&mut frame, 0, &hello);
        stream
            .set_read_timeout(Some(connect_timeout))
            .map_err(|e| fail(e.to_string()))?;
        let stream = match tls {
            None => AnyStream::Tcp(stream),
            Some(tls) => AnyStream::Tls(Box::new(tls.connect(addr, stream).map_err(fail)?)),
        };
        stream.write_all(&frame).map_err(|e| fail(e.to_string()))?;
        let mut decoder = FrameDecoder::new(max_frame);
        let mut buf = BytesMut::new();
        let mut chunk = [0u8; 4096];
        let reply = loop {
            if let Some(frame) = decoder.decode(&mut buf) {
                break frame;
            }
            let n =
                Stream::read(&stream, &mut chunk).map_err(|e| fail(format!("handshake: {e}")))?;
            if n == 0 {
                return Err(fail("closed during handshake".into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let Frame::Complete { payload, .. } = reply else {
            return Err(fail("oversized handshake reply".into()));
        };
        let server: ServerInfo = decode_reply(&payload, addr)
            .and_then(|b| codec::decode(&b))
            .map_err(|e| fail(format!("handshake refused: {e}")))?;
        stream
            .set_read_timeout(None)
            .map_err(|e| fail(e.to_string()))?;

        let conn = Arc::new(Connection {
            addr: addr.to_string(),
            stream,
            write: Mutex::default(),
            flush: Condvar::new(),
            shared: Mutex::default(),
            helper: Condvar::new(),
            reader: Mutex::new(ReadHalf {
                decoder,
                buf,
                chunk: vec![0u8; 64 * 1024],
            }),
            spin: SpinPolicy::new(),
            server,
        });
        let for_helper = Arc::clone(&conn);
        std::thread::Builder::new()
            .name(format!("crucial-reader-{addr}"))
            .spawn(move || for_helper.helper_loop())
            .map_err(|e| fail(format!("cannot start the reader thread: {e}")))?;
        let for_flusher = Arc::clone(&conn);
        std::thread::Builder::new()
            .name(format!("crucial-flusher-{addr}"))
            .spawn(move || for_flusher.flush_loop())
            .map_err(|e| fail(format!("cannot start flusher thread: {e}")))?;
        Ok(conn)
    }

    /// What the node said in the handshake.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    /// Whether the connection has failed (a new one must be opened).
    pub fn is_dead(&self) -> bool {
        lock(&self.shared).dead.is_some()
    }

    /// Sends a request and blocks for its reply, reading the socket itself when
    /// no one else does. `spin`: how long a caller alone on the connection may
    /// poll before it sleeps in `read`.
    pub fn call(&self, id: u64, payload: &[u8], spin: Duration) -> Reply {
        let slot = Slot::blocking();
        let alone_now;
        let (alone, lead) = {
            let mut shared = lock(&self.shared);
            if let Some(reason) = &shared.dead {
                return Err(self.disconnected(reason));
            }
            shared.slots.insert(id, Arc::clone(&slot));
            let lead = !shared.reading;
            shared.reading = true;
            alone_now = shared.slots.len() == 1;
            (shared.slots.len() <= SPIN_UP_TO, lead)
        };
        // A lone request is written by its caller; with company, the flusher
        // batches frames (many small writes would reach the node as many small
        // reads, each answered alone).
        if let Err(e) = self.send(id, payload, alone_now) {
            self.fail_all(&format!("write failed: {e}"));
        }
        // With few requests in flight, a waiter may spin (only while a core is
        // idle): a reply or a hand-off that comes within the spin then costs no
        // wake-up. With many, it would burn the cores the others need.
        let spin = if alone { spin } else { Duration::ZERO };
        if lead {
            return self.lead(&slot, spin);
        }
        let wait = if idle_core() { spin } else { Duration::ZERO };
        match slot.wait_spinning(wait) {
            Woken::Reply(reply) => reply,
            Woken::Lead => self.lead(&slot, spin),
        }
    }

    /// Sends a request for an async task and returns the slot its reply will
    /// land in; the helper thread reads if no one else does.
    pub fn start_async(&self, id: u64, payload: &[u8]) -> Result<Arc<Slot>, Error> {
        let slot = Slot::for_task();
        let few = {
            let mut shared = lock(&self.shared);
            if let Some(reason) = &shared.dead {
                return Err(self.disconnected(reason));
            }
            shared.slots.insert(id, Arc::clone(&slot));
            if !shared.reading {
                shared.reading = true;
                shared.helper_wanted = true;
                self.helper.notify_one();
            }
            shared.slots.len() <= DIRECT_WRITES_UP_TO
        };
        // A task writes its own frame while few requests are in flight; with
        // many, tasks run one after another on their runtime's threads, so the
        // flusher batches their frames into one write instead.
        if let Err(e) = self.send(id, payload, few) {
            self.fail_all(&format!("write failed: {e}"));
        }
        Ok(slot)
    }

    /// Holds the reader role until `mine` has its reply, then passes the role on.
    fn lead(&self, mine: &Slot, spin: Duration) -> Reply {
        self.read_until(|| mine.is_done(), spin);
        self.hand_off();
        mine.take()
            .unwrap_or_else(|| Err(self.disconnected("no reply after reading")))
    }

    /// Passes the reader role on: to a waiting thread (it reads for everyone
    /// until its own reply comes), else to the helper when only tasks wait,
    /// else nobody.
    fn hand_off(&self) {
        let mut shared = lock(&self.shared);
        if shared.dead.is_some() || shared.slots.is_empty() {
            shared.reading = false;
            return;
        }
        if let Some(next) = shared.slots.values().find(|s| s.is_blocking()) {
            next.promote();
            return;
        }
        shared.helper_wanted = true;
        self.helper.notify_one();
    }

    /// The helper thread: holds the reader role for async tasks.
    fn helper_loop(self: Arc<Self>) {
        loop {
            {
                let mut shared = lock(&self.shared);
                while !shared.helper_wanted && shared.dead.is_none() {
                    shared = self.helper.wait(shared).unwrap_or_else(|e| e.into_inner());
                }
                if shared.dead.is_some() {
                    return;
                }
                shared.helper_wanted = false;
            }
            // Read while tasks wait; a waiting thread takes the role over.
            self.read_until(
                || {
                    let shared = lock(&self.shared);
                    shared.slots.is_empty() || shared.slots.values().any(|s| s.is_blocking())
                },
                Duration::ZERO,
            );
            self.hand_off();
        }
    }

    /// Reads and delivers replies until `done()` holds or the connection fails.
    fn read_until(&self, done: impl Fn() -> bool, spin: Duration) {
        let mut half = lock(&self.reader);
        let half = &mut *half;
        loop {
            while let Some(frame) = half.decoder.decode(&mut half.buf) {
                self.deliver(frame);
            }
            if done() || self.is_dead() {
                return;
            }
            match self.fill(half, spin) {
                Ok(0) => self.fail_all("closed by the server"),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => self.fail_all(&e.to_string()),
            }
        }
    }

    /// Reads what the socket has: first polling without blocking for up to
    /// `spin` (a budget from the spin policy), then blocking.
    fn fill(&self, half: &mut ReadHalf, spin: Duration) -> std::io::Result<usize> {
        let budget = self.spin.budget(spin);
        if !budget.is_zero() {
            let start = Instant::now();
            let mut polls = 0u32;
            loop {
                match self.stream.try_read(&mut half.chunk) {
                    Ok(n) => {
                        self.spin.record(true);
                        half.buf.extend_from_slice(&half.chunk[..n]);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                std::hint::spin_loop();
                polls += 1;
                if polls % 16 == 0 && start.elapsed() > budget {
                    self.spin.record(false);
                    break;
                }
            }
        }
        let n = self.stream.read(&mut half.chunk)?;
        half.buf.extend_from_slice(&half.chunk[..n]);
        Ok(n)
    }

    /// Completes the slot a reply frame answers.
    fn deliver(&self, frame: Frame) {
        let (id, reply) = match frame {
            Frame::Complete { id, payload } => (id, decode_reply(&payload, &self.addr)),
            Frame::TooLarge { id, size } => (
                id,
                Err(Error::Decode(format!(
                    "reply of {size} bytes exceeds this client's frame limit"
                ))),
            ),
        };
        let slot = lock(&self.shared).slots.remove(&id);
        if let Some(slot) = slot {
            slot.complete(reply);
        }
    }

    /// Appends a frame. With `direct`, the caller writes it now unless someone
    /// is writing (that writer loops until the buffer is empty); otherwise the
    /// flusher sends it with the others.
    fn send(&self, id: u64, payload: &[u8], direct: bool) -> std::io::Result<()> {
        let mut state = lock(&self.write);
        wire::write_frame(&mut state.buf, id, payload);
        if state.writing {
            return Ok(()); // the active writer loops until the buffer is empty
        }
        if !direct {
            if state.flusher_idle {
                state.flusher_idle = false;
                self.flush.notify_one();
            }
            return Ok(());
        }
        self.write_out(state).map(|_| ())
    }

    /// Writes the buffer until it stays empty. Only one writer at a time.
    fn write_out<'a>(
        &'a self,
        mut state: MutexGuard<'a, WriteState>,
    ) -> std::io::Result<MutexGuard<'a, WriteState>> {
        state.writing = true;
        let mut spare = Vec::new();
        loop {
            let batch = std::mem::replace(&mut state.buf, spare);
            drop(state);
            let result = self.stream.write_all(&batch);
            state = lock(&self.write);
            spare = batch;
            spare.clear();
            if result.is_err() || state.buf.is_empty() {
                state.writing = false;
                if state.buf.capacity() < spare.capacity() {
                    state.buf = spare;
                }
                return result.map(|_| state);
            }
        }
    }

    /// The flusher thread: writes what concurrent callers appended.
    fn flush_loop(self: Arc<Self>) {
        let mut state = lock(&self.write);
        loop {
            while (state.buf.is_empty() || state.writing) && !state.closed {
                state.flusher_idle = true;
                state = self.flush.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.flusher_idle = false;
            if state.closed {
                return;
            }
            match self.write_out(state) {
                Ok(next) => state = next,
                Err(e) => {
                    self.fail_all(&format!("write failed: {e}"));
                    return;
                }
            }
        }
    }

    fn disconnected(&self, reason: &str) -> Error {
        Error::Disconnected {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    /// Marks the connection dead and fails every pending call.
    fn fail_all(&self, reason: &str) {
        let slots: Vec<_> = {
            let mut shared = lock(&self.shared);
            if shared.dead.is_none() {
                shared.dead = Some(reason.to_string());
            }
            self.helper.notify_all();
            shared.slots.drain().map(|(_, s)| s).collect()
        };
        for slot in slots {
            slot.complete(Err(self.disconnected(reason)));
        }
        {
            let mut write = lock(&self.write);
            write.closed = true;
            write.buf.clear();
        }
        self.flush.notify_all();
        self.stream.shutdown();
    }

    /// Closes the connection; pending calls fail with `Disconnected`.
    pub fn close(&self) {
        self.fail_all("closed by the client");
    }
}

/// The value bytes of a reply payload, or the node's error (naming the node
/// by the address this client reached it at, where the error names a node).
fn decode_reply(payload: &bytes::Bytes, addr: &str) -> Reply {
    wire::decode_reply(payload)?.map_err(|mut remote| {
        if let RemoteError::UnknownType { node, .. } = &mut remote {
            if node.is_empty() {
                *node = addr.to_string();
            }
        }
        Error::Remote(remote)
    })
}
