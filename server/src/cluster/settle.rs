//! The order in which a node walks through views, and what it may do meanwhile.
//!
//! Views come from etcd, in the same order on every node. A node steps through
//! them one at a time: to step to view `E` it hands off every object it holds
//! and does not own in `E` (to its owner in `E`), then tells the other members
//! "done with `E`". A node has *settled* `E` once every node it expects has said
//! done with `E` or a later view; only then does it step to the next view.
//!
//! Why this order is enough: an object moves only by a handoff, which removes
//! it from the sender first, so there is one copy at any time. A node that
//! receives "done with `E`" from `S` has every object `S` owed it for `E`
//! (the handoff's acknowledgement comes before the "done"), and `S` stepped to
//! `E` only after settling the view before, so objects in flight to `S` from
//! earlier views had arrived and were handed on too. Steps never wait for a
//! later view, so no two nodes wait for each other.
//!
//! What a node may do with a missing object meanwhile: create it (from
//! `Default`) only if it owned the object in its last settled view and in every
//! view since, since then no other node can hold it; otherwise the object may
//! be on its way, and the call waits.
//!
//! This module is the bookkeeping only (no I/O), so it is tested alone.

// Built into every node, driven only by membership on etcd (feature "cluster").
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use crucial_protocol::placement::{Placement, View};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// How a node left a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// It drains: it hands off what it holds, then leaves.
    Draining,
    /// It disappeared without a handoff (its etcd lease expired).
    Crashed,
}

/// A range of objects lost with a crashed node: what it owned in its last view.
#[derive(Debug, Clone)]
pub struct LostRange {
    /// The crashed node.
    pub node: String,
    /// The first view without it.
    pub epoch: u64,
    /// Its last view, whose ring says which objects it owned.
    pub placement: Arc<Placement>,
    /// The views before it since the last one it is known to have stepped to
    /// (said done with): it held their objects too — a node that crashed
    /// before handing off what a view moved away from it still had them.
    pub earlier: Vec<Arc<Placement>>,
}

impl LostRange {
    /// Whether the object was the crashed node's.
    pub fn covers(&self, type_name: &str, key: &str) -> bool {
        std::iter::once(&self.placement)
            .chain(&self.earlier)
            .any(|placement| placement.owner(type_name, key) == self.node)
    }
}

/// What a node may do with a call on an object it does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Absent {
    /// Another node owns it in the newest view.
    NotOwner,
    /// No other node can hold it: create it.
    Create,
    /// It may be on its way here: wait for it.
    Wait,
}

/// One node's walk through the views.
#[derive(Debug)]
pub struct Settler {
    me: String,
    /// The last view this node settled (`None` until the first one, for a
    /// node that joined: it cannot know what others held before).
    settled: Option<Arc<Placement>>,
    /// Views after it, oldest first.
    pending: VecDeque<Arc<Placement>>,
    /// The newest view this node has stepped to (handed off and said done).
    stepped: u64,
    /// Newest "done with view" each node said.
    done: HashMap<String, u64>,
    /// Nodes draining out, with the first view without them.
    leaving: HashMap<String, u64>,
    /// Nodes that crashed: never waited for.
    crashed: BTreeSet<String>,
    /// The epoch of the first view this node saw (it joined in it).
    first: Option<u64>,
    /// Per pending view, its members that hold nothing yet: those the view
    /// before it did not have, and those back at the same address after a
    /// crash (a new process).
    fresh: HashMap<u64, Vec<String>>,
}

impl Settler {
    /// A node that has seen no view yet.
    pub fn new(me: &str) -> Settler {
        Settler {
            me: me.to_string(),
            settled: None,
            pending: VecDeque::new(),
            stepped: 0,
            done: HashMap::new(),
            leaving: HashMap::new(),
            crashed: BTreeSet::new(),
            first: None,
            fresh: HashMap::new(),
        }
    }

    /// The newest view known, if any.
    pub fn current(&self) -> Option<&Arc<Placement>> {
        self.pending.back().or(self.settled.as_ref())
    }

