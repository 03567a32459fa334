//! `/experts*` for tenants (API key): register (the portal token is shown
//! once), list (own and platform-wide), get, patch, rotate the token.
//! Changes go through each expert's ExpertActor, so routing sees them at once.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use switchboard_actors::engine::{Caller, ExpertCommand, ExpertPatch};
use switchboard_actors::model::{Domain, ExpertId, ExpertStatus, ExpertTier, TenantId};
use switchboard_actors::records::ExpertRecord;
use utoipa::{IntoParams, ToSchema};

use super::escalations::parse_limit;
use super::views::ExpertView;
use crate::error::AppError;
use crate::http::auth::{EscalationKey, EXPERT_TOKEN_PREFIX};
use crate::http::extract::Json;
use crate::identity::model::Email;
use crate::identity::tokens::{random_alnum, sha256_hex};
use crate::startup::AppState;
use crate::store::escalations::{ExpertFilter, ExpertRow};
use crate::store::now_ms;

const MAX_DOMAINS: usize = 50;
const MAX_CREDENTIALS: usize = 50;
const MAX_CONCURRENT: u32 = 1000;

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

fn not_found() -> AppError {
    AppError::NotFound("Expert not found".into())
}

pub fn new_token() -> (String, String) {
    let token = format!("{EXPERT_TOKEN_PREFIX}{}", random_alnum(48));
    let hash = sha256_hex(&token);
    (token, hash)
}

pub fn parse_domains(raw: Vec<String>) -> Result<Vec<Domain>, AppError> {
    if raw.is_empty() {
        return Err(bad("domains must name at least one domain"));
    }
    if raw.len() > MAX_DOMAINS {
        return Err(bad(format!("at most {MAX_DOMAINS} domains")));
    }
    let mut domains = Vec::with_capacity(raw.len());
    for d in raw {
        let d = Domain::parse(&d).map_err(bad)?;
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    Ok(domains)
}

fn parse_credentials(raw: Vec<String>) -> Result<Vec<String>, AppError> {
    if raw.len() > MAX_CREDENTIALS {
        return Err(bad(format!("at most {MAX_CREDENTIALS} credentials")));
    }
    raw.into_iter()
        .map(|c| {
            let c = c.trim().to_string();
            if c.is_empty() || c.chars().count() > 200 {
                Err(bad("each credential must be 1 to 200 characters"))
            } else {
                Ok(c)
            }
        })
        .collect()
}

pub fn parse_expert_status(raw: &str) -> Result<ExpertStatus, AppError> {
    ExpertStatus::parse(raw.trim())
        .ok_or_else(|| bad(format!("status {raw:?} is not one of available, busy, offline")))
}

fn parse_tier(raw: &str) -> Result<ExpertTier, AppError> {
    ExpertTier::parse(raw.trim())
        .ok_or_else(|| bad(format!("tier {raw:?} is not one of standard, senior, principal")))
}

fn parse_max_concurrent(n: i64) -> Result<u32, AppError> {
    if (1..=MAX_CONCURRENT as i64).contains(&n) {
        Ok(n as u32)
    } else {
        Err(bad(format!("max_concurrent must be from 1 to {MAX_CONCURRENT}")))
    }
}

pub fn parse_expert_id(raw: &str) -> Result<ExpertId, AppError> {
    raw.parse().map_err(|_| not_found())
}

/// The expert's record with `platform` resolved against the operator tenant.
pub async fn record_of(state: &AppState, row: ExpertRow) -> Result<ExpertRecord, AppError> {
    let operator = state.store.operator_tenant().await?.map(|t| t.id);
    let platform = operator.as_ref() == Some(&row.tenant_id);
    Ok(row.into_record(platform)?)
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Dr. Alice Chen",
    "email": "alice@example.com",
    "domains": ["healthcare.rcm"],
    "credentials": ["CPC", "CCS"],
    "tier": "senior",
    "max_concurrent": 3
}))]
pub struct CreateExpertRequest {
    #[schema(example = "Dr. Alice Chen")]
    pub name: String,
    #[schema(example = "alice@example.com")]
    pub email: String,
    #[schema(example = json!(["healthcare.rcm"]))]
    pub domains: Vec<String>,
    pub credentials: Option<Vec<String>>,
    /// `standard` (default), `senior` or `principal`.
    pub tier: Option<String>,
    /// Default 3.
    pub max_concurrent: Option<i64>,
}

