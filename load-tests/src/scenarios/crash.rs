//! `crash`: crash consistency under a longer run than the server's own
//! `tests/crash_consistency.rs`, checked through the public API only.
//!
//! Starts `--server-bin` itself (a free loopback port, loopback-only
//! outbound traffic, a fast webhook retry schedule), seeds one enterprise
//! tenant and five experts of small `max_concurrent` through the API, and
//! runs clients (creates with and without an `Idempotency-Key`, some with a
//! `callback_url` to a receiver in this process, cancels) and experts
//! (accept, decline, resolve) while the server is killed with SIGKILL at
//! seeded random moments and restarted on the same database. Every
//! operation is logged as acknowledged (2xx), refused (4xx) or unknown (no
//! answer, 5xx); keyed creates are retried until they have a definite
//! answer. Then the experts drain their queues, and the history is checked
//! against what the API shows. Every violation is listed and the run exits
//! non-zero.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::{Client, Method};
use serde_json::{json, Value};
use tokio::time::{sleep, Instant};

use super::{run_id, tenants, Env, OpError};
use crate::report::{Figure, ScenarioReport, Tally};
use crate::runner::Interrupt;

pub const NAME: &str = "crash";
/// The super-admin the server bootstraps; `switchboard admin token` signs for it.
const ADMIN: &str = "crash-admin@example.com";
/// Experts: which of the two domains they serve, and `max_concurrent`.
const EXPERTS: [(&[usize], u32); 5] = [(&[0], 2), (&[0, 1], 1), (&[1], 2), (&[0, 1], 3), (&[1], 1)];
/// How long a (re)started server may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct CrashArgs {
    /// The `switchboard` server binary to start, SIGKILL and restart
    #[arg(long, value_name = "PATH")]
    pub server_bin: PathBuf,
    /// A PostgreSQL database for the server (postgres://...); default a
    /// SQLite file in --data-dir
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Where the server's data, SQLite file and log go; default a fresh
    /// directory under the system temp dir, removed after a clean run
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// SIGKILLs during --duration (a kill while restarting may add more)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub kills: u32,
    /// Seed of the kill schedule and of every client's choices; default random
    #[arg(long)]
    pub seed: Option<u64>,
    /// Client workers creating and cancelling cases
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub clients: u32,
    /// Liveness bound of the end: draining the queues, and the deliveries
    #[arg(long, default_value = "60s", value_parser = crate::parse_positive_duration)]
    pub settle: Duration,
}

// ---- a small seeded generator (no dependency for it) ----

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// splitmix64.
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// In [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// In [lo, hi).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

// ---- the history ----

#[derive(Clone, Debug)]
enum Outcome {
    Acked(Value),
    Refused(u16, Value),
    /// No answer or a 5xx: it may or may not have happened.
    Unknown(OpError, String),
}

impl Outcome {
    fn acked(&self) -> bool {
        matches!(self, Outcome::Acked(_))
    }
    fn maybe(&self) -> bool {
        !matches!(self, Outcome::Refused(..))
    }
    fn as_result(&self) -> Result<u16, OpError> {
        match self {
            Outcome::Acked(_) => Ok(200),
            Outcome::Refused(s, _) => Err(OpError::Status(*s)),
            Outcome::Unknown(e, _) => Err(*e),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Create,
    Cancel,
    Accept,
    Decline,
    Resolve,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Cancel => "cancel",
            Kind::Accept => "accept",
            Kind::Decline => "decline",
            Kind::Resolve => "resolve",
        }
    }
}

#[derive(Clone, Debug)]
struct Op {
    id: u64,
    kind: Kind,
    case: Option<String>,
    expert: Option<String>,
    query: Option<String>,
    idem: bool,
    callback: bool,
    attempts: u32,
    latency: Duration,
    outcome: Outcome,
}

impl Op {
    fn describe(&self) -> String {
        let out = match &self.outcome {
            Outcome::Acked(_) => "acknowledged".to_string(),
            Outcome::Refused(s, b) => format!("refused {s} {b}"),
            Outcome::Unknown(_, e) => format!("unknown ({e})"),
        };
        format!(
            "op {} {} case={} expert={} idem={} attempts={}: {out}",
            self.id,
            self.kind.label(),
            self.case.as_deref().unwrap_or("-"),
            self.expert.as_deref().unwrap_or("-"),
            self.idem,
            self.attempts
        )
    }
}

struct Shared {
    base: RwLock<String>,
    http: Client,
    stop: AtomicBool,
    next: AtomicU64,
    ops: Mutex<Vec<Op>>,
    violations: Mutex<Vec<String>>,
    replays_checked: AtomicU64,
    portal_checks: AtomicU64,
    /// (case, expert) for every case an expert saw routed to them.
    seen_routed: Mutex<HashSet<(String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Reply {
    outcome: Outcome,
    replayed: bool,
}

impl Shared {
    fn violation(&self, v: String) {
        lock(&self.violations).push(v);
    }

    fn stopped(&self) -> bool {
        self.stop.load(SeqCst)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let base = self.base.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut req = self.http.request(method.clone(), format!("{base}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let text = crate::error_chain(&e);
                return Reply { outcome: Outcome::Unknown(OpError::from(e), text), replayed: false };
            }
        };
        let status = resp.status();
        let replayed = resp.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                let why = format!("{status}, body lost: {e}");
                return Reply { outcome: Outcome::Unknown(OpError::from(e), why), replayed };
            }
        };
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let outcome = if status.is_success() {
            Outcome::Acked(body)
        } else if status.is_server_error() {
            if status.as_u16() == 500 {
                self.violation(format!("{method} {path} answered 500 (a 500 is a bug): {text}"));
            }
            Outcome::Unknown(OpError::Status(status.as_u16()), format!("{status} {text}"))
        } else if status.as_u16() == 401 {
            // Our credentials are valid: only another process on a port a
            // killed server left can refuse them.
            Outcome::Unknown(OpError::Status(401), format!("{status} {text}"))
        } else {
            Outcome::Refused(status.as_u16(), body)
        };
        Reply { outcome, replayed }
    }
}

// ---- the webhook receiver ----

#[derive(Clone, Debug)]
struct Receipt {
    webhook_id: String,
    escalation_id: Option<String>,
    event: Option<String>,
    answered: u16,
}

#[derive(Default)]
struct Inbox {
    receipts: Mutex<Vec<Receipt>>,
    /// What the receiver answers now: 200, or 503 in a spell.
    answer: AtomicU16,
}

