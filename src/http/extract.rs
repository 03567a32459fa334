//! Request extractors shared by every surface. `Json<T>` reads at most 1 MiB,
//! insists on a JSON content type, and reports where in the body a value is
//! wrong. A body that is empty counts as no body at all, whatever its
//! Content-Type (the cerolabs SDK sends `application/json` with nothing on
//! cancel and feedback): `OptionalJson` accepts that, `Json` answers 400.
//! A body that has not fully arrived within `SWITCHBOARD_CLIENT_BODY_TIMEOUT`
//! is 408, so a client trickling bytes cannot hold a request open for ever.

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::MAX_BODY_BYTES;
use crate::error::{AppError, FieldError};
use crate::startup::AppState;

/// When no application state is registered (tests mounting bare routes).
const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A required JSON body.
#[derive(Debug)]
pub struct Json<T>(pub T);

/// A JSON body that may be absent (empty).
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json_body(req, payload);
        Box::pin(async move {
            match body.await? {
                Some(bytes) => parse(&bytes).map(Json),
                None => Err(AppError::BadRequest("a JSON request body is required".into())),
            }
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json_body(req, payload);
        Box::pin(async move {
            match body.await? {
                Some(bytes) => parse(&bytes).map(|v| OptionalJson(Some(v))),
                None => Ok(OptionalJson(None)),
            }
        })
    }
}

/// Reads the body within the limit; `None` when it is empty. A non-empty body
/// must be declared as JSON.
fn read_json_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<Option<Vec<u8>>, AppError>> {
    let content_type =
        req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| v.to_ascii_lowercase());
    let mut payload = payload.take();
    let timeout = req
        .app_data::<web::Data<AppState>>()
        .map_or(DEFAULT_BODY_TIMEOUT, |s| s.settings.client_body_timeout);
    let deadline = tokio::time::Instant::now() + timeout;
    Box::pin(async move {
        let mut body = Vec::new();
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, payload.next()).await else {
                return Err(AppError::RequestTimeout(format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(timeout)
                )));
            };
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| AppError::BadRequest(format!("cannot read request body: {e}")))?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(AppError::PayloadTooLarge("request body is larger than 1 MiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !content_type.as_deref().is_some_and(is_json_type) {
            return Err(AppError::UnsupportedMediaType("expected Content-Type: application/json".into()));
        }
        Ok(Some(body))
    })
}

fn is_json_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end().map_err(|e| AppError::BadRequest(format!("malformed JSON: {e}")))?;
            Ok(v)
        }
        Err(err) => {
            let inner = err.inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(AppError::BadRequest(format!("malformed JSON: {inner}")));
            }
            let path = err.path().to_string();
            let message = strip_position(&inner.to_string());
            let pointer = to_pointer(&path);
            Err(AppError::Validation {
                message: if path == "." {
                    format!("invalid request body: {message}")
                } else {
                    format!("invalid field {path}: {message}")
                },
                errors: vec![FieldError { path: pointer, message }],
            })
        }
    }
}

/// serde_json appends " at line L column C"; the path says more about where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// `a.b[0].c` → `/a/b/0/c` (JSON pointer); `.` → ``.
fn to_pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let mut out = String::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            out.push('/');
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            for idx in rest.split('[').filter(|s| !s.is_empty()) {
                out.push('/');
                out.push_str(idx.trim_end_matches(']'));
            }
        } else {
            out.push('/');
            out.push_str(rest);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        domain: String,
        items: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("application/json; charset=utf-8"));
        assert!(is_json_type("application/merge-patch+json"));
        assert!(!is_json_type("text/plain"));
        assert!(!is_json_type("application/x-www-form-urlencoded"));
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse::<Body>(br#"{"domain":"x","items":[{"n":1},{"n":"two"}]}"#).unwrap_err();
        match err {
            AppError::Validation { errors, .. } => assert_eq!(errors[0].path, "/items/1/n"),
            other => panic!("{other:?}"),
        }
        let err = parse::<Body>(br#"{"items":[]}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `domain`"), "{err}");
        assert!(matches!(parse::<Body>(b"{not json"), Err(AppError::BadRequest(_))));
        assert!(matches!(
            parse::<Body>(br#"{"domain":"x","items":[]} trailing"#),
            Err(AppError::BadRequest(_))
        ));
    }
}
