//! `/api/tenants/{tid}/members`: who belongs to a tenant, with which role.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::http::auth::{platform_tenant_access, Session};
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::{Email, Role};
use crate::startup::AppState;
use crate::store::identity::{self as rows, MembershipRow};
use crate::store::{StoreError, WriteRequest};

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "mem_0193a6e24b7c7e109d2f5a8b3c4d1e22",
    "user_id": "usr_0193a6e31c5d7f208e3a6b9c4d5e2f32",
    "email": "colleague@example.com",
    "role": "Manager"
}))]
pub struct Member {
    pub id: String,
    pub user_id: String,
    pub email: String,
    /// `Viewer | Contributor | Manager | Owner`
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "colleague@example.com", "role": "Manager"}))]
pub struct AddMember {
    pub email: String,
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"role": "Viewer"}))]
pub struct UpdateMember {
    pub role: String,
}

fn role(raw: &str) -> Result<Role, AppError> {
    Role::parse(raw).map_err(AppError::BadRequest)
}

async fn member_of(state: &AppState, tenant_id: &str, mid: &str) -> Result<MembershipRow, AppError> {
    state
        .store
        .membership_by_id(mid)
        .await?
        .filter(|m| m.tenant_id == tenant_id)
        .ok_or_else(|| AppError::NotFound("member not found".into()))
}

async fn member_view(state: &AppState, m: MembershipRow) -> Result<Member, AppError> {
    let email = state.store.user(&m.user_id).await?.map(|u| u.email).unwrap_or_default();
    Ok(Member { id: m.id, user_id: m.user_id, email, role: m.role })
}

/// The tenant's members.
#[utoipa::path(get, path = "/api/tenants/{tid}/members", tag = "platform: members", security(("bearer" = [])),
    params(("tid" = String, Path)),
    responses((status = 200, body = [Member]), (status = 403, body = crate::http::openapi::PlainError), (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    tid: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    platform_tenant_access(&state, &session, &tid).await?;
    let members: Vec<Member> = state
        .store
        .members_of_tenant(&tid)
        .await?
        .into_iter()
        .map(|(m, u)| Member { id: m.id, user_id: m.user_id, email: u.email, role: m.role })
        .collect();
    Ok(HttpResponse::Ok().json(members))
}

/// Add a member, creating the user if the email is new.
#[utoipa::path(post, path = "/api/tenants/{tid}/members", tag = "platform: members", security(("bearer" = [])),
    params(("tid" = String, Path)), request_body = AddMember,
    responses((status = 201, body = Member), (status = 400, body = crate::http::openapi::PlainError),
        (status = 403, body = crate::http::openapi::PlainError), (status = 404, body = crate::http::openapi::PlainError),
        (status = 409, description = "Already a member", body = crate::http::openapi::PlainError)))]
pub async fn add(
    state: web::Data<AppState>,
    session: Session,
    tid: web::Path<String>,
    body: Json<AddMember>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &tid).await?;
    access.require(Role::Owner)?;
    let email = Email::parse(&body.0.email).map_err(AppError::BadRequest)?;
    let role = role(&body.0.role)?;
    let mut writes = Vec::new();
    let user_id = match state.store.user_by_email(email.as_str()).await? {
        Some(u) => u.id,
        None => {
            let user = accounts::user_row(&email, None);
            let id = user.id.clone();
            writes.push(rows::insert_user(user));
            id
        }
    };
    if state.store.membership(&tid, &user_id).await?.is_some() {
        return Err(AppError::Conflict("this user is already a member".into()));
    }
    let membership = accounts::membership_row(&tid, &user_id, role);
    let view = Member {
        id: membership.id.clone(),
        user_id: user_id.clone(),
        email: email.to_string(),
        role: role.as_str().into(),
    };
    writes.push(rows::insert_membership(membership));
    writes.push(accounts::audit(
        Some(&session.user.id),
        "member.add",
        Some(&tid),
        json!({ "user_id": user_id, "email": email.as_str(), "role": role.as_str() }),
    ));
    state.store.submit(WriteRequest(writes)).await.map_err(|e| match e {
        StoreError::Duplicate(_) => AppError::Conflict("this user is already a member".into()),
        other => other.into(),
    })?;
    Ok(HttpResponse::Created().json(view))
}

/// Change a member's role; the last Owner cannot be demoted (409).
#[utoipa::path(patch, path = "/api/tenants/{tid}/members/{mid}", tag = "platform: members", security(("bearer" = [])),
    params(("tid" = String, Path), ("mid" = String, Path)), request_body = UpdateMember,
    responses((status = 200, body = Member), (status = 400, body = crate::http::openapi::PlainError),
        (status = 403, body = crate::http::openapi::PlainError), (status = 404, body = crate::http::openapi::PlainError),
        (status = 409, description = "Last Owner", body = crate::http::openapi::PlainError)))]
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
    body: Json<UpdateMember>,
) -> Result<HttpResponse, AppError> {
    let (tid, mid) = path.into_inner();
    let access = platform_tenant_access(&state, &session, &tid).await?;
    access.require(Role::Owner)?;
    let role = role(&body.0.role)?;
    let member = member_of(&state, &tid, &mid).await?;
    state
        .store
        .submit(WriteRequest(vec![
            rows::set_member_role(tid.clone(), mid.clone(), role),
            accounts::audit(
                Some(&session.user.id),
                "member.update",
                Some(&tid),
                json!({ "membership_id": mid, "user_id": member.user_id, "from": member.role, "to": role.as_str() }),
            ),
        ]))
        .await?;
    let updated = member_of(&state, &tid, &mid).await?;
    Ok(HttpResponse::Ok().json(member_view(&state, updated).await?))
}

/// Remove a member; the last Owner cannot be removed (409).
#[utoipa::path(delete, path = "/api/tenants/{tid}/members/{mid}", tag = "platform: members", security(("bearer" = [])),
    params(("tid" = String, Path), ("mid" = String, Path)),
    responses((status = 200, description = "`{}`", body = crate::http::openapi::Empty), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError), (status = 409, description = "Last Owner", body = crate::http::openapi::PlainError)))]
pub async fn remove(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (tid, mid) = path.into_inner();
    let access = platform_tenant_access(&state, &session, &tid).await?;
    access.require(Role::Owner)?;
    let member = member_of(&state, &tid, &mid).await?;
    state
        .store
        .submit(WriteRequest(vec![
            rows::remove_member(tid.clone(), mid.clone()),
            accounts::audit(
                Some(&session.user.id),
                "member.remove",
                Some(&tid),
                json!({ "membership_id": mid, "user_id": member.user_id }),
            ),
        ]))
        .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tenants/{tid}/members").route(web::get().to(list)).route(web::post().to(add)),
    )
    .service(
        web::resource("/tenants/{tid}/members/{mid}")
            .route(web::patch().to(update))
            .route(web::delete().to(remove)),
    );
}
