//! Abuse cases not covered next to their endpoints: deeply nested JSON on
//! every surface, the per-client sign-in limit, credentials that were
//! revoked answering exactly like credentials that never existed (so an
//! attacker cannot tell them apart), header injection through a
//! `callback_url` or a request id, and hostile `output_schema`s.

mod common;
#[path = "common/escalation.rs"]
mod esc;

use reqwest::StatusCode;
use serde_json::{json, Value};

/// `{"a": [[[ ... ]]]}` nested `depth` deep, as text (serde_json could not
/// build it: that is the point).
fn nested(field: &str, depth: usize) -> String {
    format!("{{\"{field}\": {}{}}}", "[".repeat(depth), "]".repeat(depth))
}

async fn post_raw(
    app: &common::TestApp,
    path: &str,
    body: String,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = app.client.post(app.url(path)).header("Content-Type", "application/json").body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text })))
}

/// Signs up on the Agent API, verifies, logs in, and makes an API key:
/// returns (JWT header value, key).
async fn agent_key(app: &common::TestApp, email: &str) -> (String, String) {
    let (status, body) = app
        .post("/v1/auth/signup", json!({"email": email, "password": "correct horse", "name": "Bee"}), &[])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mail = app.mails_to(email);
    let text = mail.last().expect("verification mail")["text"].as_str().unwrap().to_string();
    let token = text.split("token: ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let (status, body) = app.post("/v1/auth/verify-email", json!({"token": token}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        app.post("/v1/auth/login", json!({"email": email, "password": "correct horse"}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jwt = format!("Bearer {}", body["data"]["token"].as_str().unwrap());
    let (status, body) = app.post("/v1/api-keys", json!({"name": "abuse"}), &[("Authorization", &jwt)]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (jwt, body["data"]["key"].as_str().unwrap().to_string())
}

/// The body without what differs from one request to the next.
fn without_request_id(mut body: Value) -> Value {
    if let Some(e) = body.get_mut("error").and_then(Value::as_object_mut) {
        e.remove("requestId");
    }
    body
}

#[actix_web::test]
async fn deeply_nested_json_is_400_in_each_surfaces_format() {
    let app = common::spawn_with_outbox(&[("SWITCHBOARD_BOOTSTRAP_ADMIN", "ops@example.com")]).await;
    let key = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    let jwt = common::sign_in(&app, "ops@example.com").await;
    let (_, agent) = agent_key(&app, "nest@example.com").await;
    for depth in [200, 100_000] {
        let (status, body) =
            post_raw(&app, "/escalations", nested("context", depth), &[("X-API-Key", key.as_str())]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "escalation, depth {depth}: {body}");
        assert!(body["detail"].is_string(), "{body}");

        let (status, body) =
            post_raw(&app, "/v1/customers", nested("metadata", depth), &[("X-API-Key", agent.as_str())])
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "agent, depth {depth}: {body}");
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{body}");

        let (status, body) =
            post_raw(&app, "/api/tenants", nested("name", depth), &[("Authorization", &jwt)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "platform, depth {depth}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    // Nesting a little under the parser's limit is fine where any JSON is allowed.
    let ok = format!(
        "{{\"domain\": \"abuse.nested\", \"query\": \"q\", \"context\": {{\"deep\": {}{}}}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let (status, body) = post_raw(&app, "/escalations", ok, &[("X-API-Key", key.as_str())]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the server is still up");
}

#[actix_web::test]
async fn sign_in_requests_are_rate_limited_per_client_address() {
    let app = common::spawn_with_outbox(&[("SWITCHBOARD_SIGNIN_LIMIT_PER_CLIENT", "4/1h")]).await;
    // Different emails each time: only the client's own allowance can run out.
    for i in 0..4 {
        let (status, body) =
            app.post("/api/auth/otp/request", json!({"email": format!("u{i}@example.com")}), &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let resp = app
        .client
        .post(app.url("/api/auth/otp/request"))
        .json(&json!({"email": "u9@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Login and sign-up share the client's allowance.
    let (status, body) =
        app.post("/v1/auth/login", json!({"email": "u0@example.com", "password": "whatever1"}), &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (status, body) = app
        .post("/v1/auth/signup", json!({"email": "new@example.com", "password": "long enough"}), &[])
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[actix_web::test]
async fn revoked_credentials_answer_exactly_like_unknown_ones() {
    let app = common::spawn_with_outbox(&[("SWITCHBOARD_BOOTSTRAP_ADMIN", "ops@example.com")]).await;

    // Expert tokens: a retired one and one that never existed.
    let key = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    let (status, expert) = app
        .post(
            "/experts",
            json!({"name": "E", "email": "e@example.com", "domains": ["abuse.enum"]}),
            &[("X-API-Key", key.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{expert}");
    let retired = expert["expert_token"].as_str().unwrap().to_string();
    let (status, _) = app
        .post(
            &format!("/experts/{}/token", expert["id"].as_str().unwrap()),
            json!({}),
            &[("X-API-Key", key.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let unknown = format!("exp_{}", "0".repeat(retired.len() - 4));
    let a = app.get("/experts/me", &[("X-Expert-Token", &retired)]).await;
    let b = app.get("/experts/me", &[("X-Expert-Token", &unknown)]).await;
    assert_eq!(a.0, StatusCode::UNAUTHORIZED);
    assert_eq!(a, b, "a retired expert token answers like an unknown one");

    // Agent API keys: a revoked one and one that never existed.
    let (jwt, agent) = agent_key(&app, "enum@example.com").await;
    let ask = |k: String| {
        let app = &app;
        async move {
            let (s, b) = app.get("/v1/rate-limits", &[("X-API-Key", k.as_str())]).await;
            (s, without_request_id(b))
        }
    };
    let before = ask(agent.clone()).await;
    assert_eq!(before.0, StatusCode::OK, "the key works before it is revoked: {before:?}");
    assert_eq!(revoke_all_agent_keys(&app, &jwt).await, 1);
    let revoked = ask(agent.clone()).await;
    let unknown = ask(format!("sk_live_{}", "A".repeat(agent.len().saturating_sub(8)))).await;
    assert_eq!(revoked.0, StatusCode::UNAUTHORIZED, "{revoked:?}");
    assert_eq!(revoked, unknown, "a revoked Agent API key answers like an unknown one");

    // Platform JWTs: one revoked by logout, and one signed with another key.
    let bearer = common::sign_in(&app, "ops@example.com").await;
    let session = bearer.trim_start_matches("Bearer ").to_string();
    let (status, _) = app.post("/api/auth/logout", json!({}), &[("Authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::OK);
    let mut parts: Vec<String> = session.split('.').map(str::to_string).collect();
    parts[2] = "c2lnbmVkLXdpdGgtYW5vdGhlci1rZXk".into();
    let forged = parts.join(".");
    let a = app.get("/api/auth/me", &[("Authorization", &format!("Bearer {session}"))]).await;
    let b = app.get("/api/auth/me", &[("Authorization", &format!("Bearer {forged}"))]).await;
    assert_eq!(a.0, StatusCode::UNAUTHORIZED);
    assert_eq!(a, b, "a revoked JWT answers like a forged one");
}

/// Revokes every active Agent API key of the caller's tenant; returns how many.
async fn revoke_all_agent_keys(app: &common::TestApp, jwt: &str) -> usize {
    let (status, listed) = app.get("/v1/api-keys", &[("Authorization", jwt)]).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let mut n = 0;
    for k in listed["data"].as_array().unwrap() {
        if k["status"] == "active" {
            let resp = app
                .client
                .delete(app.url(&format!("/v1/api-keys/{}", k["id"].as_str().unwrap())))
                .header("Authorization", jwt)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            n += 1;
        }
    }
    n
}

#[actix_web::test]
async fn no_header_can_be_injected_through_a_reflected_value() {
    let app = common::spawn_app().await;
    let key = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    // A callback URL carrying a line break (raw or percent-encoded as a header) is refused or kept inert.
    for url in ["http://127.0.0.1:9/x\r\nX-Injected: 1", "http://127.0.0.1:9/x\nHost: evil.example"] {
        let (status, body) = app
            .post(
                "/escalations",
                json!({"domain": "abuse.hdr", "query": "q", "callback_url": url}),
                &[("X-API-Key", key.as_str())],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url:?}: {body}");
    }
    // A request id that is not a plain token is replaced, never echoed.
    for bad in ["a b", "x".repeat(129).as_str(), "caf\u{e9}"] {
        let resp = app.client.get(app.url("/healthz")).header("X-Request-Id", bad).send().await;
        let Ok(resp) = resp else { continue }; // the client itself refused the value
        let echoed = resp.headers()["x-request-id"].to_str().unwrap_or("").to_string();
        assert_ne!(echoed, bad);
        assert!(echoed.starts_with("req_"), "{echoed}");
    }
    let resp = app.client.get(app.url("/healthz")).header("X-Request-Id", "trace-123").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-123", "a plain id is echoed");
    assert!(resp.headers().get("x-injected").is_none());
}

#[actix_web::test]
async fn hostile_output_schemas_are_refused_or_harmless() {
    let app = common::spawn_app().await;
    let api = esc::Api::of(&app);
    let key = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    let key = key.as_str();
    let create = |schema: Value| json!({"domain": "abuse.schema", "query": "q", "output_schema": schema});

    // Over 256 KiB of schema (under the 1 MiB body limit), nested past 64, or
    // with a pattern only a backtracking engine could run: 400, nothing stored.
    let properties: serde_json::Map<String, Value> =
        (0..12_000).map(|i| (format!("field_{i:05}"), json!({"type": "string"}))).collect();
    let huge = json!({"type": "object", "properties": properties});
    let mut deep = json!({"type": "string"});
    // 40 levels: 80 JSON containers, under the body parser's 128, over the schema's 64.
    for _ in 0..40 {
        deep = json!({"type": "object", "properties": {"n": deep}});
    }
    let lookaround =
        json!({"type": "object", "properties": {"code": {"type": "string", "pattern": "^(?=a)a+$"}}});
    for (what, schema) in [("huge", huge), ("deep", deep), ("lookaround", lookaround)] {
        let (status, body) = api.post("/escalations", create(schema), &[("X-API-Key", key)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("output_schema")), "{what}: {body}");
    }

    // A pattern that makes backtracking engines explode is accepted, and an
    // answer built to trigger it is refused by the Quality Gate (422) at once.
    let expert = api.expert(key, "Rex", &["abuse.schema"], 1).await;
    let evil = json!({"type": "object", "required": ["code"],
                      "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}});
    let case = api.create(key, create(evil)).await["id"].as_str().unwrap().to_string();
    api.until_status(key, &case, "routed", Some(&expert.id)).await;
    let (status, _) = api.accept(&expert.token, &case).await;
    assert_eq!(status, StatusCode::OK);
    let answer = format!("{}!", "a".repeat(50_000));
    let (status, body) =
        api.resolve_with(&expert.token, &case, json!({"answer": {"code": answer}, "confidence": 0.9})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("/code"), "the error names the field: {body}");
    let (status, body) =
        api.resolve_with(&expert.token, &case, json!({"answer": {"code": "aaaa"}, "confidence": 0.9})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
