//! `POST /v1/cerebrals/:id/message` (X-API-Key): one turn of a Cerebral, run
//! by its tenant's actor; `GET /v1/rate-limits`; and a session's transcript,
//! `GET /v1/cerebrals/:id/sessions/:session_id` (JWT).

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_actors::tenant::Health;
use utoipa::ToSchema;

use super::api_keys::rfc3339;
use super::sops::Sop;
use super::{admit, envelope, AgentTenant};
use crate::agents::config::{limits_of, TenantConfig};
use crate::agents::runtime::{CustomerInfo, Reply, Turn};
use crate::error::AppError;
use crate::http::auth::{AgentKey, Session};
use crate::http::extract::Json;
use crate::identity::model::{IdentityMode, Plan};
use crate::startup::AppState;
use crate::store::cerebrals::CerebralStatus;

const MAX_MESSAGE_CHARS: usize = 32_000;
const MAX_SESSION_ID_CHARS: usize = 200;
const MAX_METADATA_BYTES: usize = 16 * 1024;
/// The most entries a transcript returns.
const MAX_TRANSCRIPT: i64 = 1_000;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "message": "What is the status of order #1234?",
    "session_id": "user-abc-123",
    "customer_id": "cust_0193a1c2d4e57f6ab8c9d0e1f2a3b4c5",
    "identity": {"email": "jane@example.com", "name": "Jane Doe"},
    "metadata": {"channel": "web", "locale": "en-US", "order_id": "1234"}
}))]
pub struct MessageRequest {
    /// The message to send to the Cerebral.
    #[schema(example = "What is the status of order #1234?")]
    pub message: Option<String>,
    /// Same session_id = same memory; omit for a stateless call.
    #[schema(example = "user-abc-123")]
    pub session_id: Option<String>,
    /// Your customer identifier (created on the fly).
    #[schema(example = "cust_8f2a")]
    pub customer_id: Option<String>,
    /// `{email, name, phone, ...}`; required if the key's identity_mode is `required`.
    #[schema(value_type = Option<Object>)]
    pub identity: Option<Value>,
    /// Passed through to the execution context (templates: `{{metadata.key}}`).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

fn bad(m: impl Into<String>) -> AppError {
    AppError::BadRequest(m.into())
}

struct Checked {
    message: String,
    session_id: Option<String>,
    customer_id: Option<String>,
    identity: Option<Value>,
    metadata: Value,
}

fn check(body: MessageRequest) -> Result<Checked, AppError> {
    let message = body.message.ok_or_else(|| bad("message is required"))?;
    if message.trim().is_empty() {
        return Err(bad("message must not be empty"));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(bad(format!("message is longer than {MAX_MESSAGE_CHARS} characters")));
    }
    let session_id = match body.session_id {
        None => None,
        Some(s) => {
            let s = s.trim().to_string();
            if s.is_empty() || s.chars().count() > MAX_SESSION_ID_CHARS || s.chars().any(char::is_control) {
                return Err(bad(format!("session_id must be 1–{MAX_SESSION_ID_CHARS} printable characters")));
            }
            Some(s)
        }
    };
    let customer_id = match body.customer_id {
        None => None,
        Some(c) => {
            let c = c.trim().to_string();
            if c.is_empty() || c.chars().count() > 200 || c.chars().any(char::is_control) {
                return Err(bad("customer_id must be 1–200 printable characters"));
            }
            Some(c)
        }
    };
    let identity = match body.identity {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => return Err(bad("identity must be a JSON object")),
    };
    let metadata = match body.metadata {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => {
            if v.to_string().len() > MAX_METADATA_BYTES {
                return Err(bad(format!("metadata is larger than {MAX_METADATA_BYTES} bytes")));
            }
            v
        }
        Some(_) => return Err(bad("metadata must be a JSON object")),
    };
    Ok(Checked { message, session_id, customer_id, identity, metadata })
}

/// Send a message to a Cerebral.
#[utoipa::path(
    post, path = "/v1/cerebrals/{id}/message", tag = "agent: cerebrals",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Cerebral id (a UUID)")),
    request_body = MessageRequest,
    responses(
        (status = 200, description = "`{success, data: Reply}`", body = crate::http::openapi::Envelope<Reply>,
            example = json!({
                "success": true,
                "data": {
                    "message": "Order #1234 is currently in transit. Expected delivery tomorrow 2–6pm.",
                    "session_id": "user-abc-123",
                    "execution_id": "exec_0193a6f41b2c7d3e8f4a5b6c7d8e9f01",
                    "metadata": {
                        "model": "gpt-4o-mini",
                        "tokens_used": 312,
                        "actions_executed": 1,
                        "latency_ms": 1847,
                        "sop_matched": "order_status_lookup",
                        "escalation_ids": []
                    }
                }
            })),
        (status = 400, description = "Missing or invalid field", body = crate::http::openapi::EnvelopeError),
        (status = 401, description = "Invalid or missing X-API-Key header", body = crate::http::openapi::EnvelopeError),
        (status = 402, description = "Daily LLM budget exhausted", body = crate::http::openapi::EnvelopeError,
            example = json!({"success": false, "error": {"code": "PAYMENT_REQUIRED", "message": "the daily LLM budget of 200000 tokens is spent (200312 used); it resets at midnight UTC", "requestId": "req_0193a6f17c1e7d2a9a513b3f2f0c8e11"}})),
        (status = 403, description = "Key locked to another Cerebral, another tenant's Cerebral, or Origin not allowed", body = crate::http::openapi::EnvelopeError),
        (status = 404, description = "Cerebral not found, or draft/paused", body = crate::http::openapi::EnvelopeError),
        (status = 422, description = "identity_mode is required but no identity or customer_id", body = crate::http::openapi::EnvelopeError,
            example = json!({"success": false, "error": {"code": "UNPROCESSABLE", "message": "this API key's identity_mode is \"required\": send customer_id or identity", "requestId": "req_0193a6f17c1e7d2a9a513b3f2f0c8e11"}})),
        (status = 429, description = "Rate limit exceeded; see Retry-After", body = crate::http::openapi::EnvelopeError,
            example = json!({"success": false, "error": {"code": "RATE_LIMITED", "message": "Rate limit exceeded: 60 requests per minute for this tenant's plan", "requestId": "req_0193a6f17c1e7d2a9a513b3f2f0c8e11"}})),
        (status = 503, description = "TENANT_NOT_RUNNING, or CIRCUIT_OPEN (model provider unavailable)", body = crate::http::openapi::EnvelopeError,
            example = json!({"success": false, "error": {"code": "TENANT_NOT_RUNNING", "message": "the tenant's container is stopped, not running: deploy it first", "requestId": "req_0193a6f17c1e7d2a9a513b3f2f0c8e11"}})),
    )
)]
pub async fn message(
    state: web::Data<AppState>,
    caller: AgentKey,
    req: HttpRequest,
    id: web::Path<String>,
    // A body that is not a MessageRequest is refused only after the request is
    // counted (and the Cerebral checked), so that it is rate-limited and its
    // 400 carries the headers like every other authenticated answer.
    body: Result<Json<MessageRequest>, AppError>,
) -> Result<HttpResponse, AppError> {
    let started = Instant::now();
    let tenant = caller.tenant;
    let plan = Plan::parse(&tenant.plan).map_err(AppError::internal)?;
    let limits = limits_of(plan);
    admit(&state, &req, &tenant.id, limits, true).await?;
    let body = body.map(|b| b.0);
    let answer = turn(&state, &caller.key, &tenant, plan, id.into_inner(), body, started).await;
    // The headers show the state after the turn (its tokens, its circuit).
    let _ = admit(&state, &req, &tenant.id, limits, false).await;
    Ok(envelope(StatusCode::OK, answer?))
}

