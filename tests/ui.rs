//! The expert portal (`/portal`) and the operator console (`/console`):
//! sessions in HttpOnly, SameSite=Strict cookies, CSRF tokens on every form,
//! HTML error pages, and — in headless Chromium — the whole of what an
//! expert and an operator do (`scripts/ui_check.py`).

mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use esc::Api;
use regex::Regex;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::json;

const ADMIN: &str = "ops@example.com";

/// A browser without a cookie jar or redirects: every cookie and hop is the test's to see.
fn browser() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `name → the whole Set-Cookie line` of a response.
fn set_cookies(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|line| Some((line.split('=').next()?.trim().to_string(), line.to_string())))
        .collect()
}

fn cookie_value(line: &str) -> String {
    line.split(';').next().unwrap().split_once('=').unwrap().1.to_string()
}

fn csrf_in(html: &str) -> String {
    let re = Regex::new(r#"name="csrf" value="([0-9a-f]{64})""#).unwrap();
    re.captures(html).unwrap_or_else(|| panic!("a CSRF field in {html}"))[1].to_string()
}

/// A browser session: the cookies it holds, sent back on every request.
struct Visit {
    base: String,
    client: Client,
    cookies: HashMap<String, String>,
}

impl Visit {
    fn new(app: &common::TestApp) -> Visit {
        Visit { base: app.address.clone(), client: browser(), cookies: HashMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for (name, line) in set_cookies(headers) {
            let value = cookie_value(&line);
            if line.contains("Max-Age=0") {
                self.cookies.remove(&name);
            } else {
                self.cookies.insert(name, value);
            }
        }
    }

    async fn get(&mut self, path: &str) -> (StatusCode, HeaderMap, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        self.keep(&headers);
        (status, headers, res.text().await.unwrap())
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        self.keep(&headers);
        (status, headers, res.text().await.unwrap())
    }
}

fn location(headers: &HeaderMap) -> &str {
    headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn is_html(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"))
}

#[actix_web::test]
async fn the_portal_keeps_its_session_in_a_strict_http_only_cookie_and_checks_every_form() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("portal-ui").await;
    let e = api.expert(&t.key, "Uma", &["tax.us"], 1).await;
    let mut v = Visit::new(&app);

    // Pages without a session go to sign-in; the live queue says 401.
    let (status, headers, _) = v.get("/portal").await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/portal/login"));
    let (status, headers, body) = v.get("/portal/queue").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(is_html(&headers) && body.contains("signed out"), "{body}");

    let (status, headers, page) = v.get("/portal/login").await;
    assert_eq!(status, StatusCode::OK);
    let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers.get("x-frame-options").unwrap(), "DENY");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    let browser_cookie = set_cookies(&headers).remove("sb_csrf").expect("a CSRF cookie");
    assert!(
        browser_cookie.contains("HttpOnly") && browser_cookie.contains("SameSite=Strict"),
        "{browser_cookie}"
    );
    let csrf = csrf_in(&page);

    // Refused: no token, a token of another browser, a foreign Origin, a cross-site fetch.
    let token = e.token.as_str();
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    let refusals: [(Pairs, Pairs); 4] = [
        (&[("token", token)], &[]),
        (&[("token", token), ("csrf", &"0".repeat(64))], &[]),
        (&[("token", token), ("csrf", &csrf)], &[("Origin", "http://evil.example")]),
        (&[("token", token), ("csrf", &csrf)], &[("Sec-Fetch-Site", "cross-site")]),
    ];
    for (form, extra) in refusals {
        let (status, headers, body) = v.post("/portal/login", form, extra).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form:?} {extra:?}: {body}");
        assert!(is_html(&headers) && body.contains("reload the page"), "{body}");
        assert!(!v.cookies.contains_key("sb_expert"));
    }
    // A wrong token: the form again, 401, no session.
    let (status, _, body) = v.post("/portal/login", &[("token", "exp_nope"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("That token is not valid") && !v.cookies.contains_key("sb_expert"), "{body}");

    let (status, headers, _) = v.post("/portal/login", &[("token", token), ("csrf", &csrf)], &[]).await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/portal"));
    let session = set_cookies(&headers).remove("sb_expert").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/portal"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    let (status, _, page) = v.get("/portal").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Uma") && page.contains("No open cases"), "{page}");

    // Status: the form changes it, through the same engine as the API.
    let (status, _, _) = v.post("/portal/status", &[("status", "busy"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(api.expert_profile(&t.key, &e.id).await["status"], "busy");
    let (status, _, body) = v.post("/portal/status", &[("status", "asleep"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = v.post("/portal/status", &[("status", "available")], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token, no change");
    v.post("/portal/status", &[("status", "available"), ("csrf", &csrf)], &[]).await;

    // A case routed to the expert shows in the live queue; another's case is 404.
    let case = api
        .create(&t.key, json!({"domain": "tax.us", "query": "Is this deductible?", "output_schema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut fragment = String::new();
    for _ in 0..200 {
        fragment = v.get("/portal/queue").await.2;
        if fragment.contains(&case) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fragment.contains(&case) && fragment.contains("Is this deductible?"), "{fragment}");
    let (status, headers, body) = v.get("/portal/cases/0193a6f0-7c1e-7d2a-9a51-3b3f2f0c8e11").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(is_html(&headers) && body.contains("Escalation not found"), "{body}");

    // Resolve: the Quality Gate's 422 names the field, then a good answer resolves.
    let (status, _, body) = v
        .post(
            &format!("/portal/cases/{case}/resolve"),
            &[("answer/ok", ""), ("confidence", "0.8"), ("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("f1-answer-ok-error") && body.contains("required property"), "{body}");
    let (status, _, _) = v
        .post(
            &format!("/portal/cases/{case}/resolve"),
            &[("answer/ok", "true"), ("confidence", "0.8"), ("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let detail = api.detail(&t.key, &case).await;
    assert_eq!(
        (detail["status"].clone(), detail["resolution"]["answer"].clone()),
        (json!("resolved"), json!({"ok": true}))
    );

    // Sign out: the cookie is removed.
    let (status, headers, _) = v.post("/portal/logout", &[("csrf", &csrf)], &[]).await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/portal/login"));
    assert!(set_cookies(&headers)["sb_expert"].contains("Max-Age=0"));
    assert_eq!(v.get("/portal").await.0, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn the_console_is_for_super_admins_signed_in_by_code() {
    let app = common::spawn_with_outbox(&[("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN)]).await;
    let admin = common::sign_in(&app, ADMIN).await;
    common::new_user(&app, &admin, "member@example.com").await;
    let api = Api::of(&app);
    let t = api.register("console-ui").await;

    // A user who is not a super-admin gets a 403 page and no session.
    let mut v = Visit::new(&app);
    let csrf = csrf_in(&v.get("/console/login").await.2);
    let (status, _, body) =
        v.post("/console/login", &[("email", "member@example.com"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("One-time code"), "{body}");
    let code = app.last_code("member@example.com");
    let (status, headers, body) = v
        .post("/console/verify", &[("email", "member@example.com"), ("code", &code), ("csrf", &csrf)], &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(is_html(&headers) && body.contains("super-admins"), "{body}");
    assert!(!v.cookies.contains_key("sb_console"));

    // The super-admin: a wrong code is shown on the form; the right one opens the console.
    let mut v = Visit::new(&app);
    let csrf = csrf_in(&v.get("/console/login").await.2);
    v.post("/console/login", &[("email", ADMIN), ("csrf", &csrf)], &[]).await;
    let (status, _, body) =
        v.post("/console/verify", &[("email", ADMIN), ("code", "000000"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("That code is not valid"), "{body}");
    let code = app.last_code(ADMIN);
    let (status, headers, _) =
        v.post("/console/verify", &[("email", ADMIN), ("code", &code), ("csrf", &csrf)], &[]).await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/console"));
    let session = set_cookies(&headers).remove("sb_console").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }

    // Each page and its live part.
    api.case(&t.key, "legal.eu", "urgent").await;
    for (page, shows) in
        [("/console", "Queue depth"), ("/console/tenants", "console-ui"), ("/console/webhooks", "Deliveries")]
    {
        let (status, _, body) = v.get(page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(body.contains(shows), "{page}: {body}");
        let (status, _, live) = v.get(&format!("{page}/live")).await;
        assert_eq!(status, StatusCode::OK, "{page}/live");
        assert!(live.contains("data-live") && !live.contains("<html"), "{page}/live: {live}");
    }
    let live = v.get("/console/live").await.2;
    assert!(live.contains(r#"data-domain="legal.eu" data-priority="urgent">1<"#), "{live}");
    let (status, _, _) = v.get("/console/webhooks?status=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Tenant controls: the form needs its token; stop and deploy act and are audited.
    let tid = t.id.as_str();
    let (status, _, _) = v.post(&format!("/console/tenants/{tid}/stop"), &[], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = v.post(&format!("/console/tenants/{tid}/stop"), &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).starts_with("/console/tenants?done="), "{headers:?}");
    assert_eq!(app.state.store.tenant(tid).await.unwrap().unwrap().status, "stopped");
    let (status, _, _) = v.post(&format!("/console/tenants/{tid}/deploy"), &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = v.post(&format!("/console/tenants/{tid}/explode"), &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Sign out revokes the JWT: the old cookie no longer opens anything.
    let old = v.cookies["sb_console"].clone();
    let (status, headers, _) = v.post("/console/logout", &[("csrf", &csrf)], &[]).await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/console/login"));
    v.cookies.insert("sb_console".into(), old.clone());
    assert_eq!(v.get("/console").await.0, StatusCode::SEE_OTHER);
    let (status, _) = app.get("/api/auth/me", &[("Authorization", &format!("Bearer {old}"))]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn files_and_errors_of_the_pages() {
    let app = common::spawn_app().await;
    let client = browser();
    for (file, kind) in
        [("app.css", "text/css"), ("portal.js", "text/javascript"), ("console.js", "text/javascript")]
    {
        let res = client.get(app.url(&format!("/ui/{file}"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{file}");
        assert!(res.headers()[CONTENT_TYPE].to_str().unwrap().starts_with(kind));
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }
    let res = client.get(app.url("/ui/nothing.js")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(is_html(res.headers()));
    // A wrong method is an HTML page too, and names no framework.
    let res = client.delete(app.url("/portal")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_html(res.headers()));
    // Nothing in the pages' files comes from elsewhere.
    for file in ["app.css", "portal.js", "console.js"] {
        let text = client.get(app.url(&format!("/ui/{file}"))).send().await.unwrap().text().await.unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("@import"),
            "{file}"
        );
    }
}

#[actix_web::test]
async fn portal_and_console_work_in_headless_chromium() {
    let python = match std::env::var("SWITCHBOARD_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "SWITCHBOARD_TEST_PYTHON is not set: this test drives Debian's Chromium with the Python \
             `playwright` package. Run it through scripts/test-all.sh."
        ),
    };
    let app = common::spawn_with_outbox(&[
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
    ])
    .await;
    let api = Api::of(&app);
    let t = api.register("Acme Health").await;
    let e = api.expert(&t.key, "Dana Whitfield", &["tax.us"], 3).await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let backend = if std::env::var("SWITCHBOARD_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        "postgres"
    } else {
        "sqlite"
    };
    let shots = root.join("target").join("screenshots").join("ui").join(backend);
    let _ = std::fs::remove_dir_all(&shots);
    let setup = json!({
        "api_key": t.key,
        "expert_token": e.token,
        "admin_email": ADMIN,
        "outbox": app.outbox(),
        "tenant_id": t.id,
        "tenant_name": "Acme Health",
    });
    let setup_path = app.dir.path().join("ui-setup.json");
    std::fs::write(&setup_path, setup.to_string()).unwrap();

    let script = root.join("scripts").join("ui_check.py");
    let args = vec![app.address.clone(), setup_path.display().to_string(), shots.display().to_string()];
    let dir = app.dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        common::run_python_script(&python, &script, &args, &dir, Duration::from_secs(600))
    })
    .await
    .unwrap();
    println!("{}", run.stdout);
    assert!(
        run.status.is_some_and(|s| s.success()) && run.stdout.contains("ui ok"),
        "the browser check failed ({:?}):\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    let pngs: Vec<_> = std::fs::read_dir(&shots)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    assert!(pngs.len() >= 26, "a desktop and a phone screenshot of every page: {pngs:?}");
    for png in &pngs {
        assert!(std::fs::read(png).unwrap().starts_with(b"\x89PNG"), "{}", png.display());
    }
    println!("screenshots: {}", shots.display());
}
