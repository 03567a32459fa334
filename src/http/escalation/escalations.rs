//! `/escalations*`: create (idempotent, within the tier's quota), list, get,
//! long-poll `/wait`, cancel and feedback. Open cases are answered by their
//! EscalationActor; closed ones are read from the database.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_actors::engine::{Caller, CaseCommand, CaseReply, CreateCase, EngineError, ExpertCommand};
use switchboard_actors::model::{Domain, EscalationId, EscalationStatus, Priority, TenantId};
use switchboard_actors::records::{Candidate, EscalationRecord, Feedback, IdempotencyRecord, QuotaCheck};
use switchboard_actors::PersistError;
use utoipa::{IntoParams, ToSchema};

use super::views::{EscalationDetail, EscalationSummary};
use crate::engine::engine_error;
use crate::error::AppError;
use crate::http::auth::EscalationKey;
use crate::http::extract::{Json, OptionalJson};
use crate::identity::model::Plan;
use crate::identity::tokens::sha256_hex;
use crate::startup::AppState;
use crate::store::{escalations::EscalationFilter, now_ms};

const MAX_QUERY_CHARS: usize = 100_000;
const MAX_CANDIDATES: usize = 50;
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Deserialize, Serialize, ToSchema)]
pub struct CandidateInput {
    #[schema(value_type = Object)]
    pub answer: Value,
    pub confidence: Option<f64>,
    pub source: Option<String>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[schema(example = json!({
    "domain": "healthcare.rcm",
    "query": "Which CPT codes apply to this follow-up visit?",
    "context": {"visit_notes": "Established patient, 25 minutes, medication review", "payer": "Aetna"},
    "priority": "standard",
    "output_schema": {
        "type": "object",
        "required": ["approved_cpts"],
        "properties": {"approved_cpts": {"type": "array", "items": {"type": "string"}}}
    },
    "callback_url": "https://agent.example.com/hooks/cero",
    "metadata": {"ticket": "T-1042"},
    "task_type": "cpt_review",
    "candidates": [{"answer": {"approved_cpts": ["99213"]}, "confidence": 0.62, "source": "agent"}]
}))]
pub struct CreateEscalationRequest {
    /// Expert domain, a lowercase dotted slug.
    #[schema(example = "healthcare.rcm")]
    pub domain: String,
    /// Question or case for expert review.
    #[schema(example = "CPT code review")]
    pub query: String,
    /// Structured context for the expert.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// `urgent` (5 min), `standard` (30 min, default) or `batch` (24 h); see the SLA settings.
    #[schema(example = "standard")]
    pub priority: Option<String>,
    /// JSON Schema the expert's answer must conform to.
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
    /// Receives `escalation.resolved` and `escalation.expired` (http or https, public address).
    pub callback_url: Option<String>,
    /// Caller-defined tracking data.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub task_type: Option<String>,
    /// Draft answers shown to the expert.
    pub candidates: Option<Vec<CandidateInput>>,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

fn optional_object(v: Option<Value>, field: &str) -> Result<Option<Value>, AppError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(bad(format!("{field} must be a JSON object"))),
    }
}

/// Turns a request into a pending case, or says what is wrong with it.
async fn parse_create(
    state: &AppState,
    tenant: TenantId,
    body: CreateEscalationRequest,
) -> Result<
    (EscalationRecord, Option<std::sync::Arc<switchboard_actors::quality_gate::CompiledSchema>>),
    AppError,