async fn turn(
    state: &web::Data<AppState>,
    key: &crate::store::identity::ApiKeyRow,
    tenant: &crate::store::identity::TenantRow,
    plan: Plan,
    cerebral_id: String,
    body: Result<MessageRequest, AppError>,
    started: Instant,
) -> Result<Reply, AppError> {
    if let Some(locked) = &key.cerebral_id {
        if locked != &cerebral_id {
            return Err(AppError::Forbidden("this API key is locked to a different Cerebral".into()));
        }
    }
    let cerebral = state
        .store
        .cerebral(cerebral_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Cerebral not found".into()))?;
    if cerebral.tenant_id != tenant.id {
        return Err(AppError::Forbidden("this Cerebral belongs to a different tenant".into()));
    }
    if CerebralStatus::parse(&cerebral.status) != Some(CerebralStatus::Active) {
        return Err(AppError::NotFound(format!("Cerebral is {}, not active", cerebral.status)));
    }
    // In the documented order: the body is checked once the Cerebral is known.
    let body = check(body?)?;
    let mode = IdentityMode::parse(&key.identity_mode).map_err(AppError::internal)?;
    if mode == IdentityMode::Required && body.customer_id.is_none() && body.identity.is_none() {
        return Err(AppError::Unprocessable {
            message: "this API key's identity_mode is \"required\": send customer_id or identity".into(),
            errors: vec![],
        });
    }
    let customer = if mode == IdentityMode::Anonymous {
        None
    } else {
        super::customers::customer_for_message(
            state,
            &tenant.id,
            body.customer_id.as_deref(),
            body.identity.as_ref(),
        )
        .await?
        .map(|c| CustomerInfo {
            id: c.id,
            external_id: c.external_id,
            email: c.email,
            phone: c.phone,
            name: c.name,
        })
    };
    let sops: Vec<Sop> = serde_json::from_str(&cerebral.sops)
        .map_err(|e| AppError::internal(format!("cerebral {} has bad SOPs: {e}", cerebral.id)))?;
    let api_key = match &tenant.provider_api_key_sealed {
        Some(sealed) => Some(state.identity.secrets.open(sealed).map_err(AppError::internal)?),
        None => None,
    };
    let turn = Turn {
        state: state.clone(),
        tenant_id: tenant.id.clone(),
        plan,
        config: TenantConfig::from_stored(&tenant.id, &tenant.config),
        api_key,
        cerebral,
        sops,
        message: body.message,
        session_id: body.session_id,
        customer,
        metadata: body.metadata,
        execution_id: format!("exec_{}", uuid::Uuid::now_v7().simple()),
        started,
    };
    state.agents.converse(limits_of(plan), turn).await
}

#[derive(Serialize, ToSchema)]
pub struct TenantLimits {
    /// Null: unlimited.
    pub requests_per_minute: Option<u64>,
    pub requests_per_hour: Option<u64>,
    pub requests_per_day: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct CurrentUsage {
    pub minute: u64,
    pub hour: u64,
    pub day: u64,
}

#[derive(Serialize, ToSchema)]
pub struct HealthView {
    /// `ok | warn | throttle | block`
    pub budget_state: String,
    /// `closed | open | half_open`
    pub circuit_state: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "tenant": {"requests_per_minute": 60, "requests_per_hour": 1000, "requests_per_day": 10000},
    "current": {"minute": 12, "hour": 284, "day": 1847},
    "health": {"budget_state": "ok", "circuit_state": "closed"}
}))]
pub struct RateLimits {
    pub tenant: TenantLimits,
    pub current: CurrentUsage,
    pub health: HealthView,
}

