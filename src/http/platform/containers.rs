//! A tenant's container (platform-api.md "Tenants", extensions "Platform API
//! additions"): deploy, restart, stop, status, logs, pairing code and exec.
//! The container is the tenant's `TenantActor`; these handlers only check
//! the caller and ask it.

use actix_web::{web, HttpResponse};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::agents::config::TenantConfig;
use crate::error::AppError;
use crate::http::auth::{platform_tenant_access, Session, TenantAccess};
use crate::http::extract::Json;
use crate::identity::accounts;
use crate::identity::model::Role;
use crate::startup::AppState;
use crate::store::identity as rows;
use crate::store::{now_ms, WriteRequest};

/// The commands the runtime understands; anything else is refused.
pub const COMMANDS: [&str; 4] = ["zeroclaw status", "zeroclaw sessions", "zeroclaw config", "zeroclaw help"];
/// The longest command accepted (and audited in full).
const MAX_COMMAND_CHARS: usize = 1_000;
pub const DEFAULT_TAIL: usize = 50;
pub const MAX_TAIL: usize = 1_000;

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "running", "uptime": 86400, "port": 8421}))]
pub struct ContainerStatus {
    /// `draft | deploying | running | stopped | error`
    #[schema(example = "running")]
    pub status: String,
    /// Seconds since it became `running`; null otherwise.
    #[schema(example = 86400)]
    pub uptime: Option<u64>,
    /// The `process` runtime's loopback port; null on `embedded`.
    #[schema(example = 8421)]
    pub port: Option<u16>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"pairing_code": "ZERO-7F3A-9B2C"}))]
pub struct PairingCode {
    #[schema(example = "ZERO-7F3A-9B2C")]
    pub pairing_code: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"command": "zeroclaw status"}))]
pub struct ExecRequest {
    #[schema(example = "zeroclaw status")]
    pub command: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"output": "Agent running. Uptime: 2h 14m. Provider: openai/gpt-4o-mini. Runtime: embedded."}))]
pub struct ExecOutput {
    #[schema(example = "Agent running. Uptime: 2h 14m. Provider: openai/gpt-4o-mini. Runtime: embedded.")]
    pub output: String,
}

#[derive(Deserialize, IntoParams)]
pub struct LogsQuery {
    /// Lines from the end, 1 to 1000 (default 50).
    pub tail: Option<String>,
}

async fn audit(
    state: &AppState,
    session: &Session,
    action: &str,
    tenant: &str,
    detail: Value,
) -> Result<(), AppError> {
    let entry = accounts::audit(Some(&session.user.id), action, Some(tenant), detail);
    state.store.submit(WriteRequest(vec![entry])).await?;
    Ok(())
}

async fn manager(state: &AppState, session: &Session, id: &str) -> Result<TenantAccess, AppError> {
    let access = platform_tenant_access(state, session, id).await?;
    access.require(Role::Manager)?;
    Ok(access)
}

/// What an operator can do to a tenant's runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Deploy,
    Restart,
    Stop,
}

impl Control {
    pub fn parse(raw: &str) -> Option<Control> {
        match raw {
            "deploy" => Some(Control::Deploy),
            "restart" => Some(Control::Restart),
            "stop" => Some(Control::Stop),
            _ => None,
        }
    }
}

/// Deploys, restarts or stops tenant `id` for a Manager (or a super-admin),
/// and records it in the audit log. The API and the operator console both come here.
pub async fn control(state: &AppState, session: &Session, id: &str, what: Control) -> Result<(), AppError> {
    let access = manager(state, session, id).await?;
    let tenant = &access.tenant.id;
    let action = match what {
        Control::Deploy => {
            state.agents.deploy(tenant).await?;
            "tenant.deploy"
        }
        Control::Restart => {
            state.agents.restart(tenant).await?;
            "tenant.restart"
        }
        Control::Stop => {
            state.agents.stop(tenant).await?;
            "tenant.stop"
        }
    };
    audit(state, session, action, tenant, json!({})).await
}

/// Provision and start the container; idempotent while deploying or running.
#[utoipa::path(post, path = "/api/tenants/{id}/deploy", tag = "platform: containers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "`{}`: recorded as `deploying`; it becomes `running` in the background", body = crate::http::openapi::Empty),
        (status = 401, body = crate::http::openapi::PlainError), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn deploy(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    control(&state, &session, &id, Control::Deploy).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

/// Stop the runtime and start it again.
#[utoipa::path(post, path = "/api/tenants/{id}/restart", tag = "platform: containers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "`{}`: recorded as `deploying`", body = crate::http::openapi::Empty),
        (status = 401, body = crate::http::openapi::PlainError), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError),
        (status = 409, description = "A draft tenant was never deployed", body = crate::http::openapi::PlainError)))]
