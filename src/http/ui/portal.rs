//! `/portal`: the expert's pages. Sign in with the expert token (kept in an
//! HttpOnly, SameSite=Strict cookie), set one's status, watch one's queue
//! with live SLA countdowns, open a case, and accept, decline or resolve it
//! through a form generated from its `output_schema`. Every action goes
//! through the same functions as the JSON expert portal
//! (`http::escalation::portal`), so the Quality Gate and the routing rules
//! are the same.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde_json::Value;
use switchboard_actors::model::{EscalationStatus, ExpertId};
use switchboard_actors::records::EscalationRecord;

use super::schema_form::SchemaForm;
use super::{
    checked_form, csrf, frame, html_response, private_cookie, removal_cookie, see_other, when, App, Csrf,
    Form, Frame, CSRF_FIELD,
};
use crate::error::{AppError, FieldError};
use crate::http::auth::{client_address, ExpertToken};
use crate::http::escalation::escalations::{load, parse_id};
use crate::http::escalation::portal::{
    accept_case, decline_case, resolve_case, set_status, DeclineRequest, ResolveRequest,
};
use crate::http::escalation::views::EscalationDetail;
use crate::startup::AppState;
use crate::store::escalations::ExpertRow;
use crate::store::now_ms;

const COOKIE: &str = "sb_expert";
const NAV: [(&str, &str); 1] = [("/portal", "My queue")];

