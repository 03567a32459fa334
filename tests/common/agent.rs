//! Helpers for `/v1` tests: a tenant registered under a known email, a
//! one-time-code sign-in for its JWT, `/v1` calls, and the error envelope.
//! Included by test files that also include `common` and `esc`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestApp;
use crate::esc::{self, Api, Tenant};

/// Registers a tenant under a known email (to sign in with it later).
pub async fn register_as(api: &Api, name: &str) -> (Tenant, String) {
    let email = esc::email_for(name, "example.com");
    let (status, body) = api.post("/auth/register", json!({"name": name, "email": email}), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "register: {body}");
    let tenant = Tenant {
        id: body["tenant_id"].as_str().expect("tenant_id").to_string(),
        key: body["api_key"].as_str().expect("api_key").to_string(),
        body,
    };
    (tenant, email)
}

/// Signs `email` in by one-time code (the app must mail to its outbox);
/// returns the `Authorization` header value.
pub async fn sign_in(app: &TestApp, email: &str) -> String {
    let (status, body) = app.post("/api/auth/otp/request", json!({"email": email}), &[]).await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({})), "otp request for {email}");
    let code = app.last_code(email);
    let (status, body) = app.post("/api/auth/otp/verify", json!({"email": email, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::OK, "otp verify for {email}: {body}");
    format!("Bearer {}", body["token"].as_str().expect("token"))
}

/// A `/v1` call with an optional `Authorization` value and `X-Tenant-Id`.
pub async fn v1(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<Value>,
    auth: Option<&str>,
    tenant: Option<&str>,
) -> (StatusCode, Value) {
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    if let Some(t) = tenant {
        headers.push(("X-Tenant-Id", t));
    }
    api.call(method, path, body, &headers).await
}

/// Asserts the `/v1` error envelope with `code`; returns the message.
pub fn v1_error(body: &Value, code: &str) -> String {
    assert_eq!(body["success"], json!(false), "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["requestId"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("error message: {body}"));
    assert!(!message.is_empty(), "{body}");
    message.to_string()
}
