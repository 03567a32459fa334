//! `/api/monitoring/*` and `/api/tenants/{id}/resources`: the fleet as
//! operators watch it. Counts, health, the audit log, the fleet's resources,
//! the routing picture and webhook deliveries are for super-admins; usage and
//! one tenant's resources for its members too.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use switchboard_actors::records::DeliveryStatus;
use switchboard_actors::routing::Owner;
use utoipa::{IntoParams, ToSchema};

use crate::error::AppError;
use crate::http::agent::api_keys::rfc3339;
use crate::http::auth::{platform_tenant_access, Session};
use crate::startup::{AppState, RESOLUTION_BUCKETS, SECONDS_BUCKETS};
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

// ---- routing -----------------------------------------------------------------

/// How many of the most loaded experts the routing picture lists.
const EXPERT_LOADS: usize = 100;

/// The `/metrics` families the routing picture reads.
const TIME_TO_ROUTE: &str = "switchboard_routing_time_to_route_seconds";
const RESOLUTION_TIME: &str = "switchboard_escalation_resolution_seconds";

/// Cases waiting for an expert in one domain at one priority.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"domain": "tax.us", "priority": "urgent", "depth": 3}))]
pub struct QueueDepth {
    #[schema(example = "tax.us")]
    pub domain: String,
    /// `urgent`, `standard` or `batch`.
    #[schema(example = "urgent")]
    pub priority: String,
    #[schema(example = 3)]
    pub depth: u64,
}

/// Every expert the router knows, by status, and their load.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"total": 40, "available": 31, "busy": 6, "offline": 3, "open": 72, "capacity": 124, "free": 58}))]
pub struct ExpertSummary {
    #[schema(example = 40)]
    pub total: u64,
    #[schema(example = 31)]
    pub available: u64,
    #[schema(example = 6)]
    pub busy: u64,
    #[schema(example = 3)]
    pub offline: u64,
    /// Cases assigned now (routed or in review), whatever the expert's status.
    #[schema(example = 72)]
    pub open: u64,
    /// The sum of `max_concurrent` over `available` experts.
    #[schema(example = 124)]
    pub capacity: u64,
    /// Cases `available` experts could take now: the sum of their
    /// `max_concurrent - open` (an expert over its limit counts 0).
    #[schema(example = 58)]
    pub free: u64,
}

/// One expert's load, as the router holds it now.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a6f1-2b3c-7d4e-8f50-6a7b8c9d0e1f",
    "name": "Dana Whitfield",
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "status": "available",
    "open": 4,
    "max_concurrent": 5,
    "domains": ["tax.us", "tax.uk"]
}))]
pub struct ExpertLoadView {
    pub id: String,
    #[schema(example = "Dana Whitfield")]
    pub name: String,
    /// The expert's tenant; null for a platform-wide expert (it serves every tenant).
    pub tenant_id: Option<String>,
    /// `available`, `busy` or `offline`.
    #[schema(example = "available")]
    pub status: String,
    /// Cases assigned to it now: routed or in review.
    #[schema(example = 4)]
    pub open: u32,
    #[schema(example = 5)]
    pub max_concurrent: u32,
    pub domains: Vec<String>,
}

/// One cumulative bucket: observations at most `le` seconds.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"le": 0.5, "count": 850}))]
pub struct HistogramBucket {
    #[schema(example = 0.5)]
    pub le: f64,
    #[schema(example = 850)]
    pub count: u64,
}

/// A `/metrics` histogram, summed over its label sets, since the process started.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({
    "count": 3,
    "sum_seconds": 0.41,
    "buckets": [{"le": 0.1, "count": 1}, {"le": 0.25, "count": 2}, {"le": 0.5, "count": 3}]
}))]
pub struct LatencyHistogram {
    #[schema(example = 1250)]
    pub count: u64,
    #[schema(example = 812.4)]
    pub sum_seconds: f64,
    /// Cumulative, by increasing bound, as Prometheus has them; the `+Inf`
    /// bucket is left out (it is `count`). Before any observation: every
    /// configured bound with 0.
    pub buckets: Vec<HistogramBucket>,
}

