//! The expert portal (`X-Expert-Token`): the expert's own profile and status,
//! their cases, and accept / resolve / decline. A case not assigned to the
//! caller is 404.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use switchboard_actors::engine::{
    Caller, CaseCommand, DeclineInput, ExpertCommand, ExpertPatch, ResolveInput,
};
use switchboard_actors::model::{DeclineReason, EscalationId, ExpertId};
use switchboard_actors::records::{EscalationRecord, ExpertRecord};
use utoipa::{IntoParams, ToSchema};

use super::escalations::{load, parse_id, parse_status, transition};
use super::experts::{parse_expert_status, record_of};
use super::views::{EscalationDetail, ExpertView};
use crate::error::{AppError, FieldError};
use crate::http::auth::ExpertToken;
use crate::http::extract::{Json, OptionalJson};
use crate::startup::AppState;

fn me(token: &ExpertToken) -> Result<ExpertId, AppError> {
    token.expert.id.parse().map_err(AppError::internal)
}

/// The caller's own profile.
#[utoipa::path(
    get,
    path = "/experts/me",
    tag = "escalation: expert portal",
    security(("expert_token" = [])),
    responses(
        (status = 200, description = "The profile", body = ExpertView),
        (status = 401, description = "Missing or invalid expert token", body = crate::http::openapi::DetailError,
            example = json!({"detail": "Invalid expert token"})),
    )
)]
pub async fn get_me(state: web::Data<AppState>, token: ExpertToken) -> Result<HttpResponse, AppError> {
    let record = record_of(&state, token.expert).await?;
    Ok(HttpResponse::Ok().json(ExpertView::from(&record)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "busy"}))]
pub struct PatchMeRequest {
    /// `available`, `busy` or `offline`.
    pub status: String,
}

/// Set the caller's status.
#[utoipa::path(
    patch,
    path = "/experts/me",
    tag = "escalation: expert portal",
    security(("expert_token" = [])),
    request_body = PatchMeRequest,
    responses(
        (status = 200, description = "Updated", body = ExpertView),
        (status = 400, description = "Validation error", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid expert token", body = crate::http::openapi::DetailError,
            example = json!({"detail": "Invalid expert token"})),
    )
)]
pub async fn patch_me(
    state: web::Data<AppState>,
    token: ExpertToken,
    body: Json<PatchMeRequest>,
) -> Result<HttpResponse, AppError> {
    let record = set_status(&state, me(&token)?, &body.0.status).await?;
    Ok(HttpResponse::Ok().json(ExpertView::from(&record)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MyCasesQuery {
    /// `routed`, `in_review`, `resolved`, ...
    pub status: Option<String>,
}

/// The caller's cases, newest first, in full detail.
#[utoipa::path(
    get,
    path = "/experts/me/escalations",
    tag = "escalation: expert portal",
    security(("expert_token" = [])),
    params(MyCasesQuery),
    responses(
        (status = 200, description = "Newest first (at most 200)", body = [EscalationDetail]),
        (status = 400, description = "Bad filter", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid expert token", body = crate::http::openapi::DetailError,
            example = json!({"detail": "Invalid expert token"})),
    )
)]
pub async fn my_cases(
    state: web::Data<AppState>,
    token: ExpertToken,
    query: web::Query<MyCasesQuery>,
) -> Result<HttpResponse, AppError> {
    let id = me(&token)?;
    let status = parse_status(query.status.as_deref())?;
    let records = state.store.escalations_of_expert(id, status, 200).await?;
    Ok(HttpResponse::Ok().json(records.iter().map(EscalationDetail::from).collect::<Vec<_>>()))
}

/// One of the caller's cases.
#[utoipa::path(
    get,
    path = "/experts/me/escalations/{escalation_id}",
    tag = "escalation: expert portal",
    security(("expert_token" = [])),
    params(("escalation_id" = String, Path)),
    responses(
        (status = 200, description = "Full detail", body = EscalationDetail),
        (status = 401, description = "Missing or invalid expert token", body = crate::http::openapi::DetailError,
            example = json!({"detail": "Invalid expert token"})),
        (status = 404, description = "Not assigned to the caller", body = crate::http::openapi::DetailError),
    )
)]
pub async fn my_case(
    state: web::Data<AppState>,
    token: ExpertToken,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let record = load(&state, id, &Caller::Expert(me(&token)?)).await?;
    Ok(HttpResponse::Ok().json(EscalationDetail::from(&record)))
}

