//! The Agent API (`/v1/*`; envelope `{success, data}` / `{success, error}`):
//! one file per resource.

pub mod api_keys;
pub mod auth;
pub mod cerebrals;
pub mod customers;
pub mod message;
pub mod sops;
pub mod webhooks;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use actix_web::dev::Payload;
use actix_web::FromRequest;
use switchboard_actors::tenant::{Health, Limits};

use crate::agents::config::limits_of;
use crate::agents::AdmitError;
use crate::error::AppError;
use crate::http::auth::{AgentKey, Session};
use crate::identity::accounts;
use crate::identity::model::Plan;
use crate::identity::model::Role;
use crate::identity::rate_limit::retry_after_secs;
use crate::startup::AppState;
use crate::store::identity::{MembershipRow, TenantRow};

/// The success envelope: `{"success": true, "data": ...}`.
pub fn envelope<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "success": true, "data": data }))
}

/// The tenant a JWT acts for on `/v1`: the one `X-Tenant-Id` names (the user
/// must belong to it), else the login rule's tenant.
pub struct AgentTenant {
    pub tenant: TenantRow,
    pub membership: MembershipRow,
}

impl AgentTenant {
    pub async fn of(state: &AppState, session: &Session, req: &HttpRequest) -> Result<AgentTenant, AppError> {
        let memberships = state.store.tenants_of_user(&session.user.id).await?;
        let wanted = req.headers().get("x-tenant-id").and_then(|v| v.to_str().ok()).map(str::trim);
        let found = match wanted {
            Some(id) => memberships.iter().find(|(_, t)| t.id == id),
            None => {
                let home = accounts::home_tenant(&memberships).map(|t| t.id.clone());
                memberships.iter().find(|(_, t)| Some(&t.id) == home.as_ref())
            }
        };
        match found {
            Some((m, t)) => {
                // JWT calls are not counted, but report the tenant's health like every /v1 answer.
                if let Ok(plan) = Plan::parse(&t.plan) {
                    let _ = admit(state, req, &t.id, limits_of(plan), false).await;
                }
                Ok(AgentTenant { tenant: t.clone(), membership: m.clone() })
            }
            None if wanted.is_some() => {
                Err(AppError::Forbidden("you are not a member of that tenant".into()))
            }
            None => Err(AppError::Forbidden("you are not a member of any tenant".into())),
        }
    }

    /// Writes on `/v1` need Manager or above.
    pub fn require_manager(&self) -> Result<(), AppError> {
        match Role::parse(&self.membership.role) {
            Ok(r) if r >= Role::Manager => Ok(()),
            _ => Err(AppError::Forbidden("needs the Manager role or above in this tenant".into())),
        }
    }
}

/// Counts an API-key request against the tenant's windows (`count`), or only
/// reads the tenant's health; either way the answer will carry the headers.
pub async fn admit(
    state: &AppState,
    req: &HttpRequest,
    tenant_id: &str,
    limits: Limits,
    count: bool,
) -> Result<Health, AppError> {
    match state.agents.admit(tenant_id, limits, count).await {
        Ok(health) => {
            message::remember(req, health);
            Ok(health)
        }
        Err(AdmitError::Limited(refused)) => {
            message::remember(req, refused.health);
            Err(AppError::RateLimited {
                message: format!(
                    "Rate limit exceeded: {} requests per {} for this tenant's plan",
                    refused.limit, refused.window
                ),
                retry_after_secs: retry_after_secs(refused.retry_after),
            })
        }
        Err(AdmitError::Unavailable(e)) => Err(e),
    }
}

/// The tenant of a caller that may use either credential: an `sk_live_` key
/// when `X-API-Key` is sent (the request is counted against the tenant's
/// limits), else the JWT's tenant. Returns the tenant and whether it was a key.
pub async fn key_or_jwt(state: &AppState, req: &HttpRequest) -> Result<(TenantRow, bool), AppError> {
    if req.headers().contains_key("x-api-key") {
        let caller = AgentKey::from_request(req, &mut Payload::None).await?;
        let plan = Plan::parse(&caller.tenant.plan).map_err(AppError::internal)?;
        admit(state, req, &caller.tenant.id, limits_of(plan), true).await?;
        return Ok((caller.tenant, true));
    }
    if !req.headers().contains_key(actix_web::http::header::AUTHORIZATION) {
        return Err(AppError::Unauthorized(
            "send an X-API-Key (sk_live_...) or Authorization: Bearer <JWT> header".into(),
        ));
    }
    let session = Session::from_request(req, &mut Payload::None).await?;
    Ok((AgentTenant::of(state, &session, req).await?.tenant, false))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure)
        .configure(api_keys::configure)
        .configure(cerebrals::configure)
        .configure(message::configure)
        .configure(customers::configure)
        .configure(webhooks::configure);
}
