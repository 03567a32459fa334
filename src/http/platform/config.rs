//! `/api/tenants/{id}/config`: the tenant's container config (provider, model,
//! prompt, tools, `base_url`) and its write-only provider API key, stored
//! sealed apart from the config. Reads for any member, writes for Manager+.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::agents::config::TenantConfig;
use crate::error::AppError;
use crate::http::auth::{platform_tenant_access, Session};
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::Role;
use crate::outbound::OutboundGuard;
use crate::startup::AppState;
use crate::store::identity::{self as rows, TenantRow};
use crate::store::WriteRequest;
use switchboard_actors::tenant::{Level, TenantState};

pub const MAX_PROVIDER_CHARS: usize = 100;
pub const MAX_MODEL_CHARS: usize = 200;
pub const MAX_API_KEY_CHARS: usize = 500;
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 100_000;
pub const MAX_BASE_URL_CHARS: usize = 2_000;
pub const MIN_TEMPERATURE: f64 = 0.0;
pub const MAX_TEMPERATURE: f64 = 2.0;

/// The config as the API shows it: every field, `null` when unset; the API
/// key itself is never shown, only whether one is stored.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "provider": "openai",
    "model": "gpt-4o-mini",
    "temperature": 0.7,
    "system_prompt": "You are a helpful assistant.",
    "tool_settings": {"shell": false, "browser": false},
    "base_url": "https://api.openai.com/v1",
    "api_key_set": true
}))]
pub struct TenantConfigView {
    /// `offline` (built in) when null; any other name is an OpenAI-compatible server at `base_url`.
    #[schema(example = "openai")]
    pub provider: Option<String>,
    #[schema(example = "gpt-4o-mini")]
    pub model: Option<String>,
    #[schema(example = 0.7)]
    pub temperature: Option<f64>,
    #[schema(example = "You are a helpful assistant.")]
    pub system_prompt: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub tool_settings: Option<Map<String, Value>>,
    /// The OpenAI-compatible server's base URL (e.g. `https://api.openai.com/v1`).
    pub base_url: Option<String>,
    /// Whether a provider API key is stored (the key is write-only).
    pub api_key_set: bool,
}

impl TenantConfigView {
    pub fn of(tenant: &TenantRow) -> TenantConfigView {
        let c = TenantConfig::from_stored(&tenant.id, &tenant.config);
        TenantConfigView {
            provider: c.provider,
            model: c.model,
            temperature: c.temperature,
            system_prompt: c.system_prompt,
            tool_settings: c.tool_settings,
            base_url: c.base_url,
            api_key_set: tenant.provider_api_key_sealed.is_some(),
        }
    }
}

/// Any subset of the fields; `null` clears one (`api_key` also clears with `""`).
/// Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "provider": "anthropic",
    "model": "claude-sonnet-4-6",
    "api_key": "sk-ant-...",
    "temperature": 0.5,
    "system_prompt": "You are a concise assistant.",
    "tool_settings": {"shell": false},
    "base_url": "https://api.anthropic.com/v1"
}))]
pub struct PatchTenantConfig {
    /// 1–100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "anthropic")]
    pub provider: Option<Option<String>>,
    /// 1–200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "claude-sonnet-4-6")]
    pub model: Option<Option<String>>,
    /// Write-only, at most 500 characters: stored encrypted, never returned.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "sk-ant-...")]
    pub api_key: Option<Option<String>>,
    /// 0–2.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, example = 0.5)]
    pub temperature: Option<Option<f64>>,
    /// At most 100,000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub system_prompt: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub tool_settings: Option<Option<Map<String, Value>>>,
    /// An http(s) URL the outbound guard accepts.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "https://api.anthropic.com/v1")]
    pub base_url: Option<Option<String>>,
}

/// A field that is present (even as `null`) is `Some`; an absent one stays `None` by `default`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn bounded_text(field: &str, raw: &str, max: usize) -> Result<String, AppError> {
    let value = raw.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(AppError::BadRequest(format!("{field} must be 1–{max} characters")));
    }
    Ok(value.to_string())
}

