//! Turning one request into one reply: registry lookup, dedup, lock, call.

use crate::dedup::{Begin, Outcome};
use crate::node::NodeState;
use crate::table::Poison;
use crucial::registry::DispatchError;
use crucial::wire::{Call, Request, ServerInfo, PROTOCOL_VERSION};
use crucial::{codec, panic_message, RemoteError};
use std::panic::{catch_unwind, AssertUnwindSafe};

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
pub async fn handle(node: &NodeState, session: &mut Session, id: u64, payload: &[u8]) -> Outcome {
    let request: Request<'_> = match codec::decode_borrowed(payload) {
        Ok(r) => r,
        Err(e) => {
            return Err(RemoteError::BadFrame {
                reason: e.to_string(),
            })
        }
    };
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
        Request::Call(call) => {
            let client = session.client_id.unwrap_or_default();
            call_method(node, client, id, call).await
        }
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

async fn call_method(node: &NodeState, client: u64, id: u64, call: Call<'_>) -> Outcome {
    let type_name = call.object.type_name;
    let entry = node
        .registry
        .shared_type(type_name)
        .ok_or_else(|| RemoteError::UnknownType {
            type_name: type_name.to_string(),
        })?;
    let method = entry
        .method(call.method)
        .ok_or_else(|| RemoteError::UnknownMethod {
            type_name: type_name.to_string(),
            method: call.method.to_string(),
        })?;
    if method.id.fingerprint != call.fingerprint {
        return Err(RemoteError::IncompatibleMethod {
            type_name: type_name.to_string(),
            method: call.method.to_string(),
            server_signature: method.signature.to_string(),
        });
    }
    let dedup = !method.id.read_only;
    if dedup {
        loop {
            match node.dedup.begin(client, id) {
                Begin::Fresh => break,
                Begin::Done(outcome) => return outcome,
                Begin::InFlight(notify) => {
                    // Register interest, then re-check: the original may have
                    // finished between `begin` and here.
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if let Begin::Done(outcome) = node.dedup.peek(client, id) {
                        return outcome;
                    }
                    notified.await;
                }
            }
        }
    }
    let cell = node.table.get_or_default(entry, call.object.key);
    let outcome = {
        let mut state = cell.lock();
        if let Some(poison) = &state.poison {
            Err(RemoteError::Poisoned {
                type_name: type_name.to_string(),
                key: call.object.key.to_string(),
                method: poison.method.clone(),
                message: poison.message.clone(),
            })
        } else {
            match catch_unwind(AssertUnwindSafe(|| {
                (method.invoke)(&mut *state.value, call.args)
            })) {
                Ok(Ok(bytes)) => Ok(bytes),
                Ok(Err(DispatchError::BadArguments(reason))) => Err(RemoteError::BadArguments {
                    type_name: type_name.to_string(),
                    method: call.method.to_string(),
                    reason,
                }),
                Ok(Err(DispatchError::BadResult(reason))) => Err(RemoteError::Protocol {
                    reason: format!("cannot encode the result of {}: {reason}", call.method),
                }),
                Ok(Err(DispatchError::WrongType)) => Err(RemoteError::Protocol {
                    reason: format!("object `{}` is not a `{type_name}`", call.object.key),
                }),
                Err(panic) => {
                    let message = panic_message(&*panic);
                    if !method.id.read_only {
                        state.poison = Some(Poison {
                            method: call.method.to_string(),
                            message: message.clone(),
                        });
                    }
                    Err(RemoteError::Panicked {
                        type_name: type_name.to_string(),
                        key: call.object.key.to_string(),
                        method: call.method.to_string(),
                        message,
                    })
                }
            }
        }
    };
    if dedup {
        node.dedup.finish(client, id, &outcome);
    }
    outcome
}
