//! Webhook deliveries to local receivers: how many a second reach them, and
//! how long after the event each one arrives, at 1, 10 and 100 endpoints.
//!
//! The receivers are real listeners of this process (one actix-web server
//! with one `127.0.0.1:0` listener per endpoint, on its own thread), so each
//! endpoint is a distinct URL, and the server keys its per-endpoint delivery
//! actors (at most 8 attempts in flight each) by URL. They answer 200 at once
//! and note when each POST arrived, checking that `webhook-id` is there and
//! counting the ones seen twice; the signature is not verified.
//!
//! Each client worker has an expert of its own, seeded through POST /experts
//! in a fresh domain of its own, so its cases reach that expert and no other;
//! worker `w` and its expert belong to tenant `w mod --tenants` (seeded with
//! `--token`, see [`super::tenants`]; one tenant with `--api-key`). With
//! `--rate`, the worker is the open-loop slot the operation holds, so it is
//! still the only one using its expert at a time.
//! One operation: create a case with a `callback_url` (the step's endpoints in
//! turn), poll it until routed, accept and resolve it as its expert, then wait
//! for the receiver to get the `escalation.resolved` POST naming the case.
//! The event is the moment the resolve answered 200; the receipt is when the
//! receiver got the POST. Closed loop by default, so the deliveries in flight
//! are bounded by --concurrency and the figures describe a steady state.
//!
//! Rows per step: `webhooks@<n>`, cases delivered per second (a ratio to the
//! ceiling like every throughput; its latency is create→receipt), and
//! `webhooks@<n> event→receipt`, whose p50 and p99 are also given as ratios
//! to the ceiling's p99 latency (see [`add_ceiling_latency_ratios`]). The
//! server may send the delivery before its answer to the resolve reaches the
//! expert; such receipts count as 0 ms (and are counted), and
//! `webhooks@<n> resolve sent→receipt`, timed from sending the resolve, shows
//! the whole path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use clap::Args;
use reqwest::header::HeaderValue;
use reqwest::Client;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::sleep;

use super::tenants::escalation_keys;
use super::{
    batch, body_excerpt, check_key, expect_status, finish, run_id, seed_experts, CaseState, Env, ExpertSeed,
    FirstFailure, OpCtx, OpError, OpResult, Scenario, CEILING, DEFAULT_TENANTS,
};
use crate::report::{error_breakdown, thousands, Figure, ScenarioReport, Tally};
use crate::runner::{self, Interrupt, RunConfig};

pub const NAME: &str = "webhooks";
/// Suffix of the latency-only row of each step.
const EVENT_TO_RECEIPT: &str = "event→receipt";
/// Suffix of the row timed from when the resolve request was sent: the
/// delivery often arrives before the resolve's answer does.
const SENT_TO_RECEIPT: &str = "resolve sent→receipt";

const DEFAULT_POLL: &str = "2ms";
const DEFAULT_DELIVERY_TIMEOUT: &str = "10s";
const MAX_ENDPOINTS: i64 = 1000;
/// A case not routed within this counts as an error.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(60);
/// Cases each seeded expert may hold: one at a time in the loop, plus the
/// cases of operations abandoned at the end of a phase until [`sweep`].
const EXPERT_MAX_CONCURRENT: u32 = 10;
/// How many times [`sweep`] looks at each expert's queue, and the pause between.
const SWEEP_ROUNDS: u32 = 3;
const SWEEP_PAUSE: Duration = Duration::from_millis(100);
/// After the last step, how long to let late deliveries arrive before the
/// receivers close (a closed receiver makes the server retry for a day).
const DRAIN_QUIET: Duration = Duration::from_millis(500);
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// What the server under test must be started with for loopback receivers.
const SERVER_ENV: &str =
    "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE=true SWITCHBOARD_OUTBOUND_ALLOW=127.0.0.0/8,::1/128";

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct WebhooksArgs {
    /// Receiver endpoints at each step, comma-separated: each a distinct
    /// local listener (127.0.0.1, a port of its own), cases spread over them
    /// in turn
    #[arg(long, value_delimiter = ',', default_value = "1,10,100",
          value_parser = clap::value_parser!(u32).range(1..=MAX_ENDPOINTS))]
    pub endpoints: Vec<u32>,
    /// How often a client polls its new case until it is routed
    #[arg(long, default_value = DEFAULT_POLL, value_parser = crate::parse_positive_duration)]
    pub poll: Duration,
    /// A resolved case whose delivery has not reached its receiver within
    /// this counts as an error ("no delivery in time")
    #[arg(long, default_value = DEFAULT_DELIVERY_TIMEOUT, value_parser = crate::parse_positive_duration)]
    pub delivery_timeout: Duration,
    /// Tenants the client workers and their experts are spread over (seeded
    /// with --token; with --api-key there is one)
    #[arg(long, default_value_t = DEFAULT_TENANTS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub tenants: u32,
}