/// Checks the config fields a request sets (those that are `Some`) and returns
/// them as they are stored: `provider` and `model` trimmed, 1–100 and 1–200
/// characters; `temperature` 0–2; `system_prompt` at most 100,000 characters;
/// `base_url` an http(s) URL that `guard` accepts (so loopback and private
/// targets only where the settings allow them). Used by tenant create and by
/// `PATCH /api/tenants/{id}/config`.
pub fn check_config(guard: &OutboundGuard, given: TenantConfig) -> Result<TenantConfig, AppError> {
    let provider =
        given.provider.as_deref().map(|p| bounded_text("provider", p, MAX_PROVIDER_CHARS)).transpose()?;
    let model = given.model.as_deref().map(|m| bounded_text("model", m, MAX_MODEL_CHARS)).transpose()?;
    if let Some(t) = given.temperature {
        if !(MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&t) {
            return Err(AppError::BadRequest("temperature must be between 0 and 2".into()));
        }
    }
    if let Some(prompt) = &given.system_prompt {
        if prompt.chars().count() > MAX_SYSTEM_PROMPT_CHARS {
            return Err(AppError::BadRequest(format!(
                "system_prompt is longer than {MAX_SYSTEM_PROMPT_CHARS} characters"
            )));
        }
    }
    let base_url = given.base_url.as_deref().map(|u| check_base_url(guard, u)).transpose()?;
    Ok(TenantConfig {
        provider,
        model,
        temperature: given.temperature,
        system_prompt: given.system_prompt,
        tool_settings: given.tool_settings,
        base_url,
    })
}

/// An http(s) URL the outbound guard accepts, trimmed; the guard's reason otherwise.
pub fn check_base_url(guard: &OutboundGuard, raw: &str) -> Result<String, AppError> {
    let url = raw.trim();
    if url.is_empty() || url.chars().count() > MAX_BASE_URL_CHARS {
        return Err(AppError::BadRequest(format!(
            "base_url must be an http(s) URL of at most {MAX_BASE_URL_CHARS} characters"
        )));
    }
    guard.check_url_syntax(url).map_err(|refusal| {
        AppError::BadRequest(refusal.to_string().replacen("callback_url", "base_url", 1))
    })?;
    Ok(url.to_string())
}

/// A provider API key as stored before sealing: trimmed, at most 500
/// characters; `None` when blank (which clears the key).
pub fn check_api_key(raw: &str) -> Result<Option<String>, AppError> {
    let key = raw.trim();
    if key.is_empty() {
        return Ok(None);
    }
    if key.chars().count() > MAX_API_KEY_CHARS {
        return Err(AppError::BadRequest(format!("api_key is longer than {MAX_API_KEY_CHARS} characters")));
    }
    Ok(Some(key.to_string()))
}

/// One field of a patch: absent keeps, `null` clears, a value replaces.
fn merge<T>(stored: &mut Option<T>, patch: Option<Option<T>>, checked: Option<T>) {
    if let Some(value) = patch {
        *stored = value.and(checked);
    }
}

/// The tenant's config; the API key is never returned, only `api_key_set`.
#[utoipa::path(get, path = "/api/tenants/{id}/config", tag = "platform: tenants", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = TenantConfigView), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member", body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn get(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &id).await?;
    Ok(HttpResponse::Ok().json(TenantConfigView::of(&access.tenant)))
}

