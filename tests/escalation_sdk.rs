//! The real `cerolabs` 0.1.0 Python SDK, unchanged, against the Escalation API:
//! `tests/sdk/cerolabs_check.py` drives every call it makes (but `usage()`)
//! while an expert resolves a case through the portal. The Python that has the
//! SDK installed is named by `SWITCHBOARD_TEST_PYTHON` (`scripts/test-all.sh`
//! installs `cerolabs==0.1.0` into it and sets it).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

/// The script's own waits add up to well under a minute; this only stops a hung run.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(240);

fn python() -> String {
    match std::env::var("SWITCHBOARD_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "SWITCHBOARD_TEST_PYTHON is not set: this test needs a Python with cerolabs==0.1.0 installed. \
             Run it through scripts/test-all.sh, or e.g. \
             `python3 -m venv /tmp/sbvenv && /tmp/sbvenv/bin/pip install cerolabs==0.1.0` and then \
             `SWITCHBOARD_TEST_PYTHON=/tmp/sbvenv/bin/python cargo test --test escalation_sdk`"
        ),
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("sdk").join("cerolabs_check.py")
}

#[actix_web::test]
async fn the_cerolabs_python_sdk_works_unchanged() {
    let python = python();
    let app = common::spawn_app().await;

    let (status, reg) =
        app.post("/auth/register", json!({"name": "SDK Agent", "email": "sdk-agent@example.com"}), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    let api_key = reg["api_key"].as_str().expect("api_key").to_string();
    let tenant_id = reg["tenant_id"].as_str().expect("tenant_id").to_string();
    assert!(api_key.starts_with("cero_"), "{reg}");

    let (status, expert) = app
        .post(
            "/experts",
            json!({
                "name": "Dr. Alice Chen",
                "email": "alice.chen@example.com",
                "domains": ["healthcare.rcm"],
                "max_concurrent": 5,
            }),
            &[("X-API-Key", &api_key)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{expert}");
    let token = expert["expert_token"].as_str().expect("expert_token").to_string();
    assert!(token.starts_with("exp_"), "{expert}");

    let args = vec![app.address.clone(), api_key, token, tenant_id];
    let dir = app.dir.path().to_path_buf();
    let run = actix_web::rt::task::spawn_blocking(move || {
        common::run_python_script(&python, &script(), &args, &dir, SCRIPT_DEADLINE)
    })
    .await
    .expect("the script runner panicked");

    let report = format!("--- stdout ---\n{}\n--- stderr ---\n{}", run.stdout, run.stderr);
    match run.status {
        None => panic!("cerolabs_check.py did not finish within {SCRIPT_DEADLINE:?}\n{report}"),
        Some(status) => assert!(status.success(), "cerolabs_check.py failed ({status})\n{report}"),
    }
    assert!(
        run.stdout.contains("all cerolabs SDK checks passed"),
        "cerolabs_check.py exited 0 without finishing its checks\n{report}"
    );
}