/// `/metrics` routing counters since the process started.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({
    "created": 1320, "resolved": 1180, "expired": 41, "cancelled": 17,
    "assignments": 1410, "declines": 96, "reassignments": 84, "reservation_timeouts": 12
}))]
pub struct RoutingCounters {
    /// `switchboard_escalations_created_total`.
    #[schema(example = 1320)]
    pub created: u64,
    /// `switchboard_escalations_resolved_total`.
    #[schema(example = 1180)]
    pub resolved: u64,
    /// `switchboard_escalations_expired_total`.
    #[schema(example = 41)]
    pub expired: u64,
    /// `switchboard_escalations_cancelled_total`.
    #[schema(example = 17)]
    pub cancelled: u64,
    /// `switchboard_routing_assignments_total`: first routes and reassignments.
    #[schema(example = 1410)]
    pub assignments: u64,
    /// `switchboard_routing_declines_total`.
    #[schema(example = 96)]
    pub declines: u64,
    /// `switchboard_routing_reassignments_total`.
    #[schema(example = 84)]
    pub reassignments: u64,
    /// `switchboard_routing_reservation_timeouts_total`.
    #[schema(example = 12)]
    pub reservation_timeouts: u64,
}

/// The live routing picture: the router's queues and experts now, and the
/// routing figures of `/metrics`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "at": "2026-02-21T03:15:00Z",
    "queues": [
        {"domain": "legal.eu", "priority": "batch", "depth": 2},
        {"domain": "tax.us", "priority": "urgent", "depth": 3},
        {"domain": "tax.us", "priority": "standard", "depth": 5}
    ],
    "open_cases": 82,
    "experts": {"total": 40, "available": 31, "busy": 6, "offline": 3, "open": 72, "capacity": 124, "free": 58},
    "expert_loads": [
        {
            "id": "0193a6f1-2b3c-7d4e-8f50-6a7b8c9d0e1f",
            "name": "Dana Whitfield",
            "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
            "status": "available",
            "open": 5,
            "max_concurrent": 5,
            "domains": ["tax.uk", "tax.us"]
        },
        {
            "id": "0193a6f1-9e8d-7c6b-a5f4-3e2d1c0b9a87",
            "name": "Ravi Menon",
            "tenant_id": null,
            "status": "busy",
            "open": 3,
            "max_concurrent": 4,
            "domains": ["legal.eu"]
        }
    ],
    "time_to_route": {
        "count": 1250,
        "sum_seconds": 812.4,
        "buckets": [
            {"le": 0.0001, "count": 0}, {"le": 0.0005, "count": 2}, {"le": 0.001, "count": 15},
            {"le": 0.0025, "count": 60}, {"le": 0.005, "count": 140}, {"le": 0.01, "count": 260},
            {"le": 0.025, "count": 410}, {"le": 0.05, "count": 530}, {"le": 0.1, "count": 640},
            {"le": 0.25, "count": 760}, {"le": 0.5, "count": 850}, {"le": 1.0, "count": 930},
            {"le": 2.5, "count": 1040}, {"le": 5.0, "count": 1120}, {"le": 10.0, "count": 1190},
            {"le": 30.0, "count": 1236}
        ]
    },
    "resolution_time": {
        "count": 1180,
        "sum_seconds": 214300.5,
        "buckets": [
            {"le": 0.1, "count": 0}, {"le": 1.0, "count": 0}, {"le": 5.0, "count": 1},
            {"le": 15.0, "count": 3}, {"le": 30.0, "count": 12}, {"le": 60.0, "count": 40},
            {"le": 120.0, "count": 110}, {"le": 300.0, "count": 390}, {"le": 600.0, "count": 720},
            {"le": 1800.0, "count": 1010}, {"le": 3600.0, "count": 1120}, {"le": 7200.0, "count": 1160},
            {"le": 14400.0, "count": 1172}, {"le": 28800.0, "count": 1178}, {"le": 86400.0, "count": 1180},
            {"le": 172800.0, "count": 1180}
        ]
    },
    "counters": {
        "created": 1320, "resolved": 1180, "expired": 41, "cancelled": 17,
        "assignments": 1410, "declines": 96, "reassignments": 84, "reservation_timeouts": 12
    }
}))]
pub struct RoutingPicture {
    /// When the router was read.
    #[schema(example = "2026-02-21T03:15:00Z")]
    pub at: String,
    /// Queued (unassigned) cases per domain and priority, only non-zero
    /// ones: by domain, then `urgent`, `standard`, `batch`.
    pub queues: Vec<QueueDepth>,
    /// Cases the router holds: queued and assigned.
    #[schema(example = 82)]
    pub open_cases: u64,
    pub experts: ExpertSummary,
    /// The 100 most loaded experts: most open cases first, then by id.
    pub expert_loads: Vec<ExpertLoadView>,
    /// Creation to first route (`switchboard_routing_time_to_route_seconds`).
    pub time_to_route: LatencyHistogram,
    /// Creation to resolution (`switchboard_escalation_resolution_seconds`).
    pub resolution_time: LatencyHistogram,
    pub counters: RoutingCounters,
}

