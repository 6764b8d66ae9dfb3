//! Sockets, and only sockets: the listener, client connections, their outbox
//! (the reply sink), and the HTTP endpoint of the metrics page.

mod connection;
mod listener;
mod metrics_http;
mod outbox;

pub use listener::serve;
pub use metrics_http::serve_metrics;
