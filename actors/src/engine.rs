//! What the routing engine's actors share: its configuration, its errors, the
//! messages the server sends, and the `CaseListener` through which other
//! parts (webhooks, agents) learn that a case was resolved or expired.

use std::sync::Arc;
use std::time::Duration;

use actix::Message;
use tokio::sync::oneshot;

use crate::model::{
    DeclineReason, Domain, EscalationId, ExpertId, ExpertStatus, ExpertTier, Priority, TenantId,
};
use crate::persistence::{Change, PersistError};
use crate::quality_gate::{CompiledSchema, GateError};
use crate::records::{EscalationRecord, ExpertRecord, Feedback, IdempotencyRecord, QuotaCheck};
use crate::routing::{ExpertLoad, ExpertTotals};

/// Told about a case's start and end, inside and after the transaction that
/// commits it: the webhook engine persists its deliveries in that same
/// transaction, so an event is owed exactly when the change it reports is durable.
pub trait CaseListener: Send + Sync + 'static {
    /// Extra changes committed atomically with the case's creation.
    fn opening_changes(&self, _record: &EscalationRecord) -> Vec<Change> {
        Vec::new()
    }

    /// After the creating transaction committed.
    fn opened(&self, _record: &EscalationRecord, _changes: &[Change]) {}

    /// Extra changes committed atomically with the case's closing snapshot
    /// (the webhook engine persists its deliveries here).
    fn closing_changes(&self, _record: &EscalationRecord, _event: CaseEvent) -> Vec<Change> {
        Vec::new()
    }

    /// After the closing transaction committed, with the changes
    /// `closing_changes` gave for it.
    fn closed(&self, _record: &EscalationRecord, _event: CaseEvent, _changes: &[Change]) {}
}

/// How a case ended, for listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseEvent {
    Resolved,
    Expired,
    Cancelled,
}

impl CaseEvent {
    pub fn name(&self) -> &'static str {
        match self {
            CaseEvent::Resolved => "escalation.resolved",
            CaseEvent::Expired => "escalation.expired",
            CaseEvent::Cancelled => "escalation.cancelled",
        }
    }
}

/// A listener that does nothing.
pub struct NoListener;

impl CaseListener for NoListener {}

#[derive(Clone)]
pub struct EngineConfig {
    /// How long an expert has to accept a routed case, per priority.
    pub reservation_urgent: Duration,
    pub reservation_standard: Duration,
    pub reservation_batch: Duration,
    /// Wait before retrying a timer's transition that failed to commit.
    pub retry_after_failure: Duration,
    pub listener: Arc<dyn CaseListener>,
}

