//! The admin plane: a gRPC service (tonic, from `proto/admin.proto`) beside
//! the framed data-plane wire, and `crucial-admin`, its command-line client.
//! People get tables, scripts get `--json`; an error names the node that failed.
//! Compiled with the `cluster` feature.

pub mod cli;
mod incoming;
/// The code generated from `proto/admin.proto` (`cargo xtask codegen`, committed).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb;
mod service;

pub use service::AdminService;

/// Serves the admin plane on `listener` until the node stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: AdminService,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = incoming::incoming(listener);
    tonic::transport::Server::builder()
        .add_service(pb::admin_server::AdminServer::new(service))
        .serve_with_incoming_shutdown(incoming, stop)
        .await
}