/// The signed-in expert, from the portal's cookie; none when it is missing or no longer valid.
async fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Option<ExpertRow>, AppError> {
    let Some(cookie) = req.cookie(COOKIE) else { return Ok(None) };
    match ExpertToken::from_token(state, cookie.value()).await {
        Ok(token) => Ok(Some(token.expert)),
        Err(AppError::Unauthorized(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn expert_id(row: &ExpertRow) -> Result<ExpertId, AppError> {
    row.id.parse().map_err(AppError::internal)
}

fn to_login() -> HttpResponse {
    see_other("/portal/login")
}

fn page(
    req: &HttpRequest,
    csrf: &Csrf,
    status: StatusCode,
    me: Option<&ExpertRow>,
    title: &str,
    main: Markup,
) -> HttpResponse {
    let who = me.map(|m| m.name.as_str());
    let body = frame(
        &Frame {
            app: App::Portal,
            title,
            nav: if me.is_some() { &NAV } else { &[] },
            current: req.path(),
            signed_in: who.map(|w| (w, csrf.token.as_str())),
        },
        main,
    );
    html_response(HttpResponse::build(status), csrf, body)
}

// ---- sign in and out ---------------------------------------------------------------

async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    if signed_in(&req, &state).await?.is_some() {
        return Ok(see_other("/portal"));
    }
    let csrf = csrf(&req, &state);
    Ok(page(&req, &csrf, StatusCode::OK, None, "Sign in", login_form(&csrf, None)))
}

fn login_form(csrf: &Csrf, error: Option<&str>) -> Markup {
    html! {
        section.narrow {
            h1 { "Sign in" }
            p { "Use the expert token your team gave you (it starts with " code { "exp_" } ")." }
            @if let Some(e) = error { p.alert role="alert" #login-error { (e) } }
            form method="post" action="/portal/login" {
                input type="hidden" name=(CSRF_FIELD) value=(csrf.token);
                div.field {
                    label for="token" { "Expert token" }
                    input #token type="password" name="token" required autocomplete="current-password" autofocus
                        aria-describedby=[error.map(|_| "login-error")] aria-invalid=[error.map(|_| "true")];
                }
                button type="submit" { "Sign in" }
            }
        }
    }
}

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = checked_form(&req, &state, &body)?;
    // Guessing tokens costs the same per-client budget as every other sign-in.
    if let Err(wait) = state.identity.signin_per_client.check(&client_address(&req)) {
        return Err(AppError::RateLimited {
            message: "too many sign-in attempts; retry later".into(),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let token = form.get("token").unwrap_or_default().trim();
    match ExpertToken::from_token(&state, token).await {
        Ok(_) => {
            let mut res = see_other("/portal");
            res.add_cookie(&private_cookie(&req, COOKIE, token.to_string(), "/portal"))
                .map_err(AppError::internal)?;
            Ok(res)
        }
        Err(AppError::Unauthorized(_)) => {
            let csrf = csrf(&req, &state);
            let main =
                login_form(&csrf, Some("That token is not valid. Check it, or ask your team for a new one."));
            Ok(page(&req, &csrf, StatusCode::UNAUTHORIZED, None, "Sign in", main))
        }
        Err(e) => Err(e),
    }
}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    checked_form(&req, &state, &body)?;
    let mut res = to_login();
    res.add_cookie(&removal_cookie(&req, COOKIE, "/portal")).map_err(AppError::internal)?;
    Ok(res)
}

// ---- the queue -----------------------------------------------------------------------

fn is_open(r: &EscalationRecord) -> bool {
    matches!(r.status, EscalationStatus::Routed | EscalationStatus::InReview)
}

/// "12m 05s left" / "overdue by 3s": what the countdown script keeps up to date.
fn countdown(deadline_ms: i64, now: i64) -> String {
    let (left, overdue) =
        if deadline_ms >= now { (deadline_ms - now, false) } else { (now - deadline_ms, true) };
    let s = left / 1000;
    let text = match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    };
    if overdue {
        format!("overdue by {text}")
    } else {
        format!("{text} left")
    }
}

fn sla(deadline_ms: i64, now: i64) -> Markup {
    let detail_deadline =
        chrono::DateTime::from_timestamp_millis(deadline_ms).map(|t| t.to_rfc3339()).unwrap_or_default();
    html! {
        time.sla.overdue[deadline_ms < now] datetime=(detail_deadline) data-deadline=(deadline_ms) title={ "Due " (when(deadline_ms)) } {
            (countdown(deadline_ms, now))
        }
    }
}

fn status_badge(status: &str) -> Markup {
    html! { span class={ "badge s-" (status) } { (status.replace('_', " ")) } }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

/// The open cases, newest first: the part of the page the script refreshes.
fn queue(cases: &[EscalationRecord], now: i64) -> Markup {
    let open: Vec<&EscalationRecord> = cases.iter().filter(|r| is_open(r)).collect();
    html! {
        div #queue data-count=(open.len()) data-ids=(open.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(" ")) {
            @if open.is_empty() {
                p.empty { "No open cases. New cases appear here as soon as they are routed to you." }
            } @else {
                div.table-wrap {
                    table {
                        caption.sr { "Cases routed to you and in review" }
                        thead { tr { th scope="col" { "Case" } th scope="col" { "Domain" } th scope="col" { "Priority" } th scope="col" { "Status" } th scope="col" { "SLA" } } }
                        tbody {
                            @for r in &open {
                                tr data-case=(r.id.to_string()) {
                                    td { a href={ "/portal/cases/" (r.id.to_string()) } { (short(&r.query, 90)) } }
                                    td { (r.domain.as_str()) }
                                    td { span class={ "prio p-" (r.priority.as_str()) } { (r.priority.as_str()) } }
                                    td { (status_badge(r.status.as_str())) }
                                    td { (sla(r.sla_deadline_ms, now)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn recent(cases: &[EscalationRecord]) -> Markup {
    let closed: Vec<&EscalationRecord> = cases.iter().filter(|r| !is_open(r)).take(10).collect();
    html! {
        @if !closed.is_empty() {
            div.table-wrap {
                table {
                    caption.sr { "Your recent cases" }
                    thead { tr { th scope="col" { "Case" } th scope="col" { "Status" } th scope="col" { "Closed" } } }
                    tbody {
                        @for r in &closed {
                            tr {
                                td { a href={ "/portal/cases/" (r.id.to_string()) } { (short(&r.query, 90)) } }
                                td { (status_badge(r.status.as_str())) }
                                td { (r.resolved_at_ms.or(r.closed_at_ms).map(when).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        } @else {
            p.muted { "Nothing yet." }
        }
    }
}

async fn my_cases(state: &AppState, me: &ExpertRow) -> Result<Vec<EscalationRecord>, AppError> {
    Ok(state.store.escalations_of_expert(expert_id(me)?, None, 200).await?)
}

#[derive(serde::Deserialize)]
struct HomeQuery {
    declined: Option<String>,
}

async fn home(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HomeQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(me) = signed_in(&req, &state).await? else { return Ok(to_login()) };
    let cases = my_cases(&state, &me).await?;
    let csrf = csrf(&req, &state);
    let now = now_ms();
    let main = html! {
        h1 { "My queue" }
        @if let Some(id) = &query.declined {
            p.notice role="status" { "You declined case " code { (short(id, 40)) } ". It went back to routing and will not be offered to you again." }
        }
        section.card aria-labelledby="status-h" {
            h2 #status-h { "My status" }
            form.inline method="post" action="/portal/status" {
                input type="hidden" name=(CSRF_FIELD) value=(csrf.token);
                label for="status" { "I am" }
                select #status name="status" {
                    @for s in ["available", "busy", "offline"] {
                        option value=(s) selected[me.status == s] { (s) }
                    }
                }
                button type="submit" { "Update status" }
                span { "Now: " (status_badge(&me.status)) }
            }
            p.hint { "Available: new cases are routed to you, up to " (me.max_concurrent) " at a time. Busy or offline: no new cases." }
        }
        section.card aria-labelledby="queue-h" {
            h2 #queue-h { "Open cases" }
            p.hint #live-note { "This list updates by itself." }
            div aria-live="polite" #queue-live { (queue(&cases, now)) }
            noscript { p { a href="/portal" { "Reload" } " to see new cases." } }
        }
        section.card aria-labelledby="recent-h" {
            h2 #recent-h { "Recently closed" }
            (recent(&cases))
        }
    };
    Ok(page(&req, &csrf, StatusCode::OK, Some(&me), "My queue", main))
}

/// The queue alone, for the page's script to swap in; 401 once signed out.
async fn queue_fragment(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some(me) = signed_in(&req, &state).await? else {
        return Err(AppError::Unauthorized("signed out".into()));
    };
    let cases = my_cases(&state, &me).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(queue(&cases, now_ms()).into_string()))
}

async fn update_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = checked_form(&req, &state, &body)?;
    let Some(me) = signed_in(&req, &state).await? else { return Ok(to_login()) };
    set_status(&state, expert_id(&me)?, form.get("status").unwrap_or_default()).await?;
    Ok(see_other("/portal"))
}

// ---- one case --------------------------------------------------------------------------

/// What went wrong with the last form on the case page.
#[derive(Default)]
struct Outcome<'a> {
    form: Form,
    errors: Vec<FieldError>,
    alert: Option<&'a str>,
}

fn case_main(csrf: &Csrf, record: &EscalationRecord, outcome: &Outcome, now: i64) -> Markup {
    let detail = EscalationDetail::from(record);
    let id = detail.id.as_str();
    let schema_form = SchemaForm::new(record.output_schema.as_ref());
    let status = record.status;
    let can_answer = matches!(status, EscalationStatus::Routed | EscalationStatus::InReview);
    let confidence_error: Vec<&FieldError> =
        outcome.errors.iter().filter(|e| e.path == "/confidence").collect();
    html! {
        p.crumbs { a href="/portal" { "← My queue" } }
        h1 { "Case" }
        div.meta-row {
            (status_badge(status.as_str()))
            span class={ "prio p-" (detail.priority) } { (detail.priority) }
            span.domain { (detail.domain) }
            @if can_answer { (sla(record.sla_deadline_ms, now)) }
        }
        @if let Some(alert) = outcome.alert {
            div.alert role="alert" tabindex="-1" #form-alert {
                p { (alert) }
                @if !outcome.errors.is_empty() {
                    ul {
                        @for e in &outcome.errors {
                            li {
                                @if let Some(anchor) = schema_form.anchor_of(e).or_else(|| (e.path == "/confidence").then(|| "confidence".to_string())) {
                                    a href={ "#" (anchor) } { code { (e.path) } ": " (e.message) }
                                } @else {
                                    code { (e.path) } ": " (e.message)
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="query-h" {
            h2 #query-h { "Query" }
            p.query { (detail.query) }
            dl.facts {
                dt { "Case id" } dd { code { (id) } }
                @if let Some(t) = &detail.task_type { dt { "Task type" } dd { (t) } }
                dt { "Created" } dd { (when(record.created_at_ms)) }
                dt { "Due" } dd { (when(record.sla_deadline_ms)) }
            }
        }
        @if let Some(context) = &detail.context {
            section.card aria-labelledby="context-h" {
                h2 #context-h { "Context" }
                (json_block(context))
            }
        }
        @if !detail.candidates.is_empty() {
            section.card aria-labelledby="cand-h" {
                h2 #cand-h { "Candidate answers" }
                ol.candidates {
                    @for c in &detail.candidates {
                        li {
                            p.muted {
                                code { (c.id) }
                                @if let Some(conf) = c.confidence { " · confidence " (conf) }
                                @if let Some(src) = &c.source { " · from " (src) }
                            }
                            (json_block(&c.answer))
                        }
                    }
                }
            }
        }
        @if let Some(metadata) = &detail.metadata {
            section.card aria-labelledby="meta-h" {
                h2 #meta-h { "Metadata" }
                (json_block(metadata))
            }
        }
        @if let Some(resolution) = &detail.resolution {
            section.card.resolved aria-labelledby="res-h" {
                h2 #res-h { "Resolution" }
                (json_block(&resolution.answer))
                dl.facts {
                    @if let Some(c) = resolution.confidence { dt { "Confidence" } dd { (c) } }
                    @if let Some(r) = &resolution.reasoning { dt { "Reasoning" } dd { (r) } }
                    dt { "Resolved" } dd { (resolution.resolved_at) }
                }
            }
        }
        @if status == EscalationStatus::Routed {
            section.card aria-labelledby="accept-h" {
                h2 #accept-h { "Take it" }
                p { "Accepting tells the client you are working on it; you can also resolve straight away." }
                form method="post" action={ "/portal/cases/" (id) "/accept" } {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf.token);
                    button type="submit" { "Accept case" }
                }
            }
        }
        @if can_answer {
            section.card aria-labelledby="resolve-h" {
                h2 #resolve-h { "Resolve" }
                @if record.output_schema.is_some() {
                    p.hint { "The fields follow the case's output schema; the Quality Gate checks your answer when you submit it." }
                }
                form.resolve method="post" action={ "/portal/cases/" (id) "/resolve" } novalidate {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf.token);
                    (schema_form.render(&outcome.form, &outcome.errors))
                    div.field.invalid[!confidence_error.is_empty()] {
                        label for="confidence" { "Confidence (0 to 1)" span.req aria-hidden="true" { " *" } span.sr { " (required)" } }
                        input #confidence type="text" inputmode="decimal" name="confidence" value=(outcome.form.get("confidence").unwrap_or_default())
                            aria-describedby=[(!confidence_error.is_empty()).then_some("confidence-error")] aria-invalid=[(!confidence_error.is_empty()).then_some("true")];
                        @if !confidence_error.is_empty() {
                            p.field-error #confidence-error { @for e in &confidence_error { (e.message) } }
                        }
                    }
                    div.field {
                        label for="reasoning" { "Reasoning" }
                        textarea #reasoning name="reasoning" rows="3" { (outcome.form.get("reasoning").unwrap_or_default()) }
                    }
                    @if !detail.candidates.is_empty() {
                        div.field {
                            label for="source" { "Based on candidate" }
                            select #source name="source_candidate_id" {
                                option value="" { "— none —" }
                                @for c in &detail.candidates {
                                    option value=(c.id) selected[outcome.form.get("source_candidate_id") == Some(c.id.as_str())] { (c.id) }
                                }
                            }
                        }
                        div.field {
                            label for="action" { "What you did with it" }
                            select #action name="candidate_action" {
                                option value="" { "— not said —" }
                                @for a in ["accepted", "edited", "rejected"] {
                                    option value=(a) selected[outcome.form.get("candidate_action") == Some(a)] { (a) }
                                }
                            }
                        }
                    }
                    button type="submit" { "Submit resolution" }
                }
            }
            section.card aria-labelledby="decline-h" {
                h2 #decline-h { "Decline" }
                form method="post" action={ "/portal/cases/" (id) "/decline" } {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf.token);
                    div.field {
                        label for="reason" { "Reason" }
                        select #reason name="reason" required {
                            @for (value, text) in [("need_more_context", "Need more context"), ("out_of_scope", "Out of my scope"),
                                ("conflict_of_interest", "Conflict of interest"), ("too_busy", "Too busy"), ("other", "Other")] {
                                option value=(value) { (text) }
                            }
                        }
                    }
                    div.field {
                        label for="notes" { "Notes (optional)" }
                        textarea #notes name="notes" rows="2" {}
                    }
                    button.secondary type="submit" { "Decline case" }
                }
            }
        }
    }
}

fn json_block(value: &Value) -> Markup {
    match value {
        Value::String(s) => html! { p.prewrap { (s) } },
        other => html! { pre.json { code { (super::pretty(other)) } } },
    }
}

async fn my_case(state: &AppState, me: &ExpertRow, raw_id: &str) -> Result<EscalationRecord, AppError> {
    let id = parse_id(raw_id)?;
    load(state, id, &switchboard_actors::engine::Caller::Expert(expert_id(me)?)).await
}

fn case_page(
    req: &HttpRequest,
    state: &AppState,
    me: &ExpertRow,
    status: StatusCode,
    record: &EscalationRecord,
    outcome: &Outcome,
) -> HttpResponse {
    let csrf = csrf(req, state);
    let main = case_main(&csrf, record, outcome, now_ms());
    page(req, &csrf, status, Some(me), &short(&record.query, 60), main)
}

async fn show_case(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(me) = signed_in(&req, &state).await? else { return Ok(to_login()) };
    let record = my_case(&state, &me, &path).await?;
    Ok(case_page(&req, &state, &me, StatusCode::OK, &record, &Outcome::default()))
}

/// A refusal the expert can act on is shown on the case page; anything else is an error page.
async fn refused(
    req: &HttpRequest,
    state: &AppState,
    me: &ExpertRow,
    raw_id: &str,
    err: AppError,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let (status, alert, errors) = match err {
        AppError::Unprocessable { message, errors } => (StatusCode::UNPROCESSABLE_ENTITY, message, errors),
        AppError::Conflict(message) => (StatusCode::CONFLICT, message, Vec::new()),
        AppError::BadRequest(message) => (StatusCode::BAD_REQUEST, message, Vec::new()),
        other => return Err(other),
    };
    let record = my_case(state, me, raw_id).await?;
    let alert = format!("Not saved: {alert}.");
    Ok(case_page(req, state, me, status, &record, &Outcome { form, errors, alert: Some(&alert) }))
}

async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = checked_form(&req, &state, &body)?;
    let Some(me) = signed_in(&req, &state).await? else { return Ok(to_login()) };
    let id = parse_id(&path)?;
    match accept_case(&state, expert_id(&me)?, id).await {
        Ok(_) => Ok(see_other(&format!("/portal/cases/{id}"))),
        Err(e) => refused(&req, &state, &me, &path, e, form).await,
    }
}

async fn decline(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = checked_form(&req, &state, &body)?;
    let Some(me) = signed_in(&req, &state).await? else { return Ok(to_login()) };
    let request = DeclineRequest {
        reason: form.get("reason").unwrap_or_default().to_string(),
        notes: form.get("notes").filter(|n| !n.trim().is_empty()).map(str::to_string),
        source_candidate_id: None,
    };
    let id = parse_id(&path)?;
    match decline_case(&state, expert_id(&me)?, id, request).await {
        Ok(_) => Ok(see_other(&format!("/portal?declined={id}"))),
        Err(e) => refused(&req, &state, &me, &path, e, form).await,
    }
}

async fn resolve(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = checked_form(&req, &state, &body)?;
    let Some(me) = signed_in(&req, &state).await? else { return Ok(to_login()) };
    let record = my_case(&state, &me, &path).await?;
    let schema_form = SchemaForm::new(record.output_schema.as_ref());
    let (answer, mut errors) = schema_form.read(&form, record.output_schema.is_none());
    let confidence = match form.get("confidence").map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => match raw.parse::<f64>() {
            Ok(c) if c.is_finite() => Some(c),
            _ => {
                errors.push(FieldError {
                    path: "/confidence".into(),
                    message: format!("confidence must be a number between 0 and 1, not {raw:?}"),
                });
                None
            }
        },
    };
    if !errors.is_empty() {
        let err = AppError::Unprocessable { message: "some fields could not be read".into(), errors };
        return refused(&req, &state, &me, &path, err, form).await;
    }
    let text = |name: &str| form.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let request = ResolveRequest {
        answer: Some(answer),
        confidence,
        reasoning: text("reasoning"),
        source_candidate_id: text("source_candidate_id"),
        candidate_action: text("candidate_action"),
    };
    match resolve_case(&state, expert_id(&me)?, record.id, request).await {
        Ok(_) => Ok(see_other(&format!("/portal/cases/{}", record.id))),
        Err(e) => refused(&req, &state, &me, &path, e, form).await,
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/portal").route(web::get().to(home)))
        .service(web::resource("/portal/login").route(web::get().to(login_page)).route(web::post().to(login)))
        .service(web::resource("/portal/logout").route(web::post().to(logout)))
        .service(web::resource("/portal/status").route(web::post().to(update_status)))
        .service(web::resource("/portal/queue").route(web::get().to(queue_fragment)))
        .service(web::resource("/portal/cases/{escalation_id}").route(web::get().to(show_case)))
        .service(web::resource("/portal/cases/{escalation_id}/accept").route(web::post().to(accept)))
        .service(web::resource("/portal/cases/{escalation_id}/decline").route(web::post().to(decline)))
        .service(web::resource("/portal/cases/{escalation_id}/resolve").route(web::post().to(resolve)));
}

#[cfg(test)]
mod tests {
    use super::countdown;

    #[test]
    fn countdowns_read_naturally() {
        assert_eq!(countdown(65_000, 0), "1m 05s left");
        assert_eq!(countdown(5_000, 0), "5s left");
        assert_eq!(countdown(3 * 3_600_000 + 61_000, 0), "3h 01m left");
        assert_eq!(countdown(0, 3_000), "overdue by 3s");
    }
}
