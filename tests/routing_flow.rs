//! The routing engine end to end, through the HTTP API (DESIGN "Routing"):
//! domains, capacity, status, queue draining, priority order, ranking,
//! tenant isolation, reservation timeouts and SLA expiry.

mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::time::Duration;

use esc::Api;
use reqwest::StatusCode;
use serde_json::json;

async fn operator_key(app: &common::TestApp) -> String {
    switchboard::identity::accounts::new_operator_key(&app.state.store).await.expect("an operator key")
}

/// A short window in which something must NOT happen.
const QUIET: Duration = Duration::from_millis(300);

#[actix_web::test]
async fn cases_go_only_to_experts_of_their_domain() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("domains").await;
    let lawyer = api.expert(&t.key, "Lawyer", &["legal.contracts"], 3).await;
    let coder = api.expert(&t.key, "Coder", &["healthcare.rcm", "healthcare.clinical"], 3).await;

    let mut health = Vec::new();
    for domain in ["healthcare.rcm", "healthcare.clinical", "healthcare.rcm"] {
        let id = api.case(&t.key, domain, "standard").await;
        api.until_status(&t.key, &id, "routed", Some(&coder.id)).await;
        health.push(id);
    }
    // The coder is full, the lawyer has room, but not the domain.
    let waiting = api.case(&t.key, "healthcare.rcm", "urgent").await;
    let nobody = api.case(&t.key, "finance.tax", "urgent").await;
    api.stays(&t.key, &waiting, QUIET, "pending", |d| d["status"] == "pending").await;
    assert_eq!(api.detail(&t.key, &nobody).await["status"], "pending");
    assert!(api.my_case_ids(&lawyer.token).await.is_empty(), "the lawyer never gets a healthcare case");

    let contract = api.case(&t.key, "legal.contracts", "standard").await;
    api.until_status(&t.key, &contract, "routed", Some(&lawyer.id)).await;
    assert_eq!(api.my_case_ids(&lawyer.token).await, vec![contract.clone()]);

    // A domain taken away is no longer routed to the expert.
    api.patch_expert(&t.key, &lawyer.id, json!({"domains": ["legal.compliance"]})).await;
    let later = api.case(&t.key, "legal.contracts", "standard").await;
    api.stays(&t.key, &later, QUIET, "pending", |d| d["status"] == "pending").await;
}

#[actix_web::test]
async fn capacity_holds_the_next_case_until_one_is_resolved_or_cancelled() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("capacity").await;
    let e = api.expert(&t.key, "Single", &["finance.tax"], 1).await;
    let first = api.case(&t.key, "finance.tax", "standard").await;
    api.until_status(&t.key, &first, "routed", Some(&e.id)).await;
    let second = api.case(&t.key, "finance.tax", "standard").await;
    let third = api.case(&t.key, "finance.tax", "standard").await;
    api.stays(&t.key, &second, QUIET, "pending", |d| d["status"] == "pending").await;
    assert_eq!(api.detail(&t.key, &third).await["status"], "pending");
    assert_eq!(api.my_case_ids(&e.token).await, vec![first.clone()]);
    // Capacity is tracked apart from the status the expert sets.
    assert_eq!(api.expert_profile(&t.key, &e.id).await["status"], "available");

    // Accepting does not free the slot.
    let (status, _) = api.accept(&e.token, &first).await;
    assert_eq!(status, StatusCode::OK);
    api.stays(&t.key, &second, QUIET, "pending", |d| d["status"] == "pending").await;

    // A resolution frees it: the next case in line is routed.
    api.resolve(&e.token, &first).await;
    api.until_status(&t.key, &second, "routed", Some(&e.id)).await;
    assert_eq!(api.detail(&t.key, &third).await["status"], "pending");

    // So does a cancellation of the routed case.
    let (status, body) =
        api.post_empty(&format!("/escalations/{second}/cancel"), &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.until_status(&t.key, &third, "routed", Some(&e.id)).await;
}

