//! Deduplication of retried requests: a bounded memory of recent replies per client.
//!
//! A request is named by `(client id, request id)`. A client that lost its
//! connection re-sends in-flight mutating calls with the same ids; the node
//! answers them from here instead of running them again. Each client keeps its
//! last `window` replies; at most `clients` clients are remembered, the least
//! recently seen being forgotten first. Read-only calls are not recorded.

use crucial::__private::wire::Outcome;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What to do with an incoming mutating request.
pub enum Begin {
    /// First time seen: run it, then call [`Dedup::finish`].
    Fresh,
    /// Already answered: send this again.
    Done(Outcome),
    /// Running right now (a retry raced the original): wait, then ask again.
    InFlight(Arc<Notify>),
}

enum Entry {
    /// Running; the notifier is created only if a retry comes to wait for it.
    Running(Option<Arc<Notify>>),
    Done(Outcome),
}

impl Entry {
    /// Forgets the entry. Retries waiting for a running request are woken:
    /// they ask again, find nothing and run (the bounded memory has lost that
    /// request; waiting would never end, as `finish` finds no entry to wake).
    fn forget(self) {
        if let Entry::Running(Some(notify)) = self {
            notify.notify_waiters();
        }
    }
}

struct Window {
    entries: HashMap<u64, Entry>,
    order: VecDeque<u64>,
    last_seen: u64,
}

struct Clients {
    by_id: HashMap<u64, Window>,
    clock: u64,
}

/// The node's deduplication table.
pub struct Dedup {
    clients: Mutex<Clients>,
    window: usize,
    max_clients: usize,
}

impl Dedup {
    /// A table remembering `window` replies for each of at most `max_clients` clients.
    pub fn new(window: usize, max_clients: usize) -> Dedup {
        Dedup {
            clients: Mutex::new(Clients {
                by_id: HashMap::new(),
                clock: 0,
            }),
            window: window.max(1),
            max_clients: max_clients.max(1),
        }
    }

    /// Registers a request before running it.
    pub fn begin(&self, client: u64, request: u64) -> Begin {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.clock += 1;
        let now = clients.clock;
        if !clients.by_id.contains_key(&client) && clients.by_id.len() >= self.max_clients {
            if let Some(oldest) = clients
                .by_id
                .iter()
                .min_by_key(|(_, w)| w.last_seen)
                .map(|(id, _)| *id)
            {
                if let Some(forgotten) = clients.by_id.remove(&oldest) {
                    forgotten.entries.into_values().for_each(Entry::forget);
                }
            }
        }
        let window = clients.by_id.entry(client).or_insert_with(|| Window {
            entries: HashMap::new(),
            order: VecDeque::new(),
            last_seen: now,
        });
        window.last_seen = now;
        match window.entries.get_mut(&request) {
            Some(Entry::Done(outcome)) => return Begin::Done(outcome.clone()),
            Some(Entry::Running(notify)) => {
                return Begin::InFlight(Arc::clone(
                    notify.get_or_insert_with(|| Arc::new(Notify::new())),
                ))
            }
            None => {}
        }
        window.entries.insert(request, Entry::Running(None));
        window.order.push_back(request);
        while window.order.len() > self.window {
            if let Some(old) = window.order.pop_front() {
                if let Some(entry) = window.entries.remove(&old) {
                    entry.forget();
                }
            }
        }
        Begin::Fresh
    }

    /// Looks a request up without registering it.
    pub fn peek(&self, client: u64, request: u64) -> Begin {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        match clients
            .by_id
            .get_mut(&client)
            .and_then(|w| w.entries.get_mut(&request))
        {
            Some(Entry::Done(outcome)) => Begin::Done(outcome.clone()),
            Some(Entry::Running(notify)) => Begin::InFlight(Arc::clone(
                notify.get_or_insert_with(|| Arc::new(Notify::new())),
            )),
            None => Begin::Fresh,
        }
    }

    /// Records the reply of a request registered with [`Dedup::begin`].
    pub fn finish(&self, client: u64, request: u64, outcome: &Outcome) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let Some(window) = clients.by_id.get_mut(&client) else {
            return;
        };
        if let Some(entry) = window.entries.get_mut(&request) {
            if let Entry::Running(Some(notify)) =
                std::mem::replace(entry, Entry::Done(outcome.clone()))
            {
                notify.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_a_finished_request_and_forgets_old_ones() {
        let dedup = Dedup::new(2, 10);
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        assert!(matches!(dedup.begin(1, 1), Begin::InFlight(_)));
        dedup.finish(1, 1, &Ok(vec![7]));
        assert!(matches!(dedup.begin(1, 1), Begin::Done(Ok(v)) if v == vec![7]));
        assert!(matches!(dedup.begin(1, 2), Begin::Fresh));
        assert!(matches!(dedup.begin(1, 3), Begin::Fresh));
        // Window of 2: request 1 is forgotten.
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        // Another client's ids are independent.
        assert!(matches!(dedup.begin(2, 2), Begin::Fresh));
    }

    #[tokio::test]
    async fn a_retry_waiting_for_a_forgotten_request_is_woken() {
        let dedup = Dedup::new(2, 1);
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        let Begin::InFlight(notify) = dedup.begin(1, 1) else {
            panic!("request 1 is running")
        };
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // Two newer requests push the running one out of the window of 2.
        let _ = dedup.begin(1, 2);
        let _ = dedup.begin(1, 3);
        tokio::time::timeout(std::time::Duration::from_secs(10), woken)
            .await
            .expect("the waiter is woken when its request is forgotten");
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
        // The same when the whole client is forgotten.
        let Begin::InFlight(notify) = dedup.begin(1, 1) else {
            panic!("request 1 is running again")
        };
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let _ = dedup.begin(2, 1);
        tokio::time::timeout(std::time::Duration::from_secs(10), woken)
            .await
            .expect("the waiter is woken when its client is forgotten");
    }

    #[test]
    fn forgets_least_recently_seen_client() {
        let dedup = Dedup::new(4, 2);
        let _ = dedup.begin(1, 1);
        dedup.finish(1, 1, &Ok(vec![]));
        let _ = dedup.begin(2, 1);
        let _ = dedup.begin(3, 1); // evicts client 1
        assert!(matches!(dedup.begin(1, 1), Begin::Fresh));
    }
}
