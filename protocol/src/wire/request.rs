//! Requests: everything a client can ask a node. A decoded request borrows from
//! the frame it arrived in, so the node copies nothing it does not keep.

use crate::codec;
use crate::CodecError as Error;
use serde::{Deserialize, Serialize};

/// Bumped whenever the message layout changes; checked in the `Hello`.
pub const PROTOCOL_VERSION: u32 = 15;

/// Names one object: its registered type name and its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef<'a> {
    /// Registered type name, e.g. `crucial::AtomicI64`.
    pub type_name: &'a str,
    /// The key given when the proxy was opened.
    pub key: &'a str,
}

/// A method call shipped to the object's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call<'a> {
    /// The target object.
    #[serde(borrow)]
    pub object: ObjectRef<'a>,
    /// Method name.
    pub method: &'a str,
    /// Fingerprint of the signature the client was built with.
    pub fingerprint: u64,
    /// Encoded argument tuple.
    #[serde(with = "serde_bytes")]
    pub args: &'a [u8],
    /// For blocking methods: give up after this many milliseconds (0: wait forever).
    pub timeout_ms: u64,
}

/// A client's call of a lambda object's function: it starts a workflow on
/// the node that owns the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoke<'a> {
    /// The application the type belongs to.
    pub application: &'a str,
    /// Registered type name.
    pub type_name: &'a str,
    /// The object's key (`None`: a static function).
    pub key: Option<&'a str>,
    /// Function name.
    pub function: &'a str,
    /// Fingerprint of the signature the client was built with.
    pub fingerprint: u64,
    /// Encoded argument tuple.
    #[serde(with = "serde_bytes")]
    pub args: &'a [u8],
}

/// Which objects of a type a map call runs its function on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objects {
    /// Every object of the type.
    All,
    /// The objects whose keys are in `[from, to)`, in string order (`to`:
    /// `None` for no end).
    Range {
        /// The first key.
        from: String,
        /// The key after the last.
        to: Option<String>,
    },
    /// The objects with these keys (a key with no object is an error).
    Keys(Vec<String>),
}

impl Objects {
    /// Whether the selection takes the object with `key`.
    pub fn takes(&self, key: &str) -> bool {
        match self {
            Objects::All => true,
            Objects::Range { from, to } => {
                key >= from.as_str() && to.as_deref().is_none_or(|to| key < to)
            }
            Objects::Keys(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// A client's map call: one function run on every object of a selection,
/// as one workflow (started at the application's home; each node runs the
/// function on the selected objects it holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapInvoke<'a> {
    /// The function (`key` is `None`), its fingerprint and arguments.
    #[serde(borrow)]
    pub invoke: Invoke<'a>,
    /// The objects.
    pub objects: Objects,
}

/// One object handed from its old owner to its new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedObject<'a> {
    /// Registered type name.
    pub type_name: &'a str,
    /// Key.
    pub key: &'a str,
    /// Its state, encoded as its type's `encode_state` does.
    #[serde(with = "serde_bytes")]
    pub state: &'a [u8],
    /// `(method, message)` of the panic that poisoned it, if one did.
    pub poison: Option<(String, String)>,
    /// A copy the sender restored from its disk when it started and that has
    /// served no call since: older than any copy the receiver holds (which
    /// can only have been started afresh while the sender was away).
    pub restored: bool,
    /// Its replication version (see [`ObjectCopy::version`]): the receiver goes on
    /// counting from it.
    pub version: u64,
}

/// One object's state sent to a replica: by its head after each write, or
/// by a node that holds a backup to the new owner after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCopy<'a> {
    /// Registered type name.
    pub type_name: &'a str,
    /// Key.
    pub key: &'a str,
    /// Counts the object's writes over its whole life (it moves with the
    /// object): of two copies the higher version is the newer.
    pub version: u64,
    /// Its state, encoded as its type's `encode_state` does; `None`: the
    /// object was deleted.
    #[serde(borrow)]
    pub state: Option<&'a serde_bytes::Bytes>,
}

/// Node to node: copies of objects for the receiver to keep as backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replicate<'a> {
    /// The sender.
    pub from: &'a str,
    /// The sender's newest view when it sent them.
    pub epoch: u64,
    /// The copies, in the order they were made.
    #[serde(borrow)]
    pub copies: Vec<ObjectCopy<'a>>,
    /// Replies of the writes the copies include (deduplicated calls), so a
    /// retry that reaches the receiver after a failover is answered, not run
    /// again.
    pub replies: Vec<MovedReply>,
    /// Copies of lambda objects' entries, by application.
    pub apps: Vec<AppCopy>,
}

