//! The SOP engine of `POST /v1/cerebrals/{id}/message`, through the public
//! API: which SOP a message matches (keywords as whole words in any case,
//! regexes as written, the first match wins, else the model answers); `reply`
//! templates; `http` actions against a real loopback server, and the outbound
//! guard at SOP write time and at call time; `escalate` actions, and the loop
//! escalate → an expert of the tenant resolves → the answer joins the
//! session's memory and the model sees it on the next turn, with
//! `escalation.created`, `escalation.resolved` and `conversation.completed`
//! delivered to a `/v1/webhooks` subscriber and verified with the reference
//! `standardwebhooks` package. An escalation without a session joins no
//! memory; one beyond the plan's daily quota does not fail the turn.

#[path = "common/agent.rs"]
mod agent;
#[path = "common/child.rs"]
#[allow(dead_code)] // each test file uses a different part
mod child;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use agent::{register_as, sign_in, v1, v1_error};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use child::ChildServer as Server;
use common::receiver::{self, Behaviour, Captured, Receiver};
use diesel::prelude::*;
use esc::{keys, sorted, time_ms, Api, Tenant};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard::settings::DatabaseUrl;
use switchboard::store::connection::DbManager;
use switchboard::store::schema::{session_escalations, session_messages};

/// Every wait in this file is a poll with this deadline.
const WAIT: Duration = Duration::from_secs(20);

/// Loopback targets allowed (SOP `http` actions and webhook receivers), quick
/// webhook retries, sign-in limits out of the way.
const ENV: [(&str, &str); 3] = [
    ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "100ms,200ms"),
    ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m"),
];

/// The fields of a message's `data` and of its `metadata`.
const REPLY_KEYS: [&str; 4] = ["message", "session_id", "execution_id", "metadata"];
const REPLY_METADATA_KEYS: [&str; 6] =
    ["model", "tokens_used", "actions_executed", "latency_ms", "sop_matched", "escalation_ids"];

/// The fields of a `conversation.completed` payload (agent-api.md).
const CONVERSATION_KEYS: [&str; 7] =
    ["event", "cerebral_id", "session_id", "customer_id", "execution_id", "message", "timestamp"];

/// The fields of a transcript entry.
const ENTRY_KEYS: [&str; 7] =
    ["id", "role", "content", "customerId", "executionId", "escalationId", "createdAt"];

// ---- helpers ----------------------------------------------------------------

/// A registered tenant (its `cero_` escalation key) and its Owner's `Authorization` value.
struct Owner {
    tenant: Tenant,
    auth: String,
}

async fn owner(app: &common::TestApp, name: &str) -> Owner {
    let (tenant, email) = register_as(&Api::of(app), name).await;
    let auth = sign_in(app, &email).await;
    Owner { tenant, auth }
}

/// Asserts a success envelope with `status`; returns `data`.
fn v1_data(got: (StatusCode, Value), status: StatusCode, what: &str) -> Value {
    let (code, body) = got;
    assert_eq!(code, status, "{what}: {body}");
    assert_eq!(body["success"], json!(true), "{what}: {body}");
    body["data"].clone()
}

/// `POST /v1/cerebrals`; returns the Cerebral's id.
async fn cerebral(api: &Api, auth: &str, body: Value) -> String {
    let data = v1_data(
        v1(api, Method::POST, "/v1/cerebrals", Some(body.clone()), Some(auth), None).await,
        StatusCode::CREATED,
        &format!("POST /v1/cerebrals {body}"),
    );
    data["id"].as_str().unwrap_or_else(|| panic!("id: {data}")).to_string()
}

/// A new `sk_live_` key with `identity_mode` (None: the default).
async fn agent_key(api: &Api, auth: &str, identity_mode: Option<&str>) -> String {
    let mut body = json!({"name": esc::unique("sop-key")});
    if let Some(mode) = identity_mode {
        body["identity_mode"] = json!(mode);
    }
    let data = v1_data(
        v1(api, Method::POST, "/v1/api-keys", Some(body), Some(auth), None).await,
        StatusCode::CREATED,
        "POST /v1/api-keys",
    );
    let key = data["key"].as_str().unwrap_or_else(|| panic!("key: {data}")).to_string();
    assert!(key.starts_with("sk_live_"), "{data}");
    key
}

/// `POST /v1/cerebrals/{id}/message` with the key.
async fn send(api: &Api, key: &str, cerebral: &str, body: Value) -> (StatusCode, Value) {
    api.post(&format!("/v1/cerebrals/{cerebral}/message"), body, &[("X-API-Key", key)]).await
}

/// Sends a message; asserts 200 and the answer's shape; returns `data`.
async fn turn(api: &Api, key: &str, cerebral: &str, body: Value) -> Value {
    let data =
        v1_data(send(api, key, cerebral, body.clone()).await, StatusCode::OK, &format!("message {body}"));
    assert_eq!(keys(&data), sorted(&REPLY_KEYS), "{data}");
    assert_eq!(keys(&data["metadata"]), sorted(&REPLY_METADATA_KEYS), "{data}");
    assert!(
        data["execution_id"].as_str().is_some_and(|e| e.starts_with("exec_") && e.len() > 5),
        "execution_id: {data}"
    );
    assert_eq!(data["session_id"], body.get("session_id").cloned().unwrap_or(Value::Null), "{data}");
    let m = &data["metadata"];
    for k in ["tokens_used", "actions_executed", "latency_ms"] {
        assert!(m[k].is_u64(), "{k}: {data}");
    }
    assert!(m["escalation_ids"].is_array(), "{data}");
    data
}

