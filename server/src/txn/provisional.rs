//! Which applications' lambda objects on this node are provisional copies:
//! restored from this node's disk when it started (or handed over by a node
//! that had restored them), with no workflow run on them since.
//!
//! In a cluster, a node that was away may come back with an application
//! that was started afresh elsewhere meanwhile (its loss forgiven, its
//! objects created again). Of the two copies, the provisional one is the
//! older, so it gives way whole: the application's objects are never merged
//! entry by entry from two histories. Once a workflow of the application has
//! run here, its copy is the one in use and is no longer provisional.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Where a provisional copy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// This node's disk, at its start.
    Disk,
    /// A node that handed over its own restored copy.
    Sender(String),
}

/// What to do with an application's objects handed over by another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meeting {
    /// Put them in (nothing here, or more of the same move).
    Take,
    /// Take the provisional copy here out first, then put them in.
    Replace,
    /// Keep the copy here: the one handed over is the older.
    Drop,
}

/// The node's provisional applications.
#[derive(Debug, Default)]
pub struct Provisional {
    apps: Mutex<HashMap<String, Origin>>,
    /// Whether `apps` may hold anything (a workflow checks this first).
    any: AtomicBool,
}

impl Provisional {
    /// The applications restored from this node's disk.
    pub fn from_disk(apps: impl IntoIterator<Item = String>) -> Provisional {
        let apps: HashMap<String, Origin> = apps.into_iter().map(|a| (a, Origin::Disk)).collect();
        Provisional {
            any: AtomicBool::new(!apps.is_empty()),
            apps: Mutex::new(apps),
        }
    }

    fn apps(&self) -> std::sync::MutexGuard<'_, HashMap<String, Origin>> {
        self.apps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A workflow of `application` runs here: its copy is the one in use.
    pub fn confirm(&self, application: &str) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut apps = self.apps();
        apps.remove(application);
        if apps.is_empty() {
            self.any.store(false, Ordering::Release);
        }
    }

    /// `application` leaves this node: whether its copy was provisional
    /// (the receiver is told, so that it keeps a newer copy it holds).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's
    pub fn leaves(&self, application: &str) -> bool {
        self.any.load(Ordering::Acquire) && self.apps().remove(application).is_some()
    }

    /// `application` could not be delivered and is put back here.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // the handoff sender's
    pub fn put_back(&self, application: &str, provisional: bool) {
        if provisional {
            self.apps().insert(application.to_string(), Origin::Disk);
            self.any.store(true, Ordering::Release);
        }
    }

    /// Objects of `application` arrive from `from` (`restored`: the sender's
    /// copy is provisional); `held_here`: this node has objects of it.
    pub fn meet(&self, application: &str, from: &str, restored: bool, held_here: bool) -> Meeting {
        let mut apps = self.apps();
        let here = apps.get(application).cloned();
        let meeting = match (held_here, here, restored) {
            (false, _, _) => Meeting::Take,
            // More of a move of a provisional copy that began earlier.
            (true, Some(Origin::Sender(sender)), true) if sender == from => Meeting::Take,
            // A copy in use beats a provisional one.
            (true, Some(_), false) => Meeting::Replace,
            (true, None, false) => Meeting::Take,
            // Two provisional copies: the one here stays (neither is known
            // newer); or the copy here is in use.
            (true, _, true) => Meeting::Drop,
        };
        match (meeting, restored) {
            (Meeting::Drop, _) => {}
            (_, true) => {
                apps.insert(application.to_string(), Origin::Sender(from.to_string()));
                self.any.store(true, Ordering::Release);
            }
            (_, false) => {
                apps.remove(application);
            }
        }
        meeting
    }
}

#[cfg(test)]
mod tests {
    use crate::txn::provisional::{Meeting, Provisional};

    #[test]
    fn a_copy_in_use_replaces_a_restored_one_and_is_never_replaced() {
        let p = Provisional::from_disk(["bank".to_string()]);
        assert_eq!(p.meet("bank", "b", false, true), Meeting::Replace);
        // More batches of the same move, then a restored copy from elsewhere.
        assert_eq!(p.meet("bank", "b", false, true), Meeting::Take);
        assert_eq!(p.meet("bank", "c", true, true), Meeting::Drop);
    }

    #[test]
    fn a_restored_copy_is_taken_where_there_is_none_in_all_its_batches() {
        let p = Provisional::default();
        assert_eq!(p.meet("bank", "b", true, false), Meeting::Take);
        assert_eq!(p.meet("bank", "b", true, true), Meeting::Take);
        assert_eq!(p.meet("bank", "c", true, true), Meeting::Drop);
        // Still provisional: a copy in use replaces it...
        assert_eq!(p.meet("bank", "d", false, true), Meeting::Replace);
    }

    #[test]
    fn a_workflow_confirms_the_copy_here() {
        let p = Provisional::from_disk(["bank".to_string()]);
        p.confirm("bank");
        assert_eq!(p.meet("bank", "b", true, true), Meeting::Drop);
        assert!(!p.leaves("bank"));
        let q = Provisional::from_disk(["bank".to_string()]);
        assert!(q.leaves("bank"), "sent on as a restored copy");
    }
}
