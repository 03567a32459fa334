//! `/api/monitoring/*` and `GET /api/tenants/{id}/resources`: who may call
//! each (super-admin, member, non-member, no token); the dashboard's counts
//! as tenants, users and channels come; fleet health; hourly usage after Agent
//! API messages; audit paging and its `action` and `since` filters; resource
//! samples of a running tenant, the fleet's latest ones, and `range`; the
//! routing picture (queues, expert loads, the `/metrics` routing figures) as
//! cases queue, route and resolve; webhook deliveries of every tenant with
//! their retry state, their filters and the senders' circuits.

#[path = "common/agent.rs"]
#[allow(dead_code)] // `v1_error` is for envelope tests
mod agent;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::time::Duration;

use agent::{register_as, v1};
use common::receiver::{Behaviour, Receiver};
use esc::{keys, sorted, time_ms, Api, Tenant};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "ops@example.com";

const DASHBOARD_KEYS: [&str; 8] =
    ["total_tenants", "running", "stopped", "error", "draft", "deploying", "total_users", "total_channels"];
const HEALTH_KEYS: [&str; 4] = ["tenant_id", "name", "status", "uptime"];
const USAGE_KEYS: [&str; 5] = ["tenant_id", "hour", "messages_total", "tokens_input", "tokens_output"];
const AUDIT_PAGE_KEYS: [&str; 4] = ["entries", "total", "page", "per_page"];
const AUDIT_KEYS: [&str; 6] = ["id", "actor_id", "action", "tenant_id", "detail", "created_at"];
const SUMMARY_KEYS: [&str; 9] = [
    "tenant_id",
    "cpu_pct",
    "mem_bytes",
    "mem_limit",
    "disk_bytes",
    "net_in",
    "net_out",
    "pids",
    "recorded_at",
];
const CURRENT_KEYS: [&str; 3] = ["cpu_pct", "mem_bytes", "disk_bytes"];
const POINT_KEYS: [&str; 3] = ["ts", "cpu_pct", "mem_bytes"];

const ROUTING_KEYS: [&str; 8] =
    ["at", "queues", "open_cases", "experts", "expert_loads", "time_to_route", "resolution_time", "counters"];
const EXPERTS_KEYS: [&str; 7] = ["total", "available", "busy", "offline", "open", "capacity", "free"];
const COUNTER_KEYS: [&str; 8] = [
    "created",
    "resolved",
    "expired",
    "cancelled",
    "assignments",
    "declines",
    "reassignments",
    "reservation_timeouts",
];
const WEBHOOKS_KEYS: [&str; 4] = ["at", "counts", "deliveries", "circuits"];
const DELIVERY_KEYS: [&str; 13] = [
    "id",
    "tenant_id",
    "escalation_id",
    "subscription_id",
    "event",
    "url",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "delivered_at",
    "created_at",
];
const CIRCUIT_KEYS: [&str; 5] = ["endpoint", "state", "queued", "in_flight", "scheduled_retries"];

/// The super-admin-only endpoints.
const ADMIN_ONLY: [&str; 6] = [
    "/api/monitoring/dashboard",
    "/api/monitoring/health",
    "/api/monitoring/audit",
    "/api/monitoring/resources",
    "/api/monitoring/routing",
    "/api/monitoring/webhooks",
];

// ---- helpers ----------------------------------------------------------------

async fn app_with(extra: &[(&str, &str)]) -> common::TestApp {
    common::spawn_with_outbox(
        &[
            &[("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN), ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m")],
            extra,
        ]
        .concat(),
    )
    .await
}

async fn app() -> common::TestApp {
    app_with(&[]).await
}

async fn get(app: &common::TestApp, auth: &str, path: &str) -> (StatusCode, Value) {
    app.get(path, &[("Authorization", auth)]).await
}

