//! `/console`: the operator's pages, for super-admins. Sign in by one-time
//! code (the JWT is kept in an HttpOnly, SameSite=Strict cookie); watch the
//! live routing picture (queues, experts, time-to-route and resolution
//! charts from the same numbers as `/metrics`); deploy, stop and restart
//! tenants; follow webhook deliveries and their retries. The pages read the
//! same functions as `/api/monitoring/routing` and `/api/monitoring/webhooks`,
//! and act through the same ones as `/api/tenants/{id}/deploy|stop|restart`.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::{
    checked_form, csrf, frame, html_response, private_cookie, removal_cookie, see_other, App, Csrf, Frame,
    CSRF_FIELD,
};
use crate::error::AppError;
use crate::http::auth::{client_address, Session};
use crate::http::platform::auth::end_session;
use crate::http::platform::containers::{control, Control};
use crate::http::platform::monitoring::{
    routing_picture, webhook_picture, LatencyHistogram, RoutingPicture, WebhookPicture,
};
use crate::http::platform::tenants::{visible, Tenant};
use crate::identity::accounts;
use crate::identity::model::Email;
use crate::startup::AppState;
use crate::store::now_ms;

const COOKIE: &str = "sb_console";
const NAV: [(&str, &str); 3] =
    [("/console", "Routing"), ("/console/tenants", "Tenants"), ("/console/webhooks", "Webhooks")];
const PRIORITIES: [&str; 3] = ["urgent", "standard", "batch"];

