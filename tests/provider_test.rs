//! `POST /api/tenants/{id}/provider/test`: the offline provider, an
//! OpenAI-compatible fake on loopback (success, a refused key, a dead port),
//! the fallback to the stored config and key (which never goes to another
//! base_url), base_url through the outbound guard, and the role rules.

mod common;
#[path = "common/fake_llm.rs"]
mod fake_llm;

use fake_llm::{FakeLlm, Mode};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "ops@example.com";
const GIVEN_KEY: &str = "sk-given-for-the-test-0123456789";
const STORED_KEY: &str = "sk-stored-tenant-key-9876543210";

/// Loopback targets allowed (the fake runs on 127.0.0.1); the harness limits
/// outbound traffic to loopback anyway.
async fn app() -> common::TestApp {
    app_with(&[("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true")]).await
}

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

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("platform error shape: {body}"))
}

/// The admin's and a tenant Owner's `Authorization`, and the Owner's new tenant (created with `body`).
async fn owner_with_tenant(app: &common::TestApp, body: Value) -> (String, String, String) {
    let admin = common::sign_in(app, ADMIN).await;
    let owner = common::new_user(app, &admin, "alice@example.com").await;
    let (status, t) = app.post("/api/tenants", body, &[("Authorization", &owner)]).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    (admin, owner, t["id"].as_str().unwrap().to_string())
}

async fn test_provider(
    app: &common::TestApp,
    auth: &str,
    tid: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.call(Method::POST, &format!("/api/tenants/{tid}/provider/test"), body, &[("Authorization", auth)])
        .await
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[actix_web::test]
async fn offline_succeeds_without_the_network() {
    let app = app().await;
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;
    // No body: the stored config, which is the offline default.
    assert_eq!(test_provider(&app, &owner, &tid, None).await, (StatusCode::OK, json!({"success": true})));
    assert_eq!(
        test_provider(&app, &owner, &tid, Some(json!({}))).await,
        (StatusCode::OK, json!({"success": true}))
    );
    let (status, body) = test_provider(
        &app,
        &owner,
        &tid,
        Some(json!({"provider": "offline", "model": "m", "api_key": GIVEN_KEY})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
}

#[actix_web::test]
async fn an_openai_compatible_server_is_really_asked() {
    let app = app().await;
    let fake = FakeLlm::start();
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;

    let body = json!({"provider": "openai", "model": "gpt-test", "api_key": GIVEN_KEY, "base_url": fake.url});
    let (status, answer) = test_provider(&app, &owner, &tid, Some(body.clone())).await;
    assert_eq!((status, &answer), (StatusCode::OK, &json!({"success": true})));
    assert_eq!(fake.auth_headers(), vec![Some(format!("Bearer {GIVEN_KEY}"))]);
    let sent = &fake.requests()[0];
    assert_eq!(sent["model"], "gpt-test");
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "Reply with OK."}]));

    // The provider refuses the key: "Invalid API key", and the key is not echoed.
    for status in [401, 403] {
        fake.set_mode(Mode::Fail(status));
        let (code, answer) = test_provider(&app, &owner, &tid, Some(body.clone())).await;
        assert_eq!(
            (code, &answer),
            (StatusCode::OK, &json!({"success": false, "error": "Invalid API key"})),
            "{status}"
        );
    }
    // Another failure says what happened, without the key.
    fake.set_mode(Mode::Fail(500));
    let (code, answer) = test_provider(&app, &owner, &tid, Some(body.clone())).await;
    assert_eq!((code, &answer["success"]), (StatusCode::OK, &json!(false)));
    assert!(error_of(&answer).contains("500"), "{answer}");
    assert!(!answer.to_string().contains(GIVEN_KEY));

    // Nothing was stored by a test.
    let (_, config) = app.get(&format!("/api/tenants/{tid}/config"), &[("Authorization", &owner)]).await;
    assert_eq!((&config["provider"], &config["api_key_set"]), (&json!(null), &json!(false)));
}

#[actix_web::test]
async fn unreachable_and_misconfigured_providers_fail() {
    let app = app().await;
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;
    let base_url = format!("http://127.0.0.1:{}/v1", dead_port());
    let (status, answer) = test_provider(
        &app,
        &owner,
        &tid,
        Some(json!({"provider": "openai", "model": "m", "api_key": GIVEN_KEY, "base_url": base_url})),
    )
    .await;
    assert_eq!((status, &answer["success"]), (StatusCode::OK, &json!(false)), "{answer}");
    assert!(error_of(&answer).starts_with("connection failed"), "{answer}");
    assert!(!answer.to_string().contains(GIVEN_KEY));

    // A remote provider with no base_url or no model cannot work: a failed test, not a 400.
    for body in
        [json!({"provider": "openai", "model": "m"}), json!({"provider": "openai", "base_url": base_url})]
    {
        let (status, answer) = test_provider(&app, &owner, &tid, Some(body.clone())).await;
        assert_eq!((status, &answer["success"]), (StatusCode::OK, &json!(false)), "{body}: {answer}");
        let error = error_of(&answer);
        assert!(error.contains("base_url") || error.contains("model"), "{body}: {answer}");
    }
}

