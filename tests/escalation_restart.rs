//! The real server binary, killed with SIGKILL in the middle of work and
//! restarted on the same database: every acknowledged case comes back in the
//! state it was in, the queues and capacity are rebuilt, tokens still work,
//! and the reservation and SLA timers resume.

#[path = "common/child.rs"]
#[allow(dead_code)] // each test file uses a different part
mod child;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::time::Duration;

use child::ChildServer as Server;
use esc::Api;
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[actix_web::test]
async fn acknowledged_cases_survive_sigkill_and_their_timers_resume() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    // Reservation = 20% of the SLA: 1h standard cases stay routed; a batch case
    // (30 s SLA) has 6 s to be accepted; an urgent case expires 8 s after creation.
    let env = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_SLA_URGENT", "8s"),
        ("SWITCHBOARD_SLA_STANDARD", "1h"),
        ("SWITCHBOARD_SLA_BATCH", "30s"),
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "20%"),
    ];

    // ---- first life ----
    let mut server = Server::start(dir.path(), &env);
    let api = Api::at_port(server.port);
    server.wait_ready(&api, Duration::from_secs(30)).await;
    let t = api.register("durable").await;
    let key = t.key.as_str();
    let e1 = api.expert(key, "Main", &["restart.main"], 2).await;

    let resolved = api.case(key, "restart.main", "standard").await;
    api.until_status(key, &resolved, "routed", Some(&e1.id)).await;
    let (status, body) = api
        .resolve_with(
            &e1.token,
            &resolved,
            json!({"answer": {"verdict": "approve"}, "confidence": 0.8, "reasoning": "fine"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = api.feedback(key, &resolved, 0.8).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Declined by the only expert of its domain: it waits, never to be offered to them again.
    let e4 = api.expert(key, "Decliner", &["restart.declined"], 3).await;
    let declined = api.case(key, "restart.declined", "standard").await;
    api.until_status(key, &declined, "routed", Some(&e4.id)).await;
    let (status, body) = api.decline(&e4.token, &declined, "conflict_of_interest").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.until_status(key, &declined, "pending", None).await;

    let routed = api.case(key, "restart.main", "standard").await;
    api.until_status(key, &routed, "routed", Some(&e1.id)).await;
    let in_review = api.case(key, "restart.main", "standard").await;
    api.until_status(key, &in_review, "routed", Some(&e1.id)).await;
    let (status, body) = api.accept(&e1.token, &in_review).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // E1 is full: this one waits in the queue.
    let queued = api.case(key, "restart.main", "standard").await;

    let cancelled = api.case(key, "restart.none", "standard").await;
    let (status, body) =
        api.post_empty(&format!("/escalations/{cancelled}/cancel"), &[("X-API-Key", key)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Accepted: no reservation clock runs on it any more, before or after the restart.
    let e5 = api.expert(key, "Reviewer", &["restart.review"], 3).await;
    let accepted_batch = api.case(key, "restart.review", "batch").await;
    api.until_status(key, &accepted_batch, "routed", Some(&e5.id)).await;
    let (status, body) = api.accept(&e5.token, &accepted_batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let e2 = api.expert(key, "Batch one", &["restart.batch"], 3).await;
    let e3 = api.expert(key, "Batch two", &["restart.batch"], 3).await;
    let urgent = api.case(key, "restart.none", "urgent").await;
    let batch = api.case(key, "restart.batch", "batch").await;
    let holder = api.until_routed(key, &batch).await;
    let (holder, next) = if holder == e2.id { (&e2, &e3) } else { (&e3, &e2) };

    let stable = [&resolved, &routed, &in_review, &queued, &cancelled, &declined];
    let mut before = Vec::new();
    for id in stable {
        before.push(api.detail(key, id).await);
    }
    assert_eq!(before[2]["status"], "in_review");
    assert_eq!(before[3]["status"], "pending", "queued behind E1's capacity: {}", before[3]);
    assert_eq!(api.detail(key, &urgent).await["status"], "pending");

    server.signal(Signal::SIGKILL);
    server.child.wait().unwrap();
    drop(server);

    // ---- second life, same database ----
    let server = Server::start(dir.path(), &env);
    let api = Api::at_port(server.port);
    server.wait_ready(&api, Duration::from_secs(30)).await;

    let (status, list) = api.get("/escalations", &[("X-API-Key", key)]).await;
    assert_eq!(status, StatusCode::OK, "the API key survived: {list}");
    assert_eq!(list.as_array().unwrap().len(), 9, "every acknowledged case is there: {list}");
    for (id, was) in stable.iter().zip(&before) {
        let now = api.detail(key, id).await;
        assert_eq!(&now, was, "escalation {id} came back as it was");
    }
    assert_eq!(before[0]["resolution"]["answer"], json!({"verdict": "approve"}));
    let u = api.detail(key, &urgent).await;
    assert!(u["status"] == "pending" || u["status"] == "expired", "{u}");

    // The expert token still works, and the profile is intact.
    let (status, me) = api.get("/experts/me", &[("X-Expert-Token", &e1.token)]).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], e1.id.as_str());
    assert_eq!(me["resolution_count"], 1);
    assert!(esc::close(&me["quality_score"], 0.8), "{me}");
    assert!(esc::close(&before[0]["feedback"]["score"], 0.8));
    let mut mine = api.my_case_ids(&e1.token).await;
    mine.sort();
    let mut want = vec![resolved.clone(), routed.clone(), in_review.clone()];
    want.sort();
    assert_eq!(mine, want);

    // Capacity was rebuilt: E1 still holds two cases, so the queued one waits...
    api.stays(key, &queued, Duration::from_millis(300), "pending", |d| d["status"] == "pending").await;
    // ...until the in-review case is resolved by its expert.
    let body = api.resolve(&e1.token, &in_review).await;
    assert_eq!(body["status"], "resolved");
    api.until_status(key, &queued, "routed", Some(&e1.id)).await;
    let body = api.resolve(&e1.token, &routed).await;
    assert_eq!(body["status"], "resolved");
    let (status, body) = api.accept(&e1.token, &queued).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The decline was remembered: the decliner has room, but never gets it back.
    api.stays(key, &declined, Duration::from_millis(300), "pending", |d| d["status"] == "pending").await;
    let fresh = api.case(key, "restart.declined", "standard").await;
    api.until_status(key, &fresh, "routed", Some(&e4.id)).await;
    api.stays(key, &declined, Duration::from_millis(300), "pending", |d| d["status"] == "pending").await;

    // The batch case's reservation runs out after the restart: it moves to the other expert.
    let moved = api
        .detail_until(key, &batch, Duration::from_secs(20), "routed to the next expert", |d| {
            d["status"] == "routed" && d["expert_id"] == next.id.as_str()
        })
        .await;
    assert_eq!(moved["priority"], "batch");
    let (status, body) = api.accept(&holder.token, &batch).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the first holder lost it: {body}");

    // By now the accepted batch case is past its reservation time: still in review.
    let d = api.detail(key, &accepted_batch).await;
    assert_eq!(
        (d["status"].as_str(), d["expert_id"].as_str()),
        (Some("in_review"), Some(e5.id.as_str())),
        "{d}"
    );

    // The urgent case's SLA passes after the restart.
    let expired = api
        .detail_until(key, &urgent, Duration::from_secs(20), "expired", |d| d["status"] == "expired")
        .await;
    assert_eq!(expired["resolution"], Value::Null);
    drop(server);
}
