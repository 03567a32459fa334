//! `/escalations*` through the public HTTP API, as escalation-api.md and
//! extensions.md describe it: create (validation, idempotency, quota), get,
//! list, cancel, wait, feedback, and `/auth/usage`.

mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::time::Duration;

use esc::{close, keys, sorted, time_ms, Api, DETAIL_KEYS, SUMMARY_KEYS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[actix_web::test]
async fn create_answers_201_with_exactly_six_fields_and_the_sla_of_its_priority() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("creator").await;
    for (priority, sla_secs) in
        [(Some("urgent"), 300), (None, 1800), (Some("standard"), 1800), (Some("batch"), 86_400)]
    {
        let mut body = json!({"domain": "healthcare.rcm", "query": "CPT code review"});
        if let Some(p) = priority {
            body["priority"] = json!(p);
        }
        let (status, answer) = api.post("/escalations", body, &[("X-API-Key", &t.key)]).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(keys(&answer), sorted(&SUMMARY_KEYS), "exactly the six fields: {answer}");
        assert!(uuid::Uuid::parse_str(answer["id"].as_str().unwrap()).is_ok(), "{answer}");
        assert_eq!(answer["status"], "pending");
        assert_eq!(answer["priority"], priority.unwrap_or("standard"));
        assert_eq!(answer["domain"], "healthcare.rcm");
        let created = time_ms(&answer["created_at"]);
        let deadline = time_ms(&answer["sla_deadline"]);
        assert_eq!(
            deadline - created,
            sla_secs * 1000,
            "sla_deadline = created_at + SLA of {priority:?}: {answer}"
        );
    }
}

#[actix_web::test]
async fn the_sla_comes_from_the_settings() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_SLA_STANDARD", "90s")], true).await;
    let api = Api::of(&app);
    let t = api.register("sla").await;
    let answer = api.create(&t.key, json!({"domain": "legal.contracts", "query": "q"})).await;
    assert_eq!(time_ms(&answer["sla_deadline"]) - time_ms(&answer["created_at"]), 90_000, "{answer}");
}

#[actix_web::test]
async fn invalid_creates_are_400_with_detail_and_create_nothing() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("validator").await;
    let ok = json!({"domain": "healthcare.rcm", "query": "CPT code review"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases: Vec<(&str, Value)> = vec![
        ("missing domain", json!({"query": "q"})),
        ("missing query", json!({"domain": "healthcare.rcm"})),
        ("empty query", with("query", json!(""))),
        ("context not an object", with("context", json!([1, 2]))),
        ("metadata not an object", with("metadata", json!("tracking"))),
        ("bad domain slug", with("domain", json!("Healthcare RCM"))),
        ("domain without a dot", with("domain", json!("healthcare"))),
        ("unknown priority", with("priority", json!("high"))),
        ("invalid output_schema", with("output_schema", json!({"type": 12}))),
        (
            "remote $ref",
            with(
                "output_schema",
                json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}),
            ),
        ),
        ("file $ref", with("output_schema", json!({"$ref": "file:///etc/passwd"}))),
        ("ftp callback", with("callback_url", json!("ftp://example.com/hook"))),
        ("loopback callback", with("callback_url", json!("http://127.0.0.1:9/hook"))),
        ("metadata callback", with("callback_url", json!("http://169.254.169.254/latest/meta-data"))),
        ("private callback", with("callback_url", json!("http://10.0.0.1/hook"))),
    ];
    for (what, body) in cases {
        let (status, answer) = api.post("/escalations", body.clone(), &[("X-API-Key", &t.key)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body} → {answer}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {{\"detail\": ...}}: {answer}"
        );
    }
    // An empty body is no body: 400, whatever the Content-Type says.
    let (status, answer) = api.post_empty("/escalations", &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["detail"].is_string());

    let (status, list) = api.get("/escalations", &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]), "nothing was created");
}