/// Accept a case routed to the caller (`routed` → `in_review`).
#[utoipa::path(
    post,
    path = "/experts/me/escalations/{escalation_id}/accept",
    tag = "escalation: expert portal",
    security(("expert_token" = [])),
    params(("escalation_id" = String, Path)),
    responses(
        (status = 200, description = "In review", body = EscalationDetail),
        (status = 401, description = "Missing or invalid expert token", body = crate::http::openapi::DetailError,
            example = json!({"detail": "Invalid expert token"})),
        (status = 404, description = "Not assigned to the caller", body = crate::http::openapi::DetailError),
        (status = 409, description = "Not routed", body = crate::http::openapi::DetailError),
    )
)]
pub async fn accept(
    state: web::Data<AppState>,
    token: ExpertToken,
    path: web::Path<String>,
    _body: OptionalJson<Value>,
) -> Result<HttpResponse, AppError> {
    let record = accept_case(&state, me(&token)?, parse_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(EscalationDetail::from(&record)))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "answer": {"approved_cpts": ["99213", "99214"]},
    "confidence": 0.94,
    "reasoning": "Short explanation of the coding rationale",
    "source_candidate_id": "0193a6f0-7c1f-7a01-8b2c-9d3e4f5a6b7c",
    "candidate_action": "edited"
}))]
pub struct ResolveRequest {
    /// Must validate against the escalation's `output_schema`.
    #[schema(value_type = Object, example = json!({"approved_cpts": ["99213", "99214"]}))]
    pub answer: Option<Value>,
    /// 0–1.
    #[schema(example = 0.94)]
    pub confidence: Option<f64>,
    pub reasoning: Option<String>,
    pub source_candidate_id: Option<String>,
    /// How a candidate was used, e.g. `accepted`, `edited`, `rejected`.
    #[schema(example = "edited")]
    pub candidate_action: Option<String>,
}

/// Submit a resolution (from `routed` or `in_review`).
#[utoipa::path(
    post,
    path = "/experts/me/escalations/{escalation_id}/resolve",
    tag = "escalation: expert portal",
    security(("expert_token" = [])),
    params(("escalation_id" = String, Path)),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "Resolved", body = EscalationDetail),
        (status = 400, description = "Malformed body", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid expert token", body = crate::http::openapi::DetailError,
            example = json!({"detail": "Invalid expert token"})),
        (status = 404, description = "Not assigned to the caller", body = crate::http::openapi::DetailError),
        (status = 409, description = "Not routed or in review (e.g. expired)", body = crate::http::openapi::DetailError),
        (status = 422, description = "The Quality Gate refused the answer: every error, with its JSON pointer", body = crate::http::openapi::DetailError,
            example = json!({
                "detail": "the answer does not match the escalation's output_schema (1 error)",
                "errors": [{"path": "/answer/approved_cpts/0", "message": "99213 is not of type \"string\""}]
            })),
    )
)]
pub async fn resolve(
    state: web::Data<AppState>,
    token: ExpertToken,
    path: web::Path<String>,
    body: Json<ResolveRequest>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let record = resolve_case(&state, me(&token)?, id, body.0).await?;
    Ok(HttpResponse::Ok().json(EscalationDetail::from(&record)))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "reason": "need_more_context",
    "notes": "The visit notes do not say whether a procedure was performed",
    "source_candidate_id": null
}))]
pub struct DeclineRequest {
    /// `need_more_context`, `out_of_scope`, `conflict_of_interest`, `too_busy` or `other`.
    #[schema(example = "need_more_context")]
    pub reason: String,
    pub notes: Option<String>,
    pub source_candidate_id: Option<String>,
}

/// Decline a case: it returns to routing and is never offered to the caller again.
#[utoipa::path(
    post,
    path = "/experts/me/escalations/{escalation_id}/decline",
    tag = "escalation: expert portal",
    security(("expert_token" = [])),
    params(("escalation_id" = String, Path)),
    request_body = DeclineRequest,
    responses(
        (status = 200, description = "Declined; the case as it returned to routing", body = EscalationDetail),
        (status = 400, description = "Validation error", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid expert token", body = crate::http::openapi::DetailError,
            example = json!({"detail": "Invalid expert token"})),
        (status = 404, description = "Not assigned to the caller", body = crate::http::openapi::DetailError),
        (status = 409, description = "Not routed or in review", body = crate::http::openapi::DetailError),
    )
)]
pub async fn decline(
    state: web::Data<AppState>,
    token: ExpertToken,
    path: web::Path<String>,
    body: Json<DeclineRequest>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let record = decline_case(&state, me(&token)?, id, body.0).await?;
    Ok(HttpResponse::Ok().json(EscalationDetail::from(&record)))
}