impl EngineConfig {
    pub fn reservation_for(&self, p: Priority) -> Duration {
        match p {
            Priority::Urgent => self.reservation_urgent,
            Priority::Standard => self.reservation_standard,
            Priority::Batch => self.reservation_batch,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// No such case or expert for this caller (another tenant's is "not found" too).
    #[error("not found")]
    NotFound,
    /// The case has no actor: it is closed (or never existed). Read it from the database.
    #[error("not open")]
    NotOpen,
    /// The transition is not allowed from the current state.
    #[error("{0}")]
    Conflict(String),
    /// The Quality Gate refused the answer.
    #[error("the answer does not pass the Quality Gate")]
    Gate(Vec<GateError>),
    #[error("{0}")]
    Persist(PersistError),
    /// A limit was reached (a tier's quota).
    #[error("{message}")]
    Limited { message: String, retry_after_secs: u64 },
    /// The engine is stopping.
    #[error("the routing engine is unavailable")]
    Unavailable,
}

impl From<PersistError> for EngineError {
    fn from(e: PersistError) -> Self {
        match e {
            PersistError::Conflict(m) => EngineError::Conflict(m),
            PersistError::Limited { message, retry_after_secs } => {
                EngineError::Limited { message, retry_after_secs }
            }
            other => EngineError::Persist(other),
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Time from now until `at_ms` (zero if past).
pub fn until(at_ms: i64) -> Duration {
    Duration::from_millis((at_ms - now_ms()).max(0) as u64)
}

/// Who is asking: a tenant's API key or an expert's portal token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Tenant(TenantId),
    Expert(ExpertId),
    /// The server itself, after checking the caller's right some other way
    /// (feedback: the case's tenant rates a platform-wide expert).
    Trusted,
}

#[derive(Debug, Clone)]
pub struct ResolveInput {
    pub answer: serde_json::Value,
    pub confidence: Option<f64>,
    pub reasoning: Option<String>,
    pub source_candidate_id: Option<String>,
    pub candidate_action: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeclineInput {
    pub reason: DeclineReason,
    pub notes: Option<String>,
    pub source_candidate_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum CaseCommand {
    Get,
    /// Answered at once when closed; else a receiver of the closed record.
    Wait,
    Cancel,
    Accept,
    Resolve(ResolveInput),
    Decline(DeclineInput),
}

pub enum CaseReply {
    Record(Box<EscalationRecord>),
    Waiting { current: Box<EscalationRecord>, closed: oneshot::Receiver<EscalationRecord> },
}

/// A command for an open case, through the supervisor.
#[derive(Message)]
#[rtype(result = "Result<CaseReply, EngineError>")]
pub struct ToCase {
    pub id: EscalationId,
    pub caller: Caller,
    pub command: CaseCommand,
}

/// A new case: committed (with `extra`, e.g. its idempotency record), then
/// given an actor and routed. Answers with the committed record (`pending`).
#[derive(Message)]
#[rtype(result = "Result<EscalationRecord, EngineError>")]
pub struct CreateCase {
    pub record: EscalationRecord,
    pub schema: Option<Arc<CompiledSchema>>,
    pub idempotency: Option<IdempotencyRecord>,
    /// The tier's limits, checked atomically with the insert.
    pub quotas: Vec<QuotaCheck>,
    /// Changes of the creator's own committed in the same transaction (an
    /// SOP's escalation links itself to the session it came from).
    pub extra: Vec<Change>,
}

/// A new expert: committed, then given an actor and offered queued cases.
#[derive(Message)]
#[rtype(result = "Result<ExpertRecord, EngineError>")]
pub struct RegisterExpert(pub ExpertRecord);

/// Changes to an expert's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ExpertPatch {
    pub status: Option<ExpertStatus>,
    pub domains: Option<Vec<Domain>>,
    pub credentials: Option<Vec<String>>,
    pub tier: Option<ExpertTier>,
    pub max_concurrent: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum ExpertCommand {
    Patch(ExpertPatch),
    /// Retires the old portal token: only this hash works from now on.
    RotateToken {
        token_hash: String,
    },
    /// A caller rated a case this expert resolved. `previous` is the case's
    /// current feedback (replaced), read at `expected_version`.
    Feedback {
        escalation: EscalationId,
        expected_version: i64,
        previous: Option<f64>,
        feedback: Feedback,
    },
}

/// A command for an expert, through the supervisor. `caller` must be the
/// expert's tenant or the expert itself, else `NotFound`.
#[derive(Message)]
#[rtype(result = "Result<ExpertRecord, EngineError>")]
pub struct ToExpert {
    pub id: ExpertId,
    pub caller: Caller,
    pub command: ExpertCommand,
}

/// Start-up: every expert and every open case, from the database.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restore {
    pub experts: Vec<ExpertRecord>,
    pub cases: Vec<(EscalationRecord, Option<Arc<CompiledSchema>>)>,
}

/// The router's live picture, for monitoring: queue depth per (domain,
/// priority), its sizes, expert totals and the `loads` most loaded experts.
/// Costs the supervisor one pass over its experts.
#[derive(Message)]
#[rtype(result = "RoutingSnapshot")]
pub struct ReadRouting {
    pub loads: usize,
}

#[derive(Debug, Clone, Default)]
pub struct RoutingSnapshot {
    /// Non-zero depths, by domain, then priority (most urgent first).
    pub queue_depths: Vec<(String, &'static str, usize)>,
    pub experts: usize,
    /// Cases the router holds: queued and assigned.
    pub open_cases: usize,
    pub expert_totals: ExpertTotals,
    /// Most open cases first, then by id.
    pub expert_loads: Vec<ExpertLoad>,
}

/// Messages an engine actor queues before `send` waits (`do_send` never waits).
pub const MAILBOX_CAPACITY: usize = 1 << 16;
