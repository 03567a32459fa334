//! Every error case answers in the wire format of the surface its path belongs
//! to: `{"detail"}` at the root (Escalation API), the envelope under `/v1`,
//! `{"error"}` under `/api`. Probe routes that exist only in this test binary
//! take a typed JSON body and raise chosen errors, so the shared middleware
//! and extractors are exercised exactly as product routes use them.

mod common;

use actix_web::{web, HttpResponse};
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::error::AppError;
use switchboard::http::extract::{Json, OptionalJson};

#[derive(serde::Deserialize, serde::Serialize)]
struct Probe {
    name: String,
    count: u32,
}

async fn echo(body: Json<Probe>) -> HttpResponse {
    HttpResponse::Ok().json(body.0)
}

async fn maybe(body: OptionalJson<Probe>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "had_body": body.0.is_some() }))
}

async fn fail(kind: web::Path<String>) -> Result<HttpResponse, AppError> {
    Err(match kind.as_str() {
        "conflict" => AppError::Conflict("already there".into()),
        "rate" => AppError::RateLimited { message: "slow down".into(), retry_after_secs: 7 },
        "internal" => AppError::internal("secret cause: password=hunter2"),
        "unavailable" => {
            AppError::Unavailable { code: "TENANT_NOT_RUNNING", message: "tenant stopped".into() }
        }
        "forbidden" => AppError::Forbidden("not yours".into()),
        _ => AppError::NotFound("no such probe".into()),
    })
}

fn probe_routes(cfg: &mut web::ServiceConfig) {
    for prefix in ["", "/v1", "/api"] {
        cfg.service(web::resource(format!("{prefix}/__probe/echo")).route(web::post().to(echo)))
            .service(web::resource(format!("{prefix}/__probe/maybe")).route(web::post().to(maybe)))
            .service(web::resource(format!("{prefix}/__probe/fail/{{kind}}")).route(web::get().to(fail)));
    }
}

#[derive(Clone, Copy, Debug)]
enum Surface {
    Escalation,
    Agent,
    Platform,
}

const SURFACES: [(Surface, &str); 3] =
    [(Surface::Escalation, ""), (Surface::Agent, "/v1"), (Surface::Platform, "/api")];

/// Checks the body is exactly this surface's error shape, and returns the message.
fn message_of(surface: Surface, res_id: &str, body: &Value, code: &str) -> String {
    match surface {
        Surface::Escalation => {
            assert!(body["detail"].is_string(), "escalation error shape: {body}");
            assert!(body.get("error").is_none() && body.get("success").is_none(), "{body}");
            body["detail"].as_str().unwrap().to_string()
        }
        Surface::Agent => {
            assert_eq!(body["success"], json!(false), "{body}");
            assert_eq!(body["error"]["code"], json!(code), "{body}");
            assert_eq!(body["error"]["requestId"], json!(res_id), "requestId equals X-Request-Id: {body}");
            body["error"]["message"].as_str().expect("message").to_string()
        }
        Surface::Platform => {
            assert!(body["error"].is_string(), "platform error shape: {body}");
            assert!(body.get("detail").is_none() && body.get("success").is_none(), "{body}");
            body["error"].as_str().unwrap().to_string()
        }
    }
}

async fn check(
    app: &common::TestApp,
    surface: Surface,
    req: reqwest::RequestBuilder,
    status: StatusCode,
    code: &str,
) -> (String, reqwest::header::HeaderMap, Value) {
    let res = req.send().await.expect("request");
    assert_eq!(res.status(), status, "{surface:?}");
    let headers = res.headers().clone();
    let id =
        headers.get("x-request-id").expect("every response has X-Request-Id").to_str().unwrap().to_string();
    assert!(
        headers.get("content-type").unwrap().to_str().unwrap().starts_with("application/json"),
        "{surface:?} {status}"
    );
    let body: Value = res.json().await.expect("JSON error body");
    let _ = app;
    (message_of(surface, &id, &body, code), headers, body)
}

