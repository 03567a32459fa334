//! A loopback webhook receiver for the tests: a real HTTP/1.1 server on
//! `127.0.0.1:0` that records every request it gets (method, path, headers,
//! the raw body bytes, when it came) and answers as told by a [`Behaviour`]
//! that the test may change at any time.
//!
//! It runs on plain threads (one per connection), not on the test's runtime:
//! a receiver that hangs, or a test runtime that is busy, never holds the
//! other up, and the receiver outlives the server processes a restart test
//! kills. Signatures are checked with the reference implementation, the
//! Python `standardwebhooks` package, through `tests/sdk/verify_webhooks.py`
//! ([`assert_signed`]).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use serde_json::{json, Value};

/// How the receiver answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 to every request.
    Ok,
    /// This status to every request.
    Always(u16),
    /// `status` to the first `n` requests of each `webhook-id`, then 200.
    FailFirst { n: u32, status: u16 },
    /// Reads the request and never answers: the connection stays open until
    /// the client gives up on it (or the receiver is dropped).
    Hang,
    /// `302 Found` with this `Location`.
    Redirect(String),
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Arrival order at this receiver, from 0.
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// Header names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body bytes exactly as received.
    pub body: Vec<u8>,
    pub at: SystemTime,
    /// The status the receiver answered with; None when it did not answer (`Hang`).
    pub answered: Option<u16>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// `webhook-id`, or "" when the request had none.
    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id").unwrap_or("")
    }

    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The escalation a payload is about: `escalation_id` (callback payload)
    /// or `id` (the `/v1` payload, an escalation detail).
    pub fn escalation_id(&self) -> Option<String> {
        let v = self.json();
        v["escalation_id"].as_str().or_else(|| v["id"].as_str()).map(str::to_string)
    }

    pub fn event(&self) -> Option<String> {
        self.json()["event"].as_str().map(str::to_string)
    }

    /// A short description for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "#{} {} {} id={:?} answered={:?} body={}",
            self.seq,
            self.method,
            self.path,
            self.header("webhook-id"),
            self.answered,
            String::from_utf8_lossy(&self.body)
        )
    }
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    log: Mutex<Vec<Captured>>,
    /// Requests seen so far per `webhook-id` (for `FailFirst`).
    seen: Mutex<HashMap<String, u32>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    stop: AtomicBool,
}