#[actix_web::test]
async fn busy_and_offline_experts_get_nothing_until_available_again() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("status").await;
    let e = api.expert(&t.key, "Moody", &["legal.compliance"], 3).await;

    api.patch_expert(&t.key, &e.id, json!({"status": "busy"})).await;
    let a = api.case(&t.key, "legal.compliance", "standard").await;
    api.stays(&t.key, &a, QUIET, "pending", |d| d["status"] == "pending").await;
    api.patch_expert(&t.key, &e.id, json!({"status": "offline"})).await;
    let b = api.case(&t.key, "legal.compliance", "standard").await;
    api.stays(&t.key, &b, QUIET, "pending", |d| d["status"] == "pending").await;
    assert_eq!(api.detail(&t.key, &a).await["status"], "pending");

    api.patch_expert(&t.key, &e.id, json!({"status": "available"})).await;
    api.until_status(&t.key, &a, "routed", Some(&e.id)).await;
    api.until_status(&t.key, &b, "routed", Some(&e.id)).await;

    // The same through the portal.
    let (status, _) =
        api.patch("/experts/me", json!({"status": "offline"}), &[("X-Expert-Token", &e.token)]).await;
    assert_eq!(status, StatusCode::OK);
    let c = api.case(&t.key, "legal.compliance", "standard").await;
    api.stays(&t.key, &c, QUIET, "pending", |d| d["status"] == "pending").await;
    let (status, _) =
        api.patch("/experts/me", json!({"status": "available"}), &[("X-Expert-Token", &e.token)]).await;
    assert_eq!(status, StatusCode::OK);
    api.until_status(&t.key, &c, "routed", Some(&e.id)).await;

    // Going busy keeps the cases already assigned.
    api.patch_expert(&t.key, &e.id, json!({"status": "busy"})).await;
    api.stays(&t.key, &a, QUIET, "routed to the expert", |d| {
        d["status"] == "routed" && d["expert_id"] == e.id.as_str()
    })
    .await;
    let body = api.resolve(&e.token, &a).await;
    assert_eq!(body["status"], "resolved");
}

#[actix_web::test]
async fn a_new_expert_drains_the_queue() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("drain").await;
    let a = api.case(&t.key, "insurance.claims", "standard").await;
    let b = api.case(&t.key, "insurance.claims", "batch").await;
    let c = api.case(&t.key, "insurance.underwriting", "standard").await;
    api.stays(&t.key, &a, QUIET, "pending", |d| d["status"] == "pending").await;

    let e = api.expert(&t.key, "Newcomer", &["insurance.claims"], 3).await;
    api.until_status(&t.key, &a, "routed", Some(&e.id)).await;
    api.until_status(&t.key, &b, "routed", Some(&e.id)).await;
    assert_eq!(api.detail(&t.key, &c).await["status"], "pending", "another domain");

    // Adding a domain to an expert drains that domain's queue too.
    api.patch_expert(&t.key, &e.id, json!({"domains": ["insurance.claims", "insurance.underwriting"]})).await;
    api.until_status(&t.key, &c, "routed", Some(&e.id)).await;
}

#[actix_web::test]
async fn raising_max_concurrent_drains_the_queue() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("raise").await;
    let e = api.expert(&t.key, "Grower", &["security.incident"], 1).await;
    let a = api.case(&t.key, "security.incident", "standard").await;
    api.until_status(&t.key, &a, "routed", Some(&e.id)).await;
    let b = api.case(&t.key, "security.incident", "standard").await;
    let c = api.case(&t.key, "security.incident", "standard").await;
    api.stays(&t.key, &b, QUIET, "pending", |d| d["status"] == "pending").await;

    api.patch_expert(&t.key, &e.id, json!({"max_concurrent": 2})).await;
    api.until_status(&t.key, &b, "routed", Some(&e.id)).await;
    api.stays(&t.key, &c, QUIET, "pending", |d| d["status"] == "pending").await;
    api.patch_expert(&t.key, &e.id, json!({"max_concurrent": 3})).await;
    api.until_status(&t.key, &c, "routed", Some(&e.id)).await;
}

