//! The webhook delivery engine, through the public API and a real receiver on
//! loopback: `callback_url` deliveries of `escalation.resolved` and
//! `escalation.expired`, retries with a stable `webhook-id`, the final
//! `failed` state, isolation of a hanging endpoint, the deliveries endpoint,
//! `/v1/webhooks` (create, list masked, delete, roles, validation, events), and
//! the SSRF guard at registration and at send time. Every request the receivers
//! get is verified with the reference `standardwebhooks` Python package.

#[path = "common/agent.rs"]
mod agent;
#[path = "common/child.rs"]
#[allow(dead_code)] // each test file uses a different part
mod child;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use agent::{register_as, sign_in, v1, v1_error};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine;
use child::ChildServer as Server;
use common::receiver::{self, Behaviour, Captured, Receiver};
use esc::{keys, sorted, time_ms, Api, Tenant, DETAIL_KEYS, RESOLUTION_KEYS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Every wait in this file is a poll with this deadline.
const WAIT: Duration = Duration::from_secs(20);

/// The fields of one delivery in `GET /webhooks/deliveries/{id}`.
const DELIVERY_KEYS: [&str; 10] = [
    "id",
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

/// The fields of a `callback_url` payload.
const CALLBACK_KEYS: [&str; 6] = ["event", "escalation_id", "domain", "status", "resolution", "timestamp"];

/// The fields of a `/v1/webhooks` item.
const HOOK_KEYS: [&str; 5] = ["id", "url", "events", "secret", "createdAt"];

/// Loopback receivers allowed, three attempts 100 ms and 200 ms apart, and
/// sign-in limits out of the way.
const FAST: [(&str, &str); 3] = [
    ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "100ms,200ms"),
    ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m"),
];

// ---- helpers ----------------------------------------------------------------

fn is_msg_id(s: &str) -> bool {
    s.strip_prefix("msg_").is_some_and(|h| h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

fn webhook_secret(t: &Tenant) -> String {
    let s = t.body["webhook_secret"].as_str().unwrap_or_else(|| panic!("webhook_secret: {}", t.body));
    assert!(s.starts_with("whsec_"), "{s}");
    s.to_string()
}

/// `POST /v1/webhooks`; asserts 201 and the shape; returns `data`.
async fn create_hook(api: &Api, auth: &str, body: Value) -> Value {
    let (status, answer) = v1(api, Method::POST, "/v1/webhooks", Some(body.clone()), Some(auth), None).await;
    assert_eq!(status, StatusCode::CREATED, "POST /v1/webhooks {body}: {answer}");
    assert_eq!(answer["success"], json!(true), "{answer}");
    let data = answer["data"].clone();
    assert_eq!(keys(&data), sorted(&HOOK_KEYS), "{answer}");
    assert!(data["id"].as_str().is_some_and(|i| i.starts_with("wh_") && i.len() > 3), "{data}");
    assert_eq!(data["url"], body["url"], "{data}");
    let mut want: Vec<&str> =
        body["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    let mut got: Vec<&str> = data["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {data}"))
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{data}");
    time_ms(&data["createdAt"]);
    let secret = data["secret"].as_str().unwrap_or_else(|| panic!("secret: {data}"));
    let n = secret_len(secret).unwrap_or_else(|| panic!("the secret is whsec_ + base64: {secret}"));
    assert!((24..=64).contains(&n), "the secret has 24-64 bytes, not {n}: {secret}");
    data
}

/// How many bytes a `whsec_` secret holds, if it is one.
fn secret_len(secret: &str) -> Option<usize> {
    let b64 = secret.strip_prefix("whsec_")?;
    let e = &base64::engine::general_purpose::STANDARD;
    let n = &base64::engine::general_purpose::STANDARD_NO_PAD;
    e.decode(b64).or_else(|_| n.decode(b64)).ok().map(|b| b.len())
}

fn whsec(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|i| (i * 37 + 11) as u8).collect();
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// `GET /webhooks/deliveries/{id}`: asserts 200 and the exact shape; returns the list.
async fn deliveries(api: &Api, key: &str, id: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/webhooks/deliveries/{id}"), &[("X-API-Key", key)]).await;
    assert_eq!(status, StatusCode::OK, "GET /webhooks/deliveries/{id}: {body}");
    assert_eq!(keys(&body), sorted(&["escalation_id", "deliveries"]), "{body}");
    assert_eq!(body["escalation_id"], id, "{body}");
    let list = body["deliveries"].as_array().unwrap_or_else(|| panic!("deliveries: {body}")).clone();
    let mut previous = i64::MIN;
    for d in &list {
        assert_eq!(keys(d), sorted(&DELIVERY_KEYS), "{d}");
        assert!(d["id"].as_str().is_some_and(is_msg_id), "id is msg_<32 hex>: {d}");
        assert!(
            ["pending", "retrying", "delivered", "failed"].contains(&d["status"].as_str().unwrap_or("")),
            "{d}"
        );
        assert!(d["attempts"].is_u64(), "{d}");
        assert!(d["last_status_code"].is_null() || d["last_status_code"].is_u64(), "{d}");
        assert!(d["last_error"].is_null() || d["last_error"].is_string(), "{d}");
        for t in ["next_attempt_at", "delivered_at"] {
            if !d[t].is_null() {
                time_ms(&d[t]);
            }
        }
        let created = time_ms(&d["created_at"]);
        assert!(created >= previous, "oldest first: {body}");
        previous = created;
    }
    list
}

/// Polls the deliveries of `id` until `check` holds; returns them, or panics with the last.
async fn until_deliveries(
    api: &Api,
    key: &str,
    id: &str,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    until_deliveries_within(WAIT, api, key, id, what, check).await
}

async fn until_deliveries_within(
    within: Duration,
    api: &Api,
    key: &str,
    id: &str,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let end = Instant::now() + within;
    loop {
        let list = deliveries(api, key, id).await;
        if check(&list) {
            return list;
        }
        if Instant::now() >= end {
            panic!("the deliveries of {id} never became {what} within {within:?}; last: {list:#?}");
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_all(api: &Api, key: &str, id: &str, n: usize, status: &str) -> Vec<Value> {
    until_deliveries(api, key, id, &format!("{n} {status}"), |l| {
        l.len() == n && l.iter().all(|d| d["status"] == status)
    })
    .await
}

/// Checks the headers every delivery request carries.
fn assert_standard_headers(r: &Captured) {
    assert_eq!(r.method, "POST", "{}", r.describe());
    assert!(
        r.header("content-type").is_some_and(|c| c.starts_with("application/json")),
        "content-type: {}",
        r.describe()
    );
    assert!(is_msg_id(r.webhook_id()), "webhook-id: {}", r.describe());
    assert!(
        r.header("webhook-timestamp").is_some_and(|t| t.parse::<i64>().is_ok_and(|t| t > 1_600_000_000)),
        "webhook-timestamp is unix seconds: {}",
        r.describe()
    );
    assert!(
        r.header("webhook-signature").is_some_and(|s| s.starts_with("v1,")),
        "webhook-signature: {}",
        r.describe()
    );
}

/// Resolves a routed case with a distinctive answer; returns the resolve body.
async fn resolve(api: &Api, token: &str, id: &str) -> Value {
    let (status, body) = api
        .resolve_with(
            token,
            id,
            json!({"answer": {"code": "99213", "case": id}, "confidence": 0.87, "reasoning": "documented"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "resolve {id}: {body}");
    body
}

/// Creates a case with `callback_url` in `domain`; returns its id.
async fn case_with_callback(api: &Api, key: &str, domain: &str, callback: &str) -> String {
    let created = api
        .create(key, json!({"domain": domain, "query": esc::unique("question"), "callback_url": callback}))
        .await;
    created["id"].as_str().expect("id").to_string()
}

/// The payload without the two keys a `/v1` delivery adds to the detail.
fn without_event(payload: &Value) -> Value {
    let mut p = payload.clone();
    let o = p.as_object_mut().unwrap();
    o.remove("event");
    o.remove("timestamp");
    p
}

fn detail_payload_keys() -> Vec<String> {
    let mut k: Vec<&str> = DETAIL_KEYS.to_vec();
    k.extend(["event", "timestamp"]);
    sorted(&k)
}

// ---- callback_url -----------------------------------------------------------

#[actix_web::test]
async fn callback_url_receives_the_signed_resolution_once_and_the_delivery_is_listed() {
    let rx = Receiver::start(Behaviour::Ok);
    let app = common::spawn_app_with(&FAST, true).await;
    let api = Api::of(&app);
    let t = api.register("callbacks").await;
    let secret = webhook_secret(&t);
    let e = api.expert(&t.key, "Resolver", &["hooks.callback"], 5).await;
    let url = rx.url("/callback?source=switchboard");
    let id = case_with_callback(&api, &t.key, "hooks.callback", &url).await;

    // Creating a case sends nothing to its callback_url (only resolved and expired).
    assert_eq!(deliveries(&api, &t.key, &id).await, Vec::<Value>::new());
    api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
    let (status, body) = api.accept(&e.token, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    resolve(&api, &e.token, &id).await;

    let list = until_all(&api, &t.key, &id, 1, "delivered").await;
    let d = &list[0];
    assert_eq!(d["event"], "escalation.resolved", "{d}");
    assert_eq!(d["url"], url.as_str(), "{d}");
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["last_status_code"], 200, "{d}");
    assert_eq!(d["last_error"], Value::Null, "{d}");
    assert_eq!(d["next_attempt_at"], Value::Null, "nothing more to send: {d}");
    assert!(time_ms(&d["delivered_at"]) >= time_ms(&d["created_at"]), "{d}");

    let got = rx.requests();
    assert_eq!(got.len(), 1, "exactly one request:\n{}", rx.dump());
    let r = &got[0];
    assert_standard_headers(r);
    assert_eq!(r.path, "/callback?source=switchboard", "the URL is used as given");
    assert_eq!(r.webhook_id(), d["id"].as_str().unwrap(), "webhook-id = the delivery's id");

    let payload = r.json();
    assert_eq!(keys(&payload), sorted(&CALLBACK_KEYS), "{payload}");
    assert_eq!(payload["event"], "escalation.resolved");
    assert_eq!(payload["escalation_id"], id.as_str());
    assert_eq!(payload["domain"], "hooks.callback");
    assert_eq!(payload["status"], "resolved");
    time_ms(&payload["timestamp"]);
    let resolution = &payload["resolution"];
    assert_eq!(keys(resolution), sorted(&RESOLUTION_KEYS), "{payload}");
    assert_eq!(resolution["answer"], json!({"code": "99213", "case": id}));
    assert_eq!(resolution["expert_id"], e.id.as_str());
    assert!(esc::close(&resolution["confidence"], 0.87), "{resolution}");
    assert_eq!(resolution["reasoning"], "documented");
    let detail = api.detail(&t.key, &id).await;
    assert_eq!(resolution, &detail["resolution"], "the payload carries the stored resolution");

    receiver::assert_signed(app.dir.path(), &secret, &got).await;

    // The verifier can fail: a tampered body, another tenant's secret or another
    // webhook-id, each claimed valid, is refused and named.
    let other = webhook_secret(&api.register("other").await);
    let mut other_id = r.clone();
    other_id.headers.retain(|(k, _)| k != "webhook-id");
    other_id.headers.push(("webhook-id".into(), format!("msg_{}", "0".repeat(32))));
    for (label, secret, request) in [
        ("tampered body claimed valid", secret.as_str(), receiver::tampered(r)),
        ("another secret claimed valid", other.as_str(), r.clone()),
        ("another webhook-id claimed valid", secret.as_str(), other_id),
    ] {
        let verdict =
            receiver::run_verifier(app.dir.path(), vec![receiver::case(label, secret, &request, true)]).await;
        assert!(!verdict.success, "the verifier accepted a bad signature ({label})\n{}", verdict.output);
        assert!(verdict.output.contains(label), "the verifier names the failed case\n{}", verdict.output);
    }
}

/// Tenants not made by `/auth/register` (here the operator tenant, whose keys
/// serve load tests) get a webhook secret when their first delivery needs it,
/// and `switchboard admin webhook-secret` shows it.
#[actix_web::test]
async fn a_tenant_without_a_secret_gets_one_and_the_admin_command_shows_it() {
    let rx = Receiver::start(Behaviour::Ok);
    let app = common::spawn_app_with(&FAST, true).await;
    let api = Api::of(&app);
    let key = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    let e = api.expert(&key, "Operator expert", &["hooks.operator"], 5).await;
    let id = case_with_callback(&api, &key, "hooks.operator", &rx.url("/operator")).await;
    api.until_status(&key, &id, "routed", Some(&e.id)).await;
    resolve(&api, &e.token, &id).await;
    let list = until_all(&api, &key, &id, 1, "delivered").await;
    assert_eq!(list[0]["attempts"], 1, "{list:?}");

    let out = std::process::Command::new(common::server_bin())
        .args(["admin", "webhook-secret"])
        .env_clear()
        .envs(common::test_env(&app.dir, &app.db, &[]))
        .output()
        .expect("run switchboard admin webhook-secret");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let got = rx.requests();
    assert_eq!(got.len(), 1, "{}", rx.dump());
    receiver::assert_signed(app.dir.path(), &secret, &got).await;

    let out = std::process::Command::new(common::server_bin())
        .args(["admin", "webhook-secret", "--tenant", "no-such-tenant"])
        .env_clear()
        .envs(common::test_env(&app.dir, &app.db, &[]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown tenant is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant no-such-tenant"));
}

#[actix_web::test]
async fn an_expired_escalation_sends_escalation_expired_with_a_null_resolution() {
    let cb = Receiver::start(Behaviour::Ok);
    let hook = Receiver::start(Behaviour::Ok);
    let app =
        common::spawn_with_outbox(&[&FAST[..], &[("SWITCHBOARD_SLA_STANDARD", "300ms")]].concat()).await;
    let api = Api::of(&app);
    let (t, email) = register_as(&api, "expiry").await;
    let auth = sign_in(&app, &email).await;
    let hook_secret =
        create_hook(&api, &auth, json!({"url": hook.url("/v1-hook"), "events": ["escalation.expired"]}))
            .await["secret"]
            .as_str()
            .unwrap()
            .to_string();

    // No expert serves the domain: the SLA runs out.
    let id = case_with_callback(&api, &t.key, "hooks.expiry", &cb.url("/cb")).await;
    let detail = api.detail_until(&t.key, &id, WAIT, "expired", |d| d["status"] == "expired").await;
    assert_eq!(detail["resolution"], Value::Null);

    let list = until_all(&api, &t.key, &id, 2, "delivered").await;
    let urls: BTreeSet<&str> = list.iter().map(|d| d["url"].as_str().unwrap()).collect();
    assert_eq!(urls, BTreeSet::from([cb.url("/cb").as_str(), hook.url("/v1-hook").as_str()]), "{list:#?}");
    for d in &list {
        assert_eq!(
            (&d["event"], &d["attempts"], &d["last_status_code"]),
            (&json!("escalation.expired"), &json!(1), &json!(200)),
            "{d}"
        );
    }

    let got = cb.requests();
    assert_eq!(got.len(), 1, "{}", cb.dump());
    assert_standard_headers(&got[0]);
    let payload = got[0].json();
    assert_eq!(keys(&payload), sorted(&CALLBACK_KEYS), "{payload}");
    assert_eq!(payload["event"], "escalation.expired");
    assert_eq!(payload["escalation_id"], id.as_str());
    assert_eq!(payload["domain"], "hooks.expiry");
    assert_eq!(payload["status"], "expired");
    assert_eq!(payload["resolution"], Value::Null);
    time_ms(&payload["timestamp"]);
    receiver::assert_signed(app.dir.path(), &webhook_secret(&t), &got).await;

    // The /v1 webhook (subscribed to expired only: no escalation.created) gets the detail.
    let v1_got = hook.requests();
    assert_eq!(v1_got.len(), 1, "{}", hook.dump());
    assert_standard_headers(&v1_got[0]);
    let payload = v1_got[0].json();
    assert_eq!(keys(&payload), detail_payload_keys(), "{payload}");
    assert_eq!(payload["event"], "escalation.expired");
    assert_eq!(payload["resolution"], Value::Null);
    time_ms(&payload["timestamp"]);
    assert_eq!(without_event(&payload), api.detail(&t.key, &id).await, "the payload is the detail");
    receiver::assert_signed(app.dir.path(), &hook_secret, &v1_got).await;
}

// ---- retries ----------------------------------------------------------------

#[actix_web::test]
async fn a_failing_receiver_is_retried_with_the_same_webhook_id_until_it_answers_2xx() {
    let rx = Receiver::start(Behaviour::FailFirst { n: 2, status: 500 });
    let app = common::spawn_app_with(&FAST, true).await;
    let api = Api::of(&app);
    let t = api.register("retries").await;
    let e = api.expert(&t.key, "Resolver", &["hooks.retry"], 5).await;
    let id = case_with_callback(&api, &t.key, "hooks.retry", &rx.url("/flaky")).await;
    api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
    resolve(&api, &e.token, &id).await;

    let list = until_all(&api, &t.key, &id, 1, "delivered").await;
    let d = &list[0];
    assert_eq!((&d["attempts"], &d["last_status_code"]), (&json!(3), &json!(200)), "{d}");
    assert!(!d["delivered_at"].is_null(), "{d}");

    let got = rx.requests();
    assert_eq!(got.len(), 3, "two failures, then the success:\n{}", rx.dump());
    let answered: Vec<Option<u16>> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, vec![Some(500), Some(500), Some(200)]);
    for r in &got {
        assert_standard_headers(r);
        assert_eq!(r.webhook_id(), d["id"].as_str().unwrap(), "one webhook-id for every attempt");
        assert_eq!(r.event().as_deref(), Some("escalation.resolved"));
        assert_eq!(r.escalation_id().as_deref(), Some(id.as_str()));
    }
    receiver::assert_signed(app.dir.path(), &webhook_secret(&t), &got).await;
}

#[actix_web::test]
async fn a_receiver_that_keeps_failing_or_redirecting_ends_failed_after_the_last_attempt() {
    let down = Receiver::start(Behaviour::Always(500));
    let elsewhere = Receiver::start(Behaviour::Ok);
    let redirect = Receiver::start(Behaviour::Redirect(elsewhere.url("/landed")));
    let app = common::spawn_app_with(&FAST, true).await;
    let api = Api::of(&app);
    let t = api.register("failures").await;
    let e = api.expert(&t.key, "Resolver", &["hooks.fail"], 5).await;
    let failing = case_with_callback(&api, &t.key, "hooks.fail", &down.url("/down")).await;
    let moved = case_with_callback(&api, &t.key, "hooks.fail", &redirect.url("/moved")).await;
    for id in [&failing, &moved] {
        api.until_status(&t.key, id, "routed", Some(&e.id)).await;
        resolve(&api, &e.token, id).await;
    }

    for (id, rx, code) in [(&failing, &down, 500), (&moved, &redirect, 302)] {
        let list = until_all(&api, &t.key, id, 1, "failed").await;
        let d = &list[0];
        assert_eq!((&d["attempts"], &d["last_status_code"]), (&json!(3), &json!(code)), "{d}");
        assert!(d["last_error"].as_str().is_some_and(|e| !e.is_empty()), "last_error says why: {d}");
        assert_eq!((&d["delivered_at"], &d["next_attempt_at"]), (&Value::Null, &Value::Null), "{d}");
        let got = rx.requests();
        assert_eq!(got.len(), 3, "1 + 2 retries, then no more:\n{}", rx.dump());
        assert!(got.iter().all(|r| r.webhook_id() == d["id"].as_str().unwrap()), "{}", rx.dump());
        receiver::assert_signed(app.dir.path(), &webhook_secret(&t), &got).await;
    }
    assert_eq!(elsewhere.count(), 0, "redirects are not followed:\n{}", elsewhere.dump());
}

#[actix_web::test]
async fn a_failed_attempt_waits_as_retrying_with_its_next_attempt_time() {
    let rx = Receiver::start(Behaviour::Always(503));
    let app = common::spawn_app_with(
        &[("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"), ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "1h")],
        true,
    )
    .await;
    let api = Api::of(&app);
    let t = api.register("patience").await;
    let e = api.expert(&t.key, "Resolver", &["hooks.wait"], 5).await;
    let id = case_with_callback(&api, &t.key, "hooks.wait", &rx.url("/later")).await;
    api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
    resolve(&api, &e.token, &id).await;

    let list = until_all(&api, &t.key, &id, 1, "retrying").await;
    let d = &list[0];
    assert_eq!((&d["attempts"], &d["last_status_code"]), (&json!(1), &json!(503)), "{d}");
    assert!(d["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{d}");
    assert_eq!(d["delivered_at"], Value::Null, "{d}");
    // The next attempt is one hour (+ at most 10% jitter) after the first.
    let wait_ms = time_ms(&d["next_attempt_at"]) - time_ms(&d["created_at"]);
    assert!(
        (3_599_000..=3_960_000 + 60_000).contains(&wait_ms),
        "next attempt in ~1h, not {wait_ms} ms: {d}"
    );
    assert_eq!(rx.count(), 1, "{}", rx.dump());
}

#[actix_web::test]
async fn an_attempt_that_gets_no_answer_times_out_and_is_retried() {
    let rx = Receiver::start(Behaviour::Hang);
    let app = common::spawn_app_with(&FAST, true).await;
    let api = Api::of(&app);
    let t = api.register("silence").await;
    let e = api.expert(&t.key, "Resolver", &["hooks.silent"], 5).await;
    let id = case_with_callback(&api, &t.key, "hooks.silent", &rx.url("/silent")).await;
    api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
    resolve(&api, &e.token, &id).await;

    // The first attempt is held unanswered; the next one will be answered.
    rx.until(WAIT, "the first attempt", |r| !r.is_empty()).await;
    rx.set(Behaviour::Ok);
    // The attempt times out after 30 s; the retry comes 100 ms later.
    let list = until_deliveries_within(Duration::from_secs(90), &api, &t.key, &id, "delivered", |l| {
        l.len() == 1 && l[0]["status"] == "delivered"
    })
    .await;
    let d = &list[0];
    assert_eq!((&d["attempts"], &d["last_status_code"]), (&json!(2), &json!(200)), "{d}");
    let got = rx.requests();
    assert_eq!(got.len(), 2, "{}", rx.dump());
    assert_eq!((got[0].answered, got[1].answered), (None, Some(200)), "{}", rx.dump());
    assert!(got.iter().all(|r| r.webhook_id() == d["id"].as_str().unwrap()), "{}", rx.dump());
    // The timed-out attempt's connection was let go.
    assert!(common::eventually(WAIT, || async { rx.in_flight() == 0 }).await, "the held request is closed");
    receiver::assert_signed(app.dir.path(), &webhook_secret(&t), &got).await;
}

// ---- isolation --------------------------------------------------------------

#[actix_web::test]
async fn a_hanging_receiver_does_not_hold_up_deliveries_to_another() {
    let hang = Receiver::start(Behaviour::Hang);
    let healthy = Receiver::start(Behaviour::Ok);
    let app = common::spawn_app_with(&FAST, true).await;
    let api = Api::of(&app);
    // The free tier allows 10 cases a day: two tenants share the endpoints.
    let a = api.register("isolation a").await;
    let b = api.register("isolation b").await;
    let ea = api.expert(&a.key, "Resolver A", &["hooks.iso"], 20).await;
    let eb = api.expert(&b.key, "Resolver B", &["hooks.iso"], 20).await;
    let mut stuck = Vec::new();
    for i in 0..12 {
        let (t, e) = if i < 10 { (&a, &ea) } else { (&b, &eb) };
        stuck.push((t, e, case_with_callback(&api, &t.key, "hooks.iso", &hang.url("/slow")).await));
    }
    let mut fine = Vec::new();
    for _ in 0..4 {
        fine.push((&b, &eb, case_with_callback(&api, &b.key, "hooks.iso", &healthy.url("/fast")).await));
    }
    for (t, e, id) in stuck.iter().chain(&fine) {
        api.until_status(&t.key, id, "routed", Some(&e.id)).await;
    }

    // More deliveries to the hanging endpoint than it may have in flight...
    for (_, e, id) in &stuck {
        resolve(&api, &e.token, id).await;
    }
    hang.until(WAIT, "a request it can hold", |r| !r.is_empty()).await;
    // ...and the healthy endpoint still gets every one of its own.
    for (_, e, id) in &fine {
        resolve(&api, &e.token, id).await;
    }
    for (t, _, id) in &fine {
        let list = until_all(&api, &t.key, id, 1, "delivered").await;
        assert_eq!(list[0]["attempts"], 1, "{}", list[0]);
    }
    assert!(hang.in_flight() >= 1, "the hanging endpoint was still holding requests meanwhile");
    let got = healthy.requests();
    let ids: BTreeSet<String> = got.iter().filter_map(Captured::escalation_id).collect();
    assert_eq!(ids, fine.iter().map(|(_, _, id)| id.clone()).collect::<BTreeSet<_>>(), "{}", healthy.dump());
    assert_eq!(got.len(), 4, "{}", healthy.dump());

    for (t, _, id) in &stuck {
        let list = deliveries(&api, &t.key, id).await;
        assert_eq!(list.len(), 1, "{list:#?}");
        assert!(
            list[0]["status"] == "pending" || list[0]["status"] == "retrying",
            "unanswered, so not delivered nor given up yet: {}",
            list[0]
        );
        assert_eq!(list[0]["delivered_at"], Value::Null);
    }
    assert!(hang.max_in_flight() <= 8, "at most 8 attempts in flight per URL, saw {}", hang.max_in_flight());
    // The held requests are signed with their tenant's secret.
    let (from_a, from_b): (Vec<Captured>, Vec<Captured>) = hang.requests().into_iter().partition(|r| {
        stuck.iter().any(|(t, _, id)| t.id == a.id && r.escalation_id().as_deref() == Some(id.as_str()))
    });
    for (t, got) in [(&a, from_a), (&b, from_b)] {
        if !got.is_empty() {
            receiver::assert_signed(app.dir.path(), &webhook_secret(t), &got).await;
        }
    }
}

// ---- the deliveries endpoint ------------------------------------------------

#[actix_web::test]
async fn the_deliveries_endpoint_needs_the_key_and_hides_other_tenants_cases() {
    let app = common::spawn_app_with(&FAST, true).await;
    let api = Api::of(&app);
    let t = api.register("owner").await;
    let other = api.register("stranger").await;
    let id = api.case(&t.key, "hooks.none", "standard").await;

    let (status, body) = api.get(&format!("/webhooks/deliveries/{id}"), &[("X-API-Key", &t.key)]).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"escalation_id": id, "deliveries": []})));

    // A cancelled case reports nothing to its callback_url (only resolved and expired do).
    let rx = Receiver::start(Behaviour::Ok);
    let cancelled = case_with_callback(&api, &t.key, "hooks.none", &rx.url("/cb")).await;
    let (status, body) =
        api.post_empty(&format!("/escalations/{cancelled}/cancel"), &[("X-API-Key", &t.key)]).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("cancelled")), "{body}");
    assert_eq!(deliveries(&api, &t.key, &cancelled).await, Vec::<Value>::new());

    let not_found = json!({"detail": "Escalation not found"});
    for (what, path, key) in [
        ("another tenant's case", format!("/webhooks/deliveries/{id}"), other.key.as_str()),
        ("an unknown case", format!("/webhooks/deliveries/{}", uuid::Uuid::new_v4()), t.key.as_str()),
        ("not an id", "/webhooks/deliveries/nope".to_string(), t.key.as_str()),
    ] {
        let (status, body) = api.get(&path, &[("X-API-Key", key)]).await;
        assert_eq!((status, &body), (StatusCode::NOT_FOUND, &not_found), "{what}");
    }
    let bad_key = format!("cero_{}", "0".repeat(48));
    for headers in [vec![], vec![("X-API-Key", bad_key.as_str())]] {
        let (status, body) = api.get(&format!("/webhooks/deliveries/{id}"), &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    }
}

// ---- /v1/webhooks -----------------------------------------------------------

#[actix_web::test]
async fn v1_webhooks_are_created_shown_once_listed_masked_and_deleted() {
    let app = common::spawn_with_outbox(&FAST).await;
    let api = Api::of(&app);
    let (_, email) = register_as(&api, "hooks").await;
    let auth = sign_in(&app, &email).await;

    let first = create_hook(
        &api,
        &auth,
        json!({"url": "http://127.0.0.1:9/first", "events": ["escalation.resolved", "escalation.created"]}),
    )
    .await;
    let given = whsec(32);
    let second = create_hook(
        &api,
        &auth,
        json!({"url": "http://127.0.0.1:9/second", "events": ["escalation.expired"], "secret": given}),
    )
    .await;
    assert_eq!(second["secret"], given.as_str(), "a given secret is kept");
    assert_ne!(first["secret"], second["secret"]);
    assert_ne!(first["id"], second["id"]);

    let (status, body) = v1(&api, Method::GET, "/v1/webhooks", None, Some(&auth), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], json!(true));
    let items = body["data"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(items.len(), 2, "{body}");
    let text = body.to_string();
    for created in [&first, &second] {
        let full = created["secret"].as_str().unwrap();
        let item = items.iter().find(|i| i["id"] == created["id"]).unwrap_or_else(|| panic!("{body}"));
        assert_eq!(keys(item), sorted(&HOOK_KEYS), "{item}");
        assert_eq!(
            (&item["url"], &item["events"], &item["createdAt"]),
            (&created["url"], &created["events"], &created["createdAt"])
        );
        assert_eq!(item["secret"], format!("whsec_****{}", &full[full.len() - 4..]), "masked: {item}");
        let secret_body = full.trim_start_matches("whsec_");
        assert!(
            !text.contains(full) && !text.contains(&secret_body[..12]),
            "the secret is never shown again: {body}"
        );
    }

    let path = format!("/v1/webhooks/{}", first["id"].as_str().unwrap());
    let (status, body) = v1(&api, Method::DELETE, &path, None, Some(&auth), None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"success": true, "data": {"id": first["id"], "deleted": true}}))
    );
    let (status, body) = v1(&api, Method::DELETE, &path, None, Some(&auth), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    v1_error(&body, "NOT_FOUND");
    let (_, body) = v1(&api, Method::GET, "/v1/webhooks", None, Some(&auth), None).await;
    let ids: Vec<&Value> = body["data"].as_array().unwrap().iter().map(|i| &i["id"]).collect();
    assert_eq!(ids, vec![&second["id"]], "{body}");
    let (status, body) = v1(&api, Method::DELETE, "/v1/webhooks/wh_unknown", None, Some(&auth), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    v1_error(&body, "NOT_FOUND");

    // Another tenant neither sees nor deletes it.
    let (_, stranger_email) = register_as(&api, "stranger").await;
    let stranger = sign_in(&app, &stranger_email).await;
    let (status, body) = v1(&api, Method::GET, "/v1/webhooks", None, Some(&stranger), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true, "data": []})));
    let path = format!("/v1/webhooks/{}", second["id"].as_str().unwrap());
    let (status, body) = v1(&api, Method::DELETE, &path, None, Some(&stranger), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    v1_error(&body, "NOT_FOUND");
    let (_, body) = v1(&api, Method::GET, "/v1/webhooks", None, Some(&auth), None).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "still there: {body}");
}

#[actix_web::test]
async fn v1_webhook_secrets_events_and_urls_are_validated() {
    let app = common::spawn_with_outbox(&FAST).await;
    let api = Api::of(&app);
    let (_, email) = register_as(&api, "validation").await;
    let auth = sign_in(&app, &email).await;
    let ok = json!({"url": "http://127.0.0.1:9/hook", "events": ["escalation.created"]});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let bad: Vec<(&str, Value)> = vec![
        ("secret of 23 bytes", with("secret", json!(whsec(23)))),
        ("secret of 65 bytes", with("secret", json!(whsec(65)))),
        ("secret without prefix", with("secret", json!(whsec(32).trim_start_matches("whsec_")))),
        ("secret not base64", with("secret", json!("whsec_!!!!not*base64*at*all!!!!!!!!!!"))),
        ("empty secret", with("secret", json!(""))),
        ("bare prefix", with("secret", json!("whsec_"))),
        ("secret not a string", with("secret", json!(42))),
        ("no events", with("events", json!([]))),
        ("unknown event", with("events", json!(["escalation.created", "escalation.exploded"]))),
        ("events not a list", with("events", json!("escalation.created"))),
        ("missing events", without("events")),
        ("missing url", without("url")),
        ("not a URL", with("url", json!("not a url"))),
        ("ftp URL", with("url", json!("ftp://127.0.0.1/hook"))),
        ("metadata URL", with("url", json!("http://169.254.169.254/latest/meta-data"))),
    ];
    for (what, body) in bad {
        let (status, answer) =
            v1(&api, Method::POST, "/v1/webhooks", Some(body.clone()), Some(&auth), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body} → {answer}");
        v1_error(&answer, "BAD_REQUEST");
    }
    let (_, list) = v1(&api, Method::GET, "/v1/webhooks", None, Some(&auth), None).await;
    assert_eq!(list["data"], json!([]), "nothing was created");

    // The bounds are inclusive, and every event may be asked for.
    for n in [24, 64] {
        let secret = whsec(n);
        let data = create_hook(&api, &auth, with("secret", json!(secret))).await;
        assert_eq!(data["secret"], secret.as_str());
    }
    let all = ["conversation.completed", "escalation.created", "escalation.resolved", "escalation.expired"];
    create_hook(&api, &auth, with("events", json!(all))).await;
}

#[actix_web::test]
async fn v1_webhook_writes_need_a_manager_and_every_call_a_jwt() {
    let app = common::spawn_with_outbox(&FAST).await;
    let api = Api::of(&app);
    let (t, email) = register_as(&api, "roles").await;
    let owner = sign_in(&app, &email).await;
    let hook = create_hook(
        &api,
        &owner,
        json!({"url": "http://127.0.0.1:9/owned", "events": ["escalation.created"]}),
    )
    .await;
    let hook_path = format!("/v1/webhooks/{}", hook["id"].as_str().unwrap());

    let members = format!("/api/tenants/{}/members", t.id);
    let mut jwt = std::collections::HashMap::new();
    for role in ["Viewer", "Manager"] {
        let member_email = esc::email_for(role, "example.com");
        let (status, body) = api
            .post(&members, json!({"email": member_email, "role": role}), &[("Authorization", &owner)])
            .await;
        assert_eq!(status, StatusCode::CREATED, "add a {role}: {body}");
        jwt.insert(role, sign_in(&app, &member_email).await);
    }
    let tid = Some(t.id.as_str());
    let body = json!({"url": "http://127.0.0.1:9/new", "events": ["escalation.resolved"]});

    // A Viewer reads but does not write.
    let viewer = Some(jwt["Viewer"].as_str());
    let (status, list) = v1(&api, Method::GET, "/v1/webhooks", None, viewer, tid).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    let (status, answer) = v1(&api, Method::POST, "/v1/webhooks", Some(body.clone()), viewer, tid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    v1_error(&answer, "FORBIDDEN");
    let (status, answer) = v1(&api, Method::DELETE, &hook_path, None, viewer, tid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    v1_error(&answer, "FORBIDDEN");
    let (_, list) = v1(&api, Method::GET, "/v1/webhooks", None, Some(&owner), None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "the Viewer changed nothing: {list}");

    // A Manager writes.
    let manager = Some(jwt["Manager"].as_str());
    let (status, answer) = v1(&api, Method::POST, "/v1/webhooks", Some(body.clone()), manager, tid).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = v1(&api, Method::DELETE, &hook_path, None, manager, tid).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // No JWT, a bad one, or an Escalation API key instead: 401.
    let api_key_bearer = format!("Bearer {}", t.key);
    for auth in [None, Some("Bearer not.a.jwt"), Some(api_key_bearer.as_str())] {
        for (method, path, b) in [
            (Method::GET, "/v1/webhooks".to_string(), None),
            (Method::POST, "/v1/webhooks".to_string(), Some(body.clone())),
            (Method::DELETE, hook_path.clone(), None),
        ] {
            let (status, answer) = v1(&api, method.clone(), &path, b, auth, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {auth:?}: {answer}");
            v1_error(&answer, "UNAUTHORIZED");
        }
    }
}

#[actix_web::test]
async fn v1_webhooks_receive_the_tenants_escalation_events_signed_with_their_own_secret() {
    let cb = Receiver::start(Behaviour::Ok);
    let hook = Receiver::start(Behaviour::Ok);
    let expired_only = Receiver::start(Behaviour::Ok);
    let removed = Receiver::start(Behaviour::Ok);
    let app = common::spawn_with_outbox(&FAST).await;
    let api = Api::of(&app);
    let (t, email) = register_as(&api, "subscriber").await;
    let auth = sign_in(&app, &email).await;
    let hook_url = hook.url("/events");
    let hook_secret = create_hook(
        &api,
        &auth,
        json!({"url": hook_url, "events": ["escalation.created", "escalation.resolved"]}),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    create_hook(
        &api,
        &auth,
        json!({"url": expired_only.url("/x"), "events": ["escalation.expired"], "secret": whsec(40)}),
    )
    .await;
    let gone = create_hook(
        &api,
        &auth,
        json!({"url": removed.url("/x"), "events": ["escalation.created", "escalation.resolved"]}),
    )
    .await;
    let (status, body) = v1(
        &api,
        Method::DELETE,
        &format!("/v1/webhooks/{}", gone["id"].as_str().unwrap()),
        None,
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Created while no expert serves the domain: it stays pending.
    let cb_url = cb.url("/cb");
    let id = case_with_callback(&api, &t.key, "hooks.v1", &cb_url).await;
    let pending = api.detail(&t.key, &id).await;
    assert_eq!(pending["status"], "pending");
    let got = hook.until(WAIT, "escalation.created", |r| !r.is_empty()).await;
    let created = got[0].json();
    assert_eq!(keys(&created), detail_payload_keys(), "{created}");
    assert_eq!(created["event"], "escalation.created");
    time_ms(&created["timestamp"]);
    assert_eq!(without_event(&created), pending, "the created payload is the detail");

    let e = api.expert(&t.key, "Resolver", &["hooks.v1"], 3).await;
    api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
    resolve(&api, &e.token, &id).await;

    let list = until_all(&api, &t.key, &id, 3, "delivered").await;
    let pairs: BTreeSet<(String, String)> = list
        .iter()
        .map(|d| (d["event"].as_str().unwrap().to_string(), d["url"].as_str().unwrap().to_string()))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("escalation.created", hook_url.as_str()),
        ("escalation.resolved", hook_url.as_str()),
        ("escalation.resolved", cb_url.as_str()),
    ]
    .iter()
    .map(|(e, u)| (e.to_string(), u.to_string()))
    .collect();
    assert_eq!(pairs, want, "{list:#?}");
    assert_eq!(list[0]["event"], "escalation.created", "oldest first: {list:#?}");
    assert!(list.iter().all(|d| d["attempts"] == 1 && d["last_status_code"] == 200), "{list:#?}");

    let got = hook.requests();
    assert_eq!(got.len(), 2, "{}", hook.dump());
    let resolved =
        got.iter().find(|r| r.event().as_deref() == Some("escalation.resolved")).expect("resolved");
    let payload = resolved.json();
    assert_eq!(keys(&payload), detail_payload_keys(), "{payload}");
    let detail = api.detail(&t.key, &id).await;
    assert_eq!(detail["status"], "resolved");
    assert_eq!(without_event(&payload), detail, "the resolved payload is the detail");
    for r in &got {
        assert_standard_headers(r);
        let d = list.iter().find(|d| d["id"] == r.webhook_id()).unwrap_or_else(|| panic!("{}", r.describe()));
        assert_eq!(d["url"], hook_url.as_str());
        assert_eq!(Some(d["event"].as_str().unwrap()), r.event().as_deref());
    }
    let cb_got = cb.requests();
    assert_eq!(cb_got.len(), 1, "{}", cb.dump());
    assert_eq!(keys(&cb_got[0].json()), sorted(&CALLBACK_KEYS));

    // Each endpoint's requests verify with its own secret, and only with it.
    let tenant_secret = webhook_secret(&t);
    receiver::assert_signed(app.dir.path(), &hook_secret, &got).await;
    receiver::assert_signed(app.dir.path(), &tenant_secret, &cb_got).await;
    let mut crossed = Vec::new();
    for r in &got {
        crossed.push(receiver::case(
            &format!("hook #{} with the tenant secret", r.seq),
            &tenant_secret,
            r,
            false,
        ));
    }
    crossed.push(receiver::case("callback with the hook secret", &hook_secret, &cb_got[0], false));
    let verdict = receiver::run_verifier(app.dir.path(), crossed).await;
    assert!(verdict.success, "a request verified with the wrong secret\n{}", verdict.output);

    // Another tenant's escalations never reach this tenant's webhooks.
    let other = api.register("neighbour").await;
    let theirs = api.case(&other.key, "hooks.v1", "standard").await;
    assert_eq!(deliveries(&api, &other.key, &theirs).await, Vec::<Value>::new());
    assert!(hook.for_escalation(&theirs).is_empty(), "{}", hook.dump());
    assert_eq!(expired_only.count(), 0, "subscribed to escalation.expired only:\n{}", expired_only.dump());
    assert_eq!(removed.count(), 0, "a deleted webhook gets nothing:\n{}", removed.dump());
}

// ---- SSRF -------------------------------------------------------------------

#[actix_web::test]
async fn private_and_internal_targets_are_refused_at_registration() {
    // Default settings: no private targets; the harness limits outbound calls to loopback.
    let app = common::spawn_with_outbox(&[("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m")]).await;
    let api = Api::of(&app);
    let (t, email) = register_as(&api, "guarded").await;
    let auth = sign_in(&app, &email).await;
    // Each URL and the words its refusal must contain.
    let matrix: [(&str, &[&str]); 18] = [
        ("http://127.0.0.1:9/x", &["loopback", "127.0.0.1"]),
        ("http://[::1]:9/x", &["loopback", "::1"]),
        ("http://10.0.0.1/x", &["private", "10.0.0.1"]),
        ("http://172.16.0.1/x", &["private", "172.16.0.1"]),
        ("http://192.168.1.1/x", &["private", "192.168.1.1"]),
        ("http://169.254.169.254/latest/meta-data", &["metadata", "169.254.169.254"]),
        ("http://0.0.0.0/x", &["unspecified", "0.0.0.0"]),
        ("http://localhost:9/x", &["loopback"]),
        ("http://LocalHost:9/x", &["loopback"]),
        // The same addresses spelled otherwise.
        ("http://[::ffff:127.0.0.1]:9/x", &["loopback"]),
        ("http://[::ffff:10.0.0.1]/x", &["private"]),
        ("http://2130706433:9/x", &["loopback", "127.0.0.1"]),
        ("http://0x7f.0.0.1:9/x", &["loopback", "127.0.0.1"]),
        ("http://127.1:9/x", &["loopback", "127.0.0.1"]),
        ("http://[fd00::1]/x", &["private"]),
        ("http://[fe80::1]/x", &["link-local"]),
        ("http://[::]/x", &["unspecified"]),
        // Public, but outside SWITCHBOARD_OUTBOUND_ALLOW (never contacted: refused up front).
        ("http://93.184.216.34/x", &["outside", "93.184.216.34"]),
    ];
    for (url, words) in matrix {
        let (status, body) = api
            .post(
                "/escalations",
                json!({"domain": "hooks.ssrf", "query": "q", "callback_url": url}),
                &[("X-API-Key", &t.key)],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "callback_url {url}: {body}");
        let detail =
            body["detail"].as_str().unwrap_or_else(|| panic!("{{\"detail\"}}: {body}")).to_lowercase();
        for w in words {
            assert!(detail.contains(w), "callback_url {url}: the reason names {w:?}: {body}");
        }

        let hook = json!({"url": url, "events": ["escalation.created"]});
        let (status, body) = v1(&api, Method::POST, "/v1/webhooks", Some(hook), Some(&auth), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "/v1 webhook {url}: {body}");
        let message = v1_error(&body, "BAD_REQUEST").to_lowercase();
        for w in words {
            assert!(message.contains(w), "/v1 webhook {url}: the reason names {w:?}: {body}");
        }
    }
    let (status, list) = api.get("/escalations", &[("X-API-Key", &t.key)]).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])), "no case was created");
    let (_, list) = v1(&api, Method::GET, "/v1/webhooks", None, Some(&auth), None).await;
    assert_eq!(list["data"], json!([]), "no webhook was created");
}

#[actix_web::test]
async fn a_target_refused_at_send_time_fails_without_a_single_request() {
    let rx = Receiver::start(Behaviour::Ok);
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    let base = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "100ms,200ms"),
        ("SWITCHBOARD_SLA_STANDARD", "1h"),
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "1h"),
    ];

    // First life: loopback targets allowed, so the callback_url is accepted.
    let server =
        Server::start(dir.path(), &[&base[..], &[("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true")]].concat());
    let api = server.ready().await;
    let t = api.register("rebound").await;
    let e = api.expert(&t.key, "Resolver", &["hooks.rebound"], 5).await;
    let url = rx.url("/must-not-be-called");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = case_with_callback(&api, &t.key, "hooks.rebound", &url).await;
        api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
        ids.push(id);
    }
    server.kill();

    // Second life on the same database, with the default guard: the target is now refused.
    let server = Server::start(dir.path(), &base);
    let api = server.ready().await;
    for id in &ids {
        resolve(&api, &e.token, id).await;
    }
    for id in &ids {
        let list = until_all(&api, &t.key, id, 1, "failed").await;
        let d = &list[0];
        assert_eq!((&d["event"], &d["url"]), (&json!("escalation.resolved"), &json!(url)), "{d}");
        let error = d["last_error"].as_str().unwrap_or_else(|| panic!("last_error names the refusal: {d}"));
        assert!(error.to_lowercase().contains("loopback"), "last_error names the refusal: {d}");
        assert_eq!(
            (&d["last_status_code"], &d["delivered_at"]),
            (&Value::Null, &Value::Null),
            "no answer: {d}"
        );
    }
    assert_eq!(rx.count(), 0, "the refused target was never contacted:\n{}", rx.dump());
    drop(server);
}