> {
    let domain = Domain::parse(&body.domain).map_err(bad)?;
    let query = body.query.trim().to_string();
    if query.is_empty() {
        return Err(bad("query is required"));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(bad(format!("query is longer than {MAX_QUERY_CHARS} characters")));
    }
    let priority = match body.priority.as_deref() {
        None => Priority::Standard,
        Some(p) => Priority::parse(p)
            .ok_or_else(|| bad(format!("priority {p:?} is not one of urgent, standard, batch")))?,
    };
    let context = optional_object(body.context, "context")?;
    let metadata = optional_object(body.metadata, "metadata")?;
    let (output_schema, schema) = match body.output_schema {
        None | Some(Value::Null) => (None, None),
        Some(s) => {
            let compiled = state
                .engine
                .schemas
                .compile(&s)
                .map_err(|e| bad(format!("output_schema is not a valid JSON Schema: {e}")))?;
            (Some(s), Some(compiled))
        }
    };
    let callback_url = match body.callback_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => {
            let url = state.engine.guard.check_url(raw).await.map_err(|e| bad(e.to_string()))?;
            Some(url.to_string())
        }
    };
    let task_type = match body.task_type.map(|t| t.trim().to_string()) {
        Some(t) if t.chars().count() > 100 => return Err(bad("task_type is longer than 100 characters")),
        Some(t) if !t.is_empty() => Some(t),
        _ => None,
    };
    let inputs = body.candidates.unwrap_or_default();
    if inputs.len() > MAX_CANDIDATES {
        return Err(bad(format!("at most {MAX_CANDIDATES} candidates")));
    }
    let mut candidates = Vec::with_capacity(inputs.len());
    for (i, c) in inputs.into_iter().enumerate() {
        if let Some(conf) = c.confidence {
            if !(0.0..=1.0).contains(&conf) {
                return Err(bad(format!("candidates[{i}].confidence must be between 0 and 1")));
            }
        }
        candidates.push(Candidate {
            id: uuid::Uuid::now_v7().to_string(),
            answer: c.answer,
            confidence: c.confidence,
            source: c.source,
        });
    }
    let now = now_ms();
    let sla = state.settings.sla_for(priority);
    let record = EscalationRecord {
        id: EscalationId::new(),
        tenant,
        domain,
        query,
        context,
        priority,
        status: EscalationStatus::Pending,
        output_schema,
        callback_url,
        metadata,
        task_type,
        candidates,
        sla_deadline_ms: now + sla.as_millis() as i64,
        created_at_ms: now,
        routed_at_ms: None,
        accepted_at_ms: None,
        resolved_at_ms: None,
        closed_at_ms: None,
        expert_id: None,
        excluded: Vec::new(),
        resolution: None,
        feedback: None,
        feedback_version: 0,
        updated_at_ms: now,
    };
    Ok((record, schema))
}

/// Epoch ms of the start of today and of this month (UTC), and of the next of each.
pub fn quota_windows(now: i64) -> (i64, i64, i64, i64) {
    let t = Utc.timestamp_millis_opt(now).single().unwrap_or_default();
    let day = t.date_naive();
    let day_start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis();
    let month = day.with_day(1).unwrap_or(day);
    let month_start = month.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis();
    let next_month = if month.month() == 12 {
        chrono::NaiveDate::from_ymd_opt(month.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(month.year(), month.month() + 1, 1)
    }
    .unwrap_or(month);
    let next_month_start = next_month.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis();
    (day_start, month_start, day_start + 86_400_000, next_month_start)
}

/// The tier's limits as checks for the create's transaction (none when
/// unlimited). Answers 429 at once when a limit is already reached; the
/// checks run again inside the transaction, so concurrent creates cannot
/// overshoot.
async fn quota_checks(state: &AppState, tenant: &TenantId, plan: Plan) -> Result<Vec<QuotaCheck>, AppError> {
    let (per_day, per_month) = plan.escalation_limits();
    let now = now_ms();
    let (day_start, month_start, next_day, next_month) = quota_windows(now);
    let secs_until = |at: i64| (((at - now).max(1000) + 999) / 1000) as u64;
    let mut checks = Vec::new();
    if let Some(limit) = per_month {
        checks.push(QuotaCheck {
            tenant: tenant.clone(),
            since_ms: month_start,
            limit,
            message: format!("Monthly escalation limit of the {} tier reached ({limit})", plan.as_str()),
            retry_after_secs: secs_until(next_month),
        });
    }
    if let Some(limit) = per_day {
        checks.push(QuotaCheck {
            tenant: tenant.clone(),
            since_ms: day_start,
            limit,
            message: format!("Daily escalation limit of the {} tier reached ({limit})", plan.as_str()),
            retry_after_secs: secs_until(next_day),
        });
    }
    if checks.is_empty() {
        return Ok(checks);
    }
    let (today, month) = state.store.escalation_counts(tenant.clone(), day_start, month_start).await?;
    for c in &checks {
        let used = if c.since_ms == month_start { month } else { today };
        if used >= c.limit {
            return Err(AppError::RateLimited {
                message: c.message.clone(),
                retry_after_secs: c.retry_after_secs,
            });
        }
    }
    Ok(checks)
}

/// Answers a repeated `Idempotency-Key`: the first response, or 409 for another body.
async fn replay(
    state: &AppState,
    tenant: &TenantId,
    key: &str,
    request_hash: &str,
) -> Result<Option<HttpResponse>, AppError> {
    match state.store.idempotency(tenant.clone(), key.to_string(), now_ms()).await? {
        None => Ok(None),
        Some((hash, body)) if hash == request_hash => {
            Ok(Some(HttpResponse::Created().insert_header(("Idempotent-Replayed", "true")).json(body)))
        }
        Some(_) => Err(AppError::Conflict(
            "This Idempotency-Key was already used with a different request body".into(),
        )),
    }
}

/// Create an escalation.
#[utoipa::path(
    post,
    path = "/escalations",
    tag = "escalation: escalations",
    security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 h")),
    request_body = CreateEscalationRequest,
    responses(
        (status = 201, description = "Created (pending); routed in the background", body = EscalationSummary),
        (status = 400, description = "Validation error", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 409, description = "Idempotency-Key reused with another body", body = crate::http::openapi::DetailError),
        (status = 429, description = "Tier limit reached; see Retry-After", body = crate::http::openapi::DetailError),
    )
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: EscalationKey,
    body: Json<CreateEscalationRequest>,
) -> Result<HttpResponse, AppError> {
    let tenant = TenantId(caller.tenant.id.clone());
    let plan = Plan::parse(&caller.tenant.plan).map_err(AppError::internal)?;
    let idem_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().map_err(|_| bad("Idempotency-Key must be visible ASCII"))?.trim().to_string();
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY {
                return Err(bad(format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")));
            }
            Some(k)
        }
    };
    let request_hash = sha256_hex(&serde_json::to_string(&body.0).map_err(AppError::internal)?);
    if let Some(key) = &idem_key {
        if let Some(response) = replay(&state, &tenant, key, &request_hash).await? {
            return Ok(response);
        }
    }
    let (record, schema) = parse_create(&state, tenant.clone(), body.0).await?;
    let quotas = quota_checks(&state, &tenant, plan).await?;
    let summary = serde_json::to_value(EscalationSummary::from(&record)).map_err(AppError::internal)?;
    let idempotency = idem_key.clone().map(|key| IdempotencyRecord {
        tenant: tenant.clone(),
        key,
        request_hash: request_hash.clone(),
        escalation: record.id,
        response: summary.clone(),
        at_ms: record.created_at_ms,
    });
    match state.engine.create(CreateCase { record, schema, idempotency, quotas, extra: Vec::new() }).await {
        Ok(_) => Ok(HttpResponse::Created().json(summary)),
        // The same key raced in from another request: answer as that one was answered.
        Err(EngineError::Persist(PersistError::Duplicate(_))) if idem_key.is_some() => {
            let key = idem_key.unwrap_or_default();
            replay(&state, &tenant, &key, &request_hash).await?.ok_or_else(|| {
                AppError::Conflict("This Idempotency-Key is being used by another request".into())
            })
        }
        Err(e) => Err(engine_error(e)),
    }
}