#[actix_web::test]
async fn missing_fields_fall_back_to_the_stored_config_and_key() {
    let app = app().await;
    let fake = FakeLlm::start();
    let (_, owner, tid) = owner_with_tenant(
        &app,
        json!({"name": "Acme", "provider": "openai", "model": "stored-model", "base_url": fake.url,
               "api_key": STORED_KEY}),
    )
    .await;

    // Nothing given: all stored, the sealed key opened and sent.
    assert_eq!(test_provider(&app, &owner, &tid, None).await, (StatusCode::OK, json!({"success": true})));
    assert_eq!(fake.auth_headers(), vec![Some(format!("Bearer {STORED_KEY}"))]);
    assert_eq!(fake.requests()[0]["model"], "stored-model");

    // A given model and key win; the stored base_url stays.
    let (status, answer) =
        test_provider(&app, &owner, &tid, Some(json!({"model": "other-model", "api_key": GIVEN_KEY}))).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"success": true})));
    assert_eq!(fake.auth_headers()[1], Some(format!("Bearer {GIVEN_KEY}")));
    assert_eq!(fake.requests()[1]["model"], "other-model");

    // The same base_url given explicitly still gets the stored key.
    let (status, _) = test_provider(&app, &owner, &tid, Some(json!({"base_url": fake.url}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.auth_headers()[2], Some(format!("Bearer {STORED_KEY}")));

    // Another base_url without a key: the stored key is NOT sent there.
    let elsewhere = FakeLlm::start();
    let (status, answer) = test_provider(&app, &owner, &tid, Some(json!({"base_url": elsewhere.url}))).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"success": true})));
    assert_eq!(elsewhere.auth_headers(), vec![None]);
    assert_eq!(elsewhere.requests()[0]["model"], "stored-model");
    assert_eq!(fake.count(), 3);

    // The stored key refused by the provider: "Invalid API key".
    fake.set_mode(Mode::Fail(401));
    assert_eq!(
        test_provider(&app, &owner, &tid, None).await,
        (StatusCode::OK, json!({"success": false, "error": "Invalid API key"}))
    );
}

#[actix_web::test]
async fn private_and_metadata_base_urls_are_refused() {
    // Private targets not allowed (SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE unset): like
    // PATCH .../config, a base_url the guard refuses is a 400, and nothing is sent.
    let app = app_with(&[]).await;
    let fake = FakeLlm::start();
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;
    for base_url in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/v1",
        "http://localhost:4000/v1",
        fake.url.as_str(),
        "ftp://example.com/v1",
        "not a url",
    ] {
        let (status, answer) = test_provider(
            &app,
            &owner,
            &tid,
            Some(json!({"provider": "openai", "model": "m", "api_key": GIVEN_KEY, "base_url": base_url})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{base_url}: {answer}");
        assert!(error_of(&answer).contains("base_url"), "{base_url}: {answer}");
        assert!(!answer.to_string().contains(GIVEN_KEY));
    }
    assert_eq!(fake.count(), 0);

    // The metadata address is refused even where private targets are allowed.
    let app = self::app().await;
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;
    let (status, answer) = test_provider(
        &app,
        &owner,
        &tid,
        Some(json!({"provider": "openai", "model": "m", "base_url": "http://169.254.169.254/v1"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // Other bad fields: 400 as in PATCH .../config.
    for body in [
        json!({"provider": ""}),
        json!({"model": "m".repeat(201)}),
        json!({"api_key": "k".repeat(501)}),
        json!({"temperature": 5}),
        json!({"apikey": GIVEN_KEY}),
    ] {
        let (status, answer) = test_provider(&app, &owner, &tid, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(!answer.to_string().contains(GIVEN_KEY), "{answer}");
    }
}

#[actix_web::test]
async fn any_member_may_test_others_may_not() {
    let app = app().await;
    let (admin, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;
    let viewer = common::new_user(&app, &admin, "carol@example.com").await;
    let stranger = common::new_user(&app, &admin, "mallory@example.com").await;
    let (status, body) = app
        .post(
            &format!("/api/tenants/{tid}/members"),
            json!({"email": "carol@example.com", "role": "Viewer"}),
            &[("Authorization", &owner)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let ok = (StatusCode::OK, json!({"success": true}));
    assert_eq!(test_provider(&app, &viewer, &tid, None).await, ok);
    assert_eq!(test_provider(&app, &admin, &tid, None).await, ok);

    let (status, body) = test_provider(&app, &stranger, &tid, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    error_of(&body);

    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, body) = test_provider(&app, &owner, unknown, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    error_of(&body);

    let (status, body) =
        app.post(&format!("/api/tenants/{tid}/provider/test"), json!({"provider": "offline"}), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    error_of(&body);
}