async fn receive(req: HttpRequest, body: web::Bytes, inbox: web::Data<Inbox>) -> HttpResponse {
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answered = match inbox.answer.load(SeqCst) {
        0 => 200,
        s => s,
    };
    lock(&inbox.receipts).push(Receipt {
        webhook_id: req.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
        escalation_id: payload["escalation_id"].as_str().map(str::to_string),
        event: payload["event"].as_str().map(str::to_string),
        answered,
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap_or_default()).finish()
}

struct Receiver {
    url: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    async fn start(inbox: Arc<Inbox>) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<actix_web::dev::ServerHandle, String>>();
        let thread = std::thread::Builder::new().name("crash-receiver".into()).spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::from(inbox);
                let server = HttpServer::new(move || {
                    App::new().app_data(data.clone()).default_service(web::to(receive))
                })
                .workers(2)
                .disable_signals()
                .listen(listener);
                match server {
                    Ok(s) => {
                        let s = s.run();
                        if tx.send(Ok(s.handle())).is_ok() {
                            let _ = s.await;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        })?;
        let handle = match rx.await {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => anyhow::bail!("cannot start the webhook receiver: {e}"),
            Err(_) => anyhow::bail!("the webhook receiver's thread ended before it started"),
        };
        Ok(Receiver { url: format!("http://127.0.0.1:{port}/callback"), handle, thread: Some(thread) })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- the server under test ----

struct Server {
    child: Child,
    url: String,
}

struct Launcher {
    bin: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Launcher {
    /// The binary with the run's settings and none of this process's `SWITCHBOARD_*`.
    fn command(&self, port: u16) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("SWITCHBOARD_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"));
        cmd.current_dir(&self.dir);
        cmd
    }

    fn start(&self) -> anyhow::Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log"))?;
        let child = self
            .command(port)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", self.bin.display()))?;
        Ok(Server { child, url: format!("http://127.0.0.1:{port}") })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    async fn wait_ready(&self, server: &mut Server, client: &Client) -> anyhow::Result<()> {
        let end = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                anyhow::bail!("the server exited ({status}) before it was ready:\n{}", self.log_tail());
            }
            if let Ok(r) = client.get(format!("{}/readyz", server.url)).send().await {
                if r.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > end {
                anyhow::bail!("the server was not ready within {READY_TIMEOUT:?}:\n{}", self.log_tail());
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// `switchboard admin token --email ADMIN`, with the server's settings.
    fn token(&self) -> anyhow::Result<String> {
        let out =
            self.command(0).args(["admin", "token", "--email", ADMIN]).stderr(Stdio::piped()).output()?;
        anyhow::ensure!(
            out.status.success(),
            "`switchboard admin token` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout)?.trim().to_string();
        anyhow::ensure!(!token.is_empty(), "`switchboard admin token` printed nothing");
        Ok(token)
    }
}

impl Server {
    /// SIGKILL (what `Child::kill` sends on Unix), then reap it.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- the actors ----

#[derive(Clone, Debug)]
struct Expert {
    id: String,
    token: String,
    max: usize,
    domains: Vec<String>,
}

async fn client_worker(
    sh: Arc<Shared>,
    n: u32,
    seed: u64,
    key: String,
    domains: Vec<String>,
    callback: String,
) {
    let mut rng = Rng::new(seed ^ (0x1000 + u64::from(n)));
    let mut mine: Vec<String> = Vec::new();
    while !sh.stopped() {
        if mine.is_empty() || rng.chance(0.8) {
            let id = sh.next.fetch_add(1, SeqCst);
            let query = format!("crash client{n} op{id} seed{seed}");
            let with_callback = rng.chance(0.5);
            let idem = rng.chance(0.5).then(|| format!("crash-{seed}-{id}"));
            let mut body = json!({
                "domain": domains[rng.range(0, domains.len() as u64) as usize],
                "query": query,
                "priority": "standard",
                "metadata": {"op": id},
            });
            if with_callback {
                body["callback_url"] = json!(callback);
            }
            let mut headers = vec![("X-API-Key", key.as_str())];
            if let Some(k) = &idem {
                headers.push(("Idempotency-Key", k.as_str()));
            }
            let start = Instant::now();
            let (outcome, attempts, replayed) = create(&sh, &body, &headers, idem.is_some()).await;
            let latency = start.elapsed();
            if attempts == 1 && replayed {
                sh.violation(format!("op {id}: a first submission was answered as a replay"));
            }
            let case = match &outcome {
                Outcome::Acked(b) => b["id"].as_str().map(str::to_string),
                _ => None,
            };
            if let (Some(c), true) = (&case, idem.is_some()) {
                if rng.chance(0.15) {
                    // A duplicate of an acknowledged keyed create replays the same case.
                    let (again, _, replayed) = create(&sh, &body, &headers, true).await;
                    if let Outcome::Acked(b) = &again {
                        sh.replays_checked.fetch_add(1, SeqCst);
                        if !replayed || b["id"].as_str() != Some(c.as_str()) {
                            sh.violation(format!(
                                "op {id}: a duplicate keyed submission gave {b} (replayed: {replayed}), not case {c}"
                            ));
                        }
                    }
                }
            }
            if let Some(c) = &case {
                mine.push(c.clone());
            }
            lock(&sh.ops).push(Op {
                id,
                kind: Kind::Create,
                case,
                expert: None,
                query: Some(query),
                idem: idem.is_some(),
                callback: with_callback,
                attempts,
                latency,
                outcome,
            });
        } else {
            let case = mine[rng.range(0, mine.len() as u64) as usize].clone();
            let id = sh.next.fetch_add(1, SeqCst);
            let start = Instant::now();
            let reply = sh
                .call(Method::POST, &format!("/escalations/{case}/cancel"), None, &[("X-API-Key", &key)])
                .await;
            lock(&sh.ops).push(Op {
                id,
                kind: Kind::Cancel,
                case: Some(case),
                expert: None,
                query: None,
                idem: false,
                callback: false,
                attempts: 1,
                latency: start.elapsed(),
                outcome: reply.outcome,
            });
        }
        sleep(Duration::from_millis(rng.range(5, 30))).await;
    }
}

/// `POST /escalations`; with a key, retried until it has a definite answer
/// (after the stop, for at most a minute). Outcome, attempts, replayed.
async fn create(sh: &Shared, body: &Value, headers: &[(&str, &str)], retry: bool) -> (Outcome, u32, bool) {
    let mut attempts = 0;
    let mut stop_seen: Option<Instant> = None;
    loop {
        attempts += 1;
        let reply = sh.call(Method::POST, "/escalations", Some(body), headers).await;
        let again = match &reply.outcome {
            Outcome::Unknown(..) => true,
            // The first attempt may still be running when the retry comes.
            Outcome::Refused(409, b) => b["detail"].as_str().is_some_and(|d| d.contains("another request")),
            _ => false,
        };
        if !retry || !again {
            return (reply.outcome, attempts, reply.replayed);
        }
        if sh.stopped() && stop_seen.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(60) {
            return (reply.outcome, attempts, reply.replayed);
        }
        sleep(Duration::from_millis(50)).await;
    }
}

async fn portal_list(sh: &Shared, e: &Expert, status: &str) -> Option<Vec<Value>> {
    let path = format!("/experts/me/escalations?status={status}");
    match sh.call(Method::GET, &path, None, &[("X-Expert-Token", &e.token)]).await.outcome {
        Outcome::Acked(Value::Array(list)) => Some(list),
        Outcome::Acked(other) => {
            sh.violation(format!("expert {}: {path} is not an array: {other}", e.id));
            None
        }
        Outcome::Refused(s, b) => {
            sh.violation(format!("expert {}: {path} refused {s}: {b}", e.id));
            None
        }
        Outcome::Unknown(..) => None,
    }
}

async fn portal_op(sh: &Shared, e: &Expert, kind: Kind, case: &str) {
    let id = sh.next.fetch_add(1, SeqCst);
    let (action, body) = match kind {
        Kind::Accept => ("accept", None),
        Kind::Resolve => {
            ("resolve", Some(json!({"answer": {"op": id}, "confidence": 0.9, "reasoning": "crash"})))
        }
        _ => ("decline", Some(json!({"reason": "out_of_scope", "notes": format!("op {id}")}))),
    };
    let start = Instant::now();
    let path = format!("/experts/me/escalations/{case}/{action}");
    let reply = sh.call(Method::POST, &path, body.as_ref(), &[("X-Expert-Token", &e.token)]).await;
    lock(&sh.ops).push(Op {
        id,
        kind,
        case: Some(case.to_string()),
        expert: Some(e.id.clone()),
        query: None,
        idem: false,
        callback: false,
        attempts: 1,
        latency: start.elapsed(),
        outcome: reply.outcome,
    });
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Work,
    AcceptAll,
    ResolveAll,
}

/// One look at the expert's queue, checked, then acted on. Whether both lists
/// were read and what they held (routed, in review).
async fn expert_pass(sh: &Shared, e: &Expert, rng: &mut Rng, mode: Mode) -> Option<(usize, usize)> {
    let routed = portal_list(sh, e, "routed").await?;
    let in_review = portal_list(sh, e, "in_review").await?;
    sh.portal_checks.fetch_add(1, SeqCst);
    // Only this expert moves a case out of in_review, so no case is counted twice.
    if routed.len() + in_review.len() > e.max {
        sh.violation(format!(
            "expert {} sees {} routed + {} in review, above max_concurrent {}",
            e.id,
            routed.len(),
            in_review.len(),
            e.max
        ));
    }
    for c in routed.iter().chain(&in_review) {
        if c["expert_id"] != e.id.as_str() {
            sh.violation(format!("expert {} is shown a case of another expert: {c}", e.id));
        }
    }
    let counts = (routed.len(), in_review.len());
    let id = |c: &Value| c["id"].as_str().unwrap_or_default().to_string();
    lock(&sh.seen_routed).extend(routed.iter().map(|c| (id(c), e.id.clone())));
    for c in &routed {
        let r = rng.unit();
        if mode == Mode::ResolveAll {
            portal_op(sh, e, Kind::Accept, &id(c)).await;
            portal_op(sh, e, Kind::Resolve, &id(c)).await;
        } else if mode == Mode::AcceptAll || r < 0.8 {
            portal_op(sh, e, Kind::Accept, &id(c)).await;
        } else if r < 0.95 {
            portal_op(sh, e, Kind::Decline, &id(c)).await;
        }
    }
    if mode == Mode::AcceptAll {
        return Some(counts);
    }
    for c in &in_review {
        let r = rng.unit();
        if mode == Mode::ResolveAll || r < 0.7 {
            portal_op(sh, e, Kind::Resolve, &id(c)).await;
        } else if r < 0.8 {
            portal_op(sh, e, Kind::Decline, &id(c)).await;
        }
    }
    Some(counts)
}

async fn expert_worker(sh: Arc<Shared>, e: Expert, seed: u64, n: u64) {
    let mut rng = Rng::new(seed ^ (0x2000 + n));
    while !sh.stopped() {
        expert_pass(&sh, &e, &mut rng, Mode::Work).await;
        sleep(Duration::from_millis(rng.range(10, 30))).await;
    }
}

/// The receiver answers 503 for short spells, so that deliveries wait for a
/// retry when the server is killed.
async fn flapper(sh: Arc<Shared>, inbox: Arc<Inbox>, seed: u64) {
    let mut rng = Rng::new(seed ^ 0x4000);
    while !sh.stopped() {
        sleep(Duration::from_millis(rng.range(200, 800))).await;
        inbox.answer.store(503, SeqCst);
        sleep(Duration::from_millis(rng.range(100, 400))).await;
        inbox.answer.store(200, SeqCst);
    }
    inbox.answer.store(200, SeqCst);
}

// ---- the run ----

struct Figures {
    crashes: u64,
    early: u64,
    downtime: Duration,
    run: Duration,
    settle: Duration,
}

pub async fn run(
    args: &CrashArgs,
    duration: Duration,
    timeout: Duration,
    interrupt: &Interrupt,
) -> anyhow::Result<(Vec<ScenarioReport>, Vec<String>)> {
    let seed = args.seed.unwrap_or_else(|| {
        let t =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        (t as u64) ^ u64::from(std::process::id()).rotate_left(32)
    });
    let bin = args
        .server_bin
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("--server-bin {}: {e}", args.server_bin.display()))?;
    let run = run_id();
    let (dir, temp) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("switchboard-crash-{run}")), true),
    };
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let db_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("switchboard.db").display()));
    let backend = if db_url.starts_with("postgres") { "postgres" } else { "sqlite" };
    eprintln!(
        "{NAME}: seed {seed} (--seed {seed} repeats the schedule), {backend}, {} with {} kills, data in {}",
        humantime::format_duration(duration),
        args.kills,
        dir.display()
    );

    let inbox = Arc::new(Inbox::default());
    let receiver = Receiver::start(Arc::clone(&inbox)).await?;
    let env: Vec<(String, String)> = [
        ("SWITCHBOARD_DATABASE_URL", db_url.clone()),
        ("SWITCHBOARD_DATA_DIR", dir.join("data").display().to_string()),
        // Nothing leaves this machine; the receiver is on loopback.
        ("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128".into()),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true".into()),
        ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "250ms,250ms,500ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s".into()),
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN.into()),
        ("SWITCHBOARD_SLA_URGENT", "1h".into()),
        ("SWITCHBOARD_SLA_STANDARD", "1h".into()),
        ("SWITCHBOARD_SLA_BATCH", "1h".into()),
        // Routed cases left alone move on, across restarts too.
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "2s".into()),
        ("SWITCHBOARD_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let launcher = Launcher { bin, dir: dir.clone(), env };
    let http = Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(timeout).build()?;

    // ---- set-up through the public API ----
    let mut server = launcher.start()?;
    launcher.wait_ready(&mut server, &http).await?;
    let token = launcher.token()?;
    let seed_env = Env {
        client: http.clone(),
        base_url: server.url.clone(),
        api_key: None,
        token: Some(token),
        keep: true,
        timeout,
    };
    tenants::check_token(&seed_env).await?;
    let key = tenants::escalation_keys(&seed_env, NAME, 1, interrupt)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("registering the tenant was interrupted"))?;
    let domains: Vec<String> = ["alpha", "beta"].iter().map(|d| format!("crash-{run}.{d}")).collect();
    let mut experts = Vec::new();
    for (i, (ds, max)) in EXPERTS.iter().enumerate() {
        let body = json!({
            "name": format!("Crash expert {i}"),
            "email": format!("crash-{run}-{i}@example.com"),
            "domains": ds.iter().map(|d| domains[*d].clone()).collect::<Vec<_>>(),
            "max_concurrent": max,
        });
        let resp =
            http.post(format!("{}/experts", server.url)).header("X-API-Key", &key).json(&body).send().await?;
        let status = resp.status().as_u16();
        let b: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status == 201, "POST /experts answered {status}: {b}");
        let (Some(id), Some(token)) = (b["id"].as_str(), b["expert_token"].as_str()) else {
            anyhow::bail!("POST /experts 201 without id or expert_token: {b}");
        };
        let domains = ds.iter().map(|d| domains[*d].clone()).collect();
        experts.push(Expert { id: id.into(), token: token.into(), max: *max as usize, domains });
    }

    // ---- the run ----
    let sh = Arc::new(Shared {
        base: RwLock::new(server.url.clone()),
        http: http.clone(),
        stop: AtomicBool::new(false),
        next: AtomicU64::new(1),
        ops: Mutex::new(Vec::new()),
        violations: Mutex::new(Vec::new()),
        replays_checked: AtomicU64::new(0),
        portal_checks: AtomicU64::new(0),
        seen_routed: Mutex::new(HashSet::new()),
    });
    let mut tasks = Vec::new();
    for n in 0..args.clients {
        let (sh, key, d, cb) = (Arc::clone(&sh), key.clone(), domains.clone(), receiver.url.clone());
        tasks.push(tokio::spawn(client_worker(sh, n, seed, key, d, cb)));
    }
    for (n, e) in experts.iter().enumerate() {
        tasks.push(tokio::spawn(expert_worker(Arc::clone(&sh), e.clone(), seed, n as u64)));
    }
    tasks.push(tokio::spawn(flapper(Arc::clone(&sh), Arc::clone(&inbox), seed)));

    let mut rng = Rng::new(seed);
    let begin = Instant::now();
    let mut at: Vec<Duration> = (0..args.kills).map(|_| duration.mul_f64(0.1 + 0.8 * rng.unit())).collect();
    at.sort();
    let mut fig = Figures {
        crashes: 0,
        early: 0,
        downtime: Duration::ZERO,
        run: Duration::ZERO,
        settle: Duration::ZERO,
    };
    let mut failure = None;
    for when in at {
        if *interrupt.borrow() {
            break;
        }
        if let Some(wait) = when.checked_sub(begin.elapsed()) {
            sleep(wait).await;
        }
        server.kill();
        fig.crashes += 1;
        let down = Instant::now();
        sleep(Duration::from_millis(rng.range(0, 300))).await;
        server = launcher.start()?;
        if rng.chance(0.3) {
            // Killed again while it starts: migrating, rebuilding, or just ready.
            sleep(Duration::from_millis(rng.range(20, 400))).await;
            server.kill();
            fig.crashes += 1;
            fig.early += 1;
            server = launcher.start()?;
        }
        if let Err(e) = launcher.wait_ready(&mut server, &http).await {
            failure = Some(format!("after crash {}: {e:#}", fig.crashes));
            break;
        }
        *sh.base.write().unwrap_or_else(PoisonError::into_inner) = server.url.clone();
        fig.downtime += down.elapsed();
    }
    if failure.is_none() {
        if let Some(wait) = duration.checked_sub(begin.elapsed()) {
            let mut i = interrupt.clone();
            tokio::select! {
                _ = sleep(wait) => {}
                _ = i.wait_for(|v| *v) => {}
            }
        }
    }
    sh.stop.store(true, SeqCst);
    for t in tasks {
        t.await.map_err(|e| anyhow::anyhow!("a worker failed: {e}"))?;
    }
    fig.run = begin.elapsed();
    if let Some(f) = failure {
        // The server did not come back: that is the finding.
        let mut v = lock(&sh.violations).clone();
        v.push(format!("the server did not come back {f}"));
        return Ok((Vec::new(), v));
    }

    // ---- the end: drain, let the deliveries finish, check ----
    let settle_start = Instant::now();
    let phase =
        |what: &str| eprintln!("{NAME}: {what} ({:.1}s into the end)", settle_start.elapsed().as_secs_f64());
    eprintln!(
        "{NAME}: run over after {:.1}s and {} crashes; draining the queues",
        fig.run.as_secs_f64(),
        fig.crashes
    );
    let mut v: Vec<String> = Vec::new();
    let mut rngs: Vec<Rng> = (0..experts.len() as u64).map(|n| Rng::new(seed ^ (0x3000 + n))).collect();
    if let Err(why) = settle(&sh, &experts, &mut rngs, &key, Mode::AcceptAll, args.settle).await {
        v.push(format!("routing never settled (every routed case accepted) within {:?}: {why}", args.settle));
    }
    phase("every routed case accepted; checking the queues at rest");
    let (held_at_rest, mismatches) = at_rest_queues(&sh, &key, &experts).await;
    v.extend(mismatches.into_iter().map(|m| format!("at rest: {m}")));
    let unrouted = match settle(&sh, &experts, &mut rngs, &key, Mode::ResolveAll, args.settle).await {
        Ok(n) => n,
        Err(why) => {
            v.push(format!(
                "queues never drained (every held case resolved) within {:?}: {why}",
                args.settle
            ));
            0
        }
    };
    phase("queues drained; reading every case");
    let ops = lock(&sh.ops).clone();
    let cases = all_cases(&sh, &key).await?;
    phase("waiting for and checking the deliveries");
    let delivery = check_deliveries(&sh, &key, &cases, &inbox, &receiver.url, args.settle, &mut v).await;
    fig.settle = settle_start.elapsed();
    phase("checking the history");
    check_creates(&ops, &cases, &mut v);
    check_lifecycle(&ops, &cases, &mut v);
    let (_, end_mismatches) = at_rest_queues(&sh, &key, &experts).await;
    v.extend(end_mismatches.into_iter().map(|m| format!("at the end: {m}")));
    let mut all_v = lock(&sh.violations).clone();
    all_v.extend(v);
    drop(server);
    drop(receiver);

    // ---- the figures ----
    let mut rows = Vec::new();
    let mut by_kind: BTreeMap<Kind, Tally> = BTreeMap::new();
    for op in &ops {
        by_kind.entry(op.kind).or_default().record(op.outcome.as_result(), op.latency);
    }
    for (kind, tally) in by_kind {
        rows.push(ScenarioReport::latency_only(format!("{NAME} {}", kind.label()), tally, fig.run));
    }
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for c in cases.values() {
        *statuses.entry(c["status"].as_str().unwrap_or("?").to_string()).or_default() += 1;
    }
    let n = |x: u64| Some(x as f64);
    let mut figures = vec![
        Figure::new("crashes survived (SIGKILL)", n(fig.crashes), ""),
        Figure::new("crashes while restarting", n(fig.early), ""),
        Figure::new("downtime", Some(fig.downtime.as_secs_f64() * 1000.0), "ms"),
        Figure::new("run", Some(fig.run.as_secs_f64() * 1000.0), "ms"),
        Figure::new("settle and check", Some(fig.settle.as_secs_f64() * 1000.0), "ms"),
        Figure::new("operations", n(ops.len() as u64), ""),
        Figure::new(
            "creates retried with their key",
            n(ops.iter().filter(|o| o.attempts > 1).count() as u64),
            "",
        ),
        Figure::new("duplicate submissions replayed", n(sh.replays_checked.load(SeqCst)), ""),
        Figure::new("portal views checked", n(sh.portal_checks.load(SeqCst)), ""),
        Figure::new("cases checked", n(cases.len() as u64), ""),
    ];
    for (s, k) in &statuses {
        figures.push(Figure::new(format!("cases {s}"), n(*k), ""));
    }
    figures.extend([
        Figure::new("held by experts at rest", n(held_at_rest as u64), ""),
        Figure::new("pending cases an idle expert never saw (after --settle)", n(unrouted), ""),
        Figure::new("deliveries checked", n(delivery.checked), ""),
        Figure::new("requests received", n(delivery.requests), ""),
        Figure::new("requests refused by the flapping receiver", n(delivery.refused), ""),
        Figure::new("re-deliveries (same webhook-id, 2xx again)", n(delivery.redelivered), ""),
        Figure::new("violations", n(all_v.len() as u64), ""),
    ]);
    // The first row: every operation, whatever its kind; the figures hang on it.
    let mut all_ops = Tally::default();
    for op in &ops {
        all_ops.record(op.outcome.as_result(), op.latency);
    }
    let mut summary_row = ScenarioReport::latency_only(NAME, all_ops, fig.run);
    summary_row.figures = figures;
    rows.insert(0, summary_row);
    if all_v.is_empty() && temp && !*interrupt.borrow() {
        let _ = std::fs::remove_dir_all(&dir);
    } else if !all_v.is_empty() {
        eprintln!("{NAME}: seed {seed}; the data and server.log stay in {}", dir.display());
    }
    Ok((rows, all_v))
}

