//! The embedded default: with no server configured, the client starts an
//! in-process server on a loopback port.
//!
//! The server lives in the `crucial-server` crate, which depends on this one, so
//! it registers its starter here through a link-time slice. A binary that links
//! `crucial-server` (every example does) gets the embedded default for free.

use crate::Error;
use linkme::distributed_slice;

/// A way to start an in-process server. Registered by `crucial-server`.
#[derive(Debug)]
pub struct EmbeddedServer {
    /// Starts the server on a loopback port and returns its `host:port`.
    pub start: fn() -> Result<String, String>,
}

/// Embedded server starters linked into this binary (zero or one).
#[distributed_slice]
pub static EMBEDDED_SERVERS: [EmbeddedServer];

/// Starts the embedded server.
pub fn start() -> Result<String, Error> {
    let Some(server) = EMBEDDED_SERVERS.first() else {
        return Err(Error::Config(format!(
            "{} is not set and no embedded server is linked into this binary: set {}=host:port, \
             or depend on `crucial-server` and reference it (`use crucial_server as _;` is not \
             enough for the linker; call `crucial_server::link()` in main)",
            crate::client::ENV_SERVER,
            crate::client::ENV_SERVER
        )));
    };
    (server.start)().map_err(|e| Error::Config(format!("cannot start the embedded server: {e}")))
}
