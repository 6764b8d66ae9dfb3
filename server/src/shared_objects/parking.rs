//! What happens to parked calls besides being re-run (see `invoke`): a timer
//! that expires one, and the answers of an object's deletion.

use super::cell::ObjectCell;
use super::sink::deliver;
use crucial::RemoteError;
use std::sync::Arc;
use std::time::Duration;

/// Answers `Timeout` to a parked call if it is still parked after `timeout`.
pub fn expire_after(cell: Arc<ObjectCell>, token: u64, timeout: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let expired = {
            let mut state = cell.lock();
            let at = state.parked.iter().position(|p| p.token == token);
            at.map(|at| state.parked.remove(at))
        };
        if let Some(call) = expired {
            let error = RemoteError::Timeout {
                type_name: cell.entry.name.to_string(),
                key: cell.key.to_string(),
                method: call.method.id.name.to_string(),
                waited_ms: timeout.as_millis() as u64,
            };
            deliver(vec![call.answer(Err(error))]);
        }
    });
}

/// Answers `Deleted` to every call parked on a deleted object.
pub fn fail_deleted(cell: &ObjectCell) {
    let calls = std::mem::take(&mut cell.lock().parked);
    let answers = calls
        .into_iter()
        .map(|call| {
            call.answer(Err(RemoteError::Deleted {
                type_name: cell.entry.name.to_string(),
                key: cell.key.to_string(),
            }))
        })
        .collect();
    deliver(answers);
}