#[actix_web::test]
async fn private_callbacks_are_accepted_when_allowed_but_metadata_never() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true")], true).await;
    let api = Api::of(&app);
    let t = api.register("private").await;
    let created = api
        .create(
            &t.key,
            json!({"domain": "healthcare.rcm", "query": "q", "callback_url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    let detail = api.detail(&t.key, created["id"].as_str().unwrap()).await;
    assert_eq!(detail["callback_url"], "http://127.0.0.1:9/hook");

    let (status, answer) = api
        .post(
            "/escalations",
            json!({"domain": "healthcare.rcm", "query": "q", "callback_url": "http://169.254.169.254/latest/meta-data"}),
            &[("X-API-Key", &t.key)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["detail"].is_string());
}

#[actix_web::test]
async fn a_missing_or_bad_key_is_401_with_detail() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let body = json!({"domain": "healthcare.rcm", "query": "q"});
    for headers in [
        vec![],
        vec![("X-API-Key", "cero_0000000000000000000000000000000000000000000000ff")],
        vec![("X-API-Key", "nonsense")],
    ] {
        let (status, answer) = api.post("/escalations", body.clone(), &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {answer}");
        assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()), "{answer}");
        let (status, answer) = api.get("/escalations", &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {answer}");
        assert!(answer["detail"].is_string(), "{answer}");
    }
}

#[actix_web::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("idem").await;
    let body = json!({"domain": "healthcare.rcm", "query": "same question", "metadata": {"ticket": 7}});
    let headers = [("X-API-Key", t.key.as_str()), ("Idempotency-Key", "retry-123")];
    let (s1, first) = api.post("/escalations", body.clone(), &headers).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    let (s2, second) = api.post("/escalations", body.clone(), &headers).await;
    assert_eq!(s2, StatusCode::CREATED, "{second}");
    assert_eq!(second, first, "the same key and body answer the first response");

    let (_, list) = api.get("/escalations", &[("X-API-Key", &t.key)]).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "only one escalation exists: {list}");
    assert_eq!(list[0]["id"], first["id"]);

    let other = json!({"domain": "healthcare.rcm", "query": "another question"});
    let (s3, answer) = api.post("/escalations", other, &headers).await;
    assert_eq!(s3, StatusCode::CONFLICT, "{answer}");
    assert!(answer["detail"].is_string());

    // Another key is another request.
    let (s4, fourth) = api
        .post("/escalations", body, &[("X-API-Key", t.key.as_str()), ("Idempotency-Key", "retry-456")])
        .await;
    assert_eq!(s4, StatusCode::CREATED);
    assert_ne!(fourth["id"], first["id"]);
    let (_, list) = api.get("/escalations", &[("X-API-Key", &t.key)]).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    // Keys belong to a tenant: another tenant's same key is another request.
    let other = api.register("idem-other").await;
    let (s5, fifth) = api
        .post(
            "/escalations",
            json!({"domain": "healthcare.rcm", "query": "another question"}),
            &[("X-API-Key", other.key.as_str()), ("Idempotency-Key", "retry-123")],
        )
        .await;
    assert_eq!(s5, StatusCode::CREATED, "{fifth}");
    assert_ne!(fifth["id"], first["id"]);
}

