//! Per-application quotas: how much of one node each application may hold,
//! on top of the node-wide limits (`--max-connections`, `--max-parked`, ...),
//! so that one application cannot take the node from the others.
//!
//! An application is what a token proves (see `auth`): quotas apply on a
//! node with credentials, to the connections of applications (an admin's
//! and the nodes' own are not counted). Each quota has a flag, a gauge per
//! application on the metrics page, and a `Limit` error that names the flag
//! and the application when a request would pass it:
//!
//! * `--app-max-objects`: the application's shared objects on this node. A
//!   call or a create that would make one more is refused; objects that
//!   arrive from other nodes (handoffs, failover) are counted, never
//!   refused, so a join or a crash loses nothing. Creations that race may
//!   pass the quota by the number of them at that moment.
//! * `--app-max-bytes`: the size of its shared objects' states on this node
//!   (measured as `shared_objects::census` says). Past it, the application's
//!   writes and creates are refused; its reads and deletes are served, so it
//!   can make room (as etcd does past its `--quota-backend-bytes`). The write
//!   that crosses the quota is let through: a write's growth is known only
//!   once it ran.
//! * `--app-max-lambda-objects`: its lambda objects on this node (those a
//!   constructor made). A constructor that would make one more fails its
//!   workflow with the `Limit`, nothing of it written (`txn::census`).
//! * `--app-max-connections`: its open connections to the client port; the
//!   `Hello` of one more is refused.
//! * `--app-max-parked`: its blocking calls waiting at once; one more runs
//!   but does not park (as with `--max-parked`).

use crate::metrics::family;
use crucial::RemoteError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One kind of quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Shared objects held on the node.
    Objects,
    /// The size of the states of its shared objects on the node.
    Bytes,
    /// Lambda objects held on the node.
    LambdaObjects,
    /// Open connections to the client port.
    Connections,
    /// Blocking calls parked at once.
    Parked,
}

impl Quota {
    const ALL: [Quota; 5] = [
        Quota::Objects,
        Quota::Bytes,
        Quota::LambdaObjects,
        Quota::Connections,
        Quota::Parked,
    ];

    /// The flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Quota::Objects => "--app-max-objects",
            Quota::Bytes => "--app-max-bytes",
            Quota::LambdaObjects => "--app-max-lambda-objects",
            Quota::Connections => "--app-max-connections",
            Quota::Parked => "--app-max-parked",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// What it counts, for messages.
    fn counts(self) -> &'static str {
        match self {
            Quota::Objects => "shared objects on this node",
            Quota::LambdaObjects => "lambda objects on this node",
            Quota::Bytes => {
                "bytes of shared objects' state on this node (reads and deletes are still served)"
            }
            Quota::Connections => "open connections to this node",
            Quota::Parked => "blocking calls parked on this node",
        }
    }

    fn metric(self) -> (&'static str, &'static str) {
        match self {
            Quota::Objects => (
                "crucial_app_objects",
                "Shared objects each application holds on the node (--app-max-objects).",
            ),
            Quota::LambdaObjects => (
                "crucial_app_lambda_objects",
                "Lambda objects each application holds on the node (--app-max-lambda-objects).",
            ),
            Quota::Bytes => (
                "crucial_app_bytes",
                "Bytes of state of each application's shared objects on the node \
                 (--app-max-bytes; measured only with it).",
            ),
            Quota::Connections => (
                "crucial_app_connections",
                "Open connections of each application (--app-max-connections).",
            ),
            Quota::Parked => (
                "crucial_app_parked",
                "Blocking calls of each application parked now (--app-max-parked).",
            ),
        }
    }
}

/// The limits, one per [`Quota`] (`None`: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// `--app-max-objects`.
    pub objects: Option<u64>,
    /// `--app-max-bytes`.
    pub bytes: Option<u64>,
    /// `--app-max-lambda-objects`.
    pub lambda_objects: Option<u64>,
    /// `--app-max-connections`.
    pub connections: Option<u64>,
    /// `--app-max-parked`.
    pub parked: Option<u64>,
}