/// Lets the experts act as `mode` says until a pass finds nothing to do:
/// no case routed anywhere (nor, for `ResolveAll`, in review), per the
/// portals and the tenant's list. `Err` with why not, after `bound`.
async fn settle(
    sh: &Shared,
    experts: &[Expert],
    rngs: &mut [Rng],
    key: &str,
    mode: Mode,
    bound: Duration,
) -> Result<u64, String> {
    let start = Instant::now();
    loop {
        let mut why = None;
        let passes = futures_join(
            experts
                .iter()
                .zip(rngs.iter_mut())
                .map(|(e, rng)| async move { (e, expert_pass(sh, e, rng, mode).await) }),
        )
        .await;
        for (e, pass) in passes {
            match pass {
                None => why = Some(format!("expert {}'s queue could not be read", e.id)),
                Some((r, _)) if r > 0 => why = Some(format!("expert {} had {r} routed", e.id)),
                Some((_, i)) if i > 0 && mode == Mode::ResolveAll => {
                    why = Some(format!("expert {} had {i} in review", e.id))
                }
                Some(_) => {}
            }
        }
        let mut waiting = Vec::new();
        if why.is_none() {
            match list_statuses(sh, key).await {
                Err(e) => why = Some(e),
                Ok(list) => {
                    let open = |s: &str| s == "routed" || (mode == Mode::ResolveAll && s == "in_review");
                    if let Some((id, s, _)) = list.iter().find(|(_, s, _)| open(s)) {
                        why = Some(format!("case {id} is still {s}"));
                    }
                    if mode == Mode::ResolveAll {
                        waiting = waiting_with_room(sh, experts, &list);
                    }
                }
            }
        }
        let Some(why) = why.or_else(|| waiting.first().cloned()) else { return Ok(0) };
        if start.elapsed() > bound {
            // Only pending cases an idle expert never saw are left: routing
            // may have excluded that expert unseen (a reservation that timed
            // out while the server was down), so a figure, not a violation.
            return if waiting.is_empty() { Err(why) } else { Ok(waiting.len() as u64) };
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// With every queue empty: pending cases of a domain with an expert who
/// never saw the case routed to them nor declined it, so routing could give
/// it to them.
fn waiting_with_room(sh: &Shared, experts: &[Expert], list: &[(String, String, String)]) -> Vec<String> {
    let seen = lock(&sh.seen_routed);
    let ops = lock(&sh.ops);
    let declined: HashSet<(&str, &str)> = ops
        .iter()
        .filter(|o| o.kind == Kind::Decline)
        .filter_map(|o| Some((o.case.as_deref()?, o.expert.as_deref()?)))
        .collect();
    let mut out = Vec::new();
    for (id, status, domain) in list {
        if status != "pending" {
            continue;
        }
        for e in experts {
            let key = (id.clone(), e.id.clone());
            if e.domains.contains(domain)
                && !seen.contains(&key)
                && !declined.contains(&(id.as_str(), e.id.as_str()))
            {
                out.push(format!(
                    "case {id} ({domain}) waits while expert {} is idle and never saw it",
                    e.id
                ));
                break;
            }
        }
    }
    out
}

/// (id, status, domain) of every case of the tenant, from `GET /escalations`.
async fn list_statuses(sh: &Shared, key: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    loop {
        let path = format!("/escalations?limit=200&offset={}", out.len());
        let page = match sh.call(Method::GET, &path, None, &[("X-API-Key", key)]).await.outcome {
            Outcome::Acked(Value::Array(p)) => p,
            other => return Err(format!("GET {path}: {other:?}")),
        };
        out.extend(page.iter().map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
                c["domain"].as_str().unwrap_or_default().to_string(),
            )
        }));
        if page.len() < 200 {
            return Ok(out);
        }
    }
}