/// Asserts a 200; returns the body.
async fn ok(app: &common::TestApp, auth: &str, path: &str) -> Value {
    let (status, body) = get(app, auth, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// Asserts a platform error with `status`; returns its message.
async fn refused(app: &common::TestApp, auth: Option<&str>, path: &str, status: StatusCode) -> String {
    let headers: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
    let (got, body) = app.get(path, &headers).await;
    assert_eq!(got, status, "GET {path}: {body}");
    let message = body["error"].as_str().unwrap_or_else(|| panic!("platform error shape: {body}"));
    assert!(!message.is_empty(), "{body}");
    message.to_string()
}

/// A `draft` tenant made by `auth` through `POST /api/tenants`.
async fn draft_tenant(app: &common::TestApp, auth: &str, name: &str) -> String {
    let (status, t) = app.post("/api/tenants", json!({"name": name}), &[("Authorization", auth)]).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["status"], "draft", "{t}");
    t["id"].as_str().unwrap().to_string()
}

/// A `running` tenant registered under a known email, and its Owner's `Authorization`.
async fn running_tenant(app: &common::TestApp, name: &str) -> (Tenant, String) {
    let (tenant, email) = register_as(&Api::of(app), name).await;
    let auth = common::sign_in(app, &email).await;
    (tenant, auth)
}

/// Makes `email` a member of `tenant` with `role` (by its Owner); returns their `Authorization`.
async fn member(app: &common::TestApp, owner: &str, tenant: &str, email: &str, role: &str) -> String {
    let (status, body) = app
        .post(
            &format!("/api/tenants/{tenant}/members"),
            json!({"email": email, "role": role}),
            &[("Authorization", owner)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    common::sign_in(app, email).await
}

/// A Cerebral and an unrestricted `sk_live_` key of the JWT's tenant: (cerebral, key).
async fn cerebral_and_key(app: &common::TestApp, auth: &str, name: &str) -> (String, String) {
    let api = Api::of(app);
    let (status, body) = v1(
        &api,
        Method::POST,
        "/v1/cerebrals",
        Some(json!({"name": name, "system_prompt": "You answer briefly."})),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cerebral = body["data"]["id"].as_str().unwrap().to_string();
    let (status, body) = v1(
        &api,
        Method::POST,
        "/v1/api-keys",
        Some(json!({"name": format!("{name} key")})),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (cerebral, body["data"]["key"].as_str().unwrap().to_string())
}

/// One Agent API message, answered.
async fn message(app: &common::TestApp, cerebral: &str, key: &str, text: &str) {
    let (status, body) = app
        .post(&format!("/v1/cerebrals/{cerebral}/message"), json!({"message": text}), &[("X-API-Key", key)])
        .await;
    assert_eq!(status, StatusCode::OK, "message: {body}");
    assert!(body["data"]["metadata"]["tokens_used"].as_u64().is_some_and(|t| t > 0), "{body}");
}

fn n(v: &Value, field: &str) -> i64 {
    v[field].as_i64().unwrap_or_else(|| panic!("{field} is not an integer: {v}"))
}

/// Inserts an audit entry as of `created_at` (epoch ms).
async fn audit_at(app: &common::TestApp, id: &str, action: &str, created_at: i64, detail: Value) {
    let row = switchboard::store::identity::AuditRow {
        id: id.to_string(),
        actor_id: None,
        action: action.to_string(),
        tenant_id: None,
        detail: detail.to_string(),
        created_at,
    };
    app.state
        .store
        .submit(switchboard::store::WriteRequest(vec![switchboard::store::identity::audit(row)]))
        .await
        .unwrap();
}

/// The ids of a page's entries.
fn ids(page: &Value) -> Vec<String> {
    page["entries"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

// ---- who may call what --------------------------------------------------------

#[actix_web::test]
async fn every_endpoint_needs_a_token() {
    let app = app().await;
    let admin = common::sign_in(&app, ADMIN).await;
    let tid = draft_tenant(&app, &admin, "Acme").await;
    let tenant_resources = format!("/api/tenants/{tid}/resources");
    for path in ADMIN_ONLY.iter().copied().chain(["/api/monitoring/usage", tenant_resources.as_str()]) {
        refused(&app, None, path, StatusCode::UNAUTHORIZED).await;
        refused(&app, Some("Bearer not-a-jwt"), path, StatusCode::UNAUTHORIZED).await;
    }
}

#[actix_web::test]
async fn fleet_endpoints_are_for_super_admins_only() {
    let app = app().await;
    let admin = common::sign_in(&app, ADMIN).await;
    let owner = common::new_user(&app, &admin, "alice@example.com").await;
    let tid = draft_tenant(&app, &owner, "Acme").await;
    for path in ADMIN_ONLY {
        // Even an Owner of a tenant is no super-admin.
        refused(&app, Some(owner.as_str()), path, StatusCode::FORBIDDEN).await;
        ok(&app, &admin, path).await;
    }

    // Usage and a tenant's resources: its members and super-admins; 403 for others, 404 unknown.
    let viewer = member(&app, &owner, &tid, "viewer@example.com", "Viewer").await;
    let outsider = common::new_user(&app, &admin, "mallory@example.com").await;
    let usage = format!("/api/monitoring/usage?tenant_id={tid}");
    let resources = format!("/api/tenants/{tid}/resources");
    for path in [&usage, &resources] {
        for auth in [&owner, &viewer, &admin] {
            ok(&app, auth, path).await;
        }
        refused(&app, Some(outsider.as_str()), path, StatusCode::FORBIDDEN).await;
    }
    let unknown = uuid::Uuid::new_v4();
    for auth in [&outsider, &admin] {
        let auth = Some(auth.as_str());
        refused(&app, auth, &format!("/api/monitoring/usage?tenant_id={unknown}"), StatusCode::NOT_FOUND)
            .await;
        refused(&app, auth, &format!("/api/tenants/{unknown}/resources"), StatusCode::NOT_FOUND).await;
    }
    // Without a tenant, a user with no tenant sees no usage.
    assert_eq!(ok(&app, &outsider, "/api/monitoring/usage").await, json!([]));
}

// ---- dashboard and health -------------------------------------------------------

#[actix_web::test]
async fn the_dashboard_counts_tenants_by_status_users_and_channels() {
    let app = app().await;
    let admin = common::sign_in(&app, ADMIN).await;
    let before = ok(&app, &admin, "/api/monitoring/dashboard").await;
    assert_eq!(keys(&before), sorted(&DASHBOARD_KEYS), "{before}");
    let by_status: i64 =
        ["running", "stopped", "error", "draft", "deploying"].iter().map(|s| n(&before, s)).sum();
    assert_eq!(by_status, n(&before, "total_tenants"), "{before}");
    assert!(n(&before, "total_users") >= 1, "the super-admin is a user: {before}");

    // A tenant made on the Platform API starts in draft; the user made for it counts.
    let owner = common::new_user(&app, &admin, "alice@example.com").await;
    let draft = draft_tenant(&app, &owner, "Acme").await;
    let after = ok(&app, &admin, "/api/monitoring/dashboard").await;
    let delta = |now: &Value, field: &str| n(now, field) - n(&before, field);
    assert_eq!(
        DASHBOARD_KEYS.map(|k| delta(&after, k)),
        [1, 0, 0, 0, 1, 0, 1, 0],
        "{DASHBOARD_KEYS:?}: {before} → {after}"
    );

    // A sign-up makes a user and a running tenant.
    let (status, body) = app
        .post(
            "/v1/auth/signup",
            json!({"email": "bee@example.com", "password": "correct horse", "name": "Bee"}),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after = ok(&app, &admin, "/api/monitoring/dashboard").await;
    assert_eq!(DASHBOARD_KEYS.map(|k| delta(&after, k)), [2, 1, 0, 0, 1, 0, 2, 0], "{before} → {after}");

    // Channels come from the channels table.
    use diesel::prelude::*;
    use switchboard::store::schema::channels;
    let now = switchboard::store::now_ms();
    app.state
        .store
        .write(move |c| {
            diesel::insert_into(channels::table)
                .values((
                    channels::id.eq(format!("ch_{}", uuid::Uuid::now_v7().simple())),
                    channels::tenant_id.eq(&draft),
                    channels::kind.eq("telegram"),
                    channels::config.eq("{}"),
                    channels::enabled.eq(true),
                    channels::created_at.eq(now),
                    channels::updated_at.eq(now),
                ))
                .execute(c)
                .map(drop)
        })
        .await
        .unwrap();
    let after = ok(&app, &admin, "/api/monitoring/dashboard").await;
    assert_eq!(delta(&after, "total_channels"), 1, "{after}");
}

#[actix_web::test]
async fn health_lists_every_tenant_with_its_status_and_uptime() {
    let app = app().await;
    let admin = common::sign_in(&app, ADMIN).await;
    let draft = draft_tenant(&app, &admin, "Draft Co").await;
    let (running, owner) = running_tenant(&app, "Running Co").await;
    // A message starts the running tenant's container, where the runtime starts them on use.
    let (cerebral, key) = cerebral_and_key(&app, &owner, "bot").await;
    message(&app, &cerebral, &key, "hello").await;

    let fleet = ok(&app, &admin, "/api/monitoring/health").await;
    let fleet = fleet.as_array().unwrap_or_else(|| panic!("an array: {fleet}"));
    let total = n(&ok(&app, &admin, "/api/monitoring/dashboard").await, "total_tenants");
    assert_eq!(fleet.len() as i64, total, "every tenant: {fleet:?}");
    for t in fleet {
        assert_eq!(keys(t), sorted(&HEALTH_KEYS), "{t}");
        assert!(t["uptime"].is_null() || t["uptime"].is_u64(), "{t}");
        if t["status"] != "running" {
            assert!(t["uptime"].is_null(), "uptime only while running: {t}");
        }
    }
    let of =
        |id: &str| fleet.iter().find(|t| t["tenant_id"] == id).unwrap_or_else(|| panic!("{id} in {fleet:?}"));
    assert_eq!(of(&draft)["name"], "Draft Co");
    assert_eq!(of(&draft)["status"], "draft");
    assert_eq!(of(&draft)["uptime"], Value::Null);
    let r = of(&running.id);
    assert_eq!(r["name"], "Running Co");
    assert_eq!(r["status"], "running", "{r}");
    // The live container's view when there is one; uptime is known then.
    match app.state.agents.container(&running.id) {
        Some(c) => {
            assert_eq!(r["status"], c.status.as_str(), "{r}");
            assert!(r["uptime"].is_u64(), "a live running container has an uptime: {r}");
        }
        None => assert_eq!(r["uptime"], Value::Null, "{r}"),
    }
}

// ---- usage --------------------------------------------------------------------

#[actix_web::test]
async fn usage_counts_agent_messages_and_tokens_by_hour() {
    let app = app().await;
    let admin = common::sign_in(&app, ADMIN).await;
    let (acme, acme_owner) = running_tenant(&app, "Acme").await;
    let (beta, beta_owner) = running_tenant(&app, "Beta").await;
    let (cerebral, key) = cerebral_and_key(&app, &acme_owner, "acme bot").await;
    let started = switchboard::store::now_ms();
    for text in ["hello", "what are your hours?", "thanks"] {
        message(&app, &cerebral, &key, text).await;
    }
    let (beta_cerebral, beta_key) = cerebral_and_key(&app, &beta_owner, "beta bot").await;
    message(&app, &beta_cerebral, &beta_key, "hi").await;
    let ended = switchboard::store::now_ms();

    let path = format!("/api/monitoring/usage?tenant_id={}", acme.id);
    let entries = ok(&app, &acme_owner, &path).await;
    let entries = entries.as_array().unwrap_or_else(|| panic!("an array: {entries}"));
    assert!(!entries.is_empty(), "usage of the hour");
    let hour = |ms: i64| ms - ms.rem_euclid(3_600_000);
    let (mut messages, mut input, mut output) = (0, 0, 0);
    for e in entries {
        assert_eq!(keys(e), sorted(&USAGE_KEYS), "{e}");
        assert_eq!(e["tenant_id"], acme.id.as_str(), "{e}");
        let at = time_ms(&e["hour"]);
        assert!(at == hour(at) && (hour(started)..=hour(ended)).contains(&at), "the messages' hour: {e}");
        messages += n(e, "messages_total");
        input += n(e, "tokens_input");
        output += n(e, "tokens_output");
    }
    assert_eq!(messages, 3, "{entries:?}");
    assert!(input > 0 && output > 0, "the offline model reports tokens: {entries:?}");

    // Any member of the tenant sees it; `days` bounds the hours.
    let viewer = member(&app, &acme_owner, &acme.id, "viewer@example.com", "Viewer").await;
    assert_eq!(ok(&app, &viewer, &path).await, Value::Array(entries.clone()));
    assert_eq!(ok(&app, &viewer, &format!("{path}&days=1")).await, Value::Array(entries.clone()));
    assert_eq!(ok(&app, &viewer, &format!("{path}&days=90")).await, Value::Array(entries.clone()));

    // Without a tenant: a member gets their tenants', the super-admin everyone's, by hour then tenant.
    let mine = ok(&app, &acme_owner, "/api/monitoring/usage").await;
    assert_eq!(mine, Value::Array(entries.clone()));
    let all = ok(&app, &admin, "/api/monitoring/usage").await;
    let all = all.as_array().unwrap();
    let order: Vec<(i64, String)> =
        all.iter().map(|e| (time_ms(&e["hour"]), e["tenant_id"].as_str().unwrap().to_string())).collect();
    let mut sorted_order = order.clone();
    sorted_order.sort();
    assert_eq!(order, sorted_order, "by hour then tenant");
    for tenant in [&acme.id, &beta.id] {
        assert!(all.iter().any(|e| e["tenant_id"] == tenant.as_str()), "{tenant} in {all:?}");
    }
    let beta_messages: i64 =
        all.iter().filter(|e| e["tenant_id"] == beta.id.as_str()).map(|e| n(e, "messages_total")).sum();
    assert_eq!(beta_messages, 1);
    // Another tenant's Owner may not read Acme's.
    refused(&app, Some(beta_owner.as_str()), &path, StatusCode::FORBIDDEN).await;

    for bad in ["0", "91", "-1", "x", "1.5", ""] {
        let message =
            refused(&app, Some(admin.as_str()), &format!("{path}&days={bad}"), StatusCode::BAD_REQUEST).await;
        assert!(message.contains("days"), "{message}");
    }
}

// ---- audit ----------------------------------------------------------------------

#[actix_web::test]
async fn the_audit_log_pages_newest_first_and_filters_by_action_and_time() {
    let app = app().await;
    let admin = common::sign_in(&app, ADMIN).await;
    // Old entries at known times: five `tenant.deploy`, a `tenant.redeploy` and a bare `deploy`.
    let t0 = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").unwrap().timestamp_millis();
    let minute = 60_000;
    for i in 0..5 {
        audit_at(&app, &format!("aud_test_deploy_{i}"), "tenant.deploy", t0 + i * minute, json!({"n": i}))
            .await;
    }
    audit_at(&app, "aud_test_redeploy", "tenant.redeploy", t0 + 10 * minute, json!({})).await;
    audit_at(&app, "aud_test_bare", "deploy", t0 + 20 * minute, json!({"bare": true})).await;
    // And one the API writes now.
    let tid = draft_tenant(&app, &admin, "Audited").await;

    // Every entry, newest first, 50 to a page by default.
    let page = ok(&app, &admin, "/api/monitoring/audit").await;
    assert_eq!(keys(&page), sorted(&AUDIT_PAGE_KEYS), "{page}");
    assert_eq!((n(&page, "page"), n(&page, "per_page")), (1, 50));
    let total = n(&page, "total");
    assert!(total >= 8, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len() as i64, total.min(50));
    let times: Vec<i64> = entries.iter().map(|e| time_ms(&e["created_at"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    for e in entries {
        assert_eq!(keys(e), sorted(&AUDIT_KEYS), "{e}");
        let detail = e["detail"].as_str().unwrap_or_else(|| panic!("detail is JSON text: {e}"));
        assert!(serde_json::from_str::<Value>(detail).is_ok_and(|d| d.is_object()), "{e}");
    }
    let created = entries.iter().find(|e| e["action"] == "tenant.create" && e["tenant_id"] == tid.as_str());
    let created = created.unwrap_or_else(|| panic!("tenant.create of {tid} in {entries:?}"));
    assert!(created["actor_id"].as_str().is_some_and(|a| a.starts_with("usr_")), "{created}");
    assert_eq!(
        serde_json::from_str::<Value>(created["detail"].as_str().unwrap()).unwrap()["name"],
        "Audited"
    );
    // The oldest are last.
    let last = ok(&app, &admin, &format!("/api/monitoring/audit?per_page=1&page={total}")).await;
    assert_eq!(ids(&last), ["aud_test_deploy_0"]);
    assert_eq!(last["entries"][0]["detail"], json!({"n": 0}).to_string());
    assert_eq!(last["entries"][0]["created_at"], "2020-01-01T00:00:00Z");
    assert_eq!(last["entries"][0]["actor_id"], Value::Null);

    // `action`: the exact name, or its last segment.
    let deploys = ok(&app, &admin, "/api/monitoring/audit?action=deploy").await;
    assert_eq!(n(&deploys, "total"), 6, "{deploys}");
    assert_eq!(
        ids(&deploys),
        [
            "aud_test_bare",
            "aud_test_deploy_4",
            "aud_test_deploy_3",
            "aud_test_deploy_2",
            "aud_test_deploy_1",
            "aud_test_deploy_0"
        ]
    );
    let exact = ok(&app, &admin, "/api/monitoring/audit?action=tenant.deploy").await;
    assert_eq!(n(&exact, "total"), 5, "{exact}");
    let create = ok(&app, &admin, "/api/monitoring/audit?action=create").await;
    assert!(ids(&create).contains(&created["id"].as_str().unwrap().to_string()), "{create}");
    assert!(create["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["action"].as_str().unwrap().ends_with("create")));
    let none = ok(&app, &admin, "/api/monitoring/audit?action=nothing.like.this").await;
    assert_eq!((n(&none, "total"), none["entries"].clone()), (0, json!([])));

    // Pages of a filter.
    let page2 = ok(&app, &admin, "/api/monitoring/audit?action=deploy&per_page=2&page=2").await;
    assert_eq!((n(&page2, "total"), n(&page2, "page"), n(&page2, "per_page")), (6, 2, 2));
    assert_eq!(ids(&page2), ["aud_test_deploy_3", "aud_test_deploy_2"]);
    let beyond = ok(&app, &admin, "/api/monitoring/audit?action=deploy&per_page=2&page=4").await;
    assert_eq!((n(&beyond, "total"), beyond["entries"].clone()), (6, json!([])));

    // `since`: at or after, in any offset.
    let since = ok(&app, &admin, "/api/monitoring/audit?action=deploy&since=2020-01-01T00:03:00Z").await;
    assert_eq!(ids(&since), ["aud_test_bare", "aud_test_deploy_4", "aud_test_deploy_3"]);
    let offset =
        ok(&app, &admin, "/api/monitoring/audit?action=deploy&since=2020-01-01T01:03:00%2B01:00").await;
    assert_eq!(ids(&offset), ids(&since));
    let recent = ok(&app, &admin, "/api/monitoring/audit?since=2021-01-01T00:00:00Z").await;
    assert_eq!(n(&recent, "total"), total - 7, "{recent}");

    for bad in [
        "page=0",
        "page=-1",
        "page=x",
        "per_page=0",
        "per_page=201",
        "per_page=ten",
        "since=yesterday",
        "since=2020-01-01",
        "action=",
        "page=9223372036854775807&per_page=200",
    ] {
        refused(&app, Some(admin.as_str()), &format!("/api/monitoring/audit?{bad}"), StatusCode::BAD_REQUEST)
            .await;
    }
    ok(&app, &admin, "/api/monitoring/audit?per_page=200&page=1").await;
}

// ---- resources ------------------------------------------------------------------

#[actix_web::test]
async fn a_running_tenant_is_sampled_and_its_history_bucketed() {
    let bin = common::server_bin().display().to_string();
    let app = app_with(&[
        ("SWITCHBOARD_RESOURCE_SAMPLE_INTERVAL", "200ms"),
        ("SWITCHBOARD_TENANT_RUNTIME", "process"),
        ("SWITCHBOARD_RUNTIME_BIN", bin.as_str()),
    ])
    .await;
    let admin = common::sign_in(&app, ADMIN).await;
    let (embedded, owner) = running_tenant(&app, "Embedded").await;
    let draft = draft_tenant(&app, &owner, "Never deployed").await;
    // A message starts the embedded container, where the runtime starts them on use.
    let (cerebral, key) = cerebral_and_key(&app, &owner, "bot").await;
    message(&app, &cerebral, &key, "hello").await;
    // A process container: only it has figures to sample.
    let sampled_id = draft_tenant(&app, &owner, "Sampled").await;
    let (status, body) =
        app.post(&format!("/api/tenants/{sampled_id}/deploy"), json!({}), &[("Authorization", &owner)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tenant = Tenant { id: sampled_id, key: String::new(), body: Value::Null };

    let path = format!("/api/tenants/{}/resources?range=1h", tenant.id);
    let seen = std::cell::RefCell::new(Value::Null);
    let sampled = common::eventually(Duration::from_secs(20), || async {
        let body = ok(&app, &owner, &path).await;
        let done = body["history"].as_array().is_some_and(|h| !h.is_empty())
            && body["current"]["mem_bytes"].as_i64().is_some_and(|m| m > 0);
        *seen.borrow_mut() = body;
        done
    })
    .await;
    let last = seen.into_inner();
    assert!(sampled, "no sample of the running tenant: {last}");
    assert_eq!(keys(&last), sorted(&["current", "history"]), "{last}");
    assert_eq!(keys(&last["current"]), sorted(&CURRENT_KEYS), "{last}");
    let history = last["history"].as_array().unwrap();
    let mut previous = i64::MIN;
    for point in history {
        assert_eq!(keys(point), sorted(&POINT_KEYS), "{point}");
        let ts = time_ms(&point["ts"]);
        assert_eq!(ts % 60_000, 0, "1h buckets by the minute: {point}");
        assert!(ts > previous, "oldest first: {history:?}");
        previous = ts;
    }
    assert!(last["current"]["disk_bytes"].as_i64().is_some_and(|d| d > 0), "{last}");
    // The embedded runtime has no process of its own: its figures are null
    // (extensions.md) and it is not sampled.
    assert!(app
        .state
        .agents
        .container(&embedded.id)
        .is_some_and(|c| c.pid.is_none() && c.status.as_str() == "running"));
    assert_eq!(
        ok(&app, &owner, &format!("/api/tenants/{}/resources", embedded.id)).await,
        json!({"current": {"cpu_pct": null, "mem_bytes": null, "disk_bytes": null}, "history": []})
    );

    // Every range answers; the default is 24h, bucketed by 15 minutes; others are 400.
    for (range, bucket) in [("6h", 5 * 60_000), ("24h", 15 * 60_000), ("7d", 3_600_000)] {
        let body = ok(&app, &owner, &format!("/api/tenants/{}/resources?range={range}", tenant.id)).await;
        let points = body["history"].as_array().unwrap();
        assert!(!points.is_empty(), "{range}: {body}");
        assert!(points.iter().all(|p| time_ms(&p["ts"]) % bucket == 0), "{range}: {body}");
    }
    let default = ok(&app, &owner, &format!("/api/tenants/{}/resources", tenant.id)).await;
    assert!(default["history"].as_array().unwrap().iter().all(|p| time_ms(&p["ts"]) % (15 * 60_000) == 0));
    for bad in ["2h", "1d", "24H", "", "all"] {
        let message = refused(
            &app,
            Some(owner.as_str()),
            &format!("/api/tenants/{}/resources?range={bad}", tenant.id),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains("range"), "{message}");
    }

    // A tenant never sampled: all null, no history.
    assert_eq!(
        ok(&app, &owner, &format!("/api/tenants/{draft}/resources")).await,
        json!({"current": {"cpu_pct": null, "mem_bytes": null, "disk_bytes": null}, "history": []})
    );

    // The fleet: the latest sample of each tenant that has one.
    let fleet = ok(&app, &admin, "/api/monitoring/resources").await;
    let fleet = fleet.as_array().unwrap_or_else(|| panic!("an array: {fleet}"));
    let mine = fleet.iter().find(|r| r["tenant_id"] == tenant.id.as_str());
    let mine = mine.unwrap_or_else(|| panic!("{} in {fleet:?}", tenant.id));
    assert_eq!(keys(mine), sorted(&SUMMARY_KEYS), "{mine}");
    assert!(mine["disk_bytes"].as_i64().is_some_and(|d| d > 0), "{mine}");
    assert_eq!(
        (mine["net_in"].clone(), mine["net_out"].clone(), mine["mem_limit"].clone()),
        (Value::Null, Value::Null, Value::Null)
    );
    let recorded = time_ms(&mine["recorded_at"]);
    assert!((switchboard::store::now_ms() - recorded) < 60_000, "{mine}");
    assert!(fleet.iter().all(|r| r["tenant_id"] != draft.as_str()), "a tenant without samples is not listed");
    assert!(fleet.iter().all(|r| r["tenant_id"] != embedded.id.as_str()), "nor an embedded one");
    // It is the latest: the fleet entry is at or after the last history bucket.
    assert!(recorded >= previous, "{mine} vs {history:?}");
}

#[actix_web::test]
async fn old_samples_are_pruned_and_the_fleet_shows_the_latest() {
    use switchboard::store::monitoring::{prune_resources, record_resources, ResourceRow};
    let app = app().await;
    let admin = common::sign_in(&app, ADMIN).await;
    let a = draft_tenant(&app, &admin, "A").await;
    let b = draft_tenant(&app, &admin, "B").await;
    let now = switchboard::store::now_ms();
    let row = |tenant: &str, at: i64, cpu: f64| ResourceRow {
        tenant_id: tenant.to_string(),
        recorded_at: at,
        runtime: "process".into(),
        cpu_pct: Some(cpu),
        mem_bytes: Some(1000 * at.rem_euclid(7) + 1),
        mem_limit: None,
        disk_bytes: Some(10),
        net_in: None,
        net_out: None,
        pids: Some(3),
    };
    let week = 7 * 24 * 3_600_000;
    let rows = vec![
        row(&a, now - week - 1_000, 9.0),
        row(&a, now - 120_000, 1.0),
        row(&a, now - 60_000, 3.0),
        row(&b, now - 30_000, 2.0),
        // A tenant that does not exist (deleted since it was sampled) is skipped.
        row("no-such-tenant", now, 1.0),
    ];
    let store = &app.state.store;
    store.submit(switchboard::store::WriteRequest(vec![record_resources(rows.clone())])).await.unwrap();
    // The same instant twice is kept once.
    store
        .submit(switchboard::store::WriteRequest(vec![record_resources(rows[1..2].to_vec())]))
        .await
        .unwrap();

    let fleet = ok(&app, &admin, "/api/monitoring/resources").await;
    let latest: Vec<(String, f64)> = fleet
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["tenant_id"].as_str().unwrap().to_string(), r["cpu_pct"].as_f64().unwrap()))
        .collect();
    let mut expected = vec![(a.clone(), 3.0), (b.clone(), 2.0)];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(latest, expected, "{fleet}");
    let of_a = ok(&app, &admin, &format!("/api/tenants/{a}/resources?range=7d")).await;
    assert_eq!(of_a["current"], json!({"cpu_pct": 3.0, "mem_bytes": rows[2].mem_bytes, "disk_bytes": 10}));
    // A week ago is outside 7d's window (bucketed by the hour), the last two minutes inside.
    let points = of_a["history"].as_array().unwrap();
    assert!(!points.is_empty() && points.len() <= 2, "{of_a}");

    store.submit(switchboard::store::WriteRequest(vec![prune_resources(now - week)])).await.unwrap();
    use diesel::prelude::*;
    use switchboard::store::schema::tenant_resources;
    let left: Vec<i64> = store
        .read(|c| {
            Ok(tenant_resources::table
                .select(tenant_resources::recorded_at)
                .order(tenant_resources::recorded_at.asc())
                .load(c)?)
        })
        .await
        .unwrap();
    assert_eq!(left, vec![now - 120_000, now - 60_000, now - 30_000]);
}

// ---- routing -------------------------------------------------------------------

const ROUTING: &str = "/api/monitoring/routing";

async fn operator_key(app: &common::TestApp) -> String {
    switchboard::identity::accounts::new_operator_key(&app.state.store).await.expect("an operator key")
}

fn u(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("{pointer} is not a count: {v}"))
}

/// A histogram's `count`, once its shape is checked: every configured bound
/// in order (no `+Inf`), cumulative counts, none above `count`.
fn histogram_count(h: &Value, bounds_wanted: &[f64]) -> u64 {
    assert_eq!(keys(h), sorted(&["count", "sum_seconds", "buckets"]), "{h}");
    let count = u(h, "/count");
    assert!(h["sum_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{h}");
    let buckets = h["buckets"].as_array().unwrap();
    let bounds: Vec<f64> = buckets.iter().map(|b| b["le"].as_f64().unwrap()).collect();
    assert_eq!(bounds, bounds_wanted.to_vec(), "{h}");
    let counts: Vec<u64> = buckets.iter().map(|b| u(b, "/count")).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]) && counts.last() <= Some(&count), "{h}");
    count
}

/// The routing picture, with its shape checked.
async fn routing(app: &common::TestApp, admin: &str) -> Value {
    let p = ok(app, admin, ROUTING).await;
    assert_eq!(keys(&p), sorted(&ROUTING_KEYS), "{p}");
    assert_eq!(keys(&p["experts"]), sorted(&EXPERTS_KEYS), "{p}");
    assert_eq!(keys(&p["counters"]), sorted(&COUNTER_KEYS), "{p}");
    histogram_count(&p["time_to_route"], &switchboard::startup::SECONDS_BUCKETS);
    histogram_count(&p["resolution_time"], &switchboard::startup::RESOLUTION_BUCKETS);
    assert!((time_ms(&p["at"]) - switchboard::store::now_ms()).abs() < 5_000, "{p}");
    p
}

/// Polls the routing picture until `check` holds; returns it, or panics with the last one.
async fn routing_until(
    app: &common::TestApp,
    admin: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let p = routing(app, admin).await;
        if check(&p) {
            return p;
        }
        assert!(std::time::Instant::now() < end, "the routing picture never showed {what}: {p}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn queue(domain: &str, priority: &str, depth: u64) -> Value {
    json!({"domain": domain, "priority": priority, "depth": depth})
}

fn experts(
    total: u64,
    available: u64,
    busy: u64,
    offline: u64,
    open: u64,
    capacity: u64,
    free: u64,
) -> Value {
    json!({"total": total, "available": available, "busy": busy, "offline": offline,
        "open": open, "capacity": capacity, "free": free})
}

/// A label-less sample of a `/metrics` scrape.
fn scraped(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics")) as u64
}

#[actix_web::test]
async fn the_routing_picture_follows_cases_as_they_queue_route_and_resolve() {
    let app = app().await;
    let admin = common::sign_in(&app, ADMIN).await;
    let api = Api::of(&app);
    // Each app has its own router; the `/metrics` figures are the process's, shared by
    // every test running in it, so those are compared as lower bounds of deltas.
    let before = routing(&app, &admin).await;
    assert_eq!(before["queues"], json!([]));
    assert_eq!(before["open_cases"], 0);
    assert_eq!(before["experts"], experts(0, 0, 0, 0, 0, 0, 0));
    assert_eq!(before["expert_loads"], json!([]));
    let grew = |now: &Value, pointer: &str| u(now, pointer) - u(&before, pointer);

    // No expert: the cases wait, counted per domain and priority, most urgent first.
    let t = api.register("Routing Co").await;
    let urgent = [api.case(&t.key, "tax.us", "urgent").await, api.case(&t.key, "tax.us", "urgent").await];
    let standard = api.case(&t.key, "tax.us", "standard").await;
    let batch = api.case(&t.key, "legal.eu", "batch").await;
    let queued = routing(&app, &admin).await;
    assert_eq!(
        queued["queues"],
        json!([queue("legal.eu", "batch", 1), queue("tax.us", "urgent", 2), queue("tax.us", "standard", 1)])
    );
    assert_eq!(queued["open_cases"], 4);
    assert_eq!(queued["experts"], experts(0, 0, 0, 0, 0, 0, 0));
    assert!(grew(&queued, "/counters/created") >= 4, "{before} → {queued}");

    // An expert of the tenant takes the two urgent cases.
    let ada = api.expert(&t.key, "Ada", &["tax.us"], 2).await;
    for id in &urgent {
        api.until_status(&t.key, id, "routed", Some(&ada.id)).await;
    }
    let routed =
        routing_until(&app, &admin, "two first routes", |p| grew(p, "/time_to_route/count") >= 2).await;
    assert_eq!(routed["queues"], json!([queue("legal.eu", "batch", 1), queue("tax.us", "standard", 1)]));
    assert_eq!(routed["open_cases"], 4);
    assert_eq!(routed["experts"], experts(1, 1, 0, 0, 2, 2, 0));
    let ada_load = |open: u64, status: &str| {
        json!({"id": ada.id, "name": "Ada", "tenant_id": t.id, "status": status, "open": open,
            "max_concurrent": 2, "domains": ["tax.us"]})
    };
    assert_eq!(routed["expert_loads"], json!([ada_load(2, "available")]));
    assert!(grew(&routed, "/counters/assignments") >= 2, "{routed}");

    // A platform-wide expert (no tenant) takes the batch case; the most loaded come first.
    let op = operator_key(&app).await;
    let grace = api.expert(&op, "Grace", &["legal.eu"], 3).await;
    api.until_status(&t.key, &batch, "routed", Some(&grace.id)).await;
    let both = routing(&app, &admin).await;
    assert_eq!(both["queues"], json!([queue("tax.us", "standard", 1)]));
    assert_eq!(both["experts"], experts(2, 2, 0, 0, 3, 5, 2));
    let grace_load = json!({"id": grace.id, "name": "Grace", "tenant_id": null, "status": "available",
        "open": 1, "max_concurrent": 3, "domains": ["legal.eu"]});
    assert_eq!(both["expert_loads"], json!([ada_load(2, "available"), grace_load]));

    // Ada resolves one: the freed slot takes the standard case; the queues are empty.
    api.resolve(&ada.token, &urgent[0]).await;
    api.until_status(&t.key, &standard, "routed", Some(&ada.id)).await;
    let resolved =
        routing_until(&app, &admin, "four first routes", |p| grew(p, "/time_to_route/count") >= 4).await;
    assert_eq!(resolved["queues"], json!([]));
    assert_eq!(resolved["open_cases"], 3);
    assert_eq!(resolved["experts"], experts(2, 2, 0, 0, 3, 5, 2));
    assert_eq!(resolved["expert_loads"][0], ada_load(2, "available"));
    assert!(grew(&resolved, "/resolution_time/count") >= 1, "{before} → {resolved}");
    assert!(grew(&resolved, "/counters/resolved") >= 1, "{resolved}");
    assert!(grew(&resolved, "/counters/assignments") >= 4, "{resolved}");

    // A busy expert keeps its cases but offers no capacity.
    api.patch_expert(&t.key, &ada.id, json!({"status": "busy"})).await;
    let busy = routing_until(&app, &admin, "Ada busy", |p| p["experts"]["busy"] == 1).await;
    assert_eq!(busy["experts"], experts(2, 1, 1, 0, 3, 3, 2));
    assert_eq!(busy["expert_loads"][0], ada_load(2, "busy"));

    // The figures are the ones `/metrics` shows: a scrape between two pictures lies between them.
    let first = routing(&app, &admin).await;
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let second = routing(&app, &admin).await;
    for (sample, pointer) in [
        ("switchboard_routing_time_to_route_seconds_count", "/time_to_route/count"),
        ("switchboard_escalation_resolution_seconds_count", "/resolution_time/count"),
        ("switchboard_escalations_created_total", "/counters/created"),
        ("switchboard_escalations_resolved_total", "/counters/resolved"),
        ("switchboard_routing_assignments_total", "/counters/assignments"),
    ] {
        let m = scraped(&text, sample);
        assert!(u(&first, pointer) <= m && m <= u(&second, pointer), "{sample} {m}: {first} / {second}");
    }
}

// ---- webhooks ------------------------------------------------------------------

const WEBHOOKS: &str = "/api/monitoring/webhooks";

/// The webhook picture at `query`, with its shape checked.
async fn webhooks(app: &common::TestApp, admin: &str, query: &str) -> Value {
    let p = ok(app, admin, &format!("{WEBHOOKS}{query}")).await;
    assert_eq!(keys(&p), sorted(&WEBHOOKS_KEYS), "{p}");
    assert_eq!(keys(&p["counts"]), sorted(&["pending", "retrying", "delivered", "failed"]), "{p}");
    for d in p["deliveries"].as_array().unwrap() {
        assert_eq!(keys(d), sorted(&DELIVERY_KEYS), "no payload, no secret: {d}");
    }
    for c in p["circuits"].as_array().unwrap() {
        assert_eq!(keys(c), sorted(&CIRCUIT_KEYS), "{c}");
    }
    p
}

fn delivery_ids(p: &Value) -> Vec<String> {
    p["deliveries"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect()
}

#[actix_web::test]
async fn the_webhook_picture_shows_every_delivery_with_its_retry_state() {
    let failing = Receiver::start(Behaviour::Always(500));
    let accepting = Receiver::start(Behaviour::Ok);
    let app = app_with(&[
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
        // One retry, an hour after the first failure: the failing delivery stays `retrying`.
        ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "1h"),
        ("SWITCHBOARD_SLA_STANDARD", "300ms"),
    ])
    .await;
    let admin = common::sign_in(&app, ADMIN).await;
    let empty = webhooks(&app, &admin, "").await;
    assert_eq!(empty["counts"], json!({"pending": 0, "retrying": 0, "delivered": 0, "failed": 0}));
    assert_eq!((&empty["deliveries"], &empty["circuits"]), (&json!([]), &json!([])));

    // Two cases expire with no expert: each `callback_url` is owed `escalation.expired`.
    let api = Api::of(&app);
    let t = api.register("Hooked").await;
    let expiring =
        |url: String| json!({"domain": "tax.us", "query": "Is this deductible?", "callback_url": url});
    let delivered_case =
        api.create(&t.key, expiring(accepting.url("/hook"))).await["id"].as_str().unwrap().to_string();
    accepting.until(Duration::from_secs(10), "the expiry delivery", |r| !r.is_empty()).await;
    let retrying_case =
        api.create(&t.key, expiring(failing.url("/hook"))).await["id"].as_str().unwrap().to_string();
    failing.until(Duration::from_secs(10), "the first attempt", |r| !r.is_empty()).await;

    let end = std::time::Instant::now() + Duration::from_secs(10);
    let all = loop {
        let p = webhooks(&app, &admin, "").await;
        if p["counts"] == json!({"pending": 0, "retrying": 1, "delivered": 1, "failed": 0}) {
            break p;
        }
        assert!(std::time::Instant::now() < end, "never one retrying and one delivered: {p}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let list = all["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{all}");
    // Newest first: the failing case expired after the other's delivery.
    let (retrying, delivered) = (&list[0], &list[1]);
    assert_eq!(retrying["escalation_id"], retrying_case.as_str(), "{all}");
    assert_eq!(delivered["escalation_id"], delivered_case.as_str(), "{all}");
    assert!(time_ms(&retrying["created_at"]) >= time_ms(&delivered["created_at"]), "{all}");
    for d in list {
        assert!(d["id"].as_str().unwrap().starts_with("msg_"), "{d}");
        assert_eq!((&d["tenant_id"], &d["subscription_id"]), (&json!(t.id), &Value::Null), "{d}");
        assert_eq!(d["event"], "escalation.expired", "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
    }
    assert_eq!(retrying["url"], failing.url("/hook"));
    assert_eq!(retrying["status"], "retrying");
    assert_eq!(retrying["last_status_code"], 500);
    assert!(retrying["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{retrying}");
    assert_eq!(retrying["delivered_at"], Value::Null);
    let due_in = time_ms(&retrying["next_attempt_at"]) - switchboard::store::now_ms();
    // The schedule's hour plus up to 10% jitter.
    assert!(due_in > 55 * 60_000 && due_in <= 67 * 60_000, "the retry is an hour away: {retrying}");
    assert_eq!(delivered["url"], accepting.url("/hook"));
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(delivered["last_status_code"], 200);
    assert_eq!((&delivered["last_error"], &delivered["next_attempt_at"]), (&Value::Null, &Value::Null));
    assert!(time_ms(&delivered["delivered_at"]) >= time_ms(&delivered["created_at"]), "{delivered}");

    // The failing endpoint's sender holds the retry; one failure leaves its circuit closed.
    let circuit = all["circuits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["endpoint"] == failing.url("/hook"))
        .cloned()
        .unwrap_or_else(|| panic!("no circuit for the failing endpoint: {all}"));
    assert_eq!(
        circuit,
        json!({"endpoint": failing.url("/hook"), "state": "closed", "queued": 0, "in_flight": 0, "scheduled_retries": 1})
    );

    // Filters: by status, and the newest `limit`; the counts stay over every delivery.
    let (retrying_id, delivered_id) = (retrying["id"].as_str().unwrap(), delivered["id"].as_str().unwrap());
    for (query, expected) in [
        ("?status=retrying", vec![retrying_id]),
        ("?status=delivered", vec![delivered_id]),
        ("?status=pending", vec![]),
        ("?status=failed&limit=500", vec![]),
        ("?limit=1", vec![retrying_id]),
        ("?limit=2&status=delivered", vec![delivered_id]),
        ("?limit=500", vec![retrying_id, delivered_id]),
    ] {
        let p = webhooks(&app, &admin, query).await;
        assert_eq!(delivery_ids(&p), expected, "{query}: {p}");
        assert_eq!(p["counts"], all["counts"], "{query}");
    }
    for bad in [
        "?status=bogus",
        "?status=",
        "?status=RETRYING",
        "?limit=0",
        "?limit=-1",
        "?limit=501",
        "?limit=ten",
        "?limit=1.5",
        "?limit=",
        "?status=retrying&limit=0",
    ] {
        refused(&app, Some(admin.as_str()), &format!("{WEBHOOKS}{bad}"), StatusCode::BAD_REQUEST).await;
    }

    // What the operator console calls: the same picture, `limit` clamped, a bad status refused.
    use switchboard::http::platform::monitoring::webhook_picture;
    let direct = webhook_picture(&app.state, Some("retrying"), 0).await.unwrap();
    assert_eq!(direct.deliveries.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec![retrying_id]);
    assert_eq!(webhook_picture(&app.state, None, 10_000).await.unwrap().deliveries.len(), 2);
    assert!(matches!(
        webhook_picture(&app.state, Some("lost"), 50).await,
        Err(switchboard::error::AppError::BadRequest(_))
    ));
}