/// A running receiver; stops (and lets go of every held connection) when dropped.
pub struct Receiver {
    pub port: u16,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1:0`.
    pub fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            log: Mutex::new(Vec::new()),
            seen: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name(format!("receiver-{}", addr.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if s.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let s = s.clone();
                    std::thread::spawn(move || serve_connection(stream, s));
                }
            })
            .expect("start the receiver thread");
        Receiver { port: addr.port(), addr, shared }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Changes how the next requests are answered.
    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Captured> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    /// The requests that carried this `webhook-id`.
    pub fn with_id(&self, id: &str) -> Vec<Captured> {
        self.requests().into_iter().filter(|c| c.webhook_id() == id).collect()
    }

    /// The requests whose payload is about this escalation.
    pub fn for_escalation(&self, id: &str) -> Vec<Captured> {
        self.requests().into_iter().filter(|c| c.escalation_id().as_deref() == Some(id)).collect()
    }

    /// Requests received and not answered yet (held by `Hang`).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests that were ever waiting for an answer at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every request, one per line, for failure messages.
    pub fn dump(&self) -> String {
        let lines: Vec<String> = self.requests().iter().map(Captured::describe).collect();
        if lines.is_empty() {
            "(no requests)".into()
        } else {
            lines.join("\n")
        }
    }

    /// Polls until `check` holds for the requests so far; returns them, or
    /// panics with everything received.
    pub async fn until(
        &self,
        within: Duration,
        what: &str,
        check: impl Fn(&[Captured]) -> bool,
    ) -> Vec<Captured> {
        let end = Instant::now() + within;
        loop {
            let got = self.requests();
            if check(&got) {
                return got;
            }
            if Instant::now() >= end {
                panic!("receiver {} never saw {what} within {within:?}; got:\n{}", self.port, self.dump());
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A request read off the wire.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    shared: Arc<Shared>,
}

impl Conn {
    /// Reads more bytes into the buffer; 0 at end of stream or when the receiver stops.
    fn more(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return 0;
            }
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(_) => return 0,
            }
        }
    }

    /// Ensures `n` bytes are buffered.
    fn need(&mut self, n: usize) -> Option<()> {
        while self.buf.len() < n {
            if self.more() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Takes bytes up to and including `delim`, returning them without it.
    fn until(&mut self, delim: &[u8]) -> Option<Vec<u8>> {
        let mut from = 0;
        loop {
            if let Some(i) = self.buf[from..].windows(delim.len()).position(|w| w == delim) {
                let at = from + i;
                let out = self.buf[..at].to_vec();
                self.buf.drain(..at + delim.len());
                return Some(out);
            }
            from = self.buf.len().saturating_sub(delim.len());
            if self.more() == 0 {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        self.need(n)?;
        Some(self.buf.drain(..n).collect())
    }

    fn read_request(&mut self) -> Option<Request> {
        let head = String::from_utf8_lossy(&self.until(b"\r\n\r\n")?).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split_whitespace();
        let method = first.next()?.to_string();
        let path = first.next()?.to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let chunked = get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let line = String::from_utf8_lossy(&self.until(b"\r\n")?).into_owned();
                let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
                if size == 0 {
                    // Trailers, then the empty line.
                    while !self.until(b"\r\n")?.is_empty() {}
                    break;
                }
                body.extend(self.take(size)?);
                self.take(2)?;
            }
            body
        } else {
            let len = get("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            self.take(len)?
        };
        Some(Request { method, path, headers, body })
    }

    fn answer(&mut self, status: u16, extra: &str) -> bool {
        let reason = match status {
            200 => "OK",
            201 => "Created",
            204 => "No Content",
            302 => "Found",
            400 => "Bad Request",
            404 => "Not Found",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let body = if (200..300).contains(&status) { "ok" } else { "no" };
        let text = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{extra}\r\n{body}",
            body.len()
        );
        self.stream.write_all(text.as_bytes()).and_then(|_| self.stream.flush()).is_ok()
    }
}

fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    // A short read timeout lets every thread notice that the receiver stopped.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = stream.set_nodelay(true);
    let mut conn = Conn { stream, buf: Vec::new(), shared: shared.clone() };
    while let Some(req) = conn.read_request() {
        let behaviour = shared.behaviour.lock().unwrap().clone();
        let id =
            req.headers.iter().find(|(k, _)| k == "webhook-id").map(|(_, v)| v.clone()).unwrap_or_default();
        let nth = {
            let mut seen = shared.seen.lock().unwrap();
            let n = seen.entry(id).or_insert(0);
            *n += 1;
            *n
        };
        let (status, extra) = match &behaviour {
            Behaviour::Ok => (Some(200), String::new()),
            Behaviour::Always(s) => (Some(*s), String::new()),
            Behaviour::FailFirst { n, status } => {
                (Some(if nth <= *n { *status } else { 200 }), String::new())
            }
            Behaviour::Hang => (None, String::new()),
            Behaviour::Redirect(to) => (Some(302), format!("location: {to}\r\n")),
        };
        let now_waiting = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now_waiting, Ordering::SeqCst);
        let close = req.headers.iter().any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"));
        {
            let mut log = shared.log.lock().unwrap();
            let seq = log.len();
            log.push(Captured {
                seq,
                method: req.method,
                path: req.path,
                headers: req.headers,
                body: req.body,
                at: SystemTime::now(),
                answered: status,
            });
        }
        match status {
            Some(status) => {
                let sent = conn.answer(status, &extra);
                shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                if !sent || close {
                    return;
                }
            }
            None => {
                // Hold the request unanswered until the client closes the connection.
                while conn.more() > 0 {}
                shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

// ---- signature verification with the reference implementation -------------

/// The Python that has `standardwebhooks` installed (`SWITCHBOARD_TEST_PYTHON`).
pub fn python() -> String {
    match std::env::var("SWITCHBOARD_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "SWITCHBOARD_TEST_PYTHON is not set: the webhook tests verify every signature with the \
             Python `standardwebhooks` package. Run them through scripts/test-all.sh, or e.g. \
             `python3 -m venv .venv && .venv/bin/pip install standardwebhooks` and then \
             `SWITCHBOARD_TEST_PYTHON=$PWD/.venv/bin/python cargo test --test webhooks`"
        ),
    }
}

pub fn verify_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("sdk").join("verify_webhooks.py")
}

/// One case for the verifier: `request` checked against `secret`; `valid`
/// says whether it must verify or must be refused.
pub fn case(label: &str, secret: &str, request: &Captured, valid: bool) -> Value {
    json!({
        "label": label,
        "secret": secret,
        "id": request.header("webhook-id"),
        "timestamp": request.header("webhook-timestamp"),
        "signature": request.header("webhook-signature"),
        "body_b64": base64::engine::general_purpose::STANDARD.encode(&request.body),
        "expect": if valid { "valid" } else { "invalid" },
    })
}

/// A copy of `request` with one more byte in its body.
pub fn tampered(request: &Captured) -> Captured {
    let mut t = request.clone();
    t.body.push(b' ');
    t
}

/// How a verifier run ended and what it printed.
#[derive(Debug)]
pub struct Verdict {
    pub success: bool,
    pub output: String,
}

/// Runs `verify_webhooks.py` on `cases` (written to a file in `dir`), off the
/// test's thread.
pub async fn run_verifier(dir: &Path, cases: Vec<Value>) -> Verdict {
    let python = python();
    let file = dir.join(format!("webhook-cases-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, serde_json::to_vec_pretty(&json!({ "cases": cases })).unwrap())
        .expect("write the verifier's cases");
    actix_web::rt::task::spawn_blocking(move || {
        let out = Command::new(&python)
            .arg(verify_script())
            .arg(&file)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot start {python} {}: {e}", verify_script().display()));
        let output = format!(
            "--- verify_webhooks.py exited {} ---\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.code() == Some(3) {
            panic!("the verifier cannot run: {output}");
        }
        Verdict { success: out.status.success(), output }
    })
    .await
    .expect("the verifier runner panicked")
}

/// Asserts with `standardwebhooks` that every request verifies with `secret`
/// and that a copy of each with a tampered body does not.
pub async fn assert_signed(dir: &Path, secret: &str, requests: &[Captured]) {
    assert!(!requests.is_empty(), "no requests to verify");
    let mut cases = Vec::new();
    for r in requests {
        cases.push(case(&format!("request #{} ({})", r.seq, r.webhook_id()), secret, r, true));
        cases.push(case(&format!("tampered copy of #{}", r.seq), secret, &tampered(r), false));
    }
    let verdict = run_verifier(dir, cases).await;
    assert!(
        verdict.success && verdict.output.contains("cases verified as expected"),
        "signature verification failed\n{}",
        verdict.output
    );
}
