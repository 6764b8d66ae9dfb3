//! Accepting connections until the node stops, then waiting for them to finish.

use super::connection;
use crate::state::NodeState;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Serves every connection on `listener`, each on its own task, until the node
/// stops; then stops accepting (the socket closes) and returns once every
/// connection has finished its clean stop.
pub async fn serve(listener: TcpListener, node: Arc<NodeState>) -> io::Result<()> {
    let mut connections = JoinSet::new();
    let mut stop = node.stop_signal();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "client connected");
                    connections.spawn(connection::serve(stream, Arc::clone(&node)));
                }
                Err(e) => {
                    // Running out of descriptors must not kill the node.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
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
