//! Identity on the Platform API: one-time codes, sessions and their attacks,
//! users, tenants, members and the role rules.

mod common;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "ops@example.com";

/// Sign-in limits are raised here so that tests of other rules never meet them;
/// `sign_in_requests_are_rate_limited_per_email` tests the limits themselves.
async fn app() -> common::TestApp {
    common::spawn_with_outbox(&[
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
        ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m"),
    ])
    .await
}

/// Signs `email` in by one-time code; returns the JWT and the user.
async fn sign_in(app: &common::TestApp, email: &str) -> (String, Value) {
    let (status, body) = app.post("/api/auth/otp/request", json!({"email": email}), &[]).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let code = app.last_code(email);
    let (status, body) = app.post("/api/auth/otp/verify", json!({"email": email, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["token"].as_str().unwrap().to_string(), body["user"].clone())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("platform error shape: {body}"))
}

#[actix_web::test]
async fn one_time_code_sign_in_me_and_logout() {
    let app = app().await;
    let (token, user) = sign_in(&app, ADMIN).await;
    assert!(user["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(user["email"], ADMIN);
    assert_eq!(user["is_super_admin"], true);
    let operator = app.state.store.operator_tenant().await.unwrap().unwrap();
    assert_eq!(user["tenant_roles"], json!([{"tenant_id": operator.id, "role": "Owner"}]));

    let auth = bearer(&token);
    let (status, me) = app.get("/api/auth/me", &[("Authorization", &auth)]).await;
    assert_eq!((status, &me), (StatusCode::OK, &user));

    let (status, body) = app.post("/api/auth/logout", json!({}), &[("Authorization", &auth)]).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, body) = app.get("/api/auth/me", &[("Authorization", &auth)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The same answer as any token that is not good: nothing tells it was once valid.
    assert_eq!(error_of(&body), "invalid token", "{body}");
}

#[actix_web::test]
async fn codes_work_once_and_burn_after_five_wrong_tries() {
    let app = app().await;
    // Unknown email: 200 {} and nothing sent.
    let (status, body) =
        app.post("/api/auth/otp/request", json!({"email": "stranger@example.com"}), &[]).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert!(app.mails_to("stranger@example.com").is_empty());

    app.post("/api/auth/otp/request", json!({"email": ADMIN}), &[]).await;
    let code = app.last_code(ADMIN);
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, body) =
            app.post("/api/auth/otp/verify", json!({"email": ADMIN, "code": wrong}), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&body), "invalid or expired code");
    }
    let (status, _) = app.post("/api/auth/otp/verify", json!({"email": ADMIN, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "five wrong codes burned it");

    // A fresh code works, once.
    app.post("/api/auth/otp/request", json!({"email": ADMIN}), &[]).await;
    let code = app.last_code(ADMIN);
    let (status, _) = app.post("/api/auth/otp/verify", json!({"email": ADMIN, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.post("/api/auth/otp/verify", json!({"email": ADMIN, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code works once");

    let (status, body) = app.post("/api/auth/otp/request", json!({"email": "no at sign"}), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error_of(&body);
}

#[actix_web::test]
async fn sign_in_requests_are_rate_limited_per_email() {
    let app = common::spawn_with_outbox(&[
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
        ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "3/1h"),
    ])
    .await;
    for _ in 0..3 {
        let (status, _) = app.post("/api/auth/otp/request", json!({"email": ADMIN}), &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let res = app
        .client
        .post(app.url("/api/auth/otp/request"))
        .json(&json!({"email": ADMIN}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    // Another email still has its own allowance.
    let (status, _) = app.post("/api/auth/otp/request", json!({"email": "other@example.com"}), &[]).await;
    assert_eq!(status, StatusCode::OK);
    // The login endpoint shares the limit.
    let (status, body) =
        app.post("/v1/auth/login", json!({"email": ADMIN, "password": "whatever1"}), &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
}

fn forge(header: &Value, payload: &Value, signature: &str) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{}", b64(header), b64(payload), signature)
}

#[actix_web::test]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let app =
        common::spawn_with_outbox(&[("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN), ("SWITCHBOARD_JWT_TTL", "1s")])
            .await;
    let (token, user) = sign_in(&app, ADMIN).await;
    let parts: Vec<&str> = token.split('.').collect();
    let payload: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap())
            .unwrap();

    let far = chrono::Utc::now().timestamp() + 3600;
    let mut lasting = payload.clone();
    lasting["exp"] = json!(far);
    let alg_none = forge(&json!({"alg": "none", "typ": "JWT"}), &lasting, "");
    let tampered =
        format!("{}.{}.{}", parts[0], forge(&json!({}), &lasting, "").split('.').nth(1).unwrap(), parts[2]);
    let hs512 = forge(&json!({"alg": "HS512", "typ": "JWT"}), &lasting, parts[2]);

    // Signed with another server's master key.
    let other = common::spawn_with_outbox(&[("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN)]).await;
    let (foreign, _) = sign_in(&other, ADMIN).await;

    for bad in [alg_none.as_str(), tampered.as_str(), hs512.as_str(), foreign.as_str(), "a.b.c", "garbage"] {
        let auth = bearer(bad);
        let (status, body) = app.get("/api/auth/me", &[("Authorization", &auth)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        error_of(&body);
        let (status, body) = app.get("/v1/api-keys", &[("Authorization", &auth)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    }

    // The genuine token works until it expires (TTL 1s), then it does not.
    let auth = bearer(&token);
    let expired = common::eventually(std::time::Duration::from_secs(5), || async {
        app.get("/api/auth/me", &[("Authorization", &auth)]).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(expired, "token of {} expired", user["email"]);
    let (_, body) = app.get("/api/auth/me", &[("Authorization", &auth)]).await;
    assert!(error_of(&body).contains("expired"), "{body}");
}

#[actix_web::test]
async fn users_are_managed_by_super_admins_only() {
    let app = app().await;
    let (admin, _) = sign_in(&app, ADMIN).await;
    let admin = bearer(&admin);
    let h = [("Authorization", admin.as_str())];

    let (status, created) = app.post("/api/users", json!({"email": "New@Example.com"}), &h).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["email"].as_str(), created["is_super_admin"].as_bool()),
        (Some("new@example.com"), Some(false))
    );
    let (status, body) = app.post("/api/users", json!({"email": "new@example.com"}), &h).await;
    assert_eq!(status, StatusCode::CONFLICT);
    error_of(&body);
    let (status, _) = app.post("/api/users", json!({"email": "bad"}), &h).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let id = created["id"].as_str().unwrap();
    let (status, updated) = app
        .call(
            Method::PATCH,
            &format!("/api/users/{id}"),
            Some(json!({"is_super_admin": true, "email": "renamed@example.com"})),
            &h,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated, json!({"id": id, "email": "renamed@example.com", "is_super_admin": true}));

    let (status, list) = app.get("/api/users", &h).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);

    // A plain user may do none of it.
    let (user, _) = sign_in(&app, "renamed@example.com").await;
    app.call(Method::PATCH, &format!("/api/users/{id}"), Some(json!({"is_super_admin": false})), &h).await;
    let user = bearer(&user);
    let uh = [("Authorization", user.as_str())];
    assert_eq!(app.get("/api/users", &uh).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.post("/api/users", json!({"email": "x@example.com"}), &uh).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/users/{id}"), None, &uh).await.0,
        StatusCode::FORBIDDEN
    );

    let (status, body) = app.call(Method::DELETE, &format!("/api/users/{id}"), None, &h).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/users/{id}"), None, &h).await.0,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn tenants_follow_the_plan_and_membership_rules() {
    let app = app().await;
    let (admin, _) = sign_in(&app, ADMIN).await;
    let admin = bearer(&admin);
    let ah = [("Authorization", admin.as_str())];
    app.post("/api/users", json!({"email": "alice@example.com"}), &ah).await;
    app.post("/api/users", json!({"email": "bob@example.com"}), &ah).await;
    let (alice, _) = sign_in(&app, "alice@example.com").await;
    let (bob, _) = sign_in(&app, "bob@example.com").await;
    let (alice, bob) = (bearer(&alice), bearer(&bob));
    let (al, bh) = ([("Authorization", alice.as_str())], [("Authorization", bob.as_str())]);

    let (status, t) =
        app.post("/api/tenants", json!({"name": "Acme", "plan": "starter", "provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-provider-secret"}), &al).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(
        (t["name"].as_str(), t["plan"].as_str(), t["status"].as_str()),
        (Some("Acme"), Some("starter"), Some("draft"))
    );
    assert_eq!((t["role"].as_str(), &t["port"]), (Some("Owner"), &json!(null)));
    assert!(t.get("api_key").is_none());
    let tid = t["id"].as_str().unwrap().to_string();

    // pro and enterprise need a super-admin.
    let (status, body) = app.post("/api/tenants", json!({"name": "Big", "plan": "pro"}), &al).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    error_of(&body);
    assert_eq!(
        app.post("/api/tenants", json!({"name": "Big", "plan": "platinum"}), &al).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.post("/api/tenants", json!({"name": "Big", "plan": "pro"}), &ah).await.0,
        StatusCode::CREATED
    );

    // Lists: members see theirs, super-admins see all.
    let (_, list) = app.get("/api/tenants", &al).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = app.get("/api/tenants", &bh).await;
    assert_eq!(list, json!([]));
    let (_, list) = app.get("/api/tenants", &ah).await;
    assert!(list.as_array().unwrap().iter().any(|x| x["id"] == tid.as_str()));

    // Another user's tenant is 403; one that does not exist is 404.
    let (status, body) = app.get(&format!("/api/tenants/{tid}"), &bh).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    error_of(&body);
    assert_eq!(
        app.get("/api/tenants/00000000-0000-4000-8000-000000000000", &bh).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&format!("/api/tenants/{tid}"), &al).await.0, StatusCode::OK);

    // Owner renames; only a super-admin changes the plan.
    let (status, t) = app
        .call(Method::PATCH, &format!("/api/tenants/{tid}"), Some(json!({"name": "Acme Corp"})), &al)
        .await;
    assert_eq!((status, t["name"].as_str()), (StatusCode::OK, Some("Acme Corp")));
    assert_eq!(
        app.call(Method::PATCH, &format!("/api/tenants/{tid}"), Some(json!({"plan": "enterprise"})), &al)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, t) = app
        .call(Method::PATCH, &format!("/api/tenants/{tid}"), Some(json!({"plan": "enterprise"})), &ah)
        .await;
    assert_eq!((status, t["plan"].as_str()), (StatusCode::OK, Some("enterprise")));
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/tenants/{tid}"), None, &bh).await.0,
        StatusCode::FORBIDDEN
    );

    // The operator tenant stays.
    let operator = app.state.store.operator_tenant().await.unwrap().unwrap();
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/tenants/{}", operator.id), None, &ah).await.0,
        StatusCode::CONFLICT
    );

    let (status, body) = app.call(Method::DELETE, &format!("/api/tenants/{tid}"), None, &al).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(app.get(&format!("/api/tenants/{tid}"), &al).await.0, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn members_and_the_last_owner_rule() {
    let app = app().await;
    let (admin, _) = sign_in(&app, ADMIN).await;
    let admin = bearer(&admin);
    app.post("/api/users", json!({"email": "alice@example.com"}), &[("Authorization", &admin)]).await;
    let (alice, _) = sign_in(&app, "alice@example.com").await;
    let alice = bearer(&alice);
    let al = [("Authorization", alice.as_str())];
    let (_, t) = app.post("/api/tenants", json!({"name": "Acme"}), &al).await;
    let tid = t["id"].as_str().unwrap().to_string();
    let members = format!("/api/tenants/{tid}/members");

    // Adding creates the user when the email is new.
    let (status, carol) =
        app.post(&members, json!({"email": "carol@example.com", "role": "Viewer"}), &al).await;
    assert_eq!(status, StatusCode::CREATED, "{carol}");
    assert!(carol["id"].as_str().unwrap().starts_with("mem_"));
    assert_eq!(
        (carol["email"].as_str(), carol["role"].as_str()),
        (Some("carol@example.com"), Some("Viewer"))
    );
    assert_eq!(
        app.post(&members, json!({"email": "carol@example.com", "role": "Manager"}), &al).await.0,
        StatusCode::CONFLICT
    );
    let (status, body) = app.post(&members, json!({"email": "dave@example.com", "role": "Boss"}), &al).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("unknown role"));

    let (status, list) = app.get(&members, &al).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);

    // A Viewer reads but does not write, on /api and on /v1.
    let (carol_jwt, _) = sign_in(&app, "carol@example.com").await;
    let carol_auth = bearer(&carol_jwt);
    let ch = [("Authorization", carol_auth.as_str())];
    assert_eq!(app.get(&members, &ch).await.0, StatusCode::OK);
    assert_eq!(
        app.post(&members, json!({"email": "eve@example.com", "role": "Owner"}), &ch).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = app
        .post(
            "/v1/api-keys",
            json!({"name": "x"}),
            &[("Authorization", carol_auth.as_str()), ("X-Tenant-Id", tid.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "FORBIDDEN");

    // Promote, then the last-Owner rule.
    let carol_mid = carol["id"].as_str().unwrap();
    let (status, up) = app
        .call(Method::PATCH, &format!("{members}/{carol_mid}"), Some(json!({"role": "Manager"})), &al)
        .await;
    assert_eq!((status, up["role"].as_str()), (StatusCode::OK, Some("Manager")));
    let (status, body) = app
        .post(
            "/v1/api-keys",
            json!({"name": "ok now"}),
            &[("Authorization", carol_auth.as_str()), ("X-Tenant-Id", tid.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, list) = app.get(&members, &al).await;
    let alice_mid = list.as_array().unwrap().iter().find(|m| m["email"] == "alice@example.com").unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app
        .call(Method::PATCH, &format!("{members}/{alice_mid}"), Some(json!({"role": "Viewer"})), &al)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error_of(&body).contains("last Owner"));
    assert_eq!(
        app.call(Method::DELETE, &format!("{members}/{alice_mid}"), None, &al).await.0,
        StatusCode::CONFLICT
    );

    // With a second Owner, the first may step down.
    app.call(Method::PATCH, &format!("{members}/{carol_mid}"), Some(json!({"role": "Owner"})), &al).await;
    let (status, _) = app
        .call(Method::PATCH, &format!("{members}/{alice_mid}"), Some(json!({"role": "Manager"})), &al)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.call(Method::DELETE, &format!("{members}/{alice_mid}"), None, &ch).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("{members}/mem_nope"), None, &ch).await.0,
        StatusCode::NOT_FOUND
    );

    // Every change was audited.
    let actions: Vec<String> = {
        use diesel::prelude::*;
        use switchboard::store::schema::audit_entries;
        app.state
            .store
            .read(|c| Ok(audit_entries::table.select(audit_entries::action).load::<String>(c)?))
            .await
            .unwrap()
    };
    for action in
        ["tenant.create", "member.add", "member.update", "member.remove", "user.create", "user.login"]
    {
        assert!(actions.iter().any(|a| a == action), "{action} audited: {actions:?}");
    }
}
