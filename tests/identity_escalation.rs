//! Identity on the Escalation API: register, more keys, usage, the operator key.

mod common;

use reqwest::StatusCode;
use serde_json::json;

fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[actix_web::test]
async fn register_issues_a_key_and_a_webhook_secret_once_per_email() {
    let app = common::spawn_app().await;
    let (status, body) = app
        .post(
            "/auth/register",
            json!({"name": "My Agent", "email": "Dev@Example.com", "company": "Acme"}),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(uuid::Uuid::parse_str(body["tenant_id"].as_str().unwrap()).is_ok(), "{body}");
    let key = body["api_key"].as_str().unwrap();
    assert!(key.starts_with("cero_") && key.len() == 53 && is_hex(&key[5..]), "{key}");
    assert_eq!(body["tier"], "free");
    let secret = body["webhook_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > 20, "{secret}");
    assert!(body["next_steps"].is_object());

    // The same email again (any case) is 409, in the surface's format.
    let (status, body) =
        app.post("/auth/register", json!({"name": "Again", "email": "dev@example.COM"}), &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, json!({"detail": "email already registered"}));
}

#[actix_web::test]
async fn register_refuses_bad_input_and_changes_nothing() {
    let app = common::spawn_app().await;
    for (body, needle) in [
        (json!({"name": "A", "email": "not-an-email"}), "not an email"),
        (json!({"name": "A", "email": ""}), "email is required"),
        (json!({"name": "  ", "email": "a@example.com"}), "name is required"),
        (json!({"email": "a@example.com"}), "name"),
        (json!({"name": "A"}), "email"),
    ] {
        let (status, answer) = app.post("/auth/register", body.clone(), &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert!(answer["detail"].as_str().unwrap().contains(needle), "{answer}");
    }
    // Nothing was created: the email is still free.
    let (status, _) = app.post("/auth/register", json!({"name": "A", "email": "a@example.com"}), &[]).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn api_keys_authenticate_and_more_can_be_issued() {
    let app = common::spawn_app().await;
    let (_, reg) = app.post("/auth/register", json!({"name": "A", "email": "a@example.com"}), &[]).await;
    let key = reg["api_key"].as_str().unwrap();

    let (status, body) = app.post("/auth/api-key", json!({}), &[("X-API-Key", key)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["api_key"].as_str().unwrap();
    assert!(second.starts_with("cero_") && second != key);
    assert_eq!(body["tenant_id"], reg["tenant_id"]);
    assert_eq!(body["tier"], "free");

    // Both keys work.
    for k in [key, second] {
        let (status, usage) = app.get("/auth/usage", &[("X-API-Key", k)]).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert_eq!(usage["tenant_id"], reg["tenant_id"]);
    }
}

#[actix_web::test]
async fn missing_unknown_and_foreign_keys_are_401_with_one_message() {
    let app = common::spawn_app().await;
    let (status, body) = app.get("/auth/usage", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("Missing API key"), "{body}");

    let unknown = format!("cero_{}", "ab".repeat(24));
    let agent_key = format!("sk_live_{}", "A".repeat(40));
    for k in [unknown.as_str(), agent_key.as_str(), "cero_short", "garbage"] {
        let (status, body) = app.get("/auth/usage", &[("X-API-Key", k)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{k}");
        assert_eq!(body, json!({"detail": "Invalid API key"}), "{k}");
    }
}

#[actix_web::test]
async fn usage_has_the_documented_shape_and_tier_limits() {
    let app = common::spawn_app().await;
    let (_, reg) = app.post("/auth/register", json!({"name": "A", "email": "a@example.com"}), &[]).await;
    let (status, usage) = app.get("/auth/usage", &[("X-API-Key", reg["api_key"].as_str().unwrap())]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        usage,
        json!({
            "tenant_id": reg["tenant_id"],
            "tier": "free",
            "escalations_today": 0,
            "escalations_this_month": 0,
            "avg_resolution_time": null,
            "limits": {"escalations_per_day": 10, "escalations_per_month": 100},
            "credits": 100,
        })
    );
}

#[actix_web::test]
async fn the_operator_tenant_exists_and_its_key_comes_from_the_cli() {
    let app = common::spawn_app().await;
    let operator =
        app.state.store.operator_tenant().await.unwrap().expect("operator tenant created at start");
    assert_eq!(operator.plan, "enterprise");

    let out = std::process::Command::new(common::server_bin())
        .args(["admin", "operator-key"])
        .env("SWITCHBOARD_DATABASE_URL", &app.db.url)
        .env("SWITCHBOARD_DATA_DIR", app.dir.path().join("data"))
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("cero_"), "{key}");

    let (status, usage) = app.get("/auth/usage", &[("X-API-Key", &key)]).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["tenant_id"], operator.id.as_str());
    assert_eq!(usage["tier"], "enterprise");
    assert_eq!(usage["limits"], json!({"escalations_per_day": null, "escalations_per_month": null}));
    assert_eq!(usage["credits"], json!(null));
}
