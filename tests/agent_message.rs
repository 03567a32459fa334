//! `POST /v1/cerebrals/:id/message`, `GET /v1/rate-limits` and the session
//! transcript through the public API: the answer's exact shape (offline
//! model); every status the spec lists — 401 (missing, malformed, revoked key;
//! a JWT is no key), 403 (key locked to another Cerebral, another tenant's
//! Cerebral, an Origin the key does not allow), 404 (unknown, draft, paused),
//! 400, 422 (identity_mode "required"), 429 at the free plan's 60/minute with
//! `Retry-After`, 402 once the day's token budget is spent, 503
//! `TENANT_NOT_RUNNING` and `CIRCUIT_OPEN` (threshold, no call while open,
//! half-open probe); identity modes; session memory (offline and as fed to a
//! fake OpenAI-compatible model); and the health headers on every
//! authenticated `/v1` answer, never on an unauthenticated 401.

#[path = "common/agent.rs"]
mod agent;
mod common;
#[path = "common/escalation.rs"]
mod esc;
#[path = "common/fake_llm.rs"]
mod fake_llm;

use std::time::Duration;

use agent::{register_as, sign_in, v1, v1_error};
use esc::{keys, sorted, time_ms, Api, Full, Tenant};
use fake_llm::{FakeLlm, Mode};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Sign-in limits out of the way: some tests sign several people in.
const ENV: [(&str, &str); 1] = [("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m")];

/// The fields of a reply's `data` and of its `metadata`.
const REPLY_KEYS: [&str; 4] = ["message", "session_id", "execution_id", "metadata"];
const METADATA_KEYS: [&str; 6] =
    ["model", "tokens_used", "actions_executed", "latency_ms", "sop_matched", "escalation_ids"];
/// The fields of a transcript and of one of its entries.
const TRANSCRIPT_KEYS: [&str; 3] = ["cerebralId", "sessionId", "messages"];
const ENTRY_KEYS: [&str; 7] =
    ["id", "role", "content", "customerId", "executionId", "escalationId", "createdAt"];

/// The headers every authenticated `/v1` answer carries.
const HEALTH_HEADERS: [&str; 5] =
    ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-budget-state", "x-circuit-state"];

/// The system prompt of the Cerebrals made here (the offline token estimate counts it).
const PROMPT: &str = "You answer briefly.";

// ---- helpers ----------------------------------------------------------------

/// A tenant registered under a known email and its Owner's `Authorization` value.
async fn owner(app: &common::TestApp, name: &str) -> (Tenant, String) {
    let (tenant, email) = register_as(&Api::of(app), name).await;
    let auth = sign_in(app, &email).await;
    (tenant, auth)
}

/// Asserts a success envelope with `status`; returns `data`.
fn v1_data(got: (StatusCode, Value), status: StatusCode, what: &str) -> Value {
    let (code, body) = got;
    assert_eq!(code, status, "{what}: {body}");
    assert_eq!(body["success"], json!(true), "{what}: {body}");
    body["data"].clone()
}

/// A new Cerebral of the JWT's tenant (or of `tenant`); returns its id.
async fn cerebral_in(api: &Api, auth: &str, tenant: Option<&str>, body: Value) -> String {
    let data = v1_data(
        v1(api, Method::POST, "/v1/cerebrals", Some(body.clone()), Some(auth), tenant).await,
        StatusCode::CREATED,
        &format!("POST /v1/cerebrals {body}"),
    );
    data["id"].as_str().expect("id").to_string()
}

async fn cerebral(api: &Api, auth: &str, name: &str) -> String {
    cerebral_in(api, auth, None, json!({"name": name, "system_prompt": PROMPT})).await
}