#[actix_web::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_escalation() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("idem-burst").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (api, key) = (api.clone(), t.key.clone());
        tasks.push(actix_web::rt::spawn(async move {
            api.post(
                "/escalations",
                json!({"domain": "legal.contracts", "query": "the same"}),
                &[("X-API-Key", key.as_str()), ("Idempotency-Key", "burst-1")],
            )
            .await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry answers the same escalation: {ids:?}");
    let (_, list) = api.get("/escalations", &[("X-API-Key", &t.key)]).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[actix_web::test]
async fn the_free_tier_allows_ten_a_day_then_429_with_retry_after() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("quota").await;
    let first_body = json!({"domain": "finance.tax", "query": "the first"});
    let idem = [("X-API-Key", t.key.as_str()), ("Idempotency-Key", "first-one")];
    let (status, first) = api.post("/escalations", first_body.clone(), &idem).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    for i in 1..10 {
        let (status, answer) = api
            .post(
                "/escalations",
                json!({"domain": "finance.tax", "query": format!("q{i}")}),
                &[("X-API-Key", &t.key)],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create #{}: {answer}", i + 1);
    }
    let (status, headers, answer) = api
        .full(
            Method::POST,
            "/escalations",
            Some(json!({"domain": "finance.tax", "query": "one too many"})),
            &[("X-API-Key", &t.key)],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert!(answer["detail"].is_string(), "{answer}");
    let retry = headers.get("retry-after").expect("Retry-After header").to_str().unwrap();
    let secs: u64 = retry.parse().unwrap_or_else(|_| panic!("Retry-After is integer seconds: {retry:?}"));
    assert!(secs > 0 && secs <= 86_400, "{secs}");

    let (_, usage) = api.get("/auth/usage", &[("X-API-Key", &t.key)]).await;
    assert_eq!(usage["escalations_today"], 10, "the refused one is not counted: {usage}");
    assert_eq!(usage["credits"], 90, "{usage}");

    // A retry of an acknowledged create is still answered with its first response.
    let (status, again) = api.post("/escalations", first_body, &idem).await;
    assert_eq!(status, StatusCode::CREATED, "an idempotent retry is not a new escalation: {again}");
    assert_eq!(again, first);

    // The operator tenant is enterprise: no limit.
    let op = switchboard::identity::accounts::new_operator_key(&app.state.store).await.unwrap();
    for i in 0..11 {
        let (status, answer) = api
            .post(
                "/escalations",
                json!({"domain": "finance.tax", "query": format!("op{i}")}),
                &[("X-API-Key", &op)],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "enterprise create #{}: {answer}", i + 1);
    }
}

#[actix_web::test]
async fn the_daily_limit_holds_under_concurrent_creates() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("burst").await;
    let mut tasks = Vec::new();
    for i in 0..15 {
        let (api, key) = (api.clone(), t.key.clone());
        tasks.push(actix_web::rt::spawn(async move {
            api.post(
                "/escalations",
                json!({"domain": "finance.tax", "query": format!("burst {i}")}),
                &[("X-API-Key", &key)],
            )
            .await
        }));
    }
    let mut created = 0;
    let mut limited = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let (_, list) = api.get("/escalations", &[("X-API-Key", &t.key)]).await;
    assert_eq!(
        (created, limited, list.as_array().unwrap().len()),
        (10, 5, 10),
        "the free tier allows 10 a day, however the requests arrive"
    );
}

#[actix_web::test]
async fn detail_has_every_documented_field_and_candidates_get_ids() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("detail").await;
    let schema = json!({"type": "object", "properties": {"approved_cpts": {"type": "array", "items": {"type": "string"}}}});
    let created = api
        .create(
            &t.key,
            json!({
                "domain": "healthcare.rcm",
                "query": "CPT code review",
                "context": {"claim": "A-1", "lines": [1, 2]},
                "priority": "urgent",
                "output_schema": schema,
                "metadata": {"trace": "abc"},
                "task_type": "cpt_review",
                "candidates": [
                    {"answer": {"approved_cpts": ["99213"]}, "confidence": 0.7, "source": "gpt"},
                    {"answer": {"approved_cpts": []}}
                ]
            }),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let d = api.detail(&t.key, id).await;
    for k in DETAIL_KEYS {
        assert!(d.as_object().unwrap().contains_key(k), "detail has {k}: {d}");
    }
    assert_eq!(d["id"], id);
    assert_eq!(d["tenant_id"], t.id.as_str());
    assert_eq!(d["domain"], "healthcare.rcm");
    assert_eq!(d["query"], "CPT code review");
    assert_eq!(d["context"], json!({"claim": "A-1", "lines": [1, 2]}));
    assert_eq!(d["priority"], "urgent");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["output_schema"], schema);
    assert_eq!(d["callback_url"], Value::Null);
    assert_eq!(d["metadata"], json!({"trace": "abc"}));
    assert_eq!(d["task_type"], "cpt_review");
    assert_eq!(d["sla_deadline"], created["sla_deadline"]);
    assert_eq!(d["created_at"], created["created_at"]);
    for k in ["routed_at", "resolved_at", "expert_id", "resolution", "feedback"] {
        assert_eq!(d[k], Value::Null, "{k} is null while pending: {d}");
    }
    let candidates = d["candidates"].as_array().expect("candidates array");
    assert_eq!(candidates.len(), 2);
    let ids: Vec<&str> = candidates.iter().map(|c| c["id"].as_str().expect("candidate id")).collect();
    assert!(ids.iter().all(|i| !i.is_empty()) && ids[0] != ids[1], "{ids:?}");
    assert_eq!(candidates[0]["answer"], json!({"approved_cpts": ["99213"]}));
    assert!(close(&candidates[0]["confidence"], 0.7));
    assert_eq!(candidates[0]["source"], "gpt");
    assert_eq!(candidates[1]["answer"], json!({"approved_cpts": []}));

    // Unknown ids and ids that are not ids are 404.
    let (status, body) =
        api.get(&format!("/escalations/{}", uuid::Uuid::new_v4()), &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].is_string());
    let (status, _) = api.get("/escalations/not-an-id", &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn list_is_a_bare_array_of_six_field_items_newest_first_with_filters_and_paging() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("lister").await;
    let mut ids = Vec::new();
    for (i, domain) in
        ["healthcare.rcm", "legal.contracts", "healthcare.rcm", "legal.contracts", "healthcare.rcm"]
            .into_iter()
            .enumerate()
    {
        let c = api.create(&t.key, json!({"domain": domain, "query": format!("q{i}")})).await;
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    let (status, _) =
        api.post_empty(&format!("/escalations/{}/cancel", ids[1]), &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK);
    // Another tenant's cases never show.
    let other = api.register("other").await;
    api.create(&other.key, json!({"domain": "healthcare.rcm", "query": "not yours"})).await;

    let h = [("X-API-Key", t.key.as_str())];
    let list_ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("a bare array: {v}"))
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, list) = api.get("/escalations", &h).await;
    assert_eq!(status, StatusCode::OK);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(list_ids(&list), newest_first, "newest first");
    for item in list.as_array().unwrap() {
        assert_eq!(keys(item), sorted(&SUMMARY_KEYS), "exactly six fields: {item}");
    }

    let (_, cancelled) = api.get("/escalations?status=cancelled", &h).await;
    assert_eq!(list_ids(&cancelled), vec![ids[1].clone()]);
    assert_eq!(cancelled[0]["status"], "cancelled");
    let (_, pending) = api.get("/escalations?status=pending", &h).await;
    assert_eq!(list_ids(&pending), vec![ids[4].clone(), ids[3].clone(), ids[2].clone(), ids[0].clone()]);
    let (_, legal) = api.get("/escalations?domain=legal.contracts", &h).await;
    assert_eq!(list_ids(&legal), vec![ids[3].clone(), ids[1].clone()]);
    let (_, both) = api.get("/escalations?domain=healthcare.rcm&status=pending", &h).await;
    assert_eq!(list_ids(&both), vec![ids[4].clone(), ids[2].clone(), ids[0].clone()]);
    let (_, page) = api.get("/escalations?limit=2&offset=1", &h).await;
    assert_eq!(list_ids(&page), vec![ids[3].clone(), ids[2].clone()]);
    let (_, tail) = api.get("/escalations?limit=2&offset=4", &h).await;
    assert_eq!(list_ids(&tail), vec![ids[0].clone()]);
    let (_, beyond) = api.get("/escalations?offset=50", &h).await;
    assert_eq!(beyond, json!([]));
    let (status, _) = api.get("/escalations?limit=200", &h).await;
    assert_eq!(status, StatusCode::OK);

    for bad in ["limit=201", "offset=-1", "status=bogus", "limit=abc"] {
        let (status, body) = api.get(&format!("/escalations?{bad}"), &h).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["detail"].is_string(), "{body}");
    }
}

