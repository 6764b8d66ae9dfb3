//! The hook of the embedded default: with no server configured, the client
//! starts an in-process node on a loopback port.
//!
//! The node lives in the `crucial-server` crate, which depends on this one, so it
//! registers its starter in [`EMBEDDED_SERVERS`] through a link-time slice. A
//! binary that links `crucial-server` (every example does) gets the embedded
//! default for free.

use linkme::distributed_slice;

/// A way to start an in-process node. Registered by `crucial-server`.
#[derive(Debug)]
pub struct EmbeddedServer {
    /// Starts the node on a loopback port and returns its `host:port`.
    pub start: fn() -> Result<String, String>,
}

/// Embedded node starters linked into this binary (zero or one).
#[distributed_slice]
pub static EMBEDDED_SERVERS: [EmbeddedServer];

/// Starts the embedded node; the error says why there is none.
pub(crate) fn start() -> Result<String, String> {
    let Some(server) = EMBEDDED_SERVERS.first() else {
        return Err(
            "no embedded server is linked into this binary: set it to host:port, or \
                    depend on `crucial-server` and reference it (`use crucial_server as _;` is \
                    not enough for the linker; call `crucial_server::link()` in main)"
                .into(),
        );
    };
    (server.start)().map_err(|e| format!("the embedded server did not start: {e}"))
}
