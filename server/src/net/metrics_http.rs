//! `GET /metrics` over HTTP/1.1, for Prometheus: one request per connection,
//! answered and closed. Hand-written rather than a web framework so its
//! limits are plain: at most [`MAX_CONNECTIONS`] scrapes at once (more are
//! closed at once), a request head of at most [`MAX_HEAD`] bytes that must
//! arrive within [`HEAD_TIMEOUT`], and the answer written within the same time.

use super::listener::AcceptFailures;
use super::tls::{Refused, TlsTransport};
use super::transport::{read_more, write_all, Transport};
use crate::state::NodeState;
use bytes::BytesMut;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Scrapes served at once.
const MAX_CONNECTIONS: usize = 64;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// Time a scraper has to send its request, and then to read the answer.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the metrics page on `listener` until the node stops.
pub async fn serve_metrics(listener: TcpListener, node: Arc<NodeState>) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut stop = node.stop_signal();
    let mut failing = AcceptFailures::default();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tokio::time::sleep(failing.failed(&e)).await;
                    continue;
                }
            },
            _ = stop.stopped() => return Ok(()),
        };
        failing.recovered();
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("metrics connection refused: {MAX_CONNECTIONS} already open");
            continue; // dropped: closed at once
        };
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HEAD_TIMEOUT * 2, async {
                match &node.tls {
                    None => answer(stream, &node).await,
                    // HTTPS with the node's certificate (the page is behind
                    // the admin token, which must not cross in clear).
                    Some(tls) => match TlsTransport::accept(stream, Arc::clone(tls)).await {
                        Ok(tls) => answer(tls, &node).await,
                        Err(Refused::NotTls(plain)) => {
                            // Its request read first: closing on unread
                            // bytes would reset the connection before the
                            // client reads why.
                            let _ = read_head(&plain).await;
                            let body = "this port speaks HTTPS, not HTTP\n";
                            let said = format!(
                                "HTTP/1.1 400 Bad Request\r\ncontent-length: {}\r\n\
                                 connection: close\r\n\r\n{body}",
                                body.len()
                            );
                            write_all(&plain, said.as_bytes()).await
                        }
                        Err(Refused::Io(e)) => Err(e),
                    },
                }
            })
            .await;
            drop(slot);
        });
    }
}

/// The token of an `Authorization: Bearer TOKEN` header of `head`.
fn bearer(head: &[u8]) -> Option<&str> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("authorization") {
            return None;
        }
        value.trim().strip_prefix("Bearer ").map(str::trim)
    })
}

/// A request head (within [`HEAD_TIMEOUT`]; `None`: too slow, or gone).
async fn read_head<T: Transport>(stream: &T) -> Option<BytesMut> {
    let mut head = BytesMut::with_capacity(1024);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            if read_more(stream, &mut head).await? == 0 {
                break;
            }
        }
        Ok::<_, io::Error>(())
    })
    .await;
    matches!(read, Ok(Ok(()))).then_some(head)
}

/// Reads one request head and answers it.
async fn answer<T: Transport>(stream: T, node: &NodeState) -> io::Result<()> {
    let Some(head) = read_head(&stream).await else {
        return Ok(()); // too slow, or gone: nothing to answer
    };
    let request_line = head[..].split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let refused = node
        .auth
        .as_ref()
        .and_then(|auth| auth.admin(bearer(&head)).err());
    let (status, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) if refused.is_some() => (
            "401 Unauthorized",
            format!("{}\n", refused.unwrap_or_default()),
        ),
        (Some(b"GET"), Some(b"/metrics")) => ("200 OK", node.render_metrics()),
        (Some(b"GET"), _) => ("404 Not Found", "only /metrics is served here\n".into()),
        _ => ("405 Method Not Allowed", "only GET is served here\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    write_all(&stream, response.as_bytes()).await
}
