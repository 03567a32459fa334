//! The Escalation API's response shapes, built from the engine's records.

use serde::Serialize;
use serde_json::Value;
use switchboard_actors::records::{EscalationRecord, ExpertRecord};
use utoipa::ToSchema;

use crate::http::agent::api_keys::rfc3339;

/// The six fields of a create response and of each list item.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a6f0-7c1e-7d2a-9a51-3b3f2f0c8e11",
    "status": "pending",
    "priority": "standard",
    "domain": "healthcare.rcm",
    "sla_deadline": "2026-04-13T14:23:00Z",
    "created_at": "2026-04-13T13:53:00Z"
}))]
pub struct EscalationSummary {
    #[schema(example = "0193a6f0-7c1e-7d2a-9a51-3b3f2f0c8e11")]
    pub id: String,
    /// `pending`, `routed`, `in_review`, `resolved`, `expired` or `cancelled`.
    #[schema(example = "pending")]
    pub status: String,
    #[schema(example = "standard")]
    pub priority: String,
    #[schema(example = "healthcare.rcm")]
    pub domain: String,
    #[schema(example = "2026-04-13T14:23:00Z")]
    pub sla_deadline: String,
    #[schema(example = "2026-04-13T13:53:00Z")]
    pub created_at: String,
}

impl From<&EscalationRecord> for EscalationSummary {
    fn from(r: &EscalationRecord) -> Self {
        EscalationSummary {
            id: r.id.to_string(),
            status: r.status.as_str().into(),
            priority: r.priority.as_str().into(),
            domain: r.domain.as_str().into(),
            sla_deadline: rfc3339(r.sla_deadline_ms),
            created_at: rfc3339(r.created_at_ms),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CandidateView {
    pub id: String,
    #[schema(value_type = Object)]
    pub answer: Value,
    pub confidence: Option<f64>,
    pub source: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ResolutionView {
    pub escalation_id: String,
    pub expert_id: String,
    #[schema(value_type = Object)]
    pub answer: Value,
    pub confidence: Option<f64>,
    pub reasoning: Option<String>,
    pub resolved_at: String,
    pub source_candidate_id: Option<String>,
    /// e.g. `accepted`, `edited`, `rejected`: how the expert used the candidate.
    pub candidate_action: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FeedbackView {
    pub score: f64,
    pub comment: Option<String>,
    pub submitted_at: String,
}

/// The full detail of an escalation.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a6f0-7c1e-7d2a-9a51-3b3f2f0c8e11",
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "domain": "healthcare.rcm",
    "query": "Which CPT codes apply to this follow-up visit?",
    "context": {"visit_notes": "Established patient, 25 minutes, medication review", "payer": "Aetna"},
    "priority": "standard",
    "status": "resolved",
    "output_schema": {
        "type": "object",
        "required": ["approved_cpts"],
        "properties": {"approved_cpts": {"type": "array", "items": {"type": "string"}}}
    },
    "callback_url": "https://agent.example.com/hooks/cero",
    "metadata": {"ticket": "T-1042"},
    "task_type": "cpt_review",
    "candidates": [{
        "id": "0193a6f0-7c1f-7a01-8b2c-9d3e4f5a6b7c",
        "answer": {"approved_cpts": ["99213"]},
        "confidence": 0.62,
        "source": "agent"
    }],
    "sla_deadline": "2026-04-13T14:23:00Z",
    "created_at": "2026-04-13T13:53:00Z",
    "routed_at": "2026-04-13T13:53:01Z",
    "resolved_at": "2026-04-13T14:01:00Z",
    "expert_id": "0193a6e9-2f4d-7b3a-8c1e-6d5f4a3b2c10",
    "resolution": {
        "escalation_id": "0193a6f0-7c1e-7d2a-9a51-3b3f2f0c8e11",
        "expert_id": "0193a6e9-2f4d-7b3a-8c1e-6d5f4a3b2c10",
        "answer": {"approved_cpts": ["99213", "99214"]},
        "confidence": 0.95,
        "reasoning": "25 minutes with medication management supports 99214 alongside the visit code",
        "resolved_at": "2026-04-13T14:01:00Z",
        "source_candidate_id": "0193a6f0-7c1f-7a01-8b2c-9d3e4f5a6b7c",
        "candidate_action": "edited"
    },
    "feedback": {"score": 0.9, "comment": "Clear and correct", "submitted_at": "2026-04-13T14:05:00Z"}
}))]
pub struct EscalationDetail {
    pub id: String,
    pub tenant_id: String,
    pub domain: String,
    pub query: String,
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    pub priority: String,
    pub status: String,
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
    pub callback_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub task_type: Option<String>,
    pub candidates: Vec<CandidateView>,
    pub sla_deadline: String,
    pub created_at: String,
    pub routed_at: Option<String>,
    pub resolved_at: Option<String>,
    pub expert_id: Option<String>,
    /// Null until resolved.
    pub resolution: Option<ResolutionView>,
    pub feedback: Option<FeedbackView>,
}

impl From<&EscalationRecord> for EscalationDetail {
    fn from(r: &EscalationRecord) -> Self {
        EscalationDetail {
            id: r.id.to_string(),
            tenant_id: r.tenant.0.clone(),
            domain: r.domain.as_str().into(),
            query: r.query.clone(),
            context: r.context.clone(),
            priority: r.priority.as_str().into(),
            status: r.status.as_str().into(),
            output_schema: r.output_schema.clone(),
            callback_url: r.callback_url.clone(),
            metadata: r.metadata.clone(),
            task_type: r.task_type.clone(),
            candidates: r
                .candidates
                .iter()
                .map(|c| CandidateView {
                    id: c.id.clone(),
                    answer: c.answer.clone(),
                    confidence: c.confidence,
                    source: c.source.clone(),
                })
                .collect(),
            sla_deadline: rfc3339(r.sla_deadline_ms),
            created_at: rfc3339(r.created_at_ms),
            routed_at: r.routed_at_ms.map(rfc3339),
            resolved_at: r.resolved_at_ms.map(rfc3339),
            expert_id: r.expert_id.map(|e| e.to_string()),
            resolution: r.resolution.as_ref().map(|res| ResolutionView {
                escalation_id: r.id.to_string(),
                expert_id: res.expert_id.to_string(),
                answer: res.answer.clone(),
                confidence: res.confidence,
                reasoning: res.reasoning.clone(),
                resolved_at: rfc3339(res.resolved_at_ms),
                source_candidate_id: res.source_candidate_id.clone(),
                candidate_action: res.candidate_action.clone(),
            }),
            feedback: r.feedback.as_ref().map(|f| FeedbackView {
                score: f.score,
                comment: f.comment.clone(),
                submitted_at: rfc3339(f.at_ms),
            }),
        }
    }
}

/// An expert's profile.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a6e9-2f4d-7b3a-8c1e-6d5f4a3b2c10",
    "name": "Dr. Alice Chen",
    "email": "alice@example.com",
    "domains": ["healthcare.rcm"],
    "credentials": ["CPC", "CCS"],
    "tier": "senior",
    "status": "available",
    "max_concurrent": 3,
    "quality_score": null,
    "resolution_count": 0,
    "platform_wide": false,
    "created_at": "2026-04-13T09:00:00Z"
}))]
pub struct ExpertView {
    pub id: String,
    #[schema(example = "Dr. Alice Chen")]
    pub name: String,
    pub email: String,
    #[schema(example = json!(["healthcare.rcm"]))]
    pub domains: Vec<String>,
    pub credentials: Vec<String>,
    /// `standard`, `senior` or `principal`.
    #[schema(example = "senior")]
    pub tier: String,
    /// `available`, `busy` or `offline`.
    #[schema(example = "available")]
    pub status: String,
    pub max_concurrent: u32,
    /// Mean feedback score (0–1) on the expert's cases; null before any feedback.
    pub quality_score: Option<f64>,
    pub resolution_count: i64,
    /// Registered by the operator tenant: serves every tenant.
    pub platform_wide: bool,
    pub created_at: String,
    /// Shown once, on registration and token rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expert_token: Option<String>,
}

impl From<&ExpertRecord> for ExpertView {
    fn from(r: &ExpertRecord) -> Self {
        ExpertView {
            id: r.id.to_string(),
            name: r.name.clone(),
            email: r.email.clone(),
            domains: r.domains.iter().map(|d| d.as_str().to_string()).collect(),
            credentials: r.credentials.clone(),
            tier: r.tier.as_str().into(),
            status: r.status.as_str().into(),
            max_concurrent: r.max_concurrent,
            quality_score: r.quality_score(),
            resolution_count: r.resolution_count,
            platform_wide: r.platform,
            created_at: rfc3339(r.created_at_ms),
            expert_token: None,
        }
    }
}