/// The routing picture: the router's live state, the experts' names from
/// the database, and the figures `/metrics` shows at the same moment.
pub async fn routing_picture(state: &AppState) -> Result<RoutingPicture, AppError> {
    let snapshot = state.engine.routing(EXPERT_LOADS).await?;
    let at = now_ms();
    let mut names = state.store.expert_names(snapshot.expert_loads.iter().map(|l| l.id).collect()).await?;
    state.metrics.run_upkeep();
    let render = state.metrics.render();
    let totals = snapshot.expert_totals;
    let expert_loads = snapshot
        .expert_loads
        .into_iter()
        .map(|l| ExpertLoadView {
            id: l.id.to_string(),
            // The router learns of an expert only after its row is committed, and rows are never deleted.
            name: names.remove(&l.id).unwrap_or_default(),
            tenant_id: match l.owner {
                Owner::Platform => None,
                Owner::Tenant(t) => Some(t.0),
            },
            status: l.status.as_str().to_string(),
            open: l.open,
            max_concurrent: l.max_concurrent,
            domains: l.domains.iter().map(|d| d.as_str().to_string()).collect(),
        })
        .collect();
    let counter = |family: &str| prometheus_counter(&render, family);
    Ok(RoutingPicture {
        at: rfc3339(at),
        queues: snapshot
            .queue_depths
            .into_iter()
            .map(|(domain, priority, depth)| QueueDepth {
                domain,
                priority: priority.to_string(),
                depth: depth as u64,
            })
            .collect(),
        open_cases: snapshot.open_cases as u64,
        experts: ExpertSummary {
            total: totals.total as u64,
            available: totals.available as u64,
            busy: totals.busy as u64,
            offline: totals.offline as u64,
            open: totals.open,
            capacity: totals.capacity,
            free: totals.free,
        },
        expert_loads,
        time_to_route: prometheus_histogram(&render, TIME_TO_ROUTE, &SECONDS_BUCKETS),
        resolution_time: prometheus_histogram(&render, RESOLUTION_TIME, &RESOLUTION_BUCKETS),
        counters: RoutingCounters {
            created: counter("switchboard_escalations_created_total"),
            resolved: counter("switchboard_escalations_resolved_total"),
            expired: counter("switchboard_escalations_expired_total"),
            cancelled: counter("switchboard_escalations_cancelled_total"),
            assignments: counter("switchboard_routing_assignments_total"),
            declines: counter("switchboard_routing_declines_total"),
            reassignments: counter("switchboard_routing_reassignments_total"),
            reservation_timeouts: counter("switchboard_routing_reservation_timeouts_total"),
        },
    })
}

