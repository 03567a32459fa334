//! The Agent API (`/v1/*`; envelope `{success, data}` / `{success, error}`):
//! one file per resource.

pub mod api_keys;
pub mod auth;
pub mod cerebrals;
pub mod sops;
pub mod webhooks;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::error::AppError;
use crate::http::auth::Session;
use crate::identity::accounts;
use crate::identity::model::Role;
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
            Some((m, t)) => Ok(AgentTenant { tenant: t.clone(), membership: m.clone() }),
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure)
        .configure(api_keys::configure)
        .configure(cerebrals::configure)
        .configure(webhooks::configure);
}