/// A new `sk_live_` key of the JWT's tenant (or of `tenant`): (id, key).
async fn agent_key_in(api: &Api, auth: &str, tenant: Option<&str>, body: Value) -> (String, String) {
    let data = v1_data(
        v1(api, Method::POST, "/v1/api-keys", Some(body.clone()), Some(auth), tenant).await,
        StatusCode::CREATED,
        &format!("POST /v1/api-keys {body}"),
    );
    let key = data["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("sk_live_"), "{key}");
    (data["id"].as_str().expect("id").to_string(), key)
}

async fn agent_key(api: &Api, auth: &str, body: Value) -> String {
    agent_key_in(api, auth, None, body).await.1
}

/// A tenant, its Owner's JWT, one active Cerebral and an unrestricted key.
struct Setup {
    tenant: Tenant,
    auth: String,
    cerebral: String,
    key: String,
}

async fn setup(app: &common::TestApp, name: &str) -> Setup {
    let api = Api::of(app);
    let (tenant, auth) = owner(app, name).await;
    let cerebral = cerebral(&api, &auth, &format!("{name} bot")).await;
    let key = agent_key(&api, &auth, json!({"name": format!("{name} key")})).await;
    Setup { tenant, auth, cerebral, key }
}

fn message_path(cerebral: &str) -> String {
    format!("/v1/cerebrals/{cerebral}/message")
}

/// `POST /v1/cerebrals/{cerebral}/message` with `X-API-Key: key` and `extra` headers.
async fn send_with(api: &Api, cerebral: &str, key: &str, body: Value, extra: &[(&str, &str)]) -> Full {
    let mut headers = vec![("X-API-Key", key)];
    headers.extend_from_slice(extra);
    api.full(Method::POST, &message_path(cerebral), Some(body), &headers).await
}

async fn send(api: &Api, cerebral: &str, key: &str, body: Value) -> Full {
    send_with(api, cerebral, key, body, &[]).await
}

/// Sends and asserts a 200 with the documented shape; returns `data` and the headers.
async fn answered(api: &Api, cerebral: &str, key: &str, body: Value) -> (Value, HeaderMap) {
    let (status, headers, answer) = send(api, cerebral, key, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "message {body}: {answer}");
    assert_eq!(answer["success"], json!(true), "{answer}");
    let data = answer["data"].clone();
    assert_reply(&data);
    health(&headers);
    (data, headers)
}

/// The exact fields of a reply and of its metadata.
fn assert_reply(data: &Value) {
    assert_eq!(keys(data), sorted(&REPLY_KEYS), "{data}");
    assert_eq!(keys(&data["metadata"]), sorted(&METADATA_KEYS), "{data}");
    assert!(data["message"].as_str().is_some_and(|m| !m.is_empty()), "{data}");
    let exec = data["execution_id"].as_str().unwrap_or_else(|| panic!("execution_id: {data}"));
    let suffix = exec.strip_prefix("exec_").unwrap_or_else(|| panic!("execution_id {exec} lacks exec_"));
    assert!(!suffix.is_empty(), "{exec}");
    let m = &data["metadata"];
    assert!(m["tokens_used"].is_u64(), "{data}");
    assert!(m["actions_executed"].is_u64(), "{data}");
    assert!(m["latency_ms"].is_u64(), "{data}");
    assert!(m["escalation_ids"].is_array(), "{data}");
}

/// An error answer with `status` and `code`: the envelope; returns the headers and message.
async fn refused(
    api: &Api,
    cerebral: &str,
    key: &str,
    body: Value,
    status: StatusCode,
    code: &str,
) -> (HeaderMap, String) {
    refused_with(api, cerebral, key, body, &[], status, code).await
}

async fn refused_with(
    api: &Api,
    cerebral: &str,
    key: &str,
    body: Value,
    extra: &[(&str, &str)],
    status: StatusCode,
    code: &str,
) -> (HeaderMap, String) {
    let (got, headers, answer) = send_with(api, cerebral, key, body.clone(), extra).await;
    assert_eq!(got, status, "message {body} with {extra:?}: {answer}");
    let message = v1_error(&answer, code);
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        answer["error"]["requestId"].as_str(),
        "requestId is the X-Request-Id"
    );
    (headers, message)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
        .to_str()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The health headers, checked: (limit, remaining, reset, budget, circuit).
#[derive(Debug)]
struct Health {
    limit: String,
    remaining: String,
    reset: i64,
    budget: String,
    circuit: String,
}

fn health(headers: &HeaderMap) -> Health {
    let h = Health {
        limit: header(headers, "x-ratelimit-limit").to_string(),
        remaining: header(headers, "x-ratelimit-remaining").to_string(),
        reset: header(headers, "x-ratelimit-reset")
            .parse()
            .unwrap_or_else(|e| panic!("X-RateLimit-Reset is not a number ({e}): {headers:?}")),
        budget: header(headers, "x-budget-state").to_string(),
        circuit: header(headers, "x-circuit-state").to_string(),
    };
    for v in [&h.limit, &h.remaining] {
        assert!(v == "unlimited" || v.parse::<u64>().is_ok(), "{h:?}");
    }
    let now = chrono::Utc::now().timestamp();
    assert!(h.reset > now - 2 && h.reset <= now + 86_400 + 2, "X-RateLimit-Reset {} vs now {now}", h.reset);
    assert!(["ok", "warn", "throttle", "block"].contains(&h.budget.as_str()), "{h:?}");
    assert!(["closed", "open", "half_open"].contains(&h.circuit.as_str()), "{h:?}");
    h
}

fn no_health(headers: &HeaderMap, what: &str) {
    for name in HEALTH_HEADERS.iter().chain(["retry-after"].iter()) {
        assert!(headers.get(*name).is_none(), "{what}: unexpected {name} in {headers:?}");
    }
}

/// The transcript of a session (JWT), as (status, body).
async fn transcript(api: &Api, auth: &str, cerebral: &str, session: &str) -> (StatusCode, Value) {
    v1(api, Method::GET, &format!("/v1/cerebrals/{cerebral}/sessions/{session}"), None, Some(auth), None)
        .await
}

async fn transcript_ok(api: &Api, auth: &str, cerebral: &str, session: &str) -> Value {
    let data = v1_data(transcript(api, auth, cerebral, session).await, StatusCode::OK, "transcript");
    assert_eq!(keys(&data), sorted(&TRANSCRIPT_KEYS), "{data}");
    assert_eq!(data["cerebralId"], cerebral, "{data}");
    assert_eq!(data["sessionId"], session, "{data}");
    let entries = data["messages"].as_array().unwrap_or_else(|| panic!("messages: {data}"));
    let mut last = i64::MIN;
    for e in entries {
        assert_eq!(keys(e), sorted(&ENTRY_KEYS), "{e}");
        let id = e["id"].as_str().unwrap_or_else(|| panic!("id: {e}"));
        assert!(id.strip_prefix("mem_").is_some_and(|s| !s.is_empty()), "{id}");
        assert!(["user", "assistant", "expert"].contains(&e["role"].as_str().unwrap_or("")), "{e}");
        let at = time_ms(&e["createdAt"]);
        assert!(at >= last, "entries are oldest first: {data}");
        last = at;
    }
    data
}

/// The `(role, content)` of each entry.
fn turns(transcript: &Value) -> Vec<(String, String)> {
    transcript["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["role"].as_str().unwrap().to_string(), e["content"].as_str().unwrap().to_string()))
        .collect()
}

/// `GET /v1/rate-limits` with the JWT.
async fn rate_limits(api: &Api, auth: &str) -> (Value, HeaderMap) {
    let (status, headers, body) =
        api.full(Method::GET, "/v1/rate-limits", None, &[("Authorization", auth)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], json!(true), "{body}");
    health(&headers);
    (body["data"].clone(), headers)
}

/// The request windows are UTC minutes: when fewer than `need` seconds are
/// left of this one, waits for the next, so that the counts a test asserts
/// across calls stay in one window.
async fn in_one_minute(need: u64) {
    let into = chrono::Utc::now().timestamp_millis().rem_euclid(60_000) as u64;
    if into + need * 1000 > 60_000 {
        actix_web::rt::time::sleep(Duration::from_millis(60_000 - into + 100)).await;
    }
}

/// ceil(characters / 4): the offline model's token estimate.
fn estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// How many customers the tenant has (straight from the database).
async fn customer_count(app: &common::TestApp, tenant_id: &str) -> i64 {
    use diesel::prelude::*;
    use switchboard::store::schema::customers;
    let tid = tenant_id.to_string();
    app.state
        .store
        .read(move |c| {
            Ok(customers::table.filter(customers::tenant_id.eq(tid)).count().get_result::<i64>(c)?)
        })
        .await
        .unwrap()
}

/// An app whose tenants may point their provider at a fake on loopback.
async fn app_for_fakes(extra: &[(&str, &str)]) -> common::TestApp {
    common::spawn_with_outbox(&[&ENV[..], &[("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true")], extra].concat())
        .await
}

/// Points the tenant's provider at the fake (OpenAI-compatible, model `m`, key `sk-test`).
async fn use_fake(app: &common::TestApp, auth: &str, tenant_id: &str, fake: &FakeLlm) {
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/tenants/{tenant_id}/config"),
            Some(json!({"provider": "openai", "model": "m", "base_url": fake.url, "api_key": "sk-test"})),
            &[("Authorization", auth)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "PATCH config: {body}");
}

// ---- 200 --------------------------------------------------------------------

#[actix_web::test]
async fn a_message_is_answered_with_the_documented_fields() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "happy").await;
    in_one_minute(10).await;

    let text = "What is the status of order #1234?";
    let (data, headers) =
        answered(&api, &s.cerebral, &s.key, json!({"message": text, "session_id": "user-abc-123"})).await;
    let reply = format!("Offline reply to \"{text}\".");
    assert_eq!(data["message"], reply, "{data}");
    assert_eq!(data["session_id"], "user-abc-123");
    let m = &data["metadata"];
    assert_eq!(m["model"], "offline-1", "{data}");
    // The offline estimate: the prompt (system prompt and message) and the reply, ceil(chars / 4) each.
    let tokens = (PROMPT.chars().count() as u64 + text.chars().count() as u64).div_ceil(4) + estimate(&reply);
    assert_eq!(m["tokens_used"], tokens, "{data}");
    assert!(tokens > 0);
    assert_eq!(m["actions_executed"], 0);
    assert_eq!(m["sop_matched"], Value::Null);
    assert_eq!(m["escalation_ids"], json!([]));
    assert!(m["latency_ms"].as_u64().unwrap() < 60_000, "{data}");

    // One request counted of the free plan's 60 a minute; nothing wrong.
    let h = health(&headers);
    assert_eq!((h.limit.as_str(), h.remaining.as_str()), ("60", "59"), "{h:?}");
    assert_eq!((h.budget.as_str(), h.circuit.as_str()), ("ok", "closed"), "{h:?}");
    let now = chrono::Utc::now().timestamp();
    assert!(h.reset > now - 1 && h.reset <= now - now.rem_euclid(60) + 60, "the minute's end: {h:?}");

    // Without a session: session_id null, and a new execution id each time.
    let (first, _) = answered(&api, &s.cerebral, &s.key, json!({"message": "hi"})).await;
    let (second, _) = answered(&api, &s.cerebral, &s.key, json!({"message": "hi"})).await;
    assert_eq!(first["session_id"], Value::Null, "{first}");
    assert_ne!(first["execution_id"], second["execution_id"]);
    assert_ne!(first["execution_id"], data["execution_id"]);

    // GET /v1/rate-limits shows the three counted requests.
    let (limits, _) = rate_limits(&api, &s.auth).await;
    assert_eq!(
        limits,
        json!({
            "tenant": {"requests_per_minute": 60, "requests_per_hour": 1000, "requests_per_day": 10000},
            "current": {"minute": 3, "hour": 3, "day": 3},
            "health": {"budget_state": "ok", "circuit_state": "closed"},
        })
    );
}