pub async fn restart(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    control(&state, &session, &id, Control::Restart).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

/// Stop the runtime; no process of it is left.
#[utoipa::path(post, path = "/api/tenants/{id}/stop", tag = "platform: containers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "`{}`: stopped", body = crate::http::openapi::Empty),
        (status = 401, body = crate::http::openapi::PlainError), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError),
        (status = 409, description = "A draft tenant was never deployed", body = crate::http::openapi::PlainError)))]
pub async fn stop(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    control(&state, &session, &id, Control::Stop).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

/// The container's state, uptime and port.
#[utoipa::path(get, path = "/api/tenants/{id}/status", tag = "platform: containers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ContainerStatus), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, body = crate::http::openapi::PlainError), (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn status(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &id).await?;
    let c = state.agents.inspect(&access.tenant.id).await?;
    Ok(HttpResponse::Ok().json(ContainerStatus {
        status: c.status.as_str().to_string(),
        uptime: c.uptime_secs(now_ms()),
        port: c.port,
    }))
}

/// The last lines of the container's log, oldest first.
#[utoipa::path(get, path = "/api/tenants/{id}/logs", tag = "platform: containers", security(("bearer" = [])),
    params(("id" = String, Path), LogsQuery),
    responses((status = 200, body = [String], example = json!(["2026-02-21T03:00:01Z [INFO] Agent started"])),
        (status = 400, description = "`tail` is not 1 to 1000", body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn logs(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    query: web::Query<LogsQuery>,
) -> Result<HttpResponse, AppError> {
    let access = platform_tenant_access(&state, &session, &id).await?;
    let tail = match query.tail.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_TAIL,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_TAIL).contains(&n) => n,
            _ => {
                return Err(AppError::BadRequest(format!("tail must be a whole number from 1 to {MAX_TAIL}")))
            }
        },
    };
    let log = state.agents.log(&access.tenant.id);
    let lines = web::block(move || log.tail(tail))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::internal(format!("cannot read the tenant log: {e}")))?;
    Ok(HttpResponse::Ok().json(lines))
}

fn new_pairing_code() -> String {
    let mut raw = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let hex = hex::encode_upper(raw);
    format!("ZERO-{}-{}", &hex[..4], &hex[4..])
}

/// The code that pairs a device with the tenant's agent (made on first read).
#[utoipa::path(get, path = "/api/tenants/{id}/pairing-code", tag = "platform: containers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PairingCode), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, body = crate::http::openapi::PlainError), (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn pairing_code(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let access = manager(&state, &session, &id).await?;
    let mut sealed = access.tenant.pairing_code_sealed.clone();
    if sealed.is_none() {
        let fresh = state.identity.secrets.seal(&new_pairing_code());
        state
            .store
            .submit(WriteRequest(vec![rows::set_pairing_code(access.tenant.id.clone(), fresh, true)]))
            .await?;
        // Two first reads at once: the one written first wins for both.
        let tenant = state.store.existing_tenant(&access.tenant.id).await?;
        sealed = tenant.pairing_code_sealed;
    }
    let sealed = sealed.ok_or_else(|| AppError::internal("pairing code missing after it was written"))?;
    let code = state.identity.secrets.open(&sealed).map_err(AppError::internal)?;
    Ok(HttpResponse::Ok().json(PairingCode { pairing_code: code }))
}

/// Replace the pairing code; the old one stops working.
#[utoipa::path(post, path = "/api/tenants/{id}/reset-pairing", tag = "platform: containers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PairingCode), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, body = crate::http::openapi::PlainError), (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn reset_pairing(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let access = manager(&state, &session, &id).await?;
    let code = new_pairing_code();
    let sealed = state.identity.secrets.seal(&code);
    state
        .store
        .submit(WriteRequest(vec![
            rows::set_pairing_code(access.tenant.id.clone(), sealed, false),
            accounts::audit(
                Some(&session.user.id),
                "tenant.pairing_reset",
                Some(&access.tenant.id),
                json!({}),
            ),
        ]))
        .await?;
    Ok(HttpResponse::Ok().json(PairingCode { pairing_code: code }))
}

/// `zeroclaw status` and friends, with runs of spaces and letter case forgiven.
fn parse_command(raw: &str) -> Option<&'static str> {
    let words: Vec<String> = raw.split_whitespace().map(str::to_ascii_lowercase).collect();
    let joined = words.join(" ");
    COMMANDS.iter().copied().find(|c| *c == joined)
}

