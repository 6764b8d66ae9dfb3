//! `GET /metrics` over HTTP/1.1, for Prometheus: one request per connection,
//! answered and closed. Hand-written rather than a web framework so its
//! limits are plain: at most [`MAX_CONNECTIONS`] scrapes at once (more are
//! closed at once), a request head of at most [`MAX_HEAD`] bytes that must
//! arrive within [`HEAD_TIMEOUT`], and the answer written within the same time.

use super::listener::AcceptFailures;
use crate::state::NodeState;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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
            let _ = tokio::time::timeout(HEAD_TIMEOUT * 2, answer(stream, &node)).await;
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

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, node: &NodeState) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(()); // too slow, or gone: nothing to answer
    }
    let request_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
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
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