#[actix_web::test]
async fn another_tenants_escalation_is_404_everywhere() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let owner = api.register("owner").await;
    let stranger = api.register("stranger").await;
    let expert = api.expert(&owner.key, "Ann", &["healthcare.rcm"], 3).await;
    let open = api.case(&owner.key, "legal.contracts", "standard").await;
    let resolved = api.case(&owner.key, "healthcare.rcm", "standard").await;
    api.until_status(&owner.key, &resolved, "routed", Some(&expert.id)).await;
    api.resolve(&expert.token, &resolved).await;

    let h = [("X-API-Key", stranger.key.as_str())];
    for id in [&open, &resolved] {
        for (method, path) in [
            (Method::GET, format!("/escalations/{id}")),
            (Method::GET, format!("/escalations/{id}/wait?timeout=0")),
            (Method::POST, format!("/escalations/{id}/cancel")),
            (Method::POST, format!("/escalations/{id}/feedback?score=0.5")),
        ] {
            let (status, body) = api.call(method.clone(), &path, None, &h).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert!(body["detail"].is_string(), "{body}");
        }
    }
    // Nothing changed for the owner.
    assert_eq!(api.detail(&owner.key, &open).await["status"], "pending");
    assert_eq!(api.detail(&owner.key, &resolved).await["feedback"], Value::Null);
}

