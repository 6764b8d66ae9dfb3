//! The etcd client of membership: ranges, puts, deletes, an unconditional
//! transaction, leases kept alive and a watch on a prefix, over etcd's v3 gRPC
//! API (tonic, code generated from `proto/etcd.proto` and committed, so that a
//! build needs no `protoc`). Nothing here interprets keys: `membership.rs` does.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod pb;

use pb::kv_client::KvClient;
use pb::lease_client::LeaseClient;
use pb::watch_client::WatchClient;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

pub use pb::event::EventType;
pub use pb::{KeyValue, WatchResponse};

/// What went wrong talking to etcd.
#[derive(Debug)]
pub enum Error {
    /// An endpoint is not a `host:port`, or none could be connected to.
    Connect(String),
    /// etcd (or the channel to it) answered a call with an error.
    Call(tonic::Status),
    /// A stream (keep-alive, watch) ended.
    Closed(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "{e}"),
            Error::Call(status) if status.message().is_empty() => write!(f, "{:?}", status.code()),
            Error::Call(status) => write!(f, "{:?}: {}", status.code(), status.message()),
            Error::Closed(what) => write!(f, "the {what} stream ended"),
        }
    }
}

impl std::error::Error for Error {}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Error {
        Error::Call(status)
    }
}

/// One change of a transaction.
pub enum Op {
    /// Puts `key = value`, attached to a lease (0: none).
    Put {
        key: String,
        value: Vec<u8>,
        lease: i64,
    },
    /// Deletes `key`.
    Delete { key: String },
}

/// A connection to an etcd cluster (cheap to clone: one HTTP/2 channel,
/// re-established by tonic when it breaks).
#[derive(Clone)]
pub struct Etcd {
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    watch: WatchClient<Channel>,
}

