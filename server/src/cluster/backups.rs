//! What a node keeps for replication: the backups it holds for other heads
//! (see `replication.rs`) and its links to the replicas of the objects it
//! heads. Plain state, so the cluster's part of a node can own it.

// Built into every node, driven only by membership on etcd (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use super::link::Link;
use bytes::Bytes;
use crucial::ObjectId;
use crucial_protocol::wire::{AppCopy, EntryCopy, ObjectCopy, PreparedCopy};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long opening a connection to a replica may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);

/// A copy of an object whose head is another node.
#[derive(Debug, Clone)]
pub struct Backup {
    /// The node that sent it (its head, or after a crash the node that held
    /// it).
    pub from: String,
    /// Its version.
    pub version: u64,
    /// Its encoded state; `None`: deleted.
    pub state: Option<Vec<u8>>,
}

/// A copy of an application's lambda objects whose head is another node.
#[derive(Debug, Clone, Default)]
pub struct AppBackup {
    /// The node that sent the newest copy.
    pub from: String,
    /// Each entry's version and value (`None`: deleted).
    pub entries: BTreeMap<(ObjectId, Vec<u8>), (u64, Option<Bytes>)>,
    /// Parts of transactions prepared at the home, by transaction.
    pub prepared: BTreeMap<(u64, u64), PreparedCopy>,
}

/// One entry as it travels in an [`AppCopy`].
pub fn entry_copy(object: &ObjectId, key: &[u8], value: Option<&[u8]>, version: u64) -> EntryCopy {
    EntryCopy {
        object: object.clone(),
        key: serde_bytes::ByteBuf::from(key.to_vec()),
        value: value.map(|v| serde_bytes::ByteBuf::from(v.to_vec())),
        version,
    }
}

/// Why a copy of an application was not kept.
#[derive(Debug)]
pub struct NoBase(pub String);

impl AppBackup {
    /// The highest version of its entries.
    pub fn version(&self) -> u64 {
        self.entries.values().map(|(v, _)| *v).max().unwrap_or(0)
    }

    /// Its entries with values (the deleted ones left out).
    pub fn live(self) -> crate::txn::Writes {
        self.entries
            .into_iter()
            .filter(|(_, (_, value))| value.is_some())
            .map(|(key, (_, value))| (key, value))
            .collect()
    }

    /// The backup as a copy to hand on whole: complete (it began with a
    /// complete copy) and dropping nothing at the receiver (no entry is at
    /// version 0).
    pub fn to_copy(&self, application: &str) -> AppCopy {
        AppCopy {
            application: application.to_string(),
            complete: Some(0),
            entries: self
                .entries
                .iter()
                .map(|((object, key), (version, value))| {
                    entry_copy(object, key, value.as_deref(), *version)
                })
                .collect(),
            prepared: self.prepared.values().cloned().collect(),
            settled: Vec::new(),
        }
    }

    /// Merges `copy` in: an entry keeps its higher version; a complete copy
    /// also drops the entries up to its `as_of` that it does not hold.
    fn merge(&mut self, from: &str, copy: AppCopy) {
        self.from = from.to_string();
        let mut listed = std::collections::HashSet::new();
        for entry in copy.entries {
            let key = (entry.object, entry.key.into_vec());
            if copy.complete.is_some() {
                listed.insert(key.clone());
            }
            let newer = self
                .entries
                .get(&key)
                .is_none_or(|(version, _)| *version <= entry.version);
            if newer {
                let value = entry.value.map(|v| Bytes::from(v.into_vec()));
                self.entries.insert(key, (entry.version, value));
            }
        }
        if let Some(as_of) = copy.complete {
            self.entries
                .retain(|key, (version, _)| *version > as_of || listed.contains(key));
            self.prepared.clear();
        }
        for part in copy.prepared {
            self.prepared.insert((part.manager, part.seq), part);
        }
        for txn in copy.settled {
            self.prepared.remove(&txn);
        }
    }
}

