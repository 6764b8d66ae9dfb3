//! The etcd client of membership: ranges, puts, deletes, an unconditional
//! transaction, leases kept alive and a watch on a prefix, over etcd's v3 gRPC
//! API (tonic, code generated from `proto/etcd.proto` and committed, so that a
//! build needs no `protoc`). Nothing here interprets keys: `membership.rs` does.
//!
//! etcd can be reached over TLS (its CA, and a client certificate for an
//! etcd with `--client-cert-auth`) and as one of its users: the node
//! authenticates with the user's password for a token that every call then
//! carries in its `token` metadata. etcd's tokens expire (a simple token
//! after `--auth-token-ttl` without use, a JWT at its expiry): a call
//! refused for an invalid token authenticates again and is sent once more.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod pb;

use crate::config::EtcdAccess;
use pb::auth_client::AuthClient;
use pb::kv_client::KvClient;
use pb::lease_client::LeaseClient;
use pb::watch_client::WatchClient;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

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
            Error::Call(status) if status.message().contains("user name is empty") => write!(
                f,
                "{}: etcd's authentication is enabled: give the node --etcd-user and its \
                 password (--etcd-password-file or CRUCIAL_ETCD_PASSWORD)",
                status.message()
            ),
            Error::Call(status) if dropped(status) => write!(
                f,
                "{}: etcd dropped the connection; check that the node's TLS matches etcd's \
                 (--etcd-ca for an etcd serving TLS, --etcd-cert and --etcd-key for one with \
                 --client-cert-auth)",
                status.message()
            ),
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

/// The token of etcd's authentication, put on every call once there is one.
#[derive(Clone, Default)]
struct AuthToken(Arc<RwLock<Option<MetadataValue<Ascii>>>>);

impl tonic::service::Interceptor for AuthToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let token = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(token) = token {
            request.metadata_mut().insert("token", token);
        }
        Ok(request)
    }
}

type Service = InterceptedService<Channel, AuthToken>;

/// An etcd user's name and password, to authenticate again when a token
/// expired.
struct User {
    name: String,
    password: String,
}

/// A connection to an etcd cluster (cheap to clone: one HTTP/2 channel,
/// re-established by tonic when it breaks).
#[derive(Clone)]
pub struct Etcd {
    kv: KvClient<Service>,
    lease: LeaseClient<Service>,
    watch: WatchClient<Service>,
    auth: AuthClient<Channel>,
    token: AuthToken,
    user: Option<Arc<User>>,
}

/// The endpoint of `address` (`host:port`, `http://` or `https://`), over
/// TLS when `tls` is given.
fn endpoint(
    address: &str,
    tls: Option<&ClientTlsConfig>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Endpoint, Error> {
    let url = match (address.split_once("://"), tls) {
        (Some(("http", _)), Some(_)) => {
            return Err(Error::Connect(format!(
                "{address}: --etcd-ca is given, so etcd is reached over TLS: write the \
                 endpoint as host:port or https://host:port"
            )))
        }
        (Some(("https", _)), None) => {
            return Err(Error::Connect(format!(
                "{address}: an https endpoint needs --etcd-ca, the CA of etcd's certificate"
            )))
        }
        (Some(_), _) => address.to_string(),
        (None, Some(_)) => format!("https://{address}"),
        (None, None) => format!("http://{address}"),
    };
    let mut endpoint = Endpoint::from_shared(url)
        .map_err(|err| Error::Connect(format!("{address}: {err}")))?
        .connect_timeout(connect_timeout)
        .timeout(timeout);
    if let Some(tls) = tls {
        let host = crucial_protocol::wire::host_of(address.rsplit("://").next().unwrap_or(address));
        endpoint = endpoint
            .tls_config(tls.clone().domain_name(host))
            .map_err(|err| Error::Connect(format!("{address}: TLS: {err}")))?;
    }
    Ok(endpoint)
}

/// The TLS settings of `access`, if it asks for TLS.
fn tls_of(access: &EtcdAccess) -> Result<Option<ClientTlsConfig>, Error> {
    let Some(ca) = &access.ca else {
        return Ok(None);
    };
    let read = |path: &std::path::Path, flag: &str| {
        std::fs::read(path).map_err(|e| Error::Connect(format!("{flag} {}: {e}", path.display())))
    };
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca, "--etcd-ca")?));
    if let Some((cert, key)) = &access.identity {
        tls = tls.identity(Identity::from_pem(
            read(cert, "--etcd-cert")?,
            read(key, "--etcd-key")?,
        ));
    }
    Ok(Some(tls))
}

