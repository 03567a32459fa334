//! `/metrics` read with a real Prometheus text parser (the Python
//! `prometheus_client` package, installed by scripts/test-all.sh): after a
//! scripted lifecycle — routed, accepted, resolved, declined, reassigned, a
//! missed reservation, an expiry, webhook deliveries that succeed and fail —
//! every family of the routing, actor, webhook, store, HTTP and tenant groups
//! is present, and every counter and histogram among them has moved. A
//! commit the database refuses (a trigger injects the fault) moves
//! `switchboard_store_failed_batches_total` and is never acknowledged.

mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::collections::BTreeMap;
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use esc::Api;
use reqwest::StatusCode;
use serde_json::json;

/// Every sample of the scrape: `name{labels}` → value, parsed by `prometheus_client`.
async fn scrape(app: &common::TestApp) -> BTreeMap<String, f64> {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let file = app.dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let python = common::receiver::python();
    let script = "import json, sys\n\
                  from prometheus_client.parser import text_string_to_metric_families\n\
                  out = {}\n\
                  for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
                  \x20   for s in fam.samples:\n\
                  \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
                  \x20       out[f'{s.name}{{{labels}}}'] = s.value\n\
                  print(json.dumps(out))\n";
    let out =
        std::process::Command::new(python).arg("-c").arg(script).arg(&file).output().expect("run python");
    assert!(
        out.status.success(),
        "prometheus_client cannot parse /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The sum of the samples named `name` whose labels contain every `label`.
fn total(m: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    m.iter()
        .filter(|(k, _)| {
            k.split_once('{').is_some_and(|(n, l)| n == name && labels.iter().all(|x| l.contains(x)))
        })
        .map(|(_, v)| v)
        .sum()
}

fn present(m: &BTreeMap<String, f64>, name: &str) -> bool {
    m.keys().any(|k| k.split_once('{').is_some_and(|(n, _)| n == name))
}

#[actix_web::test]
async fn every_family_moves_through_a_scripted_lifecycle() {
    let app = common::spawn_with_outbox(&[
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "300ms"),
        ("SWITCHBOARD_SLA_URGENT", "3s"),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "50ms,50ms"),
    ])
    .await;
    let api = Api::of(&app);
    let before = scrape(&app).await;
    let key = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    let key = key.as_str();
    let ok = Receiver::start(Behaviour::Ok);
    let failing = Receiver::start(Behaviour::Always(500));

    // Routed, accepted, resolved, with a delivered callback.
    let e1 = api.expert(key, "One", &["metrics.flow"], 1).await;
    let body = json!({"domain": "metrics.flow", "query": "q1", "priority": "standard", "callback_url": ok.url("/hook")});
    let c1 = api.create(key, body).await["id"].as_str().unwrap().to_string();
    api.until_status(key, &c1, "routed", Some(&e1.id)).await;
    let (status, _) = api.accept(&e1.token, &c1).await;
    assert_eq!(status, StatusCode::OK);
    api.resolve(&e1.token, &c1).await;
    assert!(common::eventually(Duration::from_secs(10), || async { ok.count() >= 1 }).await, "delivered");

    // Declined by one expert, reassigned to another, who lets the reservation lapse.
    let e2 = api.expert(key, "Two", &["metrics.flow"], 1).await;
    let c2 = api.case(key, "metrics.flow", "standard").await;
    let first = api.until_routed(key, &c2).await;
    let (decliner, other) = if first == e1.id { (&e1, &e2) } else { (&e2, &e1) };
    let (status, _) = api.decline(&decliner.token, &c2, "too_busy").await;
    assert_eq!(status, StatusCode::OK);
    api.until_status(key, &c2, "routed", Some(&other.id)).await;
    // The reservation (300 ms) lapses; with both experts out of the running it waits in the queue.
    api.until_status(key, &c2, "pending", None).await;

    // An urgent case nobody serves waits in its queue (the gauge is published
    // every 500 ms), then expires (3 s SLA).
    let c3 = api.case(key, "metrics.nobody", "urgent").await;
    let queued = common::eventually(Duration::from_secs(3), || async {
        let m = scrape(&app).await;
        total(&m, "switchboard_routing_queue_depth", &["domain=metrics.nobody", "priority=urgent"]) >= 1.0
    })
    .await;
    assert!(queued, "queue depth per domain and priority");
    api.until_status(key, &c3, "expired", None).await;

    // A callback that always fails: attempts, retries, then failed.
    let e3 = api.expert(key, "Three", &["metrics.fail"], 1).await;
    let body = json!({"domain": "metrics.fail", "query": "q4", "callback_url": failing.url("/hook")});
    let c4 = api.create(key, body).await["id"].as_str().unwrap().to_string();
    api.until_status(key, &c4, "routed", Some(&e3.id)).await;
    api.resolve(&e3.token, &c4).await;
    let failed = common::eventually(Duration::from_secs(15), || async {
        total(&scrape(&app).await, "switchboard_webhook_failures_total", &[]) >= 1.0
    })
    .await;
    assert!(failed, "the failing callback is marked failed after its retries");

    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[&str]| {
        let (b, a) = (total(&before, name, labels), total(&after, name, labels));
        assert!(a > b, "{name}{labels:?} did not move: {b} → {a}");
    };
    // HTTP by surface, route and status, with latency.
    moved("switchboard_http_requests_total", &["surface=escalation", "status=201"]);
    moved("switchboard_http_request_duration_seconds_count", &["surface=escalation"]);
    // Routing.
    moved("switchboard_routing_assignments_total", &[]);
    moved("switchboard_routing_declines_total", &[]);
    moved("switchboard_routing_reassignments_total", &[]);
    moved("switchboard_routing_reservation_timeouts_total", &[]);
    moved("switchboard_routing_time_to_route_seconds_count", &[]);
    moved("switchboard_escalations_created_total", &[]);
    moved("switchboard_escalations_resolved_total", &[]);
    moved("switchboard_escalations_expired_total", &[]);
    moved("switchboard_escalation_resolution_seconds_count", &[]);
    assert!(present(&after, "switchboard_routing_queue_depth"));
    // Actors, per kind.
    for kind in ["escalation", "expert"] {
        moved("switchboard_actor_messages_handled_total", &[&format!("kind={kind}")]);
        moved("switchboard_actor_handler_seconds_count", &[&format!("kind={kind}")]);
        assert!(total(&after, "switchboard_actors_alive", &[&format!("kind={kind}")]) >= 1.0, "{kind} alive");
        assert!(present(&after, "switchboard_actor_mailbox_depth"), "mailbox depth");
    }
    // Webhooks.
    moved("switchboard_webhook_attempts_total", &[]);
    moved("switchboard_webhook_deliveries_total", &[]);
    moved("switchboard_webhook_failures_total", &[]);
    moved("switchboard_webhook_attempt_seconds_count", &[]);
    assert!(present(&after, "switchboard_webhook_retry_queue"), "retry queue depth");
    assert!(present(&after, "switchboard_webhook_circuit_state"), "per-endpoint circuit state");
    // Store.
    moved("switchboard_store_batch_writes_count", &[]);
    moved("switchboard_store_commit_seconds_count", &[]);
    // Tenants by runtime state: the operator tenant runs on the embedded runtime.
    assert!(total(&after, "switchboard_tenants", &["status=running", "runtime=embedded"]) >= 1.0);
    assert!(present(&after, "process_resident_memory_bytes"));

    // Every family exported is in the catalogue with its kind and a HELP line.
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split_whitespace().skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        let known =
            catalogue(name).unwrap_or_else(|| panic!("{name} is exported but not in telemetry::METRICS"));
        assert_eq!(format!("{:?}", known.kind).to_lowercase(), kind, "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP line");
    }
}

