//! `switchboard-load all` against the real server, closed loop and open loop
//! (`--rate`), from nothing but a super-admin token: every scenario seeds its
//! own tenants through the public APIs and must measure successful
//! operations, each with a ratio to the same run's ceiling. Figures are never
//! compared with fixed numbers (no timed assertions); what can fail is a
//! scenario that cannot seed, run or report.
//!
//! The server is the workspace's `switchboard` binary next to this package's
//! (`cargo nextest run --workspace` builds both), started on a free loopback
//! port with a temp data dir and the backend the server's own tests use:
//! SQLite in the temp dir, or a fresh PostgreSQL database on
//! `SWITCHBOARD_TEST_DATABASE_URL` (created here and dropped after, as the
//! server's `tests/common` `TestDb` does).
//!
//! `switchboard-load crash` is run here too, briefly: it starts the same
//! binary itself, on the same backend, and kills it twice.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use serde_json::Value;
use tempfile::TempDir;

const TEST_DB_ENV: &str = "SWITCHBOARD_TEST_DATABASE_URL";
const ADMIN: &str = "load-admin@example.com";
/// Every scenario `all` runs, by its (first) row's name.
const SCENARIOS: [&str; 6] = ["ceiling", "create", "lifecycle", "webhooks@1", "message", "scale"];

