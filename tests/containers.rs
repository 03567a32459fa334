//! Tenant containers on both runtimes: deploy → deploying → running, restart,
//! stop, status with real uptime and port, logs, exec of the runtime's own
//! commands (audited), pairing codes, the process runtime's supervised child
//! (kill -9 → restarted; repeated crashes → error; stop and delete leave no
//! process), Agent API messages through either runtime, and the role line of
//! every endpoint.

mod common;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "ops@example.com";
const OWNER: &str = "owner@example.com";

async fn app(runtime: &str, extra: &[(&str, &str)]) -> common::TestApp {
    let bin = common::server_bin().display().to_string();
    common::spawn_with_outbox(
        &[
            &[
                ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
                ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m"),
                ("SWITCHBOARD_TENANT_RUNTIME", runtime),
                ("SWITCHBOARD_RUNTIME_BIN", bin.as_str()),
                ("SWITCHBOARD_RUNTIME_RESTART_BACKOFF", "50ms"),
            ],
            extra,
        ]
        .concat(),
    )
    .await
}

struct World {
    admin: String,
    owner: String,
    tenant: String,
}

/// The admin, an Owner and the Owner's new (draft) tenant.
async fn world(app: &common::TestApp) -> World {
    let admin = common::sign_in(app, ADMIN).await;
    let owner = common::new_user(app, &admin, OWNER).await;
    let (status, t) = app.post("/api/tenants", json!({"name": "Acme"}), &[("Authorization", &owner)]).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["status"], "draft");
    World { admin, owner, tenant: t["id"].as_str().unwrap().to_string() }
}

async fn post(app: &common::TestApp, auth: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.post(path, body, &[("Authorization", auth)]).await
}

async fn get(app: &common::TestApp, auth: &str, path: &str) -> (StatusCode, Value) {
    app.get(path, &[("Authorization", auth)]).await
}

async fn status_of(app: &common::TestApp, auth: &str, tid: &str) -> Value {
    let (status, body) = get(app, auth, &format!("/api/tenants/{tid}/status")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls the status endpoint until it shows `want`; returns that body.
async fn until_status(app: &common::TestApp, auth: &str, tid: &str, want: &str) -> Value {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let last = status_of(app, auth, tid).await;
        if last["status"] == want {
            return last;
        }
        assert!(std::time::Instant::now() < end, "status never became {want}: last {last}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn deploy(app: &common::TestApp, auth: &str, tid: &str) {
    let (status, body) = post(app, auth, &format!("/api/tenants/{tid}/deploy"), json!({})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
}

fn pid_of(app: &common::TestApp, tid: &str) -> Option<u32> {
    app.state.agents.container(tid).and_then(|c| c.pid)
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some(Some('Z' | 'X')))
        }
        Err(_) => false,
    }
}

async fn gone(pid: u32) -> bool {
    common::eventually(Duration::from_secs(10), || async move { !alive(pid) }).await
}

/// An active Cerebral of the tenant and an `sk_live_` key for it, made with the Owner's JWT.
async fn agent(app: &common::TestApp, auth: &str, tid: &str) -> (String, String) {
    let headers = [("Authorization", auth), ("X-Tenant-Id", tid)];
    let (status, c) =
        app.call(Method::POST, "/v1/cerebrals", Some(json!({"name": "Helper"})), &headers).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let (status, k) = app.call(Method::POST, "/v1/api-keys", Some(json!({"name": "k"})), &headers).await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    (c["data"]["id"].as_str().unwrap().to_string(), k["data"]["key"].as_str().unwrap().to_string())
}

async fn message(app: &common::TestApp, cerebral: &str, key: &str, text: &str) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("/v1/cerebrals/{cerebral}/message"),
        Some(json!({"message": text, "session_id": "s1"})),
        &[("X-API-Key", key)],
    )
    .await
}