    /// A new view, with how each member of the view before that is missing
    /// from it left. A crash returns the range lost with it.
    pub fn view(&mut self, view: View, departed: &[(String, Departure)]) -> Vec<LostRange> {
        let previous = self.current().cloned();
        let epoch = view.epoch;
        let mut lost = Vec::new();
        for (node, how) in departed {
            match how {
                Departure::Draining => {
                    self.leaving.insert(node.clone(), epoch);
                }
                Departure::Crashed => {
                    lost.extend(self.crash(node, epoch, previous.as_ref()));
                }
            }
        }
        let fresh: Vec<String> = view
            .nodes
            .iter()
            .filter(|n| {
                let known = previous
                    .as_ref()
                    .is_some_and(|p| p.view().nodes.contains(n));
                let restarted = departed
                    .iter()
                    .any(|(d, how)| d == *n && *how == Departure::Crashed);
                !known || restarted
            })
            .cloned()
            .collect();
        self.fresh.insert(epoch, fresh);
        // A crashed node back at the same address is a new member.
        for node in &view.nodes {
            self.crashed.remove(node);
        }
        self.first.get_or_insert(epoch);
        self.pending.push_back(Arc::new(Placement::new(view)));
        lost
    }

    /// A draining node disappeared: finished (it said done with the view it
    /// left in) or crashed midway, whose objects not yet handed off are lost.
    pub fn gone(&mut self, node: &str, epoch: u64) -> Option<LostRange> {
        let left_in = self.leaving.remove(node)?;
        if self.done.get(node).copied().unwrap_or(0) >= left_in {
            return None;
        }
        let last = self
            .all_views()
            .filter(|p| p.view().epoch < left_in)
            .last()
            .cloned();
        self.crash(node, epoch, last.as_ref())
    }

    fn crash(
        &mut self,
        node: &str,
        epoch: u64,
        last: Option<&Arc<Placement>>,
    ) -> Option<LostRange> {
        if node == self.me {
            // This node left (a drain that ended, or a lease that expired
            // while etcd was out of reach): it still holds what it held.
            return None;
        }
        self.crashed.insert(node.to_string());
        self.leaving.remove(node);
        let last = last.filter(|p| p.view().nodes.iter().any(|n| n == node))?;
        // The newest view it said done with, and every view it was in since.
        let done = self.done.get(node).copied().unwrap_or(0);
        let stepped = self
            .all_views()
            .map(|p| p.view().epoch)
            .filter(|e| *e <= done)
            .max()
            .unwrap_or(0);
        let mut earlier: Vec<Arc<Placement>> = self
            .all_views()
            .filter(|p| p.view().epoch >= stepped && p.view().epoch < last.view().epoch)
            .filter(|p| p.view().nodes.iter().any(|n| n == node))
            .cloned()
            .collect();
        if stepped == 0 {
            // This node joined after the last view the crashed one stepped
            // to: it knows only views with itself. The view before its
            // first one is that view without it (nodes join one a view).
            if let Some(first) = self.all_views().next() {
                let before: Vec<String> = first
                    .view()
                    .nodes
                    .iter()
                    .filter(|n| **n != self.me)
                    .cloned()
                    .collect();
                if before.iter().any(|n| n == node) {
                    earlier.push(Arc::new(Placement::new(View {
                        epoch: first.view().epoch.saturating_sub(1),
                        nodes: before,
                        placed: first.view().placed.clone(),
                        light: first.view().light.clone(),
                    })));
                }
            }
        }
        Some(LostRange {
            node: node.to_string(),
            epoch,
            placement: Arc::clone(last),
            earlier,
        })
    }

    fn all_views(&self) -> impl Iterator<Item = &Arc<Placement>> {
        self.settled.iter().chain(self.pending.iter())
    }

    /// `node` said it is done with `epoch`.
    pub fn done(&mut self, node: &str, epoch: u64) {
        let newest = self.done.entry(node.to_string()).or_insert(0);
        *newest = (*newest).max(epoch);
    }

    /// The view to step to now, if one waits for this node's handoff.
    pub fn next_step(&self) -> Option<Arc<Placement>> {
        self.pending
            .front()
            .filter(|p| p.view().epoch > self.stepped)
            .cloned()
    }

    /// This node has handed off what it owed for view `epoch` and said done.
    pub fn stepped(&mut self, epoch: u64) {
        self.stepped = self.stepped.max(epoch);
        self.fresh.retain(|e, _| *e > epoch);
    }

    /// The members of view `epoch` that hold nothing yet (new, or back
    /// after a crash), until this node stepped to it.
    pub fn fresh(&self, epoch: u64) -> &[String] {
        self.fresh.get(&epoch).map_or(&[], Vec::as_slice)
    }

    /// Whether this node has stepped to view `epoch` (or a later one).
    pub fn has_stepped(&self, epoch: u64) -> bool {
        self.stepped >= epoch
    }