impl Etcd {
    /// Connects to `endpoints` (`host:port`); each call (not a stream) gives
    /// up after `timeout`.
    pub async fn connect(
        endpoints: &[String],
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Etcd, Error> {
        let endpoints = endpoints
            .iter()
            .map(|e| {
                let url = if e.contains("://") {
                    e.clone()
                } else {
                    format!("http://{e}")
                };
                Endpoint::from_shared(url)
                    .map(|e| e.connect_timeout(connect_timeout).timeout(timeout))
                    .map_err(|err| Error::Connect(format!("{e}: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let channel = match endpoints.as_slice() {
            [] => return Err(Error::Connect("no endpoint".into())),
            // One endpoint: connect now, so that a wrong address fails at once.
            [one] => one
                .connect()
                .await
                .map_err(|e| Error::Connect(format!("{}: {e}", one.uri())))?,
            many => Channel::balance_list(many.iter().cloned()),
        };
        Ok(Etcd {
            kv: KvClient::new(channel.clone()),
            lease: LeaseClient::new(channel.clone()),
            watch: WatchClient::new(channel),
        })
    }

    /// Grants a lease of `ttl` seconds; its id.
    pub async fn grant(&self, ttl: i64) -> Result<i64, Error> {
        let reply = self
            .lease
            .clone()
            .lease_grant(pb::LeaseGrantRequest { ttl, id: 0 })
            .await?
            .into_inner();
        if reply.error.is_empty() {
            Ok(reply.id)
        } else {
            Err(Error::Call(tonic::Status::unknown(reply.error)))
        }
    }

    /// Revokes a lease (its keys are deleted).
    pub async fn revoke(&self, lease: i64) -> Result<(), Error> {
        self.lease
            .clone()
            .lease_revoke(pb::LeaseRevokeRequest { id: lease })
            .await?;
        Ok(())
    }

    /// Keeps `lease` alive through one keep-alive stream. The first renewal
    /// is sent with the call: etcd sends the stream's headers with its first
    /// answer, so a call that sent nothing would wait for them forever.
    pub async fn keep_alive(&self, lease: i64) -> Result<KeepAlive, Error> {
        let (requests, outgoing) = mpsc::channel(1);
        requests
            .send(pb::LeaseKeepAliveRequest { id: lease })
            .await
            .map_err(|_| Error::Closed("keep-alive"))?;
        let replies = self
            .lease
            .clone()
            .lease_keep_alive(ReceiverStream::new(outgoing))
            .await?
            .into_inner();
        Ok(KeepAlive {
            lease,
            requests,
            replies,
            sent: true,
        })
    }

    /// Puts `key = value` under `lease` (0: none); the revision it made and
    /// the key as it was before, if it existed.
    pub async fn put(
        &self,
        key: String,
        value: Vec<u8>,
        lease: i64,
    ) -> Result<(i64, Option<KeyValue>), Error> {
        let reply = self
            .kv
            .clone()
            .put(pb::PutRequest {
                key: key.into_bytes(),
                value,
                lease,
                prev_kv: true,
            })
            .await?
            .into_inner();
        Ok((revision(reply.header), reply.prev_kv))
    }

    /// Deletes `key`; the revision after.
    pub async fn delete(&self, key: String) -> Result<i64, Error> {
        let reply = self
            .kv
            .clone()
            .delete_range(pb::DeleteRangeRequest {
                key: key.into_bytes(),
                range_end: Vec::new(),
            })
            .await?
            .into_inner();
        Ok(revision(reply.header))
    }

    /// Every key under `prefix` as of revision `at` (0: now), and etcd's
    /// revision now.
    pub async fn get_prefix(&self, prefix: &str, at: i64) -> Result<(i64, Vec<KeyValue>), Error> {
        let reply = self
            .kv
            .clone()
            .range(pb::RangeRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: prefix_end(prefix.as_bytes()),
                limit: 0,
                revision: at,
            })
            .await?
            .into_inner();
        Ok((revision(reply.header), reply.kvs))
    }

    /// Applies `ops` as one revision; that revision.
    pub async fn txn(&self, ops: Vec<Op>) -> Result<i64, Error> {
        use pb::request_op::Request;
        let success = ops
            .into_iter()
            .map(|op| pb::RequestOp {
                request: Some(match op {
                    Op::Put { key, value, lease } => Request::RequestPut(pb::PutRequest {
                        key: key.into_bytes(),
                        value,
                        lease,
                        prev_kv: false,
                    }),
                    Op::Delete { key } => Request::RequestDeleteRange(pb::DeleteRangeRequest {
                        key: key.into_bytes(),
                        range_end: Vec::new(),
                    }),
                }),
            })
            .collect();
        let reply = self
            .kv
            .clone()
            .txn(pb::TxnRequest {
                compare: Vec::new(),
                success,
                failure: Vec::new(),
            })
            .await?
            .into_inner();
        Ok(revision(reply.header))
    }

    /// Puts `key = value` (no lease) unless the key exists, in one
    /// transaction: `None` if it was put, else the value already there.
    pub async fn put_if_absent(
        &self,
        key: String,
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Error> {
        use pb::compare::{CompareResult, CompareTarget, TargetUnion};
        use pb::request_op::Request;
        let absent = pb::Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Create as i32,
            key: key.clone().into_bytes(),
            target_union: Some(TargetUnion::CreateRevision(0)),
        };
        let put = pb::RequestOp {
            request: Some(Request::RequestPut(pb::PutRequest {
                key: key.clone().into_bytes(),
                value,
                lease: 0,
                prev_kv: false,
            })),
        };
        let get = pb::RequestOp {
            request: Some(Request::RequestRange(pb::RangeRequest {
                key: key.into_bytes(),
                range_end: Vec::new(),
                limit: 1,
                revision: 0,
            })),
        };
        let reply = self
            .kv
            .clone()
            .txn(pb::TxnRequest {
                compare: vec![absent],
                success: vec![put],
                failure: vec![get],
            })
            .await?
            .into_inner();
        if reply.succeeded {
            return Ok(None);
        }
        let existing = reply
            .responses
            .into_iter()
            .find_map(|op| match op.response {
                Some(pb::response_op::Response::ResponseRange(range)) => {
                    range.kvs.into_iter().next().map(|kv| kv.value)
                }
                _ => None,
            });
        Ok(Some(existing.unwrap_or_default()))
    }

    /// Watches every key under `prefix` from `start_revision` on.
    pub async fn watch_prefix(&self, prefix: &str, start_revision: i64) -> Result<Watch, Error> {
        use pb::watch_request::RequestUnion;
        let (requests, outgoing) = mpsc::channel(1);
        let create = pb::WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(pb::WatchCreateRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: prefix_end(prefix.as_bytes()),
                start_revision,
            })),
        };
        requests
            .send(create)
            .await
            .map_err(|_| Error::Closed("watch"))?;
        let replies = self
            .watch
            .clone()
            .watch(ReceiverStream::new(outgoing))
            .await?
            .into_inner();
        Ok(Watch {
            _requests: requests,
            replies,
        })
    }
}

/// A lease's keep-alive stream.
pub struct KeepAlive {
    lease: i64,
    requests: mpsc::Sender<pb::LeaseKeepAliveRequest>,
    replies: tonic::Streaming<pb::LeaseKeepAliveResponse>,
    /// A renewal is on its way (the first one went with the call).
    sent: bool,
}

impl KeepAlive {
    /// Renews the lease; its time to live now, in seconds (0 or less: it
    /// had expired). `None` if etcd did not answer within `wait`.
    pub async fn renew(&mut self, wait: Duration) -> Result<Option<i64>, Error> {
        if !std::mem::take(&mut self.sent) {
            self.requests
                .send(pb::LeaseKeepAliveRequest { id: self.lease })
                .await
                .map_err(|_| Error::Closed("keep-alive"))?;
        }
        match tokio::time::timeout(wait, self.replies.message()).await {
            Err(_) => Ok(None),
            Ok(Ok(Some(reply))) => Ok(Some(reply.ttl)),
            Ok(Ok(None)) => Err(Error::Closed("keep-alive")),
            Ok(Err(status)) => Err(Error::Call(status)),
        }
    }
}

/// A watch's stream of changes.
pub struct Watch {
    /// Kept open: closing the request stream would end the watch.
    _requests: mpsc::Sender<pb::WatchRequest>,
    replies: tonic::Streaming<pb::WatchResponse>,
}

impl Watch {
    /// The next batch of changes (or the creation's acknowledgement, or a
    /// cancellation: see [`WatchResponse::compact_revision`]).
    pub async fn next(&mut self) -> Result<WatchResponse, Error> {
        match self.replies.message().await? {
            Some(reply) => Ok(reply),
            None => Err(Error::Closed("watch")),
        }
    }
}

fn revision(header: Option<pb::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision)
}

/// The end of the range of keys that start with `prefix`: the prefix with
/// its last byte below 0xff incremented (and the bytes after it dropped);
/// `[0]`, "every key", if it has none.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_range_ends_after_its_last_key() {
        assert_eq!(prefix_end(b"/crucial/a/"), b"/crucial/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
