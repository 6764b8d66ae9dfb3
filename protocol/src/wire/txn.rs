//! Node to node: the steps of a transaction that spans nodes, sent by its
//! manager (the node its workflow's root runs on) to a participant (a node
//! that holds some of its objects), and the participant's answers.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// One step of transaction `(manager, seq)` on a participant. Reply: a
/// [`TxnAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnStep {
    /// The manager's node id.
    pub manager: u64,
    /// The transaction's number at its manager.
    pub seq: u64,
    /// Milliseconds left before the transaction's deadline: a part not
    /// prepared by then is dropped.
    pub deadline_ms: u64,
    /// The transaction pins the sets it reads as it reads them (a reader
    /// that lost to writers too often): the participant's part does the
    /// same.
    pub pin_reads: bool,
    /// The transaction's locks pass readers' pins (a writer that lost too
    /// often): the participant's part does the same.
    pub insist: bool,
    /// The step.
    pub op: TxnOp,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Read one entry (its version is recorded). Answer: `Value`.
    Get {
        /// The object.
        object: crate::ObjectId,
        /// The entry's key.
        key: ByteBuf,
    },
    /// Read the entries of `[from, to)` (`to`: `None` for the end). Answer:
    /// `Entries`.
    Scan {
        /// The object.
        object: crate::ObjectId,
        /// First key.
        from: ByteBuf,
        /// Key after the last.
        to: Option<ByteBuf>,
    },
    /// Run a child call of the workflow here, on an object of this node,
    /// inside the transaction (after the manager's buffered writes for this
    /// node). Answer: `Returned`, or `Refused` (`Elsewhere` if it reached
    /// an object of another node: the manager runs it itself).
    Call {
        /// The object.
        object: crate::ObjectId,
        /// The function.
        function: String,
        /// Its signature's fingerprint.
        fingerprint: u64,
        /// The encoded arguments.
        args: ByteBuf,
        /// Seeds the call's random source.
        seed: u64,
        /// The manager's buffered writes for this node, first.
        writes: Vec<(crate::ObjectId, ByteBuf, Option<ByteBuf>)>,
    },
    /// A map call's instance on this node: run `function` on every object
    /// of `type_name` selected by `objects` that this node serves, inside
    /// the transaction (after the manager's buffered writes for this node).
    /// Answer: `Mapped`, or `Refused` (`Conflict` if the node has not
    /// settled view `epoch`: the map runs again).
    Map {
        /// The objects' application.
        application: String,
        /// Their type.
        type_name: String,
        /// Which of them.
        objects: crate::wire::Objects,
        /// The function.
        function: String,
        /// Its signature's fingerprint.
        fingerprint: u64,
        /// The encoded arguments.
        args: ByteBuf,
        /// Seeds each call's random source.
        seed: u64,
        /// The view the manager split the objects by: each node serves the
        /// objects it owns in it, so every object is mapped once.
        epoch: u64,
        /// The manager's buffered writes for this node, first.
        writes: Vec<(crate::ObjectId, ByteBuf, Option<ByteBuf>)>,
    },
    /// Phase one, with the manager's buffered writes for this node. Answer:
    /// `Vote`.
    Prepare {
        /// `(object, key, value)`; `None`: delete.
        writes: Vec<(crate::ObjectId, ByteBuf, Option<ByteBuf>)>,
        /// Where the transaction's decision is recorded: the object whose
        /// owner answers [`TxnOp::Resolve`] for it.
        anchor: crate::ObjectId,
        /// The manager sent this node steps before (reads, child calls): a
        /// participant that has no part for it lost it (it restarted, or
        /// its objects failed over) and votes no.
        reached: bool,
    },
    /// Phase two: install at `tid`. Answer: `Done` once installed (and on
    /// disk, with a data directory).
    Commit {
        /// The commit's number.
        tid: u64,
    },
    /// Phase two, or an execution given up: drop the part. Answer: `Done`.
    Abort,
    /// The end of a transaction that wrote nothing anywhere (no manager
    /// writes, no participant that answered `wrote`): check that every set
    /// the part read is still at the version read and not locked, then drop
    /// the part — no prepare, no record, no phase two. Sent only once every
    /// read of the transaction is done, so the transaction is serialized at
    /// the earliest of these checks. Answer: `Done` once every commit the
    /// part may have read is on its replicas, or `Refused(Conflict)`.
    Validate,
    /// Asked of the owner of `anchor` by a participant whose prepared part
    /// waits for a decision that did not come: the transaction's outcome.
    /// With no decision recorded the owner records an abort (presumed
    /// abort: the manager can no longer commit). Answer: `Outcome`, or
    /// `Refused(Conflict)` while the manager is deciding (ask again).
    Resolve {
        /// The decision's object (as in `Prepare`).
        anchor: crate::ObjectId,
    },
    /// Asked of an object's owner by a *light replica* of it (a node that
    /// serves read-only workflows of a hot object): one entry's value and
    /// the version of its set, read outside any transaction. Answer:
    /// `Fetched`.
    Fetch {
        /// The object.
        object: crate::ObjectId,
        /// The entry's key.
        key: ByteBuf,
    },
    /// Asked of an object's owner by a light replica at the end of
    /// read-only workflows it ran (those that ended while the previous
    /// check was on its way, in one message): for each, whether every entry
    /// it read is still at the version read and its set not locked (the
    /// workflow is then serialized at this check). Answer: `Checked`, once
    /// every commit the reads may have seen is on the owner's replicas.
    Check {
        /// Per workflow, `(object, key, version)` per entry read.
        runs: Vec<Vec<(crate::ObjectId, ByteBuf, u64)>>,
    },
}

