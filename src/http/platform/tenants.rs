//! `/api/tenants`: list, create, read, rename or re-plan, delete. Container
//! lifecycle (deploy, stop, logs, ...) lives with the tenant runtimes.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::config;
use crate::agents::config::TenantConfig;
use crate::error::AppError;
use crate::http::agent::api_keys::rfc3339;
use crate::http::auth::{platform_tenant_access, Session};
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::{Plan, Role, TenantId, TenantStatus};
use crate::startup::AppState;
use crate::store::identity::{self as rows, TenantRow};
use crate::store::WriteRequest;

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "name": "Acme Corp",
    "plan": "starter",
    "status": "running",
    "port": null,
    "created_at": "2026-02-01T00:00:00Z",
    "role": "Owner"
}))]
pub struct Tenant {
    pub id: String,
    pub name: String,
    #[schema(example = "starter")]
    pub plan: String,
    /// `draft | deploying | running | stopped | error`
    pub status: String,
    /// The runtime's port; null on the embedded runtime.
    pub port: Option<u16>,
    pub created_at: String,
    /// The caller's role here; null for a super-admin who is not a member.
    pub role: Option<String>,
}

/// The tenant with its container's live state where its actor runs, else the stored one.
fn view(state: &AppState, t: TenantRow, role: Option<String>) -> Tenant {
    let live = state.agents.container(&t.id);
    Tenant {
        status: live.as_ref().map(|c| c.status.as_str().to_string()).unwrap_or(t.status),
        port: live.and_then(|c| c.port),
        id: t.id,
        name: t.name,
        plan: t.plan,
        created_at: rfc3339(t.created_at),
        role,
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Acme Corp",
    "plan": "starter",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "temperature": 0.7,
    "system_prompt": "You are a helpful assistant.",
    "base_url": "https://api.openai.com/v1",
    "api_key": "sk-..."
}))]
pub struct CreateTenant {
    pub name: String,
    /// `free` (default), `starter`; `pro` and `enterprise` need a super-admin.
    pub plan: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub system_prompt: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub tool_settings: Option<Map<String, Value>>,
    pub base_url: Option<String>,
    /// Write-only: stored encrypted, never returned.
    pub api_key: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "Acme Corporation", "plan": "pro"}))]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub plan: Option<String>,
}

fn tenant_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::BadRequest("name is required (at most 200 characters)".into()));
    }
    Ok(name.to_string())
}

fn plan_for(session: &Session, raw: &str) -> Result<Plan, AppError> {
    let plan = Plan::parse(raw).map_err(AppError::BadRequest)?;
    if plan.needs_super_admin() && !session.is_super_admin() {
        return Err(AppError::Forbidden(format!(
            "only a super-admin may put a tenant on the {} plan",
            plan.as_str()
        )));
    }
    Ok(plan)
}

/// The container config given at creation, as stored: every field checked
/// like `PATCH /api/tenants/{id}/config` checks it.
fn initial_config(state: &AppState, body: &CreateTenant) -> Result<String, AppError> {
    let config = config::check_config(
        &state.engine.guard,
        TenantConfig {
            provider: body.provider.clone(),
            model: body.model.clone(),
            temperature: body.temperature,
            system_prompt: body.system_prompt.clone(),
            tool_settings: body.tool_settings.clone(),
            base_url: body.base_url.clone(),
        },
    )?;
    serde_json::to_string(&config).map_err(AppError::internal)
}

/// Tenants: all for a super-admin, else the caller's.
#[utoipa::path(get, path = "/api/tenants", tag = "platform: tenants", security(("bearer" = [])),
    responses((status = 200, body = [Tenant]), (status = 401, body = crate::http::openapi::PlainError)))]
pub async fn list(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(visible(&state, &session).await?))
}

/// The tenants `session` may see (all for a super-admin), with their live container state.
pub async fn visible(state: &AppState, session: &Session) -> Result<Vec<Tenant>, AppError> {
    let mine = state.store.tenants_of_user(&session.user.id).await?;
    Ok(if session.is_super_admin() {
        let roles: std::collections::HashMap<String, String> =
            mine.into_iter().map(|(m, t)| (t.id, m.role)).collect();
        state
            .store
            .tenants_all()
            .await?
            .into_iter()
            .map(|t| {
                let role = roles.get(&t.id).cloned();
                view(state, t, role)
            })
            .collect()
    } else {
        mine.into_iter().map(|(m, t)| view(state, t, Some(m.role))).collect()
    })
}

