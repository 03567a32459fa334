//! The guarded HTTP client every outbound call uses: webhooks, SOP `http`
//! actions and model providers.
//!
//! [`guarded_client`] builds an `awc::Client` whose connector resolves host
//! names through [`OutboundGuard::resolve_checked`] ([`GuardResolver`]): awc
//! connects only to addresses that passed the guard at connect time, so a DNS
//! answer that changes between a check and the connection (rebinding) cannot
//! slip a private address through. Redirects are never followed (a 3xx is the
//! answer). IP-literal hosts never reach a resolver, so callers check them
//! with [`check_literal_host`] before sending ([`call_json`] does).
//!
//! awc clients are `!Send` (they live on one thread's runtime): build one per
//! thread, e.g. in a `thread_local!` as `crate::agents::providers` does, or on
//! the arbiter the caller runs on, as the webhook sender does. Build and use
//! it inside an actix `System` (any actix-web worker, arbiter or test).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use actix_tls::connect::{Connector as TcpConnector, Resolve, Resolver};
use actix_web::web::Bytes;
use awc::error::{ConnectError, PayloadError, SendRequestError};
use awc::http::Method;
use futures_util::future::LocalBoxFuture;
use futures_util::{Stream, StreamExt};
use url::{Host, Url};

use super::{OutboundGuard, Refusal};

/// The longest a connection may take to establish (shortened to the client's
/// timeout when that is shorter).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`call_json`] may spend reading an answer's body once its head
/// arrived (the client's own timeout covers connect, send and the head).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An awc client that connects only to addresses the guard lets through and
/// never follows redirects. `timeout` bounds each request from connect to the
/// answer's head; reading the body is the caller's to bound.
pub fn guarded_client(guard: OutboundGuard, timeout: Duration, user_agent: &str) -> awc::Client {
    client_with(GuardResolver::new(guard), timeout, user_agent)
}

fn client_with(resolver: GuardResolver, timeout: Duration, user_agent: &str) -> awc::Client {
    let resolver = Resolver::custom(resolver);
    let connector = awc::Connector::new()
        .connector(TcpConnector::new(resolver).service())
        .timeout(CONNECT_TIMEOUT.min(timeout))
        .limit(1024);
    awc::Client::builder()
        .connector(connector)
        .timeout(timeout)
        .disable_redirects()
        .add_default_header(("user-agent", user_agent.to_string()))
        .finish()
}

/// Checks an IP-literal host against the guard (a literal never reaches the
/// resolver). Names pass here; the resolver judges what they resolve to.
/// The error is one line: `refused by the outbound guard: the target points at ...`.
pub fn check_literal_host(guard: &OutboundGuard, url: &Url) -> Result<(), String> {
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match literal {
        Some(ip) => guard.check_addr(ip).map_err(|r| refused_message(&r)),
        None => Ok(()),
    }
}

/// `refused by the outbound guard: <reason>`, the reason naming "the target"
/// (the guard's own messages name the `callback_url` field of a create request).
pub fn refused_message(refusal: &Refusal) -> String {
    format!("refused by the outbound guard: {}", target(&refusal.to_string()))
}

/// The guard's messages name the field of the create request; at send time it is the target.
pub fn target(message: &str) -> String {
    message.replacen("callback_url", "the target", 1)
}

/// What a failed awc send means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The guard refused what the host resolved to (or the literal address).
    /// `message` is the one-line `refused by the outbound guard: ...`.
    Refused { message: String },
    /// The host did not resolve (or resolved to nothing): a network failure,
    /// not a policy one. `message` is the one-line guard message.
    Unresolvable { message: String },
    /// No answer head within the client's timeout.
    TimedOut,
    /// The connection could not be made (refused, reset, connect timeout, TLS).
    Connect(String),
    /// Anything else (sending the body, a malformed answer, ...).
    Other(String),
}

/// Sorts an awc send error into a [`SendFailure`]; the connect-time guard's
/// refusals are recognized through the resolver error they travel in.
pub fn classify_send_error(e: &SendRequestError) -> SendFailure {
    match e {
        SendRequestError::Timeout => SendFailure::TimedOut,
        SendRequestError::Connect(ConnectError::Resolver(inner)) => match inner.downcast_ref::<Refusal>() {
            Some(r @ Refusal::Unresolvable(_)) => SendFailure::Unresolvable { message: refused_message(r) },
            Some(r) => SendFailure::Refused { message: refused_message(r) },
            None => SendFailure::Refused {
                message: format!("refused by the outbound guard: {}", one_line(&inner.to_string())),
            },
        },
        SendRequestError::Connect(c) => SendFailure::Connect(one_line(&c.to_string())),
        other => SendFailure::Other(one_line(&other.to_string())),
    }
}

