//! `GET /metrics` over HTTP, for Prometheus.

use crate::state::NodeState;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the metrics page on `listener` until the node stops.
pub async fn serve_metrics(listener: TcpListener, node: Arc<NodeState>) -> std::io::Result<()> {
    use axum::extract::State;
    use axum::routing::get;
    let stop = Arc::clone(&node);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|State(node): State<Arc<NodeState>>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    node.render_metrics(),
                )
            }),
        )
        .with_state(node);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await
}