/// Every case in full detail, by id (retried while the server is busy).
async fn all_cases(sh: &Shared, key: &str) -> anyhow::Result<BTreeMap<String, Value>> {
    let ids = list_statuses(sh, key).await.map_err(|e| anyhow::anyhow!(e))?;
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(16) {
        let details = futures_join(chunk.iter().map(|(id, ..)| async move {
            for _ in 0..50 {
                if let Outcome::Acked(d) = sh
                    .call(Method::GET, &format!("/escalations/{id}"), None, &[("X-API-Key", key)])
                    .await
                    .outcome
                {
                    return Ok(d);
                }
                sleep(Duration::from_millis(100)).await;
            }
            Err(anyhow::anyhow!("GET /escalations/{id} never answered 200"))
        }))
        .await;
        for d in details {
            let d = d?;
            out.insert(d["id"].as_str().unwrap_or_default().to_string(), d);
        }
    }
    anyhow::ensure!(out.len() == ids.len(), "the list named a case twice");
    Ok(out)
}

/// Runs the futures concurrently on this task, results in order.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futs.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, r) in pinned.iter_mut().zip(results.iter_mut()) {
            if r.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *r = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Each expert's queue against the cases' own view, at rest: each routed or
/// in-review case in exactly the queue of the expert it names, no queue above
/// capacity. A mismatch counts only if a second look shows it too (a case
/// routed between the two reads is not one). How many cases are held.
async fn at_rest_queues(sh: &Shared, key: &str, experts: &[Expert]) -> (usize, Vec<String>) {
    let mut first: Option<HashSet<String>> = None;
    let mut held = 0;
    for _ in 0..2 {
        let mut found = HashSet::new();
        let mut seen_in: HashMap<String, Vec<String>> = HashMap::new();
        for e in experts {
            let mut open = 0;
            for status in ["routed", "in_review"] {
                let Some(list) = portal_list(sh, e, status).await else {
                    found.insert(format!("expert {}'s queue could not be read", e.id));
                    continue;
                };
                for c in list {
                    open += 1;
                    seen_in
                        .entry(c["id"].as_str().unwrap_or_default().to_string())
                        .or_default()
                        .push(e.id.clone());
                }
            }
            if open > e.max {
                found.insert(format!(
                    "expert {} holds {open} open cases, above max_concurrent {}",
                    e.id, e.max
                ));
            }
        }
        held = seen_in.len();
        match list_statuses(sh, key).await {
            Err(e) => {
                found.insert(e);
            }
            Ok(list) => {
                for (id, status, _) in list {
                    let holders = seen_in.remove(&id).unwrap_or_default();
                    let open = status == "routed" || status == "in_review";
                    if open && holders.len() != 1 {
                        found.insert(format!("case {id} ({status}) is in the queues of {holders:?}"));
                    } else if !open && !holders.is_empty() {
                        found.insert(format!("case {id} is {status}, yet in the open queues of {holders:?}"));
                    }
                }
                for (id, holders) in seen_in {
                    found.insert(format!("case {id} of no list is in the queues of {holders:?}"));
                }
            }
        }
        first = Some(match first {
            None => found,
            Some(prev) => return (held, prev.intersection(&found).cloned().collect()),
        });
        sleep(Duration::from_millis(200)).await;
    }
    (held, Vec::new())
}

