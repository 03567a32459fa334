//! `/api/monitoring/*` and `/api/tenants/{id}/resources`: the fleet as
//! operators watch it. Counts, health, the audit log and the fleet's
//! resources are for super-admins; usage and one tenant's resources for its
//! members too.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::AppError;
use crate::http::agent::api_keys::rfc3339;
use crate::http::auth::{platform_tenant_access, Session};
use crate::startup::AppState;
use crate::store::monitoring::{AuditFilter, ResourceRow};
use crate::store::now_ms;
use crate::store::sessions::HOUR_MS;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * HOUR_MS;

// ---- dashboard ---------------------------------------------------------------

/// Tenants by status, users and channels, from the database.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "total_tenants": 47,
    "running": 43,
    "stopped": 3,
    "error": 1,
    "draft": 0,
    "deploying": 0,
    "total_users": 62,
    "total_channels": 89
}))]
pub struct Dashboard {
    #[schema(example = 47)]
    pub total_tenants: i64,
    #[schema(example = 43)]
    pub running: i64,
    #[schema(example = 3)]
    pub stopped: i64,
    #[schema(example = 1)]
    pub error: i64,
    pub draft: i64,
    pub deploying: i64,
    #[schema(example = 62)]
    pub total_users: i64,
    #[schema(example = 89)]
    pub total_channels: i64,
}

/// Fleet summary: tenants per status, users and channels.
#[utoipa::path(get, path = "/api/monitoring/dashboard", tag = "platform: monitoring", security(("bearer" = [])),
    responses((status = 200, body = Dashboard), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a super-admin", body = crate::http::openapi::PlainError)))]
pub async fn dashboard(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let counts = state.store.fleet_counts().await?;
    Ok(HttpResponse::Ok().json(Dashboard {
        total_tenants: counts.tenants(),
        running: counts.with_status("running"),
        stopped: counts.with_status("stopped"),
        error: counts.with_status("error"),
        draft: counts.with_status("draft"),
        deploying: counts.with_status("deploying"),
        total_users: counts.users,
        total_channels: counts.channels,
    }))
}

// ---- health ------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20", "name": "Acme Corp", "status": "running", "uptime": 172800}))]
pub struct TenantHealth {
    pub tenant_id: String,
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// `draft | deploying | running | stopped | error`: the live container's,
    /// else the stored status.
    #[schema(example = "running")]
    pub status: String,
    /// Seconds since the container became `running`; null unless it runs.
    #[schema(example = 172800)]
    pub uptime: Option<u64>,
}

/// Every tenant's container status and uptime.
#[utoipa::path(get, path = "/api/monitoring/health", tag = "platform: monitoring", security(("bearer" = [])),
    responses((status = 200, body = [TenantHealth]), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a super-admin", body = crate::http::openapi::PlainError)))]
pub async fn health(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let now = now_ms();
    let fleet: Vec<TenantHealth> = state
        .store
        .tenants_all()
        .await?
        .into_iter()
        .map(|t| {
            let (status, uptime) = match state.agents.container(&t.id) {
                Some(c) => (c.status.as_str().to_string(), c.uptime_secs(now)),
                None => (t.status, None),
            };
            TenantHealth { tenant_id: t.id, name: t.name, status, uptime }
        })
        .collect();
    Ok(HttpResponse::Ok().json(fleet))
}

// ---- usage -------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// One tenant (a member's own, any for a super-admin); omitted: every
    /// tenant for a super-admin, else the caller's tenants.
    pub tenant_id: Option<String>,
    /// How many days back, 1–90; default 30.
    pub days: Option<String>,
}

/// One tenant's hour of Agent API usage.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "hour": "2026-02-21T03:00:00Z",
    "messages_total": 142,
    "tokens_input": 28400,
    "tokens_output": 14200
}))]
pub struct UsageEntry {
    pub tenant_id: String,
    /// The UTC hour's start.
    #[schema(example = "2026-02-21T03:00:00Z")]
    pub hour: String,
    #[schema(example = 142)]
    pub messages_total: i64,
    #[schema(example = 28400)]
    pub tokens_input: i64,
    #[schema(example = 14200)]
    pub tokens_output: i64,
}

