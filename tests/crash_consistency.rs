//! Crash consistency, in the style of a Jepsen set test: concurrent clients
//! create (some with an `Idempotency-Key` they retry, some with a
//! `callback_url`) and cancel escalations, experts accept, resolve and
//! decline them through the portal, and a `/v1` webhook subscription hears of
//! every creation and resolution — while the real server binary is killed with
//! SIGKILL at random moments and restarted on the same database.
//!
//! Every operation is logged with its outcome: acknowledged (2xx), refused
//! (4xx) or unknown (no answer, 5xx: it may or may not have happened). At the
//! end, with the server up and quiescent, the history is checked against what
//! the API (and, where the API cannot tell, the database) shows:
//!
//! 1. every acknowledged create exists, once; every acknowledged accept,
//!    resolve, cancel and decline is in that state or a later one;
//! 2. no expert ever holds more open cases than its `max_concurrent`
//!    (sampled from the database during the run, and at the end);
//! 3. no case is held by two experts, and the portal agrees with the case;
//! 4. every delivery owed is delivered (eventually; the receiver fails each
//!    first attempt), none stays pending;
//! 5. no duplicate side effect: one case per `Idempotency-Key`, one
//!    resolution per case, one delivery (one `webhook-id`) per case and event.
//!    The same `webhook-id` delivered twice is allowed (at-least-once) and counted.
//!
//! Short by default (CI); `SWITCHBOARD_CRASH_SECS`, `SWITCHBOARD_CRASH_KILLS`
//! and `SWITCHBOARD_CRASH_SEED` make a longer or a repeated run.

#[path = "common/child.rs"]
#[allow(dead_code)] // each test file uses a different part
mod child;
mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use child::ChildServer as Server;
use common::receiver::{self, Behaviour, Captured, Receiver};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::query_dsl::methods::LoadQuery;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::SqliteConnection;
use diesel::{sql_query, Connection, QueryableByName, RunQueryDsl};
use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "crash-admin@example.com";
const DOMAINS: [&str; 2] = ["crash.alpha", "crash.beta"];
/// How long the end of the run may take to settle (routing, deliveries): a
/// bound on liveness, not a timing assertion.
const SETTLE: Duration = Duration::from_secs(60);
/// The experts: domains and `max_concurrent`.
const EXPERTS: [(&[&str], u32); 5] = [
    (&["crash.alpha"], 2),
    (&["crash.alpha", "crash.beta"], 1),
    (&["crash.beta"], 2),
    (&["crash.alpha", "crash.beta"], 3),
    (&["crash.beta"], 1),
];
const CLIENTS: u64 = 4;

fn setting<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().unwrap_or_else(|_| panic!("{name}={v} is not a valid value"))
        }
        _ => default,
    }
}

fn sleep(d: Duration) -> actix_web::rt::time::Sleep {
    actix_web::rt::time::sleep(d)
}

// ---- the history ------------------------------------------------------------

#[derive(Clone, Debug)]
enum Outcome {
    /// 2xx, with the body.
    Acked(Value),
    /// 4xx, with the status and body.
    Refused(u16, Value),
    /// No answer, or a 5xx: it may or may not have taken effect.
    Unknown(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Acked(_) => "acknowledged",
            Outcome::Refused(..) => "refused",
            Outcome::Unknown(_) => "unknown",
        }
    }
    fn acked(&self) -> bool {
        matches!(self, Outcome::Acked(_))
    }
    /// Acknowledged or unknown: it may have taken effect.
    fn maybe(&self) -> bool {
        !matches!(self, Outcome::Refused(..))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Create,
    Cancel,
    Accept,
    Resolve,
    Decline,
}

#[derive(Clone, Debug)]
struct Op {
    id: u64,
    who: String,
    kind: Kind,
    /// The case it was about (for a create: the acknowledged id).
    case: Option<String>,
    /// The expert that acted (portal operations).
    expert: Option<String>,
    /// Creates: the unique `query`, whether it had a key and a callback.
    query: Option<String>,
    idem: Option<String>,
    callback: bool,
    attempts: u32,
    outcome: Outcome,
}

impl Op {
    fn describe(&self) -> String {
        let out = match &self.outcome {
            Outcome::Acked(_) => "acknowledged".to_string(),
            Outcome::Refused(s, b) => format!("refused {s} {b}"),
            Outcome::Unknown(e) => format!("unknown ({e})"),
        };
        format!(
            "op {} {:?} by {} case={} expert={} query={:?} idem={:?} attempts={}: {out}",
            self.id,
            self.kind,
            self.who,
            self.case.as_deref().unwrap_or("-"),
            self.expert.as_deref().unwrap_or("-"),
            self.query,
            self.idem,
            self.attempts
        )
    }
}

/// What every task shares: where the server is now, the history, and what
/// was seen going wrong on the way.
struct Shared {
    base: RwLock<String>,
    http: reqwest::Client,
    stop: AtomicBool,
    next: AtomicU64,
    ops: Mutex<Vec<Op>>,
    violations: Mutex<Vec<String>>,
    five_xx: Mutex<BTreeMap<u16, usize>>,
    stale_401: AtomicU64,
    replays_checked: AtomicU64,
    capacity_samples: AtomicU64,
}

struct Reply {
    outcome: Outcome,
    replayed: bool,
}

impl Shared {
    fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::SeqCst)
    }

    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }

    fn record(&self, op: Op) {
        self.ops.lock().unwrap().push(op);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let base = self.base.read().unwrap().clone();
        let mut req = self.http.request(method.clone(), format!("{base}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return Reply { outcome: Outcome::Unknown(e.to_string()), replayed: false },
        };
        let status = res.status();
        let replayed = res.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        let text = match res.text().await {
            Ok(t) => t,
            Err(e) => {
                return Reply { outcome: Outcome::Unknown(format!("{status}, body lost: {e}")), replayed }
            }
        };
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let outcome = if status.is_success() {
            Outcome::Acked(body)
        } else if status.is_server_error() {
            *self.five_xx.lock().unwrap().entry(status.as_u16()).or_default() += 1;
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                self.violation(format!("{method} {path} answered 500 (a 500 is a bug): {text}"));
            }
            Outcome::Unknown(format!("{status} {text}"))
        } else if status == StatusCode::UNAUTHORIZED {
            // Our credentials are valid: only another server, on the port a
            // killed one left, can refuse them. Whatever happened, not here.
            self.stale_401.fetch_add(1, Ordering::SeqCst);
            Outcome::Unknown(format!("{status} {text}"))
        } else {
            Outcome::Refused(status.as_u16(), body)
        };
        Reply { outcome, replayed }
    }
}

