//! `/auth/*` of the Escalation API: register a tenant, issue more keys, read usage.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::http::auth::EscalationKey;
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::{Email, Plan};
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "My Agent", "email": "dev@example.com", "company": "Acme Health"}))]
pub struct RegisterRequest {
    /// Tenant or agent name.
    #[schema(example = "My Agent")]
    pub name: String,
    /// Contact email (unique).
    #[schema(example = "dev@example.com")]
    pub email: String,
    pub company: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "api_key": "cero_0123456789abcdef0123456789abcdef0123456789abcdef",
    "tier": "free",
    "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "next_steps": {
        "authenticate": "send the api_key in the X-API-Key header",
        "register_expert": "POST /experts",
        "create_escalation": "POST /escalations",
        "poll": "GET /escalations/{escalation_id} or /escalations/{escalation_id}/wait",
        "docs": "/docs"
    }
}))]
pub struct RegisterResponse {
    pub tenant_id: String,
    /// Shown once: store it.
    #[schema(example = "cero_0123456789abcdef0123456789abcdef0123456789abcdef")]
    pub api_key: String,
    #[schema(example = "free")]
    pub tier: String,
    /// Signs this tenant's `callback_url` deliveries (Standard Webhooks). Shown once.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub webhook_secret: String,
    #[schema(value_type = Object)]
    pub next_steps: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "api_key": "cero_9f2b44a1c3d5e7f90123456789abcdef0123456789abcdef",
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "tier": "free"
}))]
pub struct ApiKeyResponse {
    pub api_key: String,
    pub tenant_id: String,
    pub tier: String,
}

#[derive(Serialize, ToSchema)]
pub struct UsageLimits {
    /// Null when unlimited.
    pub escalations_per_day: Option<u64>,
    pub escalations_per_month: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "tier": "free",
    "escalations_today": 5,
    "escalations_this_month": 45,
    "avg_resolution_time": 120.5,
    "limits": {"escalations_per_day": 10, "escalations_per_month": 100},
    "credits": 55
}))]
pub struct UsageResponse {
    pub tenant_id: String,
    pub tier: String,
    pub escalations_today: u64,
    pub escalations_this_month: u64,
    /// Seconds, over this month's resolved cases; null if none.
    pub avg_resolution_time: Option<f64>,
    pub limits: UsageLimits,
    /// Escalations left this month; null when unlimited.
    pub credits: Option<u64>,
}

/// Register a tenant and receive an API key. No auth required.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "escalation: auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = RegisterResponse),
        (status = 400, description = "Validation error", body = crate::http::openapi::DetailError),
        (status = 409, description = "Email already registered", body = crate::http::openapi::DetailError),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::BadRequest("name is required (at most 200 characters)".into()));
    }
    let email = Email::parse(&body.email).map_err(AppError::BadRequest)?;
    let company = body.company.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    let registered = accounts::register(&state.store, &state.identity, name, &email, company).await?;
    Ok(HttpResponse::Created().json(RegisterResponse {
        tenant_id: registered.tenant_id,
        api_key: registered.api_key,
        tier: Plan::Free.as_str().into(),
        webhook_secret: registered.webhook_secret,
        next_steps: json!({
            "authenticate": "send the api_key in the X-API-Key header",
            "register_expert": "POST /experts",
            "create_escalation": "POST /escalations",
            "poll": "GET /escalations/{escalation_id} or /escalations/{escalation_id}/wait",
            "docs": "/docs",
        }),
    }))
}

/// Generate an additional API key for the caller's tenant.
#[utoipa::path(
    post,
    path = "/auth/api-key",
    tag = "escalation: auth",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A new key, shown once", body = ApiKeyResponse),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
    )
)]
pub async fn new_api_key(
    state: web::Data<AppState>,
    caller: EscalationKey,
) -> Result<HttpResponse, AppError> {
    let api_key = accounts::new_escalation_key(&state.store, &caller.tenant.id).await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse {
        api_key,
        tenant_id: caller.tenant.id,
        tier: caller.tenant.plan,
    }))
}

/// Usage against the tier's limits.
#[utoipa::path(
    get,
    path = "/auth/usage",
    tag = "escalation: auth",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Usage", body = UsageResponse),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
    )
)]
pub async fn usage(state: web::Data<AppState>, caller: EscalationKey) -> Result<HttpResponse, AppError> {
    let plan = Plan::parse(&caller.tenant.plan).map_err(AppError::internal)?;
    let (per_day, per_month) = plan.escalation_limits();
    let (day_start, month_start, _, _) = super::escalations::quota_windows(crate::store::now_ms());
    let tenant = switchboard_actors::model::TenantId(caller.tenant.id.clone());
    let (today, this_month) = state.store.escalation_counts(tenant.clone(), day_start, month_start).await?;
    let avg = state.store.avg_resolution_secs(tenant, month_start).await?;
    Ok(HttpResponse::Ok().json(UsageResponse {
        tenant_id: caller.tenant.id,
        tier: plan.as_str().into(),
        escalations_today: today,
        escalations_this_month: this_month,
        avg_resolution_time: avg.map(|s| (s * 10.0).round() / 10.0),
        limits: UsageLimits { escalations_per_day: per_day, escalations_per_month: per_month },
        credits: per_month.map(|m| m.saturating_sub(this_month)),
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/register").route(web::post().to(register)))
        .service(web::resource("/auth/api-key").route(web::post().to(new_api_key)))
        .service(web::resource("/auth/usage").route(web::get().to(usage)));
}
