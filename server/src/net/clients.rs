//! What the client connections hold together, within the node's budgets: how
//! many are open (`--max-connections`) and the bytes they buffer — replies not
//! yet written, requests partly received (`--max-client-memory`).
//!
//! Each connection is a [`Member`] and reports its own bytes. When the total
//! passes the budget, the member holding the most is evicted (as Redis does
//! with `maxmemory-clients`): a client that reads nothing, or sends frames it
//! never finishes, loses its connection before the node loses its memory, and
//! the clients that behave keep theirs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

/// The node's client connections.
pub struct Clients {
    budget: usize,
    max_connections: usize,
    open: AtomicUsize,
    bytes: AtomicUsize,
    next_id: AtomicU64,
    members: Mutex<HashMap<u64, Weak<Member>>>,
    evicted_total: AtomicU64,
}

/// One connection's share.
pub struct Member {
    id: u64,
    clients: Weak<Clients>,
    bytes: AtomicUsize,
    evicted: AtomicBool,
    wake: Notify,
}

impl Clients {
    /// Connections within `max_connections` holding at most `budget` bytes together.
    pub fn new(max_connections: usize, budget: usize) -> Arc<Clients> {
        Arc::new(Clients {
            budget,
            max_connections: max_connections.max(1),
            open: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            members: Mutex::default(),
            evicted_total: AtomicU64::new(0),
        })
    }

    /// A new connection's membership, or `None` if `--max-connections` are
    /// open already. It leaves when the [`Member`] is dropped.
    pub fn join(self: &Arc<Self>) -> Option<Arc<Member>> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max_connections).then_some(open + 1)
            })
            .is_ok();
        if !admitted {
            return None;
        }
        let member = Arc::new(Member {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            clients: Arc::downgrade(self),
            bytes: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        });
        self.lock().insert(member.id, Arc::downgrade(&member));
        Some(member)
    }

    /// The limit on open connections.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Bytes all connections buffer now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Connections closed because the node's client memory was over budget.
    pub fn evicted_total(&self) -> u64 {
        self.evicted_total.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<Member>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Evicts the member holding the most, if the total is over budget. One
    /// at a time: its bytes count until its connection drops them, and the
    /// next growth past the budget evicts the next.
    fn enforce(&self) {
        if self.bytes() <= self.budget {
            return;
        }
        let largest = self
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .filter(|m| !m.evicted.load(Ordering::Acquire))
            .max_by_key(|m| m.bytes());
        let Some(member) = largest.filter(|m| m.bytes() > 0) else {
            return;
        };
        tracing::warn!(
            connection = member.id,
            held = member.bytes(),
            budget = self.budget,
            "closing the connection holding the most buffered bytes: all connections \
             together passed --max-client-memory"
        );
        self.evicted_total.fetch_add(1, Ordering::Relaxed);
        member.evict();
    }
}

impl Member {
    /// Bytes this connection buffers now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// This connection's buffered bytes changed from `before` to `now`.
    pub fn account(&self, before: usize, now: usize) {
        let Some(clients) = self.clients.upgrade() else {
            return;
        };
        if now > before {
            let grew = now - before;
            self.bytes.fetch_add(grew, Ordering::AcqRel);
            clients.bytes.fetch_add(grew, Ordering::AcqRel);
            if clients.bytes() > clients.budget {
                clients.enforce();
            }
        } else if before > now {
            let shrank = before - now;
            self.bytes.fetch_sub(shrank, Ordering::AcqRel);
            clients.bytes.fetch_sub(shrank, Ordering::AcqRel);
        }
    }

    /// Whether the node evicted this connection.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Resolves once the node evicts this connection.
    pub async fn evicted(&self) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.is_evicted() {
                return;
            }
            woken.await;
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(clients) = self.clients.upgrade() {
            clients
                .bytes
                .fetch_sub(self.bytes.load(Ordering::Acquire), Ordering::AcqRel);
            clients.open.fetch_sub(1, Ordering::AcqRel);
            clients.lock().remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_past_the_limit_are_refused_until_one_leaves() {
        let clients = Clients::new(2, 1 << 20);
        let a = clients.join().expect("first");
        let _b = clients.join().expect("second");
        assert!(clients.join().is_none());
        drop(a);
        assert!(clients.join().is_some());
    }

    #[test]
    fn the_largest_member_is_evicted_when_the_total_passes_the_budget() {
        let clients = Clients::new(10, 1000);
        let small = clients.join().expect("small");
        let large = clients.join().expect("large");
        small.account(0, 300);
        large.account(0, 600);
        assert!(!small.is_evicted() && !large.is_evicted());
        small.account(300, 450); // 1050 > 1000: the largest goes
        assert!(large.is_evicted());
        assert!(!small.is_evicted());
        assert_eq!(clients.evicted_total(), 1);
        drop(large);
        assert_eq!(clients.bytes(), 450);
        small.account(450, 0);
        assert_eq!(clients.bytes(), 0);
    }
}