/// Create a tenant in `draft`; the caller becomes its Owner.
#[utoipa::path(post, path = "/api/tenants", tag = "platform: tenants", security(("bearer" = [])), request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 400, body = crate::http::openapi::PlainError),
        (status = 403, description = "pro/enterprise without super-admin", body = crate::http::openapi::PlainError)))]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    body: Json<CreateTenant>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let name = tenant_name(&body.name)?;
    let plan = plan_for(&session, body.plan.as_deref().unwrap_or("free"))?;
    let config = initial_config(&state, &body)?;
    let api_key = body.api_key.as_deref().map(config::check_api_key).transpose()?.flatten();
    let mut tenant = accounts::tenant_row(TenantId::new(), &name, plan, TenantStatus::Draft);
    tenant.config = config;
    tenant.provider_api_key_sealed = api_key.map(|k| state.identity.secrets.seal(&k));
    let membership = accounts::membership_row(&tenant.id, &session.user.id, Role::Owner);
    let audit = accounts::audit(
        Some(&session.user.id),
        "tenant.create",
        Some(&tenant.id),
        json!({ "name": name, "plan": plan.as_str() }),
    );
    let created = view(&state, tenant.clone(), Some(Role::Owner.as_str().into()));
    state
        .store
        .submit(WriteRequest(vec![rows::insert_tenant(tenant), rows::insert_membership(membership), audit]))
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// One tenant.
#[utoipa::path(get, path = "/api/tenants/{id}", tag = "platform: tenants", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Tenant), (status = 403, description = "Not a member", body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn get(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &id).await?;
    let role = access.role().map(|r| r.as_str().to_string());
    Ok(HttpResponse::Ok().json(view(&state, access.tenant, role)))
}

/// Rename (Owner) or change the plan (super-admin).
#[utoipa::path(patch, path = "/api/tenants/{id}", tag = "platform: tenants", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = UpdateTenant,
    responses((status = 200, body = Tenant), (status = 400, body = crate::http::openapi::PlainError),
        (status = 403, body = crate::http::openapi::PlainError), (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    body: Json<UpdateTenant>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &id).await?;
    let name = body.0.name.as_deref().map(tenant_name).transpose()?;
    if name.is_some() {
        access.require(Role::Owner)?;
    }
    let plan = match body.0.plan.as_deref() {
        Some(raw) => {
            let plan = Plan::parse(raw).map_err(AppError::BadRequest)?;
            session
                .require_super_admin()
                .map_err(|_| AppError::Forbidden("only a super-admin may change the plan".into()))?;
            Some(plan)
        }
        None => None,
    };
    state
        .store
        .submit(WriteRequest(vec![
            rows::update_tenant(access.tenant.id.clone(), name.clone(), plan.map(|p| p.as_str().to_string())),
            accounts::audit(
                Some(&session.user.id),
                "tenant.update",
                Some(&access.tenant.id),
                json!({ "name": name, "plan": plan.map(|p| p.as_str()) }),
            ),
        ]))
        .await?;
    let tenant = state.store.existing_tenant(&access.tenant.id).await?;
    Ok(HttpResponse::Ok().json(view(&state, tenant, access.role().map(|r| r.as_str().to_string()))))
}

/// Delete the tenant and its records.
#[utoipa::path(delete, path = "/api/tenants/{id}", tag = "platform: tenants", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "`{}`", body = crate::http::openapi::Empty), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError), (status = 409, description = "The operator tenant", body = crate::http::openapi::PlainError)))]
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &id).await?;
    access.require(Role::Owner)?;
    if access.tenant.is_operator {
        return Err(AppError::Conflict("the operator tenant cannot be deleted".into()));
    }
    // Stops and removes the container, then deletes the tenant record.
    state.agents.remove(&access.tenant.id).await;
    state
        .store
        .submit(WriteRequest(vec![
            rows::delete_tenant(access.tenant.id.clone()),
            accounts::audit(
                Some(&session.user.id),
                "tenant.delete",
                Some(&access.tenant.id),
                json!({ "name": access.tenant.name }),
            ),
        ]))
        .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tenants").route(web::get().to(list)).route(web::post().to(create))).service(
        web::resource("/tenants/{id}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}