/// Opens an escalation for `tenant` on behalf of the server itself (a
/// Cerebral's `escalate` action): the same checks, tier quota and webhooks as
/// `POST /escalations`, with `extra` changes committed in its transaction
/// (which may name the case by `id`, chosen ahead).
pub async fn open_escalation(
    state: &AppState,
    tenant: TenantId,
    plan: Plan,
    body: CreateEscalationRequest,
    id: Option<EscalationId>,
    extra: Vec<switchboard_actors::Change>,
) -> Result<EscalationRecord, AppError> {
    let (mut record, schema) = parse_create(state, tenant.clone(), body).await?;
    if let Some(id) = id {
        record.id = id;
    }
    let quotas = quota_checks(state, &tenant, plan).await?;
    state
        .engine
        .create(CreateCase { record, schema, idempotency: None, quotas, extra })
        .await
        .map_err(engine_error)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending`, `routed`, `in_review`, `resolved`, `expired` or `cancelled`.
    pub status: Option<String>,
    pub domain: Option<String>,
    /// Default 50, at most 200.
    pub limit: Option<String>,
    /// Default 0.
    pub offset: Option<String>,
}

pub fn parse_limit(raw: Option<&str>) -> Result<i64, AppError> {
    match raw {
        None => Ok(50),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if (1..=200).contains(&n) => Ok(n),
            _ => Err(bad(format!("limit must be an integer from 1 to 200, not {s:?}"))),
        },
    }
}

pub fn parse_status(raw: Option<&str>) -> Result<Option<EscalationStatus>, AppError> {
    raw.map(|s| {
        EscalationStatus::parse(s.trim()).ok_or_else(|| {
            bad(format!(
                "status {s:?} is not one of pending, routed, in_review, resolved, expired, cancelled"
            ))
        })
    })
    .transpose()
}

/// List the tenant's escalations, newest first.
#[utoipa::path(
    get,
    path = "/escalations",
    tag = "escalation: escalations",
    security(("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Newest first", body = [EscalationSummary]),
        (status = 400, description = "Bad filter", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: EscalationKey,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let filter = EscalationFilter {
        status: parse_status(q.status.as_deref())?,
        domain: q.domain.as_deref().map(Domain::parse).transpose().map_err(bad)?,
        limit: parse_limit(q.limit.as_deref())?,
        offset: match q.offset.as_deref() {
            None => 0,
            Some(s) => match s.trim().parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => return Err(bad(format!("offset must be a non-negative integer, not {s:?}"))),
            },
        },
    };
    let records = state.store.escalations_of_tenant(TenantId(caller.tenant.id), filter).await?;
    Ok(HttpResponse::Ok().json(records.iter().map(EscalationSummary::from).collect::<Vec<_>>()))
}

pub fn parse_id(raw: &str) -> Result<EscalationId, AppError> {
    raw.parse().map_err(|_| AppError::NotFound("Escalation not found".into()))
}

fn not_found() -> AppError {
    AppError::NotFound("Escalation not found".into())
}

/// A case as `caller` may see it: from its actor while open, else from the database.
pub async fn load(state: &AppState, id: EscalationId, caller: &Caller) -> Result<EscalationRecord, AppError> {
    if let Some(reply) =
        state.engine.case(id, caller.clone(), CaseCommand::Get).await.map_err(not_found_as)?
    {
        return match reply {
            CaseReply::Record(r) => Ok(*r),
            CaseReply::Waiting { current, .. } => Ok(*current),
        };
    }
    let record = state.store.escalation(id).await?.ok_or_else(not_found)?;
    let visible = match caller {
        Caller::Tenant(t) => record.tenant == *t,
        Caller::Expert(e) => record.expert_id == Some(*e),
        Caller::Trusted => true,
    };
    if visible {
        Ok(record)
    } else {
        Err(not_found())
    }
}

/// The engine's generic "Not found" said in this resource's words.
pub fn not_found_as(e: AppError) -> AppError {
    match e {
        AppError::NotFound(_) => not_found(),
        other => other,
    }
}

/// Runs `command` on an open case; a closed one the caller can see is 409, else 404.
pub async fn transition(
    state: &AppState,
    id: EscalationId,
    caller: Caller,
    command: CaseCommand,
    verb: &str,
) -> Result<EscalationRecord, AppError> {
    match state.engine.case(id, caller.clone(), command).await.map_err(not_found_as)? {
        Some(CaseReply::Record(r)) => Ok(*r),
        Some(CaseReply::Waiting { current, .. }) => Ok(*current),
        None => {
            let record = load(state, id, &caller).await?;
            Err(AppError::Conflict(format!(
                "an escalation that is {} cannot be {verb}",
                record.status.as_str()
            )))
        }
    }
}

/// Get an escalation's status and resolution.
#[utoipa::path(
    get,
    path = "/escalations/{escalation_id}",
    tag = "escalation: escalations",
    security(("api_key" = [])),
    params(("escalation_id" = String, Path)),
    responses(
        (status = 200, description = "Full detail", body = EscalationDetail),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::DetailError,
            example = json!({"detail": "Escalation not found"})),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: EscalationKey,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let record = load(&state, id, &Caller::Tenant(TenantId(caller.tenant.id))).await?;
    Ok(HttpResponse::Ok().json(EscalationDetail::from(&record)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to wait (default 30, at most 60).
    pub timeout: Option<String>,
}

/// Wait until the escalation is resolved, expired or cancelled, or `timeout` seconds pass.
#[utoipa::path(
    get,
    path = "/escalations/{escalation_id}/wait",
    tag = "escalation: escalations",
    security(("api_key" = [])),
    params(("escalation_id" = String, Path), WaitQuery),
    responses(
        (status = 200, description = "The detail: closed, or current when the timeout passed", body = EscalationDetail),
        (status = 400, description = "Bad timeout", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::DetailError),
    )
)]
pub async fn wait(
    state: web::Data<AppState>,
    caller: EscalationKey,
    path: web::Path<String>,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let timeout = match query.timeout.as_deref() {
        None => 30.0,
        Some(s) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => n.min(60.0),
            _ => return Err(bad(format!("timeout must be a number of seconds from 0 to 60, not {s:?}"))),
        },
    };
    let caller = Caller::Tenant(TenantId(caller.tenant.id));
    let reply = state.engine.case(id, caller.clone(), CaseCommand::Wait).await.map_err(not_found_as)?;
    let record = match reply {
        None => load(&state, id, &caller).await?,
        Some(CaseReply::Record(r)) => *r,
        Some(CaseReply::Waiting { current: _, closed }) => {
            match actix_web::rt::time::timeout(Duration::from_secs_f64(timeout), closed).await {
                Ok(Ok(record)) => record,
                // Timed out, or the actor went away: answer with the state as it is now.
                _ => load(&state, id, &caller).await?,
            }
        }
    };
    Ok(HttpResponse::Ok().json(EscalationDetail::from(&record)))
}

/// Cancel a pending or routed escalation.
#[utoipa::path(
    post,
    path = "/escalations/{escalation_id}/cancel",
    tag = "escalation: escalations",
    security(("api_key" = [])),
    params(("escalation_id" = String, Path)),
    responses(
        (status = 200, description = "Cancelled; the detail", body = EscalationDetail),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::DetailError),
        (status = 409, description = "Not pending or routed", body = crate::http::openapi::DetailError),
    )
)]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: EscalationKey,
    path: web::Path<String>,
    _body: OptionalJson<Value>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let caller = Caller::Tenant(TenantId(caller.tenant.id));
    let record = transition(&state, id, caller, CaseCommand::Cancel, "cancelled").await?;
    Ok(HttpResponse::Ok().json(EscalationDetail::from(&record)))
}

#[derive(Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct FeedbackInput {
    /// Rating 0.0–1.0.
    pub score: Option<String>,
    pub comment: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"score": 0.9, "comment": "Clear and correct"}))]
pub struct FeedbackBody {
    pub score: Option<f64>,
    pub comment: Option<String>,
}

/// Rate a resolution (query parameters, or the same fields as a JSON body).
#[utoipa::path(
    post,
    path = "/escalations/{escalation_id}/feedback",
    tag = "escalation: escalations",
    security(("api_key" = [])),
    params(("escalation_id" = String, Path), FeedbackInput),
    request_body(content = Option<FeedbackBody>, description = "Alternative to the query parameters"),
    responses(
        (status = 200, description = "Recorded; the detail", body = EscalationDetail),
        (status = 400, description = "Score missing or outside 0–1", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::DetailError),
        (status = 409, description = "Not resolved", body = crate::http::openapi::DetailError),
    )
)]
pub async fn feedback(
    state: web::Data<AppState>,
    caller: EscalationKey,
    path: web::Path<String>,
    query: web::Query<FeedbackInput>,
    body: OptionalJson<FeedbackBody>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let query = query.into_inner();
    let body = body.0.unwrap_or(FeedbackBody { score: None, comment: None });
    let score = match (body.score, query.score.as_deref()) {
        (Some(s), _) => s,
        (None, Some(raw)) => {
            raw.trim().parse::<f64>().map_err(|_| bad(format!("score must be a number, not {raw:?}")))?
        }
        (None, None) => return Err(bad("score is required (0.0 to 1.0)")),
    };
    if !(0.0..=1.0).contains(&score) {
        return Err(bad("score must be between 0.0 and 1.0"));
    }
    let comment = body.comment.or(query.comment).map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > 10_000) {
        return Err(bad("comment is longer than 10000 characters"));
    }
    let caller = Caller::Tenant(TenantId(caller.tenant.id));
    let record = load(&state, id, &caller).await?;
    let expert = match (record.status, record.expert_id) {
        (EscalationStatus::Resolved, Some(e)) => e,
        _ => {
            return Err(AppError::Conflict(format!(
                "only a resolved escalation can be rated; this one is {}",
                record.status.as_str()
            )))
        }
    };
    let command = ExpertCommand::Feedback {
        escalation: id,
        expected_version: record.feedback_version,
        previous: record.feedback.as_ref().map(|f| f.score),
        feedback: Feedback { score, comment, at_ms: now_ms() },
    };
    state.engine.expert(expert, Caller::Trusted, command).await?;
    let record = state.store.escalation(id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(EscalationDetail::from(&record)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/escalations").route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource("/escalations/{escalation_id}").route(web::get().to(get)))
        .service(web::resource("/escalations/{escalation_id}/wait").route(web::get().to(wait)))
        .service(web::resource("/escalations/{escalation_id}/cancel").route(web::post().to(cancel)))
        .service(web::resource("/escalations/{escalation_id}/feedback").route(web::post().to(feedback)));
}
