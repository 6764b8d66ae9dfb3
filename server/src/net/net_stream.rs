//! The stream a node's own connections to other members run over (its
//! links for replication and handoffs): plain TCP, or TLS.

use super::tls::TlsTransport;
use super::transport::Transport;
use bytes::BytesMut;
use std::io;
use tokio::net::TcpStream;

/// The streams a node's own connections to other members run over: plain
/// TCP, or TLS when the node has `--tls-cert` (its members then serve TLS
/// on their peer ports too).
pub enum NetStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsTransport>),
}

impl Transport for NetStream {
    async fn readable(&self) -> io::Result<()> {
        match self {
            NetStream::Tcp(tcp) => tcp.readable().await,
            NetStream::Tls(tls) => tls.readable().await,
        }
    }

    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            NetStream::Tcp(tcp) => tcp.try_read_buf(buf),
            NetStream::Tls(tls) => tls.try_read_buf(buf),
        }
    }

    async fn writable(&self) -> io::Result<()> {
        match self {
            NetStream::Tcp(tcp) => tcp.writable().await,
            NetStream::Tls(tls) => tls.writable().await,
        }
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            NetStream::Tcp(tcp) => tcp.try_write(buf),
            NetStream::Tls(tls) => tls.try_write(buf),
        }
    }

    fn pending(&self) -> bool {
        match self {
            NetStream::Tcp(_) => false,
            NetStream::Tls(tls) => tls.pending(),
        }
    }
}