/// Every acknowledged create exists once; keyed creates got a definite
/// answer; no case comes from nowhere; one case per query (per key).
fn check_creates(ops: &[Op], cases: &BTreeMap<String, Value>, v: &mut Vec<String>) {
    let mut by_query: HashMap<&str, Vec<&Value>> = HashMap::new();
    for c in cases.values() {
        by_query.entry(c["query"].as_str().unwrap_or_default()).or_default().push(c);
    }
    let mut known = HashSet::new();
    for op in ops.iter().filter(|o| o.kind == Kind::Create) {
        let q = op.query.as_deref().unwrap_or_default();
        known.insert(q);
        let found = by_query.get(q).cloned().unwrap_or_default();
        if found.len() > 1 {
            let ids: Vec<&Value> = found.iter().map(|c| &c["id"]).collect();
            v.push(format!("{}: {} cases for one create: {ids:?}", op.describe(), found.len()));
        }
        match &op.outcome {
            Outcome::Acked(body) => {
                if !found.iter().any(|c| c["id"] == body["id"]) {
                    v.push(format!("{}: acknowledged as {} but not stored", op.describe(), body["id"]));
                }
                if let Some(c) = found.first() {
                    if op.callback == c["callback_url"].is_null() {
                        v.push(format!("{}: callback_url not as sent", op.describe()));
                    }
                }
            }
            Outcome::Refused(..) => {
                if op.idem {
                    v.push(format!("{}: a keyed create was refused", op.describe()));
                }
                if !found.is_empty() {
                    v.push(format!("{}: refused, yet stored as {}", op.describe(), found[0]["id"]));
                }
            }
            Outcome::Unknown(..) if op.idem => {
                v.push(format!("{}: never got an answer, even after the last restart", op.describe()))
            }
            Outcome::Unknown(..) => {}
        }
    }
    for (q, list) in &by_query {
        if !known.contains(q) {
            v.push(format!("case {} was never created by any client (query {q:?})", list[0]["id"]));
        }
    }
}