    /// Who this node still waits for before it settles the oldest pending view.
    pub fn waiting_for(&self) -> Vec<String> {
        let Some(next) = self.pending.front() else {
            return Vec::new();
        };
        let epoch = next.view().epoch;
        let mut expected: BTreeSet<&String> = next.view().nodes.iter().collect();
        expected.extend(
            self.leaving
                .iter()
                .filter(|(_, e)| **e == epoch)
                .map(|(n, _)| n),
        );
        expected
            .into_iter()
            .filter(|n| **n != self.me && !self.crashed.contains(*n))
            .filter(|n| self.done.get(*n).copied().unwrap_or(0) < epoch)
            .cloned()
            .collect()
    }

    /// Settles every pending view this node stepped to and nobody holds up;
    /// returns whether one was settled.
    pub fn settle(&mut self) -> bool {
        let mut any = false;
        while let Some(next) = self.pending.front() {
            if next.view().epoch > self.stepped || !self.waiting_for().is_empty() {
                break;
            }
            self.settled = self.pending.pop_front();
            any = true;
        }
        any
    }

    /// Whether `node` said it is done with view `epoch` or a later one: it
    /// had handed over, before, what that view asked of it (this node knows
    /// it only from what it received).
    pub fn said_done(&self, node: &str, epoch: u64) -> bool {
        if node == self.me {
            return self.has_stepped(epoch);
        }
        self.done.get(node).is_some_and(|done| *done >= epoch)
    }

    /// Whether this node joined after view `epoch`: every member had settled
    /// that view (and done what it asked) before this node's first view.
    pub fn joined_after(&self, epoch: u64) -> bool {
        self.first.is_some_and(|first| first > epoch)
    }

    /// The last view this node settled, if any.
    pub fn settled(&self) -> Option<&Arc<Placement>> {
        self.settled.as_ref()
    }

    /// Whether this node has settled a view since it started: every object
    /// owed to it for that view has arrived.
    pub fn has_settled(&self) -> bool {
        self.settled.is_some()
    }

    /// Whether every view known is settled.
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty() && self.settled.is_some()
    }

    /// What to do with a call on an object this node does not hold.
    pub fn absent(&self, type_name: &str, key: &str) -> Absent {
        let Some(current) = self.current() else {
            return Absent::Wait;
        };
        if current.owner(type_name, key) != self.me {
            return Absent::NotOwner;
        }
        match &self.settled {
            Some(_) if self.all_views().all(|p| p.owner(type_name, key) == self.me) => {
                Absent::Create
            }
            _ => Absent::Wait,
        }
    }

    /// Whether this node owns the object in the newest view.
    pub fn owns(&self, type_name: &str, key: &str) -> bool {
        self.current()
            .is_some_and(|p| p.owner(type_name, key) == self.me)
    }
}

#[cfg(test)]
mod tests {
    // Named by its full path: `super` in a file's test module reads as the
    // parent module to the import-cycle check.
    use crate::cluster::settle::{Absent, Departure, Settler};
    use crucial_protocol::placement::{Placement, View};

    fn view(epoch: u64, nodes: &[&str]) -> View {
        View::new(epoch, nodes.iter().map(|n| n.to_string()).collect())
    }

    /// A key owned by `node` in `nodes` and by someone else in `without`.
    fn key_moving(node: &str, nodes: &[&str], from: &[&str]) -> String {
        let with = Placement::new(view(1, nodes));
        let before = Placement::new(view(1, from));
        (0..10_000)
            .map(|i| format!("k{i}"))
            .find(|k| with.owner("T", k) == node && before.owner("T", k) != node)
            .expect("some key moves")
    }

    #[test]
    fn fresh_members_are_the_new_ones_and_those_back_after_a_crash() {
        let mut a = Settler::new("a");
        a.view(view(1, &["a", "b"]), &[]);
        assert_eq!(
            a.fresh(1),
            ["a", "b"],
            "a first view: all hold nothing here"
        );
        a.view(view(2, &["a", "b", "c"]), &[]);
        assert_eq!(a.fresh(2), ["c"]);
        // b restarted at its address: the same members, b holds nothing.
        a.view(
            view(3, &["a", "b", "c"]),
            &[("b".into(), Departure::Crashed)],
        );
        assert_eq!(a.fresh(3), ["b"]);
        a.stepped(2);
        assert!(a.fresh(2).is_empty(), "forgotten once stepped to");
        assert_eq!(a.fresh(3), ["b"]);
    }

