//! Where a request's object is: the one place the apply step asks, for calls,
//! workflows and control requests alike. On a node on its own every object is
//! here; in a cluster a request for an object another node owns is answered
//! with a redirect, one on its way here waits for it, and one lost with a
//! crashed node says so. Replication (a call's replica chain) and commits
//! across nodes (a workflow's participants) extend these answers here.

use crate::cluster;
use crate::shared_objects::ObjectCell;
use crate::state::NodeState;
use crucial::__private::registry::SharedTypeEntry;
use crucial::RemoteError;
use std::sync::Arc;

/// Before anything runs: `Err` (a redirect) when another node owns the object.
pub fn owned(node: &NodeState, type_name: &str, key: &str) -> Result<(), RemoteError> {
    cluster::check(node, type_name, key)
}

/// A call's object on this node: created from `Default` if absent and no
/// other node can hold it; else the call waits for it, is redirected, or
/// learns it was lost; `true` with it: it came from another node after the
/// call looked (see [`cluster::object`]).
pub async fn object(
    node: &NodeState,
    entry: &'static SharedTypeEntry,
    key: &str,
) -> Result<(Arc<ObjectCell>, bool), RemoteError> {
    cluster::object(node, entry, key).await
}

/// A workflow's objects: its application's home is this node (the guard
/// keeps them here until the workflow ends), or the answer is a redirect.
pub async fn application(
    node: &NodeState,
    application: &str,
) -> Result<Option<cluster::member::AppGuard>, RemoteError> {
    cluster::lambda_home(node, application).await
}

/// Fills in where to go for a call that found its object moved away.
pub fn redirect(node: &NodeState, error: &mut RemoteError) {
    cluster::fill_redirect(node, error);
}
