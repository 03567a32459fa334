//! `/v1/cerebrals` through the public API: create (defaults, normalised SOPs),
//! read, list newest first, patch (null clears), delete; field and SOP
//! validation (a nested quantifier is accepted: the regex engine is
//! linear-time); roles (Viewer and Contributor read, Manager writes), the JWT
//! on every call, and another tenant's or an unknown Cerebral as 404.

#[path = "common/agent.rs"]
mod agent;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use agent::{register_as, sign_in, v1, v1_error};

use esc::{keys, sorted, time_ms, Api, Tenant};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The fields of a Cerebral.
const CEREBRAL_KEYS: [&str; 9] =
    ["id", "name", "systemPrompt", "provider", "model", "status", "sops", "createdAt", "updatedAt"];

/// Sign-in limits out of the way: each test signs several people in.
const ENV: [(&str, &str); 1] = [("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m")];

// ---- helpers ----------------------------------------------------------------

/// A tenant and its Owner's `Authorization` value.
async fn owner(app: &common::TestApp, name: &str) -> (Tenant, String) {
    let (tenant, email) = register_as(&Api::of(app), name).await;
    let auth = sign_in(app, &email).await;
    (tenant, auth)
}

/// Asserts a success envelope with `status`; returns `data`.
fn v1_data(got: (StatusCode, Value), status: StatusCode, what: &str) -> Value {
    let (code, body) = got;
    assert_eq!(code, status, "{what}: {body}");
    assert_eq!(body["success"], json!(true), "{what}: {body}");
    body["data"].clone()
}

