//! Test harness: `spawn_app()` starts the real application on 127.0.0.1:0
//! with a fresh database — a temp-dir SQLite file, or, when
//! `SWITCHBOARD_TEST_DATABASE_URL` names a PostgreSQL server, a freshly created
//! database that is dropped afterwards. When that variable is set, PostgreSQL
//! must be reachable: the harness fails rather than fall back to SQLite.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod receiver;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use switchboard::settings::Settings;
use switchboard::startup::{self, AppState, Application};
use tempfile::TempDir;

pub const TEST_DB_ENV: &str = "SWITCHBOARD_TEST_DATABASE_URL";

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: Option<String>,
}

impl TestDb {
    pub fn create(dir: &TempDir) -> TestDb {
        match std::env::var(TEST_DB_ENV).ok().filter(|v| !v.is_empty()) {
            None => TestDb {
                url: format!("sqlite://{}", dir.path().join("switchboard.db").display()),
                admin_url: None,
                name: None,
            },
            Some(admin_url) => {
                let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("{TEST_DB_ENV} is set but PostgreSQL is not reachable: {e}"));
                admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create the test database");
                TestDb { url: with_database(&admin_url, &name), admin_url: Some(admin_url), name: Some(name) }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.admin_url.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let (Some(admin_url), Some(name)) = (&self.admin_url, &self.name) {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// `postgres://u:p@h:5432/postgres?x=y` with the database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    pub handle: ServerHandle,
    pub db: TestDb,
    pub dir: TempDir,
}

/// The environment a test server runs with: loopback-only outbound traffic,
/// a private data directory, quiet logs. `extra` overrides any of it.
pub fn test_env(dir: &TempDir, db: &TestDb, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("SWITCHBOARD_BIND".into(), "127.0.0.1:0".into()),
        ("SWITCHBOARD_DATABASE_URL".into(), db.url.clone()),
        ("SWITCHBOARD_DATA_DIR".into(), dir.path().join("data").display().to_string()),
        ("SWITCHBOARD_OUTBOUND_ALLOW".into(), "127.0.0.0/8,::1/128".into()),
        ("SWITCHBOARD_LOG".into(), "warn".into()),
        ("SWITCHBOARD_DB_POOL_SIZE".into(), "4".into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        let v = v.replace("{outbox}", &dir.path().join("outbox").display().to_string());
        env.push((k.to_string(), v));
    }
    env
}

pub fn test_settings(dir: &TempDir, db: &TestDb, extra: &[(&str, &str)]) -> Settings {
    // An explicit, empty file: a switchboard.toml in the working directory must not leak in.
    let file = dir.path().join("test-switchboard.toml");
    std::fs::write(&file, "").expect("write the test config file");
    Settings::from_sources(Some(&file), &test_env(dir, db, extra)).expect("test settings are valid")
}

/// Starts the app and waits until it is ready.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[], true).await
}

/// Starts the app with `extra` settings; `initialize: false` leaves it serving but not ready.
pub async fn spawn_app_with(extra: &[(&str, &str)], initialize: bool) -> TestApp {
    spawn_app_full(extra, initialize, |_| {}).await
}

/// `spawn_app_with`, plus routes that exist only in the test binary.
pub async fn spawn_app_full(
    extra: &[(&str, &str)],
    initialize: bool,
    routes: fn(&mut web::ServiceConfig),
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDb::create(&dir);
    let settings = test_settings(&dir, &db, extra);
    let app = Application::build_with_routes(settings, routes).await.expect("app builds");
    let port = app.port();
    let state = app.state();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let test_app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        state,
        handle,
        db,
        dir,
    };
    if initialize {
        test_app.initialize().await;
    }
    test_app
}

impl TestApp {
    pub async fn initialize(&self) {
        startup::initialize(&self.state).await.expect("initialize");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
}

/// Polls `check` until it returns true or `deadline` passes.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if check().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Path of the server binary built for this test run.
pub fn server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchboard"))
}

/// A response's status and JSON body (Null when the body is not JSON).
pub type Answer = (reqwest::StatusCode, serde_json::Value);

impl TestApp {
    /// Sends `method path` with an optional JSON body and headers; returns status and JSON.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.client.request(method, self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let body = res.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.call(reqwest::Method::GET, path, None, headers).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value, headers: &[(&str, &str)]) -> Answer {
        self.call(reqwest::Method::POST, path, Some(body), headers).await
    }