/// The server binary: `switchboard` in the directory of this package's binary.
fn server_bin() -> PathBuf {
    let load = PathBuf::from(env!("CARGO_BIN_EXE_switchboard-load"));
    let dir = load.parent().expect("the load binary has a directory");
    let bin = dir.join(format!("switchboard{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the server binary {} is missing: `cargo nextest run --workspace` builds it, or run \
         `cargo build --bin switchboard` (same profile) before `-p switchboard-load`",
        bin.display()
    );
    bin
}

/// The database the server runs on; a PostgreSQL one is dropped when this is.
struct TestDb {
    url: String,
    admin: Option<(String, String)>,
}

impl TestDb {
    fn create(dir: &Path) -> TestDb {
        match std::env::var(TEST_DB_ENV).ok().filter(|v| !v.is_empty()) {
            None => TestDb { url: format!("sqlite://{}", dir.join("switchboard.db").display()), admin: None },
            Some(admin_url) => {
                let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
                let name = format!("sb_load_{}_{nanos:x}", std::process::id());
                let mut admin = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("{TEST_DB_ENV} is set but PostgreSQL is not reachable: {e}"));
                admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create the test database");
                TestDb { url: with_database(&admin_url, &name), admin: Some((admin_url, name)) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.admin {
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
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// `switchboard serve` as a child, killed when dropped.
struct Server {
    child: Child,
    url: String,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, db: &TestDb) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let env: Vec<(String, String)> = [
            ("SWITCHBOARD_DATABASE_URL", db.url.clone()),
            ("SWITCHBOARD_DATA_DIR", dir.join("data").display().to_string()),
            ("SWITCHBOARD_BIND", format!("127.0.0.1:{port}")),
            // Nothing leaves this machine; the webhook receivers are on loopback.
            ("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128".into()),
            ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true".into()),
            ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN.into()),
            ("SWITCHBOARD_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let log = dir.join("server.log");
        let file = std::fs::File::create(&log).expect("the server log");
        let child = switchboard(&env)
            .arg("serve")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start the server");
        Server { child, url: format!("http://127.0.0.1:{port}"), env, log }
    }

    /// Until `/readyz` answers 200 (the bootstrap admin exists from then on);
    /// the backend it names.
    async fn wait_ready(&mut self) -> String {
        let client = reqwest::Client::new();
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited ({status}) before it was ready:\n{}", self.log_text());
            }
            if let Ok(resp) = client.get(format!("{}/readyz", self.url)).send().await {
                if resp.status() == reqwest::StatusCode::OK {
                    let body: Value = resp.json().await.expect("/readyz answers JSON");
                    return body["checks"]["backend"].as_str().unwrap_or_default().to_string();
                }
            }
            assert!(Instant::now() < end, "the server was not ready within 60 s:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `switchboard admin token --email ADMIN`, with the server's settings.
    fn token(&self) -> String {
        let out =
            switchboard(&self.env).args(["admin", "token", "--email", ADMIN]).output().expect("admin token");
        assert!(out.status.success(), "admin token failed: {}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).expect("a UTF-8 token").trim().to_string();
        assert!(!token.is_empty(), "admin token printed nothing");
        token
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server binary with `env` and none of this process's own `SWITCHBOARD_*`.
fn switchboard(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(server_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// `switchboard-load all` at small sizes; its JSON summary.
fn load_all(url: &str, token: &str, extra: &[&str]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard-load"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD_LOAD_") {
            cmd.env_remove(k);
        }
    }
    #[rustfmt::skip]
    let args = [
        "--url", url, "all", "--json", "--no-progress", "--duration", "1s", "--warmup", "0s",
        "--token", token, "--concurrency", "4", "--tenants", "2", "--experts", "4", "--domains", "2",
        "--endpoints", "1,2", "--scale-sizes", "5,10", "--scale-cases", "20", "--open-cases", "20",
    ];
    let Output { status, stdout, stderr } =
        cmd.args(args).args(extra).output().expect("run switchboard-load");
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(status.success(), "switchboard-load all {extra:?} exited {status}:\n{stderr}");
    serde_json::from_slice(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON object ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&stdout))
    })
}

/// Every scenario's row: successful operations and a ratio to the ceiling.
fn assert_every_scenario_measured(summary: &Value) {
    let rows = summary["scenarios"].as_array().unwrap_or_else(|| panic!("no scenarios: {summary}"));
    assert!(summary["ceiling_throughput"].as_f64().is_some_and(|c| c > 0.0), "{summary}");
    for name in SCENARIOS {
        let row =
            rows.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {name} row: {summary}"));
        assert!(
            row["ok"].as_u64().is_some_and(|ok| ok > 0),
            "{name} measured no successful operation: {row}"
        );
        let ratio = row["ratio_to_ceiling"].as_f64();
        assert!(ratio.is_some_and(|r| r > 0.0), "{name} has no ratio to the ceiling: {row}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_all_seeds_itself_from_a_token_and_measures_every_scenario_closed_and_open_loop() {
    let dir = TempDir::new().expect("a temp dir");
    let db = TestDb::create(dir.path());
    let mut server = Server::start(dir.path(), &db);
    let backend = server.wait_ready().await;
    assert_eq!(backend, if db.admin.is_some() { "postgres" } else { "sqlite" });
    let token = server.token();

    let closed = load_all(&server.url, &token, &[]);
    assert_eq!(closed["mode"], "closed", "{closed}");
    assert_every_scenario_measured(&closed);

    let open = load_all(&server.url, &token, &["--rate", "40"]);
    assert_eq!(open["mode"], "open", "{open}");
    assert_eq!(open["target_rate"], 40.0, "{open}");
    assert_every_scenario_measured(&open);
    let rows = open["scenarios"].as_array().expect("scenarios");
    let schedule = |name: &str| rows.iter().find(|r| r["name"] == name).map(|r| r["open_loop"].clone());
    // The reference ceiling stays closed loop; the others ran on the schedule.
    assert_eq!(schedule("ceiling"), Some(Value::Null), "{open}");
    for name in ["create", "lifecycle", "webhooks@1", "message", "scale@5"] {
        let o = schedule(name).unwrap_or_else(|| panic!("no {name} row: {open}"));
        assert!(o["started"].as_u64().is_some_and(|n| n > 0), "{name} started nothing: {o}");
        assert!(o["achieved_rate"].as_f64().is_some_and(|r| r > 0.0), "{name}: {o}");
        assert_eq!(o["target_rate"], 40.0, "{name}: {o}");
    }
    drop(server);
}

/// `switchboard-load crash`, briefly: it starts the server binary itself on
/// the harness backend, SIGKILLs it twice under load, restarts it on the same
/// database and checks every invariant through the API; exit 0 means none
/// was broken, and its figures must say what was checked.
#[test]
fn crash_survives_two_sigkills_with_every_invariant_checked() {
    let dir = TempDir::new().expect("a temp dir");
    let db = TestDb::create(dir.path());
    let data = dir.path().join("crash");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard-load"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD_LOAD_") {
            cmd.env_remove(k);
        }
    }
    let bin = server_bin();
    #[rustfmt::skip]
    cmd.args(["crash", "--json", "--no-progress", "--duration", "4s", "--kills", "2", "--clients", "3"])
        .arg("--server-bin").arg(&bin)
        .arg("--data-dir").arg(&data);
    if db.admin.is_some() {
        cmd.args(["--database-url", &db.url]);
    }
    let Output { status, stdout, stderr } = cmd.output().expect("run switchboard-load crash");
    let stderr = String::from_utf8_lossy(&stderr);
    let backend = if db.admin.is_some() { "postgres" } else { "sqlite" };
    assert!(status.success(), "switchboard-load crash on {backend} exited {status}:\n{stderr}");
    assert!(stderr.contains(&format!(", {backend}, ")), "not run on {backend}:\n{stderr}");
    let summary: Value = serde_json::from_slice(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON object ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&stdout))
    });
    let rows = summary["scenarios"].as_array().unwrap_or_else(|| panic!("no rows: {summary}"));
    let row = |name: &str| {
        rows.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {name} row: {summary}"))
    };
    let figure = |label: &str| {
        row("crash")["figures"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["label"] == label))
            .and_then(|f| f["value"].as_f64())
            .unwrap_or_else(|| panic!("no figure {label:?}: {summary}"))
    };
    assert!(figure("crashes survived (SIGKILL)") >= 2.0, "{summary}");
    assert_eq!(figure("violations"), 0.0, "{summary}");
    assert!(figure("operations") > 0.0, "{summary}");
    assert!(figure("cases checked") > 0.0, "{summary}");
    assert!(figure("deliveries checked") > 0.0, "{summary}");
    for label in ["duplicate submissions replayed", "re-deliveries (same webhook-id, 2xx again)", "downtime"]
    {
        figure(label);
    }
    for kind in ["create", "accept", "resolve"] {
        let ok = row(&format!("crash {kind}"))["ok"].as_u64();
        assert!(ok.is_some_and(|n| n > 0), "no {kind} acknowledged: {summary}");
    }
}
