//! `/v1/api-keys`: create (shown once), list (masked), revoke.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{envelope, AgentTenant};
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::Json;
use crate::identity::accounts::{self, AgentKeyOptions};
use crate::identity::api_keys::KeyKind;
use crate::identity::model::IdentityMode;
use crate::startup::AppState;
use crate::store::identity as rows;
use crate::store::WriteRequest;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Production Shopify Widget",
    "cerebral_id": "0193a1c2-d4e5-7f6a-b8c9-d0e1f2a3b4c5",
    "identity_mode": "identified",
    "allowed_origins": ["https://myapp.com"]
}))]
pub struct CreateKeyRequest {
    /// Human-readable key name.
    pub name: String,
    /// Lock the key to one Cerebral of the tenant (else 400).
    pub cerebral_id: Option<String>,
    /// `anonymous`, `identified` (default) or `required`.
    pub identity_mode: Option<String>,
    /// Origins allowed to call with this key; empty or absent = server-to-server only.
    pub allowed_origins: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "key_0193a6e57d1f7a2b8c3d4e5f6a7b8c9d",
    "key": "sk_live_4qArx8L2vN7pQ1sT5wY9zB3dF6hJ0kM2nR8uX4cE",
    "name": "Production Shopify Widget",
    "status": "active",
    "createdAt": "2026-02-25T21:44:11Z"
}))]
pub struct CreatedKey {
    pub id: String,
    /// The full key, shown exactly once.
    pub key: String,
    pub name: String,
    pub status: String,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "key_0193a6e57d1f7a2b8c3d4e5f6a7b8c9d",
    "key": "sk_4qArx8L2••••••••••••",
    "name": "Production Shopify Widget",
    "status": "active",
    "cerebralId": "0193a1c2-d4e5-7f6a-b8c9-d0e1f2a3b4c5",
    "identityMode": "identified",
    "allowedOrigins": ["https://myapp.com"],
    "createdAt": "2026-02-25T21:44:11Z",
    "lastUsedAt": "2026-02-26T18:00:00Z"
}))]
pub struct ListedKey {
    pub id: String,
    /// A masked preview.
    #[schema(example = "sk_4qArx8L2••••••••••••")]
    pub key: String,
    pub name: Option<String>,
    pub status: String,
    pub cerebral_id: Option<String>,
    pub identity_mode: String,
    pub allowed_origins: Vec<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An origin is `scheme://host[:port]`, nothing after.
fn parse_origin(raw: &str) -> Result<String, AppError> {
    let o = raw.trim().trim_end_matches('/');
    let ok = (o.starts_with("https://") || o.starts_with("http://"))
        && o.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    if ok {
        Ok(o.to_string())
    } else {
        Err(AppError::BadRequest(format!("allowed_origins: {raw:?} is not an origin like https://myapp.com")))
    }
}

/// Create an API key; the full key is returned exactly once.
#[utoipa::path(
    post, path = "/v1/api-keys", tag = "agent: api keys",
    security(("bearer" = [])),
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "`{success, data: CreatedKey}`", body = crate::http::openapi::Envelope<CreatedKey>),
        (status = 400, description = "Invalid field", body = crate::http::openapi::EnvelopeError),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
        (status = 403, description = "Needs Manager or above", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: Json<CreateKeyRequest>,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    tenant.require_manager()?;
    let body = body.0;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::BadRequest("name is required (at most 200 characters)".into()));
    }
    let identity_mode = match body.identity_mode.as_deref() {
        None => IdentityMode::Identified,
        Some(m) => IdentityMode::parse(m).map_err(AppError::BadRequest)?,
    };
    let allowed_origins = body
        .allowed_origins
        .unwrap_or_default()
        .iter()
        .map(|o| parse_origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    let cerebral_id = body.cerebral_id.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    // A key locked to a Cerebral that is not this tenant's could never be used.
    if let Some(id) = &cerebral_id {
        let owned = state.store.cerebral(id.clone()).await?.is_some_and(|c| c.tenant_id == tenant.tenant.id);
        if !owned {
            return Err(AppError::BadRequest(format!("cerebral_id: no Cerebral {id:?} in this tenant")));
        }
    }
    let options = AgentKeyOptions { name: name.clone(), cerebral_id, identity_mode, allowed_origins };
    let (row, key) =
        accounts::api_key_row(KeyKind::Agent, &tenant.tenant.id, Some(&session.user.id), Some(&options));
    let (id, created_at) = (row.id.clone(), row.created_at);
    state
        .store
        .submit(WriteRequest(vec![
            rows::insert_api_key(row),
            accounts::audit(
                Some(&session.user.id),
                "api_key.create",
                Some(&tenant.tenant.id),
                json!({ "key_id": id, "kind": "agent" }),
            ),
        ]))
        .await?;
    Ok(envelope(
        StatusCode::CREATED,
        CreatedKey { id, key, name, status: "active".into(), created_at: rfc3339(created_at) },
    ))
}

/// The tenant's API keys, masked, newest first.
#[utoipa::path(
    get, path = "/v1/api-keys", tag = "agent: api keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{success, data: [ListedKey]}`", body = crate::http::openapi::Envelope<Vec<ListedKey>>),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    let keys = state.store.api_keys_of_tenant(&tenant.tenant.id, "agent").await?;
    let listed: Vec<ListedKey> = keys
        .into_iter()
        .map(|k| ListedKey {
            id: k.id,
            key: k.preview,
            name: k.name,
            status: k.status,
            cerebral_id: k.cerebral_id,
            identity_mode: k.identity_mode,
            allowed_origins: serde_json::from_str(&k.allowed_origins).unwrap_or_default(),
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
        })
        .collect();
    Ok(envelope(StatusCode::OK, listed))
}

/// Permanently revoke a key: requests using it fail from the next one on.
#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", tag = "agent: api keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Key id (`key_...`)")),
    responses(
        (status = 200, description = "`{success, data: {deleted: true}}`", body = crate::http::openapi::Envelope<crate::http::openapi::Deleted>),
        (status = 403, description = "Needs Manager or above", body = crate::http::openapi::EnvelopeError),
        (status = 404, description = "Key not found or belongs to another tenant", body = crate::http::openapi::EnvelopeError,
            example = json!({"success": false, "error": {"code": "NOT_FOUND", "message": "Key not found", "requestId": "req_0193a6f17c1e7d2a9a513b3f2f0c8e11"}})),
    )
)]
pub async fn revoke(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    tenant.require_manager()?;
    let key = state
        .store
        .api_key(&id)
        .await?
        .filter(|k| k.tenant_id == tenant.tenant.id && k.kind == "agent")
        .ok_or_else(|| AppError::NotFound("Key not found".into()))?;
    if key.status != "revoked" {
        state
            .store
            .submit(WriteRequest(vec![
                rows::revoke_api_key(key.id.clone()),
                accounts::audit(
                    Some(&session.user.id),
                    "api_key.revoke",
                    Some(&key.tenant_id),
                    json!({ "key_id": key.id }),
                ),
            ]))
            .await?;
    }
    Ok(envelope(StatusCode::OK, json!({ "deleted": true })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api-keys").route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource("/api-keys/{id}").route(web::delete().to(revoke)));
}