impl Default for WebhooksArgs {
    fn default() -> Self {
        let d = |s: &str| humantime::parse_duration(s).expect("a valid default duration");
        WebhooksArgs {
            endpoints: vec![1, 10, 100],
            poll: d(DEFAULT_POLL),
            delivery_timeout: d(DEFAULT_DELIVERY_TIMEOUT),
            tenants: DEFAULT_TENANTS,
        }
    }
}

// ---- The receivers ----

/// What the receivers saw, as counters (all since they started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    receipts: u64,
    missing_id: u64,
    duplicate_ids: u64,
    /// The same (escalation, event) again under a new `webhook-id`.
    repeated_events: u64,
    /// Not JSON, or without `escalation_id`.
    malformed: u64,
    /// Events other than `escalation.resolved`.
    other_events: u64,
    /// A resolved event no operation is waiting for: its operation was
    /// abandoned at the end of a phase or gave up waiting.
    unmatched: u64,
}

impl Counts {
    fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            receipts: self.receipts - earlier.receipts,
            missing_id: self.missing_id - earlier.missing_id,
            duplicate_ids: self.duplicate_ids - earlier.duplicate_ids,
            repeated_events: self.repeated_events - earlier.repeated_events,
            malformed: self.malformed - earlier.malformed,
            other_events: self.other_events - earlier.other_events,
            unmatched: self.unmatched - earlier.unmatched,
        }
    }
}

#[derive(Default)]
struct Seen {
    ids: HashSet<Vec<u8>>,
    events: HashSet<(String, String)>,
}

/// Shared by the receivers (on their own threads) and the operations.
#[derive(Default)]
struct Inbox {
    /// Operations waiting for their case's delivery, by escalation id.
    waiting: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    seen: Mutex<Seen>,
    counts: Mutex<Counts>,
}

#[derive(Deserialize)]
struct Payload {
    escalation_id: Option<String>,
    event: Option<String>,
}

impl Inbox {
    fn counts(&self) -> Counts {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.counts.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// One POST received at `at`.
    fn receive(&self, at: Instant, webhook_id: Option<&[u8]>, body: &[u8]) {
        let payload = serde_json::from_slice::<Payload>(body).ok();
        let (new_id, new_event) = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let new_id = webhook_id.map(|id| seen.ids.insert(id.to_vec()));
            let new_event = match &payload {
                Some(Payload { escalation_id: Some(e), event: Some(ev) }) => {
                    seen.events.insert((e.clone(), ev.clone()))
                }
                _ => true,
            };
            (new_id, new_event)
        };
        self.bump(|c| {
            c.receipts += 1;
            match new_id {
                None => c.missing_id += 1,
                Some(false) => c.duplicate_ids += 1,
                Some(true) if !new_event => c.repeated_events += 1,
                Some(true) => {}
            }
        });
        let (id, event) = match payload {
            Some(Payload { escalation_id: Some(id), event }) => (id, event),
            _ => return self.bump(|c| c.malformed += 1),
        };
        if event.as_deref() != Some("escalation.resolved") {
            return self.bump(|c| c.other_events += 1);
        }
        let waiter = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        // The operation may have been dropped a moment ago: same as no waiter.
        if waiter.is_none_or(|tx| tx.send(at).is_err()) {
            self.bump(|c| c.unmatched += 1);
        }
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, inbox: web::Data<Inbox>) -> HttpResponse {
    let at = Instant::now();
    inbox.receive(at, req.headers().get("webhook-id").map(|v| v.as_bytes()), &body);
    HttpResponse::Ok().finish()
}

/// The local listeners, served by one actix-web server on its own thread.
struct Receivers {
    ports: Vec<u16>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receivers {
    async fn start(count: usize, inbox: Arc<Inbox>) -> anyhow::Result<Receivers> {
        let listeners = (0..count)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("cannot open {count} receiver listeners on 127.0.0.1: {e}"))?;
        let ports =
            listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<Vec<_>, _>>()?;
        // Enough threads that the receivers are never what deliveries wait for.
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        let (tx, rx) = oneshot::channel::<Result<actix_web::dev::ServerHandle, String>>();
        let thread = std::thread::Builder::new().name("webhook-receivers".into()).spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::from(inbox);
                let mut server = HttpServer::new(move || {
                    App::new().app_data(data.clone()).default_service(web::to(receive))
                })
                .workers(workers)
                .backlog(4096)
                .disable_signals();
                for l in listeners {
                    server = match server.listen(l) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                }
                let server = server.run();
                if tx.send(Ok(server.handle())).is_ok() {
                    let _ = server.await;
                }
            });
        })?;
        let handle = match rx.await {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => anyhow::bail!("cannot start the webhook receivers: {e}"),
            Err(_) => anyhow::bail!("the webhook receivers' thread ended before they started"),
        };
        Ok(Receivers { ports, handle, thread: Some(thread) })
    }

    /// The first `n` endpoints' URLs for one step; the path names the step,
    /// so every step has endpoint URLs (and server-side actors) of its own.
    fn urls(&self, n: usize, step: &str) -> Vec<String> {
        self.ports.iter().take(n).map(|p| format!("http://127.0.0.1:{p}/hooks/{step}")).collect()
    }

    async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Receivers {
    /// On an early return: the stop command is sent at once, the thread ends by itself.
    fn drop(&mut self) {
        if self.thread.is_some() {
            drop(self.handle.stop(false));
        }
    }
}

