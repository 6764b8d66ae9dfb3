//! What a node keeps for replication: the backups it holds for other heads
//! (see `replication.rs`) and its links to the replicas of the objects it
//! heads. Plain state, so the cluster's part of a node can own it.

// Built into every node, driven only by membership on etcd (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use super::link::Link;
use crucial_protocol::wire::ObjectCopy;
use std::collections::HashMap;
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

/// This node's part of replication: its connections to replicas, and the
/// backups it keeps for other heads.
pub struct Replication {
    peer_id: u64,
    max_frame: usize,
    peers: Mutex<HashMap<String, Arc<Link>>>,
    /// Held while a link is being opened.
    connecting: tokio::sync::Mutex<()>,
    backups: Mutex<HashMap<(String, String), Backup>>,
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

    /// Keeps only the backups `keep` picks.
    pub fn retain(&self, mut keep: impl FnMut(&str, &str, &Backup) -> bool) {
        lock(&self.backups).retain(|(t, k), b| keep(t, k, b));
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
        let link = Link::connect(&port, self.peer_id, self.max_frame, CONNECT_WITHIN).await?;
        lock(&self.peers).insert(addr.to_string(), Arc::clone(&link));
        Ok(link)
    }
}