/// Node to node: entries of an application's lambda objects, for the
/// receiver to keep as a backup of the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCopy {
    /// The application.
    pub application: String,
    /// `Some(as_of)`: the entries are every entry the application had (a
    /// snapshot begun when the sender's commit clock read `as_of`), so the
    /// receiver drops the entries it keeps at a version up to `as_of` that
    /// are not among them (deleted meanwhile). `None`: the writes of commits.
    pub complete: Option<u64>,
    /// The entries.
    pub entries: Vec<EntryCopy>,
    /// Parts of transactions across nodes prepared at this home, waiting
    /// for their decision: a replica that takes the home over restores them
    /// (locked) and asks for their outcome. A complete copy lists all of
    /// them (the receiver forgets the others).
    pub prepared: Vec<PreparedCopy>,
    /// Transactions whose parts here have their outcome now: their copies
    /// are dropped.
    pub settled: Vec<(u64, u64)>,
}

/// A participant's prepared part of a transaction across nodes, as copied
/// to the replicas of one of its homes (only that home's entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedCopy {
    /// The transaction's manager (node id).
    pub manager: u64,
    /// Its number there.
    pub seq: u64,
    /// Where its decision is recorded.
    pub anchor: crate::ObjectId,
    /// The number this participant proposed: entries the replica holds at
    /// this version or above were written after the part (it is decided).
    pub proposed: u64,
    /// Its writes here: `(object, key, value)`; `None`: delete.
    pub writes: Vec<(
        crate::ObjectId,
        serde_bytes::ByteBuf,
        Option<serde_bytes::ByteBuf>,
    )>,
    /// What it read here, as key ranges `[from, to)` (`to`: `None` for the
    /// end): pinned again on a replica that restores it.
    pub reads: Vec<(
        crate::ObjectId,
        serde_bytes::ByteBuf,
        Option<serde_bytes::ByteBuf>,
    )>,
}

/// One entry of a lambda object, as replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryCopy {
    /// Its object.
    pub object: crate::ObjectId,
    /// Its key.
    pub key: serde_bytes::ByteBuf,
    /// Its value; `None`: deleted.
    pub value: Option<serde_bytes::ByteBuf>,
    /// The number of the commit that wrote it (or a lower bound of it): of
    /// two copies of an entry the higher version is the newer.
    pub version: u64,
}

/// A remembered reply handed with the objects, so a client's retry on the new
/// owner is still answered, not run again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedReply {
    /// Client id.
    pub client: u64,
    /// Request id.
    pub request: u64,
    /// The reply.
    pub outcome: super::Outcome,
}

/// One lambda object handed over with its application: its stored entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedEntries {
    /// The object.
    pub object: crate::ObjectId,
    /// Its entries, `(key, value)`, as the node stores them.
    pub entries: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)>,
    /// Its application was restored from the sender's disk when it started
    /// and has run no workflow since (see [`MovedObject::restored`]).
    pub restored: bool,
    /// The sender's commit clock when it packed them: the receiver numbers
    /// its commits above it, so replicas can tell its writes are newer.
    pub version: u64,
}

/// Part of a state transfer between nodes after a view change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adopt<'a> {
    /// The node handing them off.
    pub from: &'a str,
    /// The view (epoch) in which the receiver owns them.
    pub epoch: u64,
    /// The objects.
    #[serde(borrow)]
    pub objects: Vec<MovedObject<'a>>,
    /// Remembered replies of requests on them (or on any object: the sender
    /// does not tell them apart).
    pub replies: Vec<MovedReply>,
    /// Lambda objects of applications whose owner is now the receiver.
    pub lambda: Vec<MovedEntries>,
}

