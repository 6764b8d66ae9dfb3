//! The embedded node: what this crate registers in the `crucial` runtime's
//! embedded-default hook, so a client with no server configured starts one here.

use crate::config::{Flavor, NodeConfig};
use crucial::__private::{EmbeddedServer, EMBEDDED_SERVERS};
use linkme::distributed_slice;

/// Referenced by [`crate::link`] so the linker keeps this object file.
pub(crate) static LINKED: u8 = 0;

#[distributed_slice(EMBEDDED_SERVERS)]
static EMBEDDED: EmbeddedServer = EmbeddedServer { start };

/// The embedded node: loopback, a free port, one runtime thread (the local cloud
/// threads use the other cores).
fn start() -> Result<String, String> {
    let config = NodeConfig {
        listen: "127.0.0.1:0".into(),
        flavor: Flavor::CurrentThread,
        workers: 1,
        ..NodeConfig::default()
    };
    crate::node::spawn(config)
        .map(|addr| addr.to_string())
        .map_err(|e| e.to_string())
}