fn parse_days(raw: Option<&str>) -> Result<i64, AppError> {
    match raw {
        None => Ok(30),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if (1..=90).contains(&n) => Ok(n),
            _ => Err(AppError::BadRequest(format!("days must be an integer from 1 to 90, not {s:?}"))),
        },
    }
}

/// Hourly messages and tokens, by hour then tenant.
#[utoipa::path(get, path = "/api/monitoring/usage", tag = "platform: monitoring", security(("bearer" = [])),
    params(UsageQuery),
    responses((status = 200, body = [UsageEntry]), (status = 400, description = "Bad `days`", body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member of the tenant", body = crate::http::openapi::PlainError),
        (status = 404, description = "No such tenant", body = crate::http::openapi::PlainError)))]
pub async fn usage(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let days = parse_days(q.days.as_deref())?;
    let tenants = match q.tenant_id.as_deref().map(str::trim) {
        Some(id) => Some(vec![platform_tenant_access(&state, &session, id).await?.tenant.id]),
        None if session.is_super_admin() => None,
        None => Some(
            state.store.tenants_of_user(&session.user.id).await?.into_iter().map(|(_, t)| t.id).collect(),
        ),
    };
    // Every hour that overlaps the last `days` days.
    let since = now_ms() - days * DAY_MS;
    let since_hour = since - since.rem_euclid(HOUR_MS);
    let entries: Vec<UsageEntry> = state
        .store
        .usage_hours(tenants, since_hour)
        .await?
        .into_iter()
        .map(|u| UsageEntry {
            tenant_id: u.tenant_id,
            hour: rfc3339(u.hour_start),
            messages_total: u.messages,
            tokens_input: u.tokens_input,
            tokens_output: u.tokens_output,
        })
        .collect();
    Ok(HttpResponse::Ok().json(entries))
}

// ---- audit -------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From 1; default 1.
    pub page: Option<String>,
    /// 1–200; default 50.
    pub per_page: Option<String>,
    /// An action (`tenant.deploy`) or its last segment (`deploy`).
    pub action: Option<String>,
    /// RFC 3339: entries at or after it.
    pub since: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    #[schema(example = "aud_01abc")]
    pub id: String,
    /// Null for the system's own actions.
    pub actor_id: Option<String>,
    #[schema(example = "tenant.deploy")]
    pub action: String,
    pub tenant_id: Option<String>,
    /// The entry's details: a JSON object, as text.
    #[schema(example = "{}")]
    pub detail: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "entries": [{
        "id": "aud_0193a6f3e21c7b4a9d8e7f6a5b4c3d21",
        "actor_id": "usr_0193a6e24b7c7e109d2f5a8b3c4d1e21",
        "action": "tenant.deploy",
        "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
        "detail": "{}",
        "created_at": "2026-02-21T03:15:00Z"
    }],
    "total": 1204,
    "page": 1,
    "per_page": 50
}))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    #[schema(example = 1204)]
    pub total: i64,
    #[schema(example = 1)]
    pub page: i64,
    #[schema(example = 50)]
    pub per_page: i64,
}

const MAX_ACTION_CHARS: usize = 100;

fn parse_int(
    name: &str,
    raw: Option<&str>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, AppError> {
    match raw {
        None => Ok(default),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(AppError::BadRequest(if *range.end() == i64::MAX {
                format!("{name} must be an integer from {} up, not {s:?}", range.start())
            } else {
                format!("{name} must be an integer from {} to {}, not {s:?}", range.start(), range.end())
            })),
        },
    }
}

fn parse_since(raw: Option<&str>) -> Result<Option<i64>, AppError> {
    raw.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s.trim()).map(|t| t.timestamp_millis()).map_err(|_| {
            AppError::BadRequest(format!("since must be an RFC 3339 time (2026-02-01T00:00:00Z), not {s:?}"))
        })
    })
    .transpose()
}

fn parse_action(raw: Option<&str>) -> Result<Option<String>, AppError> {
    raw.map(|s| {
        let action = s.trim();
        if action.is_empty() || action.chars().count() > MAX_ACTION_CHARS {
            return Err(AppError::BadRequest(format!("action must be 1–{MAX_ACTION_CHARS} characters")));
        }
        Ok(action.to_string())
    })
    .transpose()
}