/// Asserts that an SOP's `reply` answered: no model, no tokens.
fn assert_sop_replied(data: &Value, sop: &str, actions: u64, message: &str) {
    let m = &data["metadata"];
    assert_eq!(data["message"], message, "{data}");
    assert_eq!(m["sop_matched"], sop, "{data}");
    assert_eq!(m["model"], Value::Null, "an SOP reply calls no model: {data}");
    assert_eq!(m["tokens_used"], 0, "{data}");
    assert_eq!(m["actions_executed"], actions, "{data}");
}

/// Asserts that the model answered (the offline provider).
fn assert_model_answered(data: &Value, sop: Option<&str>, model: &str, message: &str) {
    let m = &data["metadata"];
    assert_eq!(data["message"], message, "{data}");
    assert_eq!(m["sop_matched"], json!(sop), "{data}");
    assert_eq!(m["model"], model, "{data}");
    assert!(m["tokens_used"].as_u64().is_some_and(|t| t > 0), "the offline model counts tokens: {data}");
}

fn offline(message: &str) -> String {
    format!("Offline reply to \"{message}\".")
}

/// `GET /v1/cerebrals/{id}/sessions/{sid}` (JWT): the transcript's entries.
async fn transcript(api: &Api, auth: &str, cerebral: &str, session: &str) -> Vec<Value> {
    let data = v1_data(
        v1(api, Method::GET, &format!("/v1/cerebrals/{cerebral}/sessions/{session}"), None, Some(auth), None)
            .await,
        StatusCode::OK,
        "transcript",
    );
    assert_eq!(keys(&data), sorted(&["cerebralId", "sessionId", "messages"]), "{data}");
    assert_eq!((&data["cerebralId"], &data["sessionId"]), (&json!(cerebral), &json!(session)), "{data}");
    let entries = data["messages"].as_array().unwrap_or_else(|| panic!("messages: {data}")).clone();
    for e in &entries {
        assert_eq!(keys(e), sorted(&ENTRY_KEYS), "{e}");
        assert!(e["id"].as_str().is_some_and(|i| i.starts_with("mem_")), "{e}");
        time_ms(&e["createdAt"]);
    }
    entries
}

/// `POST /v1/webhooks` for `events` to `url`; returns its secret.
async fn subscribe(api: &Api, auth: &str, url: &str, events: &[&str]) -> String {
    let data = v1_data(
        v1(api, Method::POST, "/v1/webhooks", Some(json!({"url": url, "events": events})), Some(auth), None)
            .await,
        StatusCode::CREATED,
        "POST /v1/webhooks",
    );
    data["secret"].as_str().unwrap_or_else(|| panic!("secret: {data}")).to_string()
}

/// The receiver's requests carrying `event`.
fn with_event(got: &[Captured], event: &str) -> Vec<Captured> {
    got.iter().filter(|c| c.event().as_deref() == Some(event)).cloned().collect()
}

/// Checks a `conversation.completed` payload against the turn it reports.
fn assert_conversation(c: &Captured, cerebral: &str, data: &Value, customer: &Value) {
    let p = c.json();
    assert_eq!(keys(&p), sorted(&CONVERSATION_KEYS), "{}", c.describe());
    assert_eq!(p["event"], "conversation.completed", "{p}");
    assert_eq!(p["cerebral_id"], cerebral, "{p}");
    assert_eq!(p["session_id"], data["session_id"], "{p}");
    assert_eq!(p["execution_id"], data["execution_id"], "{p}");
    assert_eq!(p["message"], data["message"], "{p}");
    assert_eq!(&p["customer_id"], customer, "{p}");
    time_ms(&p["timestamp"]);
    assert_eq!(c.method, "POST", "{}", c.describe());
}

/// Rows of the test database's `session_messages` / `session_escalations` for a tenant.
fn memory_rows(db_url: &str, tenant: &str) -> (i64, i64) {
    let url = DatabaseUrl::parse(db_url).expect("the test database URL parses");
    let mut conn = DbManager::new(url).establish().expect("connect to the test database");
    let messages = session_messages::table
        .filter(session_messages::tenant_id.eq(tenant))
        .count()
        .get_result::<i64>(&mut conn)
        .expect("count session_messages");
    let links = session_escalations::table
        .filter(session_escalations::tenant_id.eq(tenant))
        .count()
        .get_result::<i64>(&mut conn)
        .expect("count session_escalations");
    (messages, links)
}

// ---- a loopback upstream for `http` actions ----------------------------------

/// What the upstream answers to every request.
const UPSTREAM_STATUS: u16 = 201;
const UPSTREAM_BODY: &str = r#"{"state":"shipped","eta":"tomorrow"}"#;