/// This node's part of replication: its connections to replicas, and the
/// backups it keeps for other heads.
pub struct Replication {
    peer_id: u64,
    max_frame: usize,
    peers: Mutex<HashMap<String, Arc<Link>>>,
    /// Held while a link is being opened.
    connecting: tokio::sync::Mutex<()>,
    backups: Mutex<HashMap<(String, String), Backup>>,
    apps: Mutex<HashMap<String, AppBackup>>,
    /// The node's credentials: links to peers present the cluster's token.
    pub(super) auth: Option<Arc<crate::auth::Auth>>,
    /// TLS to the peers' ports (`--tls-ca`), when the cluster serves it.
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// Signalled whenever an object's acknowledged version rises.
    pub acked: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Replication {
    pub fn new(peer_id: u64, max_frame: usize) -> Replication {
        Replication {
            peer_id,
            max_frame,
            peers: Mutex::default(),
            connecting: tokio::sync::Mutex::new(()),
            backups: Mutex::default(),
            apps: Mutex::default(),
            auth: None,
            tls: None,
            acked: tokio::sync::Notify::new(),
        }
    }

    /// Keeps `copy`, sent by `from`, unless the backup here is newer (a
    /// higher version): copies may arrive in any order, from the head or,
    /// after a crash, from the nodes that held its backups.
    pub fn keep(&self, from: &str, copy: &ObjectCopy<'_>) {
        let mut backups = lock(&self.backups);
        let key = (copy.type_name.to_string(), copy.key.to_string());
        if backups
            .get(&key)
            .is_some_and(|here| here.version > copy.version)
        {
            return;
        }
        backups.insert(
            key,
            Backup {
                from: from.to_string(),
                version: copy.version,
                state: copy.state.map(|s| s.to_vec()),
            },
        );
    }

    /// Merges `copy`, sent by `from`, into the backup of its application.
    /// A commit's copy is refused while no complete copy of the application
    /// is here: a backup made of some commits only would lack the entries
    /// they did not write (the head then sends a complete copy).
    pub fn keep_app(&self, from: &str, copy: AppCopy) -> Result<(), NoBase> {
        let mut apps = lock(&self.apps);
        match apps.get_mut(&copy.application) {
            Some(backup) => backup.merge(from, copy),
            None if copy.complete.is_some() => {
                let app = copy.application.clone();
                let mut backup = AppBackup::default();
                backup.merge(from, copy);
                apps.insert(app, backup);
            }
            None => return Err(NoBase(copy.application)),
        }
        Ok(())
    }

    /// Takes the backup of an application (it is becoming the application).
    pub fn take_app(&self, application: &str) -> Option<AppBackup> {
        lock(&self.apps).remove(application)
    }

    /// The homes this node keeps backups of.
    pub fn app_homes(&self) -> Vec<String> {
        lock(&self.apps).keys().cloned().collect()
    }

    /// Every application backup.
    pub fn app_backups(&self) -> Vec<(String, AppBackup)> {
        lock(&self.apps)
            .iter()
            .map(|(app, b)| (app.clone(), b.clone()))
            .collect()
    }

    /// Keeps only the application backups `keep` picks.
    pub fn retain_apps(&self, mut keep: impl FnMut(&str, &AppBackup) -> bool) {
        lock(&self.apps).retain(|app, b| keep(app, b));
    }

    /// Takes the backup of an object (it is becoming the object).
    pub fn take(&self, type_name: &str, key: &str) -> Option<Backup> {
        lock(&self.backups).remove(&(type_name.to_string(), key.to_string()))
    }

    /// Every backup, with its type and key.
    pub fn backups(&self) -> Vec<(String, String, Backup)> {
        lock(&self.backups)
            .iter()
            .map(|((t, k), b)| (t.clone(), k.clone(), b.clone()))
            .collect()
    }

    /// Keeps only the backups `keep` picks. `keep` runs under this table's
    /// lock: it must take no other lock (see [`Replication::holders`]).
    pub fn retain(&self, mut keep: impl FnMut(&str, &str, &Backup) -> bool) {
        lock(&self.backups).retain(|(t, k), b| keep(t, k, b));
    }

    /// Every backup's type, key and sender, without their states: what a
    /// decision that must look at other locks (the object table) reads
    /// first, so that it never holds this lock while taking one of those.
    /// A call that finds no object takes the object table's lock and then
    /// this one (to promote a backup); the reverse order deadlocks them.
    pub fn holders(&self) -> Vec<(String, String, String)> {
        lock(&self.backups)
            .iter()
            .map(|((t, k), b)| (t.clone(), k.clone(), b.from.clone()))
            .collect()
    }

    /// The link to member `addr`'s peer port (`port`, from its etcd record),
    /// opened if needed.
    pub async fn peer(&self, addr: &str, port: Option<String>) -> Result<Arc<Link>, String> {
        if let Some(link) = lock(&self.peers).get(addr).filter(|l| !l.is_dead()) {
            return Ok(Arc::clone(link));
        }
        let port =
            port.ok_or_else(|| format!("member {addr} has not said where its peer port is (yet)"))?;
        // One link per member at a time: an object's copies reach a replica
        // in the order they were sent only over one connection (two calls
        // that both found no link would otherwise open two).
        let _connecting = self.connecting.lock().await;
        if let Some(link) = lock(&self.peers).get(addr).filter(|l| !l.is_dead()) {
            return Ok(Arc::clone(link));
        }
        let token = self.auth.as_ref().and_then(|auth| auth.cluster_token());
        let link = Link::connect(
            &port,
            self.peer_id,
            token.as_ref(),
            self.tls.as_ref(),
            self.max_frame,
            CONNECT_WITHIN,
        )
        .await?;
        lock(&self.peers).insert(addr.to_string(), Arc::clone(&link));
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use crate::cluster::backups::{AppCopy, EntryCopy, ObjectId, Replication};
    use serde_bytes::ByteBuf;

    fn entry(key: &str, value: Option<&str>, version: u64) -> EntryCopy {
        EntryCopy {
            object: ObjectId::new("app", "T", "o"),
            key: ByteBuf::from(key.as_bytes().to_vec()),
            value: value.map(|v| ByteBuf::from(v.as_bytes().to_vec())),
            version,
        }
    }

    fn copy(complete: Option<u64>, entries: Vec<EntryCopy>) -> AppCopy {
        AppCopy {
            application: "app".into(),
            complete,
            entries,
            prepared: Vec::new(),
            settled: Vec::new(),
        }
    }

    fn values(replication: &Replication) -> Vec<(String, Option<String>, u64)> {
        let backup = replication.take_app("app").expect("a backup");
        backup
            .entries
            .into_iter()
            .map(|((_, k), (v, value))| {
                let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                (text(&k), value.map(|b| text(&b)), v)
            })
            .collect()
    }

    #[test]
    fn an_application_backup_starts_from_a_complete_copy_and_keeps_the_newest_entries() {
        let r = Replication::new(1, 1 << 20);
        assert!(
            r.keep_app("h", copy(None, vec![entry("a", Some("1"), 5)]))
                .is_err(),
            "a commit's copy without a complete one first"
        );
        r.keep_app(
            "h",
            copy(
                Some(10),
                vec![entry("a", Some("1"), 5), entry("b", Some("2"), 8)],
            ),
        )
        .unwrap();
        // Commits arriving out of order: the higher version stays.
        r.keep_app("h", copy(None, vec![entry("a", Some("3"), 12)]))
            .unwrap();
        r.keep_app("h", copy(None, vec![entry("a", Some("old"), 11)]))
            .unwrap();
        r.keep_app("h", copy(None, vec![entry("c", None, 13)]))
            .unwrap();
        // A complete copy as of 12 without `b`: it was deleted; `c` (13)
        // is newer than the copy and stays.
        r.keep_app("h", copy(Some(12), vec![entry("a", Some("3"), 12)]))
            .unwrap();
        assert_eq!(
            values(&r),
            [
                ("a".to_string(), Some("3".to_string()), 12),
                ("c".to_string(), None, 13)
            ]
        );
    }
}
