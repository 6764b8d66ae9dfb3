//! Retries: a mutating request the node ran before is answered from the
//! dedup table, for calls and workflows alike.

use crate::dedup::Begin;
use crate::state::NodeState;
use crucial_protocol::wire::Outcome;

/// Registers a mutating request with the dedup table; returns the remembered
/// reply if it ran before (waiting for it if it is running right now).
pub async fn replay(node: &NodeState, client: u64, id: u64) -> Option<Outcome> {
    loop {
        let mut forgotten = Vec::new();
        let begun = node.dedup.begin_forgetting(client, id, &mut forgotten);
        if let (false, Some(storage)) = (forgotten.is_empty(), &node.storage) {
            // Replies the bounded memory let go of leave the disk too (in the
            // background: nothing waits for a deletion).
            drop(storage.forget_replies(&forgotten));
        }
        match begun {
            Begin::Fresh => return None,
            Begin::Done(outcome) => {
                node.metrics.replayed();
                return Some(outcome);
            }
            Begin::InFlight(notify) => {
                // Register interest, then re-check: the original may have
                // finished between `begin` and here.
                let notified = notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Begin::Done(outcome) = node.dedup.peek(client, id) {
                    node.metrics.replayed();
                    return Some(outcome);
                }
                notified.await;
            }
        }
    }
}