#[actix_web::test]
async fn queued_cases_are_routed_urgent_then_standard_then_batch() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("priority").await;
    let batch = api.case(&t.key, "hr.employment", "batch").await;
    let standard = api.case(&t.key, "hr.employment", "standard").await;
    let urgent = api.case(&t.key, "hr.employment", "urgent").await;

    let e = api.expert(&t.key, "One at a time", &["hr.employment"], 1).await;
    api.until_status(&t.key, &urgent, "routed", Some(&e.id)).await;
    assert_eq!(api.detail(&t.key, &standard).await["status"], "pending");
    assert_eq!(api.detail(&t.key, &batch).await["status"], "pending");

    api.resolve(&e.token, &urgent).await;
    api.until_status(&t.key, &standard, "routed", Some(&e.id)).await;
    assert_eq!(api.detail(&t.key, &batch).await["status"], "pending");

    api.resolve(&e.token, &standard).await;
    api.until_status(&t.key, &batch, "routed", Some(&e.id)).await;
}

#[actix_web::test]
async fn the_expert_with_the_higher_quality_score_gets_the_next_case() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("ranking").await;
    let d = "engineering.code_review";
    let weak = api.expert(&t.key, "Weak", &[d], 3).await;
    let strong = api.expert(&t.key, "Strong", &[d], 3).await;

    // Quality through feedback: one case each, while the other is busy.
    api.patch_expert(&t.key, &strong.id, json!({"status": "busy"})).await;
    api.rate_through_case(&t.key, &weak, d, 0.2).await;
    api.patch_expert(&t.key, &strong.id, json!({"status": "available"})).await;
    api.patch_expert(&t.key, &weak.id, json!({"status": "busy"})).await;
    api.rate_through_case(&t.key, &strong, d, 0.9).await;
    api.patch_expert(&t.key, &weak.id, json!({"status": "available"})).await;

    // Both available with nothing open: the stronger one, even with more open cases.
    let next = api.case(&t.key, d, "standard").await;
    api.until_status(&t.key, &next, "routed", Some(&strong.id)).await;
    let after = api.case(&t.key, d, "standard").await;
    api.until_status(&t.key, &after, "routed", Some(&strong.id)).await;

    // No score yet counts as 0.5: a newcomer ranks above 0.2.
    api.patch_expert(&t.key, &strong.id, json!({"status": "busy"})).await;
    let newcomer = api.expert(&t.key, "Newcomer", &[d], 3).await;
    let third = api.case(&t.key, d, "standard").await;
    api.until_status(&t.key, &third, "routed", Some(&newcomer.id)).await;
}

#[actix_web::test]
async fn among_equals_the_expert_with_fewer_open_cases_then_the_longest_idle_wins() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("ties").await;
    let d = "hr.employment";
    let e1 = api.expert(&t.key, "Even one", &[d], 3).await;
    let e2 = api.expert(&t.key, "Even two", &[d], 3).await;
    let a = api.case(&t.key, d, "standard").await;
    let first = api.until_routed(&t.key, &a).await;
    let (x, y) = if first == e1.id { (&e1, &e2) } else { (&e2, &e1) };
    // y has fewer open cases.
    let b = api.case(&t.key, d, "standard").await;
    api.until_status(&t.key, &b, "routed", Some(&y.id)).await;
    // One each: x has waited longer since its last assignment.
    let c = api.case(&t.key, d, "standard").await;
    api.until_status(&t.key, &c, "routed", Some(&x.id)).await;
}

