//! `/api/tenants/{tid}/channels`: a tenant's messaging channels, their
//! sensitive config fields sealed at rest.
//!
//! A config is a JSON object. Its sensitive top-level keys — named (in any
//! case) `bot_token` or `password`, or containing `token`, `secret`, `key` or
//! `password` — and every top-level key whose value holds such a key at any
//! depth (inside objects or arrays) are kept apart: sealed together with the
//! secret box as one JSON object, never stored nor logged in plain text. The
//! list, create and update answers show the config without them and name them
//! in `secret_fields`; only the single read (Manager+) shows them, decrypted.
//!
//! Anyone in the tenant lists; Managers and above read one, create, update
//! and delete. An update merges the top-level keys it gives into the stored
//! config (a value replaces the key's whole value, `null` removes the key).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::error::AppError;
use crate::http::agent::api_keys::rfc3339;
use crate::http::auth::{platform_tenant_access, Session};
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::Role;
use crate::startup::AppState;
use crate::store::channels::{self as rows, ChannelRow, CHANGED_MEANWHILE};
use crate::store::{now_ms, StoreError, WriteRequest};

/// The most a channel's config may take, serialized as JSON (bytes).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// The longest `kind`.
pub const MAX_KIND_CHARS: usize = 32;
/// How often an update re-reads and retries when another update got in between.
/// Each lost attempt means another update of the channel committed meanwhile,
/// so up to this many concurrent updates of one channel all succeed.
const UPDATE_ATTEMPTS: usize = 20;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "ch_0192f0c5a1b27c3d8e9f0a1b2c3d4e5f",
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "kind": "telegram",
    "config": {"allowed_users": [100001]},
    "enabled": true,
    "secret_fields": ["bot_token"],
    "created_at": "2026-02-21T03:00:00Z",
    "updated_at": "2026-02-21T03:00:00Z"
}))]
pub struct Channel {
    #[schema(example = "ch_0192f0c5a1b27c3d8e9f0a1b2c3d4e5f")]
    pub id: String,
    pub tenant_id: String,
    /// A lowercase slug: `[a-z][a-z0-9_-]{0,31}`.
    #[schema(example = "telegram")]
    pub kind: String,
    /// The config. Without its sensitive fields in the list, create and
    /// update answers; complete (decrypted) in `GET .../channels/{cid}`.
    #[schema(value_type = Object, example = json!({"allowed_users": [100001]}))]
    pub config: Map<String, Value>,
    pub enabled: bool,
    /// The top-level config keys stored sealed, sorted: they are set even
    /// where `config` does not show them.
    #[schema(example = json!(["bot_token"]))]
    pub secret_fields: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "telegram",
    "config": {"bot_token": "123:ABC...", "allowed_users": [100001]},
    "enabled": true
}))]
pub struct CreateChannel {
    /// A lowercase slug: `[a-z][a-z0-9_-]{0,31}`.
    #[schema(example = "telegram")]
    pub kind: String,
    /// A JSON object of at most 64 KiB; sensitive fields are stored encrypted.
    #[schema(value_type = Object, example = json!({"bot_token": "123:ABC...", "allowed_users": [100001]}))]
    pub config: Value,
    /// Default `true`.
    pub enabled: Option<bool>,
}

/// Both fields optional. `config`'s keys are merged into the stored config:
/// a value replaces that key's value, `null` removes the key.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"config": {"allowed_users": [100001, 100002]}, "enabled": true}))]
pub struct PatchChannel {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>, example = json!({"allowed_users": [100001, 100002]}))]
    pub config: Option<Value>,
    pub enabled: Option<bool>,
}

/// A present field is `Some` even when it is `null` (so `"config": null` is refused, not ignored).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Whether a config key names a secret (see the module documentation).
pub fn is_sensitive_key(key: &str) -> bool {
    let k = key.to_lowercase();
    k == "bot_token"
        || k == "password"
        || ["token", "secret", "key", "password"].iter().any(|part| k.contains(part))
}

/// Whether `value` holds a sensitive key at any depth.
fn holds_sensitive(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| is_sensitive_key(k) || holds_sensitive(v)),
        Value::Array(items) => items.iter().any(holds_sensitive),
        _ => false,
    }
}

/// Splits a config into what is shown and what is sealed (whole top-level keys).
pub fn split(config: Map<String, Value>) -> (Map<String, Value>, Map<String, Value>) {
    config.into_iter().partition(|(k, v)| !(is_sensitive_key(k) || holds_sensitive(v)))
}

