//! The OpenAPI 3.1 document, generated from the routes' annotations: every
//! route is listed here when it is written.

use utoipa::OpenApi;

use super::operator;
use crate::error::FieldError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "Routes AI agents' hard cases to human experts and hosts agents for many tenants. \
                       Three surfaces: the Escalation API (root paths, errors `{\"detail\"}`), the Agent API \
                       (`/v1`, envelope `{success, data | error:{code, message, requestId}}`), the Platform API \
                       (`/api`, errors `{\"error\"}`); plus operator endpoints.",
    ),
    paths(operator::healthz, operator::readyz, operator::metrics, operator::openapi),
    components(schemas(
        operator::Health,
        operator::Readiness,
        operator::ReadinessChecks,
        FieldError,
    )),
    tags(
        (name = "operator", description = "Liveness, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The document as JSON text, built once at start.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| {
        // Serialising a derived document cannot fail short of a utoipa bug; say so rather than panic.
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        "{}".to_string()
    })
}