#[actix_web::test]
async fn private_experts_serve_their_tenant_and_platform_experts_serve_all() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let a = api.register("tenant-a").await;
    let b = api.register("tenant-b").await;
    let d = "support.escalations";
    let b_expert = api.expert(&b.key, "B's own", &[d], 3).await;

    let a_case = api.case(&a.key, d, "urgent").await;
    api.stays(&a.key, &a_case, QUIET, "pending", |v| v["status"] == "pending").await;
    let b_case = api.case(&b.key, d, "standard").await;
    api.until_status(&b.key, &b_case, "routed", Some(&b_expert.id)).await;
    assert_eq!(api.detail(&a.key, &a_case).await["status"], "pending", "B's expert never takes A's case");

    let op = operator_key(&app).await;
    let platform = api.expert(&op, "Platform", &[d], 3).await;
    api.until_status(&a.key, &a_case, "routed", Some(&platform.id)).await;

    api.patch_expert(&b.key, &b_expert.id, json!({"status": "offline"})).await;
    let b_case2 = api.case(&b.key, d, "standard").await;
    api.until_status(&b.key, &b_case2, "routed", Some(&platform.id)).await;

    let mine = api.my_case_ids(&b_expert.token).await;
    assert_eq!(mine, vec![b_case.clone()], "B's expert only ever saw B's case");
    let mut platform_cases = api.my_case_ids(&platform.token).await;
    platform_cases.sort();
    let mut want = vec![a_case.clone(), b_case2.clone()];
    want.sort();
    assert_eq!(platform_cases, want);

    // A platform expert resolves for either tenant; each tenant sees only its own case.
    api.resolve(&platform.token, &a_case).await;
    assert_eq!(api.detail(&a.key, &a_case).await["resolution"]["expert_id"], platform.id.as_str());
    let (status, _) = api.get(&format!("/escalations/{a_case}"), &[("X-API-Key", &b.key)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn an_unaccepted_reservation_moves_on_and_never_comes_back() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_RESERVATION_TIMEOUT", "300ms")], true).await;
    let api = Api::of(&app);
    let t = api.register("reservations").await;
    let d = "finance.accounting";
    let e1 = api.expert(&t.key, "Slow one", &[d], 3).await;
    let e2 = api.expert(&t.key, "Slow two", &[d], 3).await;
    let id = api.case(&t.key, d, "standard").await;
    let first = api.until_routed(&t.key, &id).await;
    let (first, second) = if first == e1.id { (&e1, &e2) } else { (&e2, &e1) };

    // Not accepted in time: the next expert.
    api.until_status(&t.key, &id, "routed", Some(&second.id)).await;
    let (status, body) = api.accept(&first.token, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the first expert lost it: {body}");
    let (status, _) =
        api.get(&format!("/experts/me/escalations/{id}"), &[("X-Expert-Token", &first.token)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nor by the second: nobody is left, it waits, and is never offered to either again.
    api.until_status(&t.key, &id, "pending", None).await;
    api.stays(&t.key, &id, Duration::from_millis(700), "pending", |v| v["status"] == "pending").await;
    for e in [&e1, &e2] {
        assert!(!api.my_case_ids(&e.token).await.contains(&id));
    }

    // A missed reservation frees the expert's slot for the next queued case.
    let d2 = "finance.payroll";
    let narrow = api.expert(&t.key, "Narrow", &[d2], 1).await;
    let missed = api.case(&t.key, d2, "urgent").await;
    api.until_status(&t.key, &missed, "routed", Some(&narrow.id)).await;
    let behind = api.case(&t.key, d2, "standard").await;
    api.until_status(&t.key, &behind, "routed", Some(&narrow.id)).await;
    assert_eq!(api.detail(&t.key, &missed).await["status"], "pending");
}

#[actix_web::test]
async fn an_accepted_case_outlives_the_reservation_timeout() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_RESERVATION_TIMEOUT", "1s")], true).await;
    let api = Api::of(&app);
    let t = api.register("keeper").await;
    let d = "finance.accounting";
    let e = api.expert(&t.key, "Quick", &[d], 3).await;
    let kept = api.case(&t.key, d, "standard").await;
    api.until_status(&t.key, &kept, "routed", Some(&e.id)).await;
    let (status, body) = api.accept(&e.token, &kept).await;
    assert_eq!(status, StatusCode::OK, "accepted within the reservation: {body}");
    api.stays(&t.key, &kept, Duration::from_millis(1300), "in review with its expert", |v| {
        v["status"] == "in_review" && v["expert_id"] == e.id.as_str()
    })
    .await;
}

#[actix_web::test]
async fn with_one_expert_a_missed_reservation_returns_the_case_to_pending_for_good() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_RESERVATION_TIMEOUT", "300ms")], true).await;
    let api = Api::of(&app);
    let t = api.register("alone").await;
    let d = "insurance.underwriting";
    let only = api.expert(&t.key, "Only", &[d], 3).await;
    let id = api.case(&t.key, d, "standard").await;
    api.until_status(&t.key, &id, "routed", Some(&only.id)).await;
    api.until_status(&t.key, &id, "pending", None).await;
    api.stays(&t.key, &id, Duration::from_millis(700), "pending", |v| v["status"] == "pending").await;
    let (status, _) = api.accept(&only.token, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!api.my_case_ids(&only.token).await.contains(&id));

    // Capacity events do not bring it back either.
    api.patch_expert(&t.key, &only.id, json!({"status": "busy"})).await;
    api.patch_expert(&t.key, &only.id, json!({"status": "available"})).await;
    api.stays(&t.key, &id, Duration::from_millis(300), "pending", |v| v["status"] == "pending").await;
}

#[actix_web::test]
async fn open_cases_expire_at_their_sla_and_cannot_be_resolved_after() {
    let app = common::spawn_app_with(
        &[("SWITCHBOARD_SLA_URGENT", "2s"), ("SWITCHBOARD_RESERVATION_TIMEOUT", "1h")],
        true,
    )
    .await;
    let api = Api::of(&app);
    let t = api.register("expiry").await;
    let router = api.expert(&t.key, "Router", &["legal.contracts"], 1).await;
    let reviewer = api.expert(&t.key, "Reviewer", &["legal.compliance"], 3).await;

    let pending = api.case(&t.key, "finance.tax", "urgent").await;
    let routed = api.case(&t.key, "legal.contracts", "urgent").await;
    let in_review = api.case(&t.key, "legal.compliance", "urgent").await;
    api.until_status(&t.key, &routed, "routed", Some(&router.id)).await;
    api.until_status(&t.key, &in_review, "routed", Some(&reviewer.id)).await;
    let (status, body) = api.accept(&reviewer.token, &in_review).await;
    assert_eq!(status, StatusCode::OK, "accepted before the SLA: {body}");

    // A long poll on the pending case answers with it expired.
    let res = api
        .client
        .get(format!("{}/escalations/{pending}/wait?timeout=30", api.base))
        .header("X-API-Key", &t.key)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the long poll returns when the case expires");
    assert_eq!(res.status(), StatusCode::OK);
    let waited: serde_json::Value = res.json().await.unwrap();
    assert_eq!(waited["status"], "expired", "{waited}");
    assert_eq!(waited["resolution"], serde_json::Value::Null);

    for id in [&pending, &routed, &in_review] {
        let d = api.until_status(&t.key, id, "expired", None).await;
        assert_eq!(d["resolution"], serde_json::Value::Null, "{d}");
    }
    let (_, expired) = api.get("/escalations?status=expired", &[("X-API-Key", &t.key)]).await;
    assert_eq!(expired.as_array().unwrap().len(), 3, "{expired}");

    // Too late for the experts and for the caller.
    let (status, body) =
        api.resolve_with(&reviewer.token, &in_review, json!({"answer": {"ok": 1}, "confidence": 0.9})).await;
    assert_eq!(status, StatusCode::CONFLICT, "resolve after expiry: {body}");
    let (status, body) =
        api.resolve_with(&router.token, &routed, json!({"answer": {"ok": 1}, "confidence": 0.9})).await;
    assert_eq!(status, StatusCode::CONFLICT, "resolve after expiry: {body}");
    let (status, body) = api.accept(&router.token, &routed).await;
    assert_eq!(status, StatusCode::CONFLICT, "accept after expiry: {body}");
    let (status, body) =
        api.post_empty(&format!("/escalations/{pending}/cancel"), &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "cancel after expiry: {body}");
    assert_eq!(api.detail(&t.key, &in_review).await["status"], "expired");

    // Expiry freed the experts' slots.
    let next = api.case(&t.key, "legal.contracts", "standard").await;
    api.until_status(&t.key, &next, "routed", Some(&router.id)).await;
}

#[actix_web::test]
async fn capacity_is_never_exceeded_when_cases_arrive_at_once() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    // The operator tenant has no daily limit.
    let op = operator_key(&app).await;
    let d = "engineering.load";
    let mut experts = Vec::new();
    for i in 0..3 {
        experts.push(api.expert(&op, &format!("Pool {i}"), &[d], 2).await);
    }
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (api, key) = (api.clone(), op.clone());
        tasks.push(actix_web::rt::spawn(async move {
            api.create(&key, json!({"domain": d, "query": format!("burst {i}")})).await["id"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    let routed_count = |list: &serde_json::Value| {
        list.as_array().unwrap().iter().filter(|c| c["status"] == "routed").count()
    };
    let h = [("X-API-Key", op.as_str())];
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            routed_count(&api.get("/escalations?limit=200", &h).await.1) == 6
        })
        .await,
        "three experts with two slots each take six cases"
    );
    // And no more, however long one looks.
    let end = std::time::Instant::now() + QUIET;
    while std::time::Instant::now() < end {
        let (_, list) = api.get("/escalations?limit=200", &h).await;
        assert_eq!(routed_count(&list), 6, "{list}");
    }
    for e in &experts {
        assert_eq!(api.my_case_ids(&e.token).await.len(), 2, "each expert holds exactly max_concurrent");
    }

    // Resolving everything as it arrives drains the whole queue, each case once.
    let mut resolved = std::collections::HashSet::new();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while resolved.len() < ids.len() {
        assert!(std::time::Instant::now() < end, "drained: {} of {} resolved", resolved.len(), ids.len());
        for e in &experts {
            let (_, mine) =
                api.get("/experts/me/escalations?status=routed", &[("X-Expert-Token", &e.token)]).await;
            let open = mine.as_array().unwrap().len();
            assert!(open <= 2, "never over capacity: {mine}");
            for c in mine.as_array().unwrap() {
                let id = c["id"].as_str().unwrap().to_string();
                api.resolve(&e.token, &id).await;
                assert!(resolved.insert(id), "a case is resolved once");
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, list) = api.get("/escalations?status=resolved&limit=200", &h).await;
    assert_eq!(list.as_array().unwrap().len(), 20);
}

#[actix_web::test]
async fn a_decline_frees_the_slot_for_the_next_queued_case() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("slot").await;
    let d = "legal.privacy";
    let e = api.expert(&t.key, "Narrow", &[d], 1).await;
    let a = api.case(&t.key, d, "urgent").await;
    api.until_status(&t.key, &a, "routed", Some(&e.id)).await;
    let b = api.case(&t.key, d, "standard").await;
    api.stays(&t.key, &b, QUIET, "pending", |v| v["status"] == "pending").await;
    let (status, body) = api.decline(&e.token, &a, "out_of_scope").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.until_status(&t.key, &b, "routed", Some(&e.id)).await;
    assert_eq!(api.detail(&t.key, &a).await["status"], "pending");
}

#[actix_web::test]
async fn closed_cases_leave_the_queue() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_SLA_URGENT", "1s")], true).await;
    let api = Api::of(&app);
    let t = api.register("leavers").await;
    let d = "finance.audit";
    let cancelled = api.case(&t.key, d, "standard").await;
    let expired = api.case(&t.key, d, "urgent").await;
    let waiting = api.case(&t.key, d, "batch").await;
    let (status, _) =
        api.post_empty(&format!("/escalations/{cancelled}/cancel"), &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK);
    api.until_status(&t.key, &expired, "expired", None).await;

    let e = api.expert(&t.key, "Late", &[d], 1).await;
    api.until_status(&t.key, &waiting, "routed", Some(&e.id)).await;
    assert_eq!(api.my_case_ids(&e.token).await, vec![waiting.clone()]);
    assert_eq!(api.detail(&t.key, &cancelled).await["status"], "cancelled");
    assert_eq!(api.detail(&t.key, &expired).await["status"], "expired");
}