// ---- the database, where the API cannot tell --------------------------------

enum Db {
    Lite(SqliteConnection),
    Pg(PgConnection),
}

#[derive(QueryableByName, Debug, Clone)]
struct CaseRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    domain: String,
    #[diesel(sql_type = Nullable<Text>)]
    expert_id: Option<String>,
    #[diesel(sql_type = Text)]
    excluded_experts: String,
}

#[derive(QueryableByName, Debug, Clone)]
struct ExpertRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    domains: String,
    #[diesel(sql_type = Integer)]
    max_concurrent: i32,
}

#[derive(QueryableByName, Debug, Clone)]
struct DeliveryRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    escalation_id: Option<String>,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
}

#[derive(QueryableByName, Debug, Clone)]
struct EventCount {
    #[diesel(sql_type = Text)]
    stream: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Db {
    fn open(url: &str) -> Db {
        match url.strip_prefix("sqlite://") {
            Some(path) => {
                let mut c = SqliteConnection::establish(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                c.batch_execute("PRAGMA busy_timeout = 10000;").unwrap();
                Db::Lite(c)
            }
            None => Db::Pg(PgConnection::establish(url).unwrap_or_else(|e| panic!("open {url}: {e}"))),
        }
    }

    fn load<T>(&mut self, sql: &str) -> diesel::QueryResult<Vec<T>>
    where
        diesel::query_builder::SqlQuery:
            LoadQuery<'static, SqliteConnection, T> + LoadQuery<'static, PgConnection, T>,
    {
        match self {
            Db::Lite(c) => sql_query(sql).load(c),
            Db::Pg(c) => sql_query(sql).load(c),
        }
    }

    fn cases(&mut self) -> diesel::QueryResult<Vec<CaseRow>> {
        self.load("SELECT id, status, domain, expert_id, excluded_experts FROM escalations")
    }

    fn experts(&mut self) -> diesel::QueryResult<Vec<ExpertRow>> {
        self.load("SELECT id, status, domains, max_concurrent FROM experts")
    }

    fn deliveries(&mut self) -> diesel::QueryResult<Vec<DeliveryRow>> {
        self.load("SELECT id, escalation_id, event, status, attempts, last_error FROM webhook_deliveries")
    }

    fn event_counts(&mut self) -> diesel::QueryResult<Vec<EventCount>> {
        self.load("SELECT stream, kind, COUNT(*) AS n FROM events GROUP BY stream, kind")
    }
}

/// Open cases (routed or in review) per expert, from one snapshot of the table.
fn held(cases: &[CaseRow]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for c in cases {
        if c.status == "routed" || c.status == "in_review" {
            if let Some(e) = &c.expert_id {
                out.entry(e.clone()).or_default().push(c.id.clone());
            }
        }
    }
    out
}

/// Capacity and assignment invariants on one snapshot of the database.
fn snapshot_violations(cases: &[CaseRow], experts: &[ExpertRow]) -> Vec<String> {
    let mut out = Vec::new();
    let max: HashMap<&str, i32> = experts.iter().map(|e| (e.id.as_str(), e.max_concurrent)).collect();
    for (e, list) in held(cases) {
        let m = max.get(e.as_str()).copied().unwrap_or(0);
        if list.len() as i32 > m {
            out.push(format!(
                "expert {e} holds {} open cases, above its max_concurrent {m}: {list:?}",
                list.len()
            ));
        }
    }
    for c in cases {
        let open_assigned = c.status == "routed" || c.status == "in_review";
        if open_assigned && c.expert_id.is_none() {
            out.push(format!("case {} is {} with no expert", c.id, c.status));
        }
        if c.status == "pending" && c.expert_id.is_some() {
            out.push(format!("case {} is pending but names expert {:?}", c.id, c.expert_id));
        }
    }
    out
}

/// Samples the database while the run goes on; keeps the first report of each violation.
fn monitor(url: String, shared: Arc<Shared>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut db = Db::open(&url);
        let mut seen = HashSet::new();
        while !done.load(Ordering::SeqCst) {
            if let (Ok(experts), Ok(cases)) = (db.experts(), db.cases()) {
                shared.capacity_samples.fetch_add(1, Ordering::SeqCst);
                for v in snapshot_violations(&cases, &experts) {
                    if seen.insert(v.clone()) {
                        shared.violation(format!("during the run: {v}"));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

// ---- the actors of the test ---------------------------------------------------

#[derive(Clone, Debug)]
struct ExpertInfo {
    id: String,
    token: String,
    name: String,
    max: u32,
}

/// A tenant's client: creates (with or without a key, with or without a
/// callback) and now and then cancels one of its cases.
async fn tenant_client(sh: Arc<Shared>, n: u64, seed: u64, key: String, callback_url: String) {
    let mut rng = StdRng::seed_from_u64(seed ^ (0x1000 + n));
    let who = format!("client{n}");
    let mut mine: Vec<String> = Vec::new();
    while !sh.stopped() {
        if mine.is_empty() || rng.gen_bool(0.8) {
            let id = sh.next_id();
            let query = format!("crash {who} op{id}");
            let callback = rng.gen_bool(0.5);
            let idem = rng.gen_bool(0.5).then(|| format!("idem-{seed}-{id}"));
            let mut body = json!({
                "domain": DOMAINS[rng.gen_range(0..DOMAINS.len())],
                "query": query,
                "priority": "standard",
                "metadata": {"op": id},
            });
            if callback {
                body["callback_url"] = json!(callback_url);
            }
            let mut headers = vec![("X-API-Key", key.as_str())];
            if let Some(k) = &idem {
                headers.push(("Idempotency-Key", k.as_str()));
            }
            let (outcome, attempts, replayed) = create(&sh, &body, &headers, idem.is_some()).await;
            if attempts == 1 && replayed {
                sh.violation(format!("op {id}: a first submission was answered as a replay: {body}"));
            }
            let case = match &outcome {
                Outcome::Acked(b) => b["id"].as_str().map(str::to_string),
                _ => None,
            };
            if let (Some(c), Some(_)) = (&case, &idem) {
                // A duplicate submission of an acknowledged create replays the same case.
                if rng.gen_bool(0.15) {
                    let (again, _, replayed) = create(&sh, &body, &headers, true).await;
                    if let Outcome::Acked(b) = &again {
                        sh.replays_checked.fetch_add(1, Ordering::SeqCst);
                        if !replayed {
                            sh.violation(format!(
                                "op {id}: a duplicate submission was not marked replayed: {b}"
                            ));
                        }
                        if b["id"].as_str() != Some(c.as_str()) {
                            sh.violation(format!(
                                "op {id}: the same Idempotency-Key and body gave case {c}, then {b}"
                            ));
                        }
                    }
                }
            }
            if let Some(c) = &case {
                mine.push(c.clone());
            }
            sh.record(Op {
                id,
                who: who.clone(),
                kind: Kind::Create,
                case,
                expert: None,
                query: Some(query),
                idem,
                callback,
                attempts,
                outcome,
            });
        } else {
            let case = mine[rng.gen_range(0..mine.len())].clone();
            let id = sh.next_id();
            let reply = sh
                .call(Method::POST, &format!("/escalations/{case}/cancel"), None, &[("X-API-Key", &key)])
                .await;
            sh.record(Op {
                id,
                who: who.clone(),
                kind: Kind::Cancel,
                case: Some(case),
                expert: None,
                query: None,
                idem: None,
                callback: false,
                attempts: 1,
                outcome: reply.outcome,
            });
        }
        sleep(Duration::from_millis(rng.gen_range(5..30))).await;
    }
}

/// `POST /escalations`; with a key, retried until it has a definite answer
/// (after the stop, for at most `SETTLE`). Returns the outcome and the attempts.
async fn create(sh: &Shared, body: &Value, headers: &[(&str, &str)], retry: bool) -> (Outcome, u32, bool) {
    let mut attempts = 0;
    let mut stop_seen: Option<Instant> = None;
    loop {
        attempts += 1;
        let reply = sh.call(Method::POST, "/escalations", Some(body), headers).await;
        let again = match &reply.outcome {
            Outcome::Unknown(_) => true,
            // The first attempt may still be running on the server when the retry comes.
            Outcome::Refused(409, b) => b["detail"].as_str().is_some_and(|d| d.contains("another request")),
            _ => false,
        };
        if !retry || !again {
            return (reply.outcome, attempts, reply.replayed);
        }
        if sh.stopped() {
            let since = *stop_seen.get_or_insert_with(Instant::now);
            if since.elapsed() > SETTLE {
                return (reply.outcome, attempts, reply.replayed);
            }
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// The cases of an expert in `status`, from the portal; None when unknown.
async fn portal_list(sh: &Shared, e: &ExpertInfo, status: &str) -> Option<Vec<Value>> {
    let reply = sh
        .call(
            Method::GET,
            &format!("/experts/me/escalations?status={status}"),
            None,
            &[("X-Expert-Token", &e.token)],
        )
        .await;
    match reply.outcome {
        Outcome::Acked(Value::Array(list)) => Some(list),
        Outcome::Acked(other) => {
            sh.violation(format!("{}: the portal list is not an array: {other}", e.name));
            None
        }
        Outcome::Refused(s, b) => {
            sh.violation(format!("{}: GET /experts/me/escalations?status={status} refused {s}: {b}", e.name));
            None
        }
        Outcome::Unknown(_) => None,
    }
}

/// One portal operation on `case`; logged.
async fn portal_op(sh: &Shared, e: &ExpertInfo, kind: Kind, case: &str) {
    let id = sh.next_id();
    let token = [("X-Expert-Token", e.token.as_str())];
    let (action, body) = match kind {
        Kind::Accept => ("accept", None),
        Kind::Resolve => (
            "resolve",
            Some(json!({"answer": {"op": id, "by": e.name}, "confidence": 0.9, "reasoning": "crash test"})),
        ),
        Kind::Decline => ("decline", Some(json!({"reason": "out_of_scope", "notes": format!("op {id}")}))),
        _ => unreachable!("not a portal operation"),
    };
    let reply = sh
        .call(Method::POST, &format!("/experts/me/escalations/{case}/{action}"), body.as_ref(), &token)
        .await;
    sh.record(Op {
        id,
        who: e.name.clone(),
        kind,
        case: Some(case.to_string()),
        expert: Some(e.id.clone()),
        query: None,
        idem: None,
        callback: false,
        attempts: 1,
        outcome: reply.outcome,
    });
}

/// What an expert does with its cases.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// During the run: accept, resolve or decline at random, or leave a case be.
    Work,
    /// The end, first phase: accept every routed case, nothing else.
    AcceptAll,
    /// The end, second phase: resolve every case routed to them or in review.
    ResolveAll,
}

/// An expert at work: polls its queue, checks what it sees, and acts on it as `mode` says.
async fn expert_pass(sh: &Shared, e: &ExpertInfo, rng: &mut StdRng, mode: Mode) {
    let Some(routed) = portal_list(sh, e, "routed").await else { return };
    let Some(in_review) = portal_list(sh, e, "in_review").await else { return };
    // Only this expert moves a case out of in_review, so the two lists never count one case twice.
    if routed.len() + in_review.len() > e.max as usize {
        sh.violation(format!(
            "{} ({}) sees {} routed + {} in review, above max_concurrent {}",
            e.name,
            e.id,
            routed.len(),
            in_review.len(),
            e.max
        ));
    }
    for c in routed.iter().chain(&in_review) {
        if c["expert_id"] != e.id.as_str() {
            sh.violation(format!("{} ({}) is shown a case of another expert: {c}", e.name, e.id));
        }
    }
    if mode == Mode::ResolveAll {
        for c in routed.iter().chain(&in_review) {
            portal_op(sh, e, Kind::Resolve, c["id"].as_str().unwrap_or_default()).await;
        }
        return;
    }
    for c in &routed {
        let id = c["id"].as_str().unwrap_or_default();
        let r: f64 = rng.gen();
        if mode == Mode::AcceptAll || r < 0.75 {
            portal_op(sh, e, Kind::Accept, id).await;
        } else if r < 0.85 {
            portal_op(sh, e, Kind::Decline, id).await;
        }
    }
    if mode == Mode::AcceptAll {
        return;
    }
    for c in &in_review {
        let id = c["id"].as_str().unwrap_or_default();
        let r: f64 = rng.gen();
        if r < 0.7 {
            portal_op(sh, e, Kind::Resolve, id).await;
        } else if r < 0.8 {
            portal_op(sh, e, Kind::Decline, id).await;
        }
    }
}

async fn expert_worker(sh: Arc<Shared>, e: ExpertInfo, seed: u64, n: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ (0x2000 + n));
    while !sh.stopped() {
        expert_pass(&sh, &e, &mut rng, Mode::Work).await;
        sleep(Duration::from_millis(rng.gen_range(10..30))).await;
    }
}

/// The receiver answers 503 for short spells now and then, so that deliveries
/// are waiting for a retry when the server is killed.
async fn flapping_receiver(sh: Arc<Shared>, rx: Arc<Receiver>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x4000);
    while !sh.stopped() {
        sleep(Duration::from_millis(rng.gen_range(200..800))).await;
        rx.set(Behaviour::Always(503));
        sleep(Duration::from_millis(rng.gen_range(100..400))).await;
        rx.set(Behaviour::Ok);
    }
}

// ---- set-up -----------------------------------------------------------------

/// Signs `email` in by one-time code; the `Authorization` value.
async fn sign_in(api: &esc::Api, outbox: &Path, email: &str) -> String {
    let (status, body) = api.post("/api/auth/otp/request", json!({"email": email}), &[]).await;
    assert_eq!(status, StatusCode::OK, "otp request for {email}: {body}");
    let code = common::last_code_in(outbox, email);
    let (status, body) = api.post("/api/auth/otp/verify", json!({"email": email, "code": code}), &[]).await;
    assert_eq!(status, StatusCode::OK, "otp verify for {email}: {body}");
    format!("Bearer {}", body["token"].as_str().expect("token"))
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

// ---- the test ---------------------------------------------------------------

#[actix_web::test]
async fn acknowledged_operations_survive_repeated_sigkill() {
    let secs: f64 = setting("SWITCHBOARD_CRASH_SECS", 6.0);
    let kills: usize = setting("SWITCHBOARD_CRASH_KILLS", 3);
    let seed: u64 = setting("SWITCHBOARD_CRASH_SEED", rand::random::<u32>() as u64);
    let run = Duration::from_secs_f64(secs);
    let started = Instant::now();

    let rx = Arc::new(Receiver::start(Behaviour::Ok));
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    let backend = if db.is_postgres() { "postgres" } else { "sqlite" };
    println!(
        "crash consistency on {backend}: seed {seed} (SWITCHBOARD_CRASH_SEED={seed} repeats it), \
         {secs} s, {kills} kills"
    );
    let outbox = dir.path().join("outbox");
    let mail = format!("file:{}", outbox.display());
    let env = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_MAIL", mail.as_str()),
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "250ms,250ms,500ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s"),
        ("SWITCHBOARD_SLA_URGENT", "1h"),
        ("SWITCHBOARD_SLA_STANDARD", "1h"),
        ("SWITCHBOARD_SLA_BATCH", "1h"),
        // Routed cases left alone move on to the next expert, across restarts too.
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "2s"),
    ];

    // ---- set-up: a tenant on a plan without limits, a /v1 subscription, experts ----
    let mut server = Server::start(dir.path(), &env);
    let api = server.ready().await;
    let owner = esc::email_for("crash-owner", "example.com");
    let (status, reg) = api.post("/auth/register", json!({"name": "Crash", "email": owner}), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    let key = reg["api_key"].as_str().unwrap().to_string();
    let tenant = reg["tenant_id"].as_str().unwrap().to_string();
    let callback_secret = reg["webhook_secret"].as_str().expect("webhook_secret").to_string();
    let admin = sign_in(&api, &outbox, ADMIN).await;
    let (status, body) = api
        .patch(&format!("/api/tenants/{tenant}"), json!({"plan": "enterprise"}), &[("Authorization", &admin)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let owner_auth = sign_in(&api, &outbox, &owner).await;
    let v1_url = rx.url("/v1");
    let callback_url = rx.url("/callback");
    let (status, hook) = api
        .post(
            "/v1/webhooks",
            json!({"url": v1_url, "events": ["escalation.created", "escalation.resolved"]}),
            &[("Authorization", &owner_auth)],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let v1_secret = hook["data"]["secret"].as_str().expect("the subscription's secret").to_string();
    let mut experts = Vec::new();
    for (i, (domains, max)) in EXPERTS.iter().enumerate() {
        let e = api.expert(&key, &format!("Expert {i}"), domains, *max).await;
        experts.push(ExpertInfo { id: e.id, token: e.token, name: format!("expert{i}"), max: *max });
    }

    // ---- the run: clients and experts at work, the server killed now and then ----
    let sh = Arc::new(Shared {
        base: RwLock::new(api.base.clone()),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        stop: AtomicBool::new(false),
        next: AtomicU64::new(1),
        ops: Mutex::new(Vec::new()),
        violations: Mutex::new(Vec::new()),
        five_xx: Mutex::new(BTreeMap::new()),
        stale_401: AtomicU64::new(0),
        replays_checked: AtomicU64::new(0),
        capacity_samples: AtomicU64::new(0),
    });
    let monitor_done = Arc::new(AtomicBool::new(false));
    let watcher = monitor(db.url.clone(), sh.clone(), monitor_done.clone());
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        tasks.push(actix_web::rt::spawn(tenant_client(
            sh.clone(),
            n,
            seed,
            key.clone(),
            callback_url.clone(),
        )));
    }
    for (n, e) in experts.iter().enumerate() {
        tasks.push(actix_web::rt::spawn(expert_worker(sh.clone(), e.clone(), seed, n as u64)));
    }
    tasks.push(actix_web::rt::spawn(flapping_receiver(sh.clone(), rx.clone(), seed)));

    let mut rng = StdRng::seed_from_u64(seed);
    let begin = Instant::now();
    let mut at: Vec<Duration> = (0..kills).map(|_| run.mul_f64(rng.gen_range(0.1..0.9))).collect();
    at.sort();
    let mut crashes = 0;
    let mut early = 0;
    let mut downtime = Duration::ZERO;
    for when in at {
        if let Some(wait) = when.checked_sub(begin.elapsed()) {
            sleep(wait).await;
        }
        server.kill();
        crashes += 1;
        let down = Instant::now();
        sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        server = Server::start(dir.path(), &env);
        if rng.gen_bool(0.3) {
            // Killed again while it starts: migrating, rebuilding the actors, or just ready.
            sleep(Duration::from_millis(rng.gen_range(20..400))).await;
            server.kill();
            crashes += 1;
            early += 1;
            server = Server::start(dir.path(), &env);
        }
        *sh.base.write().unwrap() = format!("http://127.0.0.1:{}", server.port);
        let api = esc::Api::at_port(server.port);
        server.wait_ready(&api, Duration::from_secs(30)).await;
        downtime += down.elapsed();
    }
    if let Some(wait) = run.checked_sub(begin.elapsed()) {
        sleep(wait).await;
    }
    sh.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("a client task panicked");
    }
    let run_took = begin.elapsed();

    // ---- quiescence, first phase: every routed case accepted, nothing moves ----
    let api = esc::Api::at_port(server.port);
    let mut db_conn = Db::open(&db.url);
    let mut rngs: Vec<StdRng> =
        (0..experts.len() as u64).map(|n| StdRng::seed_from_u64(seed ^ (0x3000 + n))).collect();
    let settle_start = Instant::now();
    settle(&sh, &experts, &mut rngs, &mut db_conn, Mode::AcceptAll, seed, dir.path()).await;
    let mut v: Vec<String> = Vec::new();
    let frozen = all_cases(&api, &key).await;
    let case_rows = db_conn.cases().expect("read the cases");
    let expert_rows = db_conn.experts().expect("read the experts");
    v.extend(snapshot_violations(&case_rows, &expert_rows).into_iter().map(|s| format!("at rest: {s}")));
    let held_at_rest = check_portals(&api, &experts, &frozen, &mut v).await;

    // ---- second phase: every case resolved that can be; the queues drain ----
    settle(&sh, &experts, &mut rngs, &mut db_conn, Mode::ResolveAll, seed, dir.path()).await;
    let deliveries_start = Instant::now();
    let delivery_rows = loop {
        let rows = db_conn.deliveries().expect("read the deliveries");
        let open: Vec<&DeliveryRow> = rows.iter().filter(|d| d.status != "delivered").collect();
        if open.is_empty() {
            break rows;
        }
        if deliveries_start.elapsed() > SETTLE {
            panic!(
                "seed {seed}: {} deliveries not delivered within {SETTLE:?}, e.g. {:?}\nserver log:\n{}",
                open.len(),
                &open[..open.len().min(5)],
                log_tail(dir.path())
            );
        }
        sleep(Duration::from_millis(50)).await;
    };
    let settle_took = settle_start.elapsed();
    monitor_done.store(true, Ordering::SeqCst);
    watcher.join().expect("the monitor panicked");

    // ---- the checks ----
    let ops = sh.ops.lock().unwrap().clone();
    v.extend(sh.violations.lock().unwrap().iter().cloned());
    let cases = all_cases(&api, &key).await;
    let case_rows = db_conn.cases().expect("read the cases");
    let expert_rows = db_conn.experts().expect("read the experts");
    v.extend(snapshot_violations(&case_rows, &expert_rows).into_iter().map(|s| format!("at the end: {s}")));
    check_creates(&ops, &cases, &mut v);
    check_lifecycle(&ops, &cases, &case_rows, &mut v);
    check_portals(&api, &experts, &cases, &mut v).await;
    check_resolution_counts(&api, &key, &experts, &cases, &mut v).await;
    let events = db_conn.event_counts().expect("count the events");
    check_events(&cases, &events, &mut v);
    let requests = rx.requests();
    let figures =
        check_deliveries(&api, &key, &cases, &delivery_rows, &requests, &v1_url, &callback_url, &mut v).await;

    // Every request that reached the receiver verifies with its secret.
    let (callbacks, v1): (Vec<Captured>, Vec<Captured>) =
        requests.iter().cloned().partition(|r| r.path == "/callback");
    if !callbacks.is_empty() {
        receiver::assert_signed(dir.path(), &callback_secret, &callbacks).await;
    }
    if !v1.is_empty() {
        receiver::assert_signed(dir.path(), &v1_secret, &v1).await;
    }

    // ---- the figures ----
    let mut by_kind: BTreeMap<(Kind, &str), usize> = BTreeMap::new();
    for op in &ops {
        *by_kind.entry((op.kind, op.outcome.label())).or_default() += 1;
    }
    let retried = ops.iter().filter(|o| o.attempts > 1).count();
    println!("crash consistency on {backend}, seed {seed}:");
    println!(
        "  crashes survived: {crashes} (SIGKILL; {early} of them during a restart; {:.2} s down in all), run {:.1} s, settle {:.1} s, whole test {:.1} s",
        downtime.as_secs_f64(),
        run_took.as_secs_f64(),
        settle_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("  operations: {} in all", ops.len());
    for ((kind, outcome), n) in &by_kind {
        println!("    {kind:?} {outcome}: {n}");
    }
    println!(
        "  creates retried with their Idempotency-Key: {retried}; duplicate submissions replayed: {}",
        sh.replays_checked.load(Ordering::SeqCst)
    );
    println!(
        "  5xx seen: {:?}; 401 from a stale port: {}",
        sh.five_xx.lock().unwrap(),
        sh.stale_401.load(Ordering::SeqCst)
    );
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for c in cases.values() {
        *statuses.entry(c["status"].as_str().unwrap_or("?")).or_default() += 1;
    }
    println!(
        "  cases checked: {} {statuses:?}; at rest between the phases, {held_at_rest} held by experts",
        cases.len()
    );
    println!("  database snapshots checked during the run: {}", sh.capacity_samples.load(Ordering::SeqCst));
    println!(
        "  deliveries checked: {} ({} requests received, {} of them refused by the flapping receiver, all \
         signatures verified), re-delivered after a 2xx: {} {:?}",
        figures.deliveries,
        requests.len(),
        requests.iter().filter(|r| r.answered != Some(200)).count(),
        figures.redelivered.len(),
        figures.redelivered
    );

    if !v.is_empty() {
        let shown: Vec<&String> = v.iter().take(40).collect();
        panic!(
            "seed {seed} ({backend}): {} invariant violation(s) (SWITCHBOARD_CRASH_SEED={seed} repeats the \
             schedule):\n- {}\nserver log:\n{}",
            v.len(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n- "),
            log_tail(dir.path())
        );
    }
    drop(server);
}

/// Lets the experts act as `mode` says until routing has settled: no case
/// left routed (nor, for `ResolveAll`, in review), and no pending case that
/// an expert with room could take. Panics if that takes longer than `SETTLE`.
async fn settle(
    sh: &Shared,
    experts: &[ExpertInfo],
    rngs: &mut [StdRng],
    db: &mut Db,
    mode: Mode,
    seed: u64,
    dir: &Path,
) {
    let start = Instant::now();
    loop {
        join_all(experts.iter().zip(rngs.iter_mut()).map(|(e, rng)| expert_pass(sh, e, rng, mode))).await;
        let cases = db.cases().expect("read the cases");
        let rows = db.experts().expect("read the experts");
        let why = match cases.iter().find(|c| mode == Mode::ResolveAll && c.status == "in_review") {
            Some(c) => Some(format!("case {} is still in review with {:?}", c.id, c.expert_id)),
            None => unsettled(&cases, &rows),
        };
        let Some(why) = why else { return };
        if start.elapsed() > SETTLE {
            panic!(
                "seed {seed}: routing never settled ({mode:?}) within {SETTLE:?}: {why}\nserver log:\n{}",
                log_tail(dir)
            );
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// Why routing has not settled yet, if it has not: a case still routed (it
/// waits for its accept), or a pending case that an available expert of its
/// domain with room, who never gave it back, could take.
fn unsettled(cases: &[CaseRow], experts: &[ExpertRow]) -> Option<String> {
    if let Some(c) = cases.iter().find(|c| c.status == "routed") {
        return Some(format!("case {} is still routed to {:?}", c.id, c.expert_id));
    }
    let held = held(cases);
    for c in cases.iter().filter(|c| c.status == "pending") {
        let excluded: Vec<String> = serde_json::from_str(&c.excluded_experts).unwrap_or_default();
        for e in experts {
            let domains: Vec<String> = serde_json::from_str(&e.domains).unwrap_or_default();
            let open = held.get(&e.id).map_or(0, Vec::len) as i32;
            if e.status == "available"
                && domains.contains(&c.domain)
                && open < e.max_concurrent
                && !excluded.contains(&e.id)
            {
                return Some(format!(
                    "case {} ({}) waits while expert {} has room ({open} of {}) and never gave it back \
                     (excluded: {excluded:?})",
                    c.id, c.domain, e.id, e.max_concurrent
                ));
            }
        }
    }
    None
}

/// Every case of the tenant, in full detail, by id.
async fn all_cases(api: &esc::Api, key: &str) -> BTreeMap<String, Value> {
    let mut ids = Vec::new();
    loop {
        let (status, page) =
            api.get(&format!("/escalations?limit=200&offset={}", ids.len()), &[("X-API-Key", key)]).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let page = page.as_array().expect("a bare array").clone();
        ids.extend(page.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        if page.len() < 200 {
            break;
        }
    }
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(16) {
        for d in join_all(chunk.iter().map(|id| api.detail(key, id))).await {
            out.insert(d["id"].as_str().unwrap().to_string(), d);
        }
    }
    assert_eq!(out.len(), ids.len(), "the list named a case twice");
    out
}

/// 1 and 5: every acknowledged create exists, exactly once; no case comes from nowhere.
fn check_creates(ops: &[Op], cases: &BTreeMap<String, Value>, v: &mut Vec<String>) {
    let mut by_query: HashMap<&str, Vec<&Value>> = HashMap::new();
    for c in cases.values() {
        by_query.entry(c["query"].as_str().unwrap_or_default()).or_default().push(c);
    }
    let mut known = HashSet::new();
    for op in ops.iter().filter(|o| o.kind == Kind::Create) {
        let q = op.query.as_deref().unwrap();
        known.insert(q);
        let found = by_query.get(q).cloned().unwrap_or_default();
        if found.len() > 1 {
            let ids: Vec<&Value> = found.iter().map(|c| &c["id"]).collect();
            v.push(format!("{}: {} cases for one create: {ids:?}", op.describe(), found.len()));
        }
        match &op.outcome {
            Outcome::Acked(body) => {
                if found.is_empty() {
                    v.push(format!("{}: acknowledged as {} but not stored", op.describe(), body["id"]));
                } else if found.iter().all(|c| c["id"] != body["id"]) {
                    v.push(format!(
                        "{}: acknowledged as {} but stored as {}",
                        op.describe(),
                        body["id"],
                        found[0]["id"]
                    ));
                }
                if let Some(c) = found.first() {
                    if op.callback == c["callback_url"].is_null() {
                        v.push(format!("{}: callback_url not as sent: {c}", op.describe()));
                    }
                }
            }
            Outcome::Refused(..) => {
                if op.idem.is_some() {
                    v.push(format!("{}: a retry with the same key and body was refused", op.describe()));
                }
                if !found.is_empty() {
                    v.push(format!("{}: refused, yet stored as {}", op.describe(), found[0]["id"]));
                }
            }
            Outcome::Unknown(_) => {
                if op.idem.is_some() {
                    v.push(format!("{}: never got an answer, even after the last restart", op.describe()));
                }
            }
        }
    }
    for (q, list) in &by_query {
        if !known.contains(q) {
            v.push(format!("case {} was never created by any client (query {q:?})", list[0]["id"]));
        }
    }
}

/// 1, 3 and 5: each case's final state agrees with the operations on it.
fn check_lifecycle(ops: &[Op], cases: &BTreeMap<String, Value>, rows: &[CaseRow], v: &mut Vec<String>) {
    let excluded: HashMap<&str, Vec<String>> = rows
        .iter()
        .map(|r| (r.id.as_str(), serde_json::from_str(&r.excluded_experts).unwrap_or_default()))
        .collect();
    let mut on: HashMap<&str, Vec<&Op>> = HashMap::new();
    for op in ops.iter().filter(|o| o.kind != Kind::Create) {
        on.entry(op.case.as_deref().unwrap()).or_default().push(op);
    }
    for op in ops.iter().filter(|o| o.kind != Kind::Create && o.outcome.acked()) {
        let id = op.case.as_deref().unwrap();
        if !cases.contains_key(id) {
            v.push(format!("{}: acknowledged on a case that does not exist", op.describe()));
        }
    }
    for (id, d) in cases {
        let status = d["status"].as_str().unwrap_or_default();
        let holder = d["expert_id"].as_str();
        let list = on.get(id.as_str()).cloned().unwrap_or_default();
        let mine = |kind: Kind| list.iter().filter(move |o| o.kind == kind).copied();
        let fail = |v: &mut Vec<String>, why: String| {
            let history: Vec<String> = list.iter().map(|o| o.describe()).collect();
            v.push(format!(
                "case {id} is {status} (expert {holder:?}): {why}\n    history:\n      {}",
                history.join("\n      ")
            ));
        };
        let acked_resolves: Vec<&Op> = mine(Kind::Resolve).filter(|o| o.outcome.acked()).collect();
        let acked_cancels: Vec<&Op> = mine(Kind::Cancel).filter(|o| o.outcome.acked()).collect();
        if acked_resolves.len() > 1 {
            fail(v, format!("{} resolves acknowledged", acked_resolves.len()));
        }
        if !acked_resolves.is_empty() && !acked_cancels.is_empty() {
            fail(v, "both a resolve and a cancel were acknowledged".into());
        }
        match status {
            "resolved" => {
                let r = &d["resolution"];
                let by = r["expert_id"].as_str();
                let answer_op = r["answer"]["op"].as_u64();
                if holder != by {
                    fail(v, format!("the resolution names {by:?}, the case {holder:?}"));
                }
                let origin = mine(Kind::Resolve).find(|o| Some(o.id) == answer_op);
                match origin {
                    None => fail(v, format!("its answer {} comes from no resolve on it", r["answer"])),
                    Some(o) if !o.outcome.maybe() => {
                        fail(v, format!("its answer comes from a refused resolve: {}", o.describe()))
                    }
                    Some(o) if o.expert.as_deref() != by => {
                        fail(v, format!("resolved by {by:?}, but op {} was by {:?}", o.id, o.expert))
                    }
                    Some(_) => {}
                }
                if let Some(a) = acked_resolves.first() {
                    if Some(a.id) != answer_op {
                        fail(v, format!("op {} was acknowledged, yet the answer is {}", a.id, r["answer"]));
                    }
                }
                if !acked_cancels.is_empty() {
                    fail(v, "a cancel was acknowledged".into());
                }
            }
            "cancelled" => {
                if !mine(Kind::Cancel).any(|o| o.outcome.maybe()) {
                    fail(v, "no cancel on it can have happened".into());
                }
                if !acked_resolves.is_empty() {
                    fail(v, "a resolve was acknowledged".into());
                }
            }
            "pending" | "routed" | "in_review" => {
                if !acked_resolves.is_empty() {
                    fail(v, "a resolve was acknowledged".into());
                }
                if !acked_cancels.is_empty() {
                    fail(v, "a cancel was acknowledged".into());
                }
                if status == "in_review"
                    && !mine(Kind::Accept).any(|o| o.outcome.maybe() && o.expert.as_deref() == holder)
                {
                    fail(v, "its expert never accepted it".into());
                }
            }
            other => fail(v, format!("unexpected status {other} (the SLA is an hour)")),
        }
        // An acknowledged accept: in review with that expert, or resolved by them,
        // unless they declined it afterwards.
        for a in mine(Kind::Accept).filter(|o| o.outcome.acked()) {
            let x = a.expert.as_deref();
            let declined_after =
                mine(Kind::Decline).any(|o| o.expert.as_deref() == x && o.id > a.id && o.outcome.maybe());
            if declined_after {
                continue;
            }
            let ok = match status {
                "in_review" => holder == x,
                "resolved" => d["resolution"]["expert_id"].as_str() == x,
                _ => false,
            };
            if !ok {
                fail(v, format!("op {} (accept by {x:?}) was acknowledged", a.id));
            }
        }
        // An acknowledged decline: that expert never holds it again, and it is remembered.
        for dcl in mine(Kind::Decline).filter(|o| o.outcome.acked()) {
            let x = dcl.expert.as_deref().unwrap();
            if holder == Some(x) || d["resolution"]["expert_id"].as_str() == Some(x) {
                fail(v, format!("op {} (decline by {x}) was acknowledged, yet {x} has it", dcl.id));
            }
            if !excluded.get(id.as_str()).is_some_and(|e| e.iter().any(|e| e == x)) {
                fail(v, format!("op {} (decline by {x}) was acknowledged, but {x} is not excluded", dcl.id));
            }
        }
    }
}

/// 2 and 3: each expert's portal lists exactly the open cases that name it,
/// within its capacity, and no case is in two portals. Returns how many
/// cases the portals hold.
async fn check_portals(
    api: &esc::Api,
    experts: &[ExpertInfo],
    cases: &BTreeMap<String, Value>,
    v: &mut Vec<String>,
) -> usize {
    let mut seen_in: HashMap<String, Vec<String>> = HashMap::new();
    for e in experts {
        let mut open = 0;
        for status in ["routed", "in_review"] {
            let (s, list) = api
                .get(&format!("/experts/me/escalations?status={status}"), &[("X-Expert-Token", &e.token)])
                .await;
            assert_eq!(s, StatusCode::OK, "{list}");
            for c in list.as_array().unwrap() {
                open += 1;
                let id = c["id"].as_str().unwrap().to_string();
                seen_in.entry(id.clone()).or_default().push(e.id.clone());
                if c["expert_id"] != e.id.as_str() {
                    v.push(format!("{}'s portal shows case {id} of expert {}", e.name, c["expert_id"]));
                }
            }
        }
        if open > e.max {
            v.push(format!("{} ({}) holds {open} open cases, above max_concurrent {}", e.name, e.id, e.max));
        }
    }
    let held = seen_in.len();
    for (id, c) in cases {
        let status = c["status"].as_str().unwrap_or_default();
        let holders = seen_in.remove(id).unwrap_or_default();
        if status == "routed" || status == "in_review" {
            if holders.len() != 1 || c["expert_id"] != holders[0].as_str() {
                v.push(format!(
                    "case {id} ({status}, expert {}) is in the queues of {holders:?}",
                    c["expert_id"]
                ));
            }
        } else if !holders.is_empty() {
            v.push(format!("case {id} is {status}, yet in the open queues of {holders:?}"));
        }
    }
    held
}

/// 5: each expert's resolution count is the number of cases it resolved.
async fn check_resolution_counts(
    api: &esc::Api,
    key: &str,
    experts: &[ExpertInfo],
    cases: &BTreeMap<String, Value>,
    v: &mut Vec<String>,
) {
    for e in experts {
        let profile = api.expert_profile(key, &e.id).await;
        let resolved = cases
            .values()
            .filter(|c| c["status"] == "resolved" && c["resolution"]["expert_id"] == e.id.as_str())
            .count() as u64;
        if profile["resolution_count"].as_u64() != Some(resolved) {
            v.push(format!(
                "{} ({}) has resolution_count {} but resolved {resolved} cases",
                e.name, e.id, profile["resolution_count"]
            ));
        }
    }
}

/// 5: one resolution per case in the event history, and one of each closing event.
fn check_events(cases: &BTreeMap<String, Value>, events: &[EventCount], v: &mut Vec<String>) {
    let mut resolved_events = HashMap::new();
    for e in events {
        let Some(id) = e.stream.strip_prefix("escalation:") else { continue };
        if matches!(e.kind.as_str(), "escalation.resolved" | "escalation.cancelled" | "escalation.expired") {
            if e.n > 1 {
                v.push(format!("case {id} has {} {} events", e.n, e.kind));
            }
            if e.kind == "escalation.resolved" {
                resolved_events.insert(id.to_string(), e.n);
            }
        }
    }
    for (id, c) in cases {
        let n = resolved_events.get(id).copied().unwrap_or(0);
        let want = i64::from(c["status"] == "resolved");
        if n != want {
            v.push(format!("case {id} is {} with {n} escalation.resolved events", c["status"]));
        }
    }
}

struct DeliveryFigures {
    deliveries: usize,
    /// webhook-ids answered 2xx more than once, with how many times.
    redelivered: BTreeMap<String, usize>,
}

/// 4 and 5: each case has exactly the deliveries it owes, each delivered and
/// received, and no (case, event, target) has two webhook-ids.
#[allow(clippy::too_many_arguments)]
async fn check_deliveries(
    api: &esc::Api,
    key: &str,
    cases: &BTreeMap<String, Value>,
    rows: &[DeliveryRow],
    requests: &[Captured],
    v1_url: &str,
    callback_url: &str,
    v: &mut Vec<String>,
) -> DeliveryFigures {
    let mut got: HashMap<&str, Vec<&Captured>> = HashMap::new();
    for r in requests {
        got.entry(r.webhook_id()).or_default().push(r);
    }
    let ids: Vec<&String> = cases.keys().collect();
    let mut listed: Vec<(String, Vec<Value>)> = Vec::new();
    for chunk in ids.chunks(16) {
        let answers = join_all(chunk.iter().map(|id| async move {
            (id, api.get(&format!("/webhooks/deliveries/{id}"), &[("X-API-Key", key)]).await)
        }))
        .await;
        for (id, (status, body)) in answers {
            assert_eq!(status, StatusCode::OK, "GET /webhooks/deliveries/{id}: {body}");
            listed.push((id.to_string(), body["deliveries"].as_array().cloned().unwrap_or_default()));
        }
    }
    let mut known_ids = HashSet::new();
    let mut count = 0;
    let mut redelivered = BTreeMap::new();
    for (id, list) in &listed {
        let c = &cases[id];
        let resolved = c["status"] == "resolved";
        let mut want: Vec<(&str, &str)> = vec![("escalation.created", v1_url)];
        if resolved {
            want.push(("escalation.resolved", v1_url));
            if !c["callback_url"].is_null() {
                want.push(("escalation.resolved", callback_url));
            }
        }
        want.sort();
        let mut have: Vec<(&str, &str)> = list
            .iter()
            .map(|d| (d["event"].as_str().unwrap_or("?"), d["url"].as_str().unwrap_or("?")))
            .collect();
        have.sort();
        if have != want {
            v.push(format!("case {id} ({}): deliveries {have:?}, owed {want:?}", c["status"]));
        }
        for d in list {
            count += 1;
            let wid = d["id"].as_str().unwrap_or_default();
            known_ids.insert(wid.to_string());
            if d["status"] != "delivered" {
                v.push(format!("case {id}: delivery {d} is not delivered"));
            }
            let seen = got.get(wid).cloned().unwrap_or_default();
            let ok = seen.iter().filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s))).count();
            if ok == 0 {
                v.push(format!(
                    "case {id}: delivery {wid} ({}) never reached the receiver with a 2xx",
                    d["event"]
                ));
            }
            if ok > 1 {
                redelivered.insert(wid.to_string(), ok);
            }
            for r in &seen {
                if r.escalation_id().as_deref() != Some(id.as_str())
                    || r.event().as_deref() != d["event"].as_str()
                {
                    v.push(format!("case {id}: delivery {wid} carried another payload: {}", r.describe()));
                }
            }
        }
    }
    // No (case, event, target) got two webhook-ids; nothing arrived that no delivery owes.
    let mut per: HashMap<(String, String, String), BTreeSet<String>> = HashMap::new();
    for r in requests {
        if !known_ids.contains(r.webhook_id()) {
            v.push(format!("the receiver got a request of no listed delivery: {}", r.describe()));
        }
        per.entry((r.escalation_id().unwrap_or_default(), r.event().unwrap_or_default(), r.path.clone()))
            .or_default()
            .insert(r.webhook_id().to_string());
    }
    for ((case, event, path), wids) in per {
        if wids.len() > 1 {
            v.push(format!("case {case}: {event} to {path} came with {} webhook-ids: {wids:?}", wids.len()));
        }
    }
    let db_ids: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for r in rows {
        if r.status != "delivered" {
            v.push(format!(
                "delivery {} ({:?}, {}) is {} after {} attempts: {:?}",
                r.id, r.escalation_id, r.event, r.status, r.attempts, r.last_error
            ));
        }
    }
    for wid in &known_ids {
        if !db_ids.contains(wid.as_str()) {
            v.push(format!("delivery {wid} is listed by the API but not in the database"));
        }
    }
    DeliveryFigures { deliveries: count, redelivered }
}