#[derive(Clone, Debug)]
struct Hit {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A tiny actix-web server on 127.0.0.1:0 that records every request and
/// answers `201` with [`UPSTREAM_BODY`].
struct Upstream {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn record(req: HttpRequest, body: web::Bytes, hits: web::Data<Mutex<Vec<Hit>>>) -> HttpResponse {
    hits.lock().unwrap().push(Hit {
        method: req.method().to_string(),
        path: req.uri().to_string(),
        content_type: req.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string),
        body: body.to_vec(),
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(UPSTREAM_STATUS).unwrap())
        .content_type("application/json")
        .body(UPSTREAM_BODY)
}

impl Upstream {
    fn start() -> Upstream {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::new(Mutex::new(Vec::new()));
        let data = web::Data::from(hits.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(record)))
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind the upstream");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Upstream { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

// ---- matchers ---------------------------------------------------------------

#[actix_web::test]
async fn the_first_matching_sop_wins_and_without_a_match_the_model_answers() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let o = owner(&app, "matchers").await;
    let key = agent_key(&api, &o.auth, None).await;
    let sops = json!([
        {"name": "orders", "match": {"keywords": ["order", "track my parcel"]},
         "actions": [{"type": "reply", "template": "SOP orders"}]},
        {"name": "refund_number", "match": {"regex": r"refund #\d+"},
         "actions": [{"type": "reply", "template": "SOP refund number"}]},
        {"name": "refund_words", "match": {"keywords": ["refund"]},
         "actions": [{"type": "reply", "template": "SOP refund words"}]},
    ]);
    let id = cerebral(&api, &o.auth, json!({"name": "Matcher", "sops": sops})).await;

    // Each message and the SOP that must answer it.
    let matched = [
        // Keywords: whole words or phrases, in any case.
        ("Where is my ORDER?", "orders", "SOP orders"),
        ("order", "orders", "SOP orders"),
        ("(Order)", "orders", "SOP orders"),
        ("please Track My Parcel now", "orders", "SOP orders"),
        // All three match; the first in the list wins.
        ("a refund #12 for my order", "orders", "SOP orders"),
        // The regex and the later keyword match: the regex comes first.
        ("I want my refund #12 back", "refund_number", "SOP refund number"),
        // The regex is as written (case-sensitive): only the keyword matches.
        ("REFUND #12", "refund_words", "SOP refund words"),
        ("A Refund, please", "refund_words", "SOP refund words"),
    ];
    for (message, sop, answer) in matched {
        let data = turn(&api, &key, &id, json!({"message": message})).await;
        assert_sop_replied(&data, sop, 1, answer);
        assert_eq!(data["metadata"]["escalation_ids"], json!([]), "{data}");
    }

    // Substrings of a keyword are not the keyword; nothing matches, and the model answers.
    for message in ["the border is closed", "my orders", "reorder it", "refunds", "unrefunded #12"] {
        let data = turn(&api, &key, &id, json!({"message": message})).await;
        assert_model_answered(&data, None, "offline-1", &offline(message));
        assert_eq!(data["metadata"]["actions_executed"], 0, "{data}");
        assert_eq!(data["metadata"]["escalation_ids"], json!([]), "{data}");
    }

    // A Cerebral with a model of its own: the (offline) model answers under that name.
    let named =
        cerebral(&api, &o.auth, json!({"name": "Named", "model": "house-model-7", "sops": sops})).await;
    let data = turn(&api, &key, &named, json!({"message": "hello there"})).await;
    assert_model_answered(&data, None, "house-model-7", &offline("hello there"));
    let data = turn(&api, &key, &named, json!({"message": "my order?"})).await;
    assert_sop_replied(&data, "orders", 1, "SOP orders");

    // A Cerebral without SOPs always asks the model.
    let plain = cerebral(&api, &o.auth, json!({"name": "Plain"})).await;
    let data = turn(&api, &key, &plain, json!({"message": "Where is my order?"})).await;
    assert_model_answered(&data, None, "offline-1", &offline("Where is my order?"));
}

// ---- reply ------------------------------------------------------------------

#[actix_web::test]
async fn reply_templates_render_the_message_customer_session_and_metadata() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let o = owner(&app, "templates").await;
    let key = agent_key(&api, &o.auth, None).await;
    let sops = json!([{
        "name": "greeting",
        "match": {"keywords": ["hello"]},
        "actions": [
            {"type": "reply", "template":
                "Hi {{customer.name}}, you said: {{message}} (session {{ session_id }}, locale {{metadata.locale}})"},
            {"type": "reply", "template": "Mail: {{customer.email}}; {{cerebral.name}}; [{{metadata.missing}}]"},
        ],
    }]);
    let id = cerebral(&api, &o.auth, json!({"name": "Greeter", "sops": sops})).await;
    let email = esc::email_for("jane", "customers.example.com");

    let data = turn(
        &api,
        &key,
        &id,
        json!({
            "message": "Hello there!",
            "session_id": "sess-templates-1",
            "identity": {"name": "Jane Doe", "email": email},
            "metadata": {"locale": "en-US", "channel": "web"},
        }),
    )
    .await;
    let want = format!(
        "Hi Jane Doe, you said: Hello there! (session sess-templates-1, locale en-US)\n\n\
         Mail: {email}; Greeter; []"
    );
    assert_sop_replied(&data, "greeting", 2, &want);
    assert_eq!(data["metadata"]["escalation_ids"], json!([]), "{data}");

    // The rendered reply is what the session remembers.
    let entries = transcript(&api, &o.auth, &id, "sess-templates-1").await;
    let roles: Vec<&str> = entries.iter().map(|e| e["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant"], "{entries:#?}");
    assert_eq!(entries[0]["content"], "Hello there!");
    assert_eq!(entries[1]["content"], want.as_str());
    for e in &entries {
        assert_eq!(e["executionId"], data["execution_id"], "{e}");
        assert!(e["customerId"].as_str().is_some_and(|c| c.starts_with("cust_")), "{e}");
        assert_eq!(e["escalationId"], Value::Null, "{e}");
    }

    // No session, no identity: those placeholders render as nothing.
    let data = turn(&api, &key, &id, json!({"message": "hello"})).await;
    assert_sop_replied(
        &data,
        "greeting",
        2,
        "Hi , you said: hello (session , locale )\n\nMail: ; Greeter; []",
    );

