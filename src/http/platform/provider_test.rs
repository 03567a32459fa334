//! `POST /api/tenants/{id}/provider/test`: asks the provider a tiny question
//! ("Reply with OK.") to see whether a provider config works, before or after
//! it is saved. Any tenant member may test.
//!
//! Fields left out fall back to the tenant's stored config (and its stored,
//! sealed API key). The values given are checked like `PATCH .../config`
//! checks them: a `base_url` the outbound guard refuses (a private, loopback
//! or metadata address where those are not allowed) is a 400, not a test
//! result. The stored API key is only ever sent to the stored `base_url`: a
//! test against another `base_url` uses the `api_key` given, or none, so a
//! member cannot have the tenant's key sent to a server of their choosing.
//!
//! The answer is always 200 once the request is valid: `{"success": true}`,
//! or `{"success": false, "error": "..."}` where a provider's 401 or 403 is
//! `Invalid API key`. The API key is never echoed.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::config::{check_api_key, check_config};
use crate::agents::config::TenantConfig;
use crate::agents::providers::{ChatMessage, ChatRequest, ProviderError, Providers};
use crate::error::AppError;
use crate::http::auth::{platform_tenant_access, Session};
use crate::http::extract::OptionalJson;
use crate::startup::AppState;

/// What the provider is asked.
pub const TEST_PROMPT: &str = "Reply with OK.";
/// The error for a provider that refused the key.
pub const INVALID_API_KEY: &str = "Invalid API key";

/// Every field optional; a missing one is the tenant's stored value. The body
/// itself may be left out (tests the stored config as it is).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-...", "base_url": "https://api.openai.com/v1"}))]
pub struct TestProvider {
    /// `offline` is built in; any other name is an OpenAI-compatible server at `base_url`.
    #[schema(example = "openai")]
    pub provider: Option<String>,
    #[schema(example = "gpt-4o-mini")]
    pub model: Option<String>,
    /// Used for this test only, never stored nor returned. A blank one counts as left out.
    #[schema(example = "sk-...")]
    pub api_key: Option<String>,
    /// An http(s) URL the outbound guard accepts.
    #[schema(example = "https://api.openai.com/v1")]
    pub base_url: Option<String>,
    /// 0–2.
    pub temperature: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"success": false, "error": "Invalid API key"}))]
pub struct ProviderTestResult {
    pub success: bool,
    /// Why the test failed; absent on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Invalid API key")]
    pub error: Option<String>,
}

/// The provider's failure as shown: a refused key is `Invalid API key`; any
/// other message with the key (if one slipped in) blanked out.
fn failure_message(e: &ProviderError, api_key: Option<&str>) -> String {
    let message = e.message();
    if let ProviderError::Failed(m) = e {
        if ["401", "403"].iter().any(|s| m.starts_with(&format!("the provider answered {s}:"))) {
            return INVALID_API_KEY.to_string();
        }
    }
    match api_key {
        Some(key) if !key.is_empty() => message.replace(key, "[redacted]"),
        _ => message.to_string(),
    }
}

/// Tests the provider config (any member); fields left out are the tenant's stored ones.
#[utoipa::path(post, path = "/api/tenants/{id}/provider/test", tag = "platform: tenants", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = Option<TestProvider>),
    responses((status = 200, description = "The provider answered (`success: true`) or why not", body = ProviderTestResult),
        (status = 400, description = "A field is invalid or unknown, or base_url is refused by the outbound guard",
            body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member", body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn test(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    body: OptionalJson<TestProvider>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &id).await?;
    let given = body.0.unwrap_or_default();
    let checked = check_config(
        &state.engine.guard,
        TenantConfig {
            provider: given.provider,
            model: given.model,
            temperature: given.temperature,
            base_url: given.base_url,
            ..Default::default()
        },
    )?;
    let given_key = given.api_key.as_deref().map(check_api_key).transpose()?.flatten();

    let tenant = &access.tenant;
    let stored = TenantConfig::from_stored(&tenant.id, &tenant.config);
    let provider = checked.provider.unwrap_or_else(|| stored.provider().to_string());
    // The stored key goes only where it is meant to go: the stored base_url.
    let stored_destination = checked.base_url.is_none() || checked.base_url == stored.base_url;
    let base_url = checked.base_url.or(stored.base_url);
    let api_key = match given_key {
        Some(key) => Some(key),
        None => match &tenant.provider_api_key_sealed {
            Some(sealed) if stored_destination && !Providers::is_offline(&provider) => {
                Some(state.identity.secrets.open(sealed).map_err(AppError::internal)?)
            }
            _ => None,
        },
    };
    let request = ChatRequest {
        provider,
        base_url,
        api_key: api_key.clone(),
        model: checked.model.or(stored.model).unwrap_or_default(),
        temperature: checked.temperature.or(stored.temperature),
        messages: vec![ChatMessage::user(TEST_PROMPT)],
    };
    let result = match state.agents.providers.chat(request).await {
        Ok(_) => ProviderTestResult { success: true, error: None },
        Err(e) => ProviderTestResult { success: false, error: Some(failure_message(&e, api_key.as_deref())) },
    };
    Ok(HttpResponse::Ok().json(result))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tenants/{id}/provider/test").route(web::post().to(test)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_keys_read_invalid_api_key_and_keys_never_show() {
        for status in [401, 403] {
            let e = ProviderError::Failed(format!("the provider answered {status}: {{\"error\": \"nope\"}}"));
            assert_eq!(failure_message(&e, Some("sk-1")), INVALID_API_KEY);
        }
        let e = ProviderError::Failed("the provider answered 500: bad sk-secret-1 here".into());
        assert_eq!(
            failure_message(&e, Some("sk-secret-1")),
            "the provider answered 500: bad [redacted] here"
        );
        let e = ProviderError::Refused("refused by the outbound guard: x".into());
        assert_eq!(failure_message(&e, None), "refused by the outbound guard: x");
        // A configuration error is shown as it is.
        let e = ProviderError::NotConfigured("provider \"x\" needs a model".into());
        assert_eq!(failure_message(&e, Some("k")), "provider \"x\" needs a model");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<TestProvider>(r#"{"apikey": "k"}"#).is_err());
        let t: TestProvider = serde_json::from_str(r#"{"provider": "offline"}"#).unwrap();
        assert_eq!(t.provider.as_deref(), Some("offline"));
    }
}
