//! `GET /webhooks/deliveries/{escalation_id}`: where each webhook delivery
//! about one of the tenant's escalations stands.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use switchboard_actors::engine::Caller;
use switchboard_actors::model::TenantId;
use switchboard_actors::records::DeliveryRecord;
use utoipa::ToSchema;

use super::escalations::{load, parse_id};
use crate::error::AppError;
use crate::http::agent::api_keys::rfc3339;
use crate::http::auth::EscalationKey;
use crate::startup::AppState;

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` header of every attempt (`msg_...`).
    pub id: String,
    #[schema(example = "escalation.resolved")]
    pub event: String,
    pub url: String,
    /// `pending`, `retrying`, `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub status: String,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

impl From<&DeliveryRecord> for DeliveryView {
    fn from(d: &DeliveryRecord) -> Self {
        DeliveryView {
            id: d.id.clone(),
            event: d.event.clone(),
            url: d.url.clone(),
            status: d.status.as_str().into(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at_ms.map(rfc3339),
            delivered_at: d.delivered_at_ms.map(rfc3339),
            created_at: rfc3339(d.created_at_ms),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "escalation_id": "0193a6f0-7c1e-7d2a-9a51-3b3f2f0c8e11",
    "deliveries": [{
        "id": "msg_0193a6f52d1e7c3b9a8f7e6d5c4b3a29",
        "event": "escalation.resolved",
        "url": "https://agent.example.com/hooks/cero",
        "status": "delivered",
        "attempts": 1,
        "last_status_code": 200,
        "last_error": null,
        "next_attempt_at": null,
        "delivered_at": "2026-04-13T14:01:01Z",
        "created_at": "2026-04-13T14:01:00Z"
    }]
}))]
pub struct Deliveries {
    pub escalation_id: String,
    /// Oldest first.
    pub deliveries: Vec<DeliveryView>,
}

/// Webhook deliveries of one escalation: its `callback_url` and the tenant's `/v1/webhooks`.
#[utoipa::path(
    get,
    path = "/webhooks/deliveries/{escalation_id}",
    tag = "escalation: webhooks",
    security(("api_key" = [])),
    params(("escalation_id" = String, Path)),
    responses(
        (status = 200, description = "Every delivery about the escalation, oldest first", body = Deliveries),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::DetailError),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: EscalationKey,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&path)?;
    let tenant = TenantId(caller.tenant.id);
    // Proves the case is the caller's: another tenant's is "not found".
    load(&state, id, &Caller::Tenant(tenant.clone())).await?;
    let deliveries = state.store.deliveries_of_escalation(tenant, id).await?;
    Ok(HttpResponse::Ok().json(Deliveries {
        escalation_id: id.to_string(),
        deliveries: deliveries.iter().map(DeliveryView::from).collect(),
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/webhooks/deliveries/{escalation_id}").route(web::get().to(list)));
}