/// Queues per domain and priority, experts and their load, time to route and
/// to resolution, and the routing counters (issue 11, the operator console).
#[utoipa::path(get, path = "/api/monitoring/routing", tag = "platform: monitoring", security(("bearer" = [])),
    responses((status = 200, body = RoutingPicture), (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a super-admin", body = crate::http::openapi::PlainError)))]
pub async fn routing(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    Ok(HttpResponse::Ok().json(routing_picture(&state).await?))
}

// ---- reading the Prometheus render ---------------------------------------------

/// One sample line of the text format: `name{labels} value [timestamp]`;
/// `labels` is the text between the braces.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: &'a str,
    value: f64,
}

fn sample_value(raw: &str) -> Option<f64> {
    match raw {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => raw.parse().ok(),
    }
}

/// A sample line; `None` for comments, blank and malformed lines.
fn sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let (name, rest) = line.split_at(name_end);
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inner) => {
            // The closing brace is the first one outside a quoted label value.
            let (mut quoted, mut escaped, mut close) = (false, false, None);
            for (i, c) in inner.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if quoted => escaped = true,
                    '"' => quoted = !quoted,
                    '}' if !quoted => {
                        close = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let close = close?;
            (&inner[..close], &inner[close + 1..])
        }
        None => ("", rest),
    };
    Some(Sample { name, labels, value: sample_value(rest.split_whitespace().next()?)? })
}

/// The value of label `key` in `a="x",b="y"`, its escapes (`\\`, `\"`, `\n`) undone.
fn label_value(labels: &str, key: &str) -> Option<String> {
    let mut rest = labels;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let (name, after) = rest.split_once('=')?;
        let mut chars = after.trim_start().strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        if name.trim() == key {
            return Some(value);
        }
        rest = &after.trim_start()[end + 2..];
    }
}

fn as_count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

/// The sum over every label set of counter `family` in `render`; 0 when absent.
fn prometheus_counter(render: &str, family: &str) -> u64 {
    render.lines().filter_map(sample).filter(|s| s.name == family).map(|s| as_count(s.value)).sum()
}

/// Histogram `family` in `render`, each bucket summed over the label sets.
/// A family not rendered yet (no observation) has `bounds`, each with 0.
fn prometheus_histogram(render: &str, family: &str, bounds: &[f64]) -> LatencyHistogram {
    let (bucket, sum, count) =
        (format!("{family}_bucket"), format!("{family}_sum"), format!("{family}_count"));
    let mut out = LatencyHistogram { count: 0, sum_seconds: 0.0, buckets: Vec::new() };
    let mut seen = false;
    for s in render.lines().filter_map(sample) {
        if s.name == bucket {
            seen = true;
            let Some(le) = label_value(s.labels, "le").and_then(|le| sample_value(&le)) else { continue };
            if !le.is_finite() {
                continue;
            }
            match out.buckets.iter_mut().find(|b| b.le == le) {
                Some(b) => b.count += as_count(s.value),
                None => out.buckets.push(HistogramBucket { le, count: as_count(s.value) }),
            }
        } else if s.name == sum {
            seen = true;
            if s.value.is_finite() {
                out.sum_seconds += s.value;
            }
        } else if s.name == count {
            seen = true;
            out.count += as_count(s.value);
        }
    }
    if !seen {
        out.buckets = bounds.iter().map(|&le| HistogramBucket { le, count: 0 }).collect();
    }
    out.buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
    out
}

// ---- webhooks ----------------------------------------------------------------

/// The most deliveries the webhook picture lists.
pub const MAX_DELIVERIES: usize = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhooksQuery {
    /// Only deliveries in this status: `pending`, `retrying`, `delivered` or `failed`.
    pub status: Option<String>,
    /// How many deliveries, 1–500; default 50.
    pub limit: Option<String>,
}

/// Deliveries of every tenant per status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[schema(example = json!({"pending": 2, "retrying": 5, "delivered": 18342, "failed": 17}))]
pub struct DeliveryCounts {
    /// Persisted, not attempted yet.
    #[schema(example = 2)]
    pub pending: i64,
    /// Attempted and failed; another attempt is scheduled.
    #[schema(example = 5)]
    pub retrying: i64,
    #[schema(example = 18342)]
    pub delivered: i64,
    /// Every attempt failed, or the subscription is gone.
    #[schema(example = 17)]
    pub failed: i64,
}

