//! The OpenAPI 3.1 document, generated from the routes' annotations: every
//! route is listed here when it is written.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, Content, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{agent, escalation, operator, platform};
use crate::error::FieldError;

/// Escalation API error.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": "Invalid API key"}))]
pub struct DetailError {
    #[schema(example = "Invalid API key")]
    pub detail: String,
    /// Present on validation and Quality Gate errors.
    pub errors: Option<Vec<FieldError>>,
}

/// The `/v1` error envelope's `error`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeErrorBody {
    /// `BAD_REQUEST`, `UNAUTHORIZED`, `PAYMENT_REQUIRED`, `FORBIDDEN`, `NOT_FOUND`, `CONFLICT`,
    /// `UNPROCESSABLE`, `RATE_LIMITED`, `TENANT_NOT_RUNNING`, `CIRCUIT_OPEN` or `INTERNAL`.
    #[schema(example = "UNAUTHORIZED")]
    pub code: String,
    pub message: String,
    /// Equals the response's X-Request-Id.
    pub request_id: String,
}

/// Agent API error: `{"success": false, "error": {...}}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "success": false,
    "error": {
        "code": "UNAUTHORIZED",
        "message": "Missing or invalid X-API-Key header",
        "requestId": "req_0193a6f17c1e7d2a9a513b3f2f0c8e11"
    }
}))]
pub struct EnvelopeError {
    #[schema(example = false)]
    pub success: bool,
    pub error: EnvelopeErrorBody,
}

/// The Agent API's success envelope, `{"success": true, "data": ...}`: every
/// `/v1` answer but an error.
#[derive(ToSchema)]
pub struct Envelope<T> {
    #[schema(example = true)]
    pub success: bool,
    pub data: T,
}

/// `data` of `POST /v1/auth/verify-email`.
#[derive(ToSchema)]
#[schema(example = json!({"verified": true}))]
pub struct Verified {
    pub verified: bool,
}

/// `data` of `DELETE /v1/api-keys/{id}`.
#[derive(ToSchema)]
#[schema(example = json!({"deleted": true}))]
pub struct Deleted {
    pub deleted: bool,
}

/// `{}`: the Platform API's answer to an action that has nothing to return.
#[derive(ToSchema)]
#[schema(example = json!({}))]
pub struct Empty {}

/// Platform API and operator error.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": "human-readable message"}))]
pub struct PlainError {
    #[schema(example = "human-readable message")]
    pub error: String,
    /// Present on validation errors: the fields at fault.
    pub errors: Option<Vec<FieldError>>,
}

struct SecuritySchemes;

/// Gives every operation an id unique in the document, `<method>_<path>`
/// (`get_api_tenants_id_config`): handler names repeat across surfaces.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let slug: String = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_matches(|c| c == '{' || c == '}').replace(['-', '.', ':'], "_"))
                .collect::<Vec<_>>()
                .join("_");
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("options", &mut item.options),
                ("head", &mut item.head),
                ("patch", &mut item.patch),
                ("trace", &mut item.trace),
            ];
            for (method, op) in operations {
                if let Some(op) = op {
                    op.operation_id = Some(format!("{method}_{slug}"));
                }
            }
        }
    }
}

/// Fills in the examples that follow from others, so that each is written once,
/// on its type: an `Envelope_*` component's is `{"success": true, "data": <the
/// data's example>}`, a body that is an array of a component with an example
/// gets `[<that example>]`, and an optional body its type's.
struct DerivedExamples;

/// The whole-value example of a schema: its own, or its component's.
#[allow(deprecated)] // `example` is what `#[schema(example = ...)]` fills in.
fn example_of(schema: &RefOr<Schema>, components: &Components) -> Option<Value> {
    match schema {
        RefOr::Ref(r) => {
            let name = r.ref_location.strip_prefix("#/components/schemas/")?;
            example_of(components.schemas.get(name)?, components)
        }
        RefOr::T(Schema::Object(o)) => o.example.clone().or_else(|| o.examples.first().cloned()),
        RefOr::T(Schema::Array(a)) => match (&a.example, a.examples.first(), &a.items) {
            (Some(e), _, _) | (None, Some(e), _) => Some(e.clone()),
            (None, None, ArrayItems::RefOrSchema(item)) => Some(json!([example_of(item, components)?])),
            (None, None, ArrayItems::False) => None,
        },
        _ => None,
    }
}

