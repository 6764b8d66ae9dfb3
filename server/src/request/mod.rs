//! The apply step: one decoded request becomes one outcome.
//!
//! [`apply`] is the single place every request passes between the connection
//! that read it and the reply sink that answers it, so it is where later work
//! plugs in, each in one spot of [`call::call`]:
//!
//! * **ownership check** (cluster, `route.rs`, the one place the apply step
//!   asks where an object is): after the method is resolved, before anything
//!   runs, a node that does not own the object answers a redirect;
//! * **OCC validation** (lambda objects): where the call runs on its object;
//! * **log append / chain forward** (durable node, replication): after the
//!   call ran and before its outcome is recorded for dedup and returned, so no
//!   reply leaves before its effect is durable or replicated.
//!
//! Calls of lambda objects' functions go to [`invoke`] (the ownership check
//! and OCC validation have their places there too); control requests
//! (handshake, create, delete, listings) go to [`control`]. A retried request
//! is answered from the dedup table in `retry.rs`; every kind waits for its
//! writes with `NodeState::durable`. Node-to-node requests (handoffs) are
//! taken only on a member's peer port ([`Plane::Peer`]).

pub mod call;
pub mod control;
mod retry;
mod route;
mod txn;
#[cfg(feature = "cluster")]
pub use txn::{install, resolve_waiting};
pub mod workflow;

pub use call::{Applied, Durable};

use crate::shared_objects::{Delivery, ReplySink};
use crate::state::NodeState;
use crucial::RemoteError;
use crucial_protocol::wire::{ObjectRef, Request};
use std::sync::Arc;

/// Which listener a connection came through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// The data port: clients (and cloud threads).
    #[default]
    Client,
    /// The peer port of a cluster member (`--peer-listen`): other nodes.
    /// Node-to-node requests (handoffs) are taken only here.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // a member's (feature "cluster")
    Peer,
}

/// What a connection knows about its client.
#[derive(Debug, Default, Clone)]
pub struct Session {
    /// Set by the `Hello` (scoped to the credential's application when the
    /// node authenticates).
    pub client_id: Option<u64>,
    /// The listener it came through.
    pub plane: Plane,
    /// Who the `Hello`'s token proved the client is (`None`: the node does
    /// not authenticate).
    pub identity: Option<crate::auth::Identity>,
    /// Its unit of its application's `--app-max-connections`, given back
    /// when the connection ends.
    pub connection_quota: Option<Arc<crate::quota::Held>>,
}

impl Session {
    /// Whether this connection may run `application`'s functions: any when
    /// the node does not authenticate, or for an admin; else its own only.
    fn may_use(&self, application: &str) -> Result<(), RemoteError> {
        match &self.identity {
            Some(crate::auth::Identity::Application(own)) if **own != *application => {
                Err(RemoteError::Forbidden {
                    application: own.to_string(),
                    reason: format!("it called a function of application `{application}`"),
                })
            }
            _ => Ok(()),
        }
    }

    /// The application whose namespace this connection's shared objects
    /// are in: its credential's, on a node that authenticates (an admin's
    /// and a node's connections name objects by their full keys).
    pub fn namespace(&self) -> Option<&str> {
        match &self.identity {
            Some(crate::auth::Identity::Application(own)) => Some(own),
            _ => None,
        }
    }
}

/// The shared object a request names, if it names one.
fn named_object<'r, 'a>(request: &'r mut Request<'a>) -> Option<&'r mut ObjectRef<'a>> {
    match request {
        Request::Call(call) => Some(&mut call.object),
        Request::Create { object, .. } | Request::Delete { object } => Some(object),
        _ => None,
    }
}

/// Applies one request frame from `sink`'s client. Never panics on bad input:
/// every problem becomes an error for this caller only.
///
/// Returns the reply ([`Applied::Now`]; `None` if the call parked, its reply
/// comes later through `sink`), or a call whose reply waits for its write to
/// be durable ([`Applied::Durable`]). Replies to parked calls that this
/// request released are pushed to `released`, to be delivered after this
/// request's own reply.
pub async fn apply(
    node: &Arc<NodeState>,
    session: &mut Session,
    sink: &Arc<dyn ReplySink>,
    id: u64,
    payload: &[u8],
    released: &mut Vec<Delivery>,
) -> Applied {
    // Declared before the request, which may borrow it.
    let scoped_key: String;
    let mut request = match Request::decode(payload) {
        Ok(request) => request,
        Err(e) => {
            // A `Hello` of another version may not decode as this one's:
            // its protocol number still does, for the clear message.
            if let (None, Some(protocol)) = (
                session.client_id,
                crucial_protocol::wire::hello_protocol(payload),
            ) {
                if protocol != crucial_protocol::wire::PROTOCOL_VERSION {
                    return Applied::Now(Some(control::protocol_mismatch(protocol)));
                }
            }
            return Applied::Now(Some(Err(RemoteError::BadFrame {
                reason: e.to_string(),
            })));
        }
    };
    // An application's client names its shared objects within its own
    // namespace: it cannot name another's, whatever key it sends.
    if let (Some(application), Some(object)) = (session.namespace(), named_object(&mut request)) {
        scoped_key = crucial_protocol::placement::namespaced(application, object.key);
        object.key = &scoped_key;
    }
    match (request, session.client_id) {
        (Request::Call(request), Some(client)) => {
            call::call(node, client, sink, id, request, released).await
        }
        (Request::Invoke(request), Some(client)) => match session.may_use(request.application) {
            Ok(()) => workflow::invoke(node, client, id, request),
            Err(forbidden) => Applied::Now(Some(Err(forbidden))),
        },
        (Request::Map(request), Some(client)) => {
            match session.may_use(request.invoke.application) {
                Ok(()) => workflow::map(node, client, id, request),
                Err(forbidden) => Applied::Now(Some(Err(forbidden))),
            }
        }
        (Request::Txn(step), Some(_)) if session.plane == Plane::Peer => txn::step(node, step),
        (
            Request::Hello {
                protocol,
                client_id,
                token,
            },
            _,
        ) => Applied::Now(Some(control::hello(
            node,
            session,
            protocol,
            client_id,
            token.map(|t| t.0),
        ))),
        (_, None) => Applied::Now(Some(Err(RemoteError::Protocol {
            reason: "the first request on a connection must be Hello".into(),
        }))),
        (request, Some(_)) => Applied::Now(Some(control::control(node, session, request).await)),
    }
}