async fn logs(app: &common::TestApp, auth: &str, tid: &str, query: &str) -> Vec<String> {
    let (status, body) = get(app, auth, &format!("/api/tenants/{tid}/logs{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn exec(app: &common::TestApp, auth: &str, tid: &str, command: &str) -> (StatusCode, Value) {
    post(app, auth, &format!("/api/tenants/{tid}/exec"), json!({"command": command})).await
}

/// The whole lifecycle, the same on both runtimes.
async fn lifecycle_on(runtime: &str) {
    let app = app(runtime, &[]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    let (cerebral, key) = agent(&app, &w.owner, tid).await;

    let draft = status_of(&app, &w.owner, tid).await;
    assert_eq!(draft, json!({"status": "draft", "uptime": null, "port": null}));
    let (status, body) = message(&app, &cerebral, &key, "hello").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("TENANT_NOT_RUNNING"))
    );
    for action in ["stop", "restart"] {
        let (status, body) = post(&app, &w.owner, &format!("/api/tenants/{tid}/{action}"), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action} of a draft: {body}");
        assert!(body["error"].as_str().unwrap().contains("draft"), "{body}");
    }

    deploy(&app, &w.owner, tid).await;
    let stored = app.state.store.tenant(tid).await.unwrap().unwrap();
    assert!(
        ["deploying", "running"].contains(&stored.status.as_str()),
        "recorded before the answer: {}",
        stored.status
    );
    assert_eq!(stored.runtime, runtime);
    let running = until_status(&app, &w.owner, tid, "running").await;
    assert!(running["uptime"].as_u64().is_some(), "{running}");
    deploy(&app, &w.owner, tid).await; // idempotent
    let pid = pid_of(&app, tid);
    match runtime {
        "process" => {
            let port = running["port"].as_u64().expect("a process runtime has a port");
            let pid = pid.expect("a process runtime has a pid");
            assert!(alive(pid), "the child {pid} runs");
            assert_ne!(pid, std::process::id());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(cmdline.contains(&format!("runtime --tenant {tid}")), "{cmdline}");
            // The port is the child's own loopback listener.
            let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap();
            assert_eq!(health.status(), StatusCode::OK);
            // Without the token the child does nothing.
            let refused = reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}/chat"))
                .json(&json!({"provider": "offline", "model": "m", "base_url": null, "api_key": null, "temperature": null, "messages": []}))
                .send()
                .await
                .unwrap();
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
        _ => {
            assert_eq!(running["port"], Value::Null);
            assert_eq!(pid, None);
        }
    }
    let (status, t) = get(&app, &w.owner, &format!("/api/tenants/{tid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((t["status"].clone(), t["port"].clone()), (json!("running"), running["port"].clone()));

    // Messages reach the tenant through its runtime.
    let (status, body) = message(&app, &cerebral, &key, "hello there").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"]["message"].as_str().unwrap().contains("hello there"), "{body}");
    assert!(body["data"]["metadata"]["tokens_used"].as_u64().unwrap() > 0);

    let lines = logs(&app, &w.owner, tid, "").await;
    let text = lines.join("\n");
    assert!(text.contains(&format!("[INFO] Deploying on the {runtime} runtime")), "{text}");
    assert!(text.contains("[INFO] Agent started"), "{text}");
    assert!(lines.iter().all(|l| l.len() > 21 && l.as_bytes()[19] == b'Z'), "timestamped: {lines:?}");
    if runtime == "process" {
        // The child's own stdout is in the log.
        let said = common::eventually(Duration::from_secs(5), || async {
            logs(&app, &w.owner, tid, "?tail=1000").await.join("\n").contains("Turn answered by offline")
        })
        .await;
        assert!(said, "the child's stdout reaches the log");
    }

    // exec: the runtime's own commands only.
    let (status, out) = exec(&app, &w.owner, tid, "zeroclaw status").await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let output = out["output"].as_str().unwrap();
    assert!(output.starts_with("Agent running. Uptime: "), "{output}");
    assert!(output.contains(&format!("Runtime: {runtime}")), "{output}");
    if runtime == "process" {
        assert!(output.contains(&format!("pid {}", pid.unwrap())), "{output}");
        assert!(output.contains("Turns: 1"), "the child counts its own turns: {output}");
    }
    let (status, out) = exec(&app, &w.owner, tid, "zeroclaw sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(out["output"].as_str().unwrap().contains("Helper / s1: 2 messages"), "{out}");
    let (status, out) = exec(&app, &w.owner, tid, "zeroclaw config").await;
    assert_eq!(status, StatusCode::OK);
    assert!(out["output"].as_str().unwrap().contains("\"api_key\": \"not set\""), "{out}");

    // Restart: a new instance.
    let (status, _) = post(&app, &w.owner, &format!("/api/tenants/{tid}/restart"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    until_status(&app, &w.owner, tid, "running").await;
    if let Some(old) = pid {
        let new = pid_of(&app, tid).expect("a new child");
        assert_ne!(new, old);
        assert!(gone(old).await, "the old child is gone");
    }

    // Stop: nothing of it is left running, and it does not converse.
    let pid = pid_of(&app, tid);
    let (status, body) = post(&app, &w.owner, &format!("/api/tenants/{tid}/stop"), json!({})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    if let Some(pid) = pid {
        assert!(!alive(pid), "stop answered only once the child {pid} was gone");
    }
    assert_eq!(
        status_of(&app, &w.owner, tid).await,
        json!({"status": "stopped", "uptime": null, "port": null})
    );
    assert_eq!(app.state.store.tenant(tid).await.unwrap().unwrap().status, "stopped");
    let (status, body) = message(&app, &cerebral, &key, "anyone?").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("TENANT_NOT_RUNNING"))
    );
    let (status, _) = post(&app, &w.owner, &format!("/api/tenants/{tid}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "stopping a stopped container is fine");

    // Deploy again from stopped, then delete: the runtime goes first.
    deploy(&app, &w.owner, tid).await;
    until_status(&app, &w.owner, tid, "running").await;
    let pid = pid_of(&app, tid);
    let (status, _) =
        app.call(Method::DELETE, &format!("/api/tenants/{tid}"), None, &[("Authorization", &w.owner)]).await;
    assert_eq!(status, StatusCode::OK);
    if let Some(pid) = pid {
        assert!(!alive(pid), "delete stopped the child {pid}");
    }
    assert!(app.state.agents.container(tid).is_none());
    let (status, _) = get(&app, &w.admin, &format!("/api/tenants/{tid}/status")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_lifecycle_on_the_embedded_runtime() {
    lifecycle_on("embedded").await;
}

#[actix_web::test]
async fn the_lifecycle_on_the_process_runtime() {
    lifecycle_on("process").await;
}

#[actix_web::test]
async fn a_killed_child_is_restarted_and_repeated_crashes_end_in_error() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let app = app("process", &[("SWITCHBOARD_RUNTIME_MAX_RESTARTS", "2")]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    let (cerebral, key) = agent(&app, &w.owner, tid).await;
    deploy(&app, &w.owner, tid).await;
    until_status(&app, &w.owner, tid, "running").await;

    let mut pids = vec![pid_of(&app, tid).unwrap()];
    for crash in 1..=2 {
        let pid = *pids.last().unwrap();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let back = common::eventually(Duration::from_secs(20), || async {
            app.state
                .agents
                .container(tid)
                .is_some_and(|c| c.status.as_str() == "running" && c.pid != Some(pid))
        })
        .await;
        assert!(back, "crash {crash}: the supervisor started a new child");
        let new = pid_of(&app, tid).unwrap();
        assert!(alive(new));
        pids.push(new);
        let (status, body) = message(&app, &cerebral, &key, "still there?").await;
        assert_eq!(status, StatusCode::OK, "after crash {crash}: {body}");
    }
    let text = logs(&app, &w.owner, tid, "?tail=1000").await.join("\n");
    assert!(text.contains("[WARN] Agent exited (killed by signal 9); restarting in 50 ms"), "{text}");
    assert!(text.contains("restarting in 100 ms"), "back-off doubles: {text}");

    // A third crash within the window is one too many.
    kill(Pid::from_raw(*pids.last().unwrap() as i32), Signal::SIGKILL).unwrap();
    let failed = until_status(&app, &w.owner, tid, "error").await;
    assert_eq!(failed, json!({"status": "error", "uptime": null, "port": null}));
    let stored = common::eventually(Duration::from_secs(5), || async {
        app.state.store.tenant(tid).await.unwrap().unwrap().status == "error"
    })
    .await;
    assert!(stored, "error is recorded");
    assert!(logs(&app, &w.owner, tid, "").await.join("\n").contains("giving up"));
    for pid in &pids {
        assert!(gone(*pid).await, "no child {pid} is left");
    }
    // Deploy from error starts afresh.
    deploy(&app, &w.owner, tid).await;
    until_status(&app, &w.owner, tid, "running").await;
}

#[actix_web::test]
async fn exec_runs_only_the_runtime_commands_and_audits_every_attempt() {
    let app = app("embedded", &[]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    for bad in ["ls -la", "sh -c id", "zeroclaw status; cat /etc/passwd", "$(reboot)", ""] {
        let (status, body) = exec(&app, &w.owner, tid, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        let error = body["error"].as_str().unwrap();
        for c in ["zeroclaw status", "zeroclaw sessions", "zeroclaw config", "zeroclaw help"] {
            assert!(error.contains(c), "the refusal lists {c}: {error}");
        }
    }
    let (status, out) = exec(&app, &w.owner, tid, "zeroclaw help").await;
    assert_eq!(status, StatusCode::OK);
    assert!(out["output"].as_str().unwrap().starts_with("Commands: zeroclaw status"));
    let (status, out) = exec(&app, &w.owner, tid, "zeroclaw status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["output"], "Agent draft. Provider: offline/offline-1. Runtime: embedded.");
    let (status, _) = post(&app, &w.owner, &format!("/api/tenants/{tid}/exec"), json!({"cmd": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = exec(&app, &w.owner, tid, &"zeroclaw status ".repeat(100)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, audit) = get(&app, &w.admin, "/api/monitoring/audit?action=tenant.exec&per_page=50").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 8, "every attempt is audited: {audit}");
    let details: Vec<Value> =
        entries.iter().map(|e| serde_json::from_str(e["detail"].as_str().unwrap()).unwrap()).collect();
    assert!(details.contains(&json!({"command": "ls -la", "accepted": false})), "{details:?}");
    assert!(details.contains(&json!({"command": "zeroclaw help", "accepted": true})), "{details:?}");
    assert!(entries.iter().all(|e| e["tenant_id"] == tid));
}

#[actix_web::test]
async fn pairing_codes_are_stable_until_reset_and_sealed_at_rest() {
    let app = app("embedded", &[]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    let path = format!("/api/tenants/{tid}/pairing-code");
    let (status, first) = get(&app, &w.owner, &path).await;
    assert_eq!(status, StatusCode::OK);
    let code = first["pairing_code"].as_str().unwrap().to_string();
    let re = regex::Regex::new("^ZERO-[0-9A-F]{4}-[0-9A-F]{4}$").unwrap();
    assert!(re.is_match(&code), "{code}");
    assert_eq!(get(&app, &w.owner, &path).await.1, first, "stable");
    let (status, reset) = post(&app, &w.owner, &format!("/api/tenants/{tid}/reset-pairing"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let new = reset["pairing_code"].as_str().unwrap();
    assert!(re.is_match(new));
    assert_ne!(new, code);
    assert_eq!(get(&app, &w.owner, &path).await.1["pairing_code"], new);
    let row = app.state.store.tenant(tid).await.unwrap().unwrap();
    let sealed = row.pairing_code_sealed.unwrap();
    assert!(!sealed.contains(new) && !sealed.contains(&new[5..]), "sealed, not plain: {sealed}");
}

#[actix_web::test]
async fn logs_take_a_tail_of_1_to_1000() {
    let app = app("embedded", &[]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    assert!(logs(&app, &w.owner, tid, "").await.is_empty(), "a draft has no log yet");
    deploy(&app, &w.owner, tid).await;
    until_status(&app, &w.owner, tid, "running").await;
    for _ in 0..30 {
        let (status, _) = post(&app, &w.owner, &format!("/api/tenants/{tid}/restart"), json!({})).await;
        assert_eq!(status, StatusCode::OK);
    }
    until_status(&app, &w.owner, tid, "running").await;
    assert_eq!(logs(&app, &w.owner, tid, "").await.len(), 50, "50 by default");
    let two = logs(&app, &w.owner, tid, "?tail=2").await;
    assert_eq!(two.len(), 2);
    assert!(two[1].ends_with("[INFO] Agent started"), "{two:?}");
    assert!(logs(&app, &w.owner, tid, "?tail=1000").await.len() >= 92);
    for bad in ["0", "1001", "-1", "abc", "2.5"] {
        let (status, body) = get(&app, &w.owner, &format!("/api/tenants/{tid}/logs?tail={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "tail={bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("1 to 1000"));
    }
}

#[actix_web::test]
async fn a_config_change_restarts_a_running_container() {
    let app = app("process", &[]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    deploy(&app, &w.owner, tid).await;
    until_status(&app, &w.owner, tid, "running").await;
    let before = pid_of(&app, tid).unwrap();
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/tenants/{tid}/config"),
            Some(json!({"system_prompt": "Be brief."})),
            &[("Authorization", &w.owner)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let restarted = common::eventually(Duration::from_secs(20), || async {
        app.state
            .agents
            .container(tid)
            .is_some_and(|c| c.status.as_str() == "running" && c.pid != Some(before))
    })
    .await;
    assert!(restarted, "a new child runs the new config");
    assert!(gone(before).await);
    assert!(logs(&app, &w.owner, tid, "")
        .await
        .join("\n")
        .contains("Config changed (system_prompt); restarting"));
}

#[actix_web::test]
async fn every_endpoint_follows_its_role_line() {
    let app = app("embedded", &[]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    let mut by_role = Vec::new();
    for role in ["Viewer", "Contributor", "Manager"] {
        let email = format!("{}@example.com", role.to_lowercase());
        let auth = common::new_user(&app, &w.admin, &email).await;
        let (status, body) = post(
            &app,
            &w.owner,
            &format!("/api/tenants/{tid}/members"),
            json!({"email": email, "role": role}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        by_role.push((role, auth));
    }
    let outsider = common::new_user(&app, &w.admin, "outsider@example.com").await;
    let missing = "00000000-0000-4000-8000-000000000000";

    // (method, path suffix, body, minimum role): None = any member.
    let endpoints: [(&str, &str, Value, Option<&str>); 8] = [
        ("GET", "status", Value::Null, None),
        ("GET", "logs", Value::Null, None),
        ("POST", "deploy", json!({}), Some("Manager")),
        ("POST", "restart", json!({}), Some("Manager")),
        ("POST", "stop", json!({}), Some("Manager")),
        ("GET", "pairing-code", Value::Null, Some("Manager")),
        ("POST", "reset-pairing", json!({}), Some("Manager")),
        ("POST", "exec", json!({"command": "zeroclaw help"}), Some("Manager")),
    ];
    let call = |auth: Option<String>, method: &'static str, path: String, body: Value| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                auth.as_deref().map(|a| vec![("Authorization", a)]).unwrap_or_default();
            let m = if method == "GET" { Method::GET } else { Method::POST };
            let body = if body.is_null() { None } else { Some(body) };
            app.call(m, &path, body, &headers).await
        }
    };
    for (method, suffix, body, min) in endpoints.iter().cloned() {
        let path = format!("/api/tenants/{tid}/{suffix}");
        let (status, _) = call(None, method, path.clone(), body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{suffix} without a token");
        let (status, err) = call(Some(outsider.clone()), method, path.clone(), body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{suffix} by a non-member: {err}");
        assert!(err["error"].is_string());
        let (status, _) =
            call(Some(w.owner.clone()), method, format!("/api/tenants/{missing}/{suffix}"), body.clone())
                .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{suffix} of a missing tenant");
        for (role, auth) in &by_role {
            let allowed = match min {
                None => true,
                Some(_) => *role == "Manager",
            };
            let (status, err) = call(Some(auth.clone()), method, path.clone(), body.clone()).await;
            if allowed {
                assert!(
                    status.is_success() || status == StatusCode::CONFLICT,
                    "{suffix} by {role}: {status} {err}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{suffix} by {role}: {err}");
            }
        }
        for auth in [&w.owner, &w.admin] {
            let (status, err) = call(Some(auth.clone()), method, path.clone(), body.clone()).await;
            assert!(
                status.is_success() || status == StatusCode::CONFLICT,
                "{suffix} by owner/admin: {status} {err}"
            );
        }
    }
}

#[actix_web::test]
async fn a_process_runtime_reports_its_childs_resources() {
    let app = app("process", &[("SWITCHBOARD_RESOURCE_SAMPLE_INTERVAL", "200ms")]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    deploy(&app, &w.owner, tid).await;
    until_status(&app, &w.owner, tid, "running").await;
    let path = format!("/api/tenants/{tid}/resources?range=1h");
    let mut last = Value::Null;
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < end {
        let (status, body) = get(&app, &w.owner, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        last = body;
        let c = &last["current"];
        if c["mem_bytes"].as_i64().is_some_and(|m| m > 1_000_000)
            && c["disk_bytes"].as_i64().is_some_and(|d| d > 0)
            && c["cpu_pct"].as_f64().is_some()
            && last["history"].as_array().is_some_and(|h| !h.is_empty())
        {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let c = &last["current"];
    assert!(c["mem_bytes"].as_i64().is_some_and(|m| m > 1_000_000), "the child's resident memory: {last}");
    assert!(c["disk_bytes"].as_i64().is_some_and(|d| d > 0), "its directory holds its log: {last}");
    assert!(c["cpu_pct"].as_f64().is_some_and(|p| p >= 0.0), "{last}");
    let (status, fleet) = get(&app, &w.admin, "/api/monitoring/resources").await;
    assert_eq!(status, StatusCode::OK);
    let mine = fleet.as_array().unwrap().iter().find(|r| r["tenant_id"] == tid).cloned().expect("sampled");
    assert!(mine["pids"].as_i64().is_some_and(|p| p >= 1), "{mine}");
    assert!(mine["mem_bytes"].as_i64().is_some_and(|m| m > 1_000_000), "{mine}");
}

/// `switchboard_tenants{status, runtime}` from `/metrics`.
async fn tenants_gauge(app: &common::TestApp, status: &str, runtime: &str) -> i64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let needle = format!("switchboard_tenants{{status=\"{status}\",runtime=\"{runtime}\"}} ");
    let line =
        text.lines().find(|l| l.starts_with(&needle)).unwrap_or_else(|| panic!("no {needle} in /metrics"));
    line[needle.len()..].trim().parse().unwrap()
}

#[actix_web::test]
async fn metrics_and_the_actors_endpoint_show_the_containers() {
    let app = app("process", &[]).await;
    let w = world(&app).await;
    let tid = w.tenant.as_str();
    let drafts = tenants_gauge(&app, "draft", "embedded").await;
    assert!(drafts >= 1);
    assert_eq!(tenants_gauge(&app, "running", "process").await, 0);
    deploy(&app, &w.owner, tid).await;
    until_status(&app, &w.owner, tid, "running").await;
    let moved = common::eventually(Duration::from_secs(5), || async {
        tenants_gauge(&app, "running", "process").await == 1
    })
    .await;
    assert!(moved, "the gauge follows the recorded state");
    assert_eq!(tenants_gauge(&app, "draft", "embedded").await, drafts - 1);
    assert_eq!(tenants_gauge(&app, "error", "process").await, 0, "every state is listed, even at 0");

    let (status, kinds) = get(&app, &w.admin, "/api/monitoring/actors").await;
    assert_eq!(status, StatusCode::OK, "{kinds}");
    let tenant =
        kinds.as_array().unwrap().iter().find(|k| k["kind"] == "tenant").cloned().expect("tenant actors");
    assert!(tenant["alive"].as_i64().unwrap() >= 1, "{tenant}");
    assert!(tenant["messages_handled"].as_u64().unwrap() >= 1, "{tenant}");
    assert!(tenant["messages_waiting"].as_i64().unwrap() >= 0);
    assert!(tenant["handler_latency_p99_seconds"].as_f64().is_some(), "{tenant}");
    let (status, _) = get(&app, &w.owner, "/api/monitoring/actors").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "super-admin only");
    let (status, _) = app.get("/api/monitoring/actors", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