impl QuotaLimits {
    fn of(&self, quota: Quota) -> Option<u64> {
        match quota {
            Quota::Objects => self.objects,
            Quota::Bytes => self.bytes,
            Quota::LambdaObjects => self.lambda_objects,
            Quota::Connections => self.connections,
            Quota::Parked => self.parked,
        }
    }
}

/// What one application uses now.
#[derive(Debug, Default)]
struct Usage {
    used: [AtomicU64; 5],
    refused: [AtomicU64; 5],
}

/// Every application's use of the node, against the limits.
#[derive(Debug, Default)]
pub struct Quotas {
    limits: QuotaLimits,
    apps: Mutex<HashMap<Box<str>, Arc<Usage>>>,
}

/// One unit of a quota in use; given back when dropped.
#[derive(Debug)]
pub struct Held {
    usage: Arc<Usage>,
    quota: Quota,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.usage.used[self.quota.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Quotas {
    /// Quotas with these limits.
    pub fn new(limits: QuotaLimits) -> Quotas {
        Quotas {
            limits,
            apps: Mutex::default(),
        }
    }

    fn usage(&self, application: &str) -> Arc<Usage> {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        match apps.get(application) {
            Some(usage) => Arc::clone(usage),
            None => {
                let usage = Arc::new(Usage::default());
                apps.insert(application.into(), Arc::clone(&usage));
                usage
            }
        }
    }

    /// Takes one unit of `quota` for `application`, or refuses with the
    /// error naming the flag, the application and `what` was refused.
    pub fn take(
        &self,
        application: &str,
        quota: Quota,
        what: impl FnOnce() -> String,
    ) -> Result<Held, RemoteError> {
        let usage = self.usage(application);
        let limit = self.limits.of(quota).unwrap_or(u64::MAX);
        let taken =
            usage.used[quota.index()].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used < limit).then_some(used + 1)
            });
        match taken {
            Ok(_) => Ok(Held { usage, quota }),
            Err(_) => {
                usage.refused[quota.index()].fetch_add(1, Ordering::Relaxed);
                Err(self.error(application, quota, what()))
            }
        }
    }

    /// Refuses `what` to `application`, at its `quota` (checked elsewhere:
    /// an object quota against the table's count): counts the refusal and
    /// returns the error naming the flag and the application.
    pub fn refuse(&self, application: &str, quota: Quota, what: String) -> RemoteError {
        self.refused(application, quota);
        self.error(application, quota, what)
    }

    /// The error of `application` at its `quota`.
    fn error(&self, application: &str, quota: Quota, what: String) -> RemoteError {
        RemoteError::Limit {
            limit: quota.flag().into(),
            value: self.limits.of(quota).unwrap_or(u64::MAX),
            detail: format!(
                "{what}: application `{application}` is at its quota of {} (other \
                 applications are not affected)",
                quota.counts()
            ),
        }
    }

    /// Counts a refusal whose error is made elsewhere (a workflow's).
    pub fn refused(&self, application: &str, quota: Quota) {
        self.usage(application).refused[quota.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The limit of `quota`, if any.
    pub fn limit(&self, quota: Quota) -> Option<u64> {
        self.limits.of(quota)
    }

    /// The quotas' families on the metrics page: each application's use
    /// (shared objects and bytes as `census` counts them, lambda objects as
    /// `lambda` does, by application), the limits, and the refusals.
    pub fn render(
        &self,
        out: &mut String,
        census: &HashMap<String, (u64, u64)>,
        lambda: &HashMap<String, u64>,
    ) {
        use std::fmt::Write;
        let apps: Vec<(Box<str>, Arc<Usage>)> = {
            let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            let mut all: Vec<_> = apps
                .iter()
                .map(|(a, u)| (a.clone(), Arc::clone(u)))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        };
        for quota in Quota::ALL {
            if quota == Quota::Bytes && self.limits.bytes.is_none() {
                // Sizes are measured only under a byte quota.
                continue;
            }
            let (name, help) = quota.metric();
            family(out, name, "gauge", help);
            match quota {
                Quota::Objects | Quota::Bytes => {
                    let mut counted: Vec<_> = census.iter().collect();
                    counted.sort();
                    for (app, (objects, bytes)) in counted {
                        let n = if quota == Quota::Objects {
                            objects
                        } else {
                            bytes
                        };
                        let _ = writeln!(out, "{name}{{application=\"{}\"}} {n}", escape(app));
                    }
                }
                Quota::LambdaObjects => {
                    let mut counted: Vec<_> = lambda.iter().collect();
                    counted.sort();
                    for (app, n) in counted {
                        let _ = writeln!(out, "{name}{{application=\"{}\"}} {n}", escape(app));
                    }
                }
                _ => {
                    for (app, usage) in &apps {
                        let n = usage.used[quota.index()].load(Ordering::Relaxed);
                        let _ = writeln!(out, "{name}{{application=\"{}\"}} {n}", escape(app));
                    }
                }
            }
            if let Some(limit) = self.limits.of(quota) {
                let limit_name = format!("{name}_limit");
                family(
                    out,
                    &limit_name,
                    "gauge",
                    &format!("The node's {}.", quota.flag()),
                );
                let _ = writeln!(out, "{limit_name} {limit}");
            }
        }
        let name = "crucial_app_quota_refusals_total";
        family(
            out,
            name,
            "counter",
            "Requests refused because their application was at a quota (by flag).",
        );
        for (app, usage) in &apps {
            for quota in Quota::ALL {
                let n = usage.refused[quota.index()].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "{name}{{application=\"{}\",quota=\"{}\"}} {n}",
                        escape(app),
                        quota.flag()
                    );
                }
            }
        }
    }
}

