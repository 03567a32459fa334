//! `/experts*` for tenants (API key): register, list (own and platform-wide),
//! get, patch, rotate the portal token.

mod common;
#[path = "common/escalation.rs"]
mod esc;

use esc::{close, Api};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn operator_key(app: &common::TestApp) -> String {
    switchboard::identity::accounts::new_operator_key(&app.state.store).await.expect("an operator key")
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a bare array: {list}"))
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn create_answers_201_with_a_token_and_the_defaults() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("clinic").await;
    let (status, body) = api
        .post(
            "/experts",
            json!({"name": "Dr. Alice Chen", "email": "alice@example.com", "domains": ["healthcare.rcm"]}),
            &[("X-API-Key", &t.key)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok(), "{body}");
    assert_eq!(body["name"], "Dr. Alice Chen");
    assert_eq!(body["domains"], json!(["healthcare.rcm"]));
    assert_eq!(body["tier"], "standard");
    assert_eq!(body["status"], "available");
    assert_eq!(body["quality_score"], Value::Null);
    assert_eq!(body["resolution_count"], 0);
    assert_eq!(body["max_concurrent"], 3);
    let token = body["expert_token"].as_str().expect("expert_token");
    assert!(token.starts_with("exp_") && token.len() > 20, "{token}");

    // Shown once: the profile does not carry it.
    let profile = api.expert_profile(&t.key, body["id"].as_str().unwrap()).await;
    assert!(profile.get("expert_token").is_none_or(Value::is_null), "{profile}");
    assert_eq!(profile["status"], "available");
    assert_eq!(profile["max_concurrent"], 3);

    // Every optional field.
    let (status, body) = api
        .post(
            "/experts",
            json!({
                "name": "Bob", "email": "bob@example.com",
                "domains": ["legal.contracts", "legal.compliance"],
                "credentials": ["JD", "Bar #123"], "tier": "senior", "max_concurrent": 7
            }),
            &[("X-API-Key", &t.key)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["domains"], json!(["legal.contracts", "legal.compliance"]));
    assert_eq!(body["credentials"], json!(["JD", "Bar #123"]));
    assert_eq!(body["tier"], "senior");
    assert_eq!(body["max_concurrent"], 7);
    let other_token = body["expert_token"].as_str().unwrap();
    assert_ne!(other_token, token, "each expert has its own token");
}

#[actix_web::test]
async fn invalid_experts_are_400_and_nothing_is_created() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("strict").await;
    let ok = json!({"name": "Eve", "email": "eve@example.com", "domains": ["healthcare.rcm"]});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    for (what, body) in [
        ("empty domains", with("domains", json!([]))),
        ("bad domain", with("domains", json!(["Healthcare RCM"]))),
        ("undotted domain", with("domains", json!(["healthcare"]))),
        ("bad tier", with("tier", json!("guru"))),
        ("max_concurrent 0", with("max_concurrent", json!(0))),
        ("negative max_concurrent", with("max_concurrent", json!(-2))),
        ("missing name", without("name")),
        ("empty name", with("name", json!(" "))),
        ("missing email", without("email")),
        ("bad email", with("email", json!("not-an-email"))),
        ("missing domains", without("domains")),
    ] {
        let (status, answer) = api.post("/experts", body.clone(), &[("X-API-Key", &t.key)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body} → {answer}");
        assert!(answer["detail"].is_string(), "{answer}");
    }
    let (status, list) = api.get("/experts", &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]), "nothing was created");

    let (status, answer) = api.post("/experts", ok, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
}

#[actix_web::test]
async fn list_shows_own_and_platform_experts_with_filters() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let a = api.register("tenant-a").await;
    let b = api.register("tenant-b").await;
    let op = operator_key(&app).await;
    let a1 = api.expert(&a.key, "A1", &["healthcare.rcm"], 3).await;
    let a2 = api.expert(&a.key, "A2", &["legal.contracts", "legal.compliance"], 3).await;
    let b1 = api.expert(&b.key, "B1", &["healthcare.rcm"], 3).await;
    let p = api.expert(&op, "Platform", &["legal.contracts"], 3).await;
    assert_eq!(p.body["status"], "available");

    let h = [("X-API-Key", a.key.as_str())];
    let (status, list) = api.get("/experts", &h).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut got = ids(&list);
    got.sort();
    let mut want = vec![a1.id.clone(), a2.id.clone(), p.id.clone()];
    want.sort();
    assert_eq!(got, want, "A's own and the platform's, never B's: {list}");
    assert!(!ids(&list).contains(&b1.id));

    let (_, legal) = api.get("/experts?domain=legal.contracts", &h).await;
    let mut got = ids(&legal);
    got.sort();
    let mut want = vec![a2.id.clone(), p.id.clone()];
    want.sort();
    assert_eq!(got, want, "{legal}");
    let (_, compliance) = api.get("/experts?domain=legal.compliance", &h).await;
    assert_eq!(ids(&compliance), vec![a2.id.clone()]);
    // A domain filter matches whole domains, not prefixes.
    let (_, legal_only) = api.get("/experts?domain=legal.con", &h).await;
    assert_eq!(legal_only, json!([]), "{legal_only}");

    api.patch_expert(&a.key, &a1.id, json!({"status": "offline"})).await;
    let (_, offline) = api.get("/experts?status=offline", &h).await;
    assert_eq!(ids(&offline), vec![a1.id.clone()]);
    let (_, available) = api.get("/experts?status=available&domain=healthcare.rcm", &h).await;
    assert_eq!(available, json!([]), "{available}");
    let (_, one) = api.get("/experts?limit=1", &h).await;
    assert_eq!(ids(&one).len(), 1);

    for bad in ["status=bogus", "status=pending", "limit=201", "domain=Not%20A%20Domain"] {
        let (status, body) = api.get(&format!("/experts?{bad}"), &h).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["detail"].is_string());
    }

    // B sees its own and the platform's.
    let (_, list) = api.get("/experts", &[("X-API-Key", &b.key)]).await;
    let mut got = ids(&list);
    got.sort();
    let mut want = vec![b1.id.clone(), p.id.clone()];
    want.sort();
    assert_eq!(got, want);
}