/// Resolves host names through the outbound guard: only addresses that pass are returned.
pub struct GuardResolver {
    pub guard: OutboundGuard,
    lookup: Lookup,
}

impl GuardResolver {
    /// Looks names up with the system resolver.
    pub fn new(guard: OutboundGuard) -> Self {
        GuardResolver { guard, lookup: Lookup::System }
    }
}

/// Where [`GuardResolver`] looks names up.
enum Lookup {
    /// The system resolver, at every connection.
    System,
    /// Answers from a script, one call at a time (tests: DNS answers that change).
    #[cfg(test)]
    Scripted(Script),
}

/// A scripted lookup: the addresses a name answers with, call by call.
#[cfg(test)]
type Script = Box<dyn Fn(&str) -> Vec<IpAddr>>;

impl Resolve for GuardResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>() {
                self.guard.check_addr(ip)?;
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
            match &self.lookup {
                Lookup::System => {
                    let url = Url::parse(&format!("http://{host}:{port}/"))?;
                    Ok(self.guard.resolve_checked(&url).await?)
                }
                #[cfg(test)]
                Lookup::Scripted(answer) => {
                    let addrs = answer(host).into_iter().map(|ip| SocketAddr::new(ip, port)).collect();
                    Ok(self.guard.judge_name(host, addrs)?)
                }
            }
        })
    }
}

/// The answer to an SOP `http` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCallResult {
    pub status: u16,
    /// The body as UTF-8 (invalid sequences replaced), cut to at most `max_body` bytes.
    pub body: String,
}

/// One JSON call for an SOP `http` action: `method` (any case) to `url`, with
/// `body` as JSON when given. The URL is checked again here (syntax and an
/// IP-literal host) and the client's resolver checks what a name resolves to.
/// Any status is a result (3xx included: redirects are not followed); the body
/// is read for at most [`BODY_READ_TIMEOUT`] and cut to `max_body` bytes.
///
/// Errors are one line: `refused by the outbound guard: ...`,
/// `timed out after 10s`, `connection failed: ...`, `the request failed: ...`,
/// `... is not an HTTP method`.
pub async fn call_json(
    client: &awc::Client,
    guard: &OutboundGuard,
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
    max_body: usize,
) -> Result<HttpCallResult, String> {
    let parsed = guard.check_url_syntax(url).map_err(|r| refused_message(&r))?;
    check_literal_host(guard, &parsed)?;
    let verb = method.trim().to_ascii_uppercase();
    let verb = Method::from_bytes(verb.as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", method.trim()))?;
    let started = Instant::now();
    let request = client.request(verb, parsed.as_str()).insert_header(("accept", "application/json"));
    let sent = match body {
        Some(b) => request.send_json(b).await,
        None => request.send().await,
    };
    let mut answer = sent.map_err(|e| match classify_send_error(&e) {
        SendFailure::Refused { message } | SendFailure::Unresolvable { message } => message,
        SendFailure::TimedOut => format!("timed out after {}", elapsed(started)),
        SendFailure::Connect(c) => format!("connection failed: {c}"),
        SendFailure::Other(o) => format!("the request failed: {o}"),
    })?;
    let status = answer.status().as_u16();
    let read_started = Instant::now();
    let bytes =
        match actix_web::rt::time::timeout(BODY_READ_TIMEOUT, read_capped(&mut answer, max_body)).await {
            Err(_) => return Err(format!("timed out after {} reading the answer", elapsed(read_started))),
            Ok(Err(e)) => return Err(format!("reading the answer failed: {}", one_line(&e.to_string()))),
            Ok(Ok(bytes)) => bytes,
        };
    Ok(HttpCallResult { status, body: lossy_utf8(&bytes) })
}

/// Reads a body up to `max` bytes; stops reading (and drops the rest) past it.
pub async fn read_capped<S>(body: &mut S, max: usize) -> Result<Vec<u8>, PayloadError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let mut out = Vec::new();
    while out.len() < max {
        match body.next().await {
            None => break,
            Some(chunk) => {
                let chunk = chunk?;
                let room = max - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
        }
    }
    Ok(out)
}

/// UTF-8 with invalid sequences replaced; a character cut in half at the end
/// (by a size cap) is dropped rather than replaced.
pub fn lossy_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut chunks = bytes.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        out.push_str(chunk.valid());
        let invalid = chunk.invalid();
        let cut_at_end =
            chunks.peek().is_none() && std::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none());
        if !invalid.is_empty() && !cut_at_end {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out
}