fn fill(content: &mut Content, components: &Components) {
    if content.example.is_some() || !content.examples.is_empty() {
        return;
    }
    content.example = match &content.schema {
        Some(schema @ RefOr::T(Schema::Array(_))) => example_of(schema, components),
        // An optional body (`Option<T>`) is `oneOf: [null, T]`: show T's example, not null.
        Some(RefOr::T(Schema::OneOf(one_of))) => {
            one_of.items.iter().find_map(|item| example_of(item, components))
        }
        _ => None,
    };
}

impl Modify for DerivedExamples {
    #[allow(deprecated)]
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else { return };
        let envelopes: Vec<(String, Value)> = components
            .schemas
            .iter()
            .filter(|(name, _)| name.starts_with("Envelope_"))
            .filter_map(|(name, schema)| match schema {
                RefOr::T(Schema::Object(o)) => {
                    let data = example_of(o.properties.get("data")?, components)?;
                    Some((name.clone(), json!({ "success": true, "data": data })))
                }
                _ => None,
            })
            .collect();
        for (name, example) in envelopes {
            if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(&name) {
                o.example = Some(example);
            }
        }
        let components = components.clone();
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                if let Some(body) = op.request_body.as_mut() {
                    body.content.values_mut().for_each(|c| fill(c, &components));
                }
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.content.values_mut().for_each(|c| fill(c, &components));
                    }
                }
            }
        }
    }
}