/// The audit log, newest first, a page at a time.
#[utoipa::path(get, path = "/api/monitoring/audit", tag = "platform: monitoring", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, description = "Bad paging or filter", body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a super-admin", body = crate::http::openapi::PlainError)))]
pub async fn audit(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let q = query.into_inner();
    let page = parse_int("page", q.page.as_deref(), 1, 1..=i64::MAX)?;
    let per_page = parse_int("per_page", q.per_page.as_deref(), 50, 1..=200)?;
    let offset = (page - 1)
        .checked_mul(per_page)
        .ok_or_else(|| AppError::BadRequest(format!("page {page} is beyond any audit log")))?;
    let filter = AuditFilter {
        action: parse_action(q.action.as_deref())?,
        since_ms: parse_since(q.since.as_deref())?,
        limit: per_page,
        offset,
    };
    let (rows, total) = state.store.audit_page(filter).await?;
    let entries = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            actor_id: r.actor_id,
            action: r.action,
            tenant_id: r.tenant_id,
            detail: r.detail,
            created_at: rfc3339(r.created_at),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage { entries, total, page, per_page }))
}

// ---- resources -----------------------------------------------------------------

/// A tenant's latest resource sample; null where its runtime has no figure.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "cpu_pct": 0.3,
    "mem_bytes": 7340032,
    "mem_limit": 536870912,
    "disk_bytes": 52428800,
    "net_in": 1024,
    "net_out": 2048,
    "pids": 4,
    "recorded_at": "2026-02-21T03:14:00Z"
}))]
pub struct ResourceSummary {
    pub tenant_id: String,
    #[schema(example = 0.3)]
    pub cpu_pct: Option<f64>,
    #[schema(example = 7340032)]
    pub mem_bytes: Option<i64>,
    #[schema(example = 536870912)]
    pub mem_limit: Option<i64>,
    #[schema(example = 52428800)]
    pub disk_bytes: Option<i64>,
    pub net_in: Option<i64>,
    pub net_out: Option<i64>,
    #[schema(example = 4)]
    pub pids: Option<i64>,
    #[schema(example = "2026-02-21T03:14:00Z")]
    pub recorded_at: String,
}

impl From<ResourceRow> for ResourceSummary {
    fn from(r: ResourceRow) -> Self {
        ResourceSummary {
            tenant_id: r.tenant_id,
            cpu_pct: r.cpu_pct,
            mem_bytes: r.mem_bytes,
            mem_limit: r.mem_limit,
            disk_bytes: r.disk_bytes,
            net_in: r.net_in,
            net_out: r.net_out,
            pids: r.pids,
            recorded_at: rfc3339(r.recorded_at),
        }
    }
}

/// The latest resource sample of every tenant that has one.
#[utoipa::path(get, path = "/api/monitoring/resources", tag = "platform: monitoring", security(("bearer" = [])),
    responses((status = 200, body = [ResourceSummary]), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a super-admin", body = crate::http::openapi::PlainError)))]
pub async fn resources(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let latest: Vec<ResourceSummary> =
        state.store.latest_resources().await?.into_iter().map(ResourceSummary::from).collect();
    Ok(HttpResponse::Ok().json(latest))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResourcesQuery {
    /// `1h`, `6h`, `24h` (default) or `7d`.
    pub range: Option<String>,
}

/// The latest figures; all null when there is no sample.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CurrentResources {
    #[schema(example = 0.3)]
    pub cpu_pct: Option<f64>,
    #[schema(example = 7340032)]
    pub mem_bytes: Option<i64>,
    #[schema(example = 52428800)]
    pub disk_bytes: Option<i64>,
}

/// A bucket's averages (1 min for 1h, 5 min for 6h, 15 min for 24h, 1 h for 7d).
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct ResourcePoint {
    /// The bucket's start.
    #[schema(example = "2026-02-21T03:00:00Z")]
    pub ts: String,
    #[schema(example = 0.3)]
    pub cpu_pct: Option<f64>,
    #[schema(example = 7340032)]
    pub mem_bytes: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "current": {"cpu_pct": 0.3, "mem_bytes": 7340032, "disk_bytes": 52428800},
    "history": [
        {"ts": "2026-02-21T02:00:00Z", "cpu_pct": 0.1, "mem_bytes": 7200000},
        {"ts": "2026-02-21T03:00:00Z", "cpu_pct": 0.3, "mem_bytes": 7340032}
    ]
}))]
pub struct TenantResources {
    pub current: CurrentResources,
    /// Oldest first.
    pub history: Vec<ResourcePoint>,
}