/// Each case's final state agrees with the acknowledged operations on it.
fn check_lifecycle(ops: &[Op], cases: &BTreeMap<String, Value>, v: &mut Vec<String>) {
    let mut on: HashMap<&str, Vec<&Op>> = HashMap::new();
    for op in ops.iter().filter(|o| o.kind != Kind::Create) {
        on.entry(op.case.as_deref().unwrap_or_default()).or_default().push(op);
        if op.outcome.acked() && !cases.contains_key(op.case.as_deref().unwrap_or_default()) {
            v.push(format!("{}: acknowledged on a case that does not exist", op.describe()));
        }
    }
    for (id, d) in cases {
        let status = d["status"].as_str().unwrap_or_default();
        let holder = d["expert_id"].as_str();
        let list = on.get(id.as_str()).cloned().unwrap_or_default();
        let of = |k: Kind| list.iter().filter(move |o| o.kind == k).copied();
        let fail = |v: &mut Vec<String>, why: String| {
            let history: Vec<String> = list.iter().map(|o| o.describe()).collect();
            v.push(format!(
                "case {id} is {status} (expert {holder:?}): {why}; history: {}",
                history.join("; ")
            ));
        };
        let resolves: Vec<&Op> = of(Kind::Resolve).filter(|o| o.outcome.acked()).collect();
        let cancels = of(Kind::Cancel).filter(|o| o.outcome.acked()).count();
        if resolves.len() > 1 {
            fail(v, format!("{} resolves acknowledged", resolves.len()));
        }
        match status {
            "resolved" => {
                let r = &d["resolution"];
                let answer_op = r["answer"]["op"].as_u64();
                match of(Kind::Resolve).find(|o| Some(o.id) == answer_op) {
                    None => fail(v, format!("its answer {} comes from no resolve on it", r["answer"])),
                    Some(o) if !o.outcome.maybe() => {
                        fail(v, "its answer comes from a refused resolve".into())
                    }
                    Some(o) if o.expert.as_deref() != r["expert_id"].as_str() => fail(
                        v,
                        format!("resolved by {}, but op {} was by {:?}", r["expert_id"], o.id, o.expert),
                    ),
                    Some(_) => {}
                }
                if let Some(a) = resolves.first() {
                    if Some(a.id) != answer_op {
                        fail(v, format!("op {} was acknowledged, yet the answer is {}", a.id, r["answer"]));
                    }
                }
                if cancels > 0 {
                    fail(v, "a cancel was acknowledged".into());
                }
            }
            "cancelled" => {
                if !of(Kind::Cancel).any(|o| o.outcome.maybe()) {
                    fail(v, "no cancel on it can have happened".into());
                }
                if !resolves.is_empty() {
                    fail(v, "a resolve was acknowledged".into());
                }
            }
            "pending" | "routed" | "in_review" => {
                if !resolves.is_empty() {
                    fail(v, "a resolve was acknowledged".into());
                }
                if cancels > 0 {
                    fail(v, "a cancel was acknowledged".into());
                }
            }
            other => fail(v, format!("unexpected status {other} (the SLA is an hour)")),
        }
        for a in of(Kind::Accept).filter(|o| o.outcome.acked()) {
            let x = a.expert.as_deref();
            let given_back =
                of(Kind::Decline).any(|o| o.expert.as_deref() == x && o.id > a.id && o.outcome.maybe());
            // Cancelled is a later state of any case (that a cancel may have
            // happened is checked above).
            let ok = given_back
                || status == "cancelled"
                || match status {
                    "in_review" => holder == x,
                    "resolved" => d["resolution"]["expert_id"].as_str() == x,
                    _ => false,
                };
            if !ok {
                fail(v, format!("op {} (accept by {x:?}) was acknowledged", a.id));
            }
        }
        for dcl in of(Kind::Decline).filter(|o| o.outcome.acked()) {
            let x = dcl.expert.as_deref();
            if holder == x || d["resolution"]["expert_id"].as_str() == x {
                fail(v, format!("op {} (decline by {x:?}) was acknowledged, yet that expert has it", dcl.id));
            }
        }
    }
}