/// Register an expert. With an operator key, the expert is platform-wide.
#[utoipa::path(
    post,
    path = "/experts",
    tag = "escalation: experts",
    security(("api_key" = [])),
    request_body = CreateExpertRequest,
    responses(
        (status = 201, description = "Registered; `expert_token` is shown once", body = ExpertView,
            example = json!({
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
                "created_at": "2026-04-13T09:00:00Z",
                "expert_token": "exp_Zk3pQ8vR2mN6tY1wX4cB7dF0gH5jL9sA2eU6iO3kM8nP1qT4"
            })),
        (status = 400, description = "Validation error", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: EscalationKey,
    body: Json<CreateExpertRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(bad("name is required (at most 200 characters)"));
    }
    let email = Email::parse(&body.email).map_err(bad)?;
    let domains = parse_domains(body.domains)?;
    let credentials = parse_credentials(body.credentials.unwrap_or_default())?;
    let tier = body.tier.as_deref().map(parse_tier).transpose()?.unwrap_or(ExpertTier::Standard);
    let max_concurrent = parse_max_concurrent(body.max_concurrent.unwrap_or(3))?;
    let (token, token_hash) = new_token();
    let now = now_ms();
    let record = ExpertRecord {
        id: ExpertId::new(),
        tenant: TenantId(caller.tenant.id.clone()),
        platform: caller.tenant.is_operator,
        name,
        email: email.as_str().to_string(),
        domains,
        credentials,
        tier,
        status: ExpertStatus::Available,
        max_concurrent,
        token_hash,
        quality_sum: 0.0,
        quality_count: 0,
        resolution_count: 0,
        created_at_ms: now,
        updated_at_ms: now,
    };
    let record = state.engine.register(record).await?;
    let mut view = ExpertView::from(&record);
    view.expert_token = Some(token);
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpertListQuery {
    pub domain: Option<String>,
    /// `available`, `busy` or `offline`.
    pub status: Option<String>,
    /// Default 50, at most 200.
    pub limit: Option<String>,
}

/// List the tenant's experts and the platform-wide ones, best quality first.
#[utoipa::path(
    get,
    path = "/experts",
    tag = "escalation: experts",
    security(("api_key" = [])),
    params(ExpertListQuery),
    responses(
        (status = 200, description = "Ordered by quality_score, highest first (no score last)", body = [ExpertView]),
        (status = 400, description = "Bad filter", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: EscalationKey,
    query: web::Query<ExpertListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let filter = ExpertFilter {
        domain: q.domain.as_deref().map(Domain::parse).transpose().map_err(bad)?,
        status: q.status.as_deref().map(parse_expert_status).transpose()?,
        limit: parse_limit(q.limit.as_deref())?,
    };
    let operator = state.store.operator_tenant().await?.map(|t| t.id);
    let mut tenants = vec![TenantId(caller.tenant.id.clone())];
    if let Some(op) = operator.clone().filter(|op| *op != caller.tenant.id) {
        tenants.push(TenantId(op));
    }
    let rows = state.store.experts_of(tenants, filter).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let platform = operator.as_ref() == Some(&row.tenant_id);
        views.push(ExpertView::from(&row.into_record(platform)?));
    }
    Ok(HttpResponse::Ok().json(views))
}

/// The expert if the caller's tenant may see it: its own, or platform-wide.
async fn visible_expert(
    state: &AppState,
    caller: &EscalationKey,
    raw: &str,
) -> Result<ExpertRecord, AppError> {
    let id = parse_expert_id(raw)?;
    let row = state.store.expert(id).await?.ok_or_else(not_found)?;
    let record = record_of(state, row).await?;
    if record.tenant.0 == caller.tenant.id || record.platform {
        Ok(record)
    } else {
        Err(not_found())
    }
}

/// Get an expert's profile (own or platform-wide).
#[utoipa::path(
    get,
    path = "/experts/{expert_id}",
    tag = "escalation: experts",
    security(("api_key" = [])),
    params(("expert_id" = String, Path)),
    responses(
        (status = 200, description = "The profile", body = ExpertView),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::DetailError),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: EscalationKey,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let record = visible_expert(&state, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(ExpertView::from(&record)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "offline", "domains": ["healthcare.rcm", "healthcare.clinical"], "max_concurrent": 5}))]