// ---- 401 --------------------------------------------------------------------

#[actix_web::test]
async fn a_missing_malformed_or_revoked_key_or_a_jwt_is_401_without_health_headers() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "unauth").await;
    in_one_minute(15).await;
    let (key_id, revocable) = agent_key_in(&api, &s.auth, None, json!({"name": "to revoke"})).await;
    answered(&api, &s.cerebral, &revocable, json!({"message": "before"})).await;
    let (status, body) =
        v1(&api, Method::DELETE, &format!("/v1/api-keys/{key_id}"), None, Some(&s.auth), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let jwt = s.auth.strip_prefix("Bearer ").unwrap().to_string();
    let key_as_bearer = format!("Bearer {}", s.key);
    let body = json!({"message": "hello"});
    let path = message_path(&s.cerebral);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no key", vec![]),
        ("empty key", vec![("X-API-Key", "")]),
        ("malformed key", vec![("X-API-Key", "sk_live_not-a-real-key")]),
        ("garbage", vec![("X-API-Key", "hello world")]),
        ("revoked key", vec![("X-API-Key", revocable.as_str())]),
        ("the tenant's escalation (cero_) key", vec![("X-API-Key", s.tenant.key.as_str())]),
        ("a JWT as X-API-Key", vec![("X-API-Key", jwt.as_str())]),
        ("a JWT as Bearer", vec![("Authorization", s.auth.as_str())]),
        ("the key as Bearer", vec![("Authorization", key_as_bearer.as_str())]),
    ];
    for (what, headers) in cases {
        let (status, got, answer) = api.full(Method::POST, &path, Some(body.clone()), &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {answer}");
        v1_error(&answer, "UNAUTHORIZED");
        no_health(&got, what);
    }

    // The credential is decided before the body: a malformed body without a
    // good key is 401, not 400.
    for (what, key) in [("no key", None), ("revoked key", Some(revocable.as_str()))] {
        let mut req = api
            .client
            .post(format!("{}{}", api.base, path))
            .header("Content-Type", "application/json")
            .body("{not json");
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "malformed body, {what}: {answer}");
        v1_error(&answer, "UNAUTHORIZED");
        no_health(&headers, what);
    }

    // /v1/rate-limits too: neither credential, or a bad one.
    for (what, headers) in [
        ("nothing", vec![]),
        ("revoked key", vec![("X-API-Key", revocable.as_str())]),
        ("bad JWT", vec![("Authorization", "Bearer not.a.jwt")]),
    ] {
        let (status, got, answer) = api.full(Method::GET, "/v1/rate-limits", None, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "rate-limits, {what}: {answer}");
        v1_error(&answer, "UNAUTHORIZED");
        no_health(&got, what);
    }

    // None of these counted: the good key is still at its first request.
    let (_, headers) = answered(&api, &s.cerebral, &s.key, json!({"message": "after"})).await;
    // 1 (revocable, before) + 1 now.
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "58");
}

// ---- 403 --------------------------------------------------------------------

#[actix_web::test]
async fn a_key_locked_to_another_cerebral_is_403() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "locked").await;
    let other = cerebral(&api, &s.auth, "other bot").await;
    let locked = agent_key(&api, &s.auth, json!({"name": "locked", "cerebral_id": s.cerebral})).await;

    answered(&api, &s.cerebral, &locked, json!({"message": "mine"})).await;
    let (headers, message) =
        refused(&api, &other, &locked, json!({"message": "not mine"}), StatusCode::FORBIDDEN, "FORBIDDEN")
            .await;
    assert!(message.to_lowercase().contains("cerebral"), "{message}");
    health(&headers);
    // Also before the Cerebral is looked up: an unknown id is 403 too for a locked key.
    let unknown = uuid::Uuid::now_v7().to_string();
    refused(&api, &unknown, &locked, json!({"message": "x"}), StatusCode::FORBIDDEN, "FORBIDDEN").await;
    // An unlocked key reaches the other Cerebral.
    answered(&api, &other, &s.key, json!({"message": "anyone's"})).await;
    // A key cannot be locked to a Cerebral the tenant does not have.
    let foreign = setup(&app, "locked-elsewhere").await;
    for id in [unknown.as_str(), foreign.cerebral.as_str()] {
        let (status, body) = v1(
            &api,
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "bad lock", "cerebral_id": id})),
            Some(&s.auth),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(v1_error(&body, "BAD_REQUEST").contains("cerebral_id"), "{body}");
    }
}