#[actix_web::test]
async fn list_is_ordered_by_quality_score_highest_first_no_score_last() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("ranker").await;
    // Created first, never rated.
    let unrated = api.expert(&t.key, "Unrated", &["hr.employment"], 3).await;
    let low = api.expert(&t.key, "Low", &["finance.tax"], 3).await;
    let high = api.expert(&t.key, "High", &["finance.accounting"], 3).await;
    api.rate_through_case(&t.key, &low, "finance.tax", 0.3).await;
    api.rate_through_case(&t.key, &high, "finance.accounting", 0.9).await;

    let (status, list) = api.get("/experts", &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&list), vec![high.id.clone(), low.id.clone(), unrated.id.clone()], "{list}");
    assert!(close(&list[0]["quality_score"], 0.9));
    assert!(close(&list[1]["quality_score"], 0.3));
    assert_eq!(list[2]["quality_score"], Value::Null);
    assert_eq!(list[0]["resolution_count"], 1);
}

#[actix_web::test]
async fn another_tenants_expert_is_404_to_get_patch_and_rotate() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let owner = api.register("owner").await;
    let stranger = api.register("stranger").await;
    let e = api.expert(&owner.key, "Private", &["healthcare.rcm"], 3).await;
    let h = [("X-API-Key", stranger.key.as_str())];
    let (status, body) = api.get(&format!("/experts/{}", e.id), &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["detail"].is_string());
    let (status, body) = api.patch(&format!("/experts/{}", e.id), json!({"status": "offline"}), &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = api.post_empty(&format!("/experts/{}/token", e.id), &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Unchanged, and the owner's token still works.
    assert_eq!(api.expert_profile(&owner.key, &e.id).await["status"], "available");
    let (status, _) = api.get("/experts/me", &[("X-Expert-Token", &e.token)]).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = api.get(&format!("/experts/{}", uuid::Uuid::new_v4()), &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A platform-wide expert is managed by the operator tenant only.
    let op = operator_key(&app).await;
    let p = api.expert(&op, "Platform", &["healthcare.rcm"], 3).await;
    let (status, body) = api.patch(&format!("/experts/{}", p.id), json!({"status": "offline"}), &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = api.post_empty(&format!("/experts/{}/token", p.id), &h).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let patched = api.patch_expert(&op, &p.id, json!({"status": "busy"})).await;
    assert_eq!(patched["status"], "busy");
}

#[actix_web::test]
async fn patch_changes_each_field_and_refuses_bad_values() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("patcher").await;
    let e = api.expert(&t.key, "Flex", &["healthcare.rcm"], 3).await;
    for (body, field) in [
        (json!({"status": "busy"}), "status"),
        (json!({"status": "offline"}), "status"),
        (json!({"domains": ["legal.contracts", "finance.tax"]}), "domains"),
        (json!({"max_concurrent": 9}), "max_concurrent"),
        (json!({"tier": "principal"}), "tier"),
        (json!({"credentials": ["CPC", "RHIA"]}), "credentials"),
        (json!({"status": "available"}), "status"),
    ] {
        let answer = api.patch_expert(&t.key, &e.id, body.clone()).await;
        assert_eq!(answer[field], body[field], "{answer}");
        let profile = api.expert_profile(&t.key, &e.id).await;
        assert_eq!(profile[field], body[field], "reflected in GET: {profile}");
    }
    let profile = api.expert_profile(&t.key, &e.id).await;
    assert_eq!(profile["domains"], json!(["legal.contracts", "finance.tax"]));
    assert_eq!(profile["max_concurrent"], 9);
    assert_eq!(profile["tier"], "principal");
    assert_eq!(profile["credentials"], json!(["CPC", "RHIA"]));
    assert_eq!(profile["name"], "Flex");

    for bad in [
        json!({"status": "sleeping"}),
        json!({"status": "pending"}),
        json!({"domains": []}),
        json!({"domains": ["NOPE"]}),
        json!({"max_concurrent": 0}),
        json!({"tier": "guru"}),
    ] {
        let (status, body) =
            api.patch(&format!("/experts/{}", e.id), bad.clone(), &[("X-API-Key", &t.key)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["detail"].is_string());
    }
    assert_eq!(api.expert_profile(&t.key, &e.id).await, profile, "refused patches change nothing");
}

#[actix_web::test]
async fn a_rotated_token_replaces_the_old_one() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("rotator").await;
    let e = api.expert(&t.key, "Rot", &["healthcare.rcm"], 3).await;
    let (status, me) = api.get("/experts/me", &[("X-Expert-Token", &e.token)]).await;
    assert_eq!(status, StatusCode::OK, "{me}");

    let (status, body) = api.post_empty(&format!("/experts/{}/token", e.id), &[("X-API-Key", &t.key)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new = body["expert_token"].as_str().expect("a new expert_token").to_string();
    assert!(new.starts_with("exp_") && new != e.token, "{new}");
    assert_eq!(body["id"], e.id.as_str());

    let (status, me) = api.get("/experts/me", &[("X-Expert-Token", &new)]).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], e.id.as_str());
    let (status, body) = api.get("/experts/me", &[("X-Expert-Token", &e.token)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old token is retired: {body}");
    assert!(body["detail"].is_string());
}

#[actix_web::test]
async fn domains_lists_the_catalogue_and_every_declared_domain_once() {
    let app = common::spawn_app().await;
    let api = Api::of(&app);
    let t = api.register("domains").await;
    let h = [("X-API-Key", t.key.as_str())];
    let (status, body) = api.get("/domains", &h).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(esc::keys(&body), vec!["domains".to_string()]);
    let catalogue = body["domains"].as_array().unwrap().clone();
    assert!(!catalogue.is_empty());
    for d in &catalogue {
        assert_eq!(esc::keys(d), esc::sorted(&["slug", "category", "name", "description"]), "{d}");
        let slug = d["slug"].as_str().unwrap();
        assert_eq!(d["category"], slug.split('.').next().unwrap(), "{d}");
    }
    assert!(catalogue.iter().any(|d| d["slug"] == "healthcare.rcm"));
    assert!(!catalogue.iter().any(|d| d["slug"] == "aviation.maintenance"));

    api.expert(&t.key, "Mechanic", &["aviation.maintenance", "healthcare.rcm"], 3).await;
    api.expert(&t.key, "Mechanic two", &["aviation.maintenance"], 3).await;
    let (_, body) = api.get("/domains", &h).await;
    let domains = body["domains"].as_array().unwrap();
    let declared: Vec<&Value> = domains.iter().filter(|d| d["slug"] == "aviation.maintenance").collect();
    assert_eq!(declared.len(), 1, "once: {body}");
    assert_eq!(declared[0]["category"], "aviation");
    assert_eq!(esc::keys(declared[0]), esc::sorted(&["slug", "category", "name", "description"]));
    assert_eq!(domains.iter().filter(|d| d["slug"] == "healthcare.rcm").count(), 1, "{body}");
    assert_eq!(domains.len(), catalogue.len() + 1);
}
