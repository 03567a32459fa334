//! The expert portal (`X-Expert-Token`): profile and status, my cases,
//! accept, resolve through the Quality Gate, decline.

mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::time::Duration;

use esc::{keys, sorted, Api, DETAIL_KEYS, RESOLUTION_KEYS};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[actix_web::test]
async fn me_needs_a_valid_expert_token() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("portal").await;
    let e = api.expert(&t.key, "Me", &["healthcare.rcm"], 2).await;

    let (status, me) = api.get("/experts/me", &[("X-Expert-Token", &e.token)]).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], e.id.as_str());
    assert_eq!(me["name"], "Me");
    assert_eq!(me["domains"], json!(["healthcare.rcm"]));
    assert_eq!(me["status"], "available");
    assert_eq!(me["max_concurrent"], 2);
    assert!(me.get("expert_token").is_none_or(Value::is_null), "the token is not shown again: {me}");

    let bad_tokens: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("X-Expert-Token", "exp_0000000000000000000000000000000000000000000000")],
        vec![("X-Expert-Token", "garbage")],
        // An API key is not an expert token.
        vec![("X-Expert-Token", t.key.as_str())],
        vec![("X-API-Key", t.key.as_str())],
    ];
    for headers in bad_tokens {
        let (status, body) = api.get("/experts/me", &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
        let (status, _) = api.get("/experts/me/escalations", &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
    }
}

#[actix_web::test]
async fn an_expert_sets_its_own_status() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("portal").await;
    let e = api.expert(&t.key, "Me", &["healthcare.rcm"], 2).await;
    let h = [("X-Expert-Token", e.token.as_str())];
    for s in ["busy", "offline", "available"] {
        let (status, body) = api.patch("/experts/me", json!({"status": s}), &h).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], s);
        assert_eq!(api.expert_profile(&t.key, &e.id).await["status"], s, "the tenant sees it");
        let (_, me) = api.get("/experts/me", &h).await;
        assert_eq!(me["status"], s);
    }
    let (status, body) = api.patch("/experts/me", json!({"status": "sleeping"}), &h).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].is_string());
    let (status, _) = api.patch("/experts/me", json!({"status": "busy"}), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.expert_profile(&t.key, &e.id).await["status"], "available");
}

#[actix_web::test]
async fn my_escalations_lists_my_cases_newest_first_in_full_detail() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("portal").await;
    let e = api.expert(&t.key, "Mine", &["healthcare.rcm"], 3).await;
    let other = api.expert(&t.key, "Other", &["legal.contracts"], 3).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let id = api.case(&t.key, "healthcare.rcm", "standard").await;
        api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
        mine.push(id);
    }
    let theirs = api.case(&t.key, "legal.contracts", "standard").await;
    api.until_status(&t.key, &theirs, "routed", Some(&other.id)).await;
    api.case(&t.key, "finance.tax", "standard").await; // nobody's

    let h = [("X-Expert-Token", e.token.as_str())];
    let (status, list) = api.get("/experts/me/escalations", &h).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list.as_array().expect("a bare array");
    let got: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(got, vec![mine[2].as_str(), mine[1].as_str(), mine[0].as_str()], "newest first, only mine");
    for item in items {
        for k in DETAIL_KEYS {
            assert!(item.as_object().unwrap().contains_key(k), "full detail ({k}): {item}");
        }
        assert_eq!(item["status"], "routed");
        assert_eq!(item["expert_id"], e.id.as_str());
        esc::time_ms(&item["routed_at"]);
        assert!(item["query"].is_string());
    }

    let (status, body) = api.accept(&e.token, &mine[1]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, reviewing) = api.get("/experts/me/escalations?status=in_review", &h).await;
    let got: Vec<&str> = reviewing.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(got, vec![mine[1].as_str()]);
    let (_, routed) = api.get("/experts/me/escalations?status=routed", &h).await;
    assert_eq!(routed.as_array().unwrap().len(), 2, "{routed}");
    let (status, body) = api.get("/experts/me/escalations?status=bogus", &h).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // One case in detail.
    let (status, one) = api.get(&format!("/experts/me/escalations/{}", mine[0]), &h).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["id"], mine[0].as_str());
    for k in DETAIL_KEYS {
        assert!(one.as_object().unwrap().contains_key(k), "{k}: {one}");
    }
}

#[actix_web::test]
async fn accept_moves_routed_to_in_review_once() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("portal").await;
    let e = api.expert(&t.key, "Acc", &["healthcare.rcm"], 3).await;
    let id = api.case(&t.key, "healthcare.rcm", "standard").await;
    api.until_status(&t.key, &id, "routed", Some(&e.id)).await;

    let (status, body) = api.accept(&e.token, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "in_review");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(api.detail(&t.key, &id).await["status"], "in_review");

    let (status, body) = api.accept(&e.token, &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].is_string());
    assert_eq!(api.detail(&t.key, &id).await["status"], "in_review");
}