#[actix_web::test]
async fn another_tenants_cerebral_is_403() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let a = setup(&app, "tenant-a").await;
    let b = setup(&app, "tenant-b").await;

    let (headers, message) =
        refused(&api, &b.cerebral, &a.key, json!({"message": "hi"}), StatusCode::FORBIDDEN, "FORBIDDEN")
            .await;
    assert!(message.to_lowercase().contains("tenant"), "{message}");
    health(&headers);
    // Nothing reached B's Cerebral: a session on it stays unknown to B.
    refused(
        &api,
        &b.cerebral,
        &a.key,
        json!({"message": "hi", "session_id": "s"}),
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let (status, body) = transcript(&api, &b.auth, &b.cerebral, "s").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Each key reaches its own.
    answered(&api, &a.cerebral, &a.key, json!({"message": "hi"})).await;
    answered(&api, &b.cerebral, &b.key, json!({"message": "hi"})).await;
}

#[actix_web::test]
async fn an_origin_the_key_does_not_allow_is_403() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "origins").await;
    let browser =
        agent_key(&api, &s.auth, json!({"name": "widget", "allowed_origins": ["https://a.example"]})).await;
    let server_only = agent_key(&api, &s.auth, json!({"name": "server", "allowed_origins": []})).await;
    let msg = json!({"message": "hi"});

    // Listed origin: accepted.
    let (status, headers, answer) =
        send_with(&api, &s.cerebral, &browser, msg.clone(), &[("Origin", "https://a.example")]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    health(&headers);
    // Another origin (or a near miss): refused.
    for origin in ["https://b.example", "http://a.example", "https://a.example.evil.com", "null"] {
        refused_with(
            &api,
            &s.cerebral,
            &browser,
            msg.clone(),
            &[("Origin", origin)],
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
    // Server-to-server (no Origin) with the browser key: accepted.
    answered(&api, &s.cerebral, &browser, msg.clone()).await;

    // Empty list: any Origin refused, none accepted.
    for origin in ["https://a.example", "https://b.example"] {
        refused_with(
            &api,
            &s.cerebral,
            &server_only,
            msg.clone(),
            &[("Origin", origin)],
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
    answered(&api, &s.cerebral, &server_only, msg.clone()).await;
    // The default key (no allowed_origins given) is server-to-server only too.
    refused_with(
        &api,
        &s.cerebral,
        &s.key,
        msg.clone(),
        &[("Origin", "https://a.example")],
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
}

// ---- 404 --------------------------------------------------------------------

#[actix_web::test]
async fn an_unknown_draft_or_paused_cerebral_is_404() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "notfound").await;
    let msg = json!({"message": "hi"});

    for unknown in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".to_string()] {
        let (headers, _) =
            refused(&api, &unknown, &s.key, msg.clone(), StatusCode::NOT_FOUND, "NOT_FOUND").await;
        health(&headers);
    }

    let draft = cerebral_in(&api, &s.auth, None, json!({"name": "draft bot", "status": "draft"})).await;
    refused(&api, &draft, &s.key, msg.clone(), StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // Active answers; paused is 404; active again answers.
    answered(&api, &s.cerebral, &s.key, msg.clone()).await;
    let path = format!("/v1/cerebrals/{}", s.cerebral);
    let (status, body) =
        v1(&api, Method::PATCH, &path, Some(json!({"status": "paused"})), Some(&s.auth), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    refused(&api, &s.cerebral, &s.key, msg.clone(), StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let (status, body) =
        v1(&api, Method::PATCH, &path, Some(json!({"status": "active"})), Some(&s.auth), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    answered(&api, &s.cerebral, &s.key, msg.clone()).await;

    // A deleted Cerebral is unknown.
    let (status, body) = v1(&api, Method::DELETE, &path, None, Some(&s.auth), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    refused(&api, &s.cerebral, &s.key, msg, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

// ---- 400 --------------------------------------------------------------------

#[actix_web::test]
async fn a_bad_body_is_400() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "badbody").await;
    in_one_minute(15).await;

    let cases = [
        ("no message", json!({})),
        ("null message", json!({"message": null})),
        ("empty message", json!({"message": ""})),
        ("blank message", json!({"message": "   "})),
        ("message not a string", json!({"message": 5})),
        ("message too long", json!({"message": "a".repeat(32_001)})),
        ("empty session_id", json!({"message": "hi", "session_id": ""})),
        ("session_id too long", json!({"message": "hi", "session_id": "s".repeat(201)})),
        ("session_id with a control character", json!({"message": "hi", "session_id": "a\nb"})),
        ("session_id not a string", json!({"message": "hi", "session_id": 7})),
        ("identity a string", json!({"message": "hi", "identity": "jane@example.com"})),
        ("identity an array", json!({"message": "hi", "identity": [{"email": "jane@example.com"}]})),
        ("identity a number", json!({"message": "hi", "identity": 1})),
        ("metadata an array", json!({"message": "hi", "metadata": ["web"]})),
        ("empty customer_id", json!({"message": "hi", "customer_id": ""})),
    ];
    // Each is counted (and so carries the headers), whether the handler or the
    // body's schema refuses it.
    let mut remaining = 60;
    for (what, body) in cases {
        let (status, headers, answer) = send(&api, &s.cerebral, &s.key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        v1_error(&answer, "BAD_REQUEST");
        remaining -= 1;
        assert_eq!(health(&headers).remaining, remaining.to_string(), "{what}");
    }
    // Not JSON, or no body at all: 400 too (415 for another media type), counted.
    for (what, content_type, raw, expected) in [
        ("not JSON", "application/json", "{not json", StatusCode::BAD_REQUEST),
        ("no body", "application/json", "", StatusCode::BAD_REQUEST),
        ("a JSON array", "application/json", "[]", StatusCode::BAD_REQUEST),
        ("text", "text/plain", "hello", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let res = api
            .client
            .post(format!("{}{}", api.base, message_path(&s.cerebral)))
            .header("X-API-Key", &s.key)
            .header("Content-Type", content_type)
            .body(raw)
            .send()
            .await
            .unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{what}: {answer}");
        v1_error(&answer, "BAD_REQUEST");
        remaining -= 1;
        assert_eq!(health(&headers).remaining, remaining.to_string(), "{what}");
    }
    // The body is checked after the key and the Cerebral: a bad body to an
    // unknown Cerebral is 404, through a key locked elsewhere 403.
    let unknown = uuid::Uuid::now_v7().to_string();
    refused(&api, &unknown, &s.key, json!({"message": 5}), StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let other = cerebral(&api, &s.auth, "other bot").await;
    let locked = agent_key(&api, &s.auth, json!({"name": "locked", "cerebral_id": other})).await;
    refused(&api, &s.cerebral, &locked, json!({}), StatusCode::FORBIDDEN, "FORBIDDEN").await;
    // The limits themselves are fine.
    answered(
        &api,
        &s.cerebral,
        &s.key,
        json!({"message": "a".repeat(32_000), "session_id": "s".repeat(200)}),
    )
    .await;
}

// ---- 422 and identity modes ---------------------------------------------------

#[actix_web::test]
async fn required_identity_mode_is_422_without_identity_or_customer_id() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "required").await;
    let key = agent_key(&api, &s.auth, json!({"name": "strict", "identity_mode": "required"})).await;

    for body in [json!({"message": "hi"}), json!({"message": "hi", "identity": null, "metadata": {"a": 1}})] {
        let (headers, message) =
            refused(&api, &s.cerebral, &key, body, StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE").await;
        assert!(message.contains("required"), "{message}");
        health(&headers);
    }
    assert_eq!(customer_count(&app, &s.tenant.id).await, 0);

    // Either one is enough; each makes (or finds) a customer.
    let (by_id, _) = answered(
        &api,
        &s.cerebral,
        &key,
        json!({"message": "hi", "customer_id": "shop-1", "session_id": "r1"}),
    )
    .await;
    assert_eq!(by_id["session_id"], "r1");
    let (_, _) = answered(
        &api,
        &s.cerebral,
        &key,
        json!({"message": "hi", "identity": {"email": "jane@example.com", "name": "Jane"}, "session_id": "r2"}),
    )
    .await;
    assert_eq!(customer_count(&app, &s.tenant.id).await, 2);
    for session in ["r1", "r2"] {
        let t = transcript_ok(&api, &s.auth, &s.cerebral, session).await;
        for e in t["messages"].as_array().unwrap() {
            assert!(e["customerId"].as_str().is_some_and(|c| c.starts_with("cust_")), "{t}");
        }
    }
}

#[actix_web::test]
async fn anonymous_mode_ignores_the_customer() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "anon").await;
    let key = agent_key(&api, &s.auth, json!({"name": "anon", "identity_mode": "anonymous"})).await;

    let (data, _) = answered(
        &api,
        &s.cerebral,
        &key,
        json!({"message": "hi", "session_id": "anon-1", "customer_id": "shop-9",
               "identity": {"email": "who@example.com", "name": "Who"}}),
    )
    .await;
    assert_eq!(data["message"], "Offline reply to \"hi\".");
    let t = transcript_ok(&api, &s.auth, &s.cerebral, "anon-1").await;
    assert_eq!(turns(&t).len(), 2, "{t}");
    for e in t["messages"].as_array().unwrap() {
        assert_eq!(e["customerId"], Value::Null, "{t}");
    }
    assert_eq!(customer_count(&app, &s.tenant.id).await, 0, "no customer is created");
    // No identity needed either.
    answered(&api, &s.cerebral, &key, json!({"message": "hi"})).await;
}

#[actix_web::test]
async fn identified_mode_creates_the_customer_on_the_fly() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "identified").await;
    // The default identity_mode is "identified".
    let key = s.key.clone();

    // Without identity: fine, no customer.
    answered(&api, &s.cerebral, &key, json!({"message": "hi", "session_id": "nobody"})).await;
    let t = transcript_ok(&api, &s.auth, &s.cerebral, "nobody").await;
    assert!(t["messages"].as_array().unwrap().iter().all(|e| e["customerId"].is_null()), "{t}");
    assert_eq!(customer_count(&app, &s.tenant.id).await, 0);

    // customer_id: your id, as the customer's external id.
    answered(&api, &s.cerebral, &key, json!({"message": "hi", "session_id": "c1", "customer_id": "shop-42"}))
        .await;
    let t = transcript_ok(&api, &s.auth, &s.cerebral, "c1").await;
    let cust =
        t["messages"][0]["customerId"].as_str().unwrap_or_else(|| panic!("customerId: {t}")).to_string();
    assert!(cust.starts_with("cust_"), "{cust}");
    assert_eq!(t["messages"][1]["customerId"], cust.as_str(), "{t}");
    let got = v1_data(
        api.get(&format!("/v1/customers/{cust}"), &[("X-API-Key", &key)]).await,
        StatusCode::OK,
        "GET customer",
    );
    assert_eq!(got["id"], cust.as_str());
    assert_eq!(got["externalId"], "shop-42", "{got}");

    // The same customer_id again (and the cust_ id itself) find the same customer.
    answered(
        &api,
        &s.cerebral,
        &key,
        json!({"message": "again", "session_id": "c1", "customer_id": "shop-42"}),
    )
    .await;
    answered(&api, &s.cerebral, &key, json!({"message": "by id", "session_id": "c1", "customer_id": cust}))
        .await;
    let t = transcript_ok(&api, &s.auth, &s.cerebral, "c1").await;
    assert_eq!(turns(&t).len(), 6, "{t}");
    assert!(t["messages"].as_array().unwrap().iter().all(|e| e["customerId"] == cust.as_str()), "{t}");
    assert_eq!(customer_count(&app, &s.tenant.id).await, 1);

    // identity: found or created by its email, with its name.
    answered(
        &api,
        &s.cerebral,
        &key,
        json!({"message": "hi", "session_id": "c2", "identity": {"email": "Jane@Example.com", "name": "Jane Doe"}}),
    )
    .await;
    let t = transcript_ok(&api, &s.auth, &s.cerebral, "c2").await;
    let jane = t["messages"][0]["customerId"].as_str().unwrap_or_else(|| panic!("{t}")).to_string();
    assert_ne!(jane, cust);
    let got = v1_data(
        v1(&api, Method::GET, &format!("/v1/customers/{jane}"), None, Some(&s.auth), None).await,
        StatusCode::OK,
        "GET customer (JWT)",
    );
    assert_eq!(
        (got["email"].as_str(), got["name"].as_str()),
        (Some("jane@example.com"), Some("Jane Doe")),
        "{got}"
    );
    assert_eq!(customer_count(&app, &s.tenant.id).await, 2);
}

// ---- 429 --------------------------------------------------------------------

#[actix_web::test]
async fn the_free_plan_allows_60_a_minute_then_429_with_retry_after() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "ratelimit").await;

    // Start early in a minute so that the 61 calls fit in it.
    in_one_minute(40).await;

    let mut reset = None;
    for expected in (0..60u64).rev() {
        let (_, headers) = answered(&api, &s.cerebral, &s.key, json!({"message": "count me"})).await;
        let h = health(&headers);
        assert_eq!(h.limit, "60", "{h:?}");
        assert_eq!(h.remaining, expected.to_string(), "strictly counting down: {h:?}");
        let r = *reset.get_or_insert(h.reset);
        assert_eq!(h.reset, r, "the minute ended during the test (too slow a machine?)");
    }
    let reset = reset.unwrap();

    // The 61st: 429, RATE_LIMITED, Retry-After until the minute's end, and the headers.
    let (headers, message) = refused(
        &api,
        &s.cerebral,
        &s.key,
        json!({"message": "one too many"}),
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
    )
    .await;
    assert!(message.contains("60"), "{message}");
    let retry: i64 = header(&headers, "retry-after").parse().expect("Retry-After in seconds");
    let now = chrono::Utc::now().timestamp();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(
        now + retry >= reset - 1 && now + retry <= reset + 1,
        "Retry-After {retry} vs reset {reset} at {now}"
    );
    let h = health(&headers);
    assert_eq!((h.limit.as_str(), h.remaining.as_str(), h.reset), ("60", "0", reset), "{h:?}");

    // The key is refused elsewhere too; the JWT is not counted and still sees the figures.
    let (status, got, answer) =
        api.full(Method::GET, "/v1/rate-limits", None, &[("X-API-Key", &s.key)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    v1_error(&answer, "RATE_LIMITED");
    assert!(got.get("retry-after").is_some());
    let (limits, headers) = rate_limits(&api, &s.auth).await;
    assert_eq!(limits["current"], json!({"minute": 60, "hour": 60, "day": 60}), "{limits}");
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "0");
    // (All of it within the one minute, or the figures above would not hold.)
    assert!(chrono::Utc::now().timestamp() < reset, "the minute ended during the test");
}

// ---- 402 --------------------------------------------------------------------

#[actix_web::test]
async fn a_spent_daily_token_budget_is_402() {
    let app = app_for_fakes(&[]).await;
    let api = Api::of(&app);
    let s = setup(&app, "budget").await;
    let fake = FakeLlm::start();
    fake.set_mode(Mode::Ok { reply: "costly".into(), total_tokens: 60_000 });
    use_fake(&app, &s.auth, &s.tenant.id, &fake).await;

    // 60k of the free plan's 100k: ok (60%).
    let (data, headers) = answered(&api, &s.cerebral, &s.key, json!({"message": "one"})).await;
    assert_eq!(data["metadata"]["tokens_used"], 60_000, "{data}");
    assert_eq!(data["message"], "costly");
    assert_eq!(health(&headers).budget, "ok");
    // 120k: block (still answered: the budget was not spent when it started).
    let (_, headers) = answered(&api, &s.cerebral, &s.key, json!({"message": "two"})).await;
    assert_eq!(health(&headers).budget, "block");
    assert_eq!(fake.count(), 2);

    // The third: 402, and the model is not called.
    let (headers, message) = refused(
        &api,
        &s.cerebral,
        &s.key,
        json!({"message": "three"}),
        StatusCode::PAYMENT_REQUIRED,
        "PAYMENT_REQUIRED",
    )
    .await;
    assert!(message.contains("100000"), "{message}");
    assert_eq!(health(&headers).budget, "block");
    assert_eq!(fake.count(), 2, "no model call once the budget is spent");
    let (limits, _) = rate_limits(&api, &s.auth).await;
    assert_eq!(limits["health"]["budget_state"], "block", "{limits}");
}

#[actix_web::test]
async fn the_budget_state_warns_then_throttles_then_blocks() {
    let app = app_for_fakes(&[]).await;
    let api = Api::of(&app);
    let s = setup(&app, "budget-steps").await;
    let fake = FakeLlm::start();
    use_fake(&app, &s.auth, &s.tenant.id, &fake).await;

    // (tokens of this turn, the state after it): 79k ok, 80k warn, 94.999k warn, 95k throttle, 100k block.
    for (tokens, state) in [
        (79_000, "ok"),
        (1_000, "warn"),
        (14_999, "warn"),
        (1, "throttle"),
        (4_999, "throttle"),
        (1, "block"),
    ] {
        fake.set_mode(Mode::Ok { reply: "r".into(), total_tokens: tokens });
        let (data, headers) = answered(&api, &s.cerebral, &s.key, json!({"message": "spend"})).await;
        assert_eq!(data["metadata"]["tokens_used"], tokens, "{data}");
        assert_eq!(health(&headers).budget, state, "after {tokens} more");
        let (limits, headers) = rate_limits(&api, &s.auth).await;
        assert_eq!(limits["health"]["budget_state"], state, "{limits}");
        assert_eq!(health(&headers).budget, state);
    }
    refused(
        &api,
        &s.cerebral,
        &s.key,
        json!({"message": "spend"}),
        StatusCode::PAYMENT_REQUIRED,
        "PAYMENT_REQUIRED",
    )
    .await;
    assert_eq!(fake.count(), 6);
}

// ---- 503 --------------------------------------------------------------------

#[actix_web::test]
async fn a_tenant_that_is_not_running_is_503() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, auth) = owner(&app, "drafty").await;

    // POST /api/tenants makes a draft tenant, of which the user is Owner.
    let (status, t) =
        app.post("/api/tenants", json!({"name": "Draft Co"}), &[("Authorization", &auth)]).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["status"], "draft", "{t}");
    let tid = t["id"].as_str().unwrap().to_string();
    let bot = cerebral_in(&api, &auth, Some(&tid), json!({"name": "draft tenant bot"})).await;
    let (_, key) = agent_key_in(&api, &auth, Some(&tid), json!({"name": "draft tenant key"})).await;

    let (headers, message) = refused(
        &api,
        &bot,
        &key,
        json!({"message": "hi", "session_id": "s"}),
        StatusCode::SERVICE_UNAVAILABLE,
        "TENANT_NOT_RUNNING",
    )
    .await;
    assert!(message.contains("draft"), "{message}");
    health(&headers);
    // Nothing was remembered.
    let (status, body) =
        v1(&api, Method::GET, &format!("/v1/cerebrals/{bot}/sessions/s"), None, Some(&auth), Some(&tid))
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[actix_web::test]
async fn provider_failures_open_the_circuit_and_a_probe_closes_it() {
    let app = app_for_fakes(&[
        ("SWITCHBOARD_PROVIDER_CIRCUIT_THRESHOLD", "3"),
        ("SWITCHBOARD_PROVIDER_CIRCUIT_COOLDOWN", "1s"),
    ])
    .await;
    let api = Api::of(&app);
    let s = setup(&app, "circuit").await;
    let fake = FakeLlm::start();
    fake.set_mode(Mode::Fail(500));
    use_fake(&app, &s.auth, &s.tenant.id, &fake).await;
    let msg = json!({"message": "are you there?", "session_id": "c"});

    // Three failures in a row: 503 CIRCUIT_OPEN each; the third opens the circuit.
    for (i, state) in ["closed", "closed", "open"].into_iter().enumerate() {
        let (headers, message) =
            refused(&api, &s.cerebral, &s.key, msg.clone(), StatusCode::SERVICE_UNAVAILABLE, "CIRCUIT_OPEN")
                .await;
        assert!(message.contains("unavailable"), "{message}");
        assert!(!message.contains("sk-test"), "the provider key never shows: {message}");
        assert_eq!(health(&headers).circuit, state, "after failure {}", i + 1);
        assert_eq!(fake.count(), i + 1);
    }
    let (limits, _) = rate_limits(&api, &s.auth).await;
    assert_eq!(limits["health"]["circuit_state"], "open", "{limits}");

    // Open: refused without calling the provider.
    fake.set_mode(Mode::Ok { reply: "back".into(), total_tokens: 10 });
    let (headers, _) =
        refused(&api, &s.cerebral, &s.key, msg.clone(), StatusCode::SERVICE_UNAVAILABLE, "CIRCUIT_OPEN")
            .await;
    assert_eq!(health(&headers).circuit, "open");
    assert_eq!(fake.count(), 3, "no call while the circuit is open");

    // After the cool-down: half-open; the probe succeeds and closes it.
    actix_web::rt::time::sleep(Duration::from_millis(1_200)).await;
    let (limits, headers) = rate_limits(&api, &s.auth).await;
    assert_eq!(limits["health"]["circuit_state"], "half_open", "{limits}");
    assert_eq!(health(&headers).circuit, "half_open");
    let (data, headers) = answered(&api, &s.cerebral, &s.key, msg.clone()).await;
    assert_eq!(data["message"], "back");
    assert_eq!(health(&headers).circuit, "closed");
    assert_eq!(fake.count(), 4);
    let (limits, _) = rate_limits(&api, &s.auth).await;
    assert_eq!(limits["health"]["circuit_state"], "closed", "{limits}");
    // The failed turns were not remembered; the answered one was.
    let t = transcript_ok(&api, &s.auth, &s.cerebral, "c").await;
    assert_eq!(
        turns(&t),
        vec![("user".into(), "are you there?".into()), ("assistant".into(), "back".into())],
        "{t}"
    );
}

#[actix_web::test]
async fn a_provider_that_does_not_answer_in_time_is_503() {
    let app = app_for_fakes(&[("SWITCHBOARD_PROVIDER_TIMEOUT", "1s")]).await;
    let api = Api::of(&app);
    let s = setup(&app, "hang").await;
    let fake = FakeLlm::start();
    fake.set_mode(Mode::Hang);
    use_fake(&app, &s.auth, &s.tenant.id, &fake).await;

    let started = std::time::Instant::now();
    let (headers, message) = refused(
        &api,
        &s.cerebral,
        &s.key,
        json!({"message": "hello?"}),
        StatusCode::SERVICE_UNAVAILABLE,
        "CIRCUIT_OPEN",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());
    assert!(message.contains("unavailable"), "{message}");
    assert_eq!(health(&headers).circuit, "closed", "one failure of the default five");
    assert_eq!(fake.count(), 1);
}

// ---- memory -----------------------------------------------------------------

#[actix_web::test]
async fn a_session_remembers_earlier_turns_and_only_its_own() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "memory").await;
    let other = cerebral(&api, &s.auth, "other bot").await;

    let (first, _) =
        answered(&api, &s.cerebral, &s.key, json!({"message": "My name is Ada", "session_id": "s1"})).await;
    assert_eq!(first["message"], "Offline reply to \"My name is Ada\".");
    let (second, _) =
        answered(&api, &s.cerebral, &s.key, json!({"message": "What is my name?", "session_id": "s1"})).await;
    assert_eq!(
        second["message"],
        "Offline reply to \"What is my name?\". Earlier in this conversation you said: \"My name is Ada\"."
    );

    // Stateless without a session_id.
    answered(&api, &s.cerebral, &s.key, json!({"message": "I like tea"})).await;
    let (stateless, _) = answered(&api, &s.cerebral, &s.key, json!({"message": "What do I like?"})).await;
    assert_eq!(stateless["message"], "Offline reply to \"What do I like?\".");
    assert_eq!(stateless["session_id"], Value::Null);

    // The same session_id on another Cerebral is another memory.
    let (elsewhere, _) =
        answered(&api, &other, &s.key, json!({"message": "What is my name?", "session_id": "s1"})).await;
    assert_eq!(elsewhere["message"], "Offline reply to \"What is my name?\".");
    // And another session on the same Cerebral too.
    let (fresh, _) =
        answered(&api, &s.cerebral, &s.key, json!({"message": "Who am I?", "session_id": "s2"})).await;
    assert_eq!(fresh["message"], "Offline reply to \"Who am I?\".");

    // The transcript: both turns, user then assistant, in order, each tied to its execution.
    let t = transcript_ok(&api, &s.auth, &s.cerebral, "s1").await;
    assert_eq!(
        turns(&t),
        vec![
            ("user".to_string(), "My name is Ada".to_string()),
            ("assistant".to_string(), first["message"].as_str().unwrap().to_string()),
            ("user".to_string(), "What is my name?".to_string()),
            ("assistant".to_string(), second["message"].as_str().unwrap().to_string()),
        ],
        "{t}"
    );
    let entries = t["messages"].as_array().unwrap();
    for (i, reply) in [(0, &first), (1, &first), (2, &second), (3, &second)] {
        assert_eq!(entries[i]["executionId"], reply["execution_id"], "{t}");
        assert_eq!(entries[i]["escalationId"], Value::Null, "{t}");
        assert_eq!(entries[i]["customerId"], Value::Null, "{t}");
    }
    let ids: std::collections::HashSet<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "{t}");
    let other_t = transcript_ok(&api, &s.auth, &other, "s1").await;
    assert_eq!(turns(&other_t).len(), 2, "{other_t}");

    // A third turn remembers the one before it.
    let (third, _) =
        answered(&api, &s.cerebral, &s.key, json!({"message": "Thanks", "session_id": "s1"})).await;
    assert_eq!(
        third["message"],
        "Offline reply to \"Thanks\". Earlier in this conversation you said: \"What is my name?\"."
    );
    assert_eq!(turns(&transcript_ok(&api, &s.auth, &s.cerebral, "s1").await).len(), 6);
}

