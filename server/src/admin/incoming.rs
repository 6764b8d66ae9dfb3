//! The admin listener's connections, within limits: at most
//! [`MAX_CONNECTIONS`] at once (more are closed at once), each closed after
//! [`IDLE_TIMEOUT`] without a byte from its client (longer than a drain may
//! take to answer), and accept errors waited out instead of ending the server.

use crate::net::AcceptFailures;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Admin connections at once.
const MAX_CONNECTIONS: usize = 64;

/// An admin connection silent this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The listener's connections as the stream tonic serves: accepted by a task
/// of their own, which waits out accept errors (tonic would stop at one).
pub fn incoming(listener: TcpListener) -> impl tokio_stream::Stream<Item = io::Result<Limited>> {
    let (accepted, stream) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut failing = AcceptFailures::default();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tokio::time::sleep(failing.failed(&e)).await;
                    continue;
                }
            };
            failing.recovered();
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::debug!("admin connection refused: {MAX_CONNECTIONS} already open");
                continue; // dropped: closed at once
            };
            if accepted.send(Ok(Limited::new(stream, slot))).await.is_err() {
                return; // the admin plane stopped
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(stream)
}

/// A connection of the admin plane: counted while it is open, closed when
/// its client stays silent too long.
pub struct Limited {
    inner: TcpStream,
    idle: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Limited {
    fn new(inner: TcpStream, slot: OwnedSemaphorePermit) -> Limited {
        Limited {
            inner,
            idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
            _slot: slot,
        }
    }
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.idle.as_mut().reset(Instant::now() + IDLE_TIMEOUT);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "admin connection idle too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