fn catalogue(name: &str) -> Option<&'static switchboard::telemetry::MetricFamily> {
    switchboard::telemetry::METRICS.iter().find(|f| f.name == name)
}

#[actix_web::test]
async fn counters_without_labels_start_at_zero() {
    use switchboard::telemetry::{MetricKind, METRICS};
    let app = common::spawn_app().await;
    let m = scrape(&app).await;
    for f in METRICS.iter().filter(|f| f.kind == MetricKind::Counter && f.labels.is_empty()) {
        assert!(
            m.contains_key(&format!("{}{{}}", f.name)),
            "{} is not exported before its first event",
            f.name
        );
    }
}

#[test]
fn the_readme_lists_every_metric_family_with_its_labels() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for f in switchboard::telemetry::METRICS {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}`", f.name)))
            .unwrap_or_else(|| panic!("README has no metrics table row for {}", f.name));
        for label in f.labels {
            assert!(row.contains(&format!("`{label}`")), "README row of {} lacks label {label}", f.name);
        }
    }
}

/// Makes the database refuse every new escalation whose query is `query`,
/// as a full disk or a broken constraint would: a fault injected below the
/// Store, which only sees its commit fail.
fn refuse_escalations(app: &common::TestApp, query: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    if app.db.is_postgres() {
        let mut conn = diesel::PgConnection::establish(&app.db.url).expect("connect to the test database");
        conn.batch_execute(&format!(
            "CREATE FUNCTION refuse_escalation() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_escalation BEFORE INSERT ON escalations FOR EACH ROW \
             WHEN (NEW.query = '{query}') EXECUTE FUNCTION refuse_escalation();"
        ))
        .expect("install the trigger");
    } else {
        let path = app.db.url.strip_prefix("sqlite://").expect("a sqlite:// URL");
        let mut conn = diesel::SqliteConnection::establish(path).expect("open the test database");
        conn.batch_execute(&format!(
            "CREATE TRIGGER refuse_escalation BEFORE INSERT ON escalations \
             WHEN NEW.query = '{query}' BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
        ))
        .expect("install the trigger");
    }
}

#[actix_web::test]
async fn a_batch_the_database_refuses_is_counted_and_never_acknowledged() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let key = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    let key = key.as_str();
    refuse_escalations(&app, "refused by the database");
    let before = scrape(&app).await;

    let body = json!({"domain": "metrics.fault", "query": "refused by the database", "priority": "batch"});
    let resp =
        app.client.post(app.url("/escalations")).header("X-API-Key", key).json(&body).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_server_error(), "a refused commit is not acknowledged: {status} {text}");
    assert!(!text.contains("injected fault"), "the database's message stays in the log: {text}");
    // Nothing of it is visible, and the next write goes through.
    let listed = app.client.get(app.url("/escalations")).header("X-API-Key", key).send().await.unwrap();
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert!(!listed.to_string().contains("metrics.fault"), "the refused case was not stored: {listed}");
    api.case(key, "metrics.fault", "batch").await;

    let after = scrape(&app).await;
    let (b, a) = (
        total(&before, "switchboard_store_failed_batches_total", &[]),
        total(&after, "switchboard_store_failed_batches_total", &[]),
    );
    assert_eq!(a - b, 1.0, "one failed batch: {b} → {a}");
}