#[actix_web::test]
async fn the_quality_gate_lists_every_error_and_keeps_the_case_open() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("gate").await;
    let e = api.expert(&t.key, "Gate", &["healthcare.rcm"], 3).await;
    let schema = json!({
        "type": "object",
        "properties": {
            "approved_cpts": {"type": "array", "items": {"type": "string"}},
            "count": {"type": "integer"}
        },
        "required": ["approved_cpts", "count"]
    });
    let created = api
        .create(
            &t.key,
            json!({"domain": "healthcare.rcm", "query": "CPT review", "output_schema": schema,
                   "candidates": [{"answer": {"approved_cpts": ["99213"], "count": 1}, "confidence": 0.6}]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let routed = api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
    let candidate = routed["candidates"][0]["id"].as_str().unwrap().to_string();

    // Two schema errors, while routed: 422, both listed, the case stays routed.
    let (status, body) = api
        .resolve_with(
            &e.token,
            &id,
            json!({"answer": {"approved_cpts": [99213], "count": "two"}, "confidence": 0.9}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("errors: {body}"));
    let mut paths: Vec<&str> = errors.iter().map(|e| e["path"].as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(paths, vec!["/answer/approved_cpts/0", "/answer/count"], "every error: {body}");
    for err in errors {
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
        assert_eq!(keys(err), sorted(&["path", "message"]), "{err}");
    }
    assert_eq!(api.detail(&t.key, &id).await["status"], "routed", "the case stays open");

    let (status, body) = api.accept(&e.token, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Confidence out of [0, 1].
    let (status, body) = api
        .resolve_with(
            &e.token,
            &id,
            json!({"answer": {"approved_cpts": ["99213"], "count": 1}, "confidence": 1.5}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["/confidence"], "{body}");

    // A missing required property is reported at the answer.
    let (status, body) =
        api.resolve_with(&e.token, &id, json!({"answer": {"approved_cpts": []}, "confidence": 0.5})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["path"].as_str().unwrap().starts_with("/answer")));
    let d = api.detail(&t.key, &id).await;
    assert_eq!(d["status"], "in_review", "still open: {d}");
    assert_eq!(d["resolution"], Value::Null);

    // A valid answer.
    let (status, body) = api
        .resolve_with(
            &e.token,
            &id,
            json!({"answer": {"approved_cpts": ["99213", "99214"], "count": 2}, "confidence": 0.94,
                   "reasoning": "Short explanation", "source_candidate_id": candidate, "candidate_action": "edited"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "resolved");
    let r = &body["resolution"];
    assert_eq!(keys(r), sorted(&RESOLUTION_KEYS), "{r}");
    assert_eq!(r["escalation_id"], id.as_str());
    assert_eq!(r["expert_id"], e.id.as_str());
    assert_eq!(r["answer"], json!({"approved_cpts": ["99213", "99214"], "count": 2}));
    assert!(esc::close(&r["confidence"], 0.94));
    assert_eq!(r["reasoning"], "Short explanation");
    assert_eq!(r["source_candidate_id"], candidate.as_str());
    assert_eq!(r["candidate_action"], "edited");
    esc::time_ms(&r["resolved_at"]);

    // The tenant sees the same resolution.
    let d = api.detail(&t.key, &id).await;
    assert_eq!(d["status"], "resolved");
    assert_eq!(d["resolution"], *r);
    assert_eq!(d["resolved_at"], r["resolved_at"]);
    assert_eq!(d["expert_id"], e.id.as_str());

    // Once.
    let (status, body) = api
        .resolve_with(&e.token, &id, json!({"answer": {"approved_cpts": [], "count": 0}, "confidence": 0.5}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(api.detail(&t.key, &id).await["resolution"], *r, "unchanged");
    assert_eq!(api.expert_profile(&t.key, &e.id).await["resolution_count"], 1);
}

#[actix_web::test]
async fn a_routed_case_can_be_resolved_without_accepting_it_first() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("direct").await;
    let e = api.expert(&t.key, "Direct", &["legal.contracts"], 3).await;
    let id = api.case(&t.key, "legal.contracts", "standard").await;
    api.until_status(&t.key, &id, "routed", Some(&e.id)).await;
    let body = api.resolve(&e.token, &id).await;
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["resolution"]["confidence"], 0.9);
}

#[actix_web::test]
async fn a_case_assigned_to_someone_else_is_404() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("portal").await;
    let owner = api.expert(&t.key, "Owner", &["healthcare.rcm"], 3).await;
    let nosy = api.expert(&t.key, "Nosy", &["legal.contracts"], 3).await;
    let id = api.case(&t.key, "healthcare.rcm", "standard").await;
    api.until_status(&t.key, &id, "routed", Some(&owner.id)).await;

    let h = [("X-Expert-Token", nosy.token.as_str())];
    let (status, body) = api.get(&format!("/experts/me/escalations/{id}"), &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].is_string());
    let (status, body) = api.accept(&nosy.token, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) =
        api.resolve_with(&nosy.token, &id, json!({"answer": {"x": 1}, "confidence": 0.5})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = api.decline(&nosy.token, &id, "out_of_scope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!api.my_case_ids(&nosy.token).await.contains(&id));
    let d = api.detail(&t.key, &id).await;
    assert_eq!(
        (d["status"].as_str(), d["expert_id"].as_str()),
        (Some("routed"), Some(owner.id.as_str())),
        "{d}"
    );

    // Once resolved by its owner, still not the other's.
    api.resolve(&owner.token, &id).await;
    let (status, _) = api.get(&format!("/experts/me/escalations/{id}"), &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.accept(&nosy.token, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Unknown case ids too.
    let (status, _) = api.accept(&nosy.token, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn decline_needs_a_known_reason_and_hands_the_case_to_another_expert() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("decliner").await;
    let e1 = api.expert(&t.key, "One", &["finance.tax"], 3).await;
    let e2 = api.expert(&t.key, "Two", &["finance.tax"], 3).await;
    let id = api.case(&t.key, "finance.tax", "standard").await;
    let first = api.until_routed(&t.key, &id).await;
    let (decliner, other) = if first == e1.id { (&e1, &e2) } else { (&e2, &e1) };
    assert_eq!(first, decliner.id);

    for reason in ["bored", "", "NEED_MORE_CONTEXT"] {
        let (status, body) = api.decline(&decliner.token, &id, reason).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reason:?}: {body}");
        assert!(body["detail"].is_string());
    }
    let (status, body) = api
        .post(
            &format!("/experts/me/escalations/{id}/decline"),
            json!({}),
            &[("X-Expert-Token", &decliner.token)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a missing reason: {body}");
    assert_eq!(api.detail(&t.key, &id).await["expert_id"], decliner.id.as_str(), "still the decliner's");

    let (status, body) = api.decline(&decliner.token, &id, "conflict_of_interest").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = api.until_status(&t.key, &id, "routed", Some(&other.id)).await;
    assert_eq!(d["expert_id"], other.id.as_str());

    // The decliner no longer sees it.
    let (status, _) =
        api.get(&format!("/experts/me/escalations/{id}"), &[("X-Expert-Token", &decliner.token)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.accept(&decliner.token, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!api.my_case_ids(&decliner.token).await.contains(&id));
    assert!(api.my_case_ids(&other.token).await.contains(&id));

    // The second expert declines too (from in_review): nobody is left, so it waits.
    let (status, body) = api.accept(&other.token, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api.decline(&other.token, &id, "too_busy").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = api.until_status(&t.key, &id, "pending", None).await;
    assert_eq!(d["expert_id"], Value::Null, "{d}");
    // Capacity appearing (status changes, a new case routed to them) never brings it back.
    for e in [&e1, &e2] {
        api.patch_expert(&t.key, &e.id, json!({"status": "busy"})).await;
        api.patch_expert(&t.key, &e.id, json!({"status": "available"})).await;
    }
    let fresh = api.case(&t.key, "finance.tax", "standard").await;
    api.until_routed(&t.key, &fresh).await;
    api.stays(&t.key, &id, Duration::from_millis(300), "pending", |d| d["status"] == "pending").await;
}

#[actix_web::test]
async fn a_declined_case_stays_pending_when_the_decliner_is_the_only_expert() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("solo").await;
    let solo = api.expert(&t.key, "Solo", &["insurance.claims"], 3).await;
    let id = api.case(&t.key, "insurance.claims", "urgent").await;
    api.until_status(&t.key, &id, "routed", Some(&solo.id)).await;
    let (status, body) = api.decline(&solo.token, &id, "need_more_context").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id.as_str());
    api.until_status(&t.key, &id, "pending", None).await;

    // Every capacity event for the decliner: status flip, raised capacity, another case resolved.
    api.patch_expert(&t.key, &solo.id, json!({"status": "offline"})).await;
    api.patch_expert(&t.key, &solo.id, json!({"status": "available", "max_concurrent": 5})).await;
    let other = api.case(&t.key, "insurance.claims", "batch").await;
    api.until_status(&t.key, &other, "routed", Some(&solo.id)).await;
    api.resolve(&solo.token, &other).await;
    let probe = api.case(&t.key, "insurance.claims", "batch").await;
    api.until_status(&t.key, &probe, "routed", Some(&solo.id)).await;

    api.stays(&t.key, &id, Duration::from_millis(300), "pending and unassigned", |d| {
        d["status"] == "pending" && d["expert_id"].is_null()
    })
    .await;
    assert!(!api.my_case_ids(&solo.token).await.contains(&id));
    let (status, _) = api.accept(&solo.token, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Another expert takes it.
    let fresh = api.expert(&t.key, "Fresh", &["insurance.claims"], 3).await;
    api.until_status(&t.key, &id, "routed", Some(&fresh.id)).await;
}