/// Asserts the exact fields of a Cerebral and its id and times.
fn assert_cerebral(c: &Value) {
    assert_eq!(keys(c), sorted(&CEREBRAL_KEYS), "{c}");
    let id = c["id"].as_str().unwrap_or_else(|| panic!("id: {c}"));
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("id {id} is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 7, "{id}");
    assert_eq!(uuid.hyphenated().to_string(), id, "{id}");
    assert!(time_ms(&c["updatedAt"]) >= time_ms(&c["createdAt"]), "{c}");
    assert!(c["sops"].is_array(), "{c}");
}

async fn create(api: &Api, auth: &str, body: Value) -> Value {
    let data = v1_data(
        v1(api, Method::POST, "/v1/cerebrals", Some(body.clone()), Some(auth), None).await,
        StatusCode::CREATED,
        &format!("POST /v1/cerebrals {body}"),
    );
    assert_cerebral(&data);
    data
}

fn path_of(c: &Value) -> String {
    format!("/v1/cerebrals/{}", c["id"].as_str().unwrap())
}

/// One SOP of every action kind, as sent, and as it is stored (normalised).
fn full_sops() -> (Value, Value) {
    let sent = json!([
        {
            "name": " order_status_lookup ",
            "match": {"keywords": [" order ", "status", "order"]},
            "actions": [
                {"type": "http", "method": "get", "url": "https://api.example.com/orders/{{order_id}}"},
                {"type": "reply", "template": "Your order: {{http.body}}"},
            ],
        },
        {
            "name": "refunds",
            "match": {"regex": "(a+)+$"},
            "actions": [
                {"type": "http", "method": "POST", "url": "https://api.example.com/refunds", "body": {"amount": 5}},
                {"type": "escalate", "domain": "commerce.refunds", "priority": "urgent"},
                {"type": "escalate", "domain": "commerce.refunds"},
            ],
        },
    ]);
    let stored = json!([
        {
            "name": "order_status_lookup",
            "match": {"keywords": ["order", "status"]},
            "actions": [
                {"type": "http", "method": "GET", "url": "https://api.example.com/orders/{{order_id}}", "body": null},
                {"type": "reply", "template": "Your order: {{http.body}}"},
            ],
        },
        {
            "name": "refunds",
            "match": {"regex": "(a+)+$"},
            "actions": [
                {"type": "http", "method": "POST", "url": "https://api.example.com/refunds", "body": {"amount": 5}},
                {"type": "escalate", "domain": "commerce.refunds", "priority": "urgent"},
                {"type": "escalate", "domain": "commerce.refunds", "priority": null},
            ],
        },
    ]);
    (sent, stored)
}

fn sop(matcher: Value, actions: Value) -> Value {
    json!([{"name": "s", "match": matcher, "actions": actions}])
}

fn reply() -> Value {
    json!([{"type": "reply", "template": "hi"}])
}

// ---- tests ------------------------------------------------------------------

#[actix_web::test]
async fn cerebrals_are_created_read_listed_patched_and_deleted() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, auth) = owner(&app, "crud").await;

    // Nothing yet.
    let (status, body) = v1(&api, Method::GET, "/v1/cerebrals", None, Some(&auth), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true, "data": []})));

    // A name alone: active, no overrides, no SOPs.
    let first = create(&api, &auth, json!({"name": "  Support bot  "})).await;
    assert_eq!(first["name"], "Support bot");
    assert_eq!(first["status"], "active");
    for k in ["systemPrompt", "provider", "model"] {
        assert_eq!(first[k], Value::Null, "{k}: {first}");
    }
    assert_eq!(first["sops"], json!([]));
    assert_eq!(first["createdAt"], first["updatedAt"]);

    // Every field, SOPs normalised.
    let (sent, stored) = full_sops();
    let second = create(
        &api,
        &auth,
        json!({
            "name": "Order assistant",
            "system_prompt": "You help with orders.",
            "provider": "offline",
            "model": "gpt-4o-mini",
            "status": "draft",
            "sops": sent,
        }),
    )
    .await;
    assert_eq!(second["systemPrompt"], "You help with orders.");
    assert_eq!(second["provider"], "offline");
    assert_eq!(second["model"], "gpt-4o-mini");
    assert_eq!(second["status"], "draft");
    assert_eq!(second["sops"], stored);
    let paused = create(&api, &auth, json!({"name": "Paused one", "status": "paused"})).await;
    assert_eq!(paused["status"], "paused");

    // Read back as created; listed newest first.
    let got = v1_data(
        v1(&api, Method::GET, &path_of(&second), None, Some(&auth), None).await,
        StatusCode::OK,
        "GET",
    );
    assert_eq!(got, second);
    let listed = v1_data(
        v1(&api, Method::GET, "/v1/cerebrals", None, Some(&auth), None).await,
        StatusCode::OK,
        "list",
    );
    assert_eq!(listed, json!([paused, second, first]));

    // PATCH: only what is named changes; null clears the optional fields.
    let patched = v1_data(
        v1(
            &api,
            Method::PATCH,
            &path_of(&second),
            Some(json!({"status": "active", "model": null, "system_prompt": "Be brief.", "name": "Orders"})),
            Some(&auth),
            None,
        )
        .await,
        StatusCode::OK,
        "PATCH",
    );
    assert_cerebral(&patched);
    assert_eq!(patched["id"], second["id"]);
    assert_eq!(patched["name"], "Orders");
    assert_eq!(patched["status"], "active");
    assert_eq!(patched["model"], Value::Null);
    assert_eq!(patched["systemPrompt"], "Be brief.");
    assert_eq!(patched["provider"], "offline", "untouched");
    assert_eq!(patched["sops"], stored, "untouched");
    assert_eq!(patched["createdAt"], second["createdAt"]);
    let got = v1_data(
        v1(&api, Method::GET, &path_of(&second), None, Some(&auth), None).await,
        StatusCode::OK,
        "GET after PATCH",
    );
    assert_eq!(got, patched, "the change was stored");

    // An empty PATCH changes nothing; a null `sops` and `provider` clear them.
    let same = v1_data(
        v1(&api, Method::PATCH, &path_of(&second), Some(json!({})), Some(&auth), None).await,
        StatusCode::OK,
        "empty PATCH",
    );
    for k in ["id", "name", "systemPrompt", "provider", "model", "status", "sops", "createdAt"] {
        assert_eq!(same[k], patched[k], "{k}");
    }
    let cleared = v1_data(
        v1(
            &api,
            Method::PATCH,
            &path_of(&second),
            Some(json!({"sops": null, "provider": null})),
            Some(&auth),
            None,
        )
        .await,
        StatusCode::OK,
        "clearing PATCH",
    );
    assert_eq!((&cleared["sops"], &cleared["provider"]), (&json!([]), &Value::Null));
    // SOPs can be set by PATCH too, and are validated there.
    let (sent, stored) = full_sops();
    let with_sops = v1_data(
        v1(&api, Method::PATCH, &path_of(&first), Some(json!({"sops": sent})), Some(&auth), None).await,
        StatusCode::OK,
        "PATCH sops",
    );
    assert_eq!(with_sops["sops"], stored);

    // DELETE, then it is gone for every verb.
    let deleted = v1_data(
        v1(&api, Method::DELETE, &path_of(&second), None, Some(&auth), None).await,
        StatusCode::OK,
        "DELETE",
    );
    assert_eq!(deleted, json!({"id": second["id"], "deleted": true}));
    for (method, body) in
        [(Method::GET, None), (Method::PATCH, Some(json!({"name": "x"}))), (Method::DELETE, None)]
    {
        let (status, answer) = v1(&api, method.clone(), &path_of(&second), body, Some(&auth), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} after delete: {answer}");
        v1_error(&answer, "NOT_FOUND");
    }
    let listed = v1_data(
        v1(&api, Method::GET, "/v1/cerebrals", None, Some(&auth), None).await,
        StatusCode::OK,
        "list",
    );
    let ids: Vec<&Value> = listed.as_array().unwrap().iter().map(|c| &c["id"]).collect();
    assert_eq!(ids, vec![&paused["id"], &first["id"]]);
}

