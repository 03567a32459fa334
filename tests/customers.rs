//! `/v1/customers` through the public API: create (201) and upsert by
//! external_id, then email, then phone (200, same customer, metadata merged
//! key by key); read; another tenant's customer is 404; field validation;
//! an `sk_live_` key or the JWT (any member) authenticates; concurrent creates
//! of one external_id make one customer.

#[path = "common/agent.rs"]
mod agent;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use agent::{register_as, sign_in, v1, v1_error};

use esc::{keys, sorted, time_ms, Api, Tenant};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The fields of a customer.
const CUSTOMER_KEYS: [&str; 9] =
    ["id", "email", "phone", "name", "externalId", "tags", "metadata", "createdAt", "updatedAt"];

/// Sign-in limits out of the way: some tests sign several people in.
const ENV: [(&str, &str); 1] = [("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m")];

// ---- helpers ----------------------------------------------------------------

/// A tenant, its Owner's `Authorization` value and a new `sk_live_` key.
async fn owner(app: &common::TestApp, name: &str) -> (Tenant, String, String) {
    let api = Api::of(app);
    let (tenant, email) = register_as(&api, name).await;
    let auth = sign_in(app, &email).await;
    let key = agent_key(&api, &auth, json!({"name": format!("{name} key")})).await;
    (tenant, auth, key)
}

