//! The one middleware every request passes: it gives the request an id (echoed
//! when the client sent one), opens its tracing span, records its metrics,
//! holds API traffic back until the server is ready, and renders every error
//! response — ours and actix's own (unknown path, wrong method, bad body) — in
//! the wire format of the surface the path belongs to.

use std::sync::atomic::Ordering;
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest};
use tracing::Instrument;

use super::MAX_BODY_BYTES;
use crate::error::{AppError, Surface};
use crate::http::agent::message::AgentHealth;
use crate::startup::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's id, in its extensions for handlers that need it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A client-supplied id is kept if it is short, printable ASCII; else we make one.
fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("req_{}", uuid::Uuid::now_v7().simple()))
}

pub async fn surface(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let start = Instant::now();
    let surface = Surface::of_path(req.path());
    let request_id = request_id_of(&req);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().to_string();
    let span = tracing::info_span!(
        "http",
        request_id = %request_id,
        method = %method,
        path = %req.path(),
        status = tracing::field::Empty,
    );
    let early = early_refusal(&req, surface);
    let res = match early {
        Some(err) => req.into_response(err.render(surface, &request_id)),
        // Routing needs the request uniquely owned, so no clone of it may be
        // held here; handler errors arrive as responses, only a middleware
        // below this one could answer Err, and there is none.
        None => next.call(req).instrument(span.clone()).await?.map_into_boxed_body(),
    };
    let res = render_errors(res, surface, &request_id, &span);
    let mut res = res;
    if surface == Surface::Agent {
        agent_headers(&mut res);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }

    let status = res.status().as_u16();
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
    let elapsed = start.elapsed().as_secs_f64();
    let labels = [("surface", surface.label().to_string()), ("route", route), ("method", method)];
    metrics::histogram!("switchboard_http_request_duration_seconds", &labels).record(elapsed);
    let mut counted = labels.to_vec();
    counted.push(("status", status.to_string()));
    metrics::counter!("switchboard_http_requests_total", &counted).increment(1);
    span.record("status", status);
    span.in_scope(|| tracing::info!(latency_ms = elapsed * 1000.0, "request completed"));
    Ok(res)
}

/// `X-RateLimit-*`, `X-Budget-State` and `X-Circuit-State` on every
/// authenticated `/v1` answer (the handler left the tenant's health in the
/// request). An unlimited plan's limit and remainder read `unlimited`.
fn agent_headers(res: &mut ServiceResponse<BoxBody>) {
    let Some(AgentHealth(h)) = res.request().extensions().get::<AgentHealth>().copied() else { return };
    let text = |n: Option<u64>| n.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    let headers = [
        ("x-ratelimit-limit", text(h.rate.limit)),
        ("x-ratelimit-remaining", text(h.rate.remaining)),
        ("x-ratelimit-reset", h.rate.reset_at_secs.to_string()),
        ("x-budget-state", h.budget.as_str().to_string()),
        ("x-circuit-state", h.circuit.as_str().to_string()),
    ];
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(HeaderName::from_static(name), v);
        }
    }
}

/// Refusals decided before any handler runs: a declared body over the limit,
/// and API traffic while the server is still starting.
fn early_refusal(req: &ServiceRequest, surface: Surface) -> Option<AppError> {
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Some(AppError::PayloadTooLarge("request body is larger than 1 MiB".into()));
    }
    if surface != Surface::Operator {
        let ready = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.ready.load(Ordering::Acquire));
        if !ready {
            return Some(AppError::Unavailable {
                code: "CIRCUIT_OPEN",
                message: "the server is starting; retry shortly".into(),
            });
        }
    }
    None
}

fn render_errors(
    res: ServiceResponse<BoxBody>,
    surface: Surface,
    request_id: &str,
    span: &tracing::Span,
) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let attached = res.response().error();
    let err = match attached {
        Some(e) => match e.as_error::<AppError>() {
            Some(app) => app.clone(),
            // actix's own errors (query, path, payload) carry safe, useful text for 4xx.
            None if status.is_client_error() => AppError::from_status(status, Some(e.to_string())),
            None => AppError::Internal(e.to_string()),
        },
        // A handler's own non-empty error body is left alone; an empty one is actix's default.
        None if matches!(res.response().body().size(), BodySize::Sized(0) | BodySize::None) => {
            AppError::from_status(status, None)
        }
        None => return res,
    };
    if let AppError::Internal(cause) = &err {
        span.in_scope(|| tracing::error!(request_id, cause = %cause, "internal error"));
    }
    let (req, old) = res.into_parts();
    let mut new = err.render(surface, request_id);
    for (name, value) in old.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH && !new.headers().contains_key(name) {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, new)
}

/// Finds the request id from inside a handler.
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default()
}