/// Whitespace runs (newlines included) as single spaces, for one-line messages.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `10s`, `1.5s` or `250ms`: how long since `from`.
fn elapsed(from: Instant) -> String {
    human(from.elapsed())
}

fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() < 50 || d >= Duration::from_secs(10) {
        format!("{}s", d.as_secs_f64().round() as u64)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

    fn loopback_guard() -> OutboundGuard {
        OutboundGuard::new(true, Some(vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]))
    }

    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

    /// A loopback server on this test's System: `/echo` answers 201 with what it got,
    /// `/big` 200 with 100 'é's (200 bytes), `/hang` never, `/redirect` 302.
    fn serve() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let s = s.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let s = s.clone();
                async move {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    s.lock().unwrap().push((req.method().to_string(), req.path().to_string(), text.clone()));
                    match req.path() {
                        "/big" => HttpResponse::Ok().body("é".repeat(100)),
                        "/hang" => {
                            std::future::pending::<()>().await;
                            HttpResponse::Ok().finish()
                        }
                        "/redirect" => {
                            HttpResponse::Found().insert_header(("location", "http://127.0.0.1:9/")).finish()
                        }
                        _ => HttpResponse::Created().body(format!("{} {}", req.method(), text)),
                    }
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        (format!("http://127.0.0.1:{port}"), seen)
    }

    #[actix_web::test]
    async fn call_json_sends_json_and_reads_the_answer() {
        let (base, seen) = serve();
        let guard = loopback_guard();
        let client = guarded_client(guard.clone(), Duration::from_secs(5), "test");
        let body = serde_json::json!({"a": 1});
        let r = call_json(&client, &guard, "post", &format!("{base}/echo"), Some(&body), 1000).await.unwrap();
        assert_eq!(r, HttpCallResult { status: 201, body: "POST {\"a\":1}".into() });
        let r = call_json(&client, &guard, "GET", &format!("{base}/echo"), None, 1000).await.unwrap();
        assert_eq!(r.body, "GET ");
        assert_eq!(seen.lock().unwrap().len(), 2);

        // Cut to max_body bytes without splitting a character.
        let r = call_json(&client, &guard, "GET", &format!("{base}/big"), None, 7).await.unwrap();
        assert_eq!(r.body, "ééé");
        // Redirects are the answer, not followed.
        let r = call_json(&client, &guard, "GET", &format!("{base}/redirect"), None, 100).await.unwrap();
        assert_eq!(r.status, 302);

        let e = call_json(&client, &guard, "GE T", &format!("{base}/echo"), None, 10).await.unwrap_err();
        assert!(e.contains("is not an HTTP method"), "{e}");
    }

    #[actix_web::test]
    async fn call_json_times_out_with_a_clear_message() {
        let (base, _) = serve();
        let guard = loopback_guard();
        let client = guarded_client(guard.clone(), Duration::from_millis(300), "test");
        let e = call_json(&client, &guard, "GET", &format!("{base}/hang"), None, 10).await.unwrap_err();
        assert!(e.starts_with("timed out after ") && e.ends_with("ms"), "{e}");
    }

    #[actix_web::test]
    async fn call_json_refuses_before_connecting() {
        let (base, seen) = serve();
        let strict = OutboundGuard::new(false, None);
        let client = guarded_client(strict.clone(), Duration::from_secs(2), "test");
        for url in [
            format!("{base}/echo"),
            "http://[::1]:9/".to_string(),
            "http://169.254.169.254/latest".to_string(),
            "http://localhost:9/".to_string(),
            "ftp://example.com/".to_string(),
        ] {
            let e = call_json(&client, &strict, "GET", &url, None, 10).await.unwrap_err();
            assert!(e.starts_with("refused by the outbound guard: "), "{url}: {e}");
            assert!(!e.contains("callback_url"), "{e}");
        }
        // A name is judged at connect by what it resolves to (localhost, with
        // a guard that lets the name through but not the address).
        let guard = OutboundGuard::new(true, Some(vec!["10.0.0.0/8".parse().unwrap()]));
        let client = guarded_client(guard.clone(), Duration::from_secs(2), "test");
        let port = base.rsplit(':').next().unwrap();
        let e = call_json(&client, &guard, "GET", &format!("http://localhost:{port}/echo"), None, 10)
            .await
            .unwrap_err();
        assert!(e.starts_with("refused by the outbound guard: the target points at"), "{e}");
        assert!(seen.lock().unwrap().is_empty());
    }

    /// DNS rebinding: a name that passed the guard once answers with another
    /// address later. Every connection resolves and judges again, so the
    /// second answer is refused before anything connects to it.
    #[actix_web::test]
    async fn a_name_whose_dns_answer_changes_is_judged_again_at_every_connection() {
        let (base, seen) = serve();
        let port = base.rsplit(':').next().unwrap().to_string();
        // Loopback allowed, but only 127.0.0.1: 127.0.0.2 stands for the
        // internal address a rebinding attacker would switch to (it is local,
        // so nothing leaves the machine even if the guard failed).
        let guard = OutboundGuard::new(true, Some(vec!["127.0.0.1/32".parse().unwrap()]));
        let answers = std::cell::RefCell::new(vec![
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()],
            vec!["127.0.0.2".parse().unwrap()],
            vec!["127.0.0.1".parse().unwrap(), "169.254.169.254".parse().unwrap()],
        ]);
        let asked = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = std::rc::Rc::clone(&asked);
        let script = move |host: &str| {
            assert_eq!(host, "rebind.example", "only the name is looked up");
            counter.set(counter.get() + 1);
            let mut left = answers.borrow_mut();
            if left.is_empty() {
                vec![]
            } else {
                left.remove(0)
            }
        };
        let resolver = GuardResolver { guard: guard.clone(), lookup: Lookup::Scripted(Box::new(script)) };
        // No pooled connection may be reused: each request must resolve again.
        let client = client_with(resolver, Duration::from_secs(2), "test");
        let url = format!("http://rebind.example:{port}/echo");
        let first = client.get(&url).insert_header(("connection", "close")).send().await;
        assert_eq!(first.map(|r| r.status().as_u16()).ok(), Some(201), "the first answer passes");
        for (n, why) in [(2, "outside the allowed outbound networks"), (3, "metadata")] {
            let e = client.get(&url).insert_header(("connection", "close")).send().await.unwrap_err();
            let failure = classify_send_error(&e);
            match &failure {
                SendFailure::Refused { message } => assert!(message.contains(why), "answer {n}: {message}"),
                other => panic!("answer {n} was not refused by the guard: {other:?}"),
            }
            assert_eq!(asked.get(), n, "every connection looked the name up again");
        }
        assert_eq!(seen.lock().unwrap().len(), 1, "only the first answer was connected to");
    }

    #[actix_web::test]
    async fn a_closed_port_is_a_connection_failure() {
        let guard = loopback_guard();
        let client = guarded_client(guard.clone(), Duration::from_secs(2), "test");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = call_json(&client, &guard, "GET", &format!("http://127.0.0.1:{port}/"), None, 10)
            .await
            .unwrap_err();
        assert!(e.starts_with("connection failed: "), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn literal_hosts_are_checked() {
        let strict = OutboundGuard::new(false, None);
        let url = Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            check_literal_host(&strict, &url).unwrap_err(),
            "refused by the outbound guard: the target points at a loopback address (127.0.0.1)"
        );
        assert!(check_literal_host(&strict, &Url::parse("http://example.com/").unwrap()).is_ok());
        assert!(check_literal_host(&strict, &Url::parse("https://8.8.8.8/").unwrap()).is_ok());
        assert!(check_literal_host(&loopback_guard(), &url).is_ok());
    }

    #[test]
    fn lossy_utf8_drops_a_cut_character_only() {
        assert_eq!(lossy_utf8("aé".as_bytes()), "aé");
        assert_eq!(lossy_utf8(&"aé".as_bytes()[..2]), "a");
        assert_eq!(lossy_utf8(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(lossy_utf8(b"a\xff\xc3"), "a\u{fffd}");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(10_020)), "10s");
        assert_eq!(human(Duration::from_millis(1_500)), "1.5s");
    }
}
