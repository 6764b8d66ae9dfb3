//! The objects of a node: the table, each object's cell, running a method on
//! it, and the calls parked on it. Nothing here knows about sockets: a parked
//! call holds a [`ReplySink`], and running a call yields its outcome plus the
//! replies ([`Delivery`]s) it released, which the caller delivers.

mod cell;
mod census;
mod parking;
mod persist;
mod residency;
mod run;
mod sink;
mod table;

pub use cell::{ObjectCell, Poison};
pub use persist::{log_of, Persist};
pub use residency::ResidencyGauges;
pub use run::{run_call, Park, Ran};
pub use sink::{deliver, Delivery, ParkedCalls, ReplySink};
pub use table::{Adopted, ObjectTable};
