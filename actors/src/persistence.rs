//! How actors make their state durable without knowing SQL: they describe what
//! changed as `Change`s and await `Persistence::commit`. The server's Store
//! implements it with group commit; an `Ok` means the transaction committed.

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// One row of the append-only event log: what happened to which entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Time-ordered unique id (`evt_...`).
    pub id: String,
    /// The entity the event belongs to, e.g. `escalation:<uuid>`.
    pub stream: String,
    /// What happened, e.g. `escalation.routed`.
    pub kind: String,
    pub payload: serde_json::Value,
    /// Unix epoch milliseconds.
    pub at_ms: i64,
}

/// A state change an actor wants committed. Later parts add one variant per
/// aggregate snapshot (expert, escalation, tenant, webhook delivery).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    AppendEvent(EventRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// The transaction holding this change failed; nothing of it was committed.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// The store is shutting down or gone.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub trait Persistence: Send + Sync + 'static {
    /// Commits every change atomically and resolves once durable.
    fn commit(&self, changes: Vec<Change>) -> BoxFuture<'static, Result<(), PersistError>>;
}