/// The signed-in super-admin, from the console's cookie; none when it is
/// missing, expired, revoked, or no longer a super-admin's.
async fn operator(req: &HttpRequest, state: &AppState) -> Result<Option<Session>, AppError> {
    let Some(cookie) = req.cookie(COOKIE) else { return Ok(None) };
    match Session::from_token(state, cookie.value()).await {
        Ok(session) if session.is_super_admin() => Ok(Some(session)),
        Ok(_) | Err(AppError::Unauthorized(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn to_login() -> HttpResponse {
    see_other("/console/login")
}

fn page(
    req: &HttpRequest,
    csrf: &Csrf,
    status: StatusCode,
    who: Option<&Session>,
    title: &str,
    main: Markup,
) -> HttpResponse {
    let body = frame(
        &Frame {
            app: App::Console,
            title,
            nav: if who.is_some() { &NAV } else { &[] },
            current: req.path(),
            signed_in: who.map(|s| (s.user.email.as_str(), csrf.token.as_str())),
        },
        main,
    );
    html_response(HttpResponse::build(status), csrf, body)
}

// ---- sign in by one-time code ------------------------------------------------------

fn email_form(csrf: &Csrf, email: &str, error: Option<&str>) -> Markup {
    html! {
        section.narrow {
            h1 { "Operator sign-in" }
            p { "For super-admins. We mail you a one-time code." }
            @if let Some(e) = error { p.alert role="alert" #signin-error { (e) } }
            form method="post" action="/console/login" {
                input type="hidden" name=(CSRF_FIELD) value=(csrf.token);
                div.field {
                    label for="email" { "Email" }
                    input #email type="email" name="email" value=(email) required autocomplete="username" autofocus
                        aria-describedby=[error.map(|_| "signin-error")];
                }
                button type="submit" { "Send me a code" }
            }
        }
    }
}

fn code_form(csrf: &Csrf, email: &str, error: Option<&str>) -> Markup {
    html! {
        section.narrow {
            h1 { "Enter your code" }
            p role="status" { "If " strong { (email) } " has an account, a code is on its way. It works once, for 10 minutes." }
            @if let Some(e) = error { p.alert role="alert" #code-error { (e) } }
            form method="post" action="/console/verify" {
                input type="hidden" name=(CSRF_FIELD) value=(csrf.token);
                input type="hidden" name="email" value=(email);
                div.field {
                    label for="code" { "One-time code" }
                    input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus
                        aria-describedby=[error.map(|_| "code-error")] aria-invalid=[error.map(|_| "true")];
                }
                button type="submit" { "Sign in" }
            }
            p { a href="/console/login" { "Use another email" } }
        }
    }
}

async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    if operator(&req, &state).await?.is_some() {
        return Ok(see_other("/console"));
    }
    let csrf = csrf(&req, &state);
    Ok(page(&req, &csrf, StatusCode::OK, None, "Sign in", email_form(&csrf, "", None)))
}

async fn send_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = checked_form(&req, &state, &body)?;
    let csrf = csrf(&req, &state);
    let raw = form.get("email").unwrap_or_default().trim();
    let email = match Email::parse(raw) {
        Ok(email) => email,
        Err(e) => {
            return Ok(page(
                &req,
                &csrf,
                StatusCode::BAD_REQUEST,
                None,
                "Sign in",
                email_form(&csrf, raw, Some(&e)),
            ))
        }
    };
    accounts::check_signin_rate(&state.identity, &email, &client_address(&req))?;
    accounts::request_code(&state.store, &state.identity, &email).await?;
    Ok(page(&req, &csrf, StatusCode::OK, None, "Enter your code", code_form(&csrf, email.as_str(), None)))
}

async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = checked_form(&req, &state, &body)?;
    let csrf = csrf(&req, &state);
    let email = Email::parse(form.get("email").unwrap_or_default().trim()).map_err(AppError::BadRequest)?;
    accounts::check_signin_rate(&state.identity, &email, &client_address(&req))?;
    let code = form.get("code").unwrap_or_default().trim();
    let (token, user) = match accounts::verify_code(&state.store, &state.identity, &email, code).await {
        Ok(signed_in) => signed_in,
        Err(AppError::Unauthorized(_)) => {
            let main = code_form(
                &csrf,
                email.as_str(),
                Some("That code is not valid, has expired or was used. Check it, or ask for a new one."),
            );
            return Ok(page(&req, &csrf, StatusCode::UNAUTHORIZED, None, "Enter your code", main));
        }
        Err(e) => return Err(e),
    };
    let session = Session { user, jti: token.jti.clone(), expires_at_ms: token.expires_at_ms };
    if !session.is_super_admin() {
        // The token was only for this console: do not leave it valid.
        end_session(&state, &session).await?;
        return Err(AppError::Forbidden("the operator console is for super-admins".into()));
    }
    let mut cookie = private_cookie(&req, COOKIE, token.token, "/console");
    cookie.set_max_age(CookieDuration::milliseconds((token.expires_at_ms - now_ms()).max(0)));
    let mut res = see_other("/console");
    res.add_cookie(&cookie).map_err(AppError::internal)?;
    Ok(res)
}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    checked_form(&req, &state, &body)?;
    if let Some(session) = operator(&req, &state).await? {
        end_session(&state, &session).await?;
    }
    let mut res = to_login();
    res.add_cookie(&removal_cookie(&req, COOKIE, "/console")).map_err(AppError::internal)?;
    Ok(res)
}

// ---- routing -------------------------------------------------------------------------

fn seconds(s: f64) -> String {
    if s < 0.001 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// The upper bound of the bucket the q-th observation falls in, as Prometheus' `histogram_quantile` bounds it.
fn quantile(h: &LatencyHistogram, q: f64) -> Option<f64> {
    if h.count == 0 {
        return None;
    }
    let rank = (q * h.count as f64).ceil().max(1.0) as u64;
    Some(h.buckets.iter().find(|b| b.count >= rank).map(|b| b.le).unwrap_or(f64::INFINITY))
}

/// Observations per bucket as bars (counts per bucket, not cumulative), with
/// the numbers in a table for screen readers and for anyone who wants them.
fn histogram_chart(id: &str, title: &str, h: &LatencyHistogram) -> Markup {
    let mut previous = 0;
    let mut bars: Vec<(String, u64)> = h
        .buckets
        .iter()
        .map(|b| {
            let n = b.count.saturating_sub(previous);
            previous = b.count;
            (format!("≤ {}", seconds(b.le)), n)
        })
        .collect();
    bars.push((
        format!("> {}", h.buckets.last().map(|b| seconds(b.le)).unwrap_or_default()),
        h.count.saturating_sub(previous),
    ));
    // Trim empty buckets at both ends so that the shape is readable.
    let first = bars.iter().position(|(_, n)| *n > 0).unwrap_or(0);
    let last = bars.iter().rposition(|(_, n)| *n > 0).unwrap_or(bars.len().saturating_sub(1));
    let shown = &bars[first.saturating_sub(1)..(last + 2).min(bars.len())];
    let max = shown.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (width, height, bottom) = (600.0, 170.0, 40.0);
    let slot = width / shown.len().max(1) as f64;
    let mean = (h.count > 0).then(|| h.sum_seconds / h.count as f64);
    let summary = match (quantile(h, 0.5), quantile(h, 0.99), mean) {
        (Some(p50), Some(p99), Some(mean)) => format!(
            "{} observations; p50 ≤ {}, p99 ≤ {}, mean {}",
            h.count,
            seconds(p50),
            seconds(p99),
            seconds(mean)
        ),
        _ => "No observations yet.".to_string(),
    };
    html! {
        figure.chart #(id) data-count=(h.count) {
            svg viewBox={ "0 0 " (width) " " (height) } role="img" aria-labelledby={ (id) "-cap" } {
                @for (i, (label, n)) in shown.iter().enumerate() {
                    @let bar = (*n as f64 / max as f64) * (height - bottom - 14.0);
                    @let x = i as f64 * slot;
                    rect.bar x=(format!("{:.1}", x + 2.0)) y=(format!("{:.1}", height - bottom - bar)) width=(format!("{:.1}", (slot - 4.0).max(1.0))) height=(format!("{:.1}", bar)) {
                        title { (label) ": " (n) }
                    }
                    @if *n > 0 {
                        text x=(format!("{:.1}", x + slot / 2.0)) y=(format!("{:.1}", height - bottom - bar - 3.0)) text-anchor="middle" { (n) }
                    }
                    text x=(format!("{:.1}", x + slot / 2.0)) y=(format!("{:.1}", height - bottom + 14.0)) text-anchor="middle" { (label.trim_start_matches("≤ ")) }
                }
            }
            figcaption #{ (id) "-cap" } { strong { (title) } ": " (summary) }
            details {
                summary { "Numbers" }
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "Bucket" } th.num scope="col" { "Count" } } }
                        tbody { @for (label, n) in &bars { tr { td { (label) } td.num { (n) } } } }
                    }
                }
            }
        }
    }
}