    /// The mail directory of an app started with `SWITCHBOARD_MAIL=file:...` by `spawn_with_outbox`.
    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Every mail sent to `to`, oldest first.
    pub fn mails_to(&self, to: &str) -> Vec<serde_json::Value> {
        mails_in(&self.outbox(), to)
    }

    /// The last 6-digit code mailed to `to`.
    pub fn last_code(&self, to: &str) -> String {
        last_code_in(&self.outbox(), to)
    }
}

/// Every mail sent to `to` in the `file:` outbox `dir`, oldest first (files
/// still being written, `.`-prefixed, are skipped).
pub fn mails_in(dir: &std::path::Path, to: &str) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|p| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).ok()?).ok())
        .filter(|m| m["to"] == to)
        .collect()
}

/// The last 6-digit code mailed to `to` in the `file:` outbox `dir`.
pub fn last_code_in(dir: &std::path::Path, to: &str) -> String {
    let mails = mails_in(dir, to);
    let text = mails.last().unwrap_or_else(|| panic!("no mail to {to} in {}", dir.display()))["text"]
        .as_str()
        .unwrap()
        .to_string();
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a 6-digit code").to_string()
}

/// How a script ended (`None`: killed at its deadline), and everything it printed.
pub struct ScriptRun {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `python script args...` in `dir` to its end, killing it past
/// `deadline`; its output goes to files in `dir` named after the script.
/// Blocking: call it off the test's thread, which also runs the server.
pub fn run_python_script(
    python: &str,
    script: &std::path::Path,
    args: &[String],
    dir: &std::path::Path,
    deadline: Duration,
) -> ScriptRun {
    use std::process::{Command, Stdio};
    let stem = script.file_stem().map_or("script".into(), |s| s.to_string_lossy().into_owned());
    let out_path = dir.join(format!("{stem}.stdout"));
    let err_path = dir.join(format!("{stem}.stderr"));
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} {}: {e}", script.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ScriptRun {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Starts an app whose mail goes to `<dir>/outbox`, with extra settings.
pub async fn spawn_with_outbox(extra: &[(&str, &str)]) -> TestApp {
    // The outbox lives in the app's own temp dir, which only exists once spawned: pass a
    // placeholder and let the harness substitute it.
    spawn_app_with(&[&[("SWITCHBOARD_MAIL", OUTBOX_PLACEHOLDER)], extra].concat(), true).await
}

pub const OUTBOX_PLACEHOLDER: &str = "file:{outbox}";

/// Signs `email` in on the Platform API by one-time code (the app must mail
/// to its outbox, `spawn_with_outbox`); returns the `Authorization` value.
pub async fn sign_in(app: &TestApp, email: &str) -> String {
    let (status, body) = app.post("/api/auth/otp/request", serde_json::json!({"email": email}), &[]).await;
    assert_eq!((status, body), (reqwest::StatusCode::OK, serde_json::json!({})), "otp request for {email}");
    let code = app.last_code(email);
    let (status, body) =
        app.post("/api/auth/otp/verify", serde_json::json!({"email": email, "code": code}), &[]).await;
    assert_eq!(status, reqwest::StatusCode::OK, "otp verify for {email}: {body}");
    format!("Bearer {}", body["token"].as_str().expect("token"))
}

/// A user created by the super-admin (`admin` is its `Authorization`), signed in.
pub async fn new_user(app: &TestApp, admin: &str, email: &str) -> String {
    let (status, body) =
        app.post("/api/users", serde_json::json!({"email": email}), &[("Authorization", admin)]).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    sign_in(app, email).await
}
