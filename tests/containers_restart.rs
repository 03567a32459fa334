//! The real server binary with the `process` runtime, killed with SIGKILL and
//! started again on the same database: a running tenant's child does not
//! outlive the server, and the restarted server brings the tenant back to
//! `running` with a new child; a stopped tenant stays stopped.

#[path = "common/child.rs"]
#[allow(dead_code)] // each test file uses a different part
mod child;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::path::Path;
use std::time::{Duration, Instant};

use child::ChildServer as Server;
use esc::Api;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN: &str = "ops@example.com";

/// The last 6-digit code mailed to `to` in `outbox`.
fn last_code(outbox: &Path, to: &str) -> String {
    let mut names: Vec<_> =
        std::fs::read_dir(outbox).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let mail = names
        .into_iter()
        .rev()
        .filter_map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).ok()?).ok())
        .find(|m| m["to"] == to)
        .unwrap_or_else(|| panic!("no mail to {to}"));
    let text = mail["text"].as_str().unwrap();
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_string()
}

async fn sign_in(api: &Api, outbox: &Path) -> String {
    let (status, _) = api.post("/api/auth/otp/request", json!({"email": ADMIN}), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let code = last_code(outbox, ADMIN);
    let (status, body) = api.post("/api/auth/otp/verify", json!({"email": ADMIN, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    format!("Bearer {}", body["token"].as_str().unwrap())
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

/// The child's pid as `zeroclaw status` reports it, once the tenant runs.
async fn running_pid(api: &Api, auth: &str, tid: &str) -> u32 {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api.get(&format!("/api/tenants/{tid}/status"), &[("Authorization", auth)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == "running" {
            assert!(body["port"].as_u64().is_some(), "{body}");
            let (status, out) = api
                .post(
                    &format!("/api/tenants/{tid}/exec"),
                    json!({"command": "zeroclaw status"}),
                    &[("Authorization", auth)],
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{out}");
            let text = out["output"].as_str().unwrap();
            let pid = text.split("pid ").nth(1).and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next());
            return pid.and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no pid in {text}"));
        }
        assert!(Instant::now() < end, "tenant {tid} never ran again: {body}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn running_tenants_run_again_after_a_server_restart_and_no_child_outlives_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    let outbox = dir.path().join("outbox");
    let mail = format!("file:{}", outbox.display());
    let data = dir.path().join("data").display().to_string();
    let env = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_DATA_DIR", data.as_str()),
        ("SWITCHBOARD_MAIL", mail.as_str()),
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
        ("SWITCHBOARD_TENANT_RUNTIME", "process"),
    ];

    // ---- first life ----
    let server = Server::start(dir.path(), &env);
    let api = server.ready().await;
    let auth = sign_in(&api, &outbox).await;
    let mut tenants = Vec::new();
    for name in ["Runs", "Stopped"] {
        let (status, t) = api.post("/api/tenants", json!({"name": name}), &[("Authorization", &auth)]).await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        let tid = t["id"].as_str().unwrap().to_string();
        let (status, _) =
            api.post(&format!("/api/tenants/{tid}/deploy"), json!({}), &[("Authorization", &auth)]).await;
        assert_eq!(status, StatusCode::OK);
        tenants.push(tid);
    }
    let (runs, stopped) = (tenants[0].clone(), tenants[1].clone());
    let first = running_pid(&api, &auth, &runs).await;
    let other = running_pid(&api, &auth, &stopped).await;
    let (status, _) =
        api.post(&format!("/api/tenants/{stopped}/stop"), json!({}), &[("Authorization", &auth)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!alive(other));
    assert!(alive(first));

    server.kill();
    // The child reads end-of-file on its stdin and exits.
    let end = Instant::now() + Duration::from_secs(10);
    while alive(first) {
        assert!(Instant::now() < end, "the child {first} outlived its server");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }

    // ---- second life ----
    let server = Server::start(dir.path(), &env);
    let api = server.ready().await;
    let auth = sign_in(&api, &outbox).await;
    let second = running_pid(&api, &auth, &runs).await;
    assert_ne!(second, first);
    assert!(alive(second));
    let (status, body) =
        api.get(&format!("/api/tenants/{stopped}/status"), &[("Authorization", &auth)]).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "stopped", "uptime": null, "port": null})));
    let (status, logs) =
        api.get(&format!("/api/tenants/{runs}/logs?tail=1000"), &[("Authorization", &auth)]).await;
    assert_eq!(status, StatusCode::OK);
    let text = logs.as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert_eq!(text.matches("Agent started").count(), 2, "the log spans both lives: {text}");
    server.kill();
    let end = Instant::now() + Duration::from_secs(10);
    while alive(second) {
        assert!(Instant::now() < end, "the child {second} outlived its server");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}