/// Change any of the config fields (Manager+); `null` clears a field.
#[utoipa::path(patch, path = "/api/tenants/{id}/config", tag = "platform: tenants", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = PatchTenantConfig,
    responses((status = 200, body = TenantConfigView),
        (status = 400, description = "A field is invalid, unknown, or base_url is refused by the outbound guard",
            body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member, or below Manager", body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError),
        (status = 409, description = "The tenant was deleted meanwhile", body = crate::http::openapi::PlainError)))]
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    body: Json<PatchTenantConfig>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &id).await?;
    access.require(Role::Manager)?;
    let patch = body.0;

    // Check every value given before anything is written.
    let set = check_config(
        &state.engine.guard,
        TenantConfig {
            provider: patch.provider.clone().flatten(),
            model: patch.model.clone().flatten(),
            temperature: patch.temperature.flatten(),
            system_prompt: patch.system_prompt.clone().flatten(),
            tool_settings: patch.tool_settings.clone().flatten(),
            base_url: patch.base_url.clone().flatten(),
        },
    )?;
    let api_key = match &patch.api_key {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) => Some(check_api_key(raw)?),
    };

    let changed: Vec<&str> = [
        ("provider", patch.provider.is_some()),
        ("model", patch.model.is_some()),
        ("api_key", patch.api_key.is_some()),
        ("temperature", patch.temperature.is_some()),
        ("system_prompt", patch.system_prompt.is_some()),
        ("tool_settings", patch.tool_settings.is_some()),
        ("base_url", patch.base_url.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect();
    if changed.is_empty() {
        return Ok(HttpResponse::Ok().json(TenantConfigView::of(&access.tenant)));
    }

    let tenant_id = access.tenant.id.clone();
    let mut config = TenantConfig::from_stored(&tenant_id, &access.tenant.config);
    merge(&mut config.provider, patch.provider, set.provider);
    merge(&mut config.model, patch.model, set.model);
    merge(&mut config.temperature, patch.temperature, set.temperature);
    merge(&mut config.system_prompt, patch.system_prompt, set.system_prompt);
    merge(&mut config.tool_settings, patch.tool_settings, set.tool_settings);
    merge(&mut config.base_url, patch.base_url, set.base_url);
    let config_json = serde_json::to_string(&config).map_err(AppError::internal)?;
    let sealed = api_key.map(|key| key.map(|k| state.identity.secrets.seal(&k)));

    state
        .store
        .submit(WriteRequest(vec![
            rows::set_tenant_config(tenant_id.clone(), config_json, sealed),
            accounts::audit(
                Some(&session.user.id),
                "tenant.config",
                Some(&tenant_id),
                json!({ "fields": changed }),
            ),
        ]))
        .await?;
    // A running container takes the new config by a restart of its runtime.
    let running = state.agents.container(&tenant_id).map(|c| c.status) == Some(TenantState::Running);
    if running {
        state
            .agents
            .log(&tenant_id)
            .write(Level::Info, &format!("Config changed ({}); restarting", changed.join(", ")));
        // The config is saved either way; a restart that cannot be recorded is the operator's to see.
        if let Err(e) = state.agents.restart(&tenant_id).await {
            tracing::error!(tenant = %tenant_id, error = %e, "config saved, but the runtime could not be restarted");
        }
    }
    let tenant = state.store.existing_tenant(&tenant_id).await?;
    Ok(HttpResponse::Ok().json(TenantConfigView::of(&tenant)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tenants/{id}/config").route(web::get().to(get)).route(web::patch().to(update)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> OutboundGuard {
        OutboundGuard::new(false, None)
    }

    #[test]
    fn fields_are_checked_and_trimmed() {
        let given = TenantConfig {
            provider: Some("  openai ".into()),
            model: Some("gpt-4o-mini".into()),
            temperature: Some(2.0),
            base_url: Some(" https://api.openai.com/v1 ".into()),
            ..Default::default()
        };
        let c = check_config(&strict(), given).unwrap();
        assert_eq!(c.provider.as_deref(), Some("openai"));
        assert_eq!(c.base_url.as_deref(), Some("https://api.openai.com/v1"));
        assert!(check_config(&strict(), TenantConfig::default()).unwrap() == TenantConfig::default());
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = [
            TenantConfig { provider: Some(" ".into()), ..Default::default() },
            TenantConfig { provider: Some("p".repeat(101)), ..Default::default() },
            TenantConfig { model: Some("m".repeat(201)), ..Default::default() },
            TenantConfig { temperature: Some(-0.1), ..Default::default() },
            TenantConfig { temperature: Some(2.01), ..Default::default() },
            TenantConfig { system_prompt: Some("s".repeat(100_001)), ..Default::default() },
            TenantConfig { base_url: Some("ftp://example.com".into()), ..Default::default() },
            TenantConfig { base_url: Some("http://127.0.0.1:9/v1".into()), ..Default::default() },
            TenantConfig { base_url: Some("http://169.254.169.254/".into()), ..Default::default() },
        ];
        for given in bad {
            let err = check_config(&strict(), given.clone()).unwrap_err();
            assert!(matches!(err, AppError::BadRequest(_)), "{given:?}: {err:?}");
        }
        let err = check_base_url(&strict(), "http://localhost/v1").unwrap_err();
        assert!(err.to_string().starts_with("base_url "), "{err}");
    }

    #[test]
    fn loopback_passes_where_private_targets_are_allowed() {
        let guard = OutboundGuard::new(true, Some(vec!["127.0.0.0/8".parse().unwrap()]));
        assert!(check_base_url(&guard, "http://127.0.0.1:9/v1").is_ok());
        assert!(check_base_url(&guard, "http://10.0.0.1/v1").is_err());
    }

    #[test]
    fn api_keys_blank_clears_and_long_is_refused() {
        assert_eq!(check_api_key("  ").unwrap(), None);
        assert_eq!(check_api_key(" sk-1 ").unwrap().as_deref(), Some("sk-1"));
        assert!(check_api_key(&"k".repeat(501)).is_err());
        assert!(check_api_key(&"k".repeat(500)).is_ok());
    }

    #[test]
    fn a_patch_keeps_clears_or_replaces() {
        let mut v = Some(1);
        merge(&mut v, None, None);
        assert_eq!(v, Some(1));
        merge(&mut v, Some(Some(2)), Some(3));
        assert_eq!(v, Some(3));
        merge(&mut v, Some(None), None);
        assert_eq!(v, None);
    }

    #[test]
    fn unknown_fields_are_refused_and_null_is_kept_apart_from_absent() {
        assert!(serde_json::from_str::<PatchTenantConfig>(r#"{"nope":1}"#).is_err());
        let p: PatchTenantConfig = serde_json::from_str(r#"{"model":null,"api_key":"k"}"#).unwrap();
        assert_eq!(p.model, Some(None));
        assert_eq!(p.api_key, Some(Some("k".into())));
        assert_eq!(p.provider, None);
    }
}