pub struct PatchExpertRequest {
    pub status: Option<String>,
    pub domains: Option<Vec<String>>,
    pub credentials: Option<Vec<String>>,
    pub tier: Option<String>,
    pub max_concurrent: Option<i64>,
}

fn parse_patch(body: PatchExpertRequest) -> Result<ExpertPatch, AppError> {
    Ok(ExpertPatch {
        status: body.status.as_deref().map(parse_expert_status).transpose()?,
        domains: body.domains.map(parse_domains).transpose()?,
        credentials: body.credentials.map(parse_credentials).transpose()?,
        tier: body.tier.as_deref().map(parse_tier).transpose()?,
        max_concurrent: body.max_concurrent.map(parse_max_concurrent).transpose()?,
    })
}

/// Update an expert of the caller's tenant.
#[utoipa::path(
    patch,
    path = "/experts/{expert_id}",
    tag = "escalation: experts",
    security(("api_key" = [])),
    params(("expert_id" = String, Path)),
    request_body = PatchExpertRequest,
    responses(
        (status = 200, description = "Updated", body = ExpertView),
        (status = 400, description = "Validation error", body = crate::http::openapi::DetailError),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::DetailError),
    )
)]
pub async fn patch(
    state: web::Data<AppState>,
    caller: EscalationKey,
    path: web::Path<String>,
    body: Json<PatchExpertRequest>,
) -> Result<HttpResponse, AppError> {
    let id = parse_expert_id(&path)?;
    let patch = parse_patch(body.0)?;
    let record = state
        .engine
        .expert(id, Caller::Tenant(TenantId(caller.tenant.id)), ExpertCommand::Patch(patch))
        .await
        .map_err(not_found_as)?;
    Ok(HttpResponse::Ok().json(ExpertView::from(&record)))
}

fn not_found_as(e: AppError) -> AppError {
    match e {
        AppError::NotFound(_) => not_found(),
        other => other,
    }
}

/// Issue a new portal token for an expert of the caller's tenant; the old one stops working.
#[utoipa::path(
    post,
    path = "/experts/{expert_id}/token",
    tag = "escalation: experts",
    security(("api_key" = [])),
    params(("expert_id" = String, Path)),
    responses(
        (status = 200, description = "The profile with the new `expert_token`, shown once", body = ExpertView,
            example = json!({
                "id": "0193a6e9-2f4d-7b3a-8c1e-6d5f4a3b2c10",
                "name": "Dr. Alice Chen",
                "email": "alice@example.com",
                "domains": ["healthcare.rcm"],
                "credentials": ["CPC", "CCS"],
                "tier": "senior",
                "status": "available",
                "max_concurrent": 3,
                "quality_score": 0.92,
                "resolution_count": 41,
                "platform_wide": false,
                "created_at": "2026-04-13T09:00:00Z",
                "expert_token": "exp_Q7wE2rT9yU4iO1pA6sD3fG8hJ5kL0zX2cV7bN4mM9qW1eR6t"
            })),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::DetailError),
    )
)]
pub async fn rotate_token(
    state: web::Data<AppState>,
    caller: EscalationKey,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_expert_id(&path)?;
    let (token, token_hash) = new_token();
    let record = state
        .engine
        .expert(id, Caller::Tenant(TenantId(caller.tenant.id)), ExpertCommand::RotateToken { token_hash })
        .await
        .map_err(not_found_as)?;
    let mut view = ExpertView::from(&record);
    view.expert_token = Some(token);
    Ok(HttpResponse::Ok().json(view))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/experts").route(web::post().to(create)).route(web::get().to(list)))
        .service(
            web::resource("/experts/{expert_id}").route(web::get().to(get)).route(web::patch().to(patch)),
        )
        .service(web::resource("/experts/{expert_id}/token").route(web::post().to(rotate_token)));
}
