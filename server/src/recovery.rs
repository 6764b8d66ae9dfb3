//! Recovery at start: the persistent objects and remembered replies in the data
//! directory come back into the object table and the dedup table, before the
//! node accepts its first connection.

use crate::dedup::Dedup;
use crate::shared_objects::{log_of, ObjectTable};
use crate::storage::Storage;
use crucial::__private::registry::Registry;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a recovery found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Objects back in memory.
    pub objects: usize,
    /// Objects this build cannot read (changed shape, damaged record): calls
    /// on them get `Unreadable`, and their stored state is kept.
    pub unreadable: usize,
    /// Objects of types this build does not have (left on disk).
    pub unknown_types: usize,
    /// Remembered replies back in the dedup table.
    pub replies: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// Loads everything `storage` holds.
pub fn recover(
    storage: &Storage,
    registry: &Registry,
    table: &ObjectTable,
    dedup: &Dedup,
    window: usize,
) -> Result<Recovered, String> {
    let start = Instant::now();
    let mut found = Recovered::default();
    for stored in storage.objects()? {
        let Some(entry) = registry.shared_type(&stored.type_name) else {
            tracing::warn!(
                "{}: object `{}` of type `{}`, which this build does not have, is left on disk",
                storage.dir().display(),
                stored.key,
                stored.type_name
            );
            found.unknown_types += 1;
            continue;
        };
        // Under a memory limit, what does not fit stays on disk until its
        // first call (and is decoded then).
        let log = log_of(&stored);
        let value = if stored.shape == entry.shape && !table.residency.has_room_for(log.bytes()) {
            Ok(None)
        } else {
            stored.revive(entry).map(Some)
        };
        match value {
            Ok(value) => {
                table.restore(entry, &stored.key, value, log);
                found.objects += 1;
            }
            Err(reason) => {
                storage.report_unreadable(entry.name, &stored.key, &reason);
                table.insert_unreadable(entry, &stored.key, reason);
                found.unreadable += 1;
            }
        }
    }
    // Each client's newest `window` replies come back; older ones go.
    let mut by_client: HashMap<u64, Vec<_>> = HashMap::new();
    for reply in storage.replies()? {
        by_client.entry(reply.client).or_default().push(reply);
    }
    let mut stale = Vec::new();
    for (_, mut replies) in by_client {
        replies.sort_by_key(|r| r.request);
        let keep_from = replies.len().saturating_sub(window);
        for (i, reply) in replies.into_iter().enumerate() {
            if i < keep_from {
                stale.push((reply.client, reply.request));
            } else {
                dedup.restore(reply.client, reply.request, reply.outcome, &mut stale);
                found.replies += 1;
            }
        }
    }
    if !stale.is_empty() {
        // Committed in the background, before any call's write.
        drop(storage.forget_replies(&stale));
    }
    found.elapsed = start.elapsed();
    Ok(found)
}