fn check_kind(raw: &str) -> Result<String, AppError> {
    let mut chars = raw.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && raw.len() <= MAX_KIND_CHARS
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(AppError::BadRequest(format!(
            "kind must be a lowercase slug: a letter, then up to {} of a-z, 0-9, _ or - (e.g. \"telegram\")",
            MAX_KIND_CHARS - 1
        )));
    }
    Ok(raw.to_string())
}

fn check_config_object(value: Value) -> Result<Map<String, Value>, AppError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(AppError::BadRequest("config must be a JSON object".into())),
    }
}

fn check_config_size(config: &Map<String, Value>) -> Result<(), AppError> {
    let size = serde_json::to_vec(config).map_err(AppError::internal)?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(AppError::BadRequest(format!(
            "config is larger than {} KiB ({size} bytes as JSON)",
            MAX_CONFIG_BYTES / 1024
        )));
    }
    Ok(())
}

fn sorted_keys(map: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = map.keys().cloned().collect();
    keys.sort();
    keys
}

/// The stored (non-sensitive) config; a row that does not parse is shown empty (and logged).
fn public_config(row: &ChannelRow) -> Map<String, Value> {
    serde_json::from_str(&row.config).unwrap_or_else(|e| {
        tracing::error!(channel = %row.id, error = %e, "stored channel config does not parse");
        Map::new()
    })
}

/// The sealed fields, decrypted.
fn open_secrets(state: &AppState, row: &ChannelRow) -> Result<Map<String, Value>, AppError> {
    let Some(sealed) = &row.secrets_sealed else { return Ok(Map::new()) };
    let plain = state
        .identity
        .secrets
        .open(sealed)
        .map_err(|e| AppError::internal(format!("channel {}: cannot open its secrets: {e}", row.id)))?;
    serde_json::from_str(&plain)
        .map_err(|e| AppError::internal(format!("channel {}: sealed secrets are not an object: {e}", row.id)))
}

/// The whole config: the shown part, then the sealed part.
fn full_config(state: &AppState, row: &ChannelRow) -> Result<Map<String, Value>, AppError> {
    let mut config = public_config(row);
    config.extend(open_secrets(state, row)?);
    Ok(config)
}

/// The channel as shown; `config` is the public part unless `full` is given.
fn view(state: &AppState, row: &ChannelRow, full: bool) -> Result<Channel, AppError> {
    let secrets = open_secrets(state, row)?;
    let mut config = public_config(row);
    let secret_fields = sorted_keys(&secrets);
    if full {
        config.extend(secrets);
    }
    Ok(Channel {
        id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        kind: row.kind.clone(),
        config,
        enabled: row.enabled,
        secret_fields,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

/// A row's config and sealed secrets from a whole config.
fn stored_parts(state: &AppState, config: Map<String, Value>) -> Result<(String, Option<String>), AppError> {
    let (public, secret) = split(config);
    let public = serde_json::to_string(&public).map_err(AppError::internal)?;
    let sealed = if secret.is_empty() {
        None
    } else {
        Some(state.identity.secrets.seal(&serde_json::to_string(&secret).map_err(AppError::internal)?))
    };
    Ok((public, sealed))
}

async fn channel_of(state: &AppState, tid: &str, cid: &str) -> Result<ChannelRow, AppError> {
    state.store.channel(tid, cid).await?.ok_or_else(|| AppError::NotFound("channel not found".into()))
}

/// The tenant's channels, oldest first, without their sensitive fields.
#[utoipa::path(get, path = "/api/tenants/{tid}/channels", tag = "platform: channels", security(("bearer" = [])),
    params(("tid" = String, Path)),
    responses((status = 200, body = [Channel]), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member", body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    tid: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &tid).await?;
    let rows = state.store.channels_of_tenant(&access.tenant.id).await?;
    let channels = rows.iter().map(|row| view(&state, row, false)).collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(channels))
}

/// Add a channel (Manager+); sensitive config fields are stored encrypted.
#[utoipa::path(post, path = "/api/tenants/{tid}/channels", tag = "platform: channels", security(("bearer" = [])),
    params(("tid" = String, Path)), request_body = CreateChannel,
    responses((status = 201, description = "The channel, without its sensitive fields", body = Channel),
        (status = 400, description = "Bad kind, config not an object or over 64 KiB, unknown field",
            body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member, or below Manager", body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError),
        (status = 409, description = "The tenant was deleted meanwhile", body = crate::http::openapi::PlainError)))]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    tid: web::Path<String>,
    body: Json<CreateChannel>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &tid).await?;
    access.require(Role::Manager)?;
    let body = body.0;
    let kind = check_kind(&body.kind)?;
    let config = check_config_object(body.config)?;
    check_config_size(&config)?;
    let fields = sorted_keys(&config);
    let (public, sealed) = stored_parts(&state, config)?;
    let now = now_ms();
    let row = ChannelRow {
        id: format!("ch_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: access.tenant.id.clone(),
        kind,
        config: public,
        secrets_sealed: sealed,
        enabled: body.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    let shown = view(&state, &row, false)?;
    state
        .store
        .submit(WriteRequest(vec![
            rows::insert_channel(row.clone()),
            accounts::audit(
                Some(&session.user.id),
                "channel.create",
                Some(&row.tenant_id),
                json!({ "channel_id": row.id, "kind": row.kind, "enabled": row.enabled, "fields": fields }),
            ),
        ]))
        .await?;
    Ok(HttpResponse::Created().json(shown))
}

/// One channel with its complete, decrypted config (Manager+; use only over TLS).
#[utoipa::path(get, path = "/api/tenants/{tid}/channels/{cid}", tag = "platform: channels", security(("bearer" = [])),
    params(("tid" = String, Path), ("cid" = String, Path)),
    responses((status = 200, description = "The channel with its decrypted config", body = Channel,
        example = json!({
            "id": "ch_0192f0c5a1b27c3d8e9f0a1b2c3d4e5f",
            "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
            "kind": "telegram",
            "config": {"bot_token": "123:ABC...", "allowed_users": [100001]},
            "enabled": true,
            "secret_fields": ["bot_token"],
            "created_at": "2026-02-21T03:00:00Z",
            "updated_at": "2026-02-21T03:00:00Z"
        })),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member, or below Manager", body = crate::http::openapi::PlainError),
        (status = 404, description = "No such tenant, or no such channel in it",
            body = crate::http::openapi::PlainError)))]
