//! The HTTP surfaces. Handlers are thin: they parse, authenticate and validate,
//! then send messages to actors or ask the store; they hold no business state.
//! `middleware` renders every error in the format of the surface its path
//! belongs to (see `error::Surface`).

pub mod agent;
pub mod auth;
pub mod docs;
pub mod escalation;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod operator;
pub mod platform;
pub mod ui;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::AppError;

/// The largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Mounts every route. Query and path errors become `AppError`s so the
/// middleware can render them in the surface's format.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| AppError::BadRequest(format!("invalid query string: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default().error_handler(|e, _| AppError::NotFound(format!("not found: {e}")).into()),
    )
    .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
    .app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(|e, _| AppError::BadRequest(format!("invalid JSON body: {e}")).into()),
    )
    .configure(operator::configure)
    .service(web::scope("/v1").configure(agent::configure))
    .service(web::scope("/api").configure(platform::configure))
    .configure(ui::configure)
    .configure(escalation::configure)
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound(format!("no endpoint {} {}", req.method(), req.path())))
}
