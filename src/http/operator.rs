//! Operator endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::startup::AppState;

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "version": "0.1.0"}))]
pub struct Health {
    /// Always `ok` while the process serves.
    #[schema(example = "ok")]
    pub status: &'static str,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "checks": {"database": "ok", "actors": "ok", "backend": "sqlite"}}))]
pub struct Readiness {
    /// `ready`, or `starting` until the database is reachable and the actors are rebuilt.
    #[schema(example = "ready")]
    pub status: &'static str,
    pub checks: ReadinessChecks,
}

#[derive(Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// `ok`, or why the database cannot be used.
    #[schema(example = "ok")]
    pub database: String,
    /// `ok` once every live actor was rebuilt from the database, else `pending`.
    #[schema(example = "ok")]
    pub actors: &'static str,
    #[schema(example = "sqlite")]
    pub backend: &'static str,
}

/// The process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operator",
    responses((status = 200, description = "The process serves", body = Health))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

/// Ready for traffic: the database answers and the actors were rebuilt from it.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operator",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Starting, or the database is unreachable", body = Readiness,
            example = json!({"status": "starting", "checks": {"database": "ok", "actors": "pending", "backend": "sqlite"}}))
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 2s".to_string(),
    };
    let actors = if state.ready.load(Ordering::Acquire) { "ok" } else { "pending" };
    let ready = database == "ok" && actors == "ok";
    let body = Readiness {
        status: if ready { "ready" } else { "starting" },
        checks: ReadinessChecks { database, actors, backend: state.store.backend() },
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition of every metric.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operator",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.run_upkeep();
    let mut body = state.metrics.render();
    body.push_str(&process_metrics());
    body.push_str(&tenant_metrics(&state).await);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}

/// `switchboard_tenants{status, runtime}`: every stored tenant by its
/// container state, read at scrape time (a database that cannot answer
/// leaves the family out rather than failing the scrape).
async fn tenant_metrics(state: &AppState) -> String {
    use switchboard_actors::tenant::TenantState;
    let rows = match state.store.tenants_by_state().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "tenant counts unavailable for /metrics");
            return String::new();
        }
    };
    let mut out = String::from(
        "# HELP switchboard_tenants Tenants by container state and runtime.\n# TYPE switchboard_tenants gauge\n",
    );
    // Every state of both runtimes, so that a state that empties shows 0 rather than vanishing.
    for runtime in ["embedded", "process"] {
        for status in TenantState::ALL {
            let n: i64 =
                rows.iter().filter(|(s, r, _)| s == status.as_str() && r == runtime).map(|(_, _, n)| n).sum();
            out.push_str(&format!(
                "switchboard_tenants{{status=\"{}\",runtime=\"{runtime}\"}} {n}\n",
                status.as_str()
            ));
        }
    }
    out
}

/// The standard `process_*` figures Prometheus clients export, read from
/// `/proc/self` at scrape time (Linux; empty elsewhere).
fn process_metrics() -> String {
    let mut out = String::new();
    // statm: size resident shared text lib data dt, in pages.
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let fields: Vec<u64> = statm.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        if let (Some(size), Some(resident)) = (fields.first(), fields.get(1)) {
            // 4 KiB pages: the page size of Linux on x86_64 and of common aarch64 kernels.
            let page = 4096u64;
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
            out.push_str("# TYPE process_resident_memory_bytes gauge\n");
            out.push_str(&format!("process_resident_memory_bytes {}\n", resident * page));
            out.push_str("# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n");
            out.push_str("# TYPE process_virtual_memory_bytes gauge\n");
            out.push_str(&format!("process_virtual_memory_bytes {}\n", size * page));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        out.push_str("# HELP process_open_fds Number of open file descriptors.\n");
        out.push_str("# TYPE process_open_fds gauge\n");
        out.push_str(&format!("process_open_fds {}\n", entries.count()));
    }
    out
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operator",
    responses((status = 200, description = "OpenAPI 3.1 document of every surface", content_type = "application/json", body = Object,
        example = json!({"openapi": "3.1.0", "info": {"title": "Switchboard", "version": "0.1.0"}, "paths": {"/healthz": {}}})))
)]
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(state.openapi.clone())
}

/// Routes are `web::resource`s so that another method on a known path is 405, not 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/openapi.json").route(web::get().to(openapi)))
        // Swagger UI rendering /openapi.json; documentation of the document, not in it.
        .service(web::resource("/docs").route(web::get().to(super::docs::page)))
        .service(web::resource("/docs/{file}").route(web::get().to(super::docs::asset)));
}
