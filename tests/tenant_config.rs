//! `GET`/`PATCH /api/tenants/{id}/config`: the tenant's container config, its
//! write-only provider API key (stored sealed), the role rules and the checks
//! of every field, `base_url` through the outbound guard.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "ops@example.com";
const PROVIDER_KEY: &str = "sk-provider-config-0123456789-secret";

/// Loopback targets are allowed (tests point providers at fakes on 127.0.0.1);
/// the harness limits outbound traffic to loopback anyway.
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

async fn get_config(app: &common::TestApp, auth: &str, tid: &str) -> (StatusCode, Value) {
    app.get(&format!("/api/tenants/{tid}/config"), &[("Authorization", auth)]).await
}

async fn patch_config(app: &common::TestApp, auth: &str, tid: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PATCH, &format!("/api/tenants/{tid}/config"), Some(body), &[("Authorization", auth)])
        .await
}

/// The `detail` of every `tenant.config` audit entry of `tid`, oldest first.
async fn config_audits(app: &common::TestApp, tid: &str) -> Vec<Value> {
    use diesel::prelude::*;
    use switchboard::store::schema::audit_entries;
    let tid = tid.to_string();
    let details: Vec<String> = app
        .state
        .store
        .read(move |c| {
            Ok(audit_entries::table
                .filter(audit_entries::action.eq("tenant.config"))
                .filter(audit_entries::tenant_id.eq(tid))
                .order(audit_entries::created_at.asc())
                .select(audit_entries::detail)
                .load::<String>(c)?)
        })
        .await
        .unwrap();
    details.iter().map(|d| serde_json::from_str(d).unwrap()).collect()
}

