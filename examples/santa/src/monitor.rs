//! The North Pole monitor: reindeer and elves queue here, Santa picks his next
//! job here. It is an ordinary struct whose waiting methods return `Poll`; the
//! same code runs as a local monitor (variant 1, under a `Mutex` + `Condvar`)
//! and as a shared object on the server (variants 2 and 3, with `#[shared]`).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::task::Poll;

/// Reindeer in the team.
pub const REINDEER: usize = 9;
/// Elves in a group that Santa helps.
pub const ELF_GROUP: usize = 3;

/// What Santa does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Job {
    /// Deliver toys with these reindeer.
    Deliver {
        /// Batch number.
        batch: u64,
        /// Reindeer ids.
        team: Vec<u32>,
    },
    /// Help these elves.
    Help {
        /// Batch number.
        batch: u64,
        /// Elf ids.
        group: Vec<u32>,
        /// Reindeer back and waiting when Santa chose the elves (must be < 9).
        reindeer_waiting: usize,
    },
    /// Christmas is over.
    Stop,
}

/// The monitor's state.
#[crucial::shared]
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct NorthPole {
    /// Reindeer back from vacation, by ticket -> id, in arrival order.
    reindeer: BTreeMap<u64, (u64, u32)>,
    /// Elves waiting for help, by ticket -> (arrival, id).
    elves: BTreeMap<u64, (u64, u32)>,
    /// Tickets taken into a batch and not yet told.
    taken: BTreeMap<u64, u64>,
    arrivals: u64,
    batches: u64,
    stopped: bool,
    /// Ids of everyone Santa ever took, for the invariant checks.
    seen: BTreeSet<u32>,
}

fn take(queue: &mut BTreeMap<u64, (u64, u32)>, n: usize) -> Vec<(u64, u32)> {
    let mut by_arrival: Vec<(u64, u64, u32)> =
        queue.iter().map(|(t, (a, id))| (*a, *t, *id)).collect();
    by_arrival.sort_unstable();
    by_arrival
        .into_iter()
        .take(n)
        .map(|(_, ticket, id)| {
            queue.remove(&ticket);
            (ticket, id)
        })
        .collect()
}

#[crucial::shared]
impl NorthPole {
    /// A reindeer back from vacation waits to be harnessed: `Some(batch)` when
    /// Santa takes its team, `None` when Christmas is over.
    pub fn reindeer_back(&mut self, ticket: u64, id: u32) -> Poll<Option<u64>> {
        self.queue(ticket, id, true)
    }

    /// An elf with a problem waits for Santa: `Some(batch)` when Santa takes its
    /// group of three, `None` when Christmas is over.
    pub fn elf_needs_help(&mut self, ticket: u64, id: u32) -> Poll<Option<u64>> {
        self.queue(ticket, id, false)
    }

    /// Santa sleeps until a full team of reindeer (first: they have priority) or
    /// a group of three elves is waiting.
    pub fn santa_next(&mut self) -> Poll<Job> {
        if self.stopped {
            return Poll::Ready(Job::Stop);
        }
        let (members, deliver) = if self.reindeer.len() >= REINDEER {
            (take(&mut self.reindeer, REINDEER), true)
        } else if self.elves.len() >= ELF_GROUP {
            (take(&mut self.elves, ELF_GROUP), false)
        } else {
            return Poll::Pending;
        };
        self.batches += 1;
        let batch = self.batches;
        let ids: Vec<u32> = members.iter().map(|(_, id)| *id).collect();
        for (ticket, id) in &members {
            self.taken.insert(*ticket, batch);
            self.seen.insert(*id);
        }
        Poll::Ready(if deliver {
            Job::Deliver { batch, team: ids }
        } else {
            Job::Help {
                batch,
                group: ids,
                reindeer_waiting: self.reindeer.len(),
            }
        })
    }

    /// Ends Christmas: waiting and arriving reindeer and elves get `None`.
    pub fn stop(&mut self) {
        self.stopped = true;
    }
}

impl NorthPole {
    fn queue(&mut self, ticket: u64, id: u32, reindeer: bool) -> Poll<Option<u64>> {
        if let Some(batch) = self.taken.remove(&ticket) {
            return Poll::Ready(Some(batch));
        }
        if self.stopped {
            self.reindeer.remove(&ticket);
            self.elves.remove(&ticket);
            return Poll::Ready(None);
        }
        let queue = if reindeer {
            &mut self.reindeer
        } else {
            &mut self.elves
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = queue.entry(ticket) {
            self.arrivals += 1;
            slot.insert((self.arrivals, id));
        }
        Poll::Pending
    }
}