/// Lists the answers that come from the layers every operation of a kind goes
/// through, where an operation's annotation does not list them already: 401
/// from the credential extractors on every operation with `security` (missing,
/// unknown, revoked or expired credential), and 400 from the JSON body
/// extractor (`http::extract::Json`: a body missing, malformed or of the wrong
/// shape) on every operation with a request body. Each is in the error format
/// of the operation's surface. Found by fuzzing (tests/fuzz.rs): many
/// annotations left them out.
struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let response = |description: &str, error: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name(error))).build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let error = if path.starts_with("/v1/") {
                "EnvelopeError"
            } else if path.starts_with("/api/") {
                "PlainError"
            } else {
                "DetailError"
            };
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut op.responses.responses;
                if secured && !responses.contains_key("401") {
                    responses.insert(
                        "401".into(),
                        RefOr::T(response("Missing, unknown, revoked or expired credential", error)),
                    );
                }
                if op.request_body.is_some() && !responses.contains_key("400") {
                    responses.insert(
                        "400".into(),
                        RefOr::T(response("Request body missing, malformed or invalid", error)),
                    );
                }
            }
        }
    }
}

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "`cero_...` on the Escalation API; `sk_live_...` for Cerebral invocation on /v1",
            ))),
        );
        components.add_security_scheme(
            "expert_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Expert-Token",
                "`exp_...`, issued by POST /experts or POST /experts/{expert_id}/token",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("From /v1/auth/login or /api/auth/otp/verify"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "Routes AI agents' hard cases to human experts and hosts agents for many tenants. \
                       Three surfaces: the Escalation API (root paths, errors `{\"detail\"}`), the Agent API \
                       (`/v1`, envelope `{success, data | error:{code, message, requestId}}`), the Platform API \
                       (`/api`, errors `{\"error\"}`); plus operator endpoints.",
    ),
    modifiers(&SecuritySchemes, &UniqueOperationIds, &SharedResponses, &DerivedExamples),
    paths(
        operator::healthz,
        operator::readyz,
        operator::metrics,
        operator::openapi,
        escalation::auth::register,
        escalation::auth::new_api_key,
        escalation::auth::usage,
        escalation::escalations::create,
        escalation::escalations::list,
        escalation::escalations::get,
        escalation::escalations::wait,
        escalation::escalations::cancel,
        escalation::escalations::feedback,
        escalation::experts::create,
        escalation::experts::list,
        escalation::experts::get,
        escalation::experts::patch,
        escalation::experts::rotate_token,
        escalation::portal::get_me,
        escalation::portal::patch_me,
        escalation::portal::my_cases,
        escalation::portal::my_case,
        escalation::portal::accept,
        escalation::portal::resolve,
        escalation::portal::decline,
        escalation::domains::list,
        escalation::deliveries::list,
        agent::auth::signup,
        agent::auth::verify_email,
        agent::auth::login,
        agent::api_keys::create,
        agent::api_keys::list,
        agent::api_keys::revoke,
        agent::cerebrals::create,
        agent::cerebrals::list,
        agent::cerebrals::get,
        agent::cerebrals::patch,
        agent::cerebrals::delete,
        agent::message::message,
        agent::message::transcript,
        agent::message::rate_limits,
        agent::customers::create,
        agent::customers::get,
        agent::webhooks::create,
        agent::webhooks::list,
        agent::webhooks::delete,
        platform::auth::request_code,
        platform::auth::verify_code,
        platform::auth::me,
        platform::auth::logout,
        platform::users::list,
        platform::users::create,
        platform::users::update,
        platform::users::delete,
        platform::tenants::list,
        platform::tenants::create,
        platform::tenants::get,
        platform::tenants::update,
        platform::tenants::delete,
        platform::config::get,
        platform::config::update,
        platform::containers::deploy,
        platform::containers::restart,
        platform::containers::stop,
        platform::containers::status,
        platform::containers::logs,
        platform::containers::pairing_code,
        platform::containers::reset_pairing,
        platform::containers::exec,
        platform::provider_test::test,
        platform::channels::list,
        platform::channels::create,
        platform::channels::get,
        platform::channels::update,
        platform::channels::remove,
        platform::monitoring::actors,
        platform::monitoring::routing,
        platform::monitoring::webhooks,
        platform::monitoring::dashboard,
        platform::monitoring::health,
        platform::monitoring::usage,
        platform::monitoring::audit,
        platform::monitoring::resources,
        platform::monitoring::tenant_resources,
        platform::members::list,
        platform::members::add,
        platform::members::update,
        platform::members::remove,
    ),
    components(schemas(
        operator::Health,
        operator::Readiness,
        operator::ReadinessChecks,
        FieldError,
        DetailError,
        EnvelopeError,
        EnvelopeErrorBody,
        PlainError,
        Empty,
    )),
    tags(
        (name = "operator", description = "Liveness, readiness, metrics and this document"),
        (name = "escalation: auth", description = "Escalation API: tenants and their API keys"),
        (name = "escalation: escalations", description = "Escalation API: create, follow, cancel and rate cases"),
        (name = "escalation: experts", description = "Escalation API: the tenant's experts"),
        (name = "escalation: expert portal", description = "Escalation API: experts answer their cases (X-Expert-Token)"),
        (name = "escalation: domains", description = "Escalation API: expert domains"),
        (name = "escalation: webhooks", description = "Escalation API: delivery status of callback_url and /v1 webhooks"),
        (name = "agent: auth", description = "Agent API: sign-up, email verification, login"),
        (name = "agent: api keys", description = "Agent API: keys for Cerebral invocation"),
        (name = "agent: cerebrals", description = "Agent API: a tenant's Cerebrals and their SOPs"),
        (name = "agent: customers", description = "Agent API: customer records, created or matched by identifier (X-API-Key or JWT)"),
        (name = "agent: rate limits", description = "Agent API: the tenant's request limits, counters and health"),
        (name = "agent: webhooks", description = "Agent API: signed event subscriptions"),
        (name = "platform: auth", description = "Platform API: one-time-code sign-in"),
        (name = "platform: users", description = "Platform API: users (super-admin)"),
        (name = "platform: tenants", description = "Platform API: tenants"),
        (name = "platform: members", description = "Platform API: tenant members and roles"),
        (name = "platform: monitoring", description = "Platform API: the fleet's health, usage, audit log and resources; the routing picture and webhook deliveries"),
        (name = "platform: channels", description = "Platform API: a tenant's messaging channels; sensitive config fields sealed at rest"),
        (name = "platform: containers", description = "Platform API: a tenant's container — lifecycle, status, logs, pairing, exec"),
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
