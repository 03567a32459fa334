//! `/docs`: Swagger UI rendering `/openapi.json`, served from the binary.
//!
//! The Swagger UI files (swagger-ui 5.17.14, Apache-2.0, by SmartBear) come
//! from the `utoipa-swagger-ui-vendored` crate on crates.io, which carries the
//! release archive; `utoipa-swagger-ui`'s build script unpacks it and embeds
//! the files (with its `vendored` feature it never downloads, whatever
//! `SWAGGER_UI_DOWNLOAD_URL` says). The page is ours: it names the service,
//! loads only same-origin files, and is served with a Content-Security-Policy
//! that allows nothing from another origin.

use std::sync::{Arc, LazyLock};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::Config;

use crate::error::AppError;

/// Same-origin scripts, styles and images only (Swagger UI's stylesheet draws
/// its icons as `data:` SVGs); the page fetches nothing but `/openapi.json`
/// and, for "Try it out", this server's own routes.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Switchboard API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="stylesheet" href="/docs/index.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/swagger-initializer.js"></script>
</body>
</html>
"#;

/// The files of Swagger UI's distribution that the page loads; the others
/// (source maps, the ES-module bundles, the OAuth2 redirect page) are not served.
const ASSETS: [&str; 7] = [
    "swagger-ui.css",
    "index.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-initializer.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
];

/// Swagger UI's settings, written into `swagger-initializer.js`: the base
/// layout (no top bar offering to load another document), no online
/// validator (its badge is an image from swagger.io), an operation filter.
static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new(["/openapi.json"])
            .use_base_layout()
            .validator_url("none")
            .query_config_enabled(false)
            .filter(true)
            .display_request_duration(true),
    )
});

/// The API documentation page.
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

/// One of Swagger UI's files.
pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, AppError> {
    let file = file.into_inner();
    if !ASSETS.contains(&file.as_str()) {
        return Err(AppError::NotFound(format!("no file /docs/{file}")));
    }
    let found = utoipa_swagger_ui::serve(&file, CONFIG.clone())
        .map_err(|e| AppError::Internal(format!("Swagger UI file {file}: {e}")))?
        .ok_or_else(|| AppError::Internal(format!("Swagger UI file {file} is not in the binary")))?;
    // The initializer carries this build's settings; the rest change only with Swagger UI's version.
    let cache = if file == "swagger-initializer.js" { "no-cache" } else { "public, max-age=86400" };
    let content_type = HeaderValue::from_str(&found.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(found.bytes.into_owned()))
}