#[actix_web::test]
async fn a_transcript_is_for_the_tenants_own_cerebral_and_known_session() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let a = setup(&app, "transcript-a").await;
    let b = setup(&app, "transcript-b").await;
    answered(&api, &a.cerebral, &a.key, json!({"message": "hi", "session_id": "known"})).await;
    transcript_ok(&api, &a.auth, &a.cerebral, "known").await;

    // Another tenant's Cerebral: 404, as is an unknown session or Cerebral.
    for (what, auth, cerebral, session) in [
        ("another tenant's", &b.auth, &a.cerebral, "known"),
        ("unknown session", &a.auth, &a.cerebral, "unknown"),
        ("unknown Cerebral", &a.auth, &uuid::Uuid::now_v7().to_string(), "known"),
        ("session of another Cerebral", &b.auth, &b.cerebral, "known"),
    ] {
        let (status, headers, body) = api
            .full(
                Method::GET,
                &format!("/v1/cerebrals/{cerebral}/sessions/{session}"),
                None,
                &[("Authorization", auth)],
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
        v1_error(&body, "NOT_FOUND");
        health(&headers);
    }
    // A session made stateless calls never exist.
    answered(&api, &a.cerebral, &a.key, json!({"message": "no session"})).await;

    // The transcript needs the JWT: a key is not enough.
    let (status, headers, body) = api
        .full(
            Method::GET,
            &format!("/v1/cerebrals/{}/sessions/known", a.cerebral),
            None,
            &[("X-API-Key", &a.key)],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    v1_error(&body, "UNAUTHORIZED");
    no_health(&headers, "transcript with a key");
}

#[actix_web::test]
async fn the_model_is_given_the_sessions_memory_and_the_tenants_key() {
    let app = app_for_fakes(&[]).await;
    let api = Api::of(&app);
    let s = setup(&app, "fed").await;
    let fake = FakeLlm::start();
    fake.set_mode(Mode::Ok { reply: "Nice to meet you, Ada.".into(), total_tokens: 42 });
    use_fake(&app, &s.auth, &s.tenant.id, &fake).await;

    let (first, _) =
        answered(&api, &s.cerebral, &s.key, json!({"message": "My name is Ada", "session_id": "f"})).await;
    assert_eq!(first["message"], "Nice to meet you, Ada.");
    assert_eq!(first["metadata"]["model"], "m", "{first}");
    assert_eq!(first["metadata"]["tokens_used"], 42, "{first}");
    fake.set_mode(Mode::Ok { reply: "You are Ada.".into(), total_tokens: 50 });
    let (second, _) =
        answered(&api, &s.cerebral, &s.key, json!({"message": "What is my name?", "session_id": "f"})).await;
    assert_eq!(second["message"], "You are Ada.");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for r in &requests {
        assert_eq!(r["model"], "m", "{r}");
    }
    let messages = |r: &Value| -> Vec<(String, String)> {
        r["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("messages: {r}"))
            .iter()
            .map(|m| (m["role"].as_str().unwrap().to_string(), m["content"].as_str().unwrap().to_string()))
            .collect()
    };
    let one = messages(&requests[0]);
    assert_eq!(one.first(), Some(&("system".to_string(), PROMPT.to_string())), "{one:?}");
    assert_eq!(one.last(), Some(&("user".to_string(), "My name is Ada".to_string())), "{one:?}");
    assert!(!one.iter().any(|(r, _)| r == "assistant"), "nothing to remember yet: {one:?}");

    let two = messages(&requests[1]);
    assert_eq!(two.first(), Some(&("system".to_string(), PROMPT.to_string())), "{two:?}");
    let user = two.iter().position(|m| m == &("user".to_string(), "My name is Ada".to_string()));
    let assistant =
        two.iter().position(|m| m == &("assistant".to_string(), "Nice to meet you, Ada.".to_string()));
    let (Some(user), Some(assistant)) = (user, assistant) else {
        panic!("the first turn is in the second request: {two:?}")
    };
    assert!(user < assistant, "in order: {two:?}");
    assert_eq!(two.last(), Some(&("user".to_string(), "What is my name?".to_string())), "{two:?}");
    assert_eq!(assistant + 1, two.len() - 1, "the new message follows the memory: {two:?}");

    // The tenant's provider key, as configured.
    assert_eq!(fake.auth_headers(), vec![Some("Bearer sk-test".to_string()); 2]);

    // A stateless call gives the model no memory.
    answered(&api, &s.cerebral, &s.key, json!({"message": "Stateless"})).await;
    let three = messages(&fake.requests()[2]);
    assert_eq!(
        three,
        vec![("system".into(), PROMPT.into()), ("user".into(), "Stateless".into())],
        "{three:?}"
    );
}

// ---- headers ----------------------------------------------------------------

#[actix_web::test]
async fn every_authenticated_v1_answer_carries_the_health_headers() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "headers").await;
    in_one_minute(10).await;

    // JWT calls: the headers, not counted.
    for path in ["/v1/cerebrals", "/v1/api-keys", "/v1/rate-limits", &format!("/v1/cerebrals/{}", s.cerebral)]
    {
        let (status, headers, body) = api.full(Method::GET, path, None, &[("Authorization", &s.auth)]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let h = health(&headers);
        assert_eq!(
            (h.limit.as_str(), h.remaining.as_str()),
            ("60", "60"),
            "{path}: JWT calls are not counted"
        );
        assert_eq!((h.budget.as_str(), h.circuit.as_str()), ("ok", "closed"), "{path}");
    }
    // A JWT error answer too.
    let (status, headers, body) = api
        .full(
            Method::GET,
            &format!("/v1/cerebrals/{}", uuid::Uuid::now_v7()),
            None,
            &[("Authorization", &s.auth)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    health(&headers);

    // Key calls: counted, on success and on error.
    let (_, headers) = answered(&api, &s.cerebral, &s.key, json!({"message": "hi"})).await;
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "59");
    let unknown = uuid::Uuid::now_v7().to_string();
    let (headers, _) =
        refused(&api, &unknown, &s.key, json!({"message": "hi"}), StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "58");
    let (headers, _) =
        refused(&api, &s.cerebral, &s.key, json!({}), StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "57");
    // GET /v1/rate-limits with the key counts itself.
    let (status, headers, body) =
        api.full(Method::GET, "/v1/rate-limits", None, &[("X-API-Key", &s.key)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "56");
    assert_eq!(body["data"]["current"]["minute"], 4, "{body}");

    // Unauthenticated: no headers.
    for (method, path, headers) in [
        (Method::POST, message_path(&s.cerebral), vec![]),
        (Method::POST, message_path(&s.cerebral), vec![("X-API-Key", "sk_live_wrong")]),
        (Method::GET, "/v1/cerebrals".to_string(), vec![]),
        (Method::GET, "/v1/cerebrals".to_string(), vec![("Authorization", "Bearer nope")]),
        (Method::GET, "/v1/rate-limits".to_string(), vec![]),
    ] {
        let body = (method == Method::POST).then(|| json!({"message": "hi"}));
        let (status, got, answer) = api.full(method.clone(), &path, body, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {answer}");
        no_health(&got, &format!("{method} {path} {headers:?}"));
    }
}

#[actix_web::test]
async fn a_key_that_was_used_shows_when() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let s = setup(&app, "lastused").await;
    let last_used = || async {
        let (status, body) = v1(&api, Method::GET, "/v1/api-keys", None, Some(&s.auth), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"][0]["lastUsedAt"].clone()
    };
    assert_eq!(last_used().await, Value::Null, "never used yet");
    answered(&api, &s.cerebral, &s.key, json!({"message": "hi"})).await;
    let recorded =
        common::eventually(Duration::from_secs(5), || async { last_used().await.is_string() }).await;
    assert!(recorded, "lastUsedAt stays null after a message");
}