/// An entry as its owner holds it now: `(object, key, version of its set,
/// value)` (`None`: absent).
pub type EntryNow = (crate::ObjectId, ByteBuf, u64, Option<ByteBuf>);

/// A participant's answer to a [`TxnStep`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnAnswer {
    /// An entry's value (`None`: absent).
    Value(Option<ByteBuf>),
    /// Entries in key order.
    Entries(Vec<(ByteBuf, ByteBuf)>),
    /// Prepared: the number proposed.
    Vote(u64),
    /// A child call's encoded return value.
    Returned {
        /// The value.
        value: ByteBuf,
        /// Whether the part here has writes now (then the transaction
        /// commits with two-phase commit, not `Validate`).
        wrote: bool,
    },
    /// A map call's results on this node.
    Mapped {
        /// `(key, encoded return value)`, one per object.
        results: Vec<(String, ByteBuf)>,
        /// Whether the part here has writes now.
        wrote: bool,
    },
    /// Done.
    Done,
    /// A transaction's outcome: committed at this number, or (`None`)
    /// aborted.
    Outcome(Option<u64>),
    /// An entry for a light replica: the version of its set (read first)
    /// and its value (`None`: absent).
    Fetched {
        /// The set's version.
        version: u64,
        /// The value.
        value: Option<ByteBuf>,
    },
    /// Per workflow of a `Check`, the entries it read that changed, as
    /// they are now (none: it holds).
    Checked(Vec<Vec<EntryNow>>),
    /// The step failed and the transaction cannot commit.
    Refused(TxnRefusal),
}

/// Why a participant refused a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnRefusal {
    /// A conflict: the manager re-executes the workflow.
    Conflict,
    /// The transaction's deadline passed.
    Deadline,
    /// The participant's store cannot write.
    NotDurable(String),
    /// The child call's function failed (its error, or a panic): the
    /// workflow fails with it.
    Function(String),
    /// The call's object does not exist (no constructor made it): the
    /// workflow fails with `NoObject`, as it would on one node.
    NoObject(crate::ObjectId),
    /// The child call reached an object this node does not hold.
    Elsewhere,
    /// Anything else (the object is not on this node, a commit of a part
    /// not prepared here): the reason.
    Failed(String),
}
