//! The pages people use: the expert portal (`/portal`) and the operator
//! console (`/console`), server-rendered HTML on the same engine and store as
//! the APIs, with their few files under `/ui`. This module holds what both
//! share: the page frame and its security headers, the session cookies, CSRF
//! tokens on every form, form bodies, and the HTML error page.
//!
//! Sessions are cookies that JavaScript cannot read (`HttpOnly`) and that no
//! other site can make the browser send (`SameSite=Strict`); on top of that
//! every form carries a token bound to a per-browser cookie by an HMAC under
//! a key derived from the master key, and a request whose `Origin` or
//! `Sec-Fetch-Site` says it came from elsewhere is refused.

pub mod console;
pub mod portal;
pub mod schema_form;

use std::collections::HashMap;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use maud::{html, Markup, DOCTYPE};

use crate::error::AppError;
use crate::identity::tokens;
use crate::startup::AppState;

/// Same-origin files only, no inline script or style, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The per-browser cookie the CSRF tokens are bound to.
const CSRF_COOKIE: &str = "sb_csrf";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ui/{file}").route(web::get().to(asset)))
        .configure(portal::configure)
        .configure(console::configure);
}

// ---- files -------------------------------------------------------------------

/// Our own stylesheet and scripts, compiled into the binary.
const ASSETS: [(&str, &str, &str); 3] = [
    ("app.css", "text/css; charset=utf-8", include_str!("../../../assets/ui/app.css")),
    ("portal.js", "text/javascript; charset=utf-8", include_str!("../../../assets/ui/portal.js")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../../../assets/ui/console.js")),
];

async fn asset(file: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or_else(|| AppError::NotFound(format!("no file /ui/{file}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, *content_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Served with the binary, so a new build may change them: revalidate.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(*body))
}

// ---- the page frame ------------------------------------------------------------

/// Which application a page belongs to, for its header and script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Portal,
    Console,
}

impl App {
    fn name(self) -> &'static str {
        match self {
            App::Portal => "Expert portal",
            App::Console => "Operator console",
        }
    }

    fn home(self) -> &'static str {
        match self {
            App::Portal => "/portal",
            App::Console => "/console",
        }
    }

    fn script(self) -> &'static str {
        match self {
            App::Portal => "/ui/portal.js",
            App::Console => "/ui/console.js",
        }
    }
}

/// What a page shows around its main content.
pub struct Frame<'a> {
    pub app: App,
    pub title: &'a str,
    /// Navigation links (href, label); the current page is marked.
    pub nav: &'a [(&'a str, &'a str)],
    pub current: &'a str,
    /// Who is signed in, and the CSRF token for the sign-out form; none on sign-in pages.
    pub signed_in: Option<(&'a str, &'a str)>,
}

pub fn frame(f: &Frame, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title { (f.title) " · Switchboard " (f.app.name()) }
                link rel="stylesheet" href="/ui/app.css";
                script src=(f.app.script()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(f.app.home()) { "Switchboard" span.app { (f.app.name()) } }
                    @if !f.nav.is_empty() {
                        nav aria-label="Main" {
                            ul {
                                @for (href, label) in f.nav {
                                    li {
                                        a href=(href) aria-current=[(*href == f.current).then_some("page")] { (label) }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some((who, csrf)) = f.signed_in {
                        form.signout method="post" action={ (f.app.home()) "/logout" } {
                            span.who { (who) }
                            input type="hidden" name=(CSRF_FIELD) value=(csrf);
                            button.secondary type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (main) }
            }
        }
    }
}

/// An HTML answer with the pages' security headers, and the CSRF cookie when it is new.
pub fn html_response(mut builder: HttpResponseBuilder, csrf: &Csrf, page: Markup) -> HttpResponse {
    if let Some(cookie) = &csrf.new_cookie {
        builder.cookie(cookie.clone());
    }
    secure_headers(&mut builder);
    builder.body(page.into_string())
}

fn secure_headers(builder: &mut HttpResponseBuilder) {
    builder
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // Not `no-referrer`: with it Chromium sends `Origin: null` on our own
        // form posts, and the origin check below could not tell them from a foreign one.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        // Pages show cases and secrets' hints; never kept by a shared cache or the back button.
        .insert_header((header::CACHE_CONTROL, "no-store"));
}

/// 303 to `to`: after a form, so that reloading does not post it again.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"))))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Every error on `/portal`, `/console` and `/ui` as a page (rendered by `AppError::render`).
pub fn error_page(
    mut builder: HttpResponseBuilder,
    status: StatusCode,
    message: &str,
    request_id: &str,
) -> HttpResponse {
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (status.as_u16()) " " (reason) " · Switchboard" }
                link rel="stylesheet" href="/ui/app.css";
            }
            body {
                header.top { span.brand { "Switchboard" } }
                main #main.narrow {
                    h1 { (status.as_u16()) " " (reason) }
                    p.alert role="alert" { (message) }
                    p { a href="/portal" { "Expert portal" } " · " a href="/console" { "Operator console" } }
                    @if !request_id.is_empty() { p.muted { "Request id: " code { (request_id) } } }
                }
            }
        }
    };
    secure_headers(&mut builder);
    builder.body(page.into_string())
}

