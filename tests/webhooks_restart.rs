//! Webhook deliveries are durable: the real server binary is killed with
//! SIGKILL while deliveries wait for their next attempt, and restarted on the
//! same database with the receiver healthy again. Every recorded delivery
//! arrives (signed, with its webhook-id), and one that was recorded delivered
//! before the kill is never sent again.

#[path = "common/child.rs"]
#[allow(dead_code)] // each test file uses a different part
mod child;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::time::{Duration, Instant};

use child::ChildServer as Server;
use common::receiver::{self, Behaviour, Receiver};
use esc::Api;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// `GET /webhooks/deliveries/{id}`; asserts 200; returns the list.
async fn deliveries(api: &Api, key: &str, id: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/webhooks/deliveries/{id}"), &[("X-API-Key", key)]).await;
    assert_eq!(status, StatusCode::OK, "GET /webhooks/deliveries/{id}: {body}");
    assert_eq!(body["escalation_id"], id, "{body}");
    body["deliveries"].as_array().unwrap_or_else(|| panic!("deliveries: {body}")).clone()
}

/// Polls until the one delivery of `id` satisfies `check`; returns it.
async fn until_delivery(api: &Api, key: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + WAIT;
    loop {
        let list = deliveries(api, key, id).await;
        if list.len() == 1 && check(&list[0]) {
            return list[0].clone();
        }
        if Instant::now() >= end {
            panic!("the delivery of {id} never became {what} within {WAIT:?}; last: {list:#?}");
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A case in `hooks.durable` whose resolution goes to `url`; returns its id.
async fn case_with_callback(api: &Api, key: &str, url: &str) -> String {
    let created = api
        .create(key, json!({"domain": "hooks.durable", "query": esc::unique("q"), "callback_url": url}))
        .await;
    created["id"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn pending_deliveries_survive_sigkill_and_delivered_ones_are_not_sent_again() {
    let rx = Receiver::start(Behaviour::Ok);
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    // Seven attempts a second apart: plenty left when the server is killed.
    let env = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "1s,1s,1s,1s,1s,1s"),
        ("SWITCHBOARD_SLA_STANDARD", "1h"),
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "1h"),
    ];

    // ---- first life ----
    let server = Server::start(dir.path(), &env);
    let api = server.ready().await;
    let t = api.register("durable hooks").await;
    let key = t.key.as_str();
    let secret = t.body["webhook_secret"].as_str().expect("webhook_secret").to_string();
    let e = api.expert(key, "Resolver", &["hooks.durable"], 10).await;
    let answer = json!({"answer": {"ok": true}, "confidence": 0.9, "reasoning": "checked"});
    let url = rx.url("/durable");

    // Delivered while the receiver is healthy, before the kill.
    let early = case_with_callback(&api, key, &url).await;
    api.until_status(key, &early, "routed", Some(&e.id)).await;
    let (status, body) = api.resolve_with(&e.token, &early, answer.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let early_delivery = until_delivery(&api, key, &early, "delivered", |d| d["status"] == "delivered").await;
    let early_id = early_delivery["id"].as_str().unwrap().to_string();
    assert_eq!(rx.with_id(&early_id).len(), 1, "{}", rx.dump());

    // Then the receiver fails, and more cases are resolved.
    rx.set(Behaviour::Always(503));
    let mut waiting = Vec::new();
    for _ in 0..4 {
        waiting.push(case_with_callback(&api, key, &url).await);
    }
    for id in &waiting {
        api.until_status(key, id, "routed", Some(&e.id)).await;
        let (status, body) = api.resolve_with(&e.token, id, answer.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Every one has been tried once and is waiting for its next attempt.
    let mut webhook_ids = Vec::new();
    for id in &waiting {
        let d = until_delivery(&api, key, id, "retrying after a 503", |d| {
            d["status"] == "retrying" && d["last_status_code"] == 503
        })
        .await;
        webhook_ids.push(d["id"].as_str().unwrap().to_string());
    }
    server.kill();
    for wid in &webhook_ids {
        assert!(
            rx.with_id(wid).iter().all(|r| r.answered == Some(503)),
            "nothing of {wid} was answered 2xx before the kill:\n{}",
            rx.dump()
        );
    }

    // ---- second life, same database, receiver healthy ----
    rx.set(Behaviour::Ok);
    let server = Server::start(dir.path(), &env);
    let api = server.ready().await;
    for (id, wid) in waiting.iter().zip(&webhook_ids) {
        let d = until_delivery(&api, key, id, "delivered after the restart", |d| d["status"] == "delivered")
            .await;
        assert_eq!(d["id"], wid.as_str(), "the same delivery, not a new one: {d}");
        assert_eq!(d["last_status_code"], 200, "{d}");
        assert!(
            d["attempts"].as_u64().unwrap() >= 2,
            "a failed attempt before the kill, a good one after: {d}"
        );
        let seen = rx.with_id(wid);
        assert!(seen.len() >= 2, "{}", rx.dump());
        assert_eq!(seen.last().unwrap().answered, Some(200));
        assert_eq!(
            seen.iter().filter(|r| r.answered == Some(200)).count(),
            1,
            "delivered once:\n{}",
            rx.dump()
        );
    }
    // The delivery recorded before the kill was not sent again.
    let d = deliveries(&api, key, &early).await;
    assert_eq!(d, vec![early_delivery.clone()], "unchanged by the restart");
    assert_eq!(rx.with_id(&early_id).len(), 1, "sent once only:\n{}", rx.dump());

    // Every request carried a valid signature.
    let all = rx.requests();
    receiver::assert_signed(dir.path(), &secret, &all).await;
    drop(server);
}

#[actix_web::test]
async fn v1_webhooks_and_their_pending_deliveries_survive_sigkill() {
    let rx = Receiver::start(Behaviour::Always(503));
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    let outbox = dir.path().join("outbox");
    let mail = format!("file:{}", outbox.display());
    let env = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_MAIL", mail.as_str()),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "1s,1s,1s,1s,1s,1s"),
        ("SWITCHBOARD_SLA_STANDARD", "1h"),
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "1h"),
    ];

    // ---- first life: a /v1 webhook, and an escalation.created it cannot deliver yet ----
    let server = Server::start(dir.path(), &env);
    let api = server.ready().await;
    let email = esc::email_for("subscriber", "example.com");
    let (status, reg) = api.post("/auth/register", json!({"name": "Subscriber", "email": email}), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    let key = reg["api_key"].as_str().unwrap().to_string();
    let (status, body) = api.post("/api/auth/otp/request", json!({"email": email}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = common::last_code_in(&outbox, &email);
    let (status, body) = api.post("/api/auth/otp/verify", json!({"email": email, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let auth = format!("Bearer {}", body["token"].as_str().unwrap());
    let url = rx.url("/v1-events");
    let (status, hook) = api
        .post(
            "/v1/webhooks",
            json!({"url": url, "events": ["escalation.created", "escalation.resolved"]}),
            &[("Authorization", &auth)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let secret = hook["data"]["secret"].as_str().unwrap().to_string();

    let created = api.create(&key, json!({"domain": "hooks.v1durable", "query": "q"})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let pending = until_delivery(&api, &key, &id, "retrying after a 503", |d| {
        d["status"] == "retrying" && d["last_status_code"] == 503
    })
    .await;
    assert_eq!((&pending["event"], &pending["url"]), (&json!("escalation.created"), &json!(url)));
    server.kill();

    // ---- second life: the pending delivery arrives, signed with the webhook's secret ----
    rx.set(Behaviour::Ok);
    let server = Server::start(dir.path(), &env);
    let api = server.ready().await;
    let d =
        until_delivery(&api, &key, &id, "delivered after the restart", |d| d["status"] == "delivered").await;
    assert_eq!(d["id"], pending["id"], "{d}");

    // The subscription itself survived: the resolution reaches it too.
    let e = api.expert(&key, "Resolver", &["hooks.v1durable"], 3).await;
    api.until_status(&key, &id, "routed", Some(&e.id)).await;
    let (status, body) =
        api.resolve_with(&e.token, &id, json!({"answer": {"ok": true}, "confidence": 0.9})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let end = Instant::now() + WAIT;
    let list = loop {
        let list = deliveries(&api, &key, &id).await;
        if list.len() == 2 && list.iter().all(|d| d["status"] == "delivered") {
            break list;
        }
        assert!(Instant::now() < end, "both deliveries delivered within {WAIT:?}: {list:#?}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(list[1]["event"], "escalation.resolved", "{list:#?}");
    assert_eq!(list[1]["url"], url.as_str(), "{list:#?}");
    let delivered: Vec<_> = rx.requests().into_iter().filter(|r| r.answered == Some(200)).collect();
    assert_eq!(delivered.len(), 2, "{}", rx.dump());
    assert_eq!(delivered[0].event().as_deref(), Some("escalation.created"));
    assert_eq!(delivered[1].event().as_deref(), Some("escalation.resolved"));
    receiver::assert_signed(dir.path(), &secret, &rx.requests()).await;
    drop(server);
}
