//! `/v1/cerebrals`: a tenant's Cerebrals, managed with the JWT. Reads for any
//! member, writes for Manager and above; another tenant's Cerebral is 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use switchboard_actors::model::TenantId;
use utoipa::ToSchema;

use super::api_keys::rfc3339;
use super::sops::{parse_sops, Sop};
use super::{envelope, AgentTenant};
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::startup::AppState;
use crate::store::cerebrals::{self as rows, CerebralRow, CerebralStatus};
use crate::store::{now_ms, WriteRequest};

const MAX_NAME_CHARS: usize = 200;
const MAX_SYSTEM_PROMPT_CHARS: usize = 100_000;
const MAX_PROVIDER_CHARS: usize = 100;
const MAX_MODEL_CHARS: usize = 200;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Order assistant",
    "system_prompt": "You answer questions about orders, briefly.",
    "model": "gpt-4o-mini",
    "status": "active",
    "sops": [{
        "name": "order_status_lookup",
        "match": {"keywords": ["order", "status"]},
        "actions": [
            {"type": "http", "method": "GET", "url": "https://shop.example.com/api/orders/{{metadata.order_id}}", "body": null},
            {"type": "reply", "template": "Your order is on its way."}
        ]
    }]
}))]
pub struct CreateCerebralRequest {
    /// 1–200 characters.
    #[schema(example = "Order assistant")]
    pub name: String,
    /// Overrides the tenant's system prompt.
    pub system_prompt: Option<String>,
    /// Overrides the tenant's provider (`offline`, or an OpenAI-compatible server).
    pub provider: Option<String>,
    /// Overrides the tenant's model.
    #[schema(example = "gpt-4o-mini")]
    pub model: Option<String>,
    /// `draft`, `active` (default) or `paused`.
    pub status: Option<String>,
    /// At most 50 SOPs of at most 20 actions each.
    #[schema(value_type = Option<Vec<Sop>>)]
    pub sops: Option<Value>,
}

/// Any subset of the create fields; `null` clears `system_prompt`, `provider`,
/// `model` and `sops`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"status": "paused", "model": null}))]
pub struct PatchCerebralRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub system_prompt: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub provider: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub model: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub status: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Sop>>)]
    pub sops: Option<Option<Value>>,
}

/// A field that is present (even as `null`) is `Some`; an absent one stays `None` by `default`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "0193a1c2-d4e5-7f6a-b8c9-d0e1f2a3b4c5",
    "name": "Order assistant",
    "systemPrompt": "You answer questions about orders, briefly.",
    "provider": null,
    "model": "gpt-4o-mini",
    "status": "active",
    "sops": [{
        "name": "order_status_lookup",
        "match": {"keywords": ["order", "status"]},
        "actions": [
            {"type": "http", "method": "GET", "url": "https://shop.example.com/api/orders/{{metadata.order_id}}", "body": null},
            {"type": "reply", "template": "Your order is on its way."}
        ]
    }],
    "createdAt": "2026-02-25T21:44:11Z",
    "updatedAt": "2026-02-25T21:44:11Z"
}))]
pub struct CerebralView {
    /// A UUID.
    #[schema(example = "0193a1c2-d4e5-7f6a-b8c9-d0e1f2a3b4c5")]
    pub id: String,
    pub name: String,
    pub system_prompt: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: CerebralStatus,
    pub sops: Vec<Sop>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a1c2-d4e5-7f6a-b8c9-d0e1f2a3b4c5", "deleted": true}))]
pub struct DeletedCerebral {
    pub id: String,
    pub deleted: bool,
}

fn view(row: &CerebralRow) -> Result<CerebralView, AppError> {
    let status = CerebralStatus::parse(&row.status).ok_or_else(|| {
        AppError::internal(format!("cerebral {} has a bad status {:?}", row.id, row.status))
    })?;
    let sops = serde_json::from_str(&row.sops)
        .map_err(|e| AppError::internal(format!("cerebral {} has bad SOPs: {e}", row.id)))?;
    Ok(CerebralView {
        id: row.id.clone(),
        name: row.name.clone(),
        system_prompt: row.system_prompt.clone(),
        provider: row.provider.clone(),
        model: row.model.clone(),
        status,
        sops,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

fn parse_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::BadRequest(format!("name is required (1–{MAX_NAME_CHARS} characters)")));
    }
    Ok(name.to_string())
}

fn parse_status(raw: &str) -> Result<CerebralStatus, AppError> {
    CerebralStatus::parse(raw.trim())
        .ok_or_else(|| AppError::BadRequest(format!("status {raw:?} must be one of draft, active, paused")))
}

/// An optional text override: blank means unset.
fn optional_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>, AppError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.trim().is_empty() {
        return Ok(None);
    }
    if raw.chars().count() > max {
        return Err(AppError::BadRequest(format!("{field} is longer than {max} characters")));
    }
    Ok(Some(raw))
}