#[actix_web::test]
async fn malformed_json_is_400_in_each_format() {
    let app = common::spawn_app_full(&[], true, probe_routes).await;
    for (surface, prefix) in SURFACES {
        let req = app
            .client
            .post(app.url(&format!("{prefix}/__probe/echo")))
            .header("content-type", "application/json")
            .body(r#"{"name": "x", "count":"#);
        let (msg, _, _) = check(&app, surface, req, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        assert!(msg.contains("malformed JSON"), "{msg}");
    }
}

#[actix_web::test]
async fn a_wrong_field_is_400_naming_it() {
    let app = common::spawn_app_full(&[], true, probe_routes).await;
    for (surface, prefix) in SURFACES {
        let req = app
            .client
            .post(app.url(&format!("{prefix}/__probe/echo")))
            .json(&json!({"name": "x", "count": "two"}));
        let (msg, _, body) = check(&app, surface, req, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        assert!(msg.contains("count"), "{msg}");
        if !matches!(surface, Surface::Agent) {
            assert_eq!(body["errors"][0]["path"], json!("/count"), "{body}");
        }
        let req = app.client.post(app.url(&format!("{prefix}/__probe/echo"))).json(&json!({"count": 1}));
        let (msg, _, _) = check(&app, surface, req, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        assert!(msg.contains("missing field `name`"), "{msg}");
    }
}

#[actix_web::test]
async fn a_wrong_content_type_is_415_in_each_format() {
    let app = common::spawn_app_full(&[], true, probe_routes).await;
    for (surface, prefix) in SURFACES {
        let req = app
            .client
            .post(app.url(&format!("{prefix}/__probe/echo")))
            .header("content-type", "text/plain")
            .body(r#"{"name":"x","count":1}"#);
        let (msg, _, _) = check(&app, surface, req, StatusCode::UNSUPPORTED_MEDIA_TYPE, "BAD_REQUEST").await;
        assert!(msg.contains("application/json"), "{msg}");
    }
}

#[actix_web::test]
async fn an_empty_body_is_no_body_whatever_its_content_type() {
    let app = common::spawn_app_full(&[], true, probe_routes).await;
    for (surface, prefix) in SURFACES {
        // Optional body: the cerolabs SDK posts `application/json` with nothing.
        let res = app
            .client
            .post(app.url(&format!("{prefix}/__probe/maybe")))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"had_body": false}));
        // Required body: 400.
        let req = app
            .client
            .post(app.url(&format!("{prefix}/__probe/echo")))
            .header("content-type", "application/json");
        let (msg, _, _) = check(&app, surface, req, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        assert!(msg.contains("required"), "{msg}");
    }
}

#[actix_web::test]
async fn a_body_over_one_mebibyte_is_413_declared_or_streamed() {
    let app = common::spawn_app_full(&[], true, probe_routes).await;
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(1024 * 1024));
    for (surface, prefix) in SURFACES {
        let req = app
            .client
            .post(app.url(&format!("{prefix}/__probe/echo")))
            .header("content-type", "application/json")
            .body(big.clone());
        check(&app, surface, req, StatusCode::PAYLOAD_TOO_LARGE, "BAD_REQUEST").await;

        // No Content-Length: the limit holds while reading the stream.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            big.as_bytes().chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        let req = app
            .client
            .post(app.url(&format!("{prefix}/__probe/echo")))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)));
        check(&app, surface, req, StatusCode::PAYLOAD_TOO_LARGE, "BAD_REQUEST").await;
    }
    // Just under the limit is fine.
    let fits = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(1024 * 1024 - 64));
    let res = app
        .client
        .post(app.url("/__probe/echo"))
        .header("content-type", "application/json")
        .body(fits)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn unknown_paths_are_404_in_each_format() {
    let app = common::spawn_app().await;
    for (surface, prefix) in SURFACES {
        let req = app.client.get(app.url(&format!("{prefix}/no/such/thing")));
        let (msg, _, _) = check(&app, surface, req, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert!(msg.contains("/no/such/thing"), "{msg}");
    }
    // The bare prefixes belong to their surface too.
    check(&app, Surface::Agent, app.client.get(app.url("/v1")), StatusCode::NOT_FOUND, "NOT_FOUND").await;
    check(&app, Surface::Platform, app.client.get(app.url("/api")), StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[actix_web::test]
async fn a_wrong_method_is_405_in_each_format() {
    let app = common::spawn_app_full(&[], true, probe_routes).await;
    for (surface, prefix) in SURFACES {
        let req = app.client.get(app.url(&format!("{prefix}/__probe/echo")));
        let (msg, _, _) = check(&app, surface, req, StatusCode::METHOD_NOT_ALLOWED, "BAD_REQUEST").await;
        assert!(msg.contains("method not allowed"), "{msg}");
    }
    // Operator endpoints are resources too.
    let res = app.client.post(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"error": "method not allowed"}));
}

#[actix_web::test]
async fn app_errors_render_with_their_status_code_and_headers() {
    let app = common::spawn_app_full(&[], true, probe_routes).await;
    for (surface, prefix) in SURFACES {
        let url = |k: &str| app.url(&format!("{prefix}/__probe/fail/{k}"));
        let (msg, _, _) =
            check(&app, surface, app.client.get(url("conflict")), StatusCode::CONFLICT, "CONFLICT").await;
        assert_eq!(msg, "already there");
        let (_, headers, _) =
            check(&app, surface, app.client.get(url("rate")), StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
                .await;
        assert_eq!(headers.get("retry-after").unwrap(), "7");
        let (msg, _, body) = check(
            &app,
            surface,
            app.client.get(url("internal")),
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
        )
        .await;
        assert_eq!(msg, "internal server error");
        assert!(!body.to_string().contains("hunter2"), "a 500 tells the client nothing more: {body}");
        check(
            &app,
            surface,
            app.client.get(url("unavailable")),
            StatusCode::SERVICE_UNAVAILABLE,
            "TENANT_NOT_RUNNING",
        )
        .await;
        check(&app, surface, app.client.get(url("forbidden")), StatusCode::FORBIDDEN, "FORBIDDEN").await;
    }
}

#[actix_web::test]
async fn request_ids_are_echoed_or_made() {
    let app = common::spawn_app().await;
    let res =
        app.client.get(app.url("/healthz")).header("X-Request-Id", "trace-abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");

    let a = app.client.get(app.url("/healthz")).send().await.unwrap();
    let b = app.client.get(app.url("/healthz")).send().await.unwrap();
    let (a, b) =
        (a.headers()["x-request-id"].to_str().unwrap(), b.headers()["x-request-id"].to_str().unwrap());
    assert!(a.starts_with("req_") && b.starts_with("req_"), "{a} {b}");
    assert_ne!(a, b);

    // An unusable client id (too long) is replaced, not echoed.
    let long = "x".repeat(200);
    let res = app.client.get(app.url("/healthz")).header("X-Request-Id", long.as_str()).send().await.unwrap();
    assert!(res.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));

    // The envelope's requestId is the echoed id.
    let res =
        app.client.get(app.url("/v1/nothing")).header("X-Request-Id", "client-42").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-42");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["requestId"], "client-42");
}