/// Everything a client can ask a node. The reply to each is a postcard
/// `Result<bytes, RemoteError>` whose bytes decode as documented per variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// First frame of a connection. Reply: [`ServerInfo`](super::ServerInfo).
    Hello {
        /// [`PROTOCOL_VERSION`] of the client.
        protocol: u32,
        /// Random id of the client process, the first half of request
        /// identity (a node that authenticates scopes it to the credential's
        /// application, so no other application can reach its replies).
        client_id: u64,
        /// The credential: an application's token on the client port, the
        /// cluster's on the peer port. A node without credentials ignores it.
        #[serde(borrow)]
        token: Option<Token<'a>>,
    },
    /// Run a method. Reply: the method's encoded return value.
    #[serde(borrow)]
    Call(Call<'a>),
    /// Run a lambda object's function as one workflow. Reply: the function's
    /// encoded return value.
    Invoke(Invoke<'a>),
    /// Create an object from an encoded initial state unless it exists. Reply: `bool` created.
    Create {
        /// The object.
        object: ObjectRef<'a>,
        /// Encoded initial state.
        #[serde(with = "serde_bytes")]
        state: &'a [u8],
    },
    /// Delete an object (and clear its poison). Reply: `bool` existed.
    Delete {
        /// The object.
        object: ObjectRef<'a>,
    },
    /// List the objects the node holds. Reply: `Vec<ObjectInfo>`.
    ListObjects,
    /// List the types in the node's registry. Reply: `Vec<TypeInfo>`.
    ListTypes,
    /// Liveness check. Reply: `()`.
    Ping,
    /// What the node counts of its workflows. Reply:
    /// [`WorkflowStats`](super::WorkflowStats).
    WorkflowStats,
    /// The node's view of the cluster. Reply: `Option<View>` (`None`: a node
    /// on its own).
    View,
    /// Node to node: take these objects over. Reply: `()` once they are held
    /// (and on disk, for persistent ones).
    Adopt(Adopt<'a>),
    /// Node to node: `from` has handed off everything it held that the
    /// receiver owns in view `epoch` (and everything of earlier views). Reply: `()`.
    HandoffDone {
        /// The sender.
        from: &'a str,
        /// The view.
        epoch: u64,
        /// Applications whose lambda objects `from` keeps serving although
        /// another node owns them in that view (their move timed out).
        kept: Vec<String>,
    },
    /// Node to node: keep these copies as backups (replication). Reply: `()`
    /// once they are held.
    Replicate(Replicate<'a>),
    /// Node to node: one step of a transaction that spans nodes, on a
    /// participant. Reply: a [`TxnAnswer`](super::TxnAnswer).
    Txn(super::TxnStep),
    /// Run a function on every selected object of its type, as one
    /// workflow. Reply: `Vec<(key, encoded return value)>` in key order.
    Map(MapInvoke<'a>),
}

/// A credential presented in a `Hello`. Its `Debug` shows no byte of it,
/// so a request logged with `{:?}` leaks nothing.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token<'a>(#[serde(borrow)] pub &'a str);

impl std::fmt::Debug for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The protocol number of a `Hello` of any version (every version starts
/// its `Hello` with it), so a node can say "rebuild with the same version"
/// to a client whose `Hello` it cannot decode.
pub fn hello_protocol(payload: &[u8]) -> Option<u32> {
    let (variant, rest) = postcard::take_from_bytes::<u32>(payload).ok()?;
    let (protocol, _) = postcard::take_from_bytes::<u32>(rest).ok()?;
    (variant == 0).then_some(protocol)
}

impl Request<'_> {
    /// The payload of a request frame.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        codec::encode(self)
    }

    /// Decodes a request payload, borrowing strings and arguments from it.
    pub fn decode(payload: &[u8]) -> Result<Request<'_>, Error> {
        codec::decode_borrowed(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips() {
        let object = ObjectRef {
            type_name: "crucial::AtomicI64",
            key: "k",
        };
        let requests = [
            Request::Hello {
                protocol: PROTOCOL_VERSION,
                client_id: 7,
                token: None,
            },
            Request::Hello {
                protocol: PROTOCOL_VERSION,
                client_id: 7,
                token: Some(Token("s3cret")),
            },
            Request::Call(Call {
                object,
                method: "fetch_add",
                fingerprint: 0xdead_beef,
                args: &[1, 2, 3],
                timeout_ms: 150,
            }),
            Request::Invoke(Invoke {
                application: "forum",
                type_name: "Thread",
                key: Some("t1"),
                function: "title",
                fingerprint: 9,
                args: &[],
            }),
            Request::Create {
                object,
                state: &[4],
            },
            Request::Delete { object },
            Request::ListObjects,
            Request::ListTypes,
            Request::Ping,
            Request::WorkflowStats,
            Request::View,
            Request::Adopt(Adopt {
                from: "a:1",
                epoch: 3,
                objects: vec![MovedObject {
                    type_name: "T",
                    key: "k",
                    state: &[1, 2],
                    poison: Some(("m".into(), "boom".into())),
                    restored: true,
                    version: 4,
                }],
                replies: vec![MovedReply {
                    client: 1,
                    request: 2,
                    outcome: Ok(vec![3]),
                }],
                lambda: vec![MovedEntries {
                    object: crate::ObjectId::new("forum", "Thread", "t"),
                    entries: vec![(vec![1].into(), vec![2].into())],
                    restored: false,
                    version: 12,
                }],
            }),
            Request::HandoffDone {
                from: "a:1",
                epoch: 3,
                kept: vec!["forum".into()],
            },
            Request::Replicate(Replicate {
                from: "a:1",
                epoch: 2,
                copies: vec![
                    ObjectCopy {
                        type_name: "T",
                        key: "k",
                        version: 9,
                        state: Some(serde_bytes::Bytes::new(&[7])),
                    },
                    ObjectCopy {
                        type_name: "T",
                        key: "gone",
                        version: 3,
                        state: None,
                    },
                ],
                replies: vec![],
                apps: vec![AppCopy {
                    application: "forum".into(),
                    complete: Some(40),
                    entries: vec![EntryCopy {
                        object: crate::ObjectId::new("forum", "Thread", "t"),
                        key: vec![1].into(),
                        value: None,
                        version: 41,
                    }],
                    prepared: vec![PreparedCopy {
                        manager: 1,
                        seq: 2,
                        anchor: crate::ObjectId::new("forum", "<decisions>", "forum"),
                        proposed: 40,
                        writes: vec![],
                        reads: vec![(
                            crate::ObjectId::new("forum", "Thread", "t"),
                            vec![1].into(),
                            None,
                        )],
                    }],
                    settled: vec![(1, 1)],
                }],
            }),
            Request::Txn(super::super::TxnStep {
                manager: 3,
                seq: 8,
                deadline_ms: 900,
                pin_reads: true,
                insist: false,
                op: super::super::TxnOp::Prepare {
                    writes: vec![(
                        crate::ObjectId::new("bank", "Account", "a"),
                        vec![1].into(),
                        Some(vec![2].into()),
                    )],
                    anchor: crate::ObjectId::new("bank", "<decisions>", "bank"),
                    reached: true,
                },
            }),
            Request::Txn(super::super::TxnStep {
                manager: 3,
                seq: 8,
                deadline_ms: 2000,
                pin_reads: false,
                insist: true,
                op: super::super::TxnOp::Resolve {
                    anchor: crate::ObjectId::new("bank", "<decisions>", "bank"),
                },
            }),
        ];
        for request in requests {
            let bytes = request.encode().unwrap();
            assert_eq!(Request::decode(&bytes).unwrap(), request);
        }
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_id: 1,
            token: Some(Token("hunter2-hunter2")),
        };
        assert!(!format!("{hello:?}").contains("hunter2"));
    }

    #[test]
    fn the_protocol_of_an_older_hello_is_read_although_it_does_not_decode() {
        // Protocol 13's Hello: no token field.
        let old = codec::encode(&(0u32, 13u32, 42u64)).unwrap();
        assert!(Request::decode(&old).is_err());
        assert_eq!(hello_protocol(&old), Some(13));
        assert_eq!(hello_protocol(&Request::Ping.encode().unwrap()), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Request::decode(&[0x63, 0x01, 0x02]).is_err());
        assert!(Request::decode(&[]).is_err());
    }
}