/// Provider and model names carry no meaningful outer whitespace.
fn optional_name(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>, AppError> {
    optional_text(field, raw.map(|s| s.trim().to_string()), max)
}

fn sops_json(state: &AppState, raw: Option<&Value>) -> Result<String, AppError> {
    let sops = parse_sops(raw, &state.engine.guard).map_err(AppError::BadRequest)?;
    serde_json::to_string(&sops).map_err(AppError::internal)
}

/// The caller's tenant's Cerebral `id`, or 404 (unknown and another tenant's alike).
async fn owned(state: &AppState, tenant: &AgentTenant, id: String) -> Result<CerebralRow, AppError> {
    state
        .store
        .cerebral(id)
        .await?
        .filter(|c| c.tenant_id == tenant.tenant.id)
        .ok_or_else(|| AppError::NotFound("Cerebral not found".into()))
}

/// Create a Cerebral.
#[utoipa::path(
    post, path = "/v1/cerebrals", tag = "agent: cerebrals",
    security(("bearer" = [])),
    request_body = CreateCerebralRequest,
    responses(
        (status = 201, description = "`{success, data: CerebralView}`", body = crate::http::openapi::Envelope<CerebralView>),
        (status = 400, description = "Invalid field or SOP", body = crate::http::openapi::EnvelopeError),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
        (status = 403, description = "Needs Manager or above", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: Json<CreateCerebralRequest>,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    tenant.require_manager()?;
    let body = body.0;
    let now = now_ms();
    let row = CerebralRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.tenant.id.clone(),
        name: parse_name(&body.name)?,
        system_prompt: optional_text("system_prompt", body.system_prompt, MAX_SYSTEM_PROMPT_CHARS)?,
        provider: optional_name("provider", body.provider, MAX_PROVIDER_CHARS)?,
        model: optional_name("model", body.model, MAX_MODEL_CHARS)?,
        status: body
            .status
            .as_deref()
            .map(parse_status)
            .transpose()?
            .unwrap_or(CerebralStatus::Active)
            .as_str()
            .into(),
        sops: sops_json(&state, body.sops.as_ref())?,
        created_at: now,
        updated_at: now,
    };
    let answer = view(&row)?;
    state
        .store
        .submit(WriteRequest(vec![
            rows::insert_cerebral(row.clone()),
            accounts::audit(
                Some(&session.user.id),
                "cerebral.create",
                Some(&row.tenant_id),
                json!({ "cerebral_id": row.id, "name": row.name }),
            ),
        ]))
        .await?;
    Ok(envelope(StatusCode::CREATED, answer))
}

/// The tenant's Cerebrals, newest first.
#[utoipa::path(
    get, path = "/v1/cerebrals", tag = "agent: cerebrals",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{success, data: [CerebralView]}`", body = crate::http::openapi::Envelope<Vec<CerebralView>>),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    let rows = state.store.cerebrals_of(TenantId(tenant.tenant.id)).await?;
    let listed = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    Ok(envelope(StatusCode::OK, listed))
}

/// One Cerebral of the tenant.
#[utoipa::path(
    get, path = "/v1/cerebrals/{id}", tag = "agent: cerebrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Cerebral id (a UUID)")),
    responses(
        (status = 200, description = "`{success, data: CerebralView}`", body = crate::http::openapi::Envelope<CerebralView>),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    let row = owned(&state, &tenant, id.into_inner()).await?;
    Ok(envelope(StatusCode::OK, view(&row)?))
}

/// Change any of the create fields; `null` clears the optional ones.
#[utoipa::path(
    patch, path = "/v1/cerebrals/{id}", tag = "agent: cerebrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Cerebral id (a UUID)")),
    request_body = PatchCerebralRequest,
    responses(
        (status = 200, description = "`{success, data: CerebralView}`", body = crate::http::openapi::Envelope<CerebralView>),
        (status = 400, description = "Invalid field or SOP", body = crate::http::openapi::EnvelopeError),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
        (status = 403, description = "Needs Manager or above", body = crate::http::openapi::EnvelopeError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn patch(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<PatchCerebralRequest>,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    tenant.require_manager()?;
    let mut row = owned(&state, &tenant, id.into_inner()).await?;
    let body = body.0;
    let mut changed: Vec<&str> = Vec::new();
    if let Some(name) = body.name {
        let name = name.ok_or_else(|| AppError::BadRequest("name cannot be null".into()))?;
        row.name = parse_name(&name)?;
        changed.push("name");
    }
    if let Some(prompt) = body.system_prompt {
        row.system_prompt = optional_text("system_prompt", prompt, MAX_SYSTEM_PROMPT_CHARS)?;
        changed.push("system_prompt");
    }
    if let Some(provider) = body.provider {
        row.provider = optional_name("provider", provider, MAX_PROVIDER_CHARS)?;
        changed.push("provider");
    }
    if let Some(model) = body.model {
        row.model = optional_name("model", model, MAX_MODEL_CHARS)?;
        changed.push("model");
    }
    if let Some(status) = body.status {
        let status = status.ok_or_else(|| AppError::BadRequest("status cannot be null".into()))?;
        row.status = parse_status(&status)?.as_str().into();
        changed.push("status");
    }
    if let Some(sops) = body.sops {
        row.sops = sops_json(&state, sops.as_ref())?;
        changed.push("sops");
    }
    row.updated_at = now_ms().max(row.created_at);
    let answer = view(&row)?;
    state
        .store
        .submit(WriteRequest(vec![
            rows::update_cerebral(row.clone()),
            accounts::audit(
                Some(&session.user.id),
                "cerebral.update",
                Some(&row.tenant_id),
                json!({ "cerebral_id": row.id, "fields": changed }),
            ),
        ]))
        .await?;
    Ok(envelope(StatusCode::OK, answer))
}

/// Delete a Cerebral.
#[utoipa::path(
    delete, path = "/v1/cerebrals/{id}", tag = "agent: cerebrals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Cerebral id (a UUID)")),
    responses(
        (status = 200, description = "`{success, data: {id, deleted: true}}`", body = crate::http::openapi::Envelope<DeletedCerebral>),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
        (status = 403, description = "Needs Manager or above", body = crate::http::openapi::EnvelopeError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    tenant.require_manager()?;
    let row = owned(&state, &tenant, id.into_inner()).await?;
    state
        .store
        .submit(WriteRequest(vec![
            rows::delete_cerebral(row.id.clone()),
            accounts::audit(
                Some(&session.user.id),
                "cerebral.delete",
                Some(&row.tenant_id),
                json!({ "cerebral_id": row.id, "name": row.name }),
            ),
        ]))
        .await?;
    Ok(envelope(StatusCode::OK, DeletedCerebral { id: row.id, deleted: true }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/cerebrals").route(web::post().to(create)).route(web::get().to(list)))
        .service(
            web::resource("/cerebrals/{id}")
                .route(web::get().to(get))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        );
}