/// `(window, bucket)` in ms of a `range`.
fn range_of(raw: Option<&str>) -> Result<(i64, i64), AppError> {
    match raw.map(str::trim).unwrap_or("24h") {
        "1h" => Ok((HOUR_MS, MINUTE_MS)),
        "6h" => Ok((6 * HOUR_MS, 5 * MINUTE_MS)),
        "24h" => Ok((DAY_MS, 15 * MINUTE_MS)),
        "7d" => Ok((7 * DAY_MS, HOUR_MS)),
        other => Err(AppError::BadRequest(format!("range must be 1h, 6h, 24h or 7d, not {other:?}"))),
    }
}

/// Averages samples (oldest first) into buckets of `bucket_ms`; a bucket's
/// figure is null when none of its samples has one.
fn buckets(samples: &[(i64, Option<f64>, Option<i64>)], bucket_ms: i64) -> Vec<ResourcePoint> {
    #[derive(Default)]
    struct Sums {
        cpu: f64,
        cpu_n: u32,
        mem: i128,
        mem_n: i128,
    }
    let mut by_start: BTreeMap<i64, Sums> = BTreeMap::new();
    for &(at, cpu, mem) in samples {
        let sums = by_start.entry(at - at.rem_euclid(bucket_ms)).or_default();
        if let Some(cpu) = cpu {
            sums.cpu += cpu;
            sums.cpu_n += 1;
        }
        if let Some(mem) = mem {
            sums.mem += i128::from(mem);
            sums.mem_n += 1;
        }
    }
    by_start
        .into_iter()
        .map(|(start, s)| ResourcePoint {
            ts: rfc3339(start),
            cpu_pct: (s.cpu_n > 0).then(|| s.cpu / f64::from(s.cpu_n)),
            mem_bytes: (s.mem_n > 0).then(|| (s.mem / s.mem_n) as i64),
        })
        .collect()
}

/// A tenant's latest figures and their history over `range`.
#[utoipa::path(get, path = "/api/tenants/{id}/resources", tag = "platform: monitoring", security(("bearer" = [])),
    params(("id" = String, Path), ResourcesQuery),
    responses((status = 200, body = TenantResources), (status = 400, description = "Bad `range`", body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a member", body = crate::http::openapi::PlainError),
        (status = 404, body = crate::http::openapi::PlainError)))]
pub async fn tenant_resources(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    query: web::Query<ResourcesQuery>,
) -> Result<HttpResponse, AppError> {
    let (window, bucket) = range_of(query.range.as_deref())?;
    let access = platform_tenant_access(&state, &session, &id).await?;
    let tenant_id = access.tenant.id;
    let current = match state.store.latest_resource(&tenant_id).await? {
        Some(r) => CurrentResources { cpu_pct: r.cpu_pct, mem_bytes: r.mem_bytes, disk_bytes: r.disk_bytes },
        None => CurrentResources::default(),
    };
    let since = now_ms() - window;
    // Nothing older than the range: the first bucket may be partial (its `ts` is still its start).
    let samples = state.store.resource_history(&tenant_id, since).await?;
    Ok(HttpResponse::Ok().json(TenantResources { current, history: buckets(&samples, bucket) }))
}

/// Each actor kind as `/metrics` counts it.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "kind": "escalation",
    "alive": 12,
    "messages_handled": 4821,
    "messages_waiting": 0,
    "handler_latency_p50_seconds": 0.0005,
    "handler_latency_p99_seconds": 0.005
}))]
pub struct ActorKindStats {
    #[schema(example = "escalation")]
    pub kind: String,
    /// Actors of the kind alive now.
    pub alive: i64,
    pub messages_handled: u64,
    /// Messages sent and not yet handled.
    pub messages_waiting: i64,
    /// Upper bounds of the latency buckets the percentiles fall in; null before any message.
    pub handler_latency_p50_seconds: Option<f64>,
    pub handler_latency_p99_seconds: Option<f64>,
}

