//! `AppError`, the one error type of the server, and the three wire formats it
//! is rendered in. Handlers return `AppError`; the surface middleware
//! (`http::middleware`) renders every error response, including the ones actix
//! produces itself (unknown path, wrong method), in the format of the surface
//! the request path belongs to.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::json;

/// A field-level problem: a JSON pointer (or a parameter name) and what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    /// 400 with the fields at fault.
    #[error("{message}")]
    Validation { message: String, errors: Vec<FieldError> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    PaymentRequired(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 408: the client did not send its whole body in time.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: the request was understood but its content was rejected (Quality Gate).
    #[error("{message}")]
    Unprocessable { message: String, errors: Vec<FieldError> },
    #[error("{message}")]
    RateLimited { message: String, retry_after_secs: u64 },
    /// 503 with a machine-readable code (`TENANT_NOT_RUNNING`, `CIRCUIT_OPEN`, ...).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// A bug or an infrastructure failure: the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) | AppError::Validation { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told. Internal causes stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => "internal server error".to_string(),
            other => other.to_string(),
        }
    }

    /// The `/v1` envelope's `code`, from the closed list of `extensions.md`.
    pub fn agent_code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_)
            | AppError::Validation { .. }
            | AppError::MethodNotAllowed(_)
            | AppError::PayloadTooLarge(_)
            | AppError::RequestTimeout(_)
            | AppError::UnsupportedMediaType(_) => "BAD_REQUEST",
            AppError::Unauthorized(_) => "UNAUTHORIZED",
            AppError::PaymentRequired(_) => "PAYMENT_REQUIRED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Conflict(_) => "CONFLICT",
            AppError::Unprocessable { .. } => "UNPROCESSABLE",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Unavailable { code, .. } => code,
            AppError::Internal(_) => "INTERNAL",
        }
    }

    fn field_errors(&self) -> Option<&[FieldError]> {
        match self {
            AppError::Validation { errors, .. } | AppError::Unprocessable { errors, .. }
                if !errors.is_empty() =>
            {
                Some(errors)
            }
            _ => None,
        }
    }

    /// The error for a bare status that actix produced without an `AppError`
    /// (no route matched, method not allowed, ...).
    pub fn from_status(status: StatusCode, detail: Option<String>) -> Self {
        let msg = |default: &str| detail.clone().unwrap_or_else(|| default.to_string());
        match status.as_u16() {
            400 => AppError::BadRequest(msg("bad request")),
            401 => AppError::Unauthorized(msg("unauthorized")),
            402 => AppError::PaymentRequired(msg("payment required")),
            403 => AppError::Forbidden(msg("forbidden")),
            404 => AppError::NotFound(msg("not found")),
            405 => AppError::MethodNotAllowed(msg("method not allowed")),
            409 => AppError::Conflict(msg("conflict")),
            408 => AppError::RequestTimeout(msg("request timed out")),
            413 => AppError::PayloadTooLarge(msg("request body is larger than 1 MiB")),
            415 => AppError::UnsupportedMediaType(msg("unsupported content type")),
            422 => AppError::Unprocessable { message: msg("unprocessable"), errors: vec![] },
            429 => AppError::RateLimited { message: msg("rate limited"), retry_after_secs: 1 },
            503 => AppError::Unavailable { code: "CIRCUIT_OPEN", message: msg("service unavailable") },
            s if (400..500).contains(&s) => AppError::BadRequest(msg("bad request")),
            _ => AppError::Internal(msg("internal server error")),
        }
    }

    /// Renders this error in `surface`'s wire format.
    pub fn render(&self, surface: Surface, request_id: &str) -> HttpResponse {
        let status = self.status();
        let message = self.public_message();
        if surface == Surface::Browser {
            let mut builder = HttpResponse::build(status);
            if let AppError::RateLimited { retry_after_secs, .. } = self {
                builder.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            return crate::http::ui::error_page(builder, status, &message, request_id);
        }
        let body = match surface {
            Surface::Escalation => {
                let mut body = json!({ "detail": message });
                if let Some(errors) = self.field_errors() {
                    body["errors"] = json!(errors);
                }
                body
            }
            Surface::Agent => json!({
                "success": false,
                "error": { "code": self.agent_code(), "message": message, "requestId": request_id },
            }),
            Surface::Platform | Surface::Operator | Surface::Browser => {
                let mut body = json!({ "error": message });
                if let Some(errors) = self.field_errors() {
                    body["errors"] = json!(errors);
                }
                body
            }
        };
        let mut builder = HttpResponse::build(status);
        if let AppError::RateLimited { retry_after_secs, .. } = self {
            builder.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        builder.json(body)
    }
}

/// The response an `AppError` becomes before the surface middleware sees it.
/// The middleware finds the error through `response.error()` and re-renders it;
/// this plain body is only what a request outside any surface would get.
impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.render(Surface::Operator, "")
    }
}

/// The three public APIs plus the operator endpoints, told apart by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/auth/*`, `/escalations*`, `/experts*`, `/domains`, `/webhooks/deliveries/*`:
    /// everything at the root that is not another surface.
    Escalation,
    /// `/v1/*`
    Agent,
    /// `/api/*`
    Platform,
    /// `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`
    Operator,
    /// `/portal`, `/console` and their files under `/ui`: HTML pages for people.
    Browser,
}

impl Surface {
    pub fn of_path(path: &str) -> Surface {
        fn under(path: &str, prefix: &str) -> bool {
            path == prefix || path.starts_with(&format!("{prefix}/"))
        }
        if under(path, "/v1") {
            Surface::Agent
        } else if under(path, "/api") {
            Surface::Platform
        } else if under(path, "/portal") || under(path, "/console") || under(path, "/ui") {
            Surface::Browser
        } else if matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json")
            || under(path, "/docs")
        {
            Surface::Operator
        } else {
            Surface::Escalation
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Surface::Escalation => "escalation",
            Surface::Agent => "agent",
            Surface::Platform => "platform",
            Surface::Operator => "operator",
            Surface::Browser => "browser",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_surface() {
        assert_eq!(Surface::of_path("/v1"), Surface::Agent);
        assert_eq!(Surface::of_path("/v1/cerebrals/x/message"), Surface::Agent);
        assert_eq!(Surface::of_path("/v10"), Surface::Escalation);
        assert_eq!(Surface::of_path("/api/tenants"), Surface::Platform);
        assert_eq!(Surface::of_path("/apix"), Surface::Escalation);
        assert_eq!(Surface::of_path("/escalations"), Surface::Escalation);
        assert_eq!(Surface::of_path("/healthz"), Surface::Operator);
        assert_eq!(Surface::of_path("/docs/index.css"), Surface::Operator);
        assert_eq!(Surface::of_path("/nope"), Surface::Escalation);
        assert_eq!(Surface::of_path("/portal"), Surface::Browser);
        assert_eq!(Surface::of_path("/console/tenants"), Surface::Browser);
        assert_eq!(Surface::of_path("/ui/app.css"), Surface::Browser);
        assert_eq!(Surface::of_path("/portals"), Surface::Escalation);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = AppError::internal("password=hunter2 at db");
        assert_eq!(err.public_message(), "internal server error");
        assert_eq!(err.agent_code(), "INTERNAL");
    }
}