// ---- what an expert does, for this JSON API and the HTML portal alike ----

/// Sets the expert's own status (`available`, `busy` or `offline`).
pub async fn set_status(state: &AppState, expert: ExpertId, status: &str) -> Result<ExpertRecord, AppError> {
    let patch = ExpertPatch { status: Some(parse_expert_status(status)?), ..Default::default() };
    state.engine.expert(expert, Caller::Expert(expert), ExpertCommand::Patch(patch)).await
}

/// `routed` → `in_review`.
pub async fn accept_case(
    state: &AppState,
    expert: ExpertId,
    id: EscalationId,
) -> Result<EscalationRecord, AppError> {
    transition(state, id, Caller::Expert(expert), CaseCommand::Accept, "accepted").await
}

/// Resolves through the Quality Gate: a missing answer or confidence, or an
/// answer its `output_schema` refuses, is a 422 naming each field.
pub async fn resolve_case(
    state: &AppState,
    expert: ExpertId,
    id: EscalationId,
    body: ResolveRequest,
) -> Result<EscalationRecord, AppError> {
    let mut missing = Vec::new();
    if body.answer.is_none() {
        missing.push(FieldError { path: "/answer".into(), message: "answer is required".into() });
    }
    if body.confidence.is_none() {
        missing.push(FieldError {
            path: "/confidence".into(),
            message: "confidence is required (0 to 1)".into(),
        });
    }
    if !missing.is_empty() {
        return Err(AppError::Unprocessable {
            message: "the resolution is incomplete".into(),
            errors: missing,
        });
    }
    let text = |v: Option<String>, max: usize, field: &str| -> Result<Option<String>, AppError> {
        match v {
            Some(s) if s.chars().count() > max => {
                Err(AppError::BadRequest(format!("{field} is longer than {max} characters")))
            }
            other => Ok(other),
        }
    };
    let input = ResolveInput {
        answer: body.answer.unwrap_or(Value::Null),
        confidence: body.confidence,
        reasoning: text(body.reasoning, 100_000, "reasoning")?,
        source_candidate_id: text(body.source_candidate_id, 100, "source_candidate_id")?,
        candidate_action: text(body.candidate_action, 100, "candidate_action")?,
    };
    transition(state, id, Caller::Expert(expert), CaseCommand::Resolve(input), "resolved").await
}

/// Declines with one of the spec's reasons: the case returns to routing.
pub async fn decline_case(
    state: &AppState,
    expert: ExpertId,
    id: EscalationId,
    body: DeclineRequest,
) -> Result<EscalationRecord, AppError> {
    let reason = DeclineReason::parse(body.reason.trim()).ok_or_else(|| {
        AppError::BadRequest(format!(
            "reason {:?} is not one of need_more_context, out_of_scope, conflict_of_interest, too_busy, other",
            body.reason
        ))
    })?;
    if body.notes.as_ref().is_some_and(|n| n.chars().count() > 10_000) {
        return Err(AppError::BadRequest("notes is longer than 10000 characters".into()));
    }
    let input = DeclineInput { reason, notes: body.notes, source_candidate_id: body.source_candidate_id };
    transition(state, id, Caller::Expert(expert), CaseCommand::Decline(input), "declined").await
}

/// Registered before `/experts/{expert_id}` so that `me` is not taken for an id.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/experts/me").route(web::get().to(get_me)).route(web::patch().to(patch_me)))
        .service(web::resource("/experts/me/escalations").route(web::get().to(my_cases)))
        .service(web::resource("/experts/me/escalations/{escalation_id}").route(web::get().to(my_case)))
        .service(
            web::resource("/experts/me/escalations/{escalation_id}/accept").route(web::post().to(accept)),
        )
        .service(
            web::resource("/experts/me/escalations/{escalation_id}/resolve").route(web::post().to(resolve)),
        )
        .service(
            web::resource("/experts/me/escalations/{escalation_id}/decline").route(web::post().to(decline)),
        );
}