// ---- The cases ----

/// What every step needs.
struct Shared {
    client: Client,
    base: String,
    /// One per tenant: worker `w` (and its expert) is in tenant `w % len`.
    keys: Vec<HeaderValue>,
    /// One per client worker, as its expert's domain and token.
    domains: Vec<String>,
    tokens: Vec<HeaderValue>,
    inbox: Arc<Inbox>,
    poll: Duration,
    delivery_timeout: Duration,
}

/// A case an operation is waiting for the delivery of: registered with the
/// receivers before it can be resolved, forgotten when the operation ends
/// (or is abandoned at the end of a phase; [`sweep`] then closes the case).
struct Following<'a> {
    inbox: &'a Inbox,
    id: String,
}

impl<'a> Following<'a> {
    fn new(inbox: &'a Inbox, id: String) -> (Self, oneshot::Receiver<Instant>) {
        let (tx, rx) = oneshot::channel();
        inbox.waiting.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), tx);
        (Following { inbox, id }, rx)
    }
}

impl Drop for Following<'_> {
    fn drop(&mut self) {
        self.inbox.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// Resolves, as their experts, the cases that operations abandoned at the
/// end of a phase left routed or in review (the runner drops operations in
/// flight; some were creates whose id never came back). Their deliveries
/// reach the receivers while they still run, instead of the cases expiring
/// into deliveries to receivers that are gone. Returns how many it closed.
async fn sweep(shared: &Arc<Shared>, interrupt: &Interrupt) -> anyhow::Result<u64> {
    let closed = Arc::new(AtomicU64::new(0));
    let first = Arc::new(FirstFailure::default());
    let (sh, c, f) = (Arc::clone(shared), Arc::clone(&closed), Arc::clone(&first));
    let (tally, _) = batch("closing abandoned cases", sh.tokens.len() as u64, 16, interrupt, move |i| {
        let (sh, c, f) = (Arc::clone(&sh), Arc::clone(&c), Arc::clone(&f));
        async move {
            let start = Instant::now();
            let token = sh.tokens[i as usize].clone();
            // A case created just before the phase ended may be routed a moment later.
            for round in 0..SWEEP_ROUNDS {
                let mut found = 0;
                for status in ["in_review", "routed"] {
                    let list = format!("{}/experts/me/escalations?status={status}", sh.base);
                    let req = sh.client.get(&list).header("X-Expert-Token", token.clone()).send().await;
                    let resp = expect_status(req, 200, "GET /experts/me/escalations", &f).await?;
                    let cases: Vec<CaseState> =
                        resp.json().await.map_err(|_| OpError::Outcome("bad body"))?;
                    for case in cases.iter().filter(|c| c.status == status) {
                        found += 1;
                        let portal = format!("{}/experts/me/escalations/{}", sh.base, case.id);
                        // The abandoned operation's own accept or resolve may
                        // land meanwhile: a 409 only means the case moved on.
                        if status == "routed" {
                            let req = sh
                                .client
                                .post(format!("{portal}/accept"))
                                .header("X-Expert-Token", token.clone())
                                .send()
                                .await;
                            finish(req, &[200, 409]).await?;
                        }
                        let req = sh
                            .client
                            .post(format!("{portal}/resolve"))
                            .header("X-Expert-Token", token.clone())
                            .json(&resolution())
                            .send()
                            .await;
                        if finish(req, &[200, 409]).await? == 200 {
                            c.fetch_add(1, Relaxed);
                        }
                    }
                }
                if found == 0 && round > 0 {
                    break;
                }
                sleep(SWEEP_PAUSE).await;
            }
            Ok(start.elapsed())
        }
    })
    .await?;
    if tally.errors() > 0 {
        eprintln!(
            "{NAME}: closing abandoned cases: {} of {} experts failed ({}); first: {}",
            tally.errors(),
            tally.ops,
            error_breakdown(&tally),
            first.take().unwrap_or_default()
        );
    }
    Ok(closed.load(Relaxed))
}

fn resolution() -> serde_json::Value {
    json!({
        "answer": {"verdict": "approved", "by": "switchboard-load"},
        "confidence": 0.9,
        "reasoning": "load test resolution",
    })
}

/// One step: a number of endpoints, measured by the runner.
struct Step {
    shared: Arc<Shared>,
    urls: Vec<String>,
    next: AtomicU64,
    /// From the resolve's 200 to the receipt, measured phase only.
    latency: Mutex<Tally>,
    /// From sending the resolve to the receipt.
    sent_latency: Mutex<Tally>,
    /// Receipts that came before the resolve's answer did (counted as 0 ms).
    early: AtomicU64,
    first_error: FirstFailure,
    /// A case whose delivery did not arrive, to ask the server about.
    /// With the worker whose tenant it is in.
    first_missing: Mutex<Option<(String, usize)>>,
    counts_start: Mutex<Counts>,
}

impl Step {
    fn new(shared: &Arc<Shared>, urls: Vec<String>) -> Step {
        Step {
            shared: Arc::clone(shared),
            urls,
            next: AtomicU64::new(0),
            latency: Mutex::new(Tally::default()),
            sent_latency: Mutex::new(Tally::default()),
            early: AtomicU64::new(0),
            first_error: FirstFailure::default(),
            first_missing: Mutex::new(None),
            counts_start: Mutex::new(Counts::default()),
        }
    }

    fn latency(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.latency.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sent_latency(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.sent_latency.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates, routes, accepts, resolves one case and waits for its delivery;
    /// on success, from the resolve's 200 and from sending the resolve to the
    /// receipt.
    async fn one_case(&self, worker: usize, seq: u64) -> Result<(Duration, Duration), OpError> {
        let s = &*self.shared;
        let w = worker % s.tokens.len();
        let url = &self.urls[(self.next.fetch_add(1, Relaxed) % self.urls.len() as u64) as usize];
        let body = json!({
            "domain": s.domains[w],
            "query": format!("load test webhook case {worker}-{seq}"),
            "priority": "standard",
            "callback_url": url,
        });
        let key = s.keys[w % s.keys.len()].clone();
        let req = s.client.post(format!("{}/escalations", s.base)).header("X-API-Key", key.clone());
        let resp =
            expect_status(req.json(&body).send().await, 201, "POST /escalations", &self.first_error).await?;
        let created: CaseState = resp.json().await.map_err(|_| OpError::Outcome("bad body"))?;
        let (case, receipt) = Following::new(&s.inbox, created.id);

        let detail = format!("{}/escalations/{}", s.base, case.id);
        let deadline = Instant::now() + ROUTE_TIMEOUT;
        loop {
            let req = s.client.get(&detail).header("X-API-Key", key.clone()).send().await;
            let resp = expect_status(req, 200, "GET /escalations/{id}", &self.first_error).await?;
            let state: CaseState = resp.json().await.map_err(|_| OpError::Outcome("bad body"))?;
            match state.status.as_str() {
                "pending" if Instant::now() < deadline => sleep(s.poll).await,
                "pending" => return Err(OpError::Outcome("not routed in time")),
                "routed" => break,
                "expired" => return Err(OpError::Outcome("expired")),
                "cancelled" => return Err(OpError::Outcome("cancelled")),
                _ => return Err(OpError::Outcome("unexpected status")),
            }
        }

        let token = s.tokens[w].clone();
        let portal = format!("{}/experts/me/escalations/{}", s.base, case.id);
        let req =
            s.client.post(format!("{portal}/accept")).header("X-Expert-Token", token.clone()).send().await;
        expect_status(req, 200, "POST .../accept", &self.first_error).await?.bytes().await?;
        let sent = Instant::now();
        let req = s
            .client
            .post(format!("{portal}/resolve"))
            .header("X-Expert-Token", token)
            .json(&resolution())
            .send()
            .await;
        let event = Instant::now();
        let resp = expect_status(req, 200, "POST .../resolve", &self.first_error).await?;
        resp.bytes().await?;

        match tokio::time::timeout(s.delivery_timeout, receipt).await {
            Ok(Ok(at)) => {
                if at < event {
                    self.early.fetch_add(1, Relaxed);
                }
                Ok((at.saturating_duration_since(event), at.saturating_duration_since(sent)))
            }
            Ok(Err(_)) => Err(OpError::Outcome("receiver dropped the case")),
            Err(_) => {
                let mut first = self.first_missing.lock().unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert_with(|| (case.id.clone(), w));
                Err(OpError::Outcome("no delivery in time"))
            }
        }
    }
}

impl Scenario for Step {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn measured_phase_starts(&self) {
        *self.latency() = Tally::default();
        *self.sent_latency() = Tally::default();
        self.early.store(0, Relaxed);
        *self.counts_start.lock().unwrap_or_else(PoisonError::into_inner) = self.shared.inbox.counts();
    }

    async fn op(&self, ctx: &OpCtx<'_>) -> OpResult {
        let (latency, from_sent) = self.one_case(ctx.worker, ctx.seq).await?;
        self.latency().record(Ok(200), latency);
        self.sent_latency().record(Ok(200), from_sent);
        Ok(200)
    }
}

// ---- Pre-flight checks ----

/// Whether the server takes a loopback `callback_url` at all: without
/// [`SERVER_ENV`] it refuses one with 400 at create. The case goes to a
/// domain no expert serves and is cancelled at once (no event, no delivery).
/// Run before the ceiling so a misconfigured server fails in a second.
pub async fn check_callbacks(env: &Env, key: &str) -> anyhow::Result<()> {
    let body = json!({
        "domain": "load.hook-preflight",
        "query": "load test pre-flight",
        "priority": "batch",
        "callback_url": "http://127.0.0.1:9/switchboard-load-preflight",
    });
    let resp = env
        .client
        .post(env.url("/escalations")?)
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST /escalations failed: {e}"))?;
    match resp.status().as_u16() {
        201 => {
            let created: CaseState =
                resp.json().await.map_err(|e| anyhow::anyhow!("POST /escalations 201 body: {e}"))?;
            let resp = env
                .client
                .post(env.url(&format!("/escalations/{}/cancel", created.id))?)
                .header("X-API-Key", key)
                .send()
                .await?;
            if !resp.status().is_success() {
                eprintln!(
                    "{NAME}: could not cancel the pre-flight case {} ({}): it stays pending",
                    created.id,
                    resp.status()
                );
            }
            Ok(())
        }
        400 => {
            let detail = body_excerpt(resp).await;
            anyhow::bail!(
                "the server refuses loopback callback URLs (400 {detail}); the receivers of this \
                 scenario listen on 127.0.0.1, so start the server under test with {SERVER_ENV}"
            )
        }
        s => {
            let detail = body_excerpt(resp).await;
            anyhow::bail!("POST /escalations with a callback_url answered {s}, expected 201: {detail}")
        }
    }
}

/// What the server says about the deliveries of case `id`, for an error.
async fn deliveries_of(shared: &Shared, id: &str, worker: usize) -> String {
    #[derive(Deserialize)]
    struct Deliveries {
        deliveries: Vec<serde_json::Value>,
    }
    let url = format!("{}/webhooks/deliveries/{id}", shared.base);
    let key = shared.keys[worker % shared.keys.len()].clone();
    let resp = match shared.client.get(&url).header("X-API-Key", key).send().await {
        Ok(r) => r,
        Err(e) => return format!("GET /webhooks/deliveries/{id} failed: {e}"),
    };
    let status = resp.status().as_u16();
    if status != 200 {
        let detail = body_excerpt(resp).await;
        return format!("GET /webhooks/deliveries/{id} answered {status}: {detail}");
    }
    match resp.json::<Deliveries>().await {
        Ok(d) if d.deliveries.is_empty() => {
            format!("GET /webhooks/deliveries/{id}: the server recorded no delivery for this case")
        }
        Ok(d) => {
            let shown: Vec<String> = d
                .deliveries
                .iter()
                .map(|v| {
                    let f = |k: &str| v.get(k).map_or_else(|| "?".to_string(), |x| x.to_string());
                    format!(
                        "{} to {}: status {}, attempts {}, last_status_code {}, last_error {}, next_attempt_at {}",
                        f("event"),
                        f("url"),
                        f("status"),
                        f("attempts"),
                        f("last_status_code"),
                        f("last_error"),
                        f("next_attempt_at")
                    )
                })
                .collect();
            format!("GET /webhooks/deliveries/{id}: {}", shown.join("; "))
        }
        Err(e) => format!("GET /webhooks/deliveries/{id}: unexpected body: {e}"),
    }
}

/// What to try, from what the server said about a delivery that did not arrive.
fn delivery_hint(said: &str) -> String {
    if said.contains("webhook secret") {
        "the API key's tenant has no webhook secret to sign callbacks with (the operator tenant of \
         `switchboard admin operator-key` is created without one): the server cannot deliver this \
         tenant's callback_url events"
            .into()
    } else if said.contains("recorded no delivery") || said.contains("answered 404") {
        "does the server under test have the webhook engine?".into()
    } else {
        format!("is the server under test started with {SERVER_ENV}?")
    }
}

/// One case end to end before anything is measured, so a server that does
/// not deliver fails at once with what it says about the delivery.
async fn check_delivery(shared: &Arc<Shared>, url: String) -> anyhow::Result<()> {
    let step = Step::new(shared, vec![url]);
    match step.one_case(0, 0).await {
        Ok(_) => Ok(()),
        Err(OpError::Outcome("no delivery in time")) => {
            let (id, worker) =
                step.first_missing.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or_default();
            let said = deliveries_of(shared, &id, worker).await;
            anyhow::bail!(
                "the delivery of a resolved case (escalation {id}) did not reach its receiver within {} \
                 ({said}); {}",
                humantime::format_duration(shared.delivery_timeout),
                delivery_hint(&said)
            )
        }
        Err(e) => anyhow::bail!(
            "pre-flight case failed ({e:?}): {}",
            step.first_error.take().unwrap_or_else(|| "no detail".into())
        ),
    }
}

// ---- Seeding, steps, figures ----

async fn seed(
    env: &Env,
    keys: &[String],
    domains: &[String],
    run: &str,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<HeaderValue>> {
    let seed = ExpertSeed {
        scenario: NAME,
        name: "Load webhook expert".into(),
        email: format!("load-hook-{run}"),
        domains: domains.to_vec(),
        max_concurrent: EXPERT_MAX_CONCURRENT,
    };
    // Expert w registers with keys[w % tenants]: worker w's tenant.
    seed_experts(env, keys, seed, interrupt)
        .await?
        .into_iter()
        .map(|t| {
            HeaderValue::from_str(&t)
                .map_err(|_| anyhow::anyhow!("seeding experts: a token is not a header value"))
        })
        .collect()
}

fn ms(t: &Tally, q: f64) -> Option<f64> {
    (!t.hist.is_empty()).then(|| t.hist.value_at_quantile(q) as f64 / 1000.0)
}

/// The figures of one step, on its throughput row.
fn step_figures(endpoints: usize, counts: &Counts, early: u64) -> Vec<Figure> {
    let n = |v: u64| Some(v as f64);
    let mut figures = vec![
        Figure::new("endpoints", n(endpoints as u64), ""),
        Figure::new("receipts (all POSTs the receivers got)", n(counts.receipts), ""),
        Figure::new("duplicate webhook-ids", n(counts.duplicate_ids), ""),
        Figure::new("receipts without webhook-id", n(counts.missing_id), ""),
        Figure::new("receipts before the resolve answered (counted as 0 ms)", n(early), ""),
        Figure::new("receipts no case was waiting for (late)", n(counts.unmatched), ""),
    ];
    // Rare; shown only when they happen.
    for (label, v) in [
        ("same event again under a new webhook-id", counts.repeated_events),
        ("receipts not JSON or without escalation_id", counts.malformed),
        ("receipts of other events", counts.other_events),
    ] {
        if v > 0 {
            figures.push(Figure::new(label, n(v), ""));
        }
    }
    figures
}

pub async fn run(
    args: &WebhooksArgs,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<ScenarioReport>> {
    if args.endpoints.is_empty() {
        anyhow::bail!("--endpoints needs at least one count, e.g. 1,10,100");
    }
    let keys = escalation_keys(env, NAME, args.tenants, interrupt).await?;
    check_key(env, &keys[0]).await?;
    check_callbacks(env, &keys[0]).await?;
    let run = run_id();
    let listeners = args.endpoints.iter().copied().max().unwrap_or(1) as usize;
    let inbox = Arc::new(Inbox::default());
    let receivers = Receivers::start(listeners, Arc::clone(&inbox)).await?;
    eprintln!(
        "{NAME}: {} receiver listeners on 127.0.0.1; steps of {} endpoints; one expert per worker",
        thousands(listeners as u64),
        args.endpoints.iter().map(|n| thousands(u64::from(*n))).collect::<Vec<_>>().join(", ")
    );

    let domains: Vec<String> = (0..cfg.concurrency).map(|i| format!("load.hook-{run}-{i}")).collect();
    let tokens = seed(env, &keys, &domains, &run, interrupt).await?;
    // Their own pool, sized for the workers and their cancels.
    let client = Client::builder()
        .pool_max_idle_per_host(cfg.concurrency * 2)
        .timeout(env.timeout)
        .tcp_nodelay(true)
        .build()?;
    let shared = Arc::new(Shared {
        client,
        base: env.base_url.clone(),
        keys: keys.iter().map(|k| HeaderValue::from_str(k)).collect::<Result<_, _>>()?,
        domains,
        tokens,
        inbox: Arc::clone(&inbox),
        poll: args.poll,
        delivery_timeout: args.delivery_timeout,
    });
    check_delivery(&shared, receivers.urls(1, "preflight").remove(0)).await?;

    let mut rows = Vec::new();
    let mut rates: Vec<(u32, f64)> = Vec::new();
    for &n in &args.endpoints {
        if *interrupt.borrow() {
            break;
        }
        let step = Arc::new(Step::new(&shared, receivers.urls(n as usize, &format!("{run}-{n}"))));
        eprintln!("{NAME}@{n}: cases spread over {} endpoint(s)", thousands(u64::from(n)));
        let mut report = runner::run(Arc::clone(&step), env, cfg, interrupt).await?;
        let counts = inbox.counts().since(&step.counts_start.lock().unwrap_or_else(PoisonError::into_inner));
        report.name = format!("{NAME}@{n}");
        report.figures = step_figures(n as usize, &counts, step.early.load(Relaxed));
        if report.tally.errors() > 0 {
            eprintln!(
                "{NAME}@{n}: {} cases failed ({}); first: {}",
                thousands(report.tally.errors()),
                error_breakdown(&report.tally),
                step.first_error.take().unwrap_or_else(|| "-".into())
            );
        }
        let missing = step.first_missing.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((id, worker)) = missing {
            let said = deliveries_of(&shared, &id, worker).await;
            eprintln!("{NAME}@{n}: a delivery did not arrive in time: {said}");
        }
        let latency = step.latency().clone();
        let from_sent = step.sent_latency().clone();
        let show = |t: &Tally, q: f64| ms(t, q).map_or("n/a".into(), |v| format!("{v:.2}"));
        eprintln!(
            "{NAME}@{n}: {:.1} deliveries/s, event→receipt p50 {} ms, p99 {} ms \
             (from sending the resolve: p50 {} ms, p99 {} ms)",
            report.throughput(),
            show(&latency, 0.5),
            show(&latency, 0.99),
            show(&from_sent, 0.5),
            show(&from_sent, 0.99)
        );
        rates.push((n, report.throughput()));
        let elapsed = report.elapsed;
        rows.push(report);
        rows.push(ScenarioReport::latency_only(format!("{NAME}@{n} {EVENT_TO_RECEIPT}"), latency, elapsed));
        rows.push(ScenarioReport::latency_only(format!("{NAME}@{n} {SENT_TO_RECEIPT}"), from_sent, elapsed));
        let closed = sweep(&shared, interrupt).await?;
        if closed > 0 {
            eprintln!("{NAME}@{n}: resolved {closed} cases that operations abandoned at the ends of phases");
        }
    }
    if let (Some(&(first, lo)), Some(&(last, hi)), Some(row)) = (rates.first(), rates.last(), rows.get_mut(0))
    {
        if first != last && lo > 0.0 {
            row.figures.push(Figure::new(
                format!("deliveries/s at {} ÷ at {} endpoint(s)", thousands(u64::from(last)), first),
                Some(hi / lo),
                "x",
            ));
        }
    }

    // Let the deliveries of the swept cases land before closing.
    let start = Instant::now();
    let mut last = inbox.counts().receipts;
    while start.elapsed() < DRAIN_MAX {
        sleep(DRAIN_QUIET).await;
        let now = inbox.counts().receipts;
        if now == last {
            break;
        }
        last = now;
    }
    receivers.stop().await;
    Ok(rows)
}

/// Adds, to each `webhooks@<n> event→receipt` and `resolve sent→receipt`
/// row, its p50 and p99 as a ratio to the p99 latency of the ceiling
/// measured in the same run (`n/a` without one). Called once every scenario
/// has run.
pub fn add_ceiling_latency_ratios(rows: &mut [ScenarioReport]) {
    let ceiling_p99 = rows
        .iter()
        .find(|r| r.name == CEILING)
        .and_then(ScenarioReport::latency)
        .map(|l| l.p99)
        .filter(|p| *p > 0.0);
    for row in rows.iter_mut() {
        let receipt_row = row.name.ends_with(EVENT_TO_RECEIPT) || row.name.ends_with(SENT_TO_RECEIPT);
        if !(row.name.starts_with(NAME) && receipt_row) {
            continue;
        }
        let latency = row.latency();
        for (label, value) in [("p50", latency.map(|l| l.p50)), ("p99", latency.map(|l| l.p99))] {
            let ratio = value.zip(ceiling_p99).map(|(v, c)| v / c);
            row.figures.push(Figure::new(format!("{label} ÷ ceiling p99"), ratio, "x"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(id: &str) -> Vec<u8> {
        json!({"event": "escalation.resolved", "escalation_id": id, "status": "resolved"})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn receipts_wake_their_case_and_duplicates_are_counted() {
        let inbox = Inbox::default();
        let (tx, mut rx) = oneshot::channel();
        inbox.waiting.lock().unwrap().insert("e1".into(), tx);
        let at = Instant::now();
        inbox.receive(at, Some(b"msg_1"), &resolved("e1"));
        assert_eq!(rx.try_recv().ok(), Some(at));
        // The same delivery again: a duplicate id, and nobody waits any more.
        inbox.receive(at, Some(b"msg_1"), &resolved("e1"));
        // The same event under a new id, one without an id, junk, another event.
        inbox.receive(at, Some(b"msg_2"), &resolved("e1"));
        inbox.receive(at, None, &resolved("e2"));
        inbox.receive(at, Some(b"msg_3"), b"not json");
        let expired = json!({"event": "escalation.expired", "escalation_id": "e3"}).to_string();
        inbox.receive(at, Some(b"msg_4"), expired.as_bytes());
        let c = inbox.counts();
        assert_eq!(
            c,
            Counts {
                receipts: 6,
                missing_id: 1,
                duplicate_ids: 1,
                repeated_events: 1,
                malformed: 1,
                other_events: 1,
                unmatched: 3,
            }
        );
        assert_eq!(c.since(&c), Counts::default());
    }

    #[tokio::test]
    async fn receivers_listen_on_distinct_ports_and_answer_200() {
        let inbox = Arc::new(Inbox::default());
        let receivers = Receivers::start(3, Arc::clone(&inbox)).await.expect("receivers start");
        let urls = receivers.urls(3, "t");
        let ports: HashSet<&str> = urls.iter().map(|u| &u[..u.rfind('/').expect("a path")]).collect();
        assert_eq!(ports.len(), 3, "{urls:?}");
        let (tx, rx) = oneshot::channel();
        inbox.waiting.lock().unwrap().insert("e1".into(), tx);
        let resp = Client::new()
            .post(&urls[2])
            .header("webhook-id", "msg_1")
            .body(resolved("e1"))
            .send()
            .await
            .expect("the receiver answers");
        assert_eq!(resp.status().as_u16(), 200);
        rx.await.expect("the case is woken");
        receivers.stop().await;
        assert_eq!(inbox.counts(), Counts { receipts: 1, ..Counts::default() });
    }

    #[test]
    fn flags_parse() {
        use clap::Parser;
        let cli =
            crate::Cli::try_parse_from(["switchboard-load", "webhooks", "--endpoints", "2,20", "-d", "3s"])
                .expect("valid flags");
        let crate::Command::One(super::super::ScenarioCmd::Webhooks(args)) = &cli.command else {
            panic!("not webhooks")
        };
        assert_eq!(args.endpoints, vec![2, 20]);
        assert_eq!(args.delivery_timeout, Duration::from_secs(10));
        assert_eq!(WebhooksArgs::default().endpoints, vec![1, 10, 100]);
        assert!(crate::Cli::try_parse_from(["switchboard-load", "webhooks", "--endpoints", "0"]).is_err());
    }

    #[test]
    fn latency_ratios_are_to_the_ceiling_p99() {
        let mut ceiling = Tally::default();
        for _ in 0..100 {
            ceiling.record(Ok(200), Duration::from_millis(2));
        }
        let mut hook = Tally::default();
        for _ in 0..100 {
            hook.record(Ok(200), Duration::from_millis(4));
        }
        let mut rows = vec![
            ScenarioReport::new(CEILING, ceiling, Duration::from_secs(1)),
            ScenarioReport::latency_only(
                format!("{NAME}@1 {EVENT_TO_RECEIPT}"),
                hook,
                Duration::from_secs(1),
            ),
        ];
        add_ceiling_latency_ratios(&mut rows);
        assert_eq!(rows[1].figures.len(), 2);
        let r = rows[1].figures[0].value.expect("a ratio");
        assert!((r - 2.0).abs() < 0.01, "{r}");
        let mut alone = vec![rows.remove(1)];
        alone[0].figures.clear();
        add_ceiling_latency_ratios(&mut alone);
        assert!(alone[0].figures.iter().all(|f| f.value.is_none()));
    }
}
