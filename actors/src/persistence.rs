//! How actors make their state durable without knowing SQL: they describe what
//! changed as `Change`s and await `Persistence::commit`. The server's Store
//! implements it with group commit; an `Ok` means the transaction committed.

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::model::ExpertId;
use crate::records::{
    DeliveryRecord, EscalationRecord, ExpertRecord, FeedbackWrite, IdempotencyRecord, QuotaCheck,
};

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

/// A state change an actor wants committed. Snapshots carry the whole
/// aggregate as its owner holds it; the few counters that several owners
/// touch are changed relatively (`CountResolution`).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    AppendEvent(EventRecord),
    InsertEscalation(Box<EscalationRecord>),
    /// Rewrites the case's snapshot (everything but its feedback).
    UpdateEscalation(Box<EscalationRecord>),
    InsertExpert(Box<ExpertRecord>),
    /// Rewrites the expert's profile: name, email, domains, credentials,
    /// tier, status, max_concurrent, token hash. Not its counters.
    UpdateExpert(Box<ExpertRecord>),
    /// One more resolution to the expert's count.
    CountResolution(ExpertId),
    /// Refused as `Conflict` when the case's feedback changed meanwhile.
    RecordFeedback(Box<FeedbackWrite>),
    RecordIdempotency(Box<IdempotencyRecord>),
    /// Refused as `Limited` when the tenant already has `limit` escalations
    /// created since `since_ms`; checked in the same transaction as the insert.
    CheckQuota(Box<QuotaCheck>),
    /// A webhook delivery, before its first attempt.
    InsertDelivery(Box<DeliveryRecord>),
    /// A delivery's state after an attempt (status, attempts, last answer, next attempt).
    UpdateDelivery(Box<DeliveryRecord>),
    /// Remembers that an escalation was opened from a Cerebral's session.
    LinkSession(Box<SessionLink>),
    /// Appends `entry` to the memory of the session the escalation was opened
    /// from; nothing when it was not opened from one.
    JoinSession(Box<SessionEntry>),
}

/// An escalation opened by an SOP, and the session it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionLink {
    pub escalation_id: String,
    pub tenant_id: String,
    pub cerebral_id: String,
    pub session_id: String,
    pub execution_id: String,
    pub at_ms: i64,
}

/// What a closed escalation adds to its session's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEntry {
    /// `mem_...`
    pub id: String,
    pub escalation_id: String,
    /// `expert` (an answer) or `system` (an expiry)
    pub role: String,
    pub content: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// The transaction holding this change failed; nothing of it was committed.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// A rule checked inside the transaction refused this change; nothing of it committed.
    #[error("{0}")]
    Conflict(String),
    /// A limit checked inside the transaction (a tier's quota) refused this change.
    #[error("{message}")]
    Limited { message: String, retry_after_secs: u64 },
    /// A uniqueness rule refused this change; nothing of it committed.
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// The store is shutting down or gone.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub trait Persistence: Send + Sync + 'static {
    /// Commits every change atomically and resolves once durable.
    fn commit(&self, changes: Vec<Change>) -> BoxFuture<'static, Result<(), PersistError>>;
}
