//! The aggregates the actors own, as the snapshots they ask the Store to
//! write: an escalation (with its resolution and feedback) and an expert.
//! Times are epoch milliseconds; JSON documents stay `serde_json::Value`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{
    Domain, EscalationId, EscalationStatus, ExpertId, ExpertStatus, ExpertTier, Priority, TenantId,
};

/// A draft answer shown to the expert (e.g. from an AI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub answer: Value,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub source: Option<String>,
}

/// An expert's accepted answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub answer: Value,
    pub confidence: Option<f64>,
    pub reasoning: Option<String>,
    pub expert_id: ExpertId,
    pub resolved_at_ms: i64,
    pub source_candidate_id: Option<String>,
    pub candidate_action: Option<String>,
}

/// The caller's rating of a resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub score: f64,
    pub comment: Option<String>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationRecord {
    pub id: EscalationId,
    pub tenant: TenantId,
    pub domain: Domain,
    pub query: String,
    pub context: Option<Value>,
    pub priority: Priority,
    pub status: EscalationStatus,
    pub output_schema: Option<Value>,
    pub callback_url: Option<String>,
    pub metadata: Option<Value>,
    pub task_type: Option<String>,
    pub candidates: Vec<Candidate>,
    pub sla_deadline_ms: i64,
    pub created_at_ms: i64,
    pub routed_at_ms: Option<i64>,
    pub accepted_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    pub expert_id: Option<ExpertId>,
    /// Experts who declined it or missed its reservation: never offered it again.
    pub excluded: Vec<ExpertId>,
    pub resolution: Option<Resolution>,
    pub feedback: Option<Feedback>,
    /// Bumped by every feedback write (optimistic concurrency).
    pub feedback_version: i64,
    pub updated_at_ms: i64,
}

impl EscalationRecord {
    pub fn stream(&self) -> String {
        format!("escalation:{}", self.id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpertRecord {
    pub id: ExpertId,
    pub tenant: TenantId,
    /// Registered by the operator tenant: serves every tenant.
    pub platform: bool,
    pub name: String,
    pub email: String,
    pub domains: Vec<Domain>,
    pub credentials: Vec<String>,
    pub tier: ExpertTier,
    pub status: ExpertStatus,
    pub max_concurrent: u32,
    /// SHA-256 (hex) of the portal token.
    pub token_hash: String,
    pub quality_sum: f64,
    pub quality_count: i64,
    pub resolution_count: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl ExpertRecord {
    /// Mean feedback score, null until the first feedback.
    pub fn quality_score(&self) -> Option<f64> {
        (self.quality_count > 0).then(|| self.quality_sum / self.quality_count as f64)
    }
}

/// A feedback write: replaces the case's feedback only if nobody else wrote
/// one since `expected_version`, and sets the expert's quality totals.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackWrite {
    pub escalation: EscalationId,
    pub expected_version: i64,
    pub feedback: Feedback,
    pub expert: ExpertId,
    pub quality_sum: f64,
    pub quality_count: i64,
}

/// The first answer to an `Idempotency-Key`, replayed for 24 hours.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub tenant: TenantId,
    pub key: String,
    pub request_hash: String,
    pub escalation: EscalationId,
    pub response: Value,
    pub at_ms: i64,
}

/// One of a tier's escalation limits, enforced inside the create's transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaCheck {
    pub tenant: TenantId,
    pub since_ms: i64,
    pub limit: u64,
    /// Said to the caller when the limit is reached.
    pub message: String,
    pub retry_after_secs: u64,
}

/// Where a webhook delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Persisted, not attempted yet.
    Pending,
    /// Attempted and failed; another attempt is scheduled.
    Retrying,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt of the schedule failed, or the target is gone.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => DeliveryStatus::Pending,
            "retrying" => DeliveryStatus::Retrying,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }

    /// Still owed an attempt.
    pub fn is_open(&self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Retrying)
    }
}

/// One event owed to one URL: persisted before its first attempt, its `id`
/// is the `webhook-id` every attempt carries, so receivers can de-duplicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `msg_...`, time-ordered.
    pub id: String,
    pub tenant_id: TenantId,
    /// The escalation the event is about, if any.
    pub escalation_id: Option<EscalationId>,
    /// The `/v1/webhooks` subscription whose secret signs it; `None` for a
    /// `callback_url`, signed with the tenant's `webhook_secret`.
    pub subscription_id: Option<String>,
    pub event: String,
    pub url: String,
    /// The exact body, as signed.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
    pub created_at_ms: i64,
}