#[actix_web::test]
async fn cancel_answers_the_detail_once_then_409() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("canceller").await;
    let h = [("X-API-Key", t.key.as_str())];
    let a = api.case(&t.key, "healthcare.rcm", "standard").await;
    let (status, body) = api.call(Method::POST, &format!("/escalations/{a}/cancel"), None, &h).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], a.as_str());
    assert_eq!(body["status"], "cancelled");
    for k in DETAIL_KEYS {
        assert!(body.as_object().unwrap().contains_key(k), "the detail ({k}): {body}");
    }
    assert_eq!(api.detail(&t.key, &a).await["status"], "cancelled");
    let (status, body) = api.call(Method::POST, &format!("/escalations/{a}/cancel"), None, &h).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].is_string());

    // The SDK's way: Content-Type: application/json and an empty body.
    let b = api.case(&t.key, "healthcare.rcm", "standard").await;
    let (status, body) = api.post_empty(&format!("/escalations/{b}/cancel"), &h).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
}

#[actix_web::test]
async fn cancel_takes_routed_cases_but_not_in_review_or_resolved_ones() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("canceller").await;
    let h = [("X-API-Key", t.key.as_str())];
    let e = api.expert(&t.key, "Bo", &["legal.contracts"], 3).await;

    let routed = api.case(&t.key, "legal.contracts", "standard").await;
    api.until_status(&t.key, &routed, "routed", Some(&e.id)).await;
    let (status, body) = api.post_empty(&format!("/escalations/{routed}/cancel"), &h).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    // The expert can no longer act on it.
    let (status, body) = api.accept(&e.token, &routed).await;
    assert!(status == StatusCode::CONFLICT || status == StatusCode::NOT_FOUND, "{status} {body}");

    let reviewing = api.case(&t.key, "legal.contracts", "standard").await;
    api.until_status(&t.key, &reviewing, "routed", Some(&e.id)).await;
    let (status, body) = api.accept(&e.token, &reviewing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api.post_empty(&format!("/escalations/{reviewing}/cancel"), &h).await;
    assert_eq!(status, StatusCode::CONFLICT, "in_review cannot be cancelled: {body}");
    assert_eq!(api.detail(&t.key, &reviewing).await["status"], "in_review");

    api.resolve(&e.token, &reviewing).await;
    let (status, body) = api.post_empty(&format!("/escalations/{reviewing}/cancel"), &h).await;
    assert_eq!(status, StatusCode::CONFLICT, "resolved cannot be cancelled: {body}");
    assert_eq!(api.detail(&t.key, &reviewing).await["status"], "resolved");
}

#[actix_web::test]
async fn wait_answers_the_current_detail_when_the_timeout_passes() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("waiter").await;
    let id = api.case(&t.key, "healthcare.rcm", "standard").await;
    let (status, body) =
        api.get(&format!("/escalations/{id}/wait?timeout=1"), &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "pending", "still open: {body}");
    assert!(body.as_object().unwrap().contains_key("resolution"), "the detail: {body}");

    // A closed case answers at once.
    api.post_empty(&format!("/escalations/{id}/cancel"), &[("X-API-Key", &t.key)]).await;
    let (status, body) =
        api.get(&format!("/escalations/{id}/wait?timeout=30"), &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
}

#[actix_web::test]
async fn wait_returns_the_resolution_as_soon_as_it_is_resolved() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("waiter").await;
    let e = api.expert(&t.key, "Cy", &["healthcare.rcm"], 3).await;
    let id = api.case(&t.key, "healthcare.rcm", "standard").await;
    api.until_status(&t.key, &id, "routed", Some(&e.id)).await;

    let resolver = {
        let (api, token, id) = (api.clone(), e.token.clone(), id.clone());
        actix_web::rt::spawn(async move {
            // Gives the long poll time to start; the assertion does not depend on it.
            actix_web::rt::time::sleep(Duration::from_millis(300)).await;
            api.resolve(&token, &id).await
        })
    };
    // timeout=60: a server that ignored the resolution would hold the request far past the client's 20 s.
    let res = api
        .client
        .get(format!("{}/escalations/{id}/wait?timeout=60", api.base))
        .header("X-API-Key", &t.key)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the long poll returns once the case is resolved");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "resolved", "{body}");
    assert_eq!(body["resolution"]["answer"], json!({"ok": true}));
    assert_eq!(body["resolution"]["expert_id"], e.id.as_str());
    resolver.await.unwrap();
}