    // An anonymous key ignores the identity: no customer in the templates.
    let anonymous = agent_key(&api, &o.auth, Some("anonymous")).await;
    let data = turn(
        &api,
        &anonymous,
        &id,
        json!({"message": "HELLO", "identity": {"name": "Jane Doe", "email": email},
               "metadata": {"locale": "fr-FR"}}),
    )
    .await;
    assert_sop_replied(
        &data,
        "greeting",
        2,
        "Hi , you said: HELLO (session , locale fr-FR)\n\nMail: ; Greeter; []",
    );
}

// ---- http -------------------------------------------------------------------

#[actix_web::test]
async fn http_actions_call_the_target_and_its_answer_fills_the_reply() {
    let upstream = Upstream::start();
    // A loopback port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let o = owner(&app, "http-actions").await;
    let key = agent_key(&api, &o.auth, None).await;
    let sops = json!([
        {
            "name": "order_status_lookup",
            "match": {"regex": r"status of order #\d+"},
            "actions": [
                {"type": "http", "method": "post", "url": upstream.url("/orders/lookup?src=sop"),
                 "body": {"question": "{{message}}", "session": "{{session_id}}",
                          "order": "{{metadata.order_id}}", "count": 3, "flags": ["{{metadata.locale}}", true]}},
                {"type": "reply", "template": "Lookup answered {{http.status}}: {{http.body}}{{http.error}}"},
            ],
        },
        {
            "name": "cancel",
            "match": {"keywords": ["cancel"]},
            "actions": [{"type": "http", "method": "DELETE", "url": upstream.url("/orders/42")}],
        },
        {
            "name": "unreachable",
            "match": {"keywords": ["warehouse"]},
            "actions": [
                {"type": "http", "method": "PUT", "url": format!("http://127.0.0.1:{closed}/stock"),
                 "body": {"q": "{{message}}"}},
                {"type": "reply", "template": "status=[{{http.status}}] body=[{{http.body}}] error=[{{http.error}}]"},
            ],
        },
    ]);
    let id = cerebral(&api, &o.auth, json!({"name": "Lookup", "sops": sops})).await;

    let message = "What is the status of order #1234?";
    let data = turn(
        &api,
        &key,
        &id,
        json!({"message": message, "session_id": "sess-http", "metadata": {"order_id": "1234", "locale": "de-DE"}}),
    )
    .await;
    assert_sop_replied(
        &data,
        "order_status_lookup",
        2,
        &format!("Lookup answered {UPSTREAM_STATUS}: {UPSTREAM_BODY}"),
    );
    let hits = upstream.hits();
    assert_eq!(hits.len(), 1, "{hits:#?}");
    let hit = &hits[0];
    assert_eq!((hit.method.as_str(), hit.path.as_str()), ("POST", "/orders/lookup?src=sop"), "{hit:?}");
    assert!(hit.content_type.as_deref().is_some_and(|c| c.starts_with("application/json")), "{hit:?}");
    assert_eq!(
        hit.json(),
        json!({"question": message, "session": "sess-http", "order": "1234", "count": 3,
               "flags": ["de-DE", true]}),
        "the body is the action's JSON, rendered: {hit:?}"
    );

    // An http action alone: the call is made, and the model answers.
    let data = turn(&api, &key, &id, json!({"message": "Please cancel it"})).await;
    assert_model_answered(&data, Some("cancel"), "offline-1", &offline("Please cancel it"));
    assert_eq!(data["metadata"]["actions_executed"], 1, "{data}");
    let hits = upstream.hits();
    assert_eq!(hits.len(), 2, "{hits:#?}");
    assert_eq!((hits[1].method.as_str(), hits[1].path.as_str()), ("DELETE", "/orders/42"), "{:?}", hits[1]);
    assert!(hits[1].body.is_empty(), "no body was configured: {:?}", hits[1]);

    // A target that cannot be reached: the turn still answers, and {{http.error}} says why.
    let data = turn(&api, &key, &id, json!({"message": "is the warehouse open?"})).await;
    let m = &data["metadata"];
    assert_eq!((&m["sop_matched"], &m["actions_executed"]), (&json!("unreachable"), &json!(2)), "{data}");
    assert_eq!((&m["model"], &m["tokens_used"]), (&Value::Null, &json!(0)), "{data}");
    let answer = data["message"].as_str().unwrap();
    assert!(answer.starts_with("status=[] body=[] error=["), "{answer}");
    assert!(!answer.ends_with("error=[]"), "the error is told: {answer}");
    assert_eq!(upstream.hits().len(), 2);
}

#[actix_web::test]
async fn an_http_action_does_not_follow_a_redirect() {
    // The redirect's target is a place the action was never written to reach
    // (here, another loopback listener): following it would let a target that
    // passed the guard send the server anywhere.
    let elsewhere = Receiver::start(Behaviour::Ok);
    let redirecting = Receiver::start(Behaviour::Redirect(elsewhere.url("/internal/admin")));
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let o = owner(&app, "http-redirect").await;
    let key = agent_key(&api, &o.auth, None).await;
    let sops = json!([{
        "name": "lookup",
        "match": {"keywords": ["order"]},
        "actions": [
            {"type": "http", "method": "GET", "url": redirecting.url("/orders/7")},
            {"type": "reply", "template": "status=[{{http.status}}] error=[{{http.error}}]"},
        ],
    }]);
    let id = cerebral(&api, &o.auth, json!({"name": "Lookup", "sops": sops})).await;
    let data = turn(&api, &key, &id, json!({"message": "my order"})).await;
    assert_sop_replied(&data, "lookup", 2, "status=[302] error=[]");
    assert_eq!(redirecting.requests().len(), 1, "the target was called once");
    assert!(elsewhere.requests().is_empty(), "the redirect was followed: {:#?}", elsewhere.requests());
}

#[actix_web::test]
async fn an_http_action_to_a_private_target_is_refused_when_the_sop_is_written() {
    // Default guard: no private targets (the harness limits outbound calls to loopback).
    let app = common::spawn_with_outbox(&[("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m")]).await;
    let api = Api::of(&app);
    let o = owner(&app, "ssrf-write").await;
    let action = |url: &str| {
        json!([{"name": "lookup", "match": {"keywords": ["order"]},
                "actions": [{"type": "reply", "template": "x"}, {"type": "http", "method": "GET", "url": url}]}])
    };
    let refused: [(&str, &[&str]); 5] = [
        ("http://127.0.0.1:9/orders", &["loopback", "127.0.0.1"]),
        ("http://localhost:9/orders", &["loopback"]),
        ("http://[::1]:9/orders", &["loopback"]),
        ("http://10.1.2.3/orders", &["private"]),
        ("http://169.254.169.254/latest/meta-data", &["metadata"]),
    ];
    for (url, words) in refused {
        let got = v1(
            &api,
            Method::POST,
            "/v1/cerebrals",
            Some(json!({"name": "Guarded", "sops": action(url)})),
            Some(&o.auth),
            None,
        )
        .await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{url}: {}", got.1);
        let message = v1_error(&got.1, "BAD_REQUEST");
        assert!(message.starts_with("sops[0].actions[1].url"), "{url}: names the field: {message}");
        for w in words {
            assert!(message.to_lowercase().contains(w), "{url}: names {w:?}: {message}");
        }
    }
    let (_, list) = v1(&api, Method::GET, "/v1/cerebrals", None, Some(&o.auth), None).await;
    assert_eq!(list["data"], json!([]), "no Cerebral was created");

    // Nor can a PATCH bring one in.
    let id = cerebral(&api, &o.auth, json!({"name": "Patched"})).await;
    let got = v1(
        &api,
        Method::PATCH,
        &format!("/v1/cerebrals/{id}"),
        Some(json!({"sops": action("http://127.0.0.1:9/orders")})),
        Some(&o.auth),
        None,
    )
    .await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
    assert!(v1_error(&got.1, "BAD_REQUEST").contains("loopback"), "{}", got.1);
    let data = v1_data(
        v1(&api, Method::GET, &format!("/v1/cerebrals/{id}"), None, Some(&o.auth), None).await,
        StatusCode::OK,
        "GET cerebral",
    );
    assert_eq!(data["sops"], json!([]), "{data}");
}

/// The last one-time code mailed to `to` in a `file:` outbox.
fn code_in(outbox: &Path, to: &str) -> Option<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(outbox)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    let text = names
        .into_iter()
        .rev()
        .filter_map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).ok()?).ok())
        .find(|m| m["to"] == to)?["text"]
        .as_str()?
        .to_string();
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_string)
}

