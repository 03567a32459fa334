//! `/v1/auth/*`: sign up, verify the email, log in.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::envelope;
use crate::error::AppError;
use crate::http::auth::client_address;
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::Email;
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "jane@example.com", "password": "correct horse battery", "name": "Jane Doe"}))]
pub struct SignupRequest {
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"userId": "usr_0193a6e24b7c7e109d2f5a8b3c4d1e21", "message": "Verification email sent"}))]
pub struct SignupData {
    pub user_id: String,
    #[schema(example = "Verification email sent")]
    pub message: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"token": "vrf_Xq3L9pT2mW7sK4dR8nB1cF6hJ0gZ5yA2"}))]
pub struct VerifyEmailRequest {
    pub token: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "jane@example.com", "password": "correct horse battery"}))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginUser {
    pub id: String,
    pub email: String,
    pub tenant_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfMDE5M2E2ZTIifQ.c2lnbmF0dXJl",
    "user": {"id": "usr_0193a6e24b7c7e109d2f5a8b3c4d1e21", "email": "jane@example.com", "tenantId": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20"}
}))]
pub struct LoginData {
    pub token: String,
    pub user: LoginUser,
}

fn email(raw: &str) -> Result<Email, AppError> {
    Email::parse(raw).map_err(AppError::BadRequest)
}

/// Register a new tenant account; mails a verification token.
#[utoipa::path(
    post, path = "/v1/auth/signup", tag = "agent: auth",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "`{success, data: SignupData}`", body = crate::http::openapi::Envelope<SignupData>),
        (status = 400, description = "Bad email or password shorter than 8", body = crate::http::openapi::EnvelopeError),
        (status = 409, description = "Email already registered", body = crate::http::openapi::EnvelopeError),
        (status = 429, description = "Too many sign-in attempts", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<SignupRequest>,
) -> Result<HttpResponse, AppError> {
    let email = email(&body.0.email)?;
    accounts::check_signin_rate(&state.identity, &email, &client_address(&req))?;
    let user_id =
        accounts::signup(&state.store, &state.identity, &email, &body.0.password, body.0.name).await?;
    Ok(envelope(StatusCode::CREATED, SignupData { user_id, message: "Verification email sent".into() }))
}

/// Verify an email with the mailed token.
#[utoipa::path(
    post, path = "/v1/auth/verify-email", tag = "agent: auth",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "`{success, data: {verified: true}}`", body = crate::http::openapi::Envelope<crate::http::openapi::Verified>),
        (status = 400, description = "Invalid or expired token", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: Json<VerifyEmailRequest>,
) -> Result<HttpResponse, AppError> {
    accounts::verify_email(&state.store, body.0.token.trim()).await?;
    Ok(envelope(StatusCode::OK, json!({ "verified": true })))
}

/// Authenticate a platform user and receive a JWT.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "agent: auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "`{success, data: LoginData}`", body = crate::http::openapi::Envelope<LoginData>),
        (status = 401, description = "Invalid credentials", body = crate::http::openapi::EnvelopeError,
            example = json!({"success": false, "error": {"code": "UNAUTHORIZED", "message": "Invalid credentials", "requestId": "req_0193a6f17c1e7d2a9a513b3f2f0c8e11"}})),
        (status = 403, description = "Email not verified", body = crate::http::openapi::EnvelopeError),
        (status = 429, description = "Too many sign-in attempts", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, AppError> {
    let email = email(&body.0.email)?;
    accounts::check_signin_rate(&state.identity, &email, &client_address(&req))?;
    let (token, user) = accounts::login(&state.store, &state.identity, &email, &body.0.password).await?;
    let memberships = state.store.tenants_of_user(&user.id).await?;
    let tenant_id = accounts::home_tenant(&memberships).map(|t| t.id.clone());
    Ok(envelope(
        StatusCode::OK,
        LoginData { token: token.token, user: LoginUser { id: user.id, email: user.email, tenant_id } },
    ))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/signup").route(web::post().to(signup)))
        .service(web::resource("/auth/verify-email").route(web::post().to(verify_email)))
        .service(web::resource("/auth/login").route(web::post().to(login)));
}