pub async fn get(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (tid, cid) = path.into_inner();
    let access = platform_tenant_access(&state, &session, &tid).await?;
    access.require(Role::Manager)?;
    let row = channel_of(&state, &access.tenant.id, &cid).await?;
    Ok(HttpResponse::Ok().json(view(&state, &row, true)?))
}

/// Change a channel (Manager+): `config` keys are merged in (`null` removes one), `enabled` replaced.
#[utoipa::path(patch, path = "/api/tenants/{tid}/channels/{cid}", tag = "platform: channels", security(("bearer" = [])),
    params(("tid" = String, Path), ("cid" = String, Path)), request_body = PatchChannel,
    responses((status = 200, description = "The channel, without its sensitive fields", body = Channel),
        (status = 400, description = "config not an object, or over 64 KiB once merged; unknown field",
            body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member, or below Manager", body = crate::http::openapi::PlainError),
        (status = 404, description = "No such tenant, or no such channel in it",
            body = crate::http::openapi::PlainError),
        (status = 409, description = "Other updates kept changing the channel meanwhile",
            body = crate::http::openapi::PlainError)))]
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
    body: Json<PatchChannel>,
) -> Result<HttpResponse, AppError> {
    let (tid, cid) = path.into_inner();
    let access = platform_tenant_access(&state, &session, &tid).await?;
    access.require(Role::Manager)?;
    let patch = body.0;
    let changes = patch.config.map(check_config_object).transpose()?;

    for _ in 0..UPDATE_ATTEMPTS {
        let seen = channel_of(&state, &access.tenant.id, &cid).await?;
        if changes.is_none() && patch.enabled.is_none() {
            return Ok(HttpResponse::Ok().json(view(&state, &seen, false)?));
        }
        let mut config = full_config(&state, &seen)?;
        for (key, value) in changes.iter().flatten() {
            if value.is_null() {
                config.shift_remove(key);
            } else {
                config.insert(key.clone(), value.clone());
            }
        }
        check_config_size(&config)?;
        let (public, sealed) = stored_parts(&state, config)?;
        let next = ChannelRow {
            config: public,
            secrets_sealed: sealed,
            enabled: patch.enabled.unwrap_or(seen.enabled),
            updated_at: now_ms().max(seen.updated_at),
            ..seen.clone()
        };
        let mut detail = json!({
            "channel_id": seen.id,
            "kind": seen.kind,
            "fields": changes.as_ref().map(sorted_keys).unwrap_or_default(),
        });
        if let Some(enabled) = patch.enabled {
            detail["enabled"] = json!(enabled);
        }
        let written = state
            .store
            .submit(WriteRequest(vec![
                rows::update_channel_if_unchanged(seen.clone(), next.clone()),
                accounts::audit(Some(&session.user.id), "channel.update", Some(&seen.tenant_id), detail),
            ]))
            .await;
        match written {
            Ok(()) => return Ok(HttpResponse::Ok().json(view(&state, &next, false)?)),
            Err(StoreError::Conflict(m)) if m == CHANGED_MEANWHILE => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(AppError::Conflict("the channel kept being changed by other requests meanwhile; try again".into()))
}

/// Remove a channel (Manager+).
#[utoipa::path(delete, path = "/api/tenants/{tid}/channels/{cid}", tag = "platform: channels", security(("bearer" = [])),
    params(("tid" = String, Path), ("cid" = String, Path)),
    responses((status = 200, description = "`{}`", body = crate::http::openapi::Empty), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member, or below Manager", body = crate::http::openapi::PlainError),
        (status = 404, description = "No such tenant, or no such channel in it",
            body = crate::http::openapi::PlainError)))]
