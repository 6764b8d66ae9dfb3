//! The streams a client connection can run over, as one type.

use super::stream::Stream;
use super::tls::TlsStream;
use std::net::TcpStream;

/// The streams a client connection can run over, dispatched by a `match`
/// (no allocation, no virtual call on the read path the spin polls).
pub enum AnyStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the session is large, and the plain variant
    /// is the common one).
    Tls(Box<TlsStream>),
}

impl AnyStream {
    /// Sets the socket's read timeout (the handshake's bound).
    pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        match self {
            AnyStream::Tcp(tcp) => tcp.set_read_timeout(timeout),
            AnyStream::Tls(tls) => tls.tcp().set_read_timeout(timeout),
        }
    }
}

impl Stream for AnyStream {
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            AnyStream::Tcp(tcp) => Stream::read(tcp, buf),
            AnyStream::Tls(tls) => tls.read(buf),
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            AnyStream::Tcp(tcp) => Stream::try_read(tcp, buf),
            AnyStream::Tls(tls) => tls.try_read(buf),
        }
    }

    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            AnyStream::Tcp(tcp) => Stream::write_all(tcp, buf),
            AnyStream::Tls(tls) => tls.write_all(buf),
        }
    }

    fn shutdown(&self) {
        match self {
            AnyStream::Tcp(tcp) => Stream::shutdown(tcp),
            AnyStream::Tls(tls) => tls.shutdown(),
        }
    }
}