/// Whether a call failed because the connection broke under it, as a TLS
/// handshake that etcd refused does.
fn dropped(status: &tonic::Status) -> bool {
    matches!(
        (status.code(), status.message()),
        (tonic::Code::Unknown, "transport error")
            | (tonic::Code::Cancelled, "operation was canceled")
    )
}

/// Whether etcd refused a call for its token (expired, or etcd restarted).
fn invalid_token(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unauthenticated && status.message().contains("invalid auth token")
}

impl Etcd {
    /// Connects to `endpoints` (`host:port`) as `access` says, and
    /// authenticates if it names a user; each call (not a stream) gives up
    /// after `timeout`.
    pub async fn connect(
        endpoints: &[String],
        access: &EtcdAccess,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Etcd, Error> {
        let tls = tls_of(access)?;
        let endpoints = endpoints
            .iter()
            .map(|e| endpoint(e, tls.as_ref(), connect_timeout, timeout))
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
        let user = match &access.user {
            None => None,
            Some((name, password)) => {
                let password = password.read().map_err(|e| Error::Connect(e.to_string()))?;
                if password.is_empty() {
                    return Err(Error::Connect(format!(
                        "no password for etcd user `{name}`: give --etcd-password-file or \
                         CRUCIAL_ETCD_PASSWORD"
                    )));
                }
                Some(Arc::new(User {
                    name: name.clone(),
                    password,
                }))
            }
        };
        let token = AuthToken::default();
        let etcd = Etcd {
            kv: KvClient::with_interceptor(channel.clone(), token.clone()),
            lease: LeaseClient::with_interceptor(channel.clone(), token.clone()),
            watch: WatchClient::with_interceptor(channel.clone(), token.clone()),
            auth: AuthClient::new(channel),
            token,
            user,
        };
        if etcd.user.is_some() {
            etcd.authenticate()
                .await
                .map_err(|e| Error::Connect(e.to_string()))?;
        }
        Ok(etcd)
    }

    /// Asks etcd for a token for the user, and puts it on the calls.
    async fn authenticate(&self) -> Result<(), Error> {
        let Some(user) = &self.user else {
            return Ok(());
        };
        let reply = self
            .auth
            .clone()
            .authenticate(pb::AuthenticateRequest {
                name: user.name.clone(),
                password: user.password.clone(),
            })
            .await
            .map_err(|status| {
                if dropped(&status) {
                    return Error::Call(status);
                }
                Error::Connect(format!(
                    "etcd refused user `{}`: {}",
                    user.name,
                    status.message()
                ))
            })?
            .into_inner();
        let token = reply
            .token
            .parse()
            .map_err(|_| Error::Connect("etcd gave a token a header cannot carry".to_string()))?;
        *self.token.0.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(())
    }

    /// Authenticates again after etcd refused the token.
    async fn reauthenticate(&self) -> Result<(), Error> {
        if let Some(user) = &self.user {
            tracing::info!(
                user = user.name,
                "etcd refused the node's token (expired): authenticating again"
            );
        }
        self.authenticate().await
    }

    /// Sends a call; if etcd refused its token, authenticates again and
    /// sends it once more.
    async fn call<T, F>(&self, send: impl Fn() -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.retried(|| {
            let sent = send();
            async move { Ok(sent.await?.into_inner()) }
        })
        .await
    }

    /// Runs `attempt` (a call, or the opening of a stream); if etcd refused
    /// its token, authenticates again and runs it once more.
    async fn retried<T, F>(&self, attempt: impl Fn() -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        match attempt().await {
            Err(Error::Call(status)) if self.user.is_some() && invalid_token(&status) => {
                self.reauthenticate().await?;
                attempt().await
            }
            done => done,
        }
    }

    /// Grants a lease of `ttl` seconds; its id.
    pub async fn grant(&self, ttl: i64) -> Result<i64, Error> {
        let reply = self
            .call(|| {
                let mut lease = self.lease.clone();
                async move {
                    lease
                        .lease_grant(pb::LeaseGrantRequest { ttl, id: 0 })
                        .await
                }
            })
            .await?;
        if reply.error.is_empty() {
            Ok(reply.id)
        } else {
            Err(Error::Call(tonic::Status::unknown(reply.error)))
        }
    }

    /// Revokes a lease (its keys are deleted).
    pub async fn revoke(&self, lease: i64) -> Result<(), Error> {
        self.call(|| {
            let mut client = self.lease.clone();
            async move {
                client
                    .lease_revoke(pb::LeaseRevokeRequest { id: lease })
                    .await
            }
        })
        .await?;
        Ok(())
    }

    /// Keeps `lease` alive through one keep-alive stream. The first renewal
    /// is sent with the call: etcd sends the stream's headers with its first
    /// answer, so a call that sent nothing would wait for them forever.
    pub async fn keep_alive(&self, lease: i64) -> Result<KeepAlive, Error> {
        self.retried(|| self.open_keep_alive(lease)).await
    }

    async fn open_keep_alive(&self, lease: i64) -> Result<KeepAlive, Error> {
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
        let request = pb::PutRequest {
            key: key.into_bytes(),
            value,
            lease,
            prev_kv: true,
        };
        let reply = self
            .call(|| {
                let (mut kv, request) = (self.kv.clone(), request.clone());
                async move { kv.put(request).await }
            })
            .await?;
        Ok((revision(reply.header), reply.prev_kv))
    }

    /// Deletes `key`; the revision after.
    pub async fn delete(&self, key: String) -> Result<i64, Error> {
        let request = pb::DeleteRangeRequest {
            key: key.into_bytes(),
            range_end: Vec::new(),
        };
        let reply = self
            .call(|| {
                let (mut kv, request) = (self.kv.clone(), request.clone());
                async move { kv.delete_range(request).await }
            })
            .await?;
        Ok(revision(reply.header))
    }

    /// Every key under `prefix` as of revision `at` (0: now), and etcd's
    /// revision now.
    pub async fn get_prefix(&self, prefix: &str, at: i64) -> Result<(i64, Vec<KeyValue>), Error> {
        let request = pb::RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: prefix_end(prefix.as_bytes()),
            limit: 0,
            revision: at,
        };
        let reply = self
            .call(|| {
                let (mut kv, request) = (self.kv.clone(), request.clone());
                async move { kv.range(request).await }
            })
            .await?;
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
        let request = pb::TxnRequest {
            compare: Vec::new(),
            success,
            failure: Vec::new(),
        };
        Ok(revision(self.txn_of(request).await?.header))
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
            .txn_of(pb::TxnRequest {
                compare: vec![absent],
                success: vec![put],
                failure: vec![get],
            })
            .await?;
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

    async fn txn_of(&self, request: pb::TxnRequest) -> Result<pb::TxnResponse, Error> {
        self.call(|| {
            let (mut kv, request) = (self.kv.clone(), request.clone());
            async move { kv.txn(request).await }
        })
        .await
    }

    /// Watches every key under `prefix` from `start_revision` on.
    pub async fn watch_prefix(&self, prefix: &str, start_revision: i64) -> Result<Watch, Error> {
        self.retried(|| self.open_watch(prefix, start_revision))
            .await
    }

    async fn open_watch(&self, prefix: &str, start_revision: i64) -> Result<Watch, Error> {
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
