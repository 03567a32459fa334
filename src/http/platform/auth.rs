//! `/api/auth/*`: one-time-code sign-in, the current user, logout.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::http::auth::{client_address, Session};
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::Email;
use crate::startup::AppState;
use crate::store::identity as rows;
use crate::store::identity::UserRow;
use crate::store::{Store, WriteRequest};

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "user@example.com"}))]
pub struct OtpRequest {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "user@example.com", "code": "123456"}))]
pub struct OtpVerify {
    pub email: String,
    #[schema(example = "123456")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantRole {
    pub tenant_id: String,
    pub role: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "usr_0193a6e24b7c7e109d2f5a8b3c4d1e21",
    "email": "user@example.com",
    "is_super_admin": false,
    "tenant_roles": [{"tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20", "role": "Owner"}]
}))]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub is_super_admin: bool,
    pub tenant_roles: Vec<TenantRole>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfMDE5M2E2ZTIifQ.c2lnbmF0dXJl",
    "user": {
        "id": "usr_0193a6e24b7c7e109d2f5a8b3c4d1e21",
        "email": "user@example.com",
        "is_super_admin": false,
        "tenant_roles": [{"tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20", "role": "Owner"}]
    }
}))]
pub struct SignedIn {
    pub token: String,
    pub user: UserView,
}

pub async fn user_view(store: &Store, user: UserRow) -> Result<UserView, AppError> {
    let roles = store
        .tenants_of_user(&user.id)
        .await?
        .into_iter()
        .map(|(m, t)| TenantRole { tenant_id: t.id, role: m.role })
        .collect();
    Ok(UserView { id: user.id, email: user.email, is_super_admin: user.is_super_admin, tenant_roles: roles })
}

/// Mail a one-time code (10 minutes, single use). Unknown emails get `{}` and no mail.
#[utoipa::path(
    post, path = "/api/auth/otp/request", tag = "platform: auth",
    request_body = OtpRequest,
    responses(
        (status = 200, description = "`{}`", body = crate::http::openapi::Empty),
        (status = 400, description = "Bad email", body = crate::http::openapi::PlainError),
        (status = 429, description = "Rate limited; see Retry-After", body = crate::http::openapi::PlainError),
    )
)]
pub async fn request_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<OtpRequest>,
) -> Result<HttpResponse, AppError> {
    let email = Email::parse(&body.0.email).map_err(AppError::BadRequest)?;
    accounts::check_signin_rate(&state.identity, &email, &client_address(&req))?;
    accounts::request_code(&state.store, &state.identity, &email).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

/// Exchange the code for a JWT. Five wrong codes burn it.
#[utoipa::path(
    post, path = "/api/auth/otp/verify", tag = "platform: auth",
    request_body = OtpVerify,
    responses(
        (status = 200, description = "Signed in", body = SignedIn),
        (status = 401, description = "Invalid, expired, used or burned code", body = crate::http::openapi::PlainError),
        (status = 429, description = "Rate limited", body = crate::http::openapi::PlainError),
    )
)]
pub async fn verify_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<OtpVerify>,
) -> Result<HttpResponse, AppError> {
    let email = Email::parse(&body.0.email).map_err(AppError::BadRequest)?;
    accounts::check_signin_rate(&state.identity, &email, &client_address(&req))?;
    let (token, user) = accounts::verify_code(&state.store, &state.identity, &email, &body.0.code).await?;
    let user = user_view(&state.store, user).await?;
    Ok(HttpResponse::Ok().json(SignedIn { token: token.token, user }))
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/api/auth/me", tag = "platform: auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 401, description = "Missing or invalid token", body = crate::http::openapi::PlainError),
    )
)]
pub async fn me(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(user_view(&state.store, session.user).await?))
}

/// Revoke the token this request carries.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "platform: auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{}`", body = crate::http::openapi::Empty),
        (status = 401, description = "Missing or invalid token", body = crate::http::openapi::PlainError),
    )
)]
pub async fn logout(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    end_session(&state, &session).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

/// Revokes the session's token and records the logout (the API and the operator console).
pub async fn end_session(state: &AppState, session: &Session) -> Result<(), AppError> {
    state
        .store
        .submit(WriteRequest(vec![
            rows::revoke_jwt(session.jti.clone(), session.user.id.clone(), session.expires_at_ms),
            accounts::audit(Some(&session.user.id), "user.logout", None, json!({})),
        ]))
        .await?;
    Ok(())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/otp/request").route(web::post().to(request_code)))
        .service(web::resource("/auth/otp/verify").route(web::post().to(verify_code)))
        .service(web::resource("/auth/me").route(web::get().to(me)))
        .service(web::resource("/auth/logout").route(web::post().to(logout)));
}
