//! `/api/tenants/{tid}/channels`: CRUD, the role rules, the merge of an
//! update, the checks of `kind` and `config`, and sensitive config fields
//! sealed at rest (never in the `channels` rows nor the audit in plain text).

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "ops@example.com";
const BOT_TOKEN: &str = "123456:AAE-channel-bot-token-do-not-leak";
const SIGNING_SECRET: &str = "slack-signing-secret-0123456789";
const NESTED_PASSWORD: &str = "nested-smtp-password-42";

async fn app() -> common::TestApp {
    common::spawn_with_outbox(&[
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
        ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m"),
    ])
    .await
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("platform error shape: {body}"))
}

/// Who acts in a test: the super-admin, the tenant's Owner, a Manager, a
/// Viewer, a signed-in user of no tenant, and the tenant.
struct Cast {
    admin: String,
    owner: String,
    manager: String,
    viewer: String,
    stranger: String,
    tid: String,
}

async fn cast(app: &common::TestApp) -> Cast {
    let admin = common::sign_in(app, ADMIN).await;
    let owner = common::new_user(app, &admin, "alice@example.com").await;
    let manager = common::new_user(app, &admin, "manny@example.com").await;
    let viewer = common::new_user(app, &admin, "carol@example.com").await;
    let stranger = common::new_user(app, &admin, "mallory@example.com").await;
    let (status, t) = app.post("/api/tenants", json!({"name": "Acme"}), &[("Authorization", &owner)]).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let tid = t["id"].as_str().unwrap().to_string();
    for (email, role) in [("manny@example.com", "Manager"), ("carol@example.com", "Viewer")] {
        let (status, body) = app
            .post(
                &format!("/api/tenants/{tid}/members"),
                json!({"email": email, "role": role}),
                &[("Authorization", &owner)],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    Cast { admin, owner, manager, viewer, stranger, tid }
}

fn channels_path(tid: &str) -> String {
    format!("/api/tenants/{tid}/channels")
}

fn channel_path(tid: &str, cid: &str) -> String {
    format!("/api/tenants/{tid}/channels/{cid}")
}

async fn list(app: &common::TestApp, auth: &str, tid: &str) -> (StatusCode, Value) {
    app.get(&channels_path(tid), &[("Authorization", auth)]).await
}

async fn create(app: &common::TestApp, auth: &str, tid: &str, body: Value) -> (StatusCode, Value) {
    app.post(&channels_path(tid), body, &[("Authorization", auth)]).await
}

async fn get(app: &common::TestApp, auth: &str, tid: &str, cid: &str) -> (StatusCode, Value) {
    app.get(&channel_path(tid, cid), &[("Authorization", auth)]).await
}

async fn patch(app: &common::TestApp, auth: &str, tid: &str, cid: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PATCH, &channel_path(tid, cid), Some(body), &[("Authorization", auth)]).await
}

async fn delete(app: &common::TestApp, auth: &str, tid: &str, cid: &str) -> (StatusCode, Value) {
    app.call(Method::DELETE, &channel_path(tid, cid), None, &[("Authorization", auth)]).await
}

/// A telegram channel with a bot token; returns the create answer.
async fn telegram(app: &common::TestApp, auth: &str, tid: &str) -> Value {
    let (status, ch) = create(
        app,
        auth,
        tid,
        json!({"kind": "telegram", "config": {"bot_token": BOT_TOKEN, "allowed_users": [100001]}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    ch
}

/// Every `channels` row as (id, tenant_id, kind, config, secrets_sealed, enabled).
async fn raw_rows(app: &common::TestApp) -> Vec<(String, String, String, String, Option<String>, bool)> {
    use diesel::prelude::*;
    use switchboard::store::schema::channels;
    app.state
        .store
        .read(|c| {
            Ok(channels::table
                .order(channels::created_at.asc())
                .select((
                    channels::id,
                    channels::tenant_id,
                    channels::kind,
                    channels::config,
                    channels::secrets_sealed,
                    channels::enabled,
                ))
                .load(c)?)
        })
        .await
        .unwrap()
}

/// Every audit entry of `tid` whose action starts with `channel.`: (action, detail), oldest first.
async fn channel_audits(app: &common::TestApp, tid: &str) -> Vec<(String, Value)> {
    use diesel::prelude::*;
    use switchboard::store::schema::audit_entries;
    let tid = tid.to_string();
    let rows: Vec<(String, String)> = app
        .state
        .store
        .read(move |c| {
            Ok(audit_entries::table
                .filter(audit_entries::tenant_id.eq(tid))
                .filter(audit_entries::action.like("channel.%"))
                .order((audit_entries::created_at.asc(), audit_entries::id.asc()))
                .select((audit_entries::action, audit_entries::detail))
                .load(c)?)
        })
        .await
        .unwrap();
    rows.into_iter().map(|(a, d)| (a, serde_json::from_str(&d).unwrap())).collect()
}

/// Every audit entry's detail, as stored.
async fn all_audit_details(app: &common::TestApp) -> Vec<String> {
    use diesel::prelude::*;
    use switchboard::store::schema::audit_entries;
    app.state.store.read(|c| Ok(audit_entries::table.select(audit_entries::detail).load(c)?)).await.unwrap()
}

fn is_rfc3339_utc(s: &Value) -> bool {
    s.as_str().is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[actix_web::test]
async fn create_list_get_update_delete() {
    let app = app().await;
    let c = cast(&app).await;
    assert_eq!(list(&app, &c.owner, &c.tid).await, (StatusCode::OK, json!([])));

    // Create: 201, the config without the token, the token named in secret_fields.
    let ch = telegram(&app, &c.owner, &c.tid).await;
    let cid = ch["id"].as_str().unwrap().to_string();
    assert!(cid.starts_with("ch_") && cid.len() > 10, "{ch}");
    assert_eq!(ch["tenant_id"], c.tid.as_str());
    assert_eq!(ch["kind"], "telegram");
    assert_eq!(ch["config"], json!({"allowed_users": [100001]}));
    assert_eq!(ch["enabled"], true);
    assert_eq!(ch["secret_fields"], json!(["bot_token"]));
    assert!(is_rfc3339_utc(&ch["created_at"]) && is_rfc3339_utc(&ch["updated_at"]), "{ch}");
    assert!(!ch.to_string().contains(BOT_TOKEN));

    // List: the same, still without the token.
    let (status, all) = list(&app, &c.owner, &c.tid).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all, json!([ch.clone()]));

    // Get: the full, decrypted config.
    let (status, got) = get(&app, &c.owner, &c.tid, &cid).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["config"], json!({"allowed_users": [100001], "bot_token": BOT_TOKEN}));
    assert_eq!(got["secret_fields"], json!(["bot_token"]));
    for field in ["id", "tenant_id", "kind", "enabled", "created_at", "updated_at"] {
        assert_eq!(got[field], ch[field], "{field}");
    }

    // A second channel, created disabled; the list is oldest first.
    let (status, slack) = create(
        &app,
        &c.owner,
        &c.tid,
        json!({"kind": "slack", "config": {"signing_secret": SIGNING_SECRET, "channel": "#support"},
               "enabled": false}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{slack}");
    assert_eq!(slack["enabled"], false);
    assert_eq!(slack["config"], json!({"channel": "#support"}));
    let (_, all) = list(&app, &c.owner, &c.tid).await;
    let ids: Vec<&str> = all.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![cid.as_str(), slack["id"].as_str().unwrap()]);

    // Update: enabled only.
    let (status, up) = patch(&app, &c.owner, &c.tid, &cid, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert_eq!(up["enabled"], false);
    assert_eq!(up["config"], json!({"allowed_users": [100001]}));
    assert_eq!(get(&app, &c.owner, &c.tid, &cid).await.1["config"]["bot_token"], BOT_TOKEN);

    // Delete: 200 {}, then 404 everywhere, and gone from the list.
    assert_eq!(delete(&app, &c.owner, &c.tid, &cid).await, (StatusCode::OK, json!({})));
    for (status, body) in [
        get(&app, &c.owner, &c.tid, &cid).await,
        patch(&app, &c.owner, &c.tid, &cid, json!({"enabled": true})).await,
        delete(&app, &c.owner, &c.tid, &cid).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        error_of(&body);
    }
    let (_, all) = list(&app, &c.owner, &c.tid).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["id"], slack["id"]);

    // Every write is audited, with no secret value.
    let audits = channel_audits(&app, &c.tid).await;
    let actions: Vec<&str> = audits.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, vec!["channel.create", "channel.create", "channel.update", "channel.delete"]);
    assert_eq!(
        audits[0].1,
        json!({"channel_id": cid, "kind": "telegram", "enabled": true, "fields": ["allowed_users", "bot_token"]})
    );
    assert_eq!(audits[2].1, json!({"channel_id": cid, "kind": "telegram", "fields": [], "enabled": false}));
    assert_eq!(audits[3].1, json!({"channel_id": cid, "kind": "telegram"}));
}

#[actix_web::test]
async fn update_merges_config_keys() {
    let app = app().await;
    let c = cast(&app).await;
    let ch = telegram(&app, &c.manager, &c.tid).await;
    let cid = ch["id"].as_str().unwrap();

    // A given key replaces its value; the others stay (the token too).
    let (status, up) = patch(
        &app,
        &c.manager,
        &c.tid,
        cid,
        json!({"config": {"allowed_users": [100001, 100002], "lang": "en"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert_eq!(up["config"], json!({"allowed_users": [100001, 100002], "lang": "en"}));
    assert_eq!(up["secret_fields"], json!(["bot_token"]));
    assert_eq!(up["enabled"], true);
    let (_, got) = get(&app, &c.manager, &c.tid, cid).await;
    assert_eq!(
        got["config"],
        json!({"allowed_users": [100001, 100002], "lang": "en", "bot_token": BOT_TOKEN})
    );

    // A new token replaces the old one, sealed again; null removes a key.
    let new_token = "999:ZZZ-rotated-token";
    let (status, up) =
        patch(&app, &c.manager, &c.tid, cid, json!({"config": {"bot_token": new_token, "lang": null}})).await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert_eq!(up["config"], json!({"allowed_users": [100001, 100002]}));
    assert!(!up.to_string().contains(new_token));
    let (_, got) = get(&app, &c.manager, &c.tid, cid).await;
    assert_eq!(got["config"], json!({"allowed_users": [100001, 100002], "bot_token": new_token}));
    let rows = raw_rows(&app).await;
    assert!(rows
        .iter()
        .all(|r| !format!("{r:?}").contains(new_token) && !format!("{r:?}").contains(BOT_TOKEN)));

    // Nested sensitive keys move their whole top-level key to the sealed part.
    let (status, up) = patch(
        &app,
        &c.manager,
        &c.tid,
        cid,
        json!({"config": {"smtp": {"host": "mail.example.com", "auth": {"Password": NESTED_PASSWORD}},
                          "webhook": {"url": "https://example.com/hook"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert_eq!(
        up["config"],
        json!({"allowed_users": [100001, 100002], "webhook": {"url": "https://example.com/hook"}})
    );
    assert_eq!(up["secret_fields"], json!(["bot_token", "smtp"]));
    let (_, got) = get(&app, &c.manager, &c.tid, cid).await;
    assert_eq!(got["config"]["smtp"]["auth"]["Password"], NESTED_PASSWORD);

    // Removing every secret leaves none sealed.
    let (status, up) =
        patch(&app, &c.manager, &c.tid, cid, json!({"config": {"bot_token": null, "smtp": null}})).await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert_eq!(up["secret_fields"], json!([]));
    let rows = raw_rows(&app).await;
    assert_eq!(rows[0].4, None, "no secrets left: secrets_sealed is null");

    // An empty patch changes nothing (and is not audited); so does {"config": {}}.
    let (_, before) = get(&app, &c.manager, &c.tid, cid).await;
    let audits = channel_audits(&app, &c.tid).await.len();
    let (status, same) = patch(&app, &c.manager, &c.tid, cid, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["config"], before["config"]);
    assert_eq!(channel_audits(&app, &c.tid).await.len(), audits);
    let (status, same) = patch(&app, &c.manager, &c.tid, cid, json!({"config": {}})).await;
    assert_eq!((status, &same["config"]), (StatusCode::OK, &before["config"]));

    // The audit of an update names the keys, never the values.
    let audits = channel_audits(&app, &c.tid).await;
    assert_eq!(audits[2].1, json!({"channel_id": cid, "kind": "telegram", "fields": ["bot_token", "lang"]}));
    for (_, detail) in &audits {
        let text = detail.to_string();
        assert!(!text.contains(BOT_TOKEN) && !text.contains(new_token) && !text.contains(NESTED_PASSWORD));
    }
}

#[actix_web::test]
async fn secrets_are_never_stored_in_plain_text() {
    let app = app().await;
    let c = cast(&app).await;
    telegram(&app, &c.owner, &c.tid).await;
    let (status, _) = create(
        &app,
        &c.owner,
        &c.tid,
        json!({"kind": "slack", "config": {"Signing_Secret": SIGNING_SECRET, "channel": "#support",
                                           "smtp": {"auth": {"password": NESTED_PASSWORD}},
                                           "apiKey": "sk-channel-api-key-77", "password": "hunter2-password"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let rows = raw_rows(&app).await;
    assert_eq!(rows.len(), 2);
    let secrets = [BOT_TOKEN, SIGNING_SECRET, NESTED_PASSWORD, "sk-channel-api-key-77", "hunter2-password"];
    for row in &rows {
        let text = format!("{row:?}");
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in plain text in {text}");
        }
        // What is stored opens, under the server's key, to exactly the sensitive fields.
        let sealed = row.4.as_deref().expect("sealed secrets");
        let opened: Value = serde_json::from_str(&app.state.identity.secrets.open(sealed).unwrap()).unwrap();
        if row.2 == "telegram" {
            assert_eq!(opened, json!({"bot_token": BOT_TOKEN}));
            assert_eq!(serde_json::from_str::<Value>(&row.3).unwrap(), json!({"allowed_users": [100001]}));
        } else {
            assert_eq!(
                opened,
                json!({"Signing_Secret": SIGNING_SECRET, "smtp": {"auth": {"password": NESTED_PASSWORD}},
                       "apiKey": "sk-channel-api-key-77", "password": "hunter2-password"})
            );
            assert_eq!(serde_json::from_str::<Value>(&row.3).unwrap(), json!({"channel": "#support"}));
        }
    }
    for detail in all_audit_details(&app).await {
        for secret in secrets {
            assert!(!detail.contains(secret), "{secret} in the audit: {detail}");
        }
    }
    // The list never shows them either.
    let (_, all) = list(&app, &c.viewer, &c.tid).await;
    for secret in secrets {
        assert!(!all.to_string().contains(secret), "{all}");
    }
    assert_eq!(all[1]["secret_fields"], json!(["Signing_Secret", "apiKey", "password", "smtp"]));
}

#[actix_web::test]
async fn roles() {
    let app = app().await;
    let c = cast(&app).await;
    let ch = telegram(&app, &c.owner, &c.tid).await;
    let cid = ch["id"].as_str().unwrap();
    let body = json!({"kind": "discord", "config": {}});

    // A Viewer lists (without secrets) but neither reads one, creates, updates nor deletes.
    let (status, all) = list(&app, &c.viewer, &c.tid).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all, json!([ch.clone()]));
    for (status, answer) in [
        get(&app, &c.viewer, &c.tid, cid).await,
        create(&app, &c.viewer, &c.tid, body.clone()).await,
        patch(&app, &c.viewer, &c.tid, cid, json!({"enabled": false})).await,
        delete(&app, &c.viewer, &c.tid, cid).await,
    ] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert!(error_of(&answer).contains("Manager"), "{answer}");
        assert!(!answer.to_string().contains(BOT_TOKEN));
    }

    // A Manager and an Owner do all of it.
    for who in [&c.manager, &c.owner] {
        assert_eq!(list(&app, who, &c.tid).await.0, StatusCode::OK);
        assert_eq!(get(&app, who, &c.tid, cid).await.1["config"]["bot_token"], BOT_TOKEN);
        let (status, made) = create(&app, who, &c.tid, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let made = made["id"].as_str().unwrap();
        assert_eq!(patch(&app, who, &c.tid, made, json!({"enabled": false})).await.0, StatusCode::OK);
        assert_eq!(delete(&app, who, &c.tid, made).await, (StatusCode::OK, json!({})));
    }

    // A non-member: 403 on everything.
    for (status, answer) in [
        list(&app, &c.stranger, &c.tid).await,
        get(&app, &c.stranger, &c.tid, cid).await,
        create(&app, &c.stranger, &c.tid, body.clone()).await,
        patch(&app, &c.stranger, &c.tid, cid, json!({"enabled": false})).await,
        delete(&app, &c.stranger, &c.tid, cid).await,
    ] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        error_of(&answer);
    }

    // A super-admin who is not a member: everything.
    assert_eq!(list(&app, &c.admin, &c.tid).await.0, StatusCode::OK);
    assert_eq!(get(&app, &c.admin, &c.tid, cid).await.1["config"]["bot_token"], BOT_TOKEN);
    let (status, made) = create(&app, &c.admin, &c.tid, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let made = made["id"].as_str().unwrap();
    assert_eq!(patch(&app, &c.admin, &c.tid, made, json!({"config": {"x": 1}})).await.0, StatusCode::OK);
    assert_eq!(delete(&app, &c.admin, &c.tid, made).await, (StatusCode::OK, json!({})));

    // A tenant that does not exist: 404, whoever asks.
    let unknown = "00000000-0000-4000-8000-000000000000";
    for who in [&c.owner, &c.admin] {
        for (status, answer) in [
            list(&app, who, unknown).await,
            get(&app, who, unknown, cid).await,
            create(&app, who, unknown, body.clone()).await,
            patch(&app, who, unknown, cid, json!({"enabled": false})).await,
            delete(&app, who, unknown, cid).await,
        ] {
            assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
            error_of(&answer);
        }
    }

    // No session: 401.
    for method in [Method::GET, Method::POST] {
        let (status, _) = app.call(method, &channels_path(&c.tid), Some(body.clone()), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let (status, _) = app.call(method, &channel_path(&c.tid, cid), Some(json!({})), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // Nothing the refused callers tried landed.
    let (_, all) = list(&app, &c.owner, &c.tid).await;
    assert_eq!(all, json!([ch]));
}

#[actix_web::test]
async fn another_tenants_channel_is_not_found() {
    let app = app().await;
    let c = cast(&app).await;
    let ch = telegram(&app, &c.owner, &c.tid).await;
    let cid = ch["id"].as_str().unwrap();
    // The Manager owns a tenant of their own; the channel is not in it.
    let (status, other) =
        app.post("/api/tenants", json!({"name": "Other"}), &[("Authorization", &c.manager)]).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let other = other["id"].as_str().unwrap();
    for (status, answer) in [
        get(&app, &c.manager, other, cid).await,
        patch(&app, &c.manager, other, cid, json!({"enabled": false})).await,
        delete(&app, &c.manager, other, cid).await,
        get(&app, &c.owner, &c.tid, "ch_does_not_exist").await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(error_of(&answer), "channel not found");
    }
    assert_eq!(list(&app, &c.manager, other).await, (StatusCode::OK, json!([])));
    // Untouched in its own tenant.
    let (status, got) = get(&app, &c.owner, &c.tid, cid).await;
    assert_eq!((status, &got["enabled"]), (StatusCode::OK, &json!(true)));
}

#[actix_web::test]
async fn bad_requests_are_refused_and_change_nothing() {
    let app = app().await;
    let c = cast(&app).await;
    let ch = telegram(&app, &c.owner, &c.tid).await;
    let cid = ch["id"].as_str().unwrap();

    let big = "x".repeat(64 * 1024);
    let creates = [
        (json!({"kind": "Telegram", "config": {}}), "kind"),
        (json!({"kind": "", "config": {}}), "kind"),
        (json!({"kind": "9lives", "config": {}}), "kind"),
        (json!({"kind": "tele gram", "config": {}}), "kind"),
        (json!({"kind": "a".repeat(33), "config": {}}), "kind"),
        (json!({"kind": 7, "config": {}}), "kind"),
        (json!({"config": {}}), "kind"),
        (json!({"kind": "telegram"}), "config"),
        (json!({"kind": "telegram", "config": null}), "config"),
        (json!({"kind": "telegram", "config": [1, 2]}), "config"),
        (json!({"kind": "telegram", "config": "bot_token=1"}), "config"),
        (json!({"kind": "telegram", "config": {"big": big}}), "config"),
        (json!({"kind": "telegram", "config": {}, "enabled": "yes"}), "enabled"),
        (json!({"kind": "telegram", "config": {}, "id": "ch_mine"}), "id"),
    ];
    for (body, field) in creates {
        let (status, answer) = create(&app, &c.owner, &c.tid, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert!(error_of(&answer).contains(field), "{body} -> {answer}");
    }
    // The limits are inclusive: a 32-character kind and a config of exactly 64 KiB.
    let exact = "x".repeat(64 * 1024 - r#"{"a":""}"#.len());
    let (status, made) =
        create(&app, &c.owner, &c.tid, json!({"kind": "a".repeat(32), "config": {"a": exact}})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    delete(&app, &c.owner, &c.tid, made["id"].as_str().unwrap()).await;

    let half = "y".repeat(40 * 1024);
    let patches = [
        (json!({"config": null}), "config"),
        (json!({"config": [1]}), "config"),
        (json!({"config": "x"}), "config"),
        (json!({"enabled": "no"}), "enabled"),
        (json!({"kind": "slack"}), "kind"),
        // Each half fits; merged, the config is over 64 KiB.
        (json!({"config": {"b": half.clone(), "c": half}}), "config"),
    ];
    for (body, field) in patches {
        let (status, answer) = patch(&app, &c.owner, &c.tid, cid, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert!(error_of(&answer).contains(field), "{body} -> {answer}");
    }
    // Not JSON at all.
    let res = app
        .client
        .post(app.url(&channels_path(&c.tid)))
        .header("Authorization", &c.owner)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Nothing changed, and only the inclusive-limit channel was audited.
    let (_, all) = list(&app, &c.owner, &c.tid).await;
    assert_eq!(all, json!([ch]));
    let actions: Vec<String> = channel_audits(&app, &c.tid).await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, vec!["channel.create", "channel.create", "channel.delete"]);
}

#[actix_web::test]
async fn concurrent_updates_are_all_kept() {
    let app = app().await;
    let c = cast(&app).await;
    let ch = telegram(&app, &c.owner, &c.tid).await;
    let cid = ch["id"].as_str().unwrap().to_string();
    let n = 8;
    let answers = futures_util::future::join_all((0..n).map(|i| {
        let (app, owner, tid, cid) = (&app, &c.owner, &c.tid, &cid);
        async move { patch(app, owner, tid, cid, json!({"config": {format!("k{i}"): i}})).await }
    }))
    .await;
    // Each update re-reads and retries when another got in between: all succeed, none is lost.
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
    }
    let (_, got) = get(&app, &c.owner, &c.tid, &cid).await;
    for i in 0..n {
        assert_eq!(got["config"][format!("k{i}")], i, "update {i} was lost: {got}");
    }
    assert_eq!(got["config"]["bot_token"], BOT_TOKEN);
}

#[actix_web::test]
async fn deleting_the_tenant_deletes_its_channels() {
    let app = app().await;
    let c = cast(&app).await;
    telegram(&app, &c.owner, &c.tid).await;
    let (status, body) = app
        .call(Method::DELETE, &format!("/api/tenants/{}", c.tid), None, &[("Authorization", &c.owner)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(raw_rows(&app).await.is_empty());
}
