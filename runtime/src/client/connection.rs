//! One long-lived, multiplexed connection to a node, shared by every thread of a process.
//!
//! A request that is alone on the connection is written by its caller at once
//! (the sequential fast path: no hop through another thread). When other
//! requests are in flight, the caller only appends its frame and a flusher
//! thread writes everything appended since its last write in one `write`, so
//! concurrent callers are batched without a timer. One reader thread per
//! connection decodes replies and completes the matching [`Slot`], waking the
//! blocked thread or async task.

use super::slot::{Reply, Slot};
use crate::wire::{self, Frame, FrameDecoder, Request, ServerInfo, PROTOCOL_VERSION};
use crate::{codec, Error, RemoteError};
use bytes::BytesMut;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Default)]
struct WriteState {
    buf: Vec<u8>,
    writing: bool,
    closed: bool,
    /// The flusher sleeps on its condvar (so a notify, a syscall, is needed).
    flusher_idle: bool,
}

#[derive(Default)]
struct Pending {
    slots: HashMap<u64, Arc<Slot>>,
    dead: Option<String>,
}

/// A connection to one node.
pub struct Connection {
    addr: String,
    stream: TcpStream,
    write: Mutex<WriteState>,
    flush: Condvar,
    pending: Mutex<Pending>,
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
        let mut stream = stream.ok_or_else(|| fail(last))?;
        stream.set_nodelay(true).map_err(|e| fail(e.to_string()))?;

        // Handshake, synchronously, before any other traffic.
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_id,
        }
        .encode()?;
        let mut frame = Vec::new();
        wire::write_frame(&mut frame, 0, &hello);
        stream
            .set_read_timeout(Some(connect_timeout))
            .map_err(|e| fail(e.to_string()))?;
        stream.write_all(&frame).map_err(|e| fail(e.to_string()))?;
        let mut decoder = FrameDecoder::new(max_frame);
        let mut buf = BytesMut::new();
        let mut chunk = [0u8; 4096];
        let reply = loop {
            if let Some(frame) = decoder.decode(&mut buf) {
                break frame;
            }
            let n = stream
                .read(&mut chunk)
                .map_err(|e| fail(format!("handshake: {e}")))?;
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

        let reader = stream.try_clone().map_err(|e| fail(e.to_string()))?;
        let conn = Arc::new(Connection {
            addr: addr.to_string(),
            stream,
            write: Mutex::default(),
            flush: Condvar::new(),
            pending: Mutex::default(),
            server,
        });
        let for_reader = Arc::clone(&conn);
        std::thread::Builder::new()
            .name(format!("crucial-reader-{addr}"))
            .spawn(move || for_reader.read_loop(reader, decoder, buf, max_frame))
            .map_err(|e| fail(format!("cannot start reader thread: {e}")))?;
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
        lock(&self.pending).dead.is_some()
    }

    /// Sends a request and returns the slot its reply will land in, and whether
    /// it was the only request in flight on this connection.
    pub fn start(&self, id: u64, payload: &[u8]) -> Result<(Arc<Slot>, bool), Error> {
        let slot = Slot::new();
        let alone = {
            let mut pending = lock(&self.pending);
            if let Some(reason) = &pending.dead {
                return Err(self.disconnected(reason));
            }
            pending.slots.insert(id, Arc::clone(&slot));
            pending.slots.len() == 1
        };
        if let Err(e) = self.send(id, payload, alone) {
            self.fail_all(&format!("write failed: {e}"));
        }
        Ok((slot, alone))
    }

    /// Appends a frame. A lone request is written now by its caller; otherwise
    /// the flusher (or whoever is writing) sends it with the others.
    fn send(&self, id: u64, payload: &[u8], alone: bool) -> std::io::Result<()> {
        let mut state = lock(&self.write);
        wire::write_frame(&mut state.buf, id, payload);
        if state.writing {
            return Ok(()); // the active writer loops until the buffer is empty
        }
        if !alone {
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
            let result = (&self.stream).write_all(&batch);
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
            let mut pending = lock(&self.pending);
            if pending.dead.is_none() {
                pending.dead = Some(reason.to_string());
            }
            pending.slots.drain().map(|(_, s)| s).collect()
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
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Closes the connection; pending calls fail with `Disconnected`.
    pub fn close(&self) {
        self.fail_all("closed by the client");
    }

    fn read_loop(
        self: Arc<Self>,
        mut stream: TcpStream,
        mut decoder: FrameDecoder,
        mut buf: BytesMut,
        _max_frame: usize,
    ) {
        let mut chunk = vec![0u8; 64 * 1024];
        let reason = loop {
            while let Some(frame) = decoder.decode(&mut buf) {
                let (id, reply) = match frame {
                    Frame::Complete { id, payload } => (id, decode_reply(&payload, &self.addr)),
                    Frame::TooLarge { id, size } => (
                        id,
                        Err(Error::Decode(format!(
                            "reply of {size} bytes exceeds this client's frame limit"
                        ))),
                    ),
                };
                let slot = lock(&self.pending).slots.remove(&id);
                if let Some(slot) = slot {
                    slot.complete(reply);
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) => break "closed by the server".to_string(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break e.to_string(),
            }
        };
        self.fail_all(&reason);
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