struct DeliveryFigures {
    checked: u64,
    requests: u64,
    refused: u64,
    redelivered: u64,
}

/// What is still wrong with the deliveries `list` of resolved case `id`:
/// exactly one `escalation.resolved` to `callback` is owed, delivered, and
/// received with a 2xx (`ok_ids`).
fn problems_of(id: &str, list: &[Value], callback: &str, ok_ids: &HashSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let resolved: Vec<&Value> = list.iter().filter(|d| d["event"] == "escalation.resolved").collect();
    if list.len() != 1 || resolved.len() != 1 || resolved[0]["url"] != callback {
        out.push(format!("case {id}: deliveries {list:?}, owed one escalation.resolved to {callback}"));
    }
    for d in list {
        let wid = d["id"].as_str().unwrap_or("?");
        if d["status"] != "delivered" {
            out.push(format!("case {id}: delivery {d} is not delivered"));
        } else if !ok_ids.contains(wid) {
            out.push(format!(
                "case {id}: delivery {wid} is delivered but never reached the receiver with a 2xx"
            ));
        }
    }
    out
}

/// Every resolved case with a callback: its `escalation.resolved` delivery
/// listed, delivered, and received with a 2xx (waited for, at most `bound`);
/// no (case, event) under two webhook-ids; nothing received that no case owes.
async fn check_deliveries(
    sh: &Shared,
    key: &str,
    cases: &BTreeMap<String, Value>,
    inbox: &Inbox,
    callback: &str,
    bound: Duration,
    v: &mut Vec<String>,
) -> DeliveryFigures {
    let owed: Vec<&String> = cases
        .iter()
        .filter(|(_, c)| c["status"] == "resolved" && !c["callback_url"].is_null())
        .map(|(id, _)| id)
        .collect();
    let start = Instant::now();
    let mut listed: HashMap<String, Vec<Value>> = HashMap::new();
    loop {
        let mut problems = Vec::new();
        let ok_ids: HashSet<String> = lock(&inbox.receipts)
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| r.webhook_id.clone())
            .collect();
        let settled = |id: &str, listed: &HashMap<String, Vec<Value>>| {
            listed.get(id).is_some_and(|l| problems_of(id, l, callback, &ok_ids).is_empty())
        };
        let due: Vec<&String> = owed.iter().copied().filter(|id| !settled(id, &listed)).collect();
        for chunk in due.chunks(32) {
            let answers = futures_join(chunk.iter().map(|id| async move {
                let path = format!("/webhooks/deliveries/{id}");
                (id, path.clone(), sh.call(Method::GET, &path, None, &[("X-API-Key", key)]).await.outcome)
            }))
            .await;
            for (id, path, outcome) in answers {
                match outcome {
                    Outcome::Acked(b) => {
                        let list = b["deliveries"].as_array().cloned().unwrap_or_default();
                        problems.extend(problems_of(id, &list, callback, &ok_ids));
                        listed.insert(id.to_string(), list);
                    }
                    other => problems.push(format!("GET {path}: {other:?}")),
                }
            }
        }
        if problems.is_empty() {
            break;
        }
        if start.elapsed() > bound {
            v.push(format!("{} deliveries not settled within {bound:?}:", problems.len()));
            v.extend(problems.into_iter().take(40));
            break;
        }
        sleep(Duration::from_millis(200)).await;
    }
    let receipts = lock(&inbox.receipts).clone();
    let mut per: HashMap<(String, String), HashSet<String>> = HashMap::new();
    let mut ok_per_id: HashMap<&str, u64> = HashMap::new();
    for r in &receipts {
        let case = r.escalation_id.clone().unwrap_or_default();
        match cases.get(&case) {
            None => v.push(format!("the receiver got a delivery of no case of this tenant: {r:?}")),
            Some(c) if c["status"] != "resolved" || c["callback_url"].is_null() => v.push(format!(
                "the receiver got {r:?} for a case that is {} (callback {})",
                c["status"], c["callback_url"]
            )),
            Some(_) => {}
        }
        if r.event.as_deref() != Some("escalation.resolved") {
            v.push(format!("the receiver got an event it never asked for: {r:?}"));
        }
        per.entry((case, r.event.clone().unwrap_or_default())).or_default().insert(r.webhook_id.clone());
        if (200..300).contains(&r.answered) {
            *ok_per_id.entry(&r.webhook_id).or_default() += 1;
        }
    }
    for ((case, event), ids) in per {
        if ids.len() > 1 {
            v.push(format!("case {case}: {event} came under {} webhook-ids: {ids:?}", ids.len()));
        }
    }
    DeliveryFigures {
        checked: listed.values().map(|l| l.len() as u64).sum(),
        requests: receipts.len() as u64,
        refused: receipts.iter().filter(|r| !(200..300).contains(&r.answered)).count() as u64,
        redelivered: ok_per_id.values().filter(|n| **n > 1).map(|n| n - 1).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::TransportKind;

    #[test]
    fn the_generator_is_seeded_and_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let (u, r) = (a.unit(), a.range(5, 30));
            assert_eq!((u, r), (b.unit(), b.range(5, 30)));
            assert!((0.0..1.0).contains(&u));
            assert!((5..30).contains(&r));
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    fn create_op(id: u64, idem: bool, outcome: Outcome) -> Op {
        Op {
            id,
            kind: Kind::Create,
            case: None,
            expert: None,
            query: Some(format!("q{id}")),
            idem,
            callback: false,
            attempts: 1,
            latency: Duration::ZERO,
            outcome,
        }
    }

    #[test]
    fn creates_are_checked_against_the_cases() {
        let case =
            |id: &str, q: &str| json!({"id": id, "query": q, "callback_url": null, "status": "pending"});
        let cases: BTreeMap<String, Value> = [("a", "q1"), ("b", "q2"), ("c", "q2"), ("d", "stray")]
            .iter()
            .map(|(i, q)| (i.to_string(), case(i, q)))
            .collect();
        let ops = vec![
            create_op(1, true, Outcome::Acked(json!({"id": "a"}))),
            create_op(2, false, Outcome::Unknown(OpError::Transport(TransportKind::Connect), "x".into())),
            create_op(3, false, Outcome::Acked(json!({"id": "z"}))),
            create_op(4, true, Outcome::Unknown(OpError::Status(503), "x".into())),
        ];
        let mut v = Vec::new();
        check_creates(&ops, &cases, &mut v);
        let all = v.join("\n");
        assert!(all.contains("2 cases for one create"), "{all}");
        assert!(all.contains("acknowledged as \"z\" but not stored"), "{all}");
        assert!(all.contains("never got an answer"), "{all}");
        assert!(all.contains("never created by any client"), "{all}");
        assert_eq!(v.len(), 4, "{all}");
    }

    #[test]
    fn an_acknowledged_resolve_must_be_the_answer() {
        let op = |id, kind, outcome| Op {
            id,
            kind,
            case: Some("a".into()),
            expert: Some("e1".into()),
            query: None,
            idem: false,
            callback: false,
            attempts: 1,
            latency: Duration::ZERO,
            outcome,
        };
        let resolved = json!({"id": "a", "status": "resolved", "expert_id": "e1",
            "resolution": {"expert_id": "e1", "answer": {"op": 2}}});
        let cases: BTreeMap<String, Value> = [("a".to_string(), resolved)].into();
        let ops = vec![
            op(1, Kind::Accept, Outcome::Acked(Value::Null)),
            op(2, Kind::Resolve, Outcome::Unknown(OpError::Status(503), "x".into())),
        ];
        let mut v = Vec::new();
        check_lifecycle(&ops, &cases, &mut v);
        assert!(v.is_empty(), "{v:?}");
        let mut ops = ops;
        ops.push(op(3, Kind::Resolve, Outcome::Acked(Value::Null)));
        ops.push(op(4, Kind::Cancel, Outcome::Acked(Value::Null)));
        check_lifecycle(&ops, &cases, &mut v);
        let all = v.join("\n");
        assert!(all.contains("op 3 was acknowledged"), "{all}");
        assert!(all.contains("a cancel was acknowledged"), "{all}");
    }
}
