//! No secret is stored in plain text: passwords, API keys, one-time codes,
//! verification tokens, JWTs, webhook secrets (callback and `/v1`), provider
//! API keys, expert tokens, channel tokens and pairing codes are created
//! through the API, then the whole database is searched for them.

mod common;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::json;

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
}

/// Everything the database holds, as text: the SQLite files' bytes (main file
/// and WAL), or every row of every table on PostgreSQL.
fn database_text(app: &common::TestApp) -> String {
    if app.db.is_postgres() {
        let mut conn = PgConnection::establish(&app.db.url).unwrap();
        conn.batch_execute("SELECT 1").unwrap();
        let tables: Vec<TextRow> =
            diesel::sql_query("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'")
                .load(&mut conn)
                .unwrap();
        let mut all = String::new();
        for table in tables {
            let rows: Vec<TextRow> = diesel::sql_query(format!("SELECT x::text AS t FROM \"{}\" x", table.t))
                .load(&mut conn)
                .unwrap();
            for r in rows {
                all.push_str(&r.t);
                all.push('\n');
            }
        }
        all
    } else {
        let path = app.db.url.strip_prefix("sqlite://").unwrap().to_string();
        let mut all = Vec::new();
        for suffix in ["", "-wal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(bytes);
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }
}

#[actix_web::test]
async fn no_secret_is_stored_in_plain_text() {
    let app = common::spawn_with_outbox(&[("SWITCHBOARD_BOOTSTRAP_ADMIN", "ops@example.com")]).await;
    let mut secrets: Vec<String> = Vec::new();

    let (_, reg) = app.post("/auth/register", json!({"name": "A", "email": "a@example.com"}), &[]).await;
    secrets.push(reg["api_key"].as_str().unwrap().into());
    secrets.push(reg["webhook_secret"].as_str().unwrap().into());
    let (_, more) =
        app.post("/auth/api-key", json!({}), &[("X-API-Key", reg["api_key"].as_str().unwrap())]).await;
    secrets.push(more["api_key"].as_str().unwrap().into());

    let password = "Tr0ub4dor&3-unique-password";
    secrets.push(password.into());
    app.post("/v1/auth/signup", json!({"email": "bee@example.com", "password": password}), &[]).await;
    let mail = app.mails_to("bee@example.com");
    let token = mail[0]["text"]
        .as_str()
        .unwrap()
        .split("token: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    secrets.push(token.clone());
    app.post("/v1/auth/verify-email", json!({"token": token}), &[]).await;
    let (_, login) =
        app.post("/v1/auth/login", json!({"email": "bee@example.com", "password": password}), &[]).await;
    let jwt = login["data"]["token"].as_str().unwrap().to_string();
    secrets.push(jwt.clone());
    let (status, key) =
        app.post("/v1/api-keys", json!({"name": "k"}), &[("Authorization", &format!("Bearer {jwt}"))]).await;
    assert_eq!(status, StatusCode::CREATED);
    secrets.push(key["data"]["key"].as_str().unwrap().into());

    // A code that was used, and one still waiting.
    app.post("/api/auth/otp/request", json!({"email": "ops@example.com"}), &[]).await;
    let used = app.last_code("ops@example.com");
    let (_, signed) =
        app.post("/api/auth/otp/verify", json!({"email": "ops@example.com", "code": used}), &[]).await;
    let admin_jwt = signed["token"].as_str().unwrap().to_string();
    secrets.push(admin_jwt.clone());
    app.post("/api/auth/otp/request", json!({"email": "ops@example.com"}), &[]).await;
    // Six digits would match inside UUIDs and timestamps, so codes are checked against their table.
    let codes = [used, app.last_code("ops@example.com")];

    let provider_key = "sk-provider-0123456789-secret";
    secrets.push(provider_key.into());
    let (status, tenant) = app
        .post(
            "/api/tenants",
            json!({"name": "T", "provider": "openai", "api_key": provider_key}),
            &[("Authorization", &format!("Bearer {admin_jwt}"))],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let tenant = tenant["id"].as_str().unwrap().to_string();
    let admin = format!("Bearer {admin_jwt}");

    // An expert's token, and the one that replaces it.
    let esc_key = reg["api_key"].as_str().unwrap();
    let (status, expert) = app
        .post(
            "/experts",
            json!({"name": "E", "email": "e@example.com", "domains": ["secrets.check"]}),
            &[("X-API-Key", esc_key)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{expert}");
    secrets.push(expert["expert_token"].as_str().unwrap().into());
    let (status, renewed) = app
        .post(
            &format!("/experts/{}/token", expert["id"].as_str().unwrap()),
            json!({}),
            &[("X-API-Key", esc_key)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    secrets.push(renewed["expert_token"].as_str().unwrap().into());

    // A channel's bot token, nested secrets, and the tenant's pairing code.
    let bot_token = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ";
    secrets.push(bot_token.into());
    let (status, ch) = app
        .post(
            &format!("/api/tenants/{tenant}/channels"),
            json!({"kind": "telegram", "config": {"bot_token": bot_token, "nested": {"client_secret": "nested-client-secret-42"}}}),
            &[("Authorization", &admin)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    secrets.push("nested-client-secret-42".into());
    let (status, pairing) =
        app.get(&format!("/api/tenants/{tenant}/pairing-code"), &[("Authorization", &admin)]).await;
    assert_eq!(status, StatusCode::OK, "{pairing}");
    secrets.push(pairing["pairing_code"].as_str().unwrap().into());

    // A /v1 webhook's signing secret.
    let whsec = "whsec_c2VjcmV0cy1hdC1yZXN0LWNoZWNrLTAxMjM0NTY3ODk=";
    secrets.push(whsec.into());
    let (status, hook) = app
        .post(
            "/v1/webhooks",
            json!({"url": "https://hooks.example.com/in", "events": ["conversation.completed"], "secret": whsec}),
            &[("Authorization", &format!("Bearer {jwt}"))],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    app.post("/api/auth/logout", json!({}), &[("Authorization", &admin)]).await;

    let stored: Vec<String> = {
        use diesel::prelude::*;
        use switchboard::store::schema::one_time_codes;
        app.state
            .store
            .read(|c| Ok(one_time_codes::table.select(one_time_codes::code_hash).load::<String>(c)?))
            .await
            .unwrap()
    };
    assert!(stored.len() >= 3, "verification token and two codes stored: {stored:?}");
    for hash in &stored {
        assert!(hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
        assert!(codes.iter().all(|code| !hash.contains(code.as_str())), "a code stored in plain text");
    }

    // Let every write land in the files before reading them.
    app.state.store.flush().await;
    let text = database_text(&app);
    assert!(text.contains("a@example.com"), "the scan reads the database (sanity check)");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "found a secret in plain text: {secret}");
        // Also the secret part without its prefix, and a long enough slice of it.
        let body = secret
            .trim_start_matches("cero_")
            .trim_start_matches("sk_live_")
            .trim_start_matches("whsec_")
            .trim_start_matches("exp_")
            .trim_start_matches("ZERO-");
        if body.len() >= 12 {
            assert!(!text.contains(&body[..12]), "found part of a secret: {secret}");
        }
    }
}