#[actix_web::test]
async fn a_new_tenant_shows_every_field_and_no_key() {
    let app = app().await;
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;
    let (status, config) = get_config(&app, &owner, &tid).await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(
        config,
        json!({
            "provider": null, "model": null, "temperature": null, "system_prompt": null,
            "tool_settings": null, "base_url": null, "api_key_set": false
        })
    );

    // A tenant created with a config shows it, and only whether a key is set.
    let (status, t) = app
        .post(
            "/api/tenants",
            json!({"name": "Configured", "provider": " openai ", "model": "gpt-4o-mini", "temperature": 0.7,
                   "tool_settings": {"shell": false}, "base_url": "http://127.0.0.1:9/v1", "api_key": PROVIDER_KEY}),
            &[("Authorization", &owner)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let (status, config) = get_config(&app, &owner, t["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        config,
        json!({
            "provider": "openai", "model": "gpt-4o-mini", "temperature": 0.7, "system_prompt": null,
            "tool_settings": {"shell": false}, "base_url": "http://127.0.0.1:9/v1", "api_key_set": true
        })
    );
}

#[actix_web::test]
async fn patch_sets_keeps_and_clears_fields() {
    let app = app().await;
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;

    let (status, patched) = patch_config(
        &app,
        &owner,
        &tid,
        json!({"provider": "anthropic", "model": "claude-sonnet-4-6", "temperature": 0.5,
               "system_prompt": "You are a concise assistant.", "tool_settings": {"shell": false, "browser": true},
               "base_url": "http://127.0.0.1:4000/v1", "api_key": PROVIDER_KEY}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let expected = json!({
        "provider": "anthropic", "model": "claude-sonnet-4-6", "temperature": 0.5,
        "system_prompt": "You are a concise assistant.", "tool_settings": {"shell": false, "browser": true},
        "base_url": "http://127.0.0.1:4000/v1", "api_key_set": true
    });
    assert_eq!(patched, expected);
    assert_eq!(get_config(&app, &owner, &tid).await, (StatusCode::OK, expected.clone()));

    // Absent fields stay; `null` clears one; `tool_settings` is replaced whole.
    let (status, patched) = patch_config(
        &app,
        &owner,
        &tid,
        json!({"model": "claude-haiku", "system_prompt": null, "tool_settings": {"shell": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let mut expected = expected;
    expected["model"] = json!("claude-haiku");
    expected["system_prompt"] = json!(null);
    expected["tool_settings"] = json!({"shell": true});
    assert_eq!(patched, expected);
    assert_eq!(get_config(&app, &owner, &tid).await, (StatusCode::OK, expected.clone()));

    // An empty patch changes nothing.
    assert_eq!(patch_config(&app, &owner, &tid, json!({})).await, (StatusCode::OK, expected.clone()));

    // Every field can be cleared; the key with null or "".
    let (status, patched) = patch_config(
        &app,
        &owner,
        &tid,
        json!({"provider": null, "model": null, "temperature": null, "tool_settings": null,
               "base_url": null, "api_key": null}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched,
        json!({
            "provider": null, "model": null, "temperature": null, "system_prompt": null,
            "tool_settings": null, "base_url": null, "api_key_set": false
        })
    );
    assert_eq!(app.state.store.tenant(&tid).await.unwrap().unwrap().provider_api_key_sealed, None);
    let (_, patched) = patch_config(&app, &owner, &tid, json!({"api_key": "sk-other"})).await;
    assert_eq!(patched["api_key_set"], true);
    let (status, patched) = patch_config(&app, &owner, &tid, json!({"api_key": ""})).await;
    assert_eq!((status, &patched["api_key_set"]), (StatusCode::OK, &json!(false)));
    assert_eq!(get_config(&app, &owner, &tid).await.1["api_key_set"], false);
}

#[actix_web::test]
async fn the_api_key_is_write_only_and_stored_sealed() {
    let app = app().await;
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;

    let (status, patched) =
        patch_config(&app, &owner, &tid, json!({"provider": "openai", "api_key": PROVIDER_KEY})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (_, got) = get_config(&app, &owner, &tid).await;
    for body in [&patched, &got] {
        assert!(body.get("api_key").is_none(), "{body}");
        assert!(!body.to_string().contains(PROVIDER_KEY), "{body}");
        assert_eq!(body["api_key_set"], true);
    }

    // Sealed at rest, under the server's key.
    let row = app.state.store.tenant(&tid).await.unwrap().unwrap();
    let sealed = row.provider_api_key_sealed.expect("a sealed key");
    assert!(!sealed.contains(PROVIDER_KEY) && !row.config.contains(PROVIDER_KEY), "{sealed} {}", row.config);
    assert_eq!(app.state.identity.secrets.open(&sealed).unwrap(), PROVIDER_KEY);

    // The audit names the changed fields, never a value.
    patch_config(&app, &owner, &tid, json!({"api_key": null, "temperature": 1.0})).await;
    let audits = config_audits(&app, &tid).await;
    assert_eq!(
        audits,
        vec![json!({"fields": ["provider", "api_key"]}), json!({"fields": ["api_key", "temperature"]})]
    );
}

#[actix_web::test]
async fn members_read_managers_write() {
    let app = app().await;
    let (admin, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme", "model": "m1"})).await;
    let viewer = common::new_user(&app, &admin, "carol@example.com").await;
    let manager = common::new_user(&app, &admin, "manny@example.com").await;
    let stranger = common::new_user(&app, &admin, "mallory@example.com").await;
    let members = format!("/api/tenants/{tid}/members");
    for (email, role) in [("carol@example.com", "Viewer"), ("manny@example.com", "Manager")] {
        let (status, body) =
            app.post(&members, json!({"email": email, "role": role}), &[("Authorization", &owner)]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // A Viewer reads but cannot write.
    let (status, config) = get_config(&app, &viewer, &tid).await;
    assert_eq!((status, &config["model"]), (StatusCode::OK, &json!("m1")));
    let (status, body) = patch_config(&app, &viewer, &tid, json!({"model": "m2"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    error_of(&body);

    // A Manager writes.
    let (status, config) = patch_config(&app, &manager, &tid, json!({"model": "m2"})).await;
    assert_eq!((status, &config["model"]), (StatusCode::OK, &json!("m2")));

    // A non-member: 403 both ways; a super-admin who is not a member: allowed.
    for (status, body) in [
        get_config(&app, &stranger, &tid).await,
        patch_config(&app, &stranger, &tid, json!({"model": "m3"})).await,
    ] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        error_of(&body);
    }
    assert_eq!(get_config(&app, &admin, &tid).await.0, StatusCode::OK);
    let (status, config) = patch_config(&app, &admin, &tid, json!({"model": "m4"})).await;
    assert_eq!((status, &config["model"]), (StatusCode::OK, &json!("m4")));

    // An unknown tenant: 404; no session: 401.
    let unknown = "00000000-0000-4000-8000-000000000000";
    for (status, body) in [
        get_config(&app, &owner, unknown).await,
        patch_config(&app, &owner, unknown, json!({"model": "m5"})).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        error_of(&body);
    }
    assert_eq!(app.get(&format!("/api/tenants/{tid}/config"), &[]).await.0, StatusCode::UNAUTHORIZED);

    // What the viewer and stranger tried never landed.
    assert_eq!(get_config(&app, &owner, &tid).await.1["model"], "m4");
}

#[actix_web::test]
async fn bad_values_are_refused_and_change_nothing() {
    let app = app().await;
    let (_, owner, tid) =
        owner_with_tenant(&app, json!({"name": "Acme", "model": "m1", "temperature": 1.0})).await;
    let (_, before) = get_config(&app, &owner, &tid).await;

    let cases = [
        (json!({"temperature": 3}), "temperature"),
        (json!({"temperature": -0.5}), "temperature"),
        (json!({"temperature": "hot"}), "temperature"),
        (json!({"provider": ""}), "provider"),
        (json!({"provider": "p".repeat(101)}), "provider"),
        (json!({"model": "m".repeat(201)}), "model"),
        (json!({"api_key": "k".repeat(501)}), "api_key"),
        (json!({"system_prompt": "s".repeat(100_001)}), "system_prompt"),
        (json!({"tool_settings": ["shell"]}), "tool_settings"),
        (json!({"base_url": "http://10.0.0.1/v1"}), "base_url"),
        (json!({"base_url": "http://169.254.169.254/latest"}), "base_url"),
        (json!({"base_url": "ftp://example.com/v1"}), "base_url"),
        (json!({"base_url": "not a url"}), "base_url"),
        (json!({"model": "ok", "api_key_set": true}), "api_key_set"),
        (json!({"model": "ok", "max_tokens": 10}), "max_tokens"),
    ];
    for (body, field) in cases {
        let (status, answer) = patch_config(&app, &owner, &tid, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert!(error_of(&answer).contains(field), "{body} -> {answer}");
    }
    // Limits are inclusive.
    let (status, answer) = patch_config(
        &app,
        &owner,
        &tid,
        json!({"temperature": 2, "provider": "p".repeat(100), "model": "m".repeat(200), "api_key": "k".repeat(500)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["temperature"], 2.0);
    patch_config(
        &app,
        &owner,
        &tid,
        json!({"temperature": 1.0, "provider": null, "model": "m1", "api_key": null}),
    )
    .await;
    assert_eq!(get_config(&app, &owner, &tid).await, (StatusCode::OK, before));
    assert_eq!(config_audits(&app, &tid).await.len(), 2, "refused patches are not audited");
}

#[actix_web::test]
async fn loopback_base_urls_need_private_targets_allowed() {
    let app = app_with(&[]).await;
    let (_, owner, tid) = owner_with_tenant(&app, json!({"name": "Acme"})).await;
    let (status, body) =
        patch_config(&app, &owner, &tid, json!({"base_url": "http://127.0.0.1:4000/v1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_of(&body).contains("base_url") && error_of(&body).contains("loopback"), "{body}");
    let (status, body) =
        patch_config(&app, &owner, &tid, json!({"base_url": "http://localhost:4000/v1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Tenant create checks it the same way.
    let (status, body) = app
        .post(
            "/api/tenants",
            json!({"name": "Other", "base_url": "http://127.0.0.1:4000/v1"}),
            &[("Authorization", &owner)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_of(&body).contains("base_url"), "{body}");
}
