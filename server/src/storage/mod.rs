//! The storage layer: everything of a node that must survive a restart goes
//! through here — persistent objects and their remembered replies now; lambda
//! object entries and replication state next.
//!
//! What is written per call: the object's new state, with the call's reply
//! for deduplication, in one atomic batch. The alternative (logging the call
//! and its arguments, with periodic snapshots) writes less for large objects;
//! it is measured against this in the durable-node issue before it is chosen.
//!
//! Records carry a format byte, so a later layout can be told apart. An object
//! record holds its type's shape fingerprint: a node built with a changed type
//! reports the mismatch instead of decoding garbage.

mod commit;
mod engine;

pub use commit::{Durability, Ticket};
pub use engine::Space;

use commit::Committer;
use crucial::__private::registry::{ObjectBox, SharedTypeEntry};
use crucial::__private::wire::Outcome;
use engine::{Engine, Fjall};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The layout of every record written by this version.
const FORMAT: u8 = 1;

/// A persistent object as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// Registered type name.
    pub type_name: String,
    /// Object key.
    pub key: String,
    /// Fingerprint of the type's shape when the state was written.
    pub shape: u64,
    /// The encoded state.
    pub state: Vec<u8>,
}

impl StoredObject {
    /// The object as this build's `entry` reads it, or why it cannot: a type
    /// whose shape changed is never decoded.
    pub fn revive(&self, entry: &SharedTypeEntry) -> Result<ObjectBox, String> {
        if self.shape != entry.shape {
            return Err(format!(
                "it was written by a build whose `{}` had other fields (shape {:016x}, this \
                 build's is {:016x})",
                entry.name, self.shape, entry.shape
            ));
        }
        (entry.decode_state)(&self.state)
            .map_err(|e| format!("its stored state does not decode: {e}"))
    }
}

/// A write in the queue: its sequence number (see [`Storage::applied`]) and
/// the ticket that resolves when it is durable.
pub struct Queued {
    /// Its place in the order of writes.
    pub seq: u64,
    /// Resolves when it is as durable as the node promises.
    pub ticket: Ticket,
}

#[derive(Serialize, Deserialize)]
struct ObjectRecord<'a> {
    shape: u64,
    #[serde(borrow, with = "serde_bytes")]
    state: &'a [u8],
}

/// A remembered reply, as recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    /// Client id.
    pub client: u64,
    /// Request id.
    pub request: u64,
    /// The reply the request got.
    pub outcome: Outcome,
}

/// A node's data directory, open.
pub struct Storage {
    dir: PathBuf,
    engine: Arc<dyn Engine>,
    committer: Committer,
}

impl Storage {
    /// Opens (or creates) the store in `dir`; the error names the directory.
    pub fn open(dir: &Path, durability: Durability) -> Result<Storage, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
        let engine: Arc<dyn Engine> = Arc::new(Fjall::open(dir).map_err(|e| {
            format!(
                "cannot open the data directory {}: {e} (a damaged store: restore it from a \
                 backup or move it away to start empty)",
                dir.display()
            )
        })?);
        let committer = Committer::start(Arc::clone(&engine), durability);
        Ok(Storage {
            dir: dir.to_path_buf(),
            engine,
            committer,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues an object's new state (and the reply of the request that made
    /// it, if deduplicated) as one atomic write. Call it while holding the
    /// object's lock, so an object's states reach the disk in order.
    pub fn save(
        &self,
        type_name: &str,
        key: &str,
        shape: u64,
        state: &[u8],
        reply: Option<(u64, u64, &Outcome)>,
    ) -> Queued {
        let mut writes = vec![(
            Space::Objects,
            object_key(type_name, key),
            Some(encode(&ObjectRecord { shape, state })),
        )];
        if let Some((client, request, outcome)) = reply {
            writes.push((
                Space::Dedup,
                reply_key(client, request),
                Some(encode(outcome)),
            ));
        }
        let (seq, ticket) = self.committer.submit(writes);
        Queued { seq, ticket }
    }

    /// The highest write sequence number such that it and every earlier write
    /// can be read back ([`Storage::load`]).
    pub fn applied(&self) -> u64 {
        self.committer.applied()
    }

    /// Queues the deletion of an object.
    pub fn delete(&self, type_name: &str, key: &str) -> Ticket {
        self.committer
            .submit(vec![(Space::Objects, object_key(type_name, key), None)])
            .1
    }

    /// Queues the deletion of remembered replies the node has forgotten.
    pub fn forget_replies(&self, replies: &[(u64, u64)]) -> Ticket {
        self.committer
            .submit(
                replies
                    .iter()
                    .map(|&(client, request)| (Space::Dedup, reply_key(client, request), None))
                    .collect(),
            )
            .1
    }

    /// One stored object, if there is one (a passivated object coming back).
    pub fn load(&self, type_name: &str, key: &str) -> Result<Option<StoredObject>, String> {
        let Some(bytes) = self
            .engine
            .get(Space::Objects, &object_key(type_name, key))?
        else {
            return Ok(None);
        };
        let record: ObjectRecord<'_> = decode(&bytes).map_err(|e| {
            format!(
                "{}: the record of {type_name} `{key}` is damaged: {e}",
                self.dir.display()
            )
        })?;
        Ok(Some(StoredObject {
            type_name: type_name.to_string(),
            key: key.to_string(),
            shape: record.shape,
            state: record.state.to_vec(),
        }))
    }