/// One delivery and its retry state; never its payload.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "msg_0193a6f52d1e7c3b9a8f7e6d5c4b3a29",
    "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
    "escalation_id": "0193a6f0-7c1e-7d2a-9a51-3b3f2f0c8e11",
    "subscription_id": null,
    "event": "escalation.resolved",
    "url": "https://agent.example.com/hooks/cero",
    "status": "retrying",
    "attempts": 2,
    "last_status_code": 503,
    "last_error": "HTTP 503",
    "next_attempt_at": "2026-02-21T03:20:00Z",
    "delivered_at": null,
    "created_at": "2026-02-21T03:14:00Z"
}))]
pub struct MonitoredDelivery {
    /// The `webhook-id` header of every attempt (`msg_...`).
    pub id: String,
    pub tenant_id: String,
    /// The escalation the event is about; null for other events.
    pub escalation_id: Option<String>,
    /// The `/v1/webhooks` subscription; null for a `callback_url`.
    pub subscription_id: Option<String>,
    #[schema(example = "escalation.resolved")]
    pub event: String,
    pub url: String,
    /// `pending`, `retrying`, `delivered` or `failed`.
    #[schema(example = "retrying")]
    pub status: String,
    #[schema(example = 2)]
    pub attempts: u32,
    #[schema(example = 503)]
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// When the next attempt is due; null unless `retrying` (or `pending` after a restart).
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

/// An endpoint (one target URL) that has a live sender now: its circuit
/// breaker and its queue. Endpoints idle for a minute are not listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "endpoint": "https://agent.example.com/hooks/cero",
    "state": "open",
    "queued": 3,
    "in_flight": 0,
    "scheduled_retries": 2
}))]
pub struct EndpointCircuit {
    pub endpoint: String,
    /// `closed`, `open` (attempts held back) or `half_open` (one probe decides).
    #[schema(example = "open")]
    pub state: String,
    /// Deliveries due and waiting for a free slot or for the circuit.
    #[schema(example = 3)]
    pub queued: u64,
    #[schema(example = 0)]
    pub in_flight: u64,
    /// Deliveries waiting for their next attempt's time.
    #[schema(example = 2)]
    pub scheduled_retries: u64,
}

/// Webhook deliveries of every tenant with their retry state, and the
/// senders' circuit breakers.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "at": "2026-02-21T03:15:00Z",
    "counts": {"pending": 2, "retrying": 5, "delivered": 18342, "failed": 17},
    "deliveries": [{
        "id": "msg_0193a6f52d1e7c3b9a8f7e6d5c4b3a29",
        "tenant_id": "0193a6e2-4b7c-7e10-9d2f-5a8b3c4d1e20",
        "escalation_id": "0193a6f0-7c1e-7d2a-9a51-3b3f2f0c8e11",
        "subscription_id": null,
        "event": "escalation.resolved",
        "url": "https://agent.example.com/hooks/cero",
        "status": "retrying",
        "attempts": 2,
        "last_status_code": 503,
        "last_error": "HTTP 503",
        "next_attempt_at": "2026-02-21T03:20:00Z",
        "delivered_at": null,
        "created_at": "2026-02-21T03:14:00Z"
    }],
    "circuits": [{
        "endpoint": "https://agent.example.com/hooks/cero",
        "state": "open",
        "queued": 3,
        "in_flight": 0,
        "scheduled_retries": 2
    }]
}))]
pub struct WebhookPicture {
    #[schema(example = "2026-02-21T03:15:00Z")]
    pub at: String,
    /// Over every delivery, whatever the filter.
    pub counts: DeliveryCounts,
    /// Newest first (by creation, then id), at most `limit`, of `status` if given.
    pub deliveries: Vec<MonitoredDelivery>,
    /// By endpoint.
    pub circuits: Vec<EndpointCircuit>,
}