pub async fn remove(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (tid, cid) = path.into_inner();
    let access = platform_tenant_access(&state, &session, &tid).await?;
    access.require(Role::Manager)?;
    let row = channel_of(&state, &access.tenant.id, &cid).await?;
    state
        .store
        .submit(WriteRequest(vec![
            rows::delete_channel(row.tenant_id.clone(), row.id.clone()),
            accounts::audit(
                Some(&session.user.id),
                "channel.delete",
                Some(&row.tenant_id),
                json!({ "channel_id": row.id, "kind": row.kind }),
            ),
        ]))
        .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tenants/{tid}/channels").route(web::get().to(list)).route(web::post().to(create)),
    )
    .service(
        web::resource("/tenants/{tid}/channels/{cid}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(remove)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn sensitive_keys() {
        for k in [
            "bot_token",
            "BOT_TOKEN",
            "password",
            "Password",
            "access_token",
            "signing_secret",
            "api_key",
            "apiKey",
            "TOKEN",
            "db_password",
            "webhookSecret",
        ] {
            assert!(is_sensitive_key(k), "{k}");
        }
        for k in ["allowed_users", "channel", "chat_id", "name", "url", "pass", "username"] {
            assert!(!is_sensitive_key(k), "{k}");
        }
    }

    #[test]
    fn split_keeps_plain_fields_and_moves_sensitive_ones_whole() {
        let (public, secret) = split(map(json!({
            "bot_token": "123:ABC",
            "allowed_users": [1, 2],
            "smtp": {"host": "mail", "auth": {"Password": "pw"}},
            "hooks": [{"url": "u"}, {"url": "v", "secret": "s"}],
            "plain": {"host": "h", "port": 1},
            "n": null
        })));
        assert_eq!(
            Value::Object(public),
            json!({"allowed_users": [1, 2], "plain": {"host": "h", "port": 1}, "n": null})
        );
        assert_eq!(sorted_keys(&secret), vec!["bot_token", "hooks", "smtp"]);
        assert_eq!(secret["smtp"], json!({"host": "mail", "auth": {"Password": "pw"}}));
    }

    #[test]
    fn kinds_are_lowercase_slugs() {
        for ok in ["telegram", "a", "slack-2", "web_chat", &format!("a{}", "b".repeat(31))] {
            assert_eq!(check_kind(ok).unwrap(), ok);
        }
        for bad in ["", "Telegram", "1abc", "-x", "tele gram", "télégram", "x.y", &"a".repeat(33)] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configs_are_objects_of_at_most_64_kib() {
        assert!(check_config_object(json!([1])).is_err());
        assert!(check_config_object(json!("x")).is_err());
        assert!(check_config_object(json!(null)).is_err());
        // {"a":"..."} is 8 bytes plus the string.
        let fits = map(json!({"a": "x".repeat(MAX_CONFIG_BYTES - 8)}));
        assert!(check_config_size(&fits).is_ok());
        let over = map(json!({"a": "x".repeat(MAX_CONFIG_BYTES - 7)}));
        assert!(check_config_size(&over).is_err());
    }

    #[test]
    fn null_config_is_present_and_absent_is_not() {
        let p: PatchChannel = serde_json::from_str(r#"{"config": null}"#).unwrap();
        assert_eq!(p.config, Some(Value::Null));
        let p: PatchChannel = serde_json::from_str(r#"{"enabled": false}"#).unwrap();
        assert_eq!((p.config, p.enabled), (None, Some(false)));
        assert!(serde_json::from_str::<PatchChannel>(r#"{"kind": "x"}"#).is_err());
    }
}