/// How many actors of each kind are alive, what they handled, what waits,
/// and their handler latency (extensions "Platform API additions").
#[utoipa::path(get, path = "/api/monitoring/actors", tag = "platform: monitoring", security(("bearer" = [])),
    responses((status = 200, body = [ActorKindStats]), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a super-admin", body = crate::http::openapi::PlainError)))]
pub async fn actors(session: Session) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let mut kinds: Vec<ActorKindStats> = switchboard_actors::instrument::ActorKind::all_stats()
        .into_iter()
        .map(|s| ActorKindStats {
            kind: s.kind.to_string(),
            alive: s.alive,
            messages_handled: s.messages_handled,
            messages_waiting: s.messages_waiting,
            handler_latency_p50_seconds: s.handler_latency_p50_seconds,
            handler_latency_p99_seconds: s.handler_latency_p99_seconds,
        })
        .collect();
    kinds.sort_by(|a, b| a.kind.cmp(&b.kind));
    Ok(HttpResponse::Ok().json(kinds))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/monitoring/actors").route(web::get().to(actors)))
        .service(web::resource("/monitoring/dashboard").route(web::get().to(dashboard)))
        .service(web::resource("/monitoring/health").route(web::get().to(health)))
        .service(web::resource("/monitoring/usage").route(web::get().to(usage)))
        .service(web::resource("/monitoring/audit").route(web::get().to(audit)))
        .service(web::resource("/monitoring/resources").route(web::get().to(resources)))
        .service(web::resource("/tenants/{id}/resources").route(web::get().to(tenant_resources)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_average_into_bucket_starts() {
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS;
        let samples = [
            (t0 + 1_000, Some(1.0), Some(100)),
            (t0 + 30_000, Some(3.0), None),
            (t0 + 59_999, None, Some(300)),
            (t0 + MINUTE_MS, None, None),
            (t0 + 3 * MINUTE_MS + 5, Some(0.5), Some(7)),
        ];
        assert_eq!(
            buckets(&samples, MINUTE_MS),
            vec![
                ResourcePoint { ts: rfc3339(t0), cpu_pct: Some(2.0), mem_bytes: Some(200) },
                ResourcePoint { ts: rfc3339(t0 + MINUTE_MS), cpu_pct: None, mem_bytes: None },
                ResourcePoint { ts: rfc3339(t0 + 3 * MINUTE_MS), cpu_pct: Some(0.5), mem_bytes: Some(7) },
            ]
        );
        assert!(buckets(&[], HOUR_MS).is_empty());
    }

    #[test]
    fn ranges_and_their_buckets() {
        assert_eq!(range_of(None).unwrap(), (DAY_MS, 15 * MINUTE_MS));
        assert_eq!(range_of(Some("1h")).unwrap(), (HOUR_MS, MINUTE_MS));
        assert_eq!(range_of(Some("6h")).unwrap(), (6 * HOUR_MS, 5 * MINUTE_MS));
        assert_eq!(range_of(Some("7d")).unwrap(), (7 * DAY_MS, HOUR_MS));
        for bad in ["", "2h", "24H", "1d", "-1h"] {
            assert!(range_of(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn paging_values() {
        assert_eq!(parse_int("page", None, 1, 1..=i64::MAX).unwrap(), 1);
        assert_eq!(parse_int("per_page", Some(" 200 "), 50, 1..=200).unwrap(), 200);
        for bad in ["0", "201", "-1", "x", "1.5", ""] {
            assert!(parse_int("per_page", Some(bad), 50, 1..=200).is_err(), "{bad}");
        }
        assert_eq!(parse_since(Some("2026-02-01T00:00:00Z")).unwrap(), Some(1_769_904_000_000));
        assert_eq!(parse_since(Some("2026-02-01T01:00:00+01:00")).unwrap(), Some(1_769_904_000_000));
        assert!(parse_since(Some("2026-02-01")).is_err());
        assert_eq!(parse_days(None).unwrap(), 30);
        assert!(parse_days(Some("91")).is_err() && parse_days(Some("0")).is_err());
    }
}