/// A label value with `\` and `"` escaped (an application name comes from
/// the credentials file).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_refuses_past_its_limit_names_its_flag_and_frees_on_drop() {
        let quotas = Quotas::new(QuotaLimits {
            connections: Some(2),
            bytes: Some(1000),
            ..QuotaLimits::default()
        });
        let what = || "a connection".to_string();
        let a = quotas.take("shop", Quota::Connections, what).unwrap();
        let _b = quotas.take("shop", Quota::Connections, what).unwrap();
        match quotas.take("shop", Quota::Connections, what) {
            Err(RemoteError::Limit {
                limit,
                value,
                detail,
            }) => {
                assert_eq!((limit.as_str(), value), ("--app-max-connections", 2));
                assert!(detail.contains("`shop`"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        // Another application is not affected.
        let _c = quotas.take("blog", Quota::Connections, what).unwrap();
        drop(a);
        let _d = quotas.take("shop", Quota::Connections, what).unwrap();
        // No limit: counted only.
        let parked: Vec<_> = (0..100)
            .map(|_| quotas.take("shop", Quota::Parked, what).unwrap())
            .collect();
        let mut page = String::new();
        quotas.render(
            &mut page,
            &HashMap::from([("shop".to_string(), (3, 40))]),
            &HashMap::from([("shop".to_string(), 2)]),
        );
        assert!(
            page.contains("crucial_app_lambda_objects{application=\"shop\"} 2"),
            "{page}"
        );
        assert!(
            page.contains("crucial_app_parked{application=\"shop\"} 100"),
            "{page}"
        );
        assert!(
            page.contains("crucial_app_objects{application=\"shop\"} 3"),
            "{page}"
        );
        assert!(
            page.contains("crucial_app_bytes{application=\"shop\"} 40"),
            "{page}"
        );
        assert!(page.contains("crucial_app_connections_limit 2"), "{page}");
        assert!(
            page.contains(
                "crucial_app_quota_refusals_total{application=\"shop\",quota=\"--app-max-connections\"} 1"
            ),
            "{page}"
        );
        drop(parked);
    }
}
