//! Turning one request into one reply: registry lookup, dedup, lock, call.

use crate::connection::Outbox;
use crate::dedup::{Begin, Outcome};
use crate::node::NodeState;
use crate::parking::{self, Parked};
use bytes::Bytes;
use crucial::wire::{Call, Request, ServerInfo, PROTOCOL_VERSION};
use crucial::{codec, RemoteError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What a connection knows about its client.
#[derive(Debug, Default, Clone, Copy)]
pub struct Session {
    /// Set by the `Hello`.
    pub client_id: Option<u64>,
}

fn encode<T: serde::Serialize>(value: &T) -> Outcome {
    codec::encode(value).map_err(|e| RemoteError::Protocol {
        reason: format!("cannot encode reply: {e}"),
    })
}

/// Handles one request frame. Never panics on bad input: every problem becomes
/// an error for this caller only.
/// `None` means the call was parked (or already answered on `outbox`).
pub async fn handle(
    node: &NodeState,
    session: &mut Session,
    outbox: &Arc<Outbox>,
    id: u64,
    payload: &[u8],
) -> Option<Outcome> {
    let request: Request<'_> = match codec::decode_borrowed(payload) {
        Ok(r) => r,
        Err(e) => {
            return Some(Err(RemoteError::BadFrame {
                reason: e.to_string(),
            }))
        }
    };
    if let Request::Call(call) = request {
        let Some(client) = session.client_id else {
            return Some(Err(RemoteError::Protocol {
                reason: "the first request on a connection must be Hello".into(),
            }));
        };
        return call_method(node, client, outbox, id, call).await;
    }
    Some(handle_control(node, session, request))
}

fn handle_control(node: &NodeState, session: &mut Session, request: Request<'_>) -> Outcome {
    match request {
        Request::Hello {
            protocol,
            client_id,
        } => {
            if protocol != PROTOCOL_VERSION {
                return Err(RemoteError::Protocol {
                    reason: format!(
                        "client speaks protocol {protocol}, this node speaks {PROTOCOL_VERSION}; \
                         rebuild client and server from the same crucial version"
                    ),
                });
            }
            session.client_id = Some(client_id);
            encode(&ServerInfo {
                protocol: PROTOCOL_VERSION,
                version: env!("CARGO_PKG_VERSION").to_string(),
                types: node.registry.shared_types().len() as u32,
            })
        }
        _ if session.client_id.is_none() => Err(RemoteError::Protocol {
            reason: "the first request on a connection must be Hello".into(),
        }),
        Request::Call(_) => unreachable!("calls are handled before control requests"),
        Request::Create { object, state } => {
            let entry = node.registry.shared_type(object.type_name).ok_or_else(|| {
                RemoteError::UnknownType {
                    type_name: object.type_name.to_string(),
                }
            })?;
            let value =
                (entry.decode_state)(state).map_err(|reason| RemoteError::BadArguments {
                    type_name: entry.name.to_string(),
                    method: "<initial state>".into(),
                    reason,
                })?;
            encode(&node.table.create(entry, object.key, value))
        }
        Request::Delete { object } => encode(&node.table.delete(object.type_name, object.key)),
        Request::ListObjects => encode(&node.table.list()),
        Request::ListTypes => encode(
            &node
                .registry
                .shared_types()
                .iter()
                .map(|e| e.info())
                .collect::<Vec<_>>(),
        ),
        Request::Ping => encode(&()),
    }
}

async fn call_method(
    node: &NodeState,
    client: u64,
    outbox: &Arc<Outbox>,
    id: u64,
    call: Call<'_>,
) -> Option<Outcome> {
    let start = std::time::Instant::now();
    let type_name = call.object.type_name;
    let key = call.object.key;
    let Some(entry) = node.registry.shared_type(type_name) else {
        return Some(Err(RemoteError::UnknownType {
            type_name: type_name.to_string(),
        }));
    };
    let Some(method) = entry.method(call.method) else {
        return Some(Err(RemoteError::UnknownMethod {
            type_name: type_name.to_string(),
            method: call.method.to_string(),
        }));
    };
    if method.id.fingerprint != call.fingerprint {
        return Some(Err(RemoteError::IncompatibleMethod {
            type_name: type_name.to_string(),
            method: call.method.to_string(),
            server_signature: method.signature.to_string(),
        }));
    }
    // Blocking calls are not deduplicated: a parked call of a lost connection is
    // dropped without running, so re-sending it is safe.
    let dedup = !method.id.read_only && !method.id.blocking;
    if dedup {
        loop {
            match node.dedup.begin(client, id) {
                Begin::Fresh => break,
                Begin::Done(outcome) => {
                    node.metrics.replayed();
                    return Some(outcome);
                }
                Begin::InFlight(notify) => {
                    // Register interest, then re-check: the original may have
                    // finished between `begin` and here.
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if let Begin::Done(outcome) = node.dedup.peek(client, id) {
                        node.metrics.replayed();
                        return Some(outcome);
                    }
                    notified.await;
                }
            }
        }
    }
    let cell = node.table.get_or_default(entry, key);
    let outcome = {
        let mut state = cell.lock();
        if let Some(poison) = &state.poison {
            Some(Err(RemoteError::Poisoned {
                type_name: type_name.to_string(),
                key: key.to_string(),
                method: poison.method.clone(),
                message: poison.message.clone(),
            }))
        } else {
            let result = parking::invoke(&mut state, method, call.args);
            let outcome = parking::settle(&mut state, &cell, key, method, result);
            if outcome.is_some() {
                node.metrics
                    .call(entry.name, method.id.name, start.elapsed());
            } else {
                node.metrics.parked();
                let token = node.next_token.fetch_add(1, Ordering::Relaxed);
                outbox.track(token, Arc::downgrade(&cell));
                state.parked.push(Parked {
                    token,
                    method,
                    args: Bytes::copy_from_slice(call.args),
                    id,
                    outbox: Arc::clone(outbox),
                });
                if call.timeout_ms > 0 {
                    parking::expire_after(
                        Arc::clone(&cell),
                        key.to_string(),
                        token,
                        Duration::from_millis(call.timeout_ms),
                    );
                }
            }
            // Any mutating call may release parked calls, even one that is itself
            // pending: a reindeer that registers and waits is what wakes Santa.
            if !method.id.read_only && !state.parked.is_empty() {
                // Reply to this call first, then to the calls it released.
                if let Some(outcome) = &outcome {
                    outbox.send(&[(id, outcome.clone())]);
                }
                parking::wake(&mut state, &cell, key);
                if dedup {
                    if let Some(outcome) = &outcome {
                        node.dedup.finish(client, id, outcome);
                    }
                }
                return None;
            }
            outcome
        }
    };
    if dedup {
        if let Some(outcome) = &outcome {
            node.dedup.finish(client, id, outcome);
        }
    }
    outcome
}
