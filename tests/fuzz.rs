//! Property-based fuzzing of every operation of `/openapi.json` with
//! schemathesis (scripts/fuzz.py), on the harness's backend (SQLite, or
//! PostgreSQL when `SWITCHBOARD_TEST_DATABASE_URL` is set).
//!
//! The server runs with outbound traffic limited to loopback
//! (`SWITCHBOARD_OUTBOUND_ALLOW`, set by the harness), so that no fuzzed
//! `callback_url`, webhook or provider URL is ever contacted off the machine.
//! Real credentials are made first, through the public API where there is
//! one: a super-admin signs in by one-time code (three sessions: /api, /v1
//! management, and one for logout to revoke); an Escalation API key of the
//! operator tenant (enterprise: no escalation limits); an expert and its token
//! from `POST /experts`; an Agent API key of an active Cerebral of that tenant
//! (as `switchboard admin agent-key` makes it). Each surface is fuzzed with its
//! own credential, with every phase of schemathesis (examples, coverage,
//! fuzzing, stateful) and the checks not_a_server_error,
//! status_code_conformance, content_type_conformance,
//! response_schema_conformance and response_headers_conformance. Nothing is
//! excluded: every operation belongs to a surface, and the script fails if one
//! does not.
//!
//! The test fails, with schemathesis's report, on any failed check or errored
//! request (a timeout included), and prints the figures: operations and cases
//! per surface. `SWITCHBOARD_FUZZ_SEED` and `SWITCHBOARD_FUZZ_EXAMPLES` change
//! the fixed seed and the examples per operation for a longer run by hand.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

const ADMIN: &str = "fuzz-admin@example.com";
/// The CI run: a fixed seed, and few enough examples per operation to take
/// about a minute per backend on two cores.
const SEED: &str = "20261123";
const EXAMPLES: &str = "15";
/// Kills a run that hangs; a whole long run by hand stays far below it.
const DEADLINE: Duration = Duration::from_secs(60 * 60);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join("fuzz.py")
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

#[actix_web::test]
async fn every_operation_answers_as_documented_under_fuzzing() {
    let python = common::receiver::python();
    let app = common::spawn_with_outbox(&[
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
        // Escalations close within seconds, so that a generated long poll
        // (`/wait`, up to 60 s) on a live one ends soon.
        ("SWITCHBOARD_SLA_URGENT", "2s"),
        ("SWITCHBOARD_SLA_STANDARD", "2s"),
        ("SWITCHBOARD_SLA_BATCH", "2s"),
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "1s"),
        // Every sign-in operation comes from one client address: without this
        // they would all be 429 after the first 120. The per-email limit
        // stays, and still answers 429 to generated emails that repeat.
        ("SWITCHBOARD_SIGNIN_LIMIT_PER_CLIENT", "1000000/1m"),
    ])
    .await;

    // A super-admin, Owner of the operator tenant: three sessions.
    let platform_jwt = common::sign_in(&app, ADMIN).await;
    let agent_jwt = common::sign_in(&app, ADMIN).await;
    let logout_jwt = common::sign_in(&app, ADMIN).await;
    let bearer = |h: &str| h.strip_prefix("Bearer ").expect("a Bearer value").to_string();

    let escalation_key = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    let (status, expert) = app
        .post(
            "/experts",
            json!({"name": "Fuzz Expert", "email": "fuzz.expert@example.com", "domains": ["fuzz.all"]}),
            &[("X-API-Key", &escalation_key)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{expert}");
    let expert_token = expert["expert_token"].as_str().expect("expert_token").to_string();
    let (_, agent_key) =
        switchboard::identity::accounts::new_operator_cerebral(&app.state.store, "fuzz").await.unwrap();

    // Every credential works before the run: a run whose credentials fail
    // would test nothing but authentication.
    for (path, header, value) in [
        ("/auth/usage", "X-API-Key", escalation_key.clone()),
        ("/experts/me", "X-Expert-Token", expert_token.clone()),
        ("/v1/rate-limits", "X-API-Key", agent_key.clone()),
        ("/v1/cerebrals", "Authorization", agent_jwt.clone()),
        ("/api/users", "Authorization", platform_jwt.clone()),
        ("/api/auth/me", "Authorization", logout_jwt.clone()),
    ] {
        let (status, body) = app.get(path, &[(header, &value)]).await;
        assert_eq!(status, StatusCode::OK, "{path} with {header}: {body}");
    }

    let credentials = app.dir.path().join("fuzz-credentials.json");
    std::fs::write(
        &credentials,
        serde_json::to_vec(&json!({
            "escalation_key": escalation_key,
            "expert_token": expert_token,
            "agent_key": agent_key,
            "agent_jwt": bearer(&agent_jwt),
            "platform_jwt": bearer(&platform_jwt),
            "logout_jwt": bearer(&logout_jwt),
        }))
        .unwrap(),
    )
    .unwrap();

    let backend = if app.db.is_postgres() { "postgres" } else { "sqlite" };
    let seed = setting("SWITCHBOARD_FUZZ_SEED", SEED);
    let examples = setting("SWITCHBOARD_FUZZ_EXAMPLES", EXAMPLES);
    let args = vec![
        app.address.clone(),
        credentials.display().to_string(),
        "--seed".into(),
        seed.clone(),
        "--max-examples".into(),
        examples.clone(),
        "--workers".into(),
        "2".into(),
        "--report-dir".into(),
        app.dir.path().join("reports").display().to_string(),
    ];
    let dir = app.dir.path().to_path_buf();
    let started = Instant::now();
    let run = actix_web::rt::task::spawn_blocking(move || {
        common::run_python_script(&python, &script(), &args, &dir, DEADLINE)
    })
    .await
    .expect("the fuzz runner panicked");
    let report = format!("--- stdout ---\n{}\n--- stderr ---\n{}", run.stdout, run.stderr);
    match run.status {
        None => panic!("scripts/fuzz.py did not finish within {DEADLINE:?}\n{report}"),
        Some(status) => assert!(status.success(), "fuzzing on {backend} failed ({status})\n{report}"),
    }
    assert!(run.stdout.contains("problems: 0"), "fuzz.py exited 0 without its summary\n{report}");
    let total = run.stdout.lines().find(|l| l.starts_with("total: ")).expect("a total line").to_string();
    let cases: u64 = total
        .split(", ")
        .find_map(|part| part.strip_prefix("cases "))
        .and_then(|n| n.parse().ok())
        .expect("a case count");
    assert!(cases > 0, "{report}");

    println!(
        "fuzzing on {backend}, seed {seed}, {examples} examples per operation, {:.0} s:",
        started.elapsed().as_secs_f64()
    );
    for line in run.stdout.lines().filter(|l| l.starts_with("surface ") || l.starts_with("total: ")) {
        println!("  {line}");
    }
}
