//! Operations: **the only code that changes an app** (what it runs, with which config, at
//! which scale, behind which domains). HTTP handlers, the deploy socket and start-up recovery
//! call in here; nothing here parses requests or writes responses, and nothing else changes
//! an app. The store holds the record; the agent (through its client) runs the containers.
//!
//! Every operation runs detached from its requester ([`spawn`]): it takes the app's lock,
//! moves the guard into a task of its own, and reports to the requester through a channel
//! while the requester listens. A requester that goes away (a client hang-up, a dropped
//! connection) never cancels an operation half-way; the next change to the app waits for the
//! lock until it has finished.

mod error;
pub mod recovery;

pub use error::OpsError;