/// One-time-code sign-in against a child server that mails to `outbox`.
async fn child_sign_in(api: &Api, outbox: &Path, email: &str) -> String {
    let (status, body) = api.post("/api/auth/otp/request", json!({"email": email}), &[]).await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({})), "otp request for {email}");
    let end = Instant::now() + WAIT;
    let code = loop {
        if let Some(code) = code_in(outbox, email) {
            break code;
        }
        assert!(Instant::now() < end, "no code was mailed to {email} in {}", outbox.display());
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let (status, body) = api.post("/api/auth/otp/verify", json!({"email": email, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::OK, "otp verify for {email}: {body}");
    format!("Bearer {}", body["token"].as_str().expect("token"))
}

#[actix_web::test]
async fn an_http_action_whose_target_the_guard_now_refuses_is_refused_at_call_time() {
    // Through the API the guard's settings cannot change under a running server:
    // the SOP is written while loopback targets are allowed, and the server then
    // restarts on the same database with the default guard.
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    let outbox = dir.path().join("outbox");
    let mail = format!("file:{}", outbox.display());
    let base = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_MAIL", mail.as_str()),
        ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m"),
    ];

    // First life: loopback allowed. The SOP is accepted and its call goes through.
    let server =
        Server::start(dir.path(), &[&base[..], &[("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true")]].concat());
    let api = server.ready().await;
    let (_, email) = register_as(&api, "ssrf-call").await;
    let auth = child_sign_in(&api, &outbox, &email).await;
    let key = agent_key(&api, &auth, None).await;
    let sops = json!([{
        "name": "lookup",
        "match": {"keywords": ["order"]},
        "actions": [
            {"type": "http", "method": "GET", "url": upstream.url("/orders/7")},
            {"type": "reply", "template": "status=[{{http.status}}] body=[{{http.body}}] error=[{{http.error}}]"},
        ],
    }]);
    let id = cerebral(&api, &auth, json!({"name": "Lookup", "sops": sops})).await;
    let data = turn(&api, &key, &id, json!({"message": "my order"})).await;
    assert_sop_replied(
        &data,
        "lookup",
        2,
        &format!("status=[{UPSTREAM_STATUS}] body=[{UPSTREAM_BODY}] error=[]"),
    );
    assert_eq!(upstream.hits().len(), 1);
    server.kill();

    // Second life, default guard: the same SOP's call is refused before any connection.
    let server = Server::start(dir.path(), &base);
    let api = server.ready().await;
    let data = turn(&api, &key, &id, json!({"message": "my order again"})).await;
    let m = &data["metadata"];
    assert_eq!((&m["sop_matched"], &m["actions_executed"]), (&json!("lookup"), &json!(2)), "{data}");
    assert_eq!((&m["model"], &m["tokens_used"]), (&Value::Null, &json!(0)), "{data}");
    let answer = data["message"].as_str().unwrap();
    assert!(answer.starts_with("status=[] body=[] error=[refused by the outbound guard"), "{answer}");
    assert!(answer.contains("loopback"), "the refusal names the reason: {answer}");
    assert_eq!(upstream.hits().len(), 1, "the refused target was never contacted: {:#?}", upstream.hits());
    drop(server);
}

// ---- escalate ---------------------------------------------------------------

#[actix_web::test]
async fn an_escalation_is_resolved_by_an_expert_and_the_answer_joins_the_session() {
    let hook = Receiver::start(Behaviour::Ok);
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let o = owner(&app, "escalating").await;
    let t = &o.tenant;
    let secret = subscribe(
        &api,
        &o.auth,
        &hook.url("/events"),
        &["conversation.completed", "escalation.created", "escalation.resolved"],
    )
    .await;
    let key = agent_key(&api, &o.auth, None).await;
    let sops = json!([{
        "name": "order_help",
        "match": {"keywords": ["order"]},
        "actions": [{"type": "escalate", "domain": "commerce.orders", "priority": "urgent"}],
    }]);
    let cid = cerebral(&api, &o.auth, json!({"name": "Concierge", "sops": sops})).await;
    let expert = api.expert(&t.key, "Orders desk", &["commerce.orders"], 3).await;

    // Turn 1: the SOP escalates; the model answers meanwhile.
    let sid = "sess-escalate-1";
    let email = esc::email_for("buyer", "customers.example.com");
    let question = "Where is my order #1234?";
    let first = turn(
        &api,
        &key,
        &cid,
        json!({"message": question, "session_id": sid, "identity": {"email": email, "name": "Buyer"}}),
    )
    .await;
    assert_model_answered(&first, Some("order_help"), "offline-1", &offline(question));
    assert_eq!(first["metadata"]["actions_executed"], 1, "{first}");
    let ids = first["metadata"]["escalation_ids"].as_array().unwrap_or_else(|| panic!("{first}")).clone();
    assert_eq!(ids.len(), 1, "one escalation: {first}");
    let eid = ids[0].as_str().unwrap().to_string();

    // The escalation is the tenant's, about the message, and says where it came from.
    let detail = api.detail(&t.key, &eid).await;
    assert_eq!(detail["tenant_id"], t.id.as_str(), "{detail}");
    assert_eq!(detail["domain"], "commerce.orders", "{detail}");
    assert_eq!(detail["priority"], "urgent", "{detail}");
    assert_eq!(detail["query"], question, "{detail}");
    let meta = &detail["metadata"];
    assert_eq!(meta["source"], "cerebral", "{detail}");
    assert_eq!(meta["cerebral_id"], cid.as_str(), "{detail}");
    assert_eq!(meta["session_id"], sid, "{detail}");
    assert_eq!(meta["execution_id"], first["execution_id"], "{detail}");

    // escalation.created and the first conversation.completed reach the subscriber.
    let got = hook
        .until(WAIT, "escalation.created and conversation.completed", |r| {
            !with_event(r, "escalation.created").is_empty()
                && !with_event(r, "conversation.completed").is_empty()
        })
        .await;
    let created = with_event(&got, "escalation.created");
    assert_eq!(created.len(), 1, "{}", hook.dump());
    assert_eq!(created[0].escalation_id().as_deref(), Some(eid.as_str()), "{}", created[0].describe());
    assert_eq!(created[0].json()["query"], question, "{}", created[0].describe());
    let conversations = with_event(&got, "conversation.completed");
    assert_eq!(conversations.len(), 1, "{}", hook.dump());
    let customer = conversations[0].json()["customer_id"].clone();
    assert!(customer.as_str().is_some_and(|c| c.starts_with("cust_")), "{}", conversations[0].describe());
    assert_conversation(&conversations[0], &cid, &first, &customer);

    // The tenant's expert takes the case and answers it.
    api.until_status(&t.key, &eid, "routed", Some(&expert.id)).await;
    let (status, body) = api.accept(&expert.token, &eid).await;
    assert_eq!(status, StatusCode::OK, "accept: {body}");
    let answer = "Your order #1234 left the warehouse; it arrives Monday.";
    let (status, body) = api
        .resolve_with(
            &expert.token,
            &eid,
            json!({"answer": answer, "confidence": 0.95, "reasoning": "tracked"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "resolve: {body}");
    let resolved = api.until_status(&t.key, &eid, "resolved", Some(&expert.id)).await;
    assert_eq!(resolved["resolution"]["answer"], answer, "{resolved}");
    let got =
        hook.until(WAIT, "escalation.resolved", |r| !with_event(r, "escalation.resolved").is_empty()).await;
    let resolved_events = with_event(&got, "escalation.resolved");
    assert_eq!(resolved_events.len(), 1, "{}", hook.dump());
    assert_eq!(resolved_events[0].escalation_id().as_deref(), Some(eid.as_str()));
    assert_eq!(
        resolved_events[0].json()["resolution"]["answer"],
        answer,
        "{}",
        resolved_events[0].describe()
    );

    // The answer is in the session's memory, after the turn that escalated.
    let entries = transcript(&api, &o.auth, &cid, sid).await;
    let roles: Vec<&str> = entries.iter().map(|e| e["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "expert"], "{entries:#?}");
    assert_eq!(entries[0]["content"], question);
    assert_eq!(entries[1]["content"], first["message"]);
    assert_eq!(entries[1]["escalationId"], eid.as_str(), "the turn that escalated names it: {entries:#?}");
    let expert_entry = &entries[2];
    assert_eq!(expert_entry["content"], answer, "{expert_entry}");
    assert_eq!(expert_entry["escalationId"], eid.as_str(), "{expert_entry}");
    assert_eq!(expert_entry["executionId"], first["execution_id"], "{expert_entry}");
    assert!(time_ms(&expert_entry["createdAt"]) >= time_ms(&entries[1]["createdAt"]), "{entries:#?}");

    // Turn 2 (no SOP matches): the model sees the earlier message and the expert's answer.
    let follow_up = "Thanks! Any news?";
    let second = turn(
        &api,
        &key,
        &cid,
        json!({"message": follow_up, "session_id": sid, "identity": {"email": email}}),
    )
    .await;
    let want = format!(
        "Offline reply to \"{follow_up}\". Earlier in this conversation you said: \"{question}\". \
         A human expert answered: {answer}"
    );
    assert_model_answered(&second, None, "offline-1", &want);
    assert!(want.contains("A human expert answered:") && want.contains(answer));
    assert_eq!(second["metadata"]["escalation_ids"], json!([]), "{second}");
    let entries = transcript(&api, &o.auth, &cid, sid).await;
    let roles: Vec<&str> = entries.iter().map(|e| e["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "expert", "user", "assistant"], "{entries:#?}");
    assert_eq!(entries[4]["content"], want.as_str());

    // A conversation.completed for each turn, for the same customer; everything signed.
    let got = hook
        .until(WAIT, "two conversation.completed", |r| with_event(r, "conversation.completed").len() >= 2)
        .await;
    let conversations = with_event(&got, "conversation.completed");
    assert_eq!(conversations.len(), 2, "{}", hook.dump());
    let second_event = conversations
        .iter()
        .find(|c| c.json()["execution_id"] == second["execution_id"])
        .unwrap_or_else(|| panic!("no conversation.completed for turn 2:\n{}", hook.dump()));
    assert_conversation(second_event, &cid, &second, &customer);
    for r in &got {
        assert!(
            r.header("webhook-id").is_some_and(|i| i.starts_with("msg_")),
            "Standard Webhooks headers: {}",
            r.describe()
        );
    }
    assert_eq!(got.len(), 4, "created, resolved and two conversations, once each:\n{}", hook.dump());
    receiver::assert_signed(app.dir.path(), &secret, &got).await;

    // A JSON answer joins a session as JSON text.
    let sid2 = "sess-escalate-2";
    let third = turn(&api, &key, &cid, json!({"message": "order 77 is damaged", "session_id": sid2})).await;
    let eid2 =
        third["metadata"]["escalation_ids"][0].as_str().unwrap_or_else(|| panic!("{third}")).to_string();
    api.until_status(&t.key, &eid2, "routed", Some(&expert.id)).await;
    let structured = json!({"action": "refund", "amount": 25});
    let (status, body) = api
        .resolve_with(
            &expert.token,
            &eid2,
            json!({"answer": structured, "confidence": 0.8, "reasoning": "photo"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "resolve from routed: {body}");
    let end = Instant::now() + WAIT;
    let entries = loop {
        let entries = transcript(&api, &o.auth, &cid, sid2).await;
        if entries.len() >= 3 || Instant::now() > end {
            break entries;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(entries.len(), 3, "{entries:#?}");
    assert_eq!(entries[2]["role"], "expert", "{entries:#?}");
    let content: Value = serde_json::from_str(entries[2]["content"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("the answer is JSON text ({e}): {entries:#?}"));
    assert_eq!(content, structured);
    // The first session is untouched by the second escalation.
    assert_eq!(transcript(&api, &o.auth, &cid, sid).await.len(), 5);
}

#[actix_web::test]
async fn an_escalation_without_a_session_opens_and_its_answer_joins_no_memory() {
    let hook = Receiver::start(Behaviour::Ok);
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let o = owner(&app, "stateless").await;
    let t = &o.tenant;
    let secret = subscribe(
        &api,
        &o.auth,
        &hook.url("/events"),
        &["conversation.completed", "escalation.created", "escalation.resolved"],
    )
    .await;
    let key = agent_key(&api, &o.auth, None).await;
    let sops = json!([{
        "name": "handoff",
        "match": {"regex": "(?i)human"},
        "actions": [
            {"type": "escalate", "domain": "commerce.orders"},
            {"type": "reply", "template": "Case {{escalation.id}} is with an expert."},
        ],
    }]);
    let cid = cerebral(&api, &o.auth, json!({"name": "Stateless", "sops": sops})).await;
    let expert = api.expert(&t.key, "Orders desk", &["commerce.orders"], 3).await;

    // A bystander session on the same Cerebral (no SOP matches it).
    let bystander =
        turn(&api, &key, &cid, json!({"message": "just browsing", "session_id": "bystander"})).await;
    assert_model_answered(&bystander, None, "offline-1", &offline("just browsing"));

    // No session_id: the escalation opens all the same.
    let question = "I need a HUMAN please";
    let data = turn(&api, &key, &cid, json!({"message": question})).await;
    let eid = data["metadata"]["escalation_ids"][0].as_str().unwrap_or_else(|| panic!("{data}")).to_string();
    assert_eq!(data["metadata"]["escalation_ids"].as_array().unwrap().len(), 1, "{data}");
    assert_sop_replied(&data, "handoff", 2, &format!("Case {eid} is with an expert."));
    assert_eq!(data["session_id"], Value::Null, "{data}");

    let detail = api.detail(&t.key, &eid).await;
    assert_eq!(
        (&detail["domain"], &detail["query"]),
        (&json!("commerce.orders"), &json!(question)),
        "{detail}"
    );
    assert_eq!(detail["priority"], "standard", "the escalation default: {detail}");
    assert_eq!(detail["metadata"]["source"], "cerebral", "{detail}");
    assert_eq!(detail["metadata"]["session_id"], Value::Null, "{detail}");
    assert_eq!(detail["metadata"]["execution_id"], data["execution_id"], "{detail}");

    api.until_status(&t.key, &eid, "routed", Some(&expert.id)).await;
    let (status, body) = api.accept(&expert.token, &eid).await;
    assert_eq!(status, StatusCode::OK, "accept: {body}");
    let (status, body) = api
        .resolve_with(&expert.token, &eid, json!({"answer": "Called the customer back.", "confidence": 0.9}))
        .await;
    assert_eq!(status, StatusCode::OK, "resolve: {body}");
    api.until_status(&t.key, &eid, "resolved", Some(&expert.id)).await;
    let got = hook
        .until(WAIT, "escalation.created, escalation.resolved and two conversations", |r| {
            with_event(r, "escalation.created").len() == 1
                && with_event(r, "escalation.resolved").len() == 1
                && with_event(r, "conversation.completed").len() == 2
        })
        .await;
    let stateless = with_event(&got, "conversation.completed")
        .into_iter()
        .find(|c| c.json()["execution_id"] == data["execution_id"])
        .unwrap_or_else(|| panic!("no conversation.completed for the stateless turn:\n{}", hook.dump()));
    assert_conversation(&stateless, &cid, &data, &Value::Null);
    assert!(got
        .iter()
        .all(|r| r.escalation_id().is_none() || r.escalation_id().as_deref() == Some(eid.as_str())));
    receiver::assert_signed(app.dir.path(), &secret, &got).await;

    // Nothing joined any memory: the bystander holds its own turn only, and the
    // tenant has no other session entries and no session link at all.
    let entries = transcript(&api, &o.auth, &cid, "bystander").await;
    let roles: Vec<&str> = entries.iter().map(|e| e["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant"], "{entries:#?}");
    assert_eq!(memory_rows(&app.db.url, &t.id), (2, 0), "session_messages and session_escalations rows");

    // And the Cerebral goes on answering.
    let after = turn(&api, &key, &cid, json!({"message": "still there?", "session_id": "bystander"})).await;
    assert_model_answered(
        &after,
        None,
        "offline-1",
        "Offline reply to \"still there?\". Earlier in this conversation you said: \"just browsing\".",
    );
}

#[actix_web::test]
async fn an_escalation_beyond_the_plan_quota_does_not_fail_the_turn() {
    let app = common::spawn_with_outbox(&ENV).await;
    let api = Api::of(&app);
    let o = owner(&app, "over-quota").await;
    let key = agent_key(&api, &o.auth, None).await;
    let sops = json!([{
        "name": "handoff",
        "match": {"keywords": ["human"]},
        "actions": [{"type": "escalate", "domain": "commerce.orders", "priority": "batch"}],
    }]);
    let cid = cerebral(&api, &o.auth, json!({"name": "Busy", "sops": sops})).await;
    // The free plan opens 10 escalations a day.
    let mut opened = Vec::new();
    for i in 0..10 {
        let data =
            turn(&api, &key, &cid, json!({"message": format!("human {i}"), "session_id": "busy"})).await;
        let ids = data["metadata"]["escalation_ids"].as_array().unwrap().clone();
        assert_eq!(ids.len(), 1, "escalation {i}: {data}");
        opened.push(ids[0].as_str().unwrap().to_string());
    }
    let (status, list) = api.get("/escalations?limit=200", &[("X-API-Key", &o.tenant.key)]).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(10), "{list}");

    // The 11th: no escalation, but an answer all the same.
    let data = turn(&api, &key, &cid, json!({"message": "human 10", "session_id": "busy"})).await;
    assert_model_answered(
        &data,
        Some("handoff"),
        "offline-1",
        &format!("{} Earlier in this conversation you said: \"human 9\".", offline("human 10")),
    );
    assert_eq!(data["metadata"]["actions_executed"], 1, "{data}");
    assert_eq!(data["metadata"]["escalation_ids"], json!([]), "{data}");
    let (_, list) = api.get("/escalations?limit=200", &[("X-API-Key", &o.tenant.key)]).await;
    assert_eq!(list.as_array().map(Vec::len), Some(10), "no 11th case: {list}");
    let entries = transcript(&api, &o.auth, &cid, "busy").await;
    assert_eq!(entries.len(), 22, "every turn is remembered: {entries:#?}");
    assert_eq!(entries[21]["escalationId"], Value::Null, "{}", entries[21]);
    assert_eq!(entries[19]["escalationId"], opened[9].as_str(), "{}", entries[19]);
}