/// The webhook picture: counts per status, the newest `limit` (clamped to
/// 1–500) deliveries of `status` (400 unless `pending`, `retrying`,
/// `delivered` or `failed`), and every live endpoint's circuit.
pub async fn webhook_picture(
    state: &AppState,
    status: Option<&str>,
    limit: usize,
) -> Result<WebhookPicture, AppError> {
    let status = status
        .map(|raw| {
            DeliveryStatus::parse(raw.trim()).ok_or_else(|| {
                AppError::BadRequest(format!(
                    "status must be pending, retrying, delivered or failed, not {raw:?}"
                ))
            })
        })
        .transpose()?;
    let limit = limit.clamp(1, MAX_DELIVERIES) as i64;
    let mut counts = DeliveryCounts::default();
    for (s, n) in state.store.delivery_counts().await? {
        match s {
            DeliveryStatus::Pending => counts.pending += n,
            DeliveryStatus::Retrying => counts.retrying += n,
            DeliveryStatus::Delivered => counts.delivered += n,
            DeliveryStatus::Failed => counts.failed += n,
        }
    }
    let deliveries = state
        .store
        .newest_deliveries(status, limit)
        .await?
        .into_iter()
        .map(|d| MonitoredDelivery {
            id: d.id,
            tenant_id: d.tenant_id,
            escalation_id: d.escalation_id,
            subscription_id: d.subscription_id,
            event: d.event,
            url: d.url,
            status: d.status,
            attempts: d.attempts.max(0) as u32,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            delivered_at: d.delivered_at.map(rfc3339),
            created_at: rfc3339(d.created_at),
        })
        .collect();
    let mut circuits: Vec<EndpointCircuit> = state
        .webhooks
        .endpoints()
        .await
        .into_iter()
        .map(|e| EndpointCircuit {
            endpoint: e.url,
            state: e.circuit.as_str().to_string(),
            queued: e.queued as u64,
            in_flight: e.in_flight as u64,
            scheduled_retries: e.scheduled_retries as u64,
        })
        .collect();
    circuits.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
    Ok(WebhookPicture { at: rfc3339(now_ms()), counts, deliveries, circuits })
}

/// Webhook deliveries of every tenant, newest first, with their retry state;
/// counts per status; the senders' circuit breakers.
#[utoipa::path(get, path = "/api/monitoring/webhooks", tag = "platform: monitoring", security(("bearer" = [])),
    params(WebhooksQuery),
    responses((status = 200, body = WebhookPicture),
        (status = 400, description = "Bad `status` or `limit`", body = crate::http::openapi::PlainError),
        (status = 401, body = crate::http::openapi::PlainError),
        (status = 403, description = "Not a super-admin", body = crate::http::openapi::PlainError)))]