async fn agent_key(api: &Api, auth: &str, body: Value) -> String {
    let (status, answer) = v1(api, Method::POST, "/v1/api-keys", Some(body), Some(auth), None).await;
    assert_eq!(status, StatusCode::CREATED, "POST /v1/api-keys: {answer}");
    let key = answer["data"]["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("sk_live_"), "{key}");
    key
}

/// A call with `headers` as given.
async fn call(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    api.call(method, path, body, headers).await
}

async fn post_with_key(api: &Api, key: &str, body: Value) -> (StatusCode, Value) {
    call(api, Method::POST, "/v1/customers", Some(body), &[("X-API-Key", key)]).await
}

/// Asserts a success envelope with `status`; returns `data`.
fn v1_data(got: (StatusCode, Value), status: StatusCode, what: &str) -> Value {
    let (code, body) = got;
    assert_eq!(code, status, "{what}: {body}");
    assert_eq!(body["success"], json!(true), "{what}: {body}");
    body["data"].clone()
}

/// Asserts the exact fields of a customer and its id and times.
fn assert_customer(c: &Value) {
    assert_eq!(keys(c), sorted(&CUSTOMER_KEYS), "{c}");
    let id = c["id"].as_str().unwrap_or_else(|| panic!("id: {c}"));
    let suffix = id.strip_prefix("cust_").unwrap_or_else(|| panic!("id {id} lacks cust_"));
    let uuid = uuid::Uuid::parse_str(suffix).unwrap_or_else(|e| panic!("id {id}: {e}"));
    assert_eq!(uuid.get_version_num(), 7, "{id}");
    assert_eq!(uuid.simple().to_string(), suffix, "{id}");
    assert!(time_ms(&c["updatedAt"]) >= time_ms(&c["createdAt"]), "{c}");
    assert!(c["tags"].is_array(), "{c}");
    assert!(c["metadata"].is_object(), "{c}");
}

/// POSTs with the key and asserts `status`; returns the customer.
async fn upsert(api: &Api, key: &str, body: Value, status: StatusCode) -> Value {
    let data = v1_data(post_with_key(api, key, body.clone()).await, status, &format!("POST {body}"));
    assert_customer(&data);
    data
}

fn path_of(c: &Value) -> String {
    format!("/v1/customers/{}", c["id"].as_str().unwrap())
}

// ---- tests ------------------------------------------------------------------

#[actix_web::test]
async fn customers_are_created_then_matched_by_external_id_then_email_then_phone() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, auth, key) = owner(&app, "upsert").await;

    // Created: 201, email normalised, the rest as sent.
    let created = upsert(
        &api,
        &key,
        json!({
            "external_id": "shopify_cust_123",
            "email": " Jane@Example.COM ",
            "name": "Jane Doe",
            "metadata": {"plan": "free", "seats": 3},
        }),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["externalId"], "shopify_cust_123");
    assert_eq!(created["email"], "jane@example.com");
    assert_eq!(created["name"], "Jane Doe");
    assert_eq!(created["phone"], Value::Null);
    assert_eq!(created["tags"], json!([]));
    assert_eq!(created["metadata"], json!({"plan": "free", "seats": 3}));
    assert_eq!(created["createdAt"], created["updatedAt"]);
    let id = created["id"].clone();

    // By external_id: 200, the same customer, metadata merged key by key.
    let by_external = upsert(
        &api,
        &key,
        json!({"external_id": "shopify_cust_123", "metadata": {"plan": "pro", "locale": "en-US"}}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_external["id"], id);
    assert_eq!(by_external["metadata"], json!({"plan": "pro", "seats": 3, "locale": "en-US"}));
    assert_eq!(by_external["email"], "jane@example.com", "untouched");
    assert_eq!(by_external["name"], "Jane Doe", "untouched");
    assert_eq!(by_external["createdAt"], created["createdAt"]);

    // By email (any case): the phone is added; a null metadata value removes its key.
    let by_email = upsert(
        &api,
        &key,
        json!({"email": "JANE@example.com", "phone": "+15551234567", "metadata": {"seats": null}}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_email["id"], id);
    assert_eq!(by_email["phone"], "+15551234567");
    assert_eq!(by_email["metadata"], json!({"plan": "pro", "locale": "en-US"}));

    // By phone: the name changes; tags replace, trimmed and without repeats.
    let by_phone = upsert(
        &api,
        &key,
        json!({"phone": "+15551234567", "name": "Jane D.", "tags": ["vip", " vip ", "beta"]}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_phone["id"], id);
    assert_eq!(by_phone["name"], "Jane D.");
    assert_eq!(by_phone["tags"], json!(["vip", "beta"]));
    assert_eq!(by_phone["externalId"], "shopify_cust_123");
    assert_eq!(by_phone["email"], "jane@example.com");
    assert!(time_ms(&by_phone["updatedAt"]) >= time_ms(&by_email["updatedAt"]), "{by_phone}");

    // Sending what is stored again changes nothing.
    let same =
        upsert(&api, &key, json!({"external_id": "shopify_cust_123", "name": "Jane D."}), StatusCode::OK)
            .await;
    assert_eq!(same, by_phone);

    // Read back, with the key and with the JWT: as last written.
    let got = v1_data(
        call(&api, Method::GET, &path_of(&created), None, &[("X-API-Key", &key)]).await,
        StatusCode::OK,
        "GET key",
    );
    assert_eq!(got, by_phone);
    let got = v1_data(
        v1(&api, Method::GET, &path_of(&created), None, Some(&auth), None).await,
        StatusCode::OK,
        "GET JWT",
    );
    assert_eq!(got, by_phone);

    // external_id wins over email: a known email under a new external_id is another customer.
    let other = upsert(
        &api,
        &key,
        json!({"external_id": "shopify_cust_456", "email": "jane@example.com"}),
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(other["id"], id);
    assert_eq!(other["name"], Value::Null);
    // An unknown email and phone: a new customer.
    let third = upsert(&api, &key, json!({"email": "max@example.com"}), StatusCode::CREATED).await;
    assert_ne!(third["id"], id);
    assert_ne!(third["id"], other["id"]);
    assert_eq!(third["externalId"], Value::Null);
    let fourth = upsert(&api, &key, json!({"phone": "+4930123456"}), StatusCode::CREATED).await;
    assert_eq!(fourth["email"], Value::Null);
    // Both routes are documented.
    let (status, doc) = api.get("/openapi.json", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/v1/customers"]["post"].is_object(), "POST /v1/customers undocumented");
    assert!(doc["paths"]["/v1/customers/{id}"]["get"].is_object(), "GET /v1/customers/{{id}} undocumented");
    // The first customer is unchanged by all that.
    let got = v1_data(
        call(&api, Method::GET, &path_of(&created), None, &[("X-API-Key", &key)]).await,
        StatusCode::OK,
        "GET",
    );
    assert_eq!(got, by_phone);
}

#[actix_web::test]
async fn another_tenants_customer_is_not_found() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, auth_a, key_a) = owner(&app, "tenant a").await;
    let (_, auth_b, key_b) = owner(&app, "tenant b").await;
    let mine =
        upsert(&api, &key_a, json!({"external_id": "c1", "email": "c1@example.com"}), StatusCode::CREATED)
            .await;

    for (what, headers) in [
        ("B's key", vec![("X-API-Key", key_b.as_str())]),
        ("B's JWT", vec![("Authorization", auth_b.as_str())]),
    ] {
        let (status, body) = call(&api, Method::GET, &path_of(&mine), None, &headers).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
        v1_error(&body, "NOT_FOUND");
    }
    for unknown in ["cust_0193a1c2d4e57f6ab8c9d0e1f2a3b4c5", "nope"] {
        let (status, body) =
            call(&api, Method::GET, &format!("/v1/customers/{unknown}"), None, &[("X-API-Key", &key_a)])
                .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}: {body}");
        v1_error(&body, "NOT_FOUND");
    }

    // The same identifiers in tenant B are B's own customer: A's is untouched.
    let theirs = upsert(
        &api,
        &key_b,
        json!({"external_id": "c1", "email": "c1@example.com", "name": "B's"}),
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(theirs["id"], mine["id"]);
    let got =
        v1_data(v1(&api, Method::GET, &path_of(&mine), None, Some(&auth_a), None).await, StatusCode::OK, "A");
    assert_eq!(got, mine);
}

#[actix_web::test]
async fn invalid_customers_are_refused_with_400() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, _, key) = owner(&app, "invalid").await;

    let big = "x".repeat(16 * 1024);
    for body in [
        // No identifier at all.
        json!({}),
        json!({"name": "Only a name", "metadata": {"plan": "pro"}}),
        json!({"email": null, "phone": null, "external_id": null}),
        // Phones must be E.164.
        json!({"phone": "15551234567"}),
        json!({"phone": "+1 555 123 4567"}),
        json!({"phone": "+1555"}),
        json!({"phone": "+1234567890123456"}),
        json!({"phone": "+1555-123-4567"}),
        json!({"phone": ""}),
        // Emails must look like one.
        json!({"email": "jane"}),
        json!({"email": "jane@localhost"}),
        json!({"email": ""}),
        // Lengths and kinds.
        json!({"external_id": ""}),
        json!({"external_id": "e".repeat(201)}),
        json!({"external_id": "ok", "name": "n".repeat(201)}),
        json!({"external_id": "ok", "name": "  "}),
        json!({"external_id": "ok", "metadata": ["not", "an", "object"]}),
        json!({"external_id": "ok", "metadata": "plan=pro"}),
        json!({"external_id": "ok", "metadata": {"blob": big}}),
        json!({"external_id": "ok", "tags": [""]}),
        json!({"email": 42}),
        json!({"external_id": 7}),
    ] {
        let (status, answer) = post_with_key(&api, &key, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        v1_error(&answer, "BAD_REQUEST");
    }
    // No body at all.
    let (status, answer) = call(&api, Method::POST, "/v1/customers", None, &[("X-API-Key", &key)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    v1_error(&answer, "BAD_REQUEST");

    // Nothing was stored: the external id is still free.
    upsert(&api, &key, json!({"external_id": "ok"}), StatusCode::CREATED).await;
    // Metadata that the merge would push past 16 KiB is refused, and the customer kept as it was.
    let half = "y".repeat(9 * 1024);
    let first =
        upsert(&api, &key, json!({"external_id": "grow", "metadata": {"a": half}}), StatusCode::CREATED)
            .await;
    let (status, answer) =
        post_with_key(&api, &key, json!({"external_id": "grow", "metadata": {"b": half}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    v1_error(&answer, "BAD_REQUEST");
    let got = v1_data(
        call(&api, Method::GET, &path_of(&first), None, &[("X-API-Key", &key)]).await,
        StatusCode::OK,
        "GET",
    );
    assert_eq!(got, first);
}

#[actix_web::test]
async fn customers_take_an_agent_key_or_the_jwt_of_any_member() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (t, owner_auth, key) = owner(&app, "auth").await;

    // The JWT alone works, for any member: a Viewer creates and reads.
    let viewer_email = esc::email_for("viewer", "example.com");
    let (status, body) = api
        .post(
            &format!("/api/tenants/{}/members", t.id),
            json!({"email": viewer_email, "role": "Viewer"}),
            &[("Authorization", &owner_auth)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "add a Viewer: {body}");
    let viewer = sign_in(&app, &viewer_email).await;
    let made = v1_data(
        v1(
            &api,
            Method::POST,
            "/v1/customers",
            Some(json!({"external_id": "v1"})),
            Some(&viewer),
            Some(&t.id),
        )
        .await,
        StatusCode::CREATED,
        "Viewer POST",
    );
    assert_customer(&made);
    let got = v1_data(
        v1(&api, Method::GET, &path_of(&made), None, Some(&viewer), Some(&t.id)).await,
        StatusCode::OK,
        "Viewer GET",
    );
    assert_eq!(got, made);
    // The key sees the same tenant's customer.
    let again = upsert(&api, &key, json!({"external_id": "v1"}), StatusCode::OK).await;
    assert_eq!(again["id"], made["id"]);

    // X-API-Key, when sent, is what counts: a bad bearer beside a good key is fine,
    // a bad key beside a good JWT is not.
    let (status, body) = call(
        &api,
        Method::GET,
        &path_of(&made),
        None,
        &[("X-API-Key", &key), ("Authorization", "Bearer not.a.jwt")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let unknown_key = format!("sk_live_{}", "Z".repeat(40));
    let (status, body) = call(
        &api,
        Method::GET,
        &path_of(&made),
        None,
        &[("X-API-Key", &unknown_key), ("Authorization", &owner_auth)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    v1_error(&body, "UNAUTHORIZED");

    // No credential, a bad one, an Escalation API key: 401, even with a bad body.
    let bad_jwt = "Bearer not.a.jwt".to_string();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("nothing", vec![]),
        ("unknown key", vec![("X-API-Key", unknown_key.as_str())]),
        ("escalation key", vec![("X-API-Key", t.key.as_str())]),
        ("empty key", vec![("X-API-Key", "")]),
        ("bad JWT", vec![("Authorization", bad_jwt.as_str())]),
    ];
    for (what, headers) in &cases {
        for (method, path, body) in [
            (Method::POST, "/v1/customers", Some(json!({"external_id": "x"}))),
            (Method::POST, "/v1/customers", Some(json!({"phone": "not a phone"}))),
            (Method::GET, path_of(&made).as_str(), None),
        ] {
            let (status, answer) = call(&api, method.clone(), path, body, headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} {method} {path}: {answer}");
            v1_error(&answer, "UNAUTHORIZED");
        }
    }

    // The key's Origin rules hold: a server-to-server key refuses a browser Origin.
    let (status, body) = call(
        &api,
        Method::POST,
        "/v1/customers",
        Some(json!({"external_id": "o"})),
        &[("X-API-Key", &key), ("Origin", "https://myapp.com")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    v1_error(&body, "FORBIDDEN");
    let web_key =
        agent_key(&api, &owner_auth, json!({"name": "web", "allowed_origins": ["https://myapp.com"]})).await;
    let (status, body) = call(
        &api,
        Method::POST,
        "/v1/customers",
        Some(json!({"external_id": "o"})),
        &[("X-API-Key", &web_key), ("Origin", "https://myapp.com")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A JWT naming a tenant its user is not a member of: 403.
    let (other, _, _) = owner(&app, "elsewhere").await;
    let (status, body) =
        v1(&api, Method::GET, &path_of(&made), None, Some(&owner_auth), Some(&other.id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    v1_error(&body, "FORBIDDEN");

    // A revoked key is 401 from the next request on.
    let (_, listed) = v1(&api, Method::GET, "/v1/api-keys", None, Some(&owner_auth), None).await;
    let key_id = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "auth key")
        .and_then(|k| k["id"].as_str())
        .unwrap_or_else(|| panic!("the key in {listed}"))
        .to_string();
    let (status, body) =
        v1(&api, Method::DELETE, &format!("/v1/api-keys/{key_id}"), None, Some(&owner_auth), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&api, Method::GET, &path_of(&made), None, &[("X-API-Key", &key)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    v1_error(&body, "UNAUTHORIZED");
}

#[actix_web::test]
async fn concurrent_creates_of_one_external_id_make_one_customer() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, _, key) = owner(&app, "race").await;

    for round in 0..2 {
        let external_id = format!("race_{round}");
        let body = json!({"external_id": external_id, "email": format!("race{round}@example.com"), "metadata": {"n": 1}});
        let answers =
            futures_util::future::join_all((0..10).map(|_| post_with_key(&api, &key, body.clone()))).await;
        let mut ids = std::collections::BTreeSet::new();
        let mut created = 0;
        for (status, answer) in &answers {
            assert!(
                *status == StatusCode::CREATED || *status == StatusCode::OK,
                "round {round}: {status} {answer}"
            );
            assert_customer(&answer["data"]);
            assert_eq!(answer["data"]["externalId"], external_id.as_str());
            created += usize::from(*status == StatusCode::CREATED);
            ids.insert(answer["data"]["id"].as_str().unwrap().to_string());
        }
        assert_eq!(created, 1, "round {round}: exactly one create: {answers:?}");
        assert_eq!(ids.len(), 1, "round {round}: one customer: {ids:?}");
        let id = ids.into_iter().next().unwrap();
        let got = v1_data(
            call(&api, Method::GET, &format!("/v1/customers/{id}"), None, &[("X-API-Key", &key)]).await,
            StatusCode::OK,
            "GET",
        );
        assert_eq!(got["metadata"], json!({"n": 1}));
    }
}

/// A route that exists only in this test binary: the message path's customer
/// lookup, behind an Agent API key as Cerebral invocation is.
fn probe_routes(cfg: &mut actix_web::web::ServiceConfig) {
    use switchboard::http::agent::customers::{customer_for_message, view};

    #[derive(serde::Deserialize)]
    struct Probe {
        customer_id: Option<String>,
        identity: Option<Value>,
    }

    async fn probe(
        state: actix_web::web::Data<switchboard::startup::AppState>,
        caller: switchboard::http::auth::AgentKey,
        body: actix_web::web::Json<Probe>,
    ) -> Result<actix_web::HttpResponse, switchboard::error::AppError> {
        let found = customer_for_message(
            &state,
            &caller.tenant.id,
            body.customer_id.as_deref(),
            body.identity.as_ref(),
        )
        .await?;
        let data = match found {
            Some(row) => serde_json::to_value(view(&row)?).unwrap(),
            None => Value::Null,
        };
        Ok(actix_web::HttpResponse::Ok().json(json!({"success": true, "data": data})))
    }
    cfg.service(
        actix_web::web::resource("/v1/__probe/customer_for_message").route(actix_web::web::post().to(probe)),
    );
}

#[actix_web::test]
async fn messages_find_or_create_their_customer_from_customer_id_and_identity() {
    let app = common::spawn_app_full(
        &[("SWITCHBOARD_MAIL", common::OUTBOX_PLACEHOLDER), ENV[0]],
        true,
        probe_routes,
    )
    .await;
    let api = Api::of(&app);
    let (_, _, key) = owner(&app, "messages").await;
    let (_, _, other_key) = owner(&app, "other tenant").await;
    let message = |body: Value| {
        let api = api.clone();
        let key = key.clone();
        async move {
            call(&api, Method::POST, "/v1/__probe/customer_for_message", Some(body), &[("X-API-Key", &key)])
                .await
        }
    };
    let found = |got: (StatusCode, Value), what: &str| {
        let data = v1_data(got, StatusCode::OK, what);
        assert_customer(&data);
        data
    };

    // Nobody named: no customer.
    let (status, body) = message(json!({})).await;
    assert_eq!((status, &body["data"]), (StatusCode::OK, &Value::Null), "{body}");

    // A customer_id that is no customer's id is the caller's external id: created once, then found.
    let by_ref = found(message(json!({"customer_id": "cust_8f2a"})).await, "customer_id");
    assert_eq!(by_ref["externalId"], "cust_8f2a");
    assert_ne!(by_ref["id"], "cust_8f2a");
    let again = found(message(json!({"customer_id": "cust_8f2a"})).await, "customer_id again");
    assert_eq!(again, by_ref);
    // Its own id finds it too.
    let by_id = found(message(json!({"customer_id": by_ref["id"]})).await, "own id");
    assert_eq!(by_id, by_ref);

    // An identity: the known keys are fields, the rest (and an object `metadata`) metadata.
    let ann = found(
        message(json!({"identity": {
            "email": "Ann@Example.com", "name": "Ann", "locale": "de-DE", "metadata": {"plan": "pro"},
        }}))
        .await,
        "identity",
    );
    assert_ne!(ann["id"], by_ref["id"]);
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["name"], "Ann");
    assert_eq!(ann["externalId"], Value::Null);
    assert_eq!(ann["metadata"], json!({"locale": "de-DE", "plan": "pro"}));
    // Matched again by email, the phone added; the POST endpoint sees the same customer.
    let ann2 = found(
        message(json!({"identity": {"email": "ann@example.com", "phone": "+4915112345678"}})).await,
        "identity by email",
    );
    assert_eq!(ann2["id"], ann["id"]);
    assert_eq!(ann2["phone"], "+4915112345678");
    let posted = upsert(&api, &key, json!({"phone": "+4915112345678"}), StatusCode::OK).await;
    assert_eq!(posted["id"], ann["id"]);

    // A customer_id (its id) plus an identity external id: the external id is attached.
    let attached = found(
        message(json!({"customer_id": ann["id"], "identity": {"external_id": "crm_9", "name": "Ann B."}}))
            .await,
        "attach",
    );
    assert_eq!(attached["id"], ann["id"]);
    assert_eq!(attached["externalId"], "crm_9");
    assert_eq!(attached["name"], "Ann B.");
    // ... and then finds her by itself, as customer_id or identity.id.
    assert_eq!(found(message(json!({"customer_id": "crm_9"})).await, "crm_9")["id"], ann["id"]);
    assert_eq!(found(message(json!({"identity": {"id": "crm_9"}})).await, "identity.id")["id"], ann["id"]);
    // Attaching an external id that another customer holds: 409.
    let (status, body) =
        message(json!({"customer_id": ann["id"], "identity": {"external_id": "cust_8f2a"}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    v1_error(&body, "CONFLICT");

    // Another tenant's customer id is just an external id here: a new customer of this tenant.
    let (status, theirs) = call(
        &api,
        Method::POST,
        "/v1/__probe/customer_for_message",
        Some(json!({"identity": {"email": "zed@example.com"}})),
        &[("X-API-Key", &other_key)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    let foreign = found(message(json!({"customer_id": theirs["data"]["id"]})).await, "foreign id");
    assert_ne!(foreign["id"], theirs["data"]["id"]);
    assert_eq!(foreign["externalId"], theirs["data"]["id"]);
    assert_eq!(foreign["email"], Value::Null);

    // Malformed: 400.
    for body in [
        json!({"identity": "ann@example.com"}),
        json!({"identity": ["ann@example.com"]}),
        json!({"identity": {}}),
        json!({"identity": {"name": "Only a name", "locale": "en"}}),
        json!({"identity": {"email": 5}}),
        json!({"identity": {"email": "not-an-email"}}),
        json!({"identity": {"phone": "555"}}),
        json!({"customer_id": ""}),
        json!({"customer_id": "a", "identity": {"external_id": "b"}}),
        json!({"identity": {"external_id": "a", "id": "b"}}),
    ] {
        let (status, answer) = message(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        v1_error(&answer, "BAD_REQUEST");
    }
}

#[actix_web::test]
async fn concurrent_merges_into_one_customer_all_land() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let (_, _, key) = owner(&app, "merges").await;

    let answers = futures_util::future::join_all((0..10).map(|i| {
        post_with_key(&api, &key, json!({"external_id": "shared", "metadata": {format!("k{i}"): i}}))
    }))
    .await;
    for (status, answer) in &answers {
        assert!(*status == StatusCode::CREATED || *status == StatusCode::OK, "{status} {answer}");
    }
    let id = answers[0].1["data"]["id"].as_str().unwrap().to_string();
    let got = v1_data(
        call(&api, Method::GET, &format!("/v1/customers/{id}"), None, &[("X-API-Key", &key)]).await,
        StatusCode::OK,
        "GET",
    );
    let expected: serde_json::Map<String, Value> = (0..10).map(|i| (format!("k{i}"), json!(i))).collect();
    let mut stored = got["metadata"].as_object().unwrap().clone();
    stored.sort_keys();
    let mut expected = expected;
    expected.sort_keys();
    assert_eq!(stored, expected, "every request's key is kept");
}
