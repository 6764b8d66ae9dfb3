//! Accepting connections until the node stops, then waiting for them to finish.

use super::connection;
use crate::request::Plane;
use crate::state::NodeState;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Serves every connection on `listener`, each on its own task, until the node
/// stops; then stops accepting (the socket closes) and returns once every
/// connection has finished its clean stop. Past `--max-connections` a new
/// connection is told so and closed. `plane` says which listener it is: the
/// data port, or a cluster member's peer port.
pub async fn serve(listener: TcpListener, node: Arc<NodeState>, plane: Plane) -> io::Result<()> {
    let mut connections = JoinSet::new();
    let mut stop = node.stop_signal();
    let mut failing = AcceptFailures::default();
    let members = match plane {
        Plane::Client => Arc::clone(&node.clients),
        Plane::Peer => Arc::clone(&node.peers),
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    failing.recovered();
                    match members.join() {
                        Some(member) => {
                            tracing::debug!(%peer, ?plane, "connected");
                            let _ = stream.set_nodelay(true);
                            let node = Arc::clone(&node);
                            match &node.tls {
                                Some(tls) => {
                                    let tls = Arc::clone(tls);
                                    connections.spawn(serve_tls(stream, tls, node, member, plane));
                                }
                                None => {
                                    connections.spawn(connection::serve(stream, node, member, plane));
                                }
                            }
                        }
                        None => {
                            tracing::debug!(%peer, ?plane, "connection refused: its limit is reached");
                            connection::refuse(stream, &node, members.max_connections());
                        }
                    }
                }
                Err(e) => tokio::time::sleep(failing.failed(&e)).await,
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.stopped() => break,
        }
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "stopping: no new connections"
    );
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A connection to a TLS port: the handshake (within the handshake
/// timeout), then the connection over it. A client that speaks plain frames
/// is told, in a plain frame, that the port speaks TLS.
async fn serve_tls(
    stream: tokio::net::TcpStream,
    tls: Arc<rustls::ServerConfig>,
    node: Arc<NodeState>,
    member: Arc<super::clients::Member>,
    plane: Plane,
) {
    let within = node.config.handshake_timeout;
    match tokio::time::timeout(within, super::tls::TlsTransport::accept(stream, tls)).await {
        Ok(Ok(transport)) => connection::serve(transport, node, member, plane).await,
        Ok(Err(super::tls::Refused::NotTls(stream))) => {
            connection::tell_tls_expected(stream, &node)
        }
        Ok(Err(super::tls::Refused::Io(e))) => tracing::debug!("a TLS handshake failed: {e}"),
        Err(_) => tracing::debug!("a TLS handshake did not finish in {within:?}"),
    }
}

/// Accept errors (out of descriptors, mostly) must neither kill the node nor
/// spin: each failure in a row waits twice as long (1 ms to 1 s), and the log
/// says so once a second with the count, not at every failure.
#[derive(Default)]
pub struct AcceptFailures {
    in_a_row: u32,
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl AcceptFailures {
    /// Records a failure; how long to wait before accepting again.
    pub fn failed(&mut self, error: &io::Error) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.unlogged += 1;
        if self
            .logged_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(
                failures = self.unlogged,
                "accept failed: {error} (waiting before accepting again; lower \
                 --max-connections below the descriptor limit if this lasts)"
            );
            self.unlogged = 0;
            self.logged_at = Some(Instant::now());
        }
        Duration::from_millis(1 << (self.in_a_row.min(11) - 1))
    }

    /// An accept succeeded.
    pub fn recovered(&mut self) {
        self.in_a_row = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_to_a_second() {
        let mut failing = AcceptFailures::default();
        let error = io::Error::other("too many open files");
        let waits: Vec<u64> = (0..12)
            .map(|_| failing.failed(&error).as_millis() as u64)
            .collect();
        assert_eq!(waits[..4], [1, 2, 4, 8]);
        assert_eq!(*waits.last().expect("waits"), 1024);
        failing.recovered();
        assert_eq!(failing.failed(&error), Duration::from_millis(1));
    }
}