pub async fn webhooks(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<WebhooksQuery>,
) -> Result<HttpResponse, AppError> {
    session.require_super_admin()?;
    let q = query.into_inner();
    let limit = parse_int("limit", q.limit.as_deref(), 50, 1..=MAX_DELIVERIES as i64)?;
    Ok(HttpResponse::Ok().json(webhook_picture(&state, q.status.as_deref(), limit as usize).await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/monitoring/actors").route(web::get().to(actors)))
        .service(web::resource("/monitoring/routing").route(web::get().to(routing)))
        .service(web::resource("/monitoring/webhooks").route(web::get().to(webhooks)))
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

    /// As metrics-exporter-prometheus renders: HELP and TYPE lines, one
    /// line per label set, `le` last, the `+Inf` bucket, then sum and count.
    const RENDER: &str = r#"# HELP switchboard_escalations_created_total Escalations created.
# TYPE switchboard_escalations_created_total counter
switchboard_escalations_created_total 7

# TYPE switchboard_webhook_attempts_total counter
switchboard_webhook_attempts_total{outcome="delivered"} 3
switchboard_webhook_attempts_total{outcome="failed"} 2

# TYPE switchboard_routing_time_to_route_seconds histogram
switchboard_routing_time_to_route_seconds_bucket{le="0.1"} 1
switchboard_routing_time_to_route_seconds_bucket{le="1"} 3
switchboard_routing_time_to_route_seconds_bucket{le="+Inf"} 4
switchboard_routing_time_to_route_seconds_sum 12.5
switchboard_routing_time_to_route_seconds_count 4

# TYPE switchboard_actor_handler_seconds histogram
switchboard_actor_handler_seconds_bucket{kind="a \"quoted} kind\\ ,le=\"x\"",le="0.1"} 2
switchboard_actor_handler_seconds_bucket{kind="a \"quoted} kind\\ ,le=\"x\"",le="1"} 2
switchboard_actor_handler_seconds_bucket{kind="a \"quoted} kind\\ ,le=\"x\"",le="+Inf"} 5
switchboard_actor_handler_seconds_sum{kind="a \"quoted} kind\\ ,le=\"x\"",} 40.25
switchboard_actor_handler_seconds_count{kind="a \"quoted} kind\\ ,le=\"x\"",} 5
switchboard_actor_handler_seconds_bucket{kind="expert",le="1"} 1 1700000000000
switchboard_actor_handler_seconds_bucket{kind="expert",le="0.1"} 0
switchboard_actor_handler_seconds_bucket{kind="expert",le="0.5"} 1
switchboard_actor_handler_seconds_bucket{kind="expert",le="+Inf"} 1
switchboard_actor_handler_seconds_sum{kind="expert"} 0.25
switchboard_actor_handler_seconds_count{kind="expert"} 1
"#;

    fn buckets_of(h: &LatencyHistogram) -> Vec<(f64, u64)> {
        h.buckets.iter().map(|b| (b.le, b.count)).collect()
    }

    #[test]
    fn counters_are_summed_over_label_sets_and_absent_ones_are_zero() {
        assert_eq!(prometheus_counter(RENDER, "switchboard_escalations_created_total"), 7);
        assert_eq!(prometheus_counter(RENDER, "switchboard_webhook_attempts_total"), 5);
        assert_eq!(prometheus_counter(RENDER, "switchboard_escalations_created"), 0, "whole names only");
        assert_eq!(prometheus_counter("", "switchboard_escalations_created_total"), 0);
    }

    #[test]
    fn histograms_are_cumulative_without_inf_and_summed_per_bound() {
        let h = prometheus_histogram(RENDER, "switchboard_routing_time_to_route_seconds", &[9.0]);
        assert_eq!((h.count, h.sum_seconds), (4, 12.5));
        assert_eq!(buckets_of(&h), vec![(0.1, 1), (1.0, 3)]);

        // Label sets are summed per bound; a label value holding `}`, `"` or `le=` is not a bound.
        let h = prometheus_histogram(RENDER, "switchboard_actor_handler_seconds", &[]);
        assert_eq!((h.count, h.sum_seconds), (6, 40.5));
        assert_eq!(buckets_of(&h), vec![(0.1, 2), (0.5, 1), (1.0, 3)]);

        // Before the first observation the family is not rendered: the configured bounds, all 0.
        let h = prometheus_histogram(RENDER, "switchboard_escalation_resolution_seconds", &SECONDS_BUCKETS);
        assert_eq!((h.count, h.sum_seconds), (0, 0.0));
        assert_eq!(buckets_of(&h), SECONDS_BUCKETS.iter().map(|&b| (b, 0)).collect::<Vec<_>>());
    }

    #[test]
    fn sample_lines_and_label_values() {
        assert_eq!(
            sample("a_total{x=\"1\"} 3 1700000000000"),
            Some(Sample { name: "a_total", labels: "x=\"1\"", value: 3.0 })
        );
        assert_eq!(sample("b 2.5"), Some(Sample { name: "b", labels: "", value: 2.5 }));
        assert_eq!(sample("c{le=\"+Inf\"} +Inf").map(|s| s.value), Some(f64::INFINITY));
        for skipped in ["", "  ", "# HELP a b", "# TYPE a counter", "d{x=\"1\" 3", "e", "f x"] {
            assert_eq!(sample(skipped), None, "{skipped:?}");
        }
        let labels = r#"kind="a \"b\\ c\nd",le="0.5""#;
        assert_eq!(label_value(labels, "kind").as_deref(), Some("a \"b\\ c\nd"));
        assert_eq!(label_value(labels, "le").as_deref(), Some("0.5"));
        assert_eq!(label_value(labels, "outcome"), None);
        assert_eq!(label_value("", "le"), None);
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
