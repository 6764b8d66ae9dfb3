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

/// Serves the admin plane on `listener` until the node stops. With
/// credentials, every request must carry an admin's token
/// (`authorization: Bearer TOKEN`); others get `UNAUTHENTICATED` and
/// nothing runs.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: AdminService,
    auth: Option<std::sync::Arc<crate::auth::Auth>>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = incoming::incoming(listener);
    let check = move |request: tonic::Request<()>| {
        let Some(auth) = &auth else {
            return Ok(request);
        };
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match auth.admin(token) {
            Ok(()) => Ok(request),
            Err(reason) => {
                tracing::warn!("an admin request was refused: {reason}");
                Err(tonic::Status::unauthenticated(format!(
                    "{reason}; crucial-admin reads it from CRUCIAL_ADMIN_TOKEN or \
                     CRUCIAL_ADMIN_TOKEN_FILE"
                )))
            }
        }
    };
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .add_service(pb::admin_server::AdminServer::with_interceptor(
            service, check,
        ))
        .serve_with_incoming_shutdown(incoming, stop)
        .await
}