fn queues_table(p: &RoutingPicture) -> Markup {
    let mut domains: Vec<&str> = p.queues.iter().map(|q| q.domain.as_str()).collect();
    domains.dedup();
    let depth = |d: &str, prio: &str| {
        p.queues.iter().find(|q| q.domain == d && q.priority == prio).map_or(0, |q| q.depth)
    };
    let total: u64 = p.queues.iter().map(|q| q.depth).sum();
    html! {
        section.card #queues data-live data-total=(total) aria-labelledby="queues-h" {
            h2 #queues-h { "Queue depth" }
            p.hint { (total) " waiting for an expert, by domain and priority." }
            @if domains.is_empty() {
                p.empty { "No case is waiting: every open case has an expert." }
            } @else {
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th scope="col" { "Domain" }
                                @for prio in PRIORITIES { th.num scope="col" { (prio) } }
                                th.num scope="col" { "Total" }
                            }
                        }
                        tbody {
                            @for d in &domains {
                                tr {
                                    th scope="row" { (d) }
                                    @for prio in PRIORITIES {
                                        td.num data-domain=(d) data-priority=(prio) { (depth(d, prio)) }
                                    }
                                    td.num data-domain=(d) data-priority="all" { (PRIORITIES.iter().map(|prio| depth(d, prio)).sum::<u64>()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn experts_section(p: &RoutingPicture) -> Markup {
    let e = &p.experts;
    html! {
        section.card #experts data-live aria-labelledby="experts-h" {
            h2 #experts-h { "Experts" }
            dl.stats {
                div { dt { "Total" } dd #experts-total { (e.total) } }
                div { dt { "Available" } dd #experts-available { (e.available) } }
                div { dt { "Busy" } dd #experts-busy { (e.busy) } }
                div { dt { "Offline" } dd #experts-offline { (e.offline) } }
                div { dt { "Cases held" } dd #experts-open { (e.open) } }
                div { dt { "Free places" } dd #experts-free { (e.free) " / " (e.capacity) } }
            }
            @if p.expert_loads.is_empty() {
                p.empty { "No expert is registered." }
            } @else {
                div.table-wrap {
                    table {
                        caption.sr { "Experts, most loaded first" }
                        thead { tr { th scope="col" { "Expert" } th scope="col" { "Status" } th scope="col" { "Load" } th scope="col" { "Domains" } th scope="col" { "Tenant" } } }
                        tbody {
                            @for x in &p.expert_loads {
                                tr {
                                    td { (x.name) }
                                    td { span class={ "badge s-" (x.status) } { (x.status) } }
                                    td.num {
                                        progress value=(x.open) max=(x.max_concurrent.max(1)) aria-label={ (x.name) " load" } { (x.open) "/" (x.max_concurrent) }
                                        " " (x.open) "/" (x.max_concurrent)
                                    }
                                    td { (x.domains.join(", ")) }
                                    td { code { (x.tenant_id.as_deref().unwrap_or("platform-wide")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn routing_live(p: &RoutingPicture) -> Markup {
    let c = &p.counters;
    html! {
        div.grid {
            section.card #overview data-live aria-labelledby="overview-h" {
                h2 #overview-h { "Cases" }
                dl.stats {
                    div { dt { "Open now" } dd #open-cases { (p.open_cases) } }
                    div { dt { "Created" } dd { (c.created) } }
                    div { dt { "Resolved" } dd { (c.resolved) } }
                    div { dt { "Expired" } dd { (c.expired) } }
                    div { dt { "Cancelled" } dd { (c.cancelled) } }
                }
                dl.stats {
                    div { dt { "Assignments" } dd { (c.assignments) } }
                    div { dt { "Declines" } dd { (c.declines) } }
                    div { dt { "Reassigned" } dd { (c.reassignments) } }
                    div { dt { "Reservations lapsed" } dd { (c.reservation_timeouts) } }
                }
                p.hint { "Counted since the server started, as " code { "/metrics" } " counts them. As of " (p.at) "." }
            }
            (queues_table(p))
        }
        (experts_section(p))
        div.grid {
            section.card #chart-route data-live aria-labelledby="route-h" {
                h2 #route-h { "Time to route" }
                (histogram_chart("ttr", "Created → routed", &p.time_to_route))
            }
            section.card #chart-resolution data-live aria-labelledby="res-h" {
                h2 #res-h { "Resolution time" }
                (histogram_chart("rt", "Created → resolved", &p.resolution_time))
            }
        }
    }
}

async fn routing(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some(session) = operator(&req, &state).await? else { return Ok(to_login()) };
    let picture = routing_picture(&state).await?;
    let csrf = csrf(&req, &state);
    let main = html! {
        h1 { "Routing" }
        p.hint #live-note role="status" { "Live: this page updates every 2 seconds." }
        (routing_live(&picture))
    };
    Ok(page(&req, &csrf, StatusCode::OK, Some(&session), "Routing", main))
}

fn fragment(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(markup.into_string())
}

fn signed_out() -> AppError {
    AppError::Unauthorized("signed out".into())
}

async fn routing_fragment(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    if operator(&req, &state).await?.is_none() {
        return Err(signed_out());
    }
    Ok(fragment(routing_live(&routing_picture(&state).await?)))
}

// ---- tenants ---------------------------------------------------------------------------

fn tenant_actions(csrf: &Csrf, t: &Tenant) -> Markup {
    let can = |action: &str| match action {
        "deploy" => matches!(t.status.as_str(), "draft" | "stopped" | "error"),
        "restart" => t.status != "draft",
        _ => matches!(t.status.as_str(), "running" | "deploying" | "error"),
    };
    html! {
        div.actions {
            @for (action, label, class) in [("deploy", "Deploy", ""), ("restart", "Restart", "secondary"), ("stop", "Stop", "danger")] {
                @if can(action) {
                    form method="post" action={ "/console/tenants/" (t.id) "/" (action) } {
                        input type="hidden" name=(CSRF_FIELD) value=(csrf.token);
                        button class=(class) type="submit" aria-label={ (label) " " (t.name) } { (label) }
                    }
                }
            }
        }
    }
}

fn tenants_live(csrf: &Csrf, tenants: &[Tenant]) -> Markup {
    html! {
        section.card #tenants data-live aria-labelledby="tenants-h" {
            h2 #tenants-h { (tenants.len()) " tenants" }
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Tenant" } th scope="col" { "Plan" } th scope="col" { "Runtime state" } th scope="col" { "Port" } th scope="col" { "Actions" } } }
                    tbody {
                        @for t in tenants {
                            tr data-tenant=(t.id) {
                                td { (t.name) br; code.muted { (t.id) } }
                                td { (t.plan) }
                                td { span class={ "badge s-" (t.status) } data-status=(t.status) { (t.status) } }
                                td { (t.port.map(|p| p.to_string()).unwrap_or_else(|| "—".into())) }
                                td { (tenant_actions(csrf, t)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn tenants(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(session) = operator(&req, &state).await? else { return Ok(to_login()) };
    let list = visible(&state, &session).await?;
    let csrf = csrf(&req, &state);
    let main = html! {
        h1 { "Tenants" }
        @if let Some(done) = &query.done {
            p.notice role="status" { (done.chars().take(120).collect::<String>()) }
        }
        p.hint #live-note role="status" { "Live: runtime states update every 2 seconds." }
        (tenants_live(&csrf, &list))
    };
    Ok(page(&req, &csrf, StatusCode::OK, Some(&session), "Tenants", main))
}

async fn tenants_fragment(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some(session) = operator(&req, &state).await? else { return Err(signed_out()) };
    let csrf = csrf(&req, &state);
    Ok(fragment(tenants_live(&csrf, &visible(&state, &session).await?)))
}

async fn tenant_control(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    checked_form(&req, &state, &body)?;
    let Some(session) = operator(&req, &state).await? else { return Ok(to_login()) };
    let (id, action) = path.into_inner();
    let what = Control::parse(&action).ok_or_else(|| AppError::NotFound(format!("no action {action:?}")))?;
    control(&state, &session, &id, what).await?;
    let done = match what {
        Control::Deploy => "Deploying",
        Control::Restart => "Restarting",
        Control::Stop => "Stopped",
    };
    let note = format!("{done} {id}.");
    let query: String =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("done", &note).finish();
    Ok(see_other(&format!("/console/tenants?{query}")))
}

// ---- webhooks ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct WebhooksQuery {
    status: Option<String>,
}

fn webhooks_live(p: &WebhookPicture, filter: Option<&str>) -> Markup {
    let c = &p.counts;
    html! {
        section.card #delivery-counts data-live aria-labelledby="counts-h" {
            h2 #counts-h { "Deliveries" }
            dl.stats {
                div { dt { "Pending" } dd { (c.pending) } }
                div { dt { "Retrying" } dd { (c.retrying) } }
                div { dt { "Delivered" } dd { (c.delivered) } }
                div { dt { "Failed" } dd { (c.failed) } }
            }
        }
        section.card #circuits data-live aria-labelledby="circuits-h" {
            h2 #circuits-h { "Endpoints" }
            @if p.circuits.is_empty() {
                p.empty { "No endpoint has deliveries in flight." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "Endpoint" } th scope="col" { "Circuit" } th.num scope="col" { "Queued" } th.num scope="col" { "In flight" } th.num scope="col" { "Retries scheduled" } } }
                        tbody {
                            @for e in &p.circuits {
                                tr { td { code { (e.endpoint) } } td { span class={ "badge s-" (e.state) } { (e.state.replace('_', " ")) } } td.num { (e.queued) } td.num { (e.in_flight) } td.num { (e.scheduled_retries) } }
                            }
                        }
                    }
                }
            }
        }
        section.card #deliveries data-live aria-labelledby="deliveries-h" {
            h2 #deliveries-h { "Newest deliveries" @if let Some(f) = filter { " (" (f) ")" } }
            @if p.deliveries.is_empty() {
                p.empty { "None." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "Event" } th scope="col" { "URL" } th scope="col" { "Status" } th.num scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "Next attempt" } th scope="col" { "Created" } } }
                        tbody {
                            @for d in &p.deliveries {
                                tr data-delivery=(d.id) {
                                    td { (d.event) br; code.muted { (d.escalation_id.as_deref().or(d.subscription_id.as_deref()).unwrap_or("")) } }
                                    td { code { (d.url) } }
                                    td { span class={ "badge s-" (d.status) } { (d.status) } }
                                    td.num { (d.attempts) }
                                    td {
                                        @if let Some(code) = d.last_status_code { "HTTP " (code) }
                                        @if let Some(e) = &d.last_error { br; span.muted { (e) } }
                                    }
                                    td { (d.next_attempt_at.as_deref().unwrap_or("—")) }
                                    td { (d.created_at) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn webhooks(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<WebhooksQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(session) = operator(&req, &state).await? else { return Ok(to_login()) };
    let filter = query.status.as_deref().filter(|s| !s.is_empty());
    let picture = webhook_picture(&state, filter, 100).await?;
    let csrf = csrf(&req, &state);
    let main = html! {
        h1 { "Webhooks" }
        nav aria-label="Filter deliveries" {
            p.actions {
                @for (value, label) in [("", "All"), ("pending", "Pending"), ("retrying", "Retrying"), ("delivered", "Delivered"), ("failed", "Failed")] {
                    @let href = if value.is_empty() { "/console/webhooks".to_string() } else { format!("/console/webhooks?status={value}") };
                    a href=(href) aria-current=[(filter.unwrap_or("") == value).then_some("true")] { (label) }
                }
            }
        }
        p.hint #live-note role="status" { "Live: this page updates every 2 seconds." }
        (webhooks_live(&picture, filter))
    };
    Ok(page(&req, &csrf, StatusCode::OK, Some(&session), "Webhooks", main))
}

async fn webhooks_fragment(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<WebhooksQuery>,
) -> Result<HttpResponse, AppError> {
    if operator(&req, &state).await?.is_none() {
        return Err(signed_out());
    }
    let filter = query.status.as_deref().filter(|s| !s.is_empty());
    Ok(fragment(webhooks_live(&webhook_picture(&state, filter, 100).await?, filter)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/console").route(web::get().to(routing)))
        .service(web::resource("/console/live").route(web::get().to(routing_fragment)))
        .service(
            web::resource("/console/login").route(web::get().to(login_page)).route(web::post().to(send_code)),
        )
        .service(web::resource("/console/verify").route(web::post().to(verify)))
        .service(web::resource("/console/logout").route(web::post().to(logout)))
        .service(web::resource("/console/tenants").route(web::get().to(tenants)))
        .service(web::resource("/console/tenants/live").route(web::get().to(tenants_fragment)))
        .service(web::resource("/console/tenants/{id}/{action}").route(web::post().to(tenant_control)))
        .service(web::resource("/console/webhooks").route(web::get().to(webhooks)))
        .service(web::resource("/console/webhooks/live").route(web::get().to(webhooks_fragment)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::platform::monitoring::HistogramBucket;

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let h = LatencyHistogram {
            count: 10,
            sum_seconds: 1.0,
            buckets: vec![HistogramBucket { le: 0.01, count: 5 }, HistogramBucket { le: 0.1, count: 9 }],
        };
        assert_eq!(quantile(&h, 0.5), Some(0.01));
        assert_eq!(quantile(&h, 0.9), Some(0.1));
        assert_eq!(quantile(&h, 0.99), Some(f64::INFINITY));
        assert_eq!(quantile(&LatencyHistogram { count: 0, sum_seconds: 0.0, buckets: vec![] }, 0.5), None);
        assert_eq!(seconds(0.0042), "4 ms");
        assert_eq!(seconds(90.0), "90.0 s");
    }
}
