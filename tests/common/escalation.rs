//! Helpers for the Escalation API tests: a small HTTP client that works
//! against an in-process `TestApp` or a child-process server, and shortcuts
//! for tenants, experts, escalations and the expert portal.
//!
//! Include it next to the harness:
//! `mod common; #[path = "common/escalation.rs"] mod esc;`

#![allow(dead_code)] // each test file uses a different part of it

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The six fields of a create response and of each list item.
pub const SUMMARY_KEYS: [&str; 6] = ["id", "status", "priority", "domain", "sla_deadline", "created_at"];

/// Every field of `GET /escalations/{id}` (extensions.md).
pub const DETAIL_KEYS: [&str; 19] = [
    "id",
    "tenant_id",
    "domain",
    "query",
    "context",
    "priority",
    "status",
    "output_schema",
    "callback_url",
    "metadata",
    "task_type",
    "candidates",
    "sla_deadline",
    "created_at",
    "routed_at",
    "resolved_at",
    "expert_id",
    "resolution",
    "feedback",
];

/// The fields of a resolution (extensions.md).
pub const RESOLUTION_KEYS: [&str; 8] = [
    "escalation_id",
    "expert_id",
    "answer",
    "confidence",
    "reasoning",
    "resolved_at",
    "source_candidate_id",
    "candidate_action",
];

/// A status, the response headers and the JSON body (Null when not JSON).
pub type Full = (StatusCode, HeaderMap, Value);

/// An HTTP client bound to one server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

/// A registered tenant.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub key: String,
    pub body: Value,
}

/// A registered expert and its portal token.
#[derive(Clone, Debug)]
pub struct Expert {
    pub id: String,
    pub token: String,
    pub body: Value,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A unique email address whose local part is derived from `name`.
pub fn email_for(name: &str, host: &str) -> String {
    let local: String =
        name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("{}@{host}", unique(&local))
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> =
        v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect();
    k.sort();
    k
}

pub fn sorted(list: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

/// Epoch milliseconds of an RFC 3339 time.
pub fn time_ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time string: {v}"));
    assert!(s.ends_with('Z'), "times are UTC with Z: {s}");
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {s}"))
        .timestamp_millis()
}

impl Api {
    pub fn new(base: impl Into<String>) -> Api {
        Api {
            base: base.into(),
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        }
    }

    pub fn of(app: &crate::common::TestApp) -> Api {
        Api { base: app.address.clone(), client: app.client.clone() }
    }

    pub fn at_port(port: u16) -> Api {
        Api::new(format!("http://127.0.0.1:{port}"))
    }

