//! Errors of the protocol: what a node answers a request with, and what
//! encoding or decoding a message can fail with.

use serde::{Deserialize, Serialize};

/// A value could not be encoded or decoded (postcard's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A value could not be encoded.
    #[error("cannot encode value: {0}")]
    Encode(String),
    /// A value could not be decoded (usually a client and a server built from
    /// different code).
    #[error("cannot decode value: {0}")]
    Decode(String),
}

/// An error reported by a server for one request. The node keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RemoteError {
    /// The server's registry has no type of that name.
    #[error(
        "unknown type `{type_name}` on node {node}: that node's binary was built without \
         the crate that defines it; run the application's own server binary (the one that links \
         the crate, e.g. `pi-server` for `pi`) rather than the generic `crucial-server`"
    )]
    UnknownType {
        /// The type name that was asked for.
        type_name: String,
        /// The node that answered (its address, as the client reached it).
        node: String,
    },
    /// The type exists but has no method of that name.
    #[error(
        "unknown method `{method}` on shared type `{type_name}`: client and server were \
             built from different code"
    )]
    UnknownMethod {
        /// The type.
        type_name: String,
        /// The method that was asked for.
        method: String,
    },
    /// The method exists with a different signature.
    #[error(
        "incompatible method `{type_name}::{method}`: the server has `{server_signature}`; \
             client and server were built from different versions of the type"
    )]
    IncompatibleMethod {
        /// The type.
        type_name: String,
        /// The method.
        method: String,
        /// The signature the server was built with.
        server_signature: String,
    },
    /// The arguments (or an initial state) did not decode as the server's types.
    #[error("bad arguments for `{type_name}::{method}`: {reason}")]
    BadArguments {
        /// The type.
        type_name: String,
        /// The method, or `<create>` for an initial state.
        method: String,
        /// The decoder's message.
        reason: String,
    },
    /// A frame did not decode as a request.
    #[error("malformed request frame: {reason}")]
    BadFrame {
        /// The decoder's message.
        reason: String,
    },
    /// A frame was larger than the node accepts.
    #[error("request of {size} bytes exceeds the server's limit of {limit} bytes")]
    FrameTooLarge {
        /// Size of the frame.
        size: u64,
        /// The node's `--max-frame-size`.
        limit: u64,
    },
    /// The method panicked; see the guide for the state the object is left in.
    #[error("method `{type_name}::{method}` panicked on object `{key}`: {message}")]
    Panicked {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// The method.
        method: String,
        /// The panic payload, if it was a string.
        message: String,
    },
    /// An earlier mutating call panicked midway, so the object's state cannot be trusted.
    #[error(
        "object `{type_name}`/`{key}` is poisoned: mutating method `{method}` panicked \
             earlier ({message}); delete the object to reset it"
    )]
    Poisoned {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// The method that panicked.
        method: String,
        /// Its panic message.
        message: String,
    },
    /// A blocking method was still pending when its timeout expired.
    #[error("timed out after {waited_ms} ms waiting in `{type_name}::{method}` on object `{key}`")]
    Timeout {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// The method.
        method: String,
        /// The timeout that expired.
        waited_ms: u64,
    },
    /// The object was deleted while the call was parked on it.
    #[error("object `{type_name}`/`{key}` was deleted while the call waited on it")]
    Deleted {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
    },
    /// The peer does not speak this protocol version or skipped the handshake.
    #[error("protocol error: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The node is stopping: the call was not applied (a parked call gave up its
    /// wait); retry it against the node once it is back, or another node.
    #[error(
        "the node is shutting down: `{type_name}::{method}` on object `{key}` was not applied; \
         retry it once the node is back"
    )]
    ShuttingDown {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// The method.
        method: String,
    },
    /// A persistent object is stored on this node in a form this build cannot
    /// read (its type's fields changed since it was written, or its record is
    /// damaged). Nothing was applied; the stored state is kept untouched.
    #[error(
        "object `{key}` of type `{type_name}` is stored on this node in a form this build cannot \
         read ({reason}); run the server build that wrote it, or delete the object to start it \
         afresh"
    )]
    Unreadable {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// What does not match.
        reason: String,
    },
    /// A call on a persistent object ran, but its new state could not be made
    /// durable: it may be lost if the node restarts.
    #[error(
        "`{type_name}::{method}` on object `{key}` ran but could not be written to disk \
         ({reason}); its effect may be lost if the node restarts"
    )]
    NotDurable {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// The method.
        method: String,
        /// The storage layer's error.
        reason: String,
    },
    /// A lambda object type has no function of that name.
    #[error(
        "unknown function `{function}` of lambda object type `{type_name}`: client and server \
         were built from different code"
    )]
    UnknownFunction {
        /// The type.
        type_name: String,
        /// The function that was asked for.
        function: String,
    },
    /// A function was called on an object that no constructor created.
    #[error("object {object} does not exist: create it with one of its type's constructors first")]
    NoObject {
        /// The object (`application/type/key`).
        object: String,
    },
    /// A constructor was called on an object that exists.
    #[error("object {object} exists already: a constructor makes an object once")]
    ObjectExists {
        /// The object.
        object: String,
    },
    /// A client called a `#[protected]` function.
    #[error(
        "`{type_name}::{function}` is protected: only other functions of its application may \
         call it, not clients"
    )]
    Protected {
        /// The type.
        type_name: String,
        /// The function.
        function: String,
    },
    /// The call named an application the node's type does not belong to.
    #[error(
        "object {object} belongs to application `{requested}`, but this node's `{type_name}` is \
         of application `{served}`"
    )]
    WrongApplication {
        /// The object.
        object: String,
        /// The type.
        type_name: String,
        /// The application the call named.
        requested: String,
        /// The application the node's type belongs to.
        served: String,
    },
    /// A workflow failed: a function of it returned an error, a child call
    /// failed, or a stored entry did not decode. Nothing of it was written.
    #[error("workflow `{function}` on {object} failed, nothing was written: {message}")]
    WorkflowFailed {
        /// `Type::function` the client called.
        function: String,
        /// The object (empty for a static function).
        object: String,
        /// What failed.
        message: String,
    },
    /// A workflow ran past its time limit; it was aborted, nothing was written.
    #[error(
        "workflow `{function}` on {object} ran past its time limit of {limit_ms} ms and was \
         aborted, nothing was written"
    )]
    WorkflowTimeout {
        /// `Type::function`.
        function: String,
        /// The object.
        object: String,
        /// The limit.
        limit_ms: u64,
    },
    /// Every execution a workflow was allowed conflicted with other workflows.
    #[error(
        "workflow `{function}` on {object} conflicted with other workflows in all {attempts} \
         executions it was allowed and was given up, nothing was written; retry it later or \
         raise the node's --workflow-attempts"
    )]
    WorkflowConflicts {
        /// `Type::function`.
        function: String,
        /// The object.
        object: String,
        /// Executions made.
        attempts: u32,
    },
    /// The node does not own the object in its view of the cluster: nothing
    /// ran. The client takes the newer view and sends the same request (same
    /// id, so still exactly once) to the owner; users see this only if the
    /// redirects never settle.
    #[error(
        "node {node} does not own object `{key}` of type `{type_name}` in view {}: the cluster's \
         membership is changing; retry (clients follow redirects on their own)",
        view.epoch
    )]
    NotOwner {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// The node that answered.
        node: String,
        /// The node's view (its owner per that view is where to go).
        view: Box<crate::placement::View>,
        /// Where the object is served instead of its owner per the view, if
        /// somewhere else (lambda objects kept by the node that holds them).
        served_by: Option<String>,
    },
    /// The object is moving to this node (a node joined or drains) and did
    /// not arrive within the node's bound: nothing ran; retry.
    #[error(
        "object `{key}` of type `{type_name}` is moving to node {node} and did not arrive within \
         {waited_ms} ms: nothing was applied; retry shortly"
    )]
    Moving {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// The new owner.
        node: String,
        /// How long the call waited for it.
        waited_ms: u64,
    },
    /// The object lived on a node that left the cluster without handing it
    /// off (a crash): its state is lost (ephemeral objects are not replicated
    /// yet). A persistent object comes back when that node restarts with its
    /// data directory. Nothing ran; delete or create the object to start it
    /// afresh (an application's lambda objects: delete type
    /// `<lambda objects>`, key the application). A copy that comes back
    /// after that is the older one and is dropped.
    #[error(
        "object `{key}` of type `{type_name}` may be lost: node {lost_node}, which held it, left \
         the cluster without handing it off (a crash) in view {epoch}; an ephemeral object is \
         gone, a persistent one comes back when {lost_node} restarts with its data directory; \
         `delete` or `create` the object to start it afresh (lambda objects: `delete` type \
         `<lambda objects>` with the application as key), and the copy that comes back later \
         is dropped"
    )]
    Lost {
        /// The type.
        type_name: String,
        /// The object's key.
        key: String,
        /// The node that crashed.
        lost_node: String,
        /// The first view without it.
        epoch: u64,
    },
    /// One of the node's limits was reached (`limit` names its flag, e.g.
    /// `--max-connections`): `detail` says what was refused and whether
    /// anything was applied. Limits keep one client from taking the memory,
    /// descriptors or time the others need; the guide's *Limits* table lists
    /// them.
    #[error("{detail} (the node's limit {limit} = {value})")]
    Limit {
        /// The flag that sets the limit.
        limit: String,
        /// Its value on the node.
        value: u64,
        /// What was refused, and what was applied.
        detail: String,
    },
    /// The node has not renewed its membership lease in etcd for longer than
    /// the lease lasts: the cluster may have declared it gone and given its
    /// objects to other nodes, so it serves nothing until etcd answers it
    /// again (no split brain). Nothing ran; the client asks the other nodes
    /// for a newer view and retries.
    #[error(
        "node {node} is fenced: it has not heard from etcd for {silent_ms} ms, longer than its \
         lease, so the cluster may have given its objects to other nodes; it serves nothing \
         until etcd answers it again (nothing ran; retry, or reach etcd from {node})"
    )]
    Fenced {
        /// The fenced node.
        node: String,
        /// Since the last renewal etcd acknowledged.
        silent_ms: u64,
    },
    /// The connection's credential was missing, wrong or revoked (or is not
    /// one this port takes): nothing ran, and the node closes the
    /// connection. `port` names the listener (`client`, `peer`).
    #[error(
        "the node refused this connection on its {port} port: {reason} (nothing ran; give \
         the client a valid token: `Config::token`, or CRUCIAL_TOKEN / CRUCIAL_TOKEN_FILE)"
    )]
    Unauthenticated {
        /// The listener: `client` or `peer`.
        port: String,
        /// What was wrong: missing, unknown (wrong or revoked), of another role.
        reason: String,
    },
    /// The connection's credential does not allow the request: it names
    /// another application's objects or functions, or is an admin request
    /// from an application. Nothing ran.
    #[error(
        "refused: this connection is application `{application}`'s, and {reason} (nothing ran)"
    )]
    Forbidden {
        /// The application the connection's credential belongs to.
        application: String,
        /// What was asked that it may not do.
        reason: String,
    },
}

