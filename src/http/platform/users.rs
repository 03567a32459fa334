//! `/api/users`: user administration, super-admin only.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::Email;
use crate::startup::AppState;
use crate::store::identity::{self as rows, UserRow};
use crate::store::{StoreError, WriteRequest};

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "usr_0193a6e24b7c7e109d2f5a8b3c4d1e21", "email": "ops@example.com", "is_super_admin": true}))]
pub struct User {
    pub id: String,
    pub email: String,
    pub is_super_admin: bool,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        User { id: u.id, email: u.email, is_super_admin: u.is_super_admin }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "newuser@example.com", "is_super_admin": false}))]
pub struct CreateUser {
    pub email: String,
    #[serde(default)]
    pub is_super_admin: bool,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "updated@example.com", "is_super_admin": true}))]
pub struct UpdateUser {
    pub email: Option<String>,
    pub is_super_admin: Option<bool>,
}

fn email_taken(e: StoreError) -> AppError {
    match e {
        StoreError::Duplicate(_) => AppError::Conflict("a user with this email exists".into()),
        other => other.into(),
    }
}

/// Every user.
#[utoipa::path(get, path = "/api/users", tag = "platform: users", security(("bearer" = [])),
    responses((status = 200, body = [User]), (status = 403, description = "Not a super-admin", body = crate::http::openapi::PlainError)))]
pub async fn list(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let users: Vec<User> = state.store.users_all().await?.into_iter().map(User::from).collect();
    Ok(HttpResponse::Ok().json(users))
}

/// Create a user (they sign in by one-time code).
#[utoipa::path(post, path = "/api/users", tag = "platform: users", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = User), (status = 400, body = crate::http::openapi::PlainError),
        (status = 403, body = crate::http::openapi::PlainError), (status = 409, description = "Email taken", body = crate::http::openapi::PlainError)))]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    body: Json<CreateUser>,
) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let email = Email::parse(&body.0.email).map_err(AppError::BadRequest)?;
    if state.store.user_by_email(email.as_str()).await?.is_some() {
        return Err(AppError::Conflict("a user with this email exists".into()));
    }
    let mut user = accounts::user_row(&email, None);
    user.is_super_admin = body.0.is_super_admin;
    let view = User { id: user.id.clone(), email: user.email.clone(), is_super_admin: user.is_super_admin };
    state
        .store
        .submit(WriteRequest(vec![
            accounts::audit(
                Some(&session.user.id),
                "user.create",
                None,
                json!({ "user_id": user.id, "email": user.email }),
            ),
            rows::insert_user(user),
        ]))
        .await
        .map_err(email_taken)?;
    Ok(HttpResponse::Created().json(view))
}

/// Change a user's email or super-admin flag.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "platform: users", security(("bearer" = [])), request_body = UpdateUser,
    params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError), (status = 409, body = crate::http::openapi::PlainError)))]
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    body: Json<UpdateUser>,
) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let user = state.store.user(&id).await?.ok_or_else(|| AppError::NotFound("user not found".into()))?;
    let email = body.0.email.as_deref().map(Email::parse).transpose().map_err(AppError::BadRequest)?;
    if let Some(e) = &email {
        if state.store.user_by_email(e.as_str()).await?.is_some_and(|other| other.id != user.id) {
            return Err(AppError::Conflict("a user with this email exists".into()));
        }
    }
    state
        .store
        .submit(WriteRequest(vec![
            rows::update_user(user.id.clone(), email.as_ref().map(|e| e.as_str().to_string()), body.0.is_super_admin),
            accounts::audit(
                Some(&session.user.id),
                "user.update",
                None,
                json!({ "user_id": user.id, "email": email.as_ref().map(|e| e.as_str()), "is_super_admin": body.0.is_super_admin }),
            ),
        ]))
        .await
        .map_err(email_taken)?;
    let updated =
        state.store.user(&user.id).await?.ok_or_else(|| AppError::NotFound("user not found".into()))?;
    Ok(HttpResponse::Ok().json(User::from(updated)))
}

/// Delete a user and their memberships (not the last Owner of a tenant).
#[utoipa::path(delete, path = "/api/users/{id}", tag = "platform: users", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "`{}`", body = crate::http::openapi::Empty), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError), (status = 409, description = "Last Owner of a tenant", body = crate::http::openapi::PlainError)))]
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let user = state.store.user(&id).await?.ok_or_else(|| AppError::NotFound("user not found".into()))?;
    state
        .store
        .submit(WriteRequest(vec![
            rows::delete_user(user.id.clone()),
            accounts::audit(
                Some(&session.user.id),
                "user.delete",
                None,
                json!({ "user_id": user.id, "email": user.email }),
            ),
        ]))
        .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users").route(web::get().to(list)).route(web::post().to(create)))
        .service(web::resource("/users/{id}").route(web::patch().to(update)).route(web::delete().to(delete)));
}