#[actix_web::test]
async fn feedback_rates_resolved_cases_and_moves_the_experts_quality_score() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("rater").await;
    let h = [("X-API-Key", t.key.as_str())];
    let e = api.expert(&t.key, "Di", &["finance.tax"], 3).await;
    let a = api.case(&t.key, "finance.tax", "standard").await;
    let b = api.case(&t.key, "finance.tax", "standard").await;
    api.until_status(&t.key, &a, "routed", Some(&e.id)).await;
    api.until_status(&t.key, &b, "routed", Some(&e.id)).await;

    // Not resolved yet: 409.
    let (status, body) = api.feedback(&t.key, &a, 0.5).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].is_string());

    api.resolve(&e.token, &a).await;
    api.resolve(&e.token, &b).await;
    assert_eq!(
        api.expert_profile(&t.key, &e.id).await["quality_score"],
        Value::Null,
        "null before any feedback"
    );

    for bad in ["score=1.5", "score=-0.1", "score=abc", "comment=nice"] {
        let (status, body) = api.post_empty(&format!("/escalations/{a}/feedback?{bad}"), &h).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["detail"].is_string(), "{body}");
    }
    let (status, body) = api.post_empty(&format!("/escalations/{a}/feedback"), &h).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a missing score: {body}");
    assert_eq!(api.detail(&t.key, &a).await["feedback"], Value::Null, "refused feedback changes nothing");

    let (status, body) =
        api.post_empty(&format!("/escalations/{a}/feedback?score=0.8&comment=good"), &h).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(close(&api.detail(&t.key, &a).await["feedback"]["score"], 0.8));
    assert!(close(&api.expert_profile(&t.key, &e.id).await["quality_score"], 0.8));

    let (status, body) = api.feedback(&t.key, &b, 0.4).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q = api.expert_profile(&t.key, &e.id).await["quality_score"].clone();
    assert!(close(&q, 0.6), "mean of 0.8 and 0.4: {q}");

    // A second feedback replaces the first.
    let (status, body) = api.feedback(&t.key, &a, 1.0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = api.detail(&t.key, &a).await;
    assert!(close(&d["feedback"]["score"], 1.0), "{d}");
    let q = api.expert_profile(&t.key, &e.id).await["quality_score"].clone();
    assert!(close(&q, 0.7), "mean of 1.0 and 0.4: {q}");

    // The bounds are inclusive.
    let (status, body) = api.feedback(&t.key, &b, 0.0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q = api.expert_profile(&t.key, &e.id).await["quality_score"].clone();
    assert!(close(&q, 0.5), "mean of 1.0 and 0.0: {q}");
}

#[actix_web::test]
async fn usage_counts_creates_and_averages_resolution_time() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("user").await;
    let h = [("X-API-Key", t.key.as_str())];
    let (status, usage) = api.get("/auth/usage", &h).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["tenant_id"], t.id.as_str());
    assert_eq!(usage["tier"], "free");
    assert_eq!(usage["escalations_today"], 0);
    assert_eq!(usage["escalations_this_month"], 0);
    assert_eq!(usage["avg_resolution_time"], Value::Null, "null before any resolution: {usage}");
    assert_eq!(usage["limits"], json!({"escalations_per_day": 10, "escalations_per_month": 100}));
    assert_eq!(usage["credits"], 100);

    let e = api.expert(&t.key, "Ed", &["hr.employment"], 3).await;
    let first = api.case(&t.key, "hr.employment", "standard").await;
    api.case(&t.key, "legal.contracts", "standard").await;
    api.case(&t.key, "legal.contracts", "batch").await;
    let (_, usage) = api.get("/auth/usage", &h).await;
    assert_eq!(usage["escalations_today"], 3, "{usage}");
    assert_eq!(usage["escalations_this_month"], 3, "{usage}");
    assert_eq!(usage["credits"], 97, "{usage}");
    assert_eq!(usage["avg_resolution_time"], Value::Null, "{usage}");

    api.until_status(&t.key, &first, "routed", Some(&e.id)).await;
    api.resolve(&e.token, &first).await;
    let (_, usage) = api.get("/auth/usage", &h).await;
    let avg = usage["avg_resolution_time"]
        .as_f64()
        .unwrap_or_else(|| panic!("a number after a resolution: {usage}"));
    assert!(avg >= 0.0, "{usage}");
    // A cancelled case still counts as created.
    api.post_empty(&format!("/escalations/{first}/cancel"), &h).await;
    let (_, usage) = api.get("/auth/usage", &h).await;
    assert_eq!(usage["escalations_this_month"], 3, "{usage}");
}
