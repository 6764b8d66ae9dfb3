//! Connections to the other members, on their peer ports: one per member,
//! opened on first use, reopened after it broke, every request bounded by a
//! timeout (a peer that does not answer counts as broken). The handoff sends
//! through it; replica chains and commits across nodes will too.

use super::member::Cluster;
use crate::state::NodeState;
use crucial::__private::peer::Peer;
use crucial_protocol::wire::Request;
use std::collections::HashMap;
use std::time::Duration;

/// How long opening a connection to a peer may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);

/// How long a peer may take to answer one request.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// This node's connections to the other members, for a thread that blocks on
/// their answers (the runtime drives the requests).
pub struct PeerPool {
    open: HashMap<String, Peer>,
    rt: tokio::runtime::Handle,
}

impl PeerPool {
    /// An empty pool whose requests run on `rt`.
    pub fn new(rt: tokio::runtime::Handle) -> PeerPool {
        PeerPool {
            open: HashMap::new(),
            rt,
        }
    }

    /// The runtime the pool's requests run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    /// Sends `request` to member `addr` (its data address) on its peer port
    /// and waits for the answer.
    pub fn request<R: serde::de::DeserializeOwned>(
        &mut self,
        node: &NodeState,
        cluster: &Cluster,
        addr: &str,
        request: &Request<'_>,
    ) -> crucial::Result<R> {
        if self.open.get(addr).is_none_or(Peer::is_dead) {
            let peer_port = cluster
                .peer_of(addr)
                .ok_or_else(|| crucial::Error::Connect {
                    addr: addr.to_string(),
                    reason: "the member has not said where its peer port is (yet)".into(),
                })?;
            let token = node.auth.as_ref().and_then(|auth| auth.cluster_token());
            let peer = Peer::connect(
                &peer_port,
                node.peer_id,
                token.as_ref(),
                node.peer_tls.as_ref().map(|t| &t.peers),
                node.config.max_frame,
                CONNECT_WITHIN,
            )?;
            self.open.insert(addr.to_string(), peer);
        }
        let peer = &self.open[addr];
        let reply = self.rt.block_on(peer.request(request, ANSWER_WITHIN));
        if reply.is_err() && peer.is_dead() {
            self.open.remove(addr);
        }
        reply
    }
}