fn rate_limits_view(h: &Health) -> RateLimits {
    RateLimits {
        tenant: TenantLimits {
            requests_per_minute: h.rate.per_minute,
            requests_per_hour: h.rate.per_hour,
            requests_per_day: h.rate.per_day,
        },
        current: CurrentUsage { minute: h.rate.minute, hour: h.rate.hour, day: h.rate.day },
        health: HealthView {
            budget_state: h.budget.as_str().into(),
            circuit_state: h.circuit.as_str().into(),
        },
    }
}

/// The tenant's rate limits and current counters (API key or JWT). Only
/// API-key requests count toward the limits.
#[utoipa::path(
    get, path = "/v1/rate-limits", tag = "agent: rate limits",
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, data: RateLimits}`", body = crate::http::openapi::Envelope<RateLimits>),
        (status = 401, description = "No valid API key or JWT", body = crate::http::openapi::EnvelopeError),
        (status = 429, description = "Rate limit exceeded (API key)", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn rate_limits(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, AppError> {
    let (tenant, _) = super::key_or_jwt(&state, &req).await?;
    let plan = Plan::parse(&tenant.plan).map_err(AppError::internal)?;
    // key_or_jwt already counted a key's request; this reads the state after it.
    let health = admit(&state, &req, &tenant.id, limits_of(plan), false).await?;
    Ok(envelope(StatusCode::OK, rate_limits_view(&health)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptEntry {
    #[schema(example = "mem_0193a1c2d4e57f6ab8c9d0e1f2a3b4c5")]
    pub id: String,
    /// `user`, `assistant`, `expert` (an expert's answer to an escalation) or
    /// `system` (the escalation expired unanswered).
    pub role: String,
    pub content: String,
    pub customer_id: Option<String>,
    pub execution_id: Option<String>,
    pub escalation_id: Option<String>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "cerebralId": "0193a1c2-d4e5-7f6a-b8c9-d0e1f2a3b4c5",
    "sessionId": "user-abc-123",
    "messages": [
        {
            "id": "mem_0193a6f41a2b7c3d8e4f5a6b7c8d9e01",
            "role": "user",
            "content": "What is the status of order #1234?",
            "customerId": "cust_0193a1c2d4e57f6ab8c9d0e1f2a3b4c5",
            "executionId": "exec_0193a6f41b2c7d3e8f4a5b6c7d8e9f01",
            "escalationId": null,
            "createdAt": "2026-02-25T21:44:11Z"
        },
        {
            "id": "mem_0193a6f41c3d7e4f8a5b6c7d8e9f0a02",
            "role": "assistant",
            "content": "Order #1234 is currently in transit. Expected delivery tomorrow 2–6pm.",
            "customerId": "cust_0193a1c2d4e57f6ab8c9d0e1f2a3b4c5",
            "executionId": "exec_0193a6f41b2c7d3e8f4a5b6c7d8e9f01",
            "escalationId": null,
            "createdAt": "2026-02-25T21:44:13Z"
        }
    ]
}))]
pub struct Transcript {
    pub cerebral_id: String,
    pub session_id: String,
    pub messages: Vec<TranscriptEntry>,
}

/// A session's transcript, oldest first (at most 1000 entries).
#[utoipa::path(
    get, path = "/v1/cerebrals/{id}/sessions/{session_id}", tag = "agent: cerebrals",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Cerebral id (a UUID)"),
        ("session_id" = String, Path, description = "The session's id"),
    ),
    responses(
        (status = 200, description = "`{success, data: Transcript}`", body = crate::http::openapi::Envelope<Transcript>),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
        (status = 404, description = "No such Cerebral (or another tenant's), or no such session", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn transcript(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    let (cerebral_id, session_id) = path.into_inner();
    let cerebral = state
        .store
        .cerebral(cerebral_id)
        .await?
        .filter(|c| c.tenant_id == tenant.tenant.id)
        .ok_or_else(|| AppError::NotFound("Cerebral not found".into()))?;
    let rows =
        state.store.session_transcript(cerebral.id.clone(), session_id.clone(), MAX_TRANSCRIPT).await?;
    if rows.is_empty() {
        return Err(AppError::NotFound("no such session for this Cerebral".into()));
    }
    let messages = rows
        .into_iter()
        .map(|r| TranscriptEntry {
            id: r.id,
            role: r.role,
            content: r.content,
            customer_id: r.customer_id,
            execution_id: r.execution_id,
            escalation_id: r.escalation_id,
            created_at: rfc3339(r.created_at),
        })
        .collect();
    Ok(envelope(StatusCode::OK, Transcript { cerebral_id: cerebral.id, session_id, messages }))
}

/// The health the surface middleware turns into `X-RateLimit-*`,
/// `X-Budget-State` and `X-Circuit-State`.
#[derive(Debug, Clone, Copy)]
pub struct AgentHealth(pub Health);

pub fn remember(req: &HttpRequest, health: Health) {
    req.extensions_mut().insert(AgentHealth(health));
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/cerebrals/{id}/message").route(web::post().to(message)))
        .service(web::resource("/cerebrals/{id}/sessions/{session_id}").route(web::get().to(transcript)))
        .service(web::resource("/rate-limits").route(web::get().to(rate_limits)));
}