impl RemoteError {
    /// Every [`RemoteError::kind`], in declaration order.
    pub const KINDS: [&'static str; 29] = [
        "UnknownType",
        "UnknownMethod",
        "IncompatibleMethod",
        "BadArguments",
        "BadFrame",
        "FrameTooLarge",
        "Panicked",
        "Poisoned",
        "Timeout",
        "Deleted",
        "Protocol",
        "ShuttingDown",
        "Unreadable",
        "NotDurable",
        "UnknownFunction",
        "NoObject",
        "ObjectExists",
        "Protected",
        "WrongApplication",
        "WorkflowFailed",
        "WorkflowTimeout",
        "WorkflowConflicts",
        "NotOwner",
        "Moving",
        "Lost",
        "Limit",
        "Fenced",
        "Unauthenticated",
        "Forbidden",
    ];

    /// The variant's name, for metrics and logs: `"Panicked"`, `"Timeout"`, ...
    ///
    /// ```
    /// let e = crucial_protocol::RemoteError::BadFrame { reason: "eof".into() };
    /// assert_eq!(e.kind(), "BadFrame");
    /// assert_eq!(crucial_protocol::RemoteError::KINDS[e.kind_index()], "BadFrame");
    /// ```
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }

    /// Position of [`RemoteError::kind`] in [`RemoteError::KINDS`] (for counters kept in an array).
    pub fn kind_index(&self) -> usize {
        match self {
            RemoteError::UnknownType { .. } => 0,
            RemoteError::UnknownMethod { .. } => 1,
            RemoteError::IncompatibleMethod { .. } => 2,
            RemoteError::BadArguments { .. } => 3,
            RemoteError::BadFrame { .. } => 4,
            RemoteError::FrameTooLarge { .. } => 5,
            RemoteError::Panicked { .. } => 6,
            RemoteError::Poisoned { .. } => 7,
            RemoteError::Timeout { .. } => 8,
            RemoteError::Deleted { .. } => 9,
            RemoteError::Protocol { .. } => 10,
            RemoteError::ShuttingDown { .. } => 11,
            RemoteError::Unreadable { .. } => 12,
            RemoteError::NotDurable { .. } => 13,
            RemoteError::UnknownFunction { .. } => 14,
            RemoteError::NoObject { .. } => 15,
            RemoteError::ObjectExists { .. } => 16,
            RemoteError::Protected { .. } => 17,
            RemoteError::WrongApplication { .. } => 18,
            RemoteError::WorkflowFailed { .. } => 19,
            RemoteError::WorkflowTimeout { .. } => 20,
            RemoteError::WorkflowConflicts { .. } => 21,
            RemoteError::NotOwner { .. } => 22,
            RemoteError::Moving { .. } => 23,
            RemoteError::Lost { .. } => 24,
            RemoteError::Limit { .. } => 25,
            RemoteError::Fenced { .. } => 26,
            RemoteError::Unauthenticated { .. } => 27,
            RemoteError::Forbidden { .. } => 28,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RemoteError;

    #[test]
    fn every_kind_names_its_variant() {
        let s = String::new;
        let all = [
            RemoteError::UnknownType {
                type_name: s(),
                node: s(),
            },
            RemoteError::UnknownMethod {
                type_name: s(),
                method: s(),
            },
            RemoteError::IncompatibleMethod {
                type_name: s(),
                method: s(),
                server_signature: s(),
            },
            RemoteError::BadArguments {
                type_name: s(),
                method: s(),
                reason: s(),
            },
            RemoteError::BadFrame { reason: s() },
            RemoteError::FrameTooLarge { size: 0, limit: 0 },
            RemoteError::Panicked {
                type_name: s(),
                key: s(),
                method: s(),
                message: s(),
            },
            RemoteError::Poisoned {
                type_name: s(),
                key: s(),
                method: s(),
                message: s(),
            },
            RemoteError::Timeout {
                type_name: s(),
                key: s(),
                method: s(),
                waited_ms: 0,
            },
            RemoteError::Deleted {
                type_name: s(),
                key: s(),
            },
            RemoteError::Protocol { reason: s() },
            RemoteError::ShuttingDown {
                type_name: s(),
                key: s(),
                method: s(),
            },
            RemoteError::Unreadable {
                type_name: s(),
                key: s(),
                reason: s(),
            },
            RemoteError::NotDurable {
                type_name: s(),
                key: s(),
                method: s(),
                reason: s(),
            },
            RemoteError::UnknownFunction {
                type_name: s(),
                function: s(),
            },
            RemoteError::NoObject { object: s() },
            RemoteError::ObjectExists { object: s() },
            RemoteError::Protected {
                type_name: s(),
                function: s(),
            },
            RemoteError::WrongApplication {
                object: s(),
                type_name: s(),
                requested: s(),
                served: s(),
            },
            RemoteError::WorkflowFailed {
                function: s(),
                object: s(),
                message: s(),
            },
            RemoteError::WorkflowTimeout {
                function: s(),
                object: s(),
                limit_ms: 0,
            },
            RemoteError::WorkflowConflicts {
                function: s(),
                object: s(),
                attempts: 0,
            },
            RemoteError::NotOwner {
                type_name: s(),
                key: s(),
                node: s(),
                view: Box::new(crate::placement::View::fixed(vec![])),
                served_by: None,
            },
            RemoteError::Moving {
                type_name: s(),
                key: s(),
                node: s(),
                waited_ms: 0,
            },
            RemoteError::Lost {
                type_name: s(),
                key: s(),
                lost_node: s(),
                epoch: 0,
            },
            RemoteError::Limit {
                limit: s(),
                value: 0,
                detail: s(),
            },
            RemoteError::Fenced {
                node: s(),
                silent_ms: 0,
            },
            RemoteError::Unauthenticated {
                port: s(),
                reason: s(),
            },
            RemoteError::Forbidden {
                application: s(),
                reason: s(),
            },
        ];
        assert_eq!(all.len(), RemoteError::KINDS.len());
        for (i, error) in all.iter().enumerate() {
            assert_eq!(error.kind_index(), i);
            assert!(
                format!("{error:?}").starts_with(&format!("{} ", error.kind())),
                "{error:?}"
            );
        }
    }
}
