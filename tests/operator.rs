//! Operator endpoints: liveness at once, readiness only after start-up,
//! Prometheus metrics, and the OpenAPI document.

mod common;

use reqwest::StatusCode;
use serde_json::Value;

#[actix_web::test]
async fn readyz_is_503_until_start_up_finished_then_200() {
    let app = common::spawn_app_with(&[], false).await;

    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "starting");
    assert_eq!(body["checks"]["actors"], "pending");

    // API traffic is held back, in each surface's format.
    let res = app.client.get(app.url("/escalations")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("starting"));
    let res = app.client.get(app.url("/v1/cerebrals")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "CIRCUIT_OPEN");

    app.initialize().await;

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["actors"], "ok");
    // Now API paths are routed (and, with no such endpoint yet, 404).
    let res = app.client.get(app.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn metrics_expose_http_store_and_actor_figures() {
    let app = common::spawn_app().await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    app.client.get(app.url("/v1/nope")).send().await.unwrap();

    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    for needle in [
        r#"switchboard_http_requests_total{surface="operator",route="/healthz",method="GET",status="200"}"#,
        r#"switchboard_http_requests_total{surface="agent",route="unmatched",method="GET",status="404"}"#,
        "switchboard_http_request_duration_seconds_bucket",
        "switchboard_store_commit_seconds_bucket",
        "switchboard_store_batch_writes_bucket",
        r#"switchboard_actors_alive{kind="store_batcher"}"#,
        r#"switchboard_actor_messages_handled_total{kind="store_writer",message="Commit"}"#,
        r#"switchboard_actor_mailbox_depth{kind="store_batcher"}"#,
        r#"switchboard_actor_handler_seconds_bucket{kind="store_writer""#,
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[actix_web::test]
async fn openapi_document_describes_the_operator_routes() {
    let app = common::spawn_app().await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["Readiness"].is_object());
}

/// The document validates as OpenAPI 3.1 with an independent validator
/// (`openapi-spec-validator` from PyPI, installed by scripts/test-all.sh),
/// which also checks that every operation id is unique.
#[actix_web::test]
async fn openapi_document_is_valid_openapi_3_1() {
    let python = match std::env::var("SWITCHBOARD_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "SWITCHBOARD_TEST_PYTHON is not set: this test validates /openapi.json with the Python \
             `openapi-spec-validator` package. Run it through scripts/test-all.sh."
        ),
    };
    let app = common::spawn_app().await;
    let text = app.client.get(app.url("/openapi.json")).send().await.unwrap().text().await.unwrap();
    let file = app.dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let script = "import json, sys\n\
                  from openapi_spec_validator import validate\n\
                  from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
                  validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
                  print('valid')\n";
    let out =
        std::process::Command::new(python).arg("-c").arg(script).arg(&file).output().expect("run python");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.trim() == "valid", "not valid OpenAPI 3.1:\n{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values().filter_map(|op| op["operationId"].as_str()))
        .collect();
    let unique: std::collections::HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids repeat: {ids:?}");
    assert!(
        ids.contains(&"get_api_tenants_id_config") && ids.contains(&"post_api_tenants_id_deploy"),
        "{ids:?}"
    );
}