#[actix_web::test]
async fn cerebral_fields_and_sops_are_validated() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, auth) = owner(&app, "validation").await;
    let with_sops = |sops: Value| json!({"name": "n", "sops": sops});
    let fifty_one: Vec<Value> = (0..51)
        .map(|i| json!({"name": format!("s{i}"), "match": {"keywords": ["x"]}, "actions": reply()}))
        .collect();
    let twenty_one: Vec<Value> = (0..21).map(|_| json!({"type": "reply", "template": "x"})).collect();
    let kw = json!({"keywords": ["x"]});
    // (what, body, what the message must contain)
    let bad: Vec<(&str, Value, &str)> = vec![
        ("missing name", json!({}), "name"),
        ("blank name", json!({"name": "   "}), "name"),
        ("name of 201 characters", json!({"name": "n".repeat(201)}), "name"),
        ("name not a string", json!({"name": 42}), "name"),
        ("unknown status", json!({"name": "n", "status": "live"}), "status"),
        ("sops not a list", with_sops(json!({"name": "s"})), "sops"),
        ("51 SOPs", with_sops(json!(fifty_one)), "sops: at most 50"),
        ("21 actions", with_sops(sop(kw.clone(), json!(twenty_one))), "sops[0].actions: at most 20"),
        ("SOP without a name", with_sops(json!([{"match": kw, "actions": reply()}])), "sops[0].name"),
        ("SOP without a match", with_sops(json!([{"name": "s", "actions": reply()}])), "sops[0].match"),
        ("both matchers", with_sops(sop(json!({"keywords": ["x"], "regex": "x"}), reply())), "sops[0].match"),
        ("empty keywords", with_sops(sop(json!({"keywords": []}), reply())), "sops[0].match.keywords"),
        (
            "blank keyword",
            with_sops(sop(json!({"keywords": ["a", ""]}), reply())),
            "sops[0].match.keywords[1]",
        ),
        (
            "regex of 1001 characters",
            with_sops(sop(json!({"regex": "a".repeat(1001)}), reply())),
            "sops[0].match.regex",
        ),
        (
            "regex that does not compile",
            with_sops(sop(json!({"regex": "(oops"}), reply())),
            "sops[0].match.regex",
        ),
        (
            "regex over the size limit",
            with_sops(sop(json!({"regex": "\\w{100}"}), reply())),
            "sops[0].match.regex",
        ),
        ("no actions", with_sops(sop(kw.clone(), json!([]))), "sops[0].actions"),
        ("unknown action", with_sops(sop(kw.clone(), json!([{"type": "sing"}]))), "sops[0].actions[0].type"),
        (
            "reply without template",
            with_sops(sop(kw.clone(), json!([{"type": "reply"}]))),
            "sops[0].actions[0].template",
        ),
        (
            "http with a bad method",
            with_sops(sop(
                kw.clone(),
                json!([{"type": "http", "method": "TRACE", "url": "https://example.com"}]),
            )),
            "sops[0].actions[0].method",
        ),
        (
            "http without url",
            with_sops(sop(kw.clone(), json!([{"type": "http", "method": "GET"}]))),
            "sops[0].actions[0].url",
        ),
        (
            "http to the metadata address",
            with_sops(sop(
                kw.clone(),
                json!([{"type": "reply", "template": "x"},
                       {"type": "http", "method": "GET", "url": "http://169.254.169.254/latest"}]),
            )),
            "sops[0].actions[1].url points at",
        ),
        (
            "http to localhost",
            with_sops(sop(
                kw.clone(),
                json!([{"type": "http", "method": "GET", "url": "http://localhost:8080/"}]),
            )),
            "sops[0].actions[0].url points at",
        ),
        (
            "http with an ftp url",
            with_sops(sop(
                kw.clone(),
                json!([{"type": "http", "method": "GET", "url": "ftp://example.com/x"}]),
            )),
            "sops[0].actions[0].url must use http or https",
        ),
        (
            "escalate to a bad domain",
            with_sops(sop(kw.clone(), json!([{"type": "escalate", "domain": "Billing"}]))),
            "sops[0].actions[0].domain",
        ),
        (
            "escalate with a bad priority",
            with_sops(sop(kw.clone(), json!([{"type": "escalate", "domain": "a.b", "priority": "now"}]))),
            "sops[0].actions[0].priority",
        ),
        (
            "second SOP at fault",
            with_sops(json!([
                {"name": "ok", "match": kw, "actions": reply()},
                {"name": "bad", "match": {"regex": "["}, "actions": reply()},
            ])),
            "sops[1].match.regex",
        ),
    ];
    for (what, body, wanted) in &bad {
        let (status, answer) =
            v1(&api, Method::POST, "/v1/cerebrals", Some(body.clone()), Some(&auth), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        let message = v1_error(&answer, "BAD_REQUEST");
        assert!(message.contains(wanted), "{what}: {message:?} should name {wanted:?}");
    }
    let (_, list) = v1(&api, Method::GET, "/v1/cerebrals", None, Some(&auth), None).await;
    assert_eq!(list["data"], json!([]), "nothing was created");

    // The same refusals on PATCH (those with a valid name), plus nulls where a value is required.
    let target = create(&api, &auth, json!({"name": "target"})).await;
    let patch_bad: Vec<(&str, Value, &str)> = bad
        .iter()
        .filter(|(_, body, _)| body["name"] == "n")
        .map(|(what, body, wanted)| {
            let mut b = body.clone();
            b.as_object_mut().unwrap().remove("name");
            (*what, b, *wanted)
        })
        .chain([
            ("null name", json!({"name": null}), "name"),
            ("blank name", json!({"name": ""}), "name"),
            ("null status", json!({"status": null}), "status"),
        ])
        .collect();
    for (what, body, wanted) in patch_bad {
        let (status, answer) =
            v1(&api, Method::PATCH, &path_of(&target), Some(body), Some(&auth), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PATCH {what}: {answer}");
        let message = v1_error(&answer, "BAD_REQUEST");
        assert!(message.contains(wanted), "PATCH {what}: {message:?} should name {wanted:?}");
    }
    let (_, got) = v1(&api, Method::GET, &path_of(&target), None, Some(&auth), None).await;
    assert_eq!(got["data"], target, "no PATCH landed");

    // The bounds are inclusive; a nested quantifier is fine (linear-time engine).
    let name = "n".repeat(200);
    let ok = create(
        &api,
        &auth,
        json!({"name": name, "sops": [
            {"name": "long", "match": {"regex": "a".repeat(1000)}, "actions": reply()},
            {"name": "nested", "match": {"regex": "(a+)+$"}, "actions": reply()},
            {"name": "also", "match": {"regex": "^(\\w+\\s?)*$"}, "actions": reply()},
        ]}),
    )
    .await;
    assert_eq!(ok["name"], name.as_str());
    assert_eq!(ok["sops"][1]["match"], json!({"regex": "(a+)+$"}));
    assert_eq!(ok["sops"][2]["match"], json!({"regex": "^(\\w+\\s?)*$"}));
}

#[actix_web::test]
async fn cerebral_writes_need_a_manager_and_every_call_a_jwt() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (t, owner_auth) = owner(&app, "roles").await;
    let existing = create(&api, &owner_auth, json!({"name": "Existing"})).await;
    let existing_path = path_of(&existing);

    let members = format!("/api/tenants/{}/members", t.id);
    let mut jwt = std::collections::HashMap::new();
    for role in ["Viewer", "Contributor", "Manager"] {
        let member_email = esc::email_for(role, "example.com");
        let (status, body) = api
            .post(&members, json!({"email": member_email, "role": role}), &[("Authorization", &owner_auth)])
            .await;
        assert_eq!(status, StatusCode::CREATED, "add a {role}: {body}");
        jwt.insert(role, sign_in(&app, &member_email).await);
    }
    let tid = Some(t.id.as_str());
    let new = json!({"name": "New"});

    // Viewers and Contributors read but do not write.
    for role in ["Viewer", "Contributor"] {
        let auth = Some(jwt[role].as_str());
        let list =
            v1_data(v1(&api, Method::GET, "/v1/cerebrals", None, auth, tid).await, StatusCode::OK, role);
        assert_eq!(list, json!([existing]), "{role}");
        let one = v1_data(v1(&api, Method::GET, &existing_path, None, auth, tid).await, StatusCode::OK, role);
        assert_eq!(one, existing, "{role}");
        for (method, path, body) in [
            (Method::POST, "/v1/cerebrals", Some(new.clone())),
            (Method::PATCH, existing_path.as_str(), Some(json!({"name": "Renamed"}))),
            (Method::DELETE, existing_path.as_str(), None),
        ] {
            let (status, answer) = v1(&api, method.clone(), path, body, auth, tid).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} {method} {path}: {answer}");
            v1_error(&answer, "FORBIDDEN");
        }
    }
    let (_, list) = v1(&api, Method::GET, "/v1/cerebrals", None, Some(&owner_auth), None).await;
    assert_eq!(list["data"], json!([existing]), "nothing changed");

    // A Manager writes.
    let manager = Some(jwt["Manager"].as_str());
    let made = v1_data(
        v1(&api, Method::POST, "/v1/cerebrals", Some(new.clone()), manager, tid).await,
        StatusCode::CREATED,
        "Manager POST",
    );
    assert_cerebral(&made);
    let renamed = v1_data(
        v1(&api, Method::PATCH, &existing_path, Some(json!({"name": "Renamed"})), manager, tid).await,
        StatusCode::OK,
        "Manager PATCH",
    );
    assert_eq!(renamed["name"], "Renamed");
    let gone = v1_data(
        v1(&api, Method::DELETE, &path_of(&made), None, manager, tid).await,
        StatusCode::OK,
        "Manager DELETE",
    );
    assert_eq!(gone, json!({"id": made["id"], "deleted": true}));

    // No JWT, a bad one, or an Escalation API key instead: 401 everywhere.
    let api_key_bearer = format!("Bearer {}", t.key);
    for auth in [None, Some("Bearer not.a.jwt"), Some(api_key_bearer.as_str())] {
        for (method, path, body) in [
            (Method::GET, "/v1/cerebrals", None),
            (Method::POST, "/v1/cerebrals", Some(new.clone())),
            (Method::GET, existing_path.as_str(), None),
            (Method::PATCH, existing_path.as_str(), Some(json!({"name": "x"}))),
            (Method::DELETE, existing_path.as_str(), None),
        ] {
            let (status, answer) = v1(&api, method.clone(), path, body, auth, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {auth:?}: {answer}");
            v1_error(&answer, "UNAUTHORIZED");
        }
    }
    let (_, list) = v1(&api, Method::GET, "/v1/cerebrals", None, Some(&owner_auth), None).await;
    assert_eq!(list["data"], json!([renamed]), "only the Manager's changes landed");
}

#[actix_web::test]
async fn another_tenants_or_an_unknown_cerebral_is_not_found() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, auth) = owner(&app, "holder").await;
    let mine = create(&api, &auth, json!({"name": "Mine"})).await;
    let (_, stranger) = owner(&app, "stranger").await;

    // The stranger's list is their own (empty); each verb on mine is 404.
    let (status, body) = v1(&api, Method::GET, "/v1/cerebrals", None, Some(&stranger), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true, "data": []})));
    let unknown = format!("/v1/cerebrals/{}", uuid::Uuid::now_v7());
    for path in [path_of(&mine), unknown, "/v1/cerebrals/not-a-uuid".to_string()] {
        for (method, body) in
            [(Method::GET, None), (Method::PATCH, Some(json!({"name": "Taken"}))), (Method::DELETE, None)]
        {
            let (status, answer) = v1(&api, method.clone(), &path, body, Some(&stranger), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
            v1_error(&answer, "NOT_FOUND");
        }
    }
    let (_, got) = v1(&api, Method::GET, &path_of(&mine), None, Some(&auth), None).await;
    assert_eq!(got["data"], mine, "untouched");
}