fn duration_words(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

/// Run one of the runtime's own commands (never a host shell). Every call is audited.
#[utoipa::path(post, path = "/api/tenants/{id}/exec", tag = "platform: containers", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ExecRequest,
    responses((status = 200, body = ExecOutput),
        (status = 400, description = "Not one of the runtime's commands; the error lists them", body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError), (status = 403, body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn exec(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    body: Json<ExecRequest>,
) -> Result<HttpResponse, AppError> {
    let access = manager(&state, &session, &id).await?;
    let raw = body.0.command;
    let shown: String = raw.chars().take(MAX_COMMAND_CHARS).collect();
    let command = if raw.chars().count() > MAX_COMMAND_CHARS { None } else { parse_command(&raw) };
    // Audited before anything runs, refused attempts included.
    audit(
        &state,
        &session,
        "tenant.exec",
        &access.tenant.id,
        json!({ "command": shown, "accepted": command.is_some() }),
    )
    .await?;
    let Some(command) = command else {
        return Err(AppError::BadRequest(format!(
            "unknown command {shown:?}: the runtime understands only {}",
            COMMANDS.join(", ")
        )));
    };
    let output = run_command(&state, &access, command).await?;
    Ok(HttpResponse::Ok().json(ExecOutput { output }))
}

async fn run_command(state: &AppState, access: &TenantAccess, command: &str) -> Result<String, AppError> {
    let tenant = &access.tenant;
    let config = TenantConfig::from_stored(&tenant.id, &tenant.config);
    let provider = format!(
        "{}/{}",
        config.provider(),
        config.model.as_deref().unwrap_or(crate::agents::config::DEFAULT_MODEL)
    );
    match command {
        "zeroclaw help" => Ok(format!(
            "Commands: {}. status: the agent's state, uptime, provider and runtime; sessions: the most recent \
             conversations; config: the agent's configuration (the API key is never shown).",
            COMMANDS.join(", ")
        )),
        "zeroclaw status" => {
            let c = state.agents.inspect(&tenant.id).await?;
            let mut out = match c.uptime_secs(now_ms()) {
                Some(up) => format!("Agent running. Uptime: {}. Provider: {provider}.", duration_words(up)),
                None => format!("Agent {}. Provider: {provider}.", c.status.as_str()),
            };
            match (c.pid, c.port) {
                (Some(pid), Some(port)) => {
                    out.push_str(&format!(" Runtime: {} (pid {pid}, port {port}).", c.runtime));
                    if let Some(Ok(child)) = state.agents.child_status(&tenant.id).await? {
                        let n = |k: &str| child.get(k).and_then(Value::as_u64).unwrap_or(0);
                        out.push_str(&format!(
                            " Turns: {}, tokens: {}, provider failures: {}.",
                            n("turns"),
                            n("tokens"),
                            n("provider_failures")
                        ));
                    }
                }
                _ => out.push_str(&format!(" Runtime: {}.", c.runtime)),
            }
            Ok(out)
        }
        "zeroclaw sessions" => {
            let sessions = state.store.recent_sessions(tenant.id.clone(), 20).await?;
            if sessions.is_empty() {
                return Ok("No sessions yet.".into());
            }
            let mut out = format!("{} most recent sessions:", sessions.len());
            for s in sessions {
                out.push_str(&format!(
                    "\n{} / {}: {} messages, last at {}",
                    s.cerebral_name.unwrap_or(s.cerebral_id),
                    s.session_id,
                    s.messages,
                    crate::http::agent::api_keys::rfc3339(s.last_at)
                ));
            }
            Ok(out)
        }
        "zeroclaw config" => {
            let mut shown = serde_json::to_value(&config).map_err(AppError::internal)?;
            shown["api_key"] = json!(if tenant.provider_api_key_sealed.is_some() { "set" } else { "not set" });
            Ok(serde_json::to_string_pretty(&shown).map_err(AppError::internal)?)
        }
        other => Err(AppError::internal(format!("command {other:?} listed but not implemented"))),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/deploy", web::post().to(deploy))
        .route("/tenants/{id}/restart", web::post().to(restart))
        .route("/tenants/{id}/stop", web::post().to(stop))
        .route("/tenants/{id}/status", web::get().to(status))
        .route("/tenants/{id}/logs", web::get().to(logs))
        .route("/tenants/{id}/pairing-code", web::get().to(pairing_code))
        .route("/tenants/{id}/reset-pairing", web::post().to(reset_pairing))
        .route("/tenants/{id}/exec", web::post().to(exec));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runtime_commands_parse() {
        assert_eq!(parse_command("zeroclaw status"), Some("zeroclaw status"));
        assert_eq!(parse_command("  ZeroClaw   Sessions "), Some("zeroclaw sessions"));
        for bad in [
            "",
            "ls",
            "zeroclaw",
            "zeroclaw status; rm -rf /",
            "sh -c 'zeroclaw status'",
            "zeroclaw status extra",
        ] {
            assert_eq!(parse_command(bad), None, "{bad}");
        }
    }

    #[test]
    fn pairing_codes_have_the_documented_shape() {
        let re = regex::Regex::new("^ZERO-[0-9A-F]{4}-[0-9A-F]{4}$").unwrap();
        for _ in 0..50 {
            assert!(re.is_match(&new_pairing_code()));
        }
    }

    #[test]
    fn uptimes_read_well() {
        assert_eq!(duration_words(42), "42s");
        assert_eq!(duration_words(8_040), "2h 14m");
        assert_eq!(duration_words(90_061), "1d 1h 1m");
    }
}