    /// Sends a request; `body` None sends no body at all.
    pub async fn full(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Full {
        let mut req = self.client.request(method.clone(), format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let (s, _, b) = self.full(method, path, body, headers).await;
        (s, b)
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, headers).await
    }

    pub async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), headers).await
    }

    pub async fn patch(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body), headers).await
    }

    /// A POST with an empty body and `Content-Type: application/json` (as the SDK sends).
    pub async fn post_empty(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("Content-Type", "application/json")
            .body("");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    // ---- tenants ----

    pub async fn register(&self, name: &str) -> Tenant {
        let email = email_for(name, "example.com");
        let (status, body) = self.post("/auth/register", json!({"name": name, "email": email}), &[]).await;
        assert_eq!(status, StatusCode::CREATED, "register: {body}");
        Tenant {
            id: body["tenant_id"].as_str().expect("tenant_id").to_string(),
            key: body["api_key"].as_str().expect("api_key").to_string(),
            body,
        }
    }

    // ---- experts ----

    /// `POST /experts` with `body`; asserts 201.
    pub async fn create_expert_with(&self, key: &str, body: Value) -> Expert {
        let (status, answer) = self.post("/experts", body.clone(), &[("X-API-Key", key)]).await;
        assert_eq!(status, StatusCode::CREATED, "create expert {body}: {answer}");
        Expert {
            id: answer["id"].as_str().expect("expert id").to_string(),
            token: answer["expert_token"].as_str().expect("expert_token").to_string(),
            body: answer,
        }
    }

    /// An expert of `domains` with `max_concurrent`.
    pub async fn expert(&self, key: &str, name: &str, domains: &[&str], max_concurrent: u32) -> Expert {
        let email = email_for(name, "experts.example.com");
        self.create_expert_with(
            key,
            json!({"name": name, "email": email, "domains": domains, "max_concurrent": max_concurrent}),
        )
        .await
    }

    pub async fn expert_profile(&self, key: &str, id: &str) -> Value {
        let (status, body) = self.get(&format!("/experts/{id}"), &[("X-API-Key", key)]).await;
        assert_eq!(status, StatusCode::OK, "GET /experts/{id}: {body}");
        body
    }

    pub async fn patch_expert(&self, key: &str, id: &str, body: Value) -> Value {
        let (status, answer) =
            self.patch(&format!("/experts/{id}"), body.clone(), &[("X-API-Key", key)]).await;
        assert_eq!(status, StatusCode::OK, "PATCH /experts/{id} {body}: {answer}");
        answer
    }

    // ---- escalations ----

    /// `POST /escalations`; asserts 201 and returns the body.
    pub async fn create(&self, key: &str, body: Value) -> Value {
        let (status, answer) = self.post("/escalations", body.clone(), &[("X-API-Key", key)]).await;
        assert_eq!(status, StatusCode::CREATED, "create escalation {body}: {answer}");
        answer
    }

    /// A case in `domain` with `priority`; returns its id.
    pub async fn case(&self, key: &str, domain: &str, priority: &str) -> String {
        let body = self
            .create(key, json!({"domain": domain, "query": unique("question"), "priority": priority}))
            .await;
        body["id"].as_str().expect("id").to_string()
    }

    /// `GET /escalations/{id}`; asserts 200.
    pub async fn detail(&self, key: &str, id: &str) -> Value {
        let (status, body) = self.get(&format!("/escalations/{id}"), &[("X-API-Key", key)]).await;
        assert_eq!(status, StatusCode::OK, "GET /escalations/{id}: {body}");
        body
    }

    /// Polls the detail until `check` holds; returns it, or panics with the last one.
    pub async fn detail_until(
        &self,
        key: &str,
        id: &str,
        within: Duration,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = std::time::Instant::now() + within;
        loop {
            let d = self.detail(key, id).await;
            if check(&d) {
                return d;
            }
            if std::time::Instant::now() >= end {
                panic!("escalation {id} never became {what} within {within:?}; last: {d}");
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the case is `status` (and, if given, with `expert`).
    pub async fn until_status(&self, key: &str, id: &str, status: &str, expert: Option<&str>) -> Value {
        let what = match expert {
            Some(e) => format!("{status} with expert {e}"),
            None => status.to_string(),
        };
        self.detail_until(key, id, Duration::from_secs(10), &what, |d| {
            d["status"] == status && expert.is_none_or(|e| d["expert_id"] == e)
        })
        .await
    }

    /// Waits until the case is routed (to anyone); returns the expert's id.
    pub async fn until_routed(&self, key: &str, id: &str) -> String {
        let d = self.until_status(key, id, "routed", None).await;
        d["expert_id"].as_str().expect("a routed case has an expert").to_string()
    }

    /// Checks for `window` that the case keeps satisfying `check`; panics otherwise.
    pub async fn stays(
        &self,
        key: &str,
        id: &str,
        window: Duration,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) {
        let end = std::time::Instant::now() + window;
        loop {
            let d = self.detail(key, id).await;
            assert!(check(&d), "escalation {id} should have stayed {what}; now: {d}");
            if std::time::Instant::now() >= end {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn feedback(&self, key: &str, id: &str, score: f64) -> (StatusCode, Value) {
        self.post_empty(&format!("/escalations/{id}/feedback?score={score}"), &[("X-API-Key", key)]).await
    }

    // ---- portal ----

    pub async fn accept(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.post_empty(&format!("/experts/me/escalations/{id}/accept"), &[("X-Expert-Token", token)]).await
    }

    pub async fn resolve_with(&self, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/experts/me/escalations/{id}/resolve"), body, &[("X-Expert-Token", token)]).await
    }

    /// Resolves with a plain answer; asserts 200.
    pub async fn resolve(&self, token: &str, id: &str) -> Value {
        let (status, body) = self
            .resolve_with(
                token,
                id,
                json!({"answer": {"ok": true}, "confidence": 0.9, "reasoning": "checked"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "resolve {id}: {body}");
        body
    }

    pub async fn decline(&self, token: &str, id: &str, reason: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/experts/me/escalations/{id}/decline"),
            json!({"reason": reason, "notes": "not for me"}),
            &[("X-Expert-Token", token)],
        )
        .await
    }

    /// The ids of the expert's cases (`GET /experts/me/escalations`), newest first.
    pub async fn my_case_ids(&self, token: &str) -> Vec<String> {
        let (status, body) = self.get("/experts/me/escalations", &[("X-Expert-Token", token)]).await;
        assert_eq!(status, StatusCode::OK, "my cases: {body}");
        body.as_array().expect("a bare array").iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
    }

    /// Gives `expert` a quality score of `score` by routing it a case in
    /// `domain` (no other expert may take it), resolving it and rating it.
    pub async fn rate_through_case(&self, key: &str, expert: &Expert, domain: &str, score: f64) -> String {
        let id = self.case(key, domain, "standard").await;
        self.until_status(key, &id, "routed", Some(&expert.id)).await;
        self.resolve(&expert.token, &id).await;
        let (status, body) = self.feedback(key, &id, score).await;
        assert_eq!(status, StatusCode::OK, "feedback: {body}");
        id
    }
}

/// Whether `a` and `b` are equal within rounding.
pub fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-6)
}