    /// Every stored object; a record that does not decode is an error naming it.
    pub fn objects(&self) -> Result<Vec<StoredObject>, String> {
        self.engine
            .scan(Space::Objects)?
            .into_iter()
            .map(|(k, v)| {
                let (type_name, key) = split_object_key(&k)
                    .ok_or_else(|| format!("{}: an object key is damaged", self.dir.display()))?;
                let record: ObjectRecord<'_> = decode(&v).map_err(|e| {
                    format!(
                        "{}: the record of {type_name} `{key}` is damaged: {e}",
                        self.dir.display()
                    )
                })?;
                Ok(StoredObject {
                    type_name,
                    key,
                    shape: record.shape,
                    state: record.state.to_vec(),
                })
            })
            .collect()
    }

    /// Every remembered reply.
    pub fn replies(&self) -> Result<Vec<StoredReply>, String> {
        self.engine
            .scan(Space::Dedup)?
            .into_iter()
            .map(|(k, v)| {
                let ids: [u8; 16] = k.as_slice().try_into().map_err(|_| {
                    format!(
                        "{}: a remembered reply's key is damaged",
                        self.dir.display()
                    )
                })?;
                let outcome = decode(&v).map_err(|e| {
                    format!("{}: a remembered reply is damaged: {e}", self.dir.display())
                })?;
                Ok(StoredReply {
                    client: u64::from_be_bytes(ids[..8].try_into().expect("8 bytes")),
                    request: u64::from_be_bytes(ids[8..].try_into().expect("8 bytes")),
                    outcome,
                })
            })
            .collect()
    }
}

fn object_key(type_name: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(type_name.len() + 1 + key.len());
    k.extend_from_slice(type_name.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn split_object_key(k: &[u8]) -> Option<(String, String)> {
    let at = k.iter().position(|&b| b == 0)?;
    let type_name = std::str::from_utf8(&k[..at]).ok()?;
    let key = std::str::from_utf8(&k[at + 1..]).ok()?;
    Some((type_name.to_string(), key.to_string()))
}

fn reply_key(client: u64, request: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&client.to_be_bytes());
    k.extend_from_slice(&request.to_be_bytes());
    k
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend(postcard::to_allocvec(value).expect("a record always encodes"));
    out
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!(
            "record format {other}, this node reads format {FORMAT}"
        )),
        None => Err("an empty record".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crucial::RemoteError;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crucial-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn objects_and_replies_come_back_after_reopening() {
        let dir = temp_dir("storage-roundtrip");
        {
            let storage = Storage::open(&dir, Durability::Sync).expect("open");
            storage
                .save("Counter", "a", 7, &[1, 2], Some((9, 1, &Ok(vec![5]))))
                .ticket
                .await
                .expect("answered")
                .expect("saved");
            storage
                .save(
                    "Counter",
                    "a",
                    7,
                    &[3],
                    Some((
                        9,
                        2,
                        &Err(RemoteError::ShuttingDown {
                            type_name: "Counter".into(),
                            key: "a".into(),
                            method: "m".into(),
                        }),
                    )),
                )
                .ticket
                .await
                .expect("answered")
                .expect("saved");
            storage
                .save("Tally", "with\0nul? no: spaces ok", 8, &[], None)
                .ticket
                .await
                .expect("answered")
                .expect("saved");
            storage
                .forget_replies(&[(9, 1)])
                .await
                .expect("answered")
                .expect("forgot");
        }
        let storage = Storage::open(&dir, Durability::Sync).expect("reopen");
        let objects = storage.objects().expect("objects");
        assert_eq!(objects.len(), 2);
        assert_eq!(
            objects[0],
            StoredObject {
                type_name: "Counter".into(),
                key: "a".into(),
                shape: 7,
                state: vec![3],
            }
        );
        assert_eq!(
            storage.load("Counter", "a").expect("load").map(|o| o.state),
            Some(vec![3])
        );
        assert_eq!(storage.load("Counter", "b").expect("load"), None);
        let replies = storage.replies().expect("replies");
        assert_eq!(replies.len(), 1);
        assert_eq!((replies[0].client, replies[0].request), (9, 2));
        assert!(replies[0].outcome.is_err());
        drop(storage);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_record_of_another_format_is_refused_not_decoded() {
        let mut bytes = encode(&Ok::<Vec<u8>, RemoteError>(vec![1]));
        bytes[0] = 9;
        let error = decode::<Outcome>(&bytes).unwrap_err();
        assert!(error.contains("record format 9"), "{error}");
    }

    #[test]
    fn an_unopenable_directory_is_named() {
        let file = temp_dir("storage-file");
        std::fs::write(&file, b"not a directory").expect("write");
        let error = Storage::open(&file, Durability::Sync)
            .err()
            .expect("refused");
        assert!(error.contains(&file.display().to_string()), "{error}");
        let _ = std::fs::remove_file(&file);
    }
}