    #[test]
    fn a_lone_first_node_settles_at_once_and_creates() {
        let mut a = Settler::new("a");
        assert_eq!(a.absent("T", "k"), Absent::Wait, "no view yet");
        a.view(view(5, &["a"]), &[]);
        assert_eq!(a.next_step().unwrap().view().epoch, 5);
        a.stepped(5);
        assert!(a.settle());
        assert!(a.is_settled());
        assert_eq!(a.absent("T", "k"), Absent::Create);
    }

    #[test]
    fn a_joiner_waits_for_every_member_then_creates() {
        let mut c = Settler::new("c");
        c.view(view(9, &["a", "b", "c"]), &[]);
        c.stepped(9);
        assert!(!c.settle());
        assert_eq!(c.waiting_for(), ["a", "b"]);
        let k = key_moving("c", &["a", "b", "c"], &["a", "b"]);
        assert_eq!(c.absent("T", &k), Absent::Wait);
        c.done("a", 9);
        c.done("b", 12); // a later view's done counts too
        assert!(c.settle());
        assert_eq!(c.absent("T", &k), Absent::Create);
    }

    #[test]
    fn an_old_member_creates_only_what_it_owned_all_along() {
        let mut a = Settler::new("a");
        a.view(view(2, &["a", "b"]), &[]);
        a.stepped(2);
        a.done("b", 2);
        assert!(a.settle());
        a.view(view(3, &["a", "b", "c"]), &[]);
        // Keys a keeps are created at once; keys c takes are not a's.
        let kept = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| Placement::new(view(3, &["a", "b", "c"])).owner("T", k) == "a")
            .unwrap();
        assert_eq!(a.absent("T", &kept), Absent::Create);
        let taken = key_moving("c", &["a", "b", "c"], &["a", "b"]);
        assert_eq!(a.absent("T", &taken), Absent::NotOwner);
    }

    #[test]
    fn a_node_steps_only_after_settling_the_view_before() {
        let mut a = Settler::new("a");
        a.view(view(2, &["a", "b"]), &[]);
        a.view(view(3, &["a", "b", "c"]), &[]);
        assert_eq!(a.next_step().unwrap().view().epoch, 2);
        a.stepped(2);
        assert!(a.next_step().is_none(), "2 not settled yet");
        a.done("b", 2);
        assert!(a.settle());
        assert_eq!(a.next_step().unwrap().view().epoch, 3);
        a.stepped(3);
        a.done("b", 3);
        assert_eq!(a.waiting_for(), ["c"]);
        a.done("c", 3);
        assert!(a.settle());
        assert!(a.is_settled());
    }

    #[test]
    fn a_draining_node_is_waited_for_and_a_crashed_one_is_not() {
        let mut a = Settler::new("a");
        a.view(view(2, &["a", "b", "c"]), &[]);
        a.stepped(2);
        a.done("b", 2);
        a.done("c", 2);
        a.settle();
        // b drains, c crashes, in one view.
        let lost = a.view(
            view(4, &["a"]),
            &[
                ("b".into(), Departure::Draining),
                ("c".into(), Departure::Crashed),
            ],
        );
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].node, "c");
        let ranges = Placement::new(view(2, &["a", "b", "c"]));
        let of_c = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| ranges.owner("T", k) == "c")
            .unwrap();
        assert!(lost[0].covers("T", &of_c));
        a.stepped(4);
        assert_eq!(a.waiting_for(), ["b"]);
        a.done("b", 4);
        assert!(a.settle());
        assert!(a.gone("b", 5).is_none(), "b finished its handoff");
    }

    #[test]
    fn a_node_never_counts_itself_lost() {
        let mut b = Settler::new("b");
        b.view(view(2, &["a", "b"]), &[]);
        b.view(view(3, &["a"]), &[("b".into(), Departure::Draining)]);
        assert!(b.gone("b", 4).is_none());
        assert!(b
            .view(view(5, &[]), &[("b".into(), Departure::Crashed)])
            .is_empty());
    }

    #[test]
    fn a_drain_cut_short_by_a_crash_loses_the_rest() {
        let mut a = Settler::new("a");
        a.view(view(2, &["a", "b"]), &[]);
        a.stepped(2);
        a.done("b", 2);
        a.settle();
        a.view(view(3, &["a"]), &[("b".into(), Departure::Draining)]);
        a.stepped(3);
        assert_eq!(a.waiting_for(), ["b"]);
        let lost = a.gone("b", 4).expect("b crashed while draining");
        assert_eq!(lost.placement.view().epoch, 2);
        assert!(a.waiting_for().is_empty());
        assert!(a.settle());
    }
}
