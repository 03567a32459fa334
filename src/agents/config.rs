//! A tenant's container config as stored in `tenants.config` (JSON text) and
//! the plan's Agent API limits. The provider API key is apart, sealed in
//! `tenants.provider_api_key_sealed`, and never part of this struct.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_actors::tenant::Limits;
use utoipa::ToSchema;

use crate::identity::model::Plan;

/// `offline` is the built-in provider; any other name is an OpenAI-compatible
/// chat-completions server at `base_url`.
pub const DEFAULT_PROVIDER: &str = "offline";
pub const DEFAULT_MODEL: &str = "offline-1";
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "openai")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "gpt-4o-mini")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 0.7)]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tool_settings: Option<Map<String, Value>>,
    /// The OpenAI-compatible server's base URL (e.g. `https://api.openai.com/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl TenantConfig {
    /// The stored JSON; a row that does not parse is treated as empty (and logged),
    /// so one bad row cannot take a tenant's Cerebrals down.
    pub fn from_stored(tenant_id: &str, raw: &str) -> TenantConfig {
        serde_json::from_str(raw).unwrap_or_else(|e| {
            tracing::error!(tenant = tenant_id, error = %e, "stored tenant config does not parse; using defaults");
            TenantConfig::default()
        })
    }

    pub fn provider(&self) -> &str {
        self.provider.as_deref().filter(|p| !p.trim().is_empty()).unwrap_or(DEFAULT_PROVIDER)
    }
}

/// The Agent API limits of a plan (extensions "Limits per plan").
pub fn limits_of(plan: Plan) -> Limits {
    match plan {
        Plan::Free => Limits {
            per_minute: Some(60),
            per_hour: Some(1_000),
            per_day: Some(10_000),
            daily_tokens: Some(100_000),
        },
        Plan::Starter => Limits {
            per_minute: Some(60),
            per_hour: Some(1_000),
            per_day: Some(10_000),
            daily_tokens: Some(1_000_000),
        },
        Plan::Pro => Limits {
            per_minute: Some(600),
            per_hour: Some(10_000),
            per_day: Some(100_000),
            daily_tokens: Some(10_000_000),
        },
        Plan::Enterprise => Limits::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_config_uses_the_offline_provider() {
        let c = TenantConfig::from_stored("t", "{}");
        assert_eq!(c.provider(), "offline");
        let c = TenantConfig::from_stored("t", "not json");
        assert_eq!(c, TenantConfig::default());
    }

    #[test]
    fn stored_fields_round_trip() {
        let raw = r#"{"provider":"openai","model":"gpt-4o-mini","temperature":0.5,"base_url":"http://127.0.0.1:9/v1","tool_settings":{"shell":false}}"#;
        let c = TenantConfig::from_stored("t", raw);
        assert_eq!(c.provider(), "openai");
        assert_eq!(c.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
        let back: Value = serde_json::to_value(&c).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(raw).unwrap());
    }

    #[test]
    fn enterprise_is_unlimited() {
        assert_eq!(limits_of(Plan::Enterprise), Limits::default());
        assert_eq!(limits_of(Plan::Free).per_minute, Some(60));
        assert_eq!(limits_of(Plan::Pro).daily_tokens, Some(10_000_000));
    }
}
