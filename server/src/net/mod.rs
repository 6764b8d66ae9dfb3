//! Sockets, and only sockets: the listener, client connections, their outbox
//! (the reply sink), and the HTTP endpoint of the metrics page.

mod clients;
mod connection;
mod listener;
mod metrics_http;
pub(crate) mod net_stream;
mod outbox;
pub(crate) mod tls;
pub(crate) mod transport;

pub use clients::Clients;
pub use listener::serve;
#[cfg(feature = "cluster")]
pub use listener::AcceptFailures;
pub use metrics_http::serve_metrics;
pub use tls::{client_config as tls_client_config, server_config as tls_server_config};
