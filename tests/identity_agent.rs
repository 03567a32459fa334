//! Identity on the Agent API: sign-up with a mailed token, verification,
//! login, and API keys with masking, revocation and their options.

mod common;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Signs up, verifies through the mailed token, logs in; returns (token, user).
async fn verified_login(app: &common::TestApp, email: &str) -> (String, Value) {
    let (status, body) = app
        .post("/v1/auth/signup", json!({"email": email, "password": "correct horse", "name": "Bee"}), &[])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = verification_token(app, email);
    let (status, body) = app.post("/v1/auth/verify-email", json!({"token": token}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        app.post("/v1/auth/login", json!({"email": email, "password": "correct horse"}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["data"]["token"].as_str().unwrap().to_string(), body["data"]["user"].clone())
}

fn verification_token(app: &common::TestApp, email: &str) -> String {
    let mails = app.mails_to(email);
    let text = mails.last().expect("verification mail")["text"].as_str().unwrap().to_string();
    let after = text.split("token: ").nth(1).expect("token in the mail");
    after.split_whitespace().next().unwrap().to_string()
}

fn envelope_error(body: &Value, code: &str) -> String {
    assert_eq!(body["success"], json!(false), "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["requestId"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn signup_mails_a_token_and_login_waits_for_verification() {
    let app = common::spawn_with_outbox(&[]).await;
    let (status, body) = app
        .post(
            "/v1/auth/signup",
            json!({"email": "bee@example.com", "password": "correct horse", "name": "Bee"}),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["success"], true);
    assert!(body["data"]["userId"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(body["data"]["message"], "Verification email sent");
    assert_eq!(app.mails_to("bee@example.com").len(), 1);

    let (status, body) = app
        .post("/v1/auth/login", json!({"email": "bee@example.com", "password": "correct horse"}), &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(envelope_error(&body, "FORBIDDEN"), "Email not verified");

    let token = verification_token(&app, "bee@example.com");
    let (status, body) = app.post("/v1/auth/verify-email", json!({"token": token}), &[]).await;
    assert_eq!((status, &body["data"]), (StatusCode::OK, &json!({"verified": true})));
    // A token works once.
    let (status, body) = app.post("/v1/auth/verify-email", json!({"token": token}), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    envelope_error(&body, "BAD_REQUEST");

    let (status, body) = app
        .post("/v1/auth/login", json!({"email": "BEE@example.com", "password": "correct horse"}), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jwt = body["data"]["token"].as_str().unwrap();
    assert_eq!(jwt.split('.').count(), 3);
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert!(payload["jti"].as_str().is_some_and(|j| !j.is_empty()), "{payload}");
    let user = &body["data"]["user"];
    assert_eq!(user["email"], "bee@example.com");
    // The new user owns a new tenant named after them, and login acts for it.
    let tenant_id = user["tenantId"].as_str().unwrap();
    let tenant = app.state.store.tenant(tenant_id).await.unwrap().unwrap();
    assert_eq!((tenant.name.as_str(), tenant.status.as_str()), ("Bee", "running"));
}

#[actix_web::test]
async fn signup_and_login_refuse_bad_input() {
    let app = common::spawn_with_outbox(&[]).await;
    for (body, status) in [
        (json!({"email": "bee@example.com", "password": "short"}), StatusCode::BAD_REQUEST),
        (json!({"email": "nope", "password": "long enough"}), StatusCode::BAD_REQUEST),
        (json!({"password": "long enough"}), StatusCode::BAD_REQUEST),
    ] {
        let (got, answer) = app.post("/v1/auth/signup", body.clone(), &[]).await;
        assert_eq!(got, status, "{body}: {answer}");
        envelope_error(&answer, "BAD_REQUEST");
    }
    assert!(app.mails_to("bee@example.com").is_empty(), "nothing was created or sent");

    verified_login(&app, "bee@example.com").await;
    let (status, body) = app
        .post("/v1/auth/signup", json!({"email": "bee@example.com", "password": "another one"}), &[])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(envelope_error(&body, "CONFLICT"), "Email already registered");

    for creds in [
        json!({"email": "bee@example.com", "password": "wrong password"}),
        json!({"email": "nobody@example.com", "password": "whatever1"}),
    ] {
        let (status, body) = app.post("/v1/auth/login", creds, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(envelope_error(&body, "UNAUTHORIZED"), "Invalid credentials");
    }
    let (status, body) = app.post("/v1/auth/verify-email", json!({"token": "made-up"}), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    envelope_error(&body, "BAD_REQUEST");
}

#[actix_web::test]
async fn api_keys_are_shown_once_listed_masked_and_revoked() {
    let app = common::spawn_with_outbox(&[]).await;
    let (jwt, _) = verified_login(&app, "bee@example.com").await;
    let auth = format!("Bearer {jwt}");
    let h = [("Authorization", auth.as_str())];

    let (status, body) = app
        .post(
            "/v1/api-keys",
            json!({"name": "Widget", "identity_mode": "required", "allowed_origins": ["https://myapp.com"]}),
            &h,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created = &body["data"];
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk_live_"), "{key}");
    assert!(created["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!((created["name"].as_str(), created["status"].as_str()), (Some("Widget"), Some("active")));
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));

    let (status, body) = app.get("/v1/api-keys", &h).await;
    assert_eq!(status, StatusCode::OK);
    let listed = &body["data"][0];
    let masked = listed["key"].as_str().unwrap();
    assert_eq!(masked, format!("sk_{}••••••••••••", &key[8..16]));
    assert!(!body.to_string().contains(&key), "the full key is never listed");
    assert_eq!(listed["identityMode"], "required");
    assert_eq!(listed["allowedOrigins"], json!(["https://myapp.com"]));
    assert_eq!(listed["status"], "active");

    let id = created["id"].as_str().unwrap();
    let (status, body) = app.call(reqwest::Method::DELETE, &format!("/v1/api-keys/{id}"), None, &h).await;
    assert_eq!((status, &body["data"]), (StatusCode::OK, &json!({"deleted": true})));
    let (_, body) = app.get("/v1/api-keys", &h).await;
    assert_eq!(body["data"][0]["status"], "revoked");
    let (status, body) = app.call(reqwest::Method::DELETE, "/v1/api-keys/key_nope", None, &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    envelope_error(&body, "NOT_FOUND");
}

#[actix_web::test]
async fn key_options_are_checked() {
    let app = common::spawn_with_outbox(&[]).await;
    let (jwt, _) = verified_login(&app, "bee@example.com").await;
    let auth = format!("Bearer {jwt}");
    let h = [("Authorization", auth.as_str())];
    for body in [
        json!({"name": "x", "identity_mode": "sometimes"}),
        json!({"name": "x", "allowed_origins": ["myapp.com"]}),
        json!({"name": "x", "allowed_origins": ["https://myapp.com/path"]}),
        json!({"name": ""}),
        json!({"identity_mode": "required"}),
    ] {
        let (status, answer) = app.post("/v1/api-keys", body.clone(), &h).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        envelope_error(&answer, "BAD_REQUEST");
    }
    let (_, body) = app.get("/v1/api-keys", &h).await;
    assert_eq!(body["data"], json!([]), "nothing was created");
}

#[actix_web::test]
async fn another_tenants_key_cannot_be_revoked() {
    let app = common::spawn_with_outbox(&[]).await;
    let (jwt_a, _) = verified_login(&app, "a@example.com").await;
    let (jwt_b, _) = verified_login(&app, "b@example.com").await;
    let (auth_a, auth_b) = (format!("Bearer {jwt_a}"), format!("Bearer {jwt_b}"));
    let (_, body) = app.post("/v1/api-keys", json!({"name": "A's"}), &[("Authorization", &auth_a)]).await;
    let id = body["data"]["id"].as_str().unwrap().to_string();

    let (status, body) = app
        .call(reqwest::Method::DELETE, &format!("/v1/api-keys/{id}"), None, &[("Authorization", &auth_b)])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    envelope_error(&body, "NOT_FOUND");
    let (_, body) = app.get("/v1/api-keys", &[("Authorization", &auth_b)]).await;
    assert_eq!(body["data"], json!([]), "B sees none of A's keys");
    let (_, body) = app.get("/v1/api-keys", &[("Authorization", &auth_a)]).await;
    assert_eq!(body["data"][0]["status"], "active", "A's key untouched");

    // Acting for a tenant one is not a member of is refused.
    let a_tenant = app
        .state
        .store
        .tenants_of_user(&app.state.store.user_by_email("a@example.com").await.unwrap().unwrap().id)
        .await
        .unwrap()[0]
        .1
        .id
        .clone();
    let (status, body) =
        app.get("/v1/api-keys", &[("Authorization", &auth_b), ("X-Tenant-Id", &a_tenant)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    envelope_error(&body, "FORBIDDEN");
}

#[actix_web::test]
async fn key_management_needs_a_jwt() {
    let app = common::spawn_with_outbox(&[]).await;
    let (status, body) = app.get("/v1/api-keys", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    envelope_error(&body, "UNAUTHORIZED");
    let (status, body) =
        app.post("/v1/api-keys", json!({"name": "x"}), &[("Authorization", "Bearer not.a.jwt")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    envelope_error(&body, "UNAUTHORIZED");
}

/// A route that exists only in this test binary: it authenticates with an
/// Agent API key exactly as Cerebral invocation will.
fn probe_routes(cfg: &mut actix_web::web::ServiceConfig) {
    async fn whoami(caller: switchboard::http::auth::AgentKey) -> actix_web::HttpResponse {
        actix_web::HttpResponse::Ok()
            .json(json!({"success": true, "data": {"tenant": caller.tenant.id, "key": caller.key.id}}))
    }
    cfg.service(actix_web::web::resource("/v1/__probe/whoami").route(actix_web::web::get().to(whoami)));
}

#[actix_web::test]
async fn agent_keys_authenticate_until_revoked_and_respect_allowed_origins() {
    let app =
        common::spawn_app_full(&[("SWITCHBOARD_MAIL", common::OUTBOX_PLACEHOLDER)], true, probe_routes).await;
    let (jwt, user) = verified_login(&app, "bee@example.com").await;
    let auth = format!("Bearer {jwt}");
    let h = [("Authorization", auth.as_str())];
    let (_, server) = app.post("/v1/api-keys", json!({"name": "server"}), &h).await;
    let (_, browser) =
        app.post("/v1/api-keys", json!({"name": "web", "allowed_origins": ["https://myapp.com"]}), &h).await;
    let server_key = server["data"]["key"].as_str().unwrap();
    let browser_key = browser["data"]["key"].as_str().unwrap();

    let (status, body) = app.get("/v1/__probe/whoami", &[("X-API-Key", server_key)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["tenant"], user["tenantId"]);

    // Empty allowed_origins: server-to-server only, so any Origin is 403.
    let (status, body) =
        app.get("/v1/__probe/whoami", &[("X-API-Key", server_key), ("Origin", "https://myapp.com")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    envelope_error(&body, "FORBIDDEN");
    // A listed origin passes; another is 403.
    assert_eq!(
        app.get("/v1/__probe/whoami", &[("X-API-Key", browser_key), ("Origin", "https://myapp.com")]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/v1/__probe/whoami", &[("X-API-Key", browser_key), ("Origin", "https://evil.example")])
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // An Escalation key, an unknown key and no key are all 401.
    let (_, reg) = app.post("/auth/register", json!({"name": "E", "email": "e@example.com"}), &[]).await;
    let unknown = format!("sk_live_{}", "Z".repeat(40));
    for k in [reg["api_key"].as_str().unwrap(), unknown.as_str()] {
        let (status, body) = app.get("/v1/__probe/whoami", &[("X-API-Key", k)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{k}");
        envelope_error(&body, "UNAUTHORIZED");
    }
    assert_eq!(app.get("/v1/__probe/whoami", &[]).await.0, StatusCode::UNAUTHORIZED);

    // Revocation takes effect on the next request, with the same answer as an unknown key.
    let id = server["data"]["id"].as_str().unwrap();
    app.call(reqwest::Method::DELETE, &format!("/v1/api-keys/{id}"), None, &h).await;
    let (status, revoked) = app.get("/v1/__probe/whoami", &[("X-API-Key", server_key)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, unknown_answer) = app.get("/v1/__probe/whoami", &[("X-API-Key", unknown.as_str())]).await;
    assert_eq!(revoked["error"]["message"], unknown_answer["error"]["message"]);
}
