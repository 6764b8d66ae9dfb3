//! The byte stream a connection runs over. The connection's reader and its
//! outbox share it: the reader waits until it is readable and takes what
//! arrived; a reply is written with `try_write` by whichever thread produced
//! it (no task hop), and only when the stream is full does the outbox's
//! flusher wait until it is writable. Plain TCP implements it by handing
//! each call to tokio's `TcpStream`; a TLS stream can implement it over
//! rustls (records encrypted into a buffer under a lock, then `try_write` of
//! the ciphertext to the same TCP stream), which is why nothing here needs a
//! task context or exclusive access.

use bytes::BytesMut;
use std::future::Future;
use std::io;
use tokio::net::TcpStream;

/// A connection's byte stream (see the module's documentation).
pub trait Transport: Send + Sync + 'static {
    /// Resolves once a read may make progress.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_;
    /// Appends what arrived to `buf` without waiting (`WouldBlock`: nothing
    /// yet; `Ok(0)`: closed by the peer).
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
    /// Resolves once a write may make progress.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_;
    /// Writes what fits now without waiting (`WouldBlock`: nothing fits).
    /// With an empty `buf`, writes only what an earlier write left pending.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Whether bytes taken by `try_write` still wait to reach the socket (a
    /// TLS stream's last record, when the socket was full): the outbox's
    /// flusher writes them (`try_write(&[])`) once it is writable.
    fn pending(&self) -> bool {
        false
    }
}

/// Writes all of `bytes`, and what an earlier write left pending, waiting
/// for the stream as needed (for the few writes outside a connection's
/// outbox: a link's handshake, a metrics answer).
pub async fn write_all<T: Transport>(stream: &T, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() || stream.pending() {
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends to `buf` what arrives, waiting until something does (`Ok(0)`:
/// the peer closed).
pub async fn read_more<T: Transport>(stream: &T, buf: &mut BytesMut) -> io::Result<usize> {
    loop {
        match stream.try_read_buf(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.readable().await?,
            read => return read,
        }
    }
}

impl Transport for TcpStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        TcpStream::readable(self)
    }

    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        TcpStream::writable(self)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, buf)
    }
}