// ---- CSRF ------------------------------------------------------------------------

/// The CSRF token for this browser, and the cookie to set when it had none.
pub struct Csrf {
    pub token: String,
    new_cookie: Option<Cookie<'static>>,
}

fn csrf_key(state: &AppState) -> [u8; 32] {
    tokens::derive_subkey(&state.identity.master, b"switchboard ui csrf v1")
}

fn csrf_token(state: &AppState, browser: &str) -> String {
    hex::encode(tokens::hmac_sha256(&csrf_key(state), browser.as_bytes()))
}

/// Whether the request came over TLS (directly or, as a proxy says, before it).
fn is_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// A cookie only this site's pages send back, that scripts cannot read.
pub fn private_cookie(
    req: &HttpRequest,
    name: &'static str,
    value: String,
    path: &'static str,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(req))
        .finish()
}

/// The cookie that ends a session in the browser.
pub fn removal_cookie(req: &HttpRequest, name: &'static str, path: &'static str) -> Cookie<'static> {
    let mut cookie = private_cookie(req, name, String::new(), path);
    cookie.set_max_age(CookieDuration::ZERO);
    cookie
}

pub fn csrf(req: &HttpRequest, state: &AppState) -> Csrf {
    match req.cookie(CSRF_COOKIE).map(|c| c.value().to_string()).filter(|v| is_browser_id(v)) {
        Some(browser) => Csrf { token: csrf_token(state, &browser), new_cookie: None },
        None => {
            let browser = tokens::random_alnum(32);
            let token = csrf_token(state, &browser);
            Csrf { token, new_cookie: Some(private_cookie(req, CSRF_COOKIE, browser, "/")) }
        }
    }
}

fn is_browser_id(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Refuses a form that did not come from one of our pages in this browser.
pub fn check_csrf(req: &HttpRequest, state: &AppState, form: &Form) -> Result<(), AppError> {
    let refused = || {
        AppError::Forbidden(
            "this form is stale or did not come from this site; reload the page and try again".into(),
        )
    };
    let headers = req.headers();
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "cross-site") {
        return Err(refused());
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let info = req.connection_info();
        let ours = format!("{}://{}", info.scheme(), info.host());
        if origin != ours {
            return Err(refused());
        }
    }
    let browser = req.cookie(CSRF_COOKIE).map(|c| c.value().to_string()).filter(|v| is_browser_id(v));
    let sent = form.get(CSRF_FIELD).unwrap_or_default();
    match browser {
        Some(browser) if tokens::ct_eq(&csrf_token(state, &browser), sent) => Ok(()),
        _ => Err(refused()),
    }
}

// ---- forms -----------------------------------------------------------------------

/// An `application/x-www-form-urlencoded` body: every value of every name, in order.
#[derive(Debug, Default, Clone)]
pub struct Form {
    values: HashMap<String, Vec<String>>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            values.entry(name.into_owned()).or_default().push(value.into_owned());
        }
        Form { values }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Reads a form body and checks its CSRF token.
pub fn checked_form(req: &HttpRequest, state: &AppState, body: &[u8]) -> Result<Form, AppError> {
    let form = Form::parse(body);
    check_csrf(req, state, &form)?;
    Ok(form)
}

/// Pretty JSON for a `<pre>`.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A UTC time as people read it, e.g. `2026-11-23 14:05:09 UTC`.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
