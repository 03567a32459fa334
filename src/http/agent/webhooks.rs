//! `/v1/webhooks`: subscribe a URL to the tenant's events (secret shown once),
//! list (secrets masked), delete. Deliveries go through the webhook engine.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_actors::model::TenantId;
use utoipa::ToSchema;

use super::api_keys::rfc3339;
use super::{envelope, AgentTenant};
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::startup::AppState;
use crate::store::webhooks::{self as rows, WebhookRow};
use crate::store::{now_ms, WriteRequest};
use crate::webhooks::registry::{Subscription, EVENTS};
use crate::webhooks::signing::{self, SigningKey};

/// Subscriptions a tenant may hold.
const MAX_PER_TENANT: usize = 50;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "url": "https://myapp.com/webhooks/cerebral",
    "events": ["conversation.completed", "escalation.created"]
}))]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: http(s), and not a private or internal address.
    #[schema(example = "https://myapp.com/webhooks/cerebral")]
    pub url: String,
    /// Any of `conversation.completed`, `escalation.created`, `escalation.resolved`, `escalation.expired`.
    #[schema(example = json!(["conversation.completed", "escalation.created"]))]
    pub events: Vec<String>,
    /// `whsec_` + base64 of 24–64 bytes; generated when omitted.
    pub secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "wh_0193a1c2d4e57f6ab8c9d0e1f2a3b4c6",
    "url": "https://myapp.com/webhooks/cerebral",
    "events": ["conversation.completed", "escalation.created"],
    "secret": "whsec_****Sw2k",
    "createdAt": "2026-02-25T21:44:11Z"
}))]
pub struct WebhookView {
    #[schema(example = "wh_0193a1c2d4e5f6a7b8c9d0e1f2a3b4c5")]
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// The full secret when created; masked (`whsec_****` + last four) when listed.
    pub secret: String,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "wh_0193a1c2d4e57f6ab8c9d0e1f2a3b4c6", "deleted": true}))]
pub struct DeletedWebhook {
    pub id: String,
    pub deleted: bool,
}

fn view(row: &WebhookRow, secret: String) -> WebhookView {
    WebhookView {
        id: row.id.clone(),
        url: row.url.clone(),
        events: serde_json::from_str(&row.events).unwrap_or_default(),
        secret,
        created_at: rfc3339(row.created_at),
    }
}

/// Subscribe a URL to events; the signing secret is returned exactly once.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "agent: webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "`{success, data: WebhookView}` with the full secret", body = crate::http::openapi::Envelope<WebhookView>,
            example = json!({
                "success": true,
                "data": {
                    "id": "wh_0193a1c2d4e57f6ab8c9d0e1f2a3b4c6",
                    "url": "https://myapp.com/webhooks/cerebral",
                    "events": ["conversation.completed", "escalation.created"],
                    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    "createdAt": "2026-02-25T21:44:11Z"
                }
            })),
        (status = 400, description = "Bad URL (or a refused address), events or secret", body = crate::http::openapi::EnvelopeError),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
        (status = 403, description = "Needs Manager or above", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: Json<CreateWebhookRequest>,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    tenant.require_manager()?;
    let body = body.0;
    let url = state
        .engine
        .guard
        .check_url(&body.url)
        .await
        .map_err(|e| AppError::BadRequest(e.to_string().replacen("callback_url", "url", 1)))?;
    let events = parse_events(&body.events)?;
    let secret = match body.secret {
        Some(s) => {
            SigningKey::parse(s.trim()).map_err(|e| AppError::BadRequest(e.to_string()))?;
            s.trim().to_string()
        }
        None => signing::generate_secret(),
    };
    let key = SigningKey::parse(&secret).map_err(AppError::BadRequest)?;
    let tenant_id = tenant.tenant.id.clone();
    if state.store.webhooks_of(TenantId(tenant_id.clone())).await?.len() >= MAX_PER_TENANT {
        return Err(AppError::BadRequest(format!("a tenant may hold at most {MAX_PER_TENANT} webhooks")));
    }
    let row = WebhookRow {
        id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: tenant_id.clone(),
        url: url.to_string(),
        events: json!(events).to_string(),
        secret_sealed: state.identity.secrets.seal(&secret),
        secret_hint: signing::hint_of(&secret),
        created_at: now_ms(),
    };
    state
        .store
        .submit(WriteRequest(vec![
            rows::insert_webhook(row.clone()),
            accounts::audit(
                Some(&session.user.id),
                "webhook.create",
                Some(&tenant_id),
                json!({ "webhook_id": row.id, "url": row.url, "events": events }),
            ),
        ]))
        .await?;
    state.webhooks.registry.add(Subscription {
        id: row.id.clone(),
        tenant: TenantId(tenant_id),
        url: row.url.clone(),
        events,
        key,
    });
    Ok(envelope(StatusCode::CREATED, view(&row, secret)))
}

fn parse_events(raw: &[String]) -> Result<Vec<String>, AppError> {
    if raw.is_empty() {
        return Err(AppError::BadRequest(format!("events must name at least one of: {}", EVENTS.join(", "))));
    }
    let mut events: Vec<String> = Vec::new();
    for e in raw {
        let e = e.trim();
        if !EVENTS.contains(&e) {
            return Err(AppError::BadRequest(format!(
                "events: {e:?} is not an event; choose from {}",
                EVENTS.join(", ")
            )));
        }
        if !events.iter().any(|x| x == e) {
            events.push(e.to_string());
        }
    }
    Ok(events)
}

/// The tenant's webhooks, oldest first, secrets masked.
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "agent: webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{success, data: [WebhookView]}` with masked secrets", body = crate::http::openapi::Envelope<Vec<WebhookView>>),
        (status = 401, description = "JWT required", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let tenant = AgentTenant::of(&state, &session, &req).await?;
    let rows = state.store.webhooks_of(TenantId(tenant.tenant.id)).await?;
    let listed: Vec<WebhookView> = rows.iter().map(|r| view(r, signing::mask(&r.secret_hint))).collect();
    Ok(envelope(StatusCode::OK, listed))
}

/// Delete a webhook: no further deliveries are made to it, pending ones end `failed`.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "agent: webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id (`wh_...`)")),
    responses(
        (status = 200, description = "`{success, data: {id, deleted: true}}`", body = crate::http::openapi::Envelope<DeletedWebhook>),
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
    let id = id.into_inner();
    let found = state.store.webhook(id.clone()).await?.filter(|w| w.tenant_id == tenant.tenant.id);
    let Some(row) = found else {
        return Err(AppError::NotFound("webhook not found".into()));
    };
    state
        .store
        .submit(WriteRequest(vec![
            rows::delete_webhook(row.id.clone()),
            accounts::audit(
                Some(&session.user.id),
                "webhook.delete",
                Some(&tenant.tenant.id),
                json!({ "webhook_id": row.id, "url": row.url }),
            ),
        ]))
        .await?;
    state.webhooks.registry.remove(&row.id);
    Ok(envelope(StatusCode::OK, DeletedWebhook { id: row.id, deleted: true }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/webhooks").route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource("/webhooks/{id}").route(web::delete().to(delete)));
}
