//! What one operation against the server is, per scenario.
//!
//! Adding a scenario touches this file and one new file:
//! 1. write `src/scenarios/<name>.rs` with a type implementing [`Scenario`];
//! 2. add a variant to [`ScenarioCmd`] (its doc comment is the `--help` text);
//! 3. add its arm to [`ScenarioCmd::run`] and its entry to [`ScenarioCmd::all`].
//!
//! The compiler catches a missing arm in `run`; nothing catches a missing
//! entry in `all`, hence the test at the bottom of this file.
//!
//! A scenario that measures more than its operations (a side latency, a
//! figure with a goal) resets that in [`Scenario::measured_phase_starts`],
//! keeps an `Arc` of itself to read it after [`runner::run`], and returns
//! extra rows ([`ScenarioReport::latency_only`]) or
//! [`crate::report::Figure`]s; `scale` does not use the runner at all, only
//! [`batch`]. The helpers for keys, seeding and `/metrics` are at the end.

pub mod ceiling;
pub mod crash;
pub mod create;
pub mod deploy;
pub mod lifecycle;
pub mod message;
pub mod scale;
pub mod tenants;
pub mod webhooks;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use reqwest::{Client, Response, Url};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::report::{thousands, ScenarioReport, Tally};
use crate::runner::{self, Interrupt, RunConfig};

/// Name of the scenario every other throughput is a ratio to.
pub const CEILING: &str = "ceiling";

/// How a request failed before any HTTP status came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Connect,
    Timeout,
    Other,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Connect => "connect",
            TransportKind::Timeout => "timeout",
            TransportKind::Other => "other",
        }
    }
}

/// Why an operation does not count as successful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpError {
    /// The server answered, but not with a status the scenario expects.
    Status(u16),
    Transport(TransportKind),
    /// The answer was a success status but not what the scenario needed:
    /// a case that expired or was never routed in time, a body without an id.
    Outcome(&'static str),
}

impl From<reqwest::Error> for OpError {
    fn from(e: reqwest::Error) -> Self {
        // Connect first: a server that never accepted the connection is a
        // different problem from one that accepted and then went quiet, even
        // when the connect attempt itself ran out of time.
        let kind = if e.is_connect() {
            TransportKind::Connect
        } else if e.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        };
        OpError::Transport(kind)
    }
}

/// `Ok(status)` when the operation succeeded, else why not.
pub type OpResult = Result<u16, OpError>;

/// What every scenario gets: the shared client and where the server is.
pub struct Env {
    /// Shared by all workers so connections are pooled and kept alive.
    pub client: Client,
    /// The `--url` given, without a trailing slash; the only host ever contacted.
    pub base_url: String,
    /// `--api-key` (or `SWITCHBOARD_LOAD_API_KEY`): an Escalation API key,
    /// the one tenant of the scenarios that create escalations or experts
    /// when there is no `--token`.
    pub api_key: Option<String>,
    /// `--token` (or `SWITCHBOARD_LOAD_TOKEN`): a super-admin's Platform API
    /// JWT. With it every scenario seeds its own tenants ([`tenants`]).
    pub token: Option<String>,
    /// `--keep`: leave what could be removed cheaply (message and deploy
    /// tenants) on the server.
    pub keep: bool,
    /// `--timeout`, for the clients scenarios build for their own workers.
    pub timeout: Duration,
}

impl Env {
    /// `path` starts with `/`. Concatenation rather than `Url::join` so a base
    /// URL with a path prefix (server behind a proxy) keeps that prefix.
    pub fn url(&self, path: &str) -> anyhow::Result<Url> {
        let full = format!("{}{}", self.base_url, path);
        Url::parse(&full).map_err(|e| anyhow::anyhow!("bad URL {full}: {e}"))
    }
}

/// Identifies one operation, for scenarios that need distinct data per call.
#[allow(dead_code, reason = "worker and seq are for scenarios that need per-call data; ceiling does not")]
pub struct OpCtx<'a> {
    pub env: &'a Env,
    /// 0..concurrency.
    pub worker: usize,
    /// Per-worker operation counter, starting at 0 (warm-up and measured
    /// phases each start again from 0).
    pub seq: u64,
}

/// One kind of operation the runner repeats back to back on every worker.
///
/// Construction is where one-time setup goes (seeding data, resolving URLs):
/// it happens in [`ScenarioCmd::run`] before the warm-up, unmeasured.
pub trait Scenario: Send + Sync + 'static {
    /// Shown in the report and used as the key in JSON.
    fn name(&self) -> &'static str;

    /// Performs one operation. It may issue several requests; latency is
    /// measured around the whole call.
    fn op(&self, ctx: &OpCtx<'_>) -> impl Future<Output = OpResult> + Send;

    /// Called once the warm-up is over, just before the measured phase:
    /// whatever a scenario measures on the side starts again from zero here.
    fn measured_phase_starts(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Turns a response into an [`OpResult`], reading the whole body: an unread
/// body keeps the connection out of the pool and forces a reconnect.
pub async fn finish(resp: Result<Response, reqwest::Error>, expected: &[u16]) -> OpResult {
    let resp = resp?;
    let status = resp.status().as_u16();
    resp.bytes().await?;
    if expected.contains(&status) {
        Ok(status)
    } else {
        Err(OpError::Status(status))
    }
}

/// Default `--tenants` of the scenarios that seed tenants: one, as with
/// `--api-key`, so figures of the two paths compare.
pub const DEFAULT_TENANTS: u32 = 1;

// The scenarios, one subcommand each. Every variant's doc comment is its
// `--help`. The global flags (`--url`, `--concurrency`, `--duration`,
// `--requests`, `--warmup`, `--rate`, `--token`, `--api-key`, `--keep`, ...)
// apply to all of them. (A plain comment: a doc comment here would replace
// the tool's own description in `switchboard-load --help`.)
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ScenarioCmd {
    /// GET /healthz: the reference ceiling every other figure is a ratio to.
    ///
    /// Before another scenario (and in `all`) it runs closed loop even with
    /// --rate: the reference is the most the server does. Alone, it follows
    /// --rate like any scenario. Needs no credentials.
    Ceiling,
    /// POST /escalations: durable creates per second (each 201 comes after
    /// the database commit).
    ///
    /// The cases go to --domains domains `load.create-0`, `load.create-1`, ...
    /// that no expert serves, so routing stays cheap and every case stays
    /// pending (priority `batch`, 24 h SLA): the queue grows with each run.
    /// Client workers are spread over --tenants tenants (worker w uses tenant
    /// w mod --tenants). Goal for the ratio to the ceiling: >= 0.40 on SQLite,
    /// >= 0.20 on PostgreSQL (the backend is read from /readyz).
    ///
    /// Tenants: with --token, --tenants are registered (POST /auth/register)
    /// and put on the enterprise plan (PATCH /api/tenants/{id}); they and their
    /// cases stay on the server. Else --api-key, an operator key (`switchboard
    /// admin operator-key`), is the one tenant; a key of a limited plan fails
    /// at once with 429.
    Create(create::CreateArgs),
    /// The whole life of a case: create, routed, accepted, resolved.
    ///
    /// Seeds --experts experts through POST /experts, spread over --tenants
    /// tenants and --domains fresh domains (expert i: tenant i mod --tenants,
    /// domain (i div --tenants) mod --domains; --max-concurrent cases at a
    /// time); each has a worker that polls GET
    /// /experts/me/escalations?status=routed every --expert-poll when idle,
    /// and accepts and resolves every case it finds. Each of the client
    /// workers (worker w in tenant w mod --tenants) creates a case in a domain
    /// its tenant's experts serve, polls GET /escalations/{id} every --poll
    /// until it is no longer pending, then long-polls /escalations/{id}/wait
    /// until it is resolved (in closed loop it then starts the next one, so
    /// the queue cannot grow without bound; with --rate cases arrive at that
    /// rate, at most --concurrency followed at once).
    ///
    /// `lifecycle` is resolved cases per second (ratio to the ceiling) and
    /// create→resolved latency. `lifecycle create→routed` is measured on the
    /// client, from the create's 201 to the first GET that shows the case
    /// routed: the server's routed_at has whole seconds only, and an expert's
    /// first sight of a case mostly measures --expert-poll. The figure is an
    /// upper bound, late by at most one --poll plus one GET (both shown).
    ///
    /// Tenants: with --token, --tenants enterprise tenants are registered, and
    /// each one's experts serve only it; they stay on the server. Else the one
    /// tenant of --api-key, an operator key, whose experts are platform-wide.
    Lifecycle(lifecycle::LifecycleArgs),
    /// Routing latency as the experts of a domain grow, and memory.
    ///
    /// For each of --sizes (experts in the domain), tops the experts of one
    /// fresh domain up to that many (POST /experts at --concurrency, distinct
    /// emails), then sends --cases cases to it, --in-flight at a time (with
    /// --rate: at that rate, at most --in-flight at once): each is created,
    /// GET /escalations/{id} is polled every --poll until it is no longer
    /// pending (latency from the 201 to that answer, plus how late it started
    /// under --rate), and it is cancelled to free the expert. Goal: p50 at the
    /// largest size / p50 at the smallest <= 1.5. Then creates --open-cases
    /// cases in a domain no expert serves (they stay open) and reads
    /// process_resident_memory_bytes from /metrics: goal < 600 MB with 100,000
    /// experts and 100,000 open cases. --duration and --requests do not apply.
    ///
    /// Tenants: one, as the figure is about one domain: with --token a fresh
    /// enterprise tenant, else the one of --api-key (an operator key).
    /// Everything it creates stays on the server.
    Scale(scale::ScaleArgs),
    /// Webhook deliveries per second to local receivers at 1, 10 and 100
    /// endpoints, and the latency from event to receipt.
    ///
    /// Starts --endpoints' largest count of receivers (distinct listeners on
    /// 127.0.0.1 of this process, answering 200 at once, counting duplicate or
    /// missing `webhook-id`s) and seeds one expert per client worker
    /// (--concurrency of them, so there is no --experts), each in a fresh
    /// domain of its own; worker w and its expert are in tenant w mod
    /// --tenants. Each operation creates a case with a `callback_url` (the
    /// step's endpoints in turn), polls it every --poll until routed, accepts
    /// and resolves it as the worker's expert, and waits for the
    /// `escalation.resolved` POST naming it. `webhooks@<n>`
    /// is delivered cases per second (ratio to the ceiling);
    /// `webhooks@<n> event→receipt` is from the resolve's 200 to the receipt,
    /// its p50 and p99 also as a ratio to the ceiling's p99 latency (a receipt
    /// before the resolve's answer counts as 0 ms; `webhooks@<n> resolve
    /// sent→receipt` is timed from sending the resolve). One case
    /// goes through first: if its delivery does not arrive within
    /// --delivery-timeout, the error quotes GET /webhooks/deliveries/{id}.
    /// The server under test must run with SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE=true
    /// and SWITCHBOARD_OUTBOUND_ALLOW=127.0.0.0/8,::1/128 (checked before
    /// anything runs). --duration or --requests apply to each step.
    ///
    /// Tenants: with --token, --tenants enterprise tenants are registered (each
    /// gets the webhook secret that signs its deliveries); they stay on the
    /// server. Else the one tenant of --api-key (an operator key; the operator
    /// tenant needs a secret: `switchboard admin webhook-secret`).
    Webhooks(webhooks::WebhooksArgs),
    /// POST /v1/cerebrals/{id}/message: Cerebral turns per second on the
    /// offline provider, with session memory (each answer comes after the
    /// turn is committed).
    ///
    /// Each client worker rotates over --sessions sessions of its own, so
    /// every turn reads a growing memory; worker w talks to tenant w mod
    /// --tenants. Ratio to the ceiling, no goal yet.
    ///
    /// Tenants: with --token, --tenants tenants are created on the enterprise
    /// plan (POST /api/tenants; no request limit or token budget), deployed,
    /// and given a Cerebral and an Agent API key (POST /v1/cerebrals, POST
    /// /v1/api-keys); they are stopped and deleted at the end unless --keep.
    /// Else --agent-key and --cerebral: `switchboard admin agent-key` (run with
    /// the server's settings) makes a Cerebral in the operator tenant and
    /// prints both.
    Message(message::MessageArgs),
    /// Deploy→running time and memory per running tenant, at 1, 100 and
    /// 1,000 tenants (--tenants: here a list of steps).
    ///
    /// Each step creates that many new tenants (POST /api/tenants,
    /// `load-deploy-<run>-<i>`), deploys them --concurrency at a time (POST
    /// /api/tenants/{id}/deploy, then GET /api/tenants/{id}/status every --poll
    /// until `running`: latency from sending the deploy to that answer; the
    /// step's wall time is until all are running). Memory per tenant: the
    /// growth of the server's process_resident_memory_bytes (/metrics) over
    /// the step, and on the `process` runtime the resident memory of the
    /// tenants' children from GET /api/monitoring/resources, waited for (at
    /// most 30 s) until every tenant has a sample taken while it runs: run the
    /// server with SWITCHBOARD_RESOURCE_SAMPLE_INTERVAL=1s (the default 60s
    /// gives n/a). The runtime is the server's SWITCHBOARD_TENANT_RUNTIME
    /// (`embedded` or `process`), told by the status's port and printed;
    /// children memory is n/a on `embedded`. Memory is in KB of 1,000 bytes;
    /// a child's RSS counts the pages it shares with every other child (the
    /// binary's code), so the sum overstates what each child adds (its PSS in
    /// /proc/PID/smaps_rollup is the fairer figure).
    /// At the end every tenant it created is stopped and deleted, even after
    /// Ctrl-C, unless --keep. --duration, --requests and --rate do not apply.
    /// Not part of `all`.
    ///
    /// Needs --token (or SWITCHBOARD_LOAD_TOKEN): a super-admin's Platform
    /// API JWT. Start the server with SWITCHBOARD_BOOTSTRAP_ADMIN=EMAIL, then
    /// `switchboard admin token --email EMAIL` (run with the server's settings
    /// and database) prints one.
    Deploy(deploy::DeployArgs),
    /// Crash consistency: the server SIGKILLed and restarted under load,
    /// then every acknowledged operation checked through the public API.
    ///
    /// Starts --server-bin itself (`switchboard serve` on a free loopback
    /// port, SWITCHBOARD_OUTBOUND_ALLOW=127.0.0.0/8,::1/128, a fast webhook
    /// retry schedule, a bootstrap admin whose `admin token` seeds one
    /// enterprise tenant and five experts of max_concurrent 1 to 3) on
    /// --database-url, or a SQLite file in --data-dir. --url is not used; of
    /// this process's SWITCHBOARD_* variables none reaches the server.
    /// --clients workers create cases (half with an Idempotency-Key, retried
    /// until definite; half with a callback_url to a receiver in this process
    /// that answers 503 in short spells) and cancel some; the experts accept,
    /// decline and resolve. --kills SIGKILLs fall at seeded random moments of
    /// --duration (about a third also kill the restarting server again).
    ///
    /// Then the experts accept everything (the queues are checked at rest),
    /// resolve everything, the deliveries are waited for (at most --settle),
    /// and the history is checked: every acknowledged create exists, once per
    /// key and query; every keyed create got a definite answer; acknowledged
    /// resolves are the answer, acknowledged cancels cancelled, acknowledged
    /// accepts held or resolved by that expert; no expert above max_concurrent
    /// and each routed or in-review case in exactly one queue (sampled all
    /// along); every resolved case with a callback delivered and received;
    /// no (case, event) under two webhook-ids (the same webhook-id again is
    /// a counted re-delivery); no 500. Exits 1 listing the violations, if
    /// any. The seed is printed: --seed repeats a schedule. Not part of `all`.
    Crash(crash::CrashArgs),
}

/// The sizes `all` runs with; each unset one is the scenario's own default
/// (scale's smaller `all` sizes, see [`scale::ScaleArgs::for_all`]).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct AllArgs {
    /// Tenants seeded for each of create, lifecycle, webhooks and message
    /// (with --token; scale always has one)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub tenants: Option<u32>,
    /// lifecycle's experts (webhooks has one per worker, scale --scale-sizes)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub experts: Option<u32>,
    /// Domains of create and lifecycle
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub domains: Option<u32>,
    /// webhooks' endpoint steps, comma-separated (default 1,10,100)
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub endpoints: Option<Vec<u32>>,
    /// scale's sizes, comma-separated, increasing (default 100,10000)
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub scale_sizes: Option<Vec<u64>>,
    /// scale's cases routed at each size (default 1000)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub scale_cases: Option<u64>,
    /// scale's cases left open before reading memory (default 10000)
    #[arg(long)]
    pub open_cases: Option<u64>,
}

impl ScenarioCmd {
    /// Everything `all` runs, in order, sized by `args`. The ceiling comes
    /// first so the others are compared with a figure measured moments
    /// before them. `scale` runs last and smaller (see
    /// [`scale::ScaleArgs::for_all`]), after `webhooks`.
    pub fn all(args: &AllArgs) -> Vec<ScenarioCmd> {
        let mut create = create::CreateArgs::default();
        let mut lifecycle = lifecycle::LifecycleArgs::default();
        let mut webhooks = webhooks::WebhooksArgs::default();
        let mut message = message::MessageArgs::from_env();
        let mut scale = scale::ScaleArgs::for_all();
        if let Some(t) = args.tenants {
            (create.tenants, lifecycle.tenants, webhooks.tenants, message.tenants) = (t, t, t, t);
        }
        if let Some(e) = args.experts {
            lifecycle.experts = e;
        }
        if let Some(d) = args.domains {
            (create.domains, lifecycle.domains) = (d, d);
        }
        if let Some(e) = &args.endpoints {
            webhooks.endpoints.clone_from(e);
        }
        if let Some(s) = &args.scale_sizes {
            scale.sizes.clone_from(s);
        }
        if let Some(c) = args.scale_cases {
            scale.cases = c;
        }
        if let Some(o) = args.open_cases {
            scale.open_cases = o;
        }
        vec![
            ScenarioCmd::Ceiling,
            ScenarioCmd::Create(create),
            ScenarioCmd::Lifecycle(lifecycle),
            ScenarioCmd::Webhooks(webhooks),
            ScenarioCmd::Message(message),
            ScenarioCmd::Scale(scale),
        ]
    }

    /// As on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            ScenarioCmd::Ceiling => CEILING,
            ScenarioCmd::Create(_) => create::NAME,
            ScenarioCmd::Lifecycle(_) => lifecycle::NAME,
            ScenarioCmd::Scale(_) => scale::NAME,
            ScenarioCmd::Webhooks(_) => webhooks::NAME,
            ScenarioCmd::Message(_) => message::NAME,
            ScenarioCmd::Deploy(_) => deploy::NAME,
            ScenarioCmd::Crash(_) => crash::NAME,
        }
    }

    /// Whether it creates escalations or experts, and so needs `--token` or `--api-key`.
    pub fn needs_escalation_tenant(&self) -> bool {
        !matches!(
            self,
            ScenarioCmd::Ceiling | ScenarioCmd::Message(_) | ScenarioCmd::Deploy(_) | ScenarioCmd::Crash(_)
        )
    }

    /// Whether its figures include a throughput, and so need a ceiling
    /// measured in the same run to be read as a ratio.
    pub fn wants_ceiling(&self) -> bool {
        !matches!(self, ScenarioCmd::Ceiling | ScenarioCmd::Crash(_))
    }

    /// Builds the scenario (its setup is not measured) and runs it. Some
    /// scenarios give more than one row (side measurements, one per size).
    pub async fn run(
        &self,
        env: &Arc<Env>,
        cfg: &RunConfig,
        interrupt: &Interrupt,
    ) -> anyhow::Result<Vec<ScenarioReport>> {
        match self {
            ScenarioCmd::Ceiling => {
                Ok(vec![runner::run(Arc::new(ceiling::Ceiling::new(env)?), env, cfg, interrupt).await?])
            }
            ScenarioCmd::Create(args) => create::run(args, env, cfg, interrupt).await,
            ScenarioCmd::Lifecycle(args) => lifecycle::run(args, env, cfg, interrupt).await,
            ScenarioCmd::Scale(args) => scale::run(args, env, cfg, interrupt).await,
            ScenarioCmd::Webhooks(args) => webhooks::run(args, env, cfg, interrupt).await,
            ScenarioCmd::Message(args) => message::run(args, env, cfg, interrupt).await,
            ScenarioCmd::Deploy(args) => deploy::run(args, env, cfg, interrupt).await,
            // `main` runs it itself, to exit non-zero on a violation with the figures shown.
            ScenarioCmd::Crash(args) => {
                let limit = match cfg.limit {
                    runner::Limit::Duration(d) => d,
                    runner::Limit::Count(_) => anyhow::bail!("crash runs for --duration, not --requests"),
                };
                let (rows, violations) = crash::run(args, limit, env.timeout, interrupt).await?;
                anyhow::ensure!(violations.is_empty(), "{}", violations.join("\n"));
                Ok(rows)
            }
        }
    }
}

// ---- Helpers shared by the scenarios that create escalations and experts ----

/// How to get a key that can create escalations without limits.
const KEY_HINT: &str =
    "pass a super-admin's JWT with --token (or SWITCHBOARD_LOAD_TOKEN; `switchboard admin \
     token --email EMAIL` prints one) to seed tenants through the API, or an operator key with --api-key \
     or SWITCHBOARD_LOAD_API_KEY (`switchboard admin operator-key` prints one; run either with the \
     server's settings and database)";

/// The `--api-key`, or a clear error naming the scenario that needs it.
pub fn api_key<'a>(env: &'a Env, scenario: &str) -> anyhow::Result<&'a str> {
    env.api_key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("{scenario} needs --token or an API key: {KEY_HINT}"))
}

/// The database the server runs on, from `GET /readyz` (`checks.backend`),
/// or `None` when it does not say.
pub async fn backend(env: &Env) -> Option<String> {
    #[derive(Deserialize)]
    struct Ready {
        checks: Checks,
    }
    #[derive(Deserialize)]
    struct Checks {
        backend: String,
    }
    let resp = env.client.get(env.url("/readyz").ok()?).send().await.ok()?;
    resp.json::<Ready>().await.ok().map(|r| r.checks.backend)
}

/// Distinct per invocation, so domains and emails of one run never collide
/// with those of an earlier run on the same server. Lowercase hex: valid in
/// a domain slug.
pub fn run_id() -> String {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{:x}{:x}", ms, std::process::id() & 0xfff)
}

/// The first 300 characters of a body, on one line, for error messages.
pub async fn body_excerpt(resp: Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}

/// Checks the key and its plan with `GET /auth/usage`: a key refused, or
/// of a plan with escalation limits, fails at once with the reason.
pub async fn check_key(env: &Env, key: &str) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Usage {
        tier: String,
        limits: Limits,
    }
    #[derive(Deserialize)]
    struct Limits {
        escalations_per_day: Option<u64>,
        escalations_per_month: Option<u64>,
    }
    let resp = env
        .client
        .get(env.url("/auth/usage")?)
        .header("X-API-Key", key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GET /auth/usage failed: {e}"))?;
    match resp.status().as_u16() {
        200 => {
            // A body of another shape only skips this check: the create below still tells.
            if let Ok(u) = resp.json::<Usage>().await {
                if let Some(n) = u.limits.escalations_per_day.or(u.limits.escalations_per_month) {
                    anyhow::bail!(
                        "this API key's tenant is on the {} tier, limited to {n} escalations a {}: {KEY_HINT}",
                        u.tier,
                        if u.limits.escalations_per_day.is_some() { "day" } else { "month" }
                    );
                }
            }
        }
        401 => {
            let detail = body_excerpt(resp).await;
            anyhow::bail!("the server refused the API key (401 {detail}): {KEY_HINT}");
        }
        _ => {}
    }
    Ok(())
}

/// [`check_key`], then creates one case in `domain` before anything is
/// measured or seeded, so a key that cannot create escalations fails at once.
pub async fn check_can_create(env: &Env, key: &str, domain: &str) -> anyhow::Result<()> {
    check_key(env, key).await?;
    let body = serde_json::json!({"domain": domain, "query": "load test pre-flight", "priority": "batch"});
    let resp = env
        .client
        .post(env.url("/escalations")?)
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST /escalations failed: {e}"))?;
    let status = resp.status().as_u16();
    let detail = body_excerpt(resp).await;
    match status {
        201 => Ok(()),
        401 => anyhow::bail!("POST /escalations refused the API key (401 {detail}): {KEY_HINT}"),
        429 => anyhow::bail!(
            "POST /escalations refused with 429 ({detail}): this key's plan limits escalations; {KEY_HINT}"
        ),
        s => anyhow::bail!("POST /escalations answered {s}, expected 201: {detail}"),
    }
}

/// The `id` and `status` of an escalation detail (other fields ignored).
#[derive(Deserialize)]
pub struct CaseState {
    pub id: String,
    pub status: String,
}

/// Keeps the first unexpected answer of a batch, to quote in its error.
#[derive(Default)]
pub struct FirstFailure(Mutex<Option<String>>);

impl FirstFailure {
    pub fn note(&self, what: impl FnOnce() -> String) {
        let mut first = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = Some(what());
        }
    }

    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

/// Reads a response expected to be `expected`; anything else is noted in
/// `first` (status and body) and returned as an error.
pub async fn expect_status(
    resp: Result<Response, reqwest::Error>,
    expected: u16,
    what: &str,
    first: &FirstFailure,
) -> Result<Response, OpError> {
    let resp = resp.map_err(|e| {
        first.note(|| format!("{what}: {e}"));
        OpError::from(e)
    })?;
    let status = resp.status().as_u16();
    if status == expected {
        return Ok(resp);
    }
    let detail = body_excerpt(resp).await;
    first.note(|| format!("{what} answered {status}: {detail}"));
    Err(OpError::Status(status))
}

/// [`batch`] for a measured set of operations: closed loop without `rate`,
/// else open loop at `rate` per second with at most `concurrency` in flight
/// ([`runner::open_loop`]), each recorded with the latency `f` returns plus
/// how late it started (its due time is when a user would have sent it).
pub async fn batch_at<F, Fut>(
    label: &str,
    count: u64,
    concurrency: usize,
    rate: Option<f64>,
    interrupt: &Interrupt,
    f: F,
) -> anyhow::Result<(Tally, Duration, Option<crate::report::OpenLoop>)>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Duration, OpError>> + Send + 'static,
{
    let Some(rate) = rate else {
        let (tally, took) = batch(label, count, concurrency, interrupt, f).await?;
        return Ok((tally, took, None));
    };
    let (tally, took, schedule) =
        runner::open_loop(rate, concurrency, runner::Limit::Count(count), interrupt, None, |id| {
            let op = f(id.index);
            async move {
                match op.await {
                    Ok(latency) => (Ok(200), latency),
                    Err(e) => (Err(e), Duration::ZERO),
                }
            }
        })
        .await
        .map_err(|e| anyhow::anyhow!("{label}: {e:#}"))?;
    Ok((tally, took, Some(schedule)))
}

/// Runs `count` operations, `concurrency` at a time, outside the runner
/// (seeding, or a fixed batch of measured cases). Each returns the latency
/// to record on success. Stops early on Ctrl-C. Prints its progress every
/// few seconds on stderr when it is long.
pub async fn batch<F, Fut>(
    label: &str,
    count: u64,
    concurrency: usize,
    interrupt: &Interrupt,
    f: F,
) -> anyhow::Result<(Tally, Duration)>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Duration, OpError>> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1).min(usize::try_from(count).unwrap_or(usize::MAX)))
        .map(|_| {
            let (f, next, done, interrupt) =
                (Arc::clone(&f), Arc::clone(&next), Arc::clone(&done), interrupt.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while !*interrupt.borrow() {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= count {
                        break;
                    }
                    match f(i).await {
                        Ok(latency) => tally.record(Ok(200), latency),
                        Err(e) => tally.record(Err(e), Duration::ZERO),
                    }
                    done.fetch_add(1, Relaxed);
                }
                tally
            })
        })
        .collect();
    let label_owned = label.to_string();
    let shown = Arc::clone(&done);
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        every.tick().await;
        loop {
            every.tick().await;
            let n = shown.load(Relaxed).min(count);
            eprintln!(
                "  {label_owned}: {}/{} after {:.0}s",
                thousands(n),
                thousands(count),
                start.elapsed().as_secs_f64()
            );
        }
    });
    let mut tally = Tally::default();
    let mut failure = None;
    for w in workers {
        match w.await {
            Ok(t) => tally.merge(&t)?,
            Err(e) => failure = Some(e),
        }
    }
    ticker.abort();
    if let Some(e) = failure {
        anyhow::bail!("a worker of {label} failed: {e}");
    }
    Ok((tally, start.elapsed()))
}

/// A Prometheus histogram from `/metrics`: its cumulative buckets, as
/// (upper bound, count) pairs in increasing order, the last one `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct PromHistogram {
    buckets: Vec<(f64, f64)>,
}

impl PromHistogram {
    /// Reads `<name>_bucket{le="..."}` lines (a histogram without other labels).
    pub fn parse(text: &str, name: &str) -> Option<PromHistogram> {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut buckets: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&prefix)?;
                let (le, count) = rest.split_once("\"}")?;
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                Some((le, count.trim().parse().ok()?))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        (!buckets.is_empty()).then_some(PromHistogram { buckets })
    }

    /// What was observed since `earlier`, a reading of the same histogram.
    pub fn since(&self, earlier: &PromHistogram) -> PromHistogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, n)| {
                let before = earlier.buckets.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
                (le, (n - before).max(0.0))
            })
            .collect();
        PromHistogram { buckets }
    }

    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// The q-quantile, interpolated linearly inside its bucket the way
    /// Prometheus' `histogram_quantile` does: only as fine as the buckets.
    /// In the `+Inf` bucket, the largest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, n) in &self.buckets {
            if n >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let width = n - lower.1;
                let frac = if width > 0.0 { (rank - lower.1) / width } else { 1.0 };
                return Some(lower.0 + (le - lower.0) * frac);
            }
            lower = (le, n);
        }
        Some(lower.0)
    }
}

/// The histogram `name` as `GET /metrics` shows it now.
pub async fn prom_histogram(client: &Client, metrics: &Url, name: &str) -> Option<PromHistogram> {
    let text = client.get(metrics.clone()).send().await.ok()?.text().await.ok()?;
    PromHistogram::parse(&text, name)
}

/// The server's own create→routed histogram (seconds).
pub const TIME_TO_ROUTE: &str = "switchboard_routing_time_to_route_seconds";

/// `process_resident_memory_bytes` from `GET /metrics`, or `None` when the
/// server does not export it.
pub async fn resident_memory_bytes(env: &Env) -> Option<f64> {
    let resp = env.client.get(env.url("/metrics").ok()?).send().await.ok()?;
    let text = resp.text().await.ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes ")?.trim().parse::<f64>().ok())
}

/// Experts to register through `POST /experts`: expert `i` serves
/// `domains[i]` and is registered with key `i % keys.len()`, so it belongs
/// to that key's tenant (platform-wide with an operator key).
pub struct ExpertSeed<'a> {
    /// The scenario, for progress lines.
    pub scenario: &'a str,
    /// Names are `{name} {i}`, emails `{email}-{i}@example.com` (make it unique per run).
    pub name: String,
    pub email: String,
    pub domains: Vec<String>,
    pub max_concurrent: u32,
}

/// Registers the experts of `seed`; returns their portal tokens, expert `i`'s at `i`.
pub async fn seed_experts(
    env: &Env,
    keys: &[String],
    seed: ExpertSeed<'_>,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Created {
        expert_token: String,
    }
    let count = seed.domains.len();
    let tokens = Arc::new(Mutex::new(vec![None; count]));
    let first = Arc::new(FirstFailure::default());
    anyhow::ensure!(!keys.is_empty(), "seeding experts: no tenant key");
    let (client, url, keys) = (env.client.clone(), env.url("/experts")?, keys.to_vec());
    let (t, f) = (Arc::clone(&tokens), Arc::clone(&first));
    let ExpertSeed { scenario, name, email, domains, max_concurrent } = seed;
    let (tally, took) = batch("seeding experts", count as u64, 16, interrupt, move |i| {
        let body = serde_json::json!({
            "name": format!("{name} {i}"),
            "email": format!("{email}-{i}@example.com"),
            "domains": [domains[i as usize]],
            "max_concurrent": max_concurrent,
        });
        let key = keys[i as usize % keys.len()].as_str();
        let req = client.post(url.clone()).header("X-API-Key", key).json(&body);
        let (t, f) = (Arc::clone(&t), Arc::clone(&f));
        async move {
            let start = Instant::now();
            let resp = expect_status(req.send().await, 201, "POST /experts", &f).await?;
            let created: Created = resp.json().await.map_err(|e| {
                f.note(|| format!("POST /experts 201 body: {e}"));
                OpError::Outcome("bad body")
            })?;
            t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i as usize] =
                Some(created.expert_token);
            Ok(start.elapsed())
        }
    })
    .await?;
    if tally.errors() > 0 {
        anyhow::bail!(
            "seeding experts: {} of {} failed ({}); first: {}",
            tally.errors(),
            tally.ops,
            crate::report::error_breakdown(&tally),
            first.take().unwrap_or_default()
        );
    }
    let tokens: Option<Vec<String>> =
        std::mem::take(&mut *tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            .into_iter()
            .collect();
    let tokens = tokens.ok_or_else(|| anyhow::anyhow!("seeding experts was interrupted"))?;
    eprintln!("{scenario}: seeded {} experts in {:.1}s", thousands(tokens.len() as u64), took.as_secs_f64());
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_starts_with_the_ceiling_and_lists_each_scenario_once() {
        let all = ScenarioCmd::all(&AllArgs::default());
        assert_eq!(all.first(), Some(&ScenarioCmd::Ceiling));
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "{a:?} listed twice");
        }
        // A new variant stops this match compiling, which brings whoever
        // added it here: extend `every` below, and `all` with it.
        fn _exhaustive(cmd: &ScenarioCmd) {
            match cmd {
                ScenarioCmd::Ceiling
                | ScenarioCmd::Create(_)
                | ScenarioCmd::Lifecycle(_)
                | ScenarioCmd::Scale(_)
                | ScenarioCmd::Webhooks(_)
                | ScenarioCmd::Message(_) => {}
                // Left out of `all` on purpose: it needs a super-admin token,
                // and puts (and takes away) a thousand running tenants.
                ScenarioCmd::Deploy(_) => {}
                // Also left out: it starts, kills and restarts a server of its own.
                ScenarioCmd::Crash(_) => {}
            }
        }
        assert!(!all.iter().any(|c| matches!(c, ScenarioCmd::Deploy(_) | ScenarioCmd::Crash(_))));
        let every = [
            ScenarioCmd::Ceiling,
            ScenarioCmd::Create(create::CreateArgs::default()),
            ScenarioCmd::Lifecycle(lifecycle::LifecycleArgs::default()),
            ScenarioCmd::Scale(scale::ScaleArgs::for_all()),
            ScenarioCmd::Webhooks(webhooks::WebhooksArgs::default()),
            ScenarioCmd::Message(message::MessageArgs::from_env()),
        ];
        for cmd in &every {
            assert!(all.contains(cmd), "{cmd:?} missing from ScenarioCmd::all");
        }
    }

    #[test]
    fn all_applies_its_sizes_to_every_scenario_they_mean_something_for() {
        let args = AllArgs {
            tenants: Some(3),
            experts: Some(6),
            domains: Some(2),
            endpoints: Some(vec![1, 2]),
            scale_sizes: Some(vec![5, 10]),
            scale_cases: Some(20),
            open_cases: Some(7),
        };
        let mut seen = 0;
        for cmd in ScenarioCmd::all(&args) {
            match cmd {
                ScenarioCmd::Create(a) => assert_eq!((a.tenants, a.domains), (3, 2)),
                ScenarioCmd::Lifecycle(a) => assert_eq!((a.tenants, a.experts, a.domains), (3, 6, 2)),
                ScenarioCmd::Webhooks(a) => assert_eq!((a.tenants, a.endpoints), (3, vec![1, 2])),
                ScenarioCmd::Message(a) => assert_eq!(a.tenants, 3),
                ScenarioCmd::Scale(a) => {
                    assert_eq!((a.sizes, a.cases, a.open_cases, a.reduced), (vec![5, 10], 20, 7, true))
                }
                ScenarioCmd::Ceiling | ScenarioCmd::Deploy(_) | ScenarioCmd::Crash(_) => continue,
            }
            seen += 1;
        }
        assert_eq!(seen, 5);
    }

    #[test]
    fn prometheus_histogram_quantiles_interpolate_within_buckets() {
        let text = "# TYPE h histogram\nh_bucket{le=\"0.001\"} 10\nh_bucket{le=\"0.01\"} 90\n\
                    h_bucket{le=\"+Inf\"} 100\nh_sum 1\nh_count 100\nother_bucket{le=\"1\"} 5\n";
        let h = PromHistogram::parse(text, "h").expect("parsed");
        assert_eq!(h.count(), 100.0);
        // Rank 50 is half-way through the (0.001, 0.01] bucket.
        let p50 = h.quantile(0.5).expect("p50");
        assert!((p50 - 0.0055).abs() < 1e-9, "{p50}");
        // Rank 99 falls in +Inf: the largest finite bound.
        assert_eq!(h.quantile(0.99), Some(0.01));

        let earlier = PromHistogram::parse(
            "h_bucket{le=\"0.001\"} 10\nh_bucket{le=\"0.01\"} 10\nh_bucket{le=\"+Inf\"} 10\n",
            "h",
        )
        .expect("parsed");
        let delta = h.since(&earlier);
        assert_eq!(delta.count(), 90.0);
        assert_eq!(delta.quantile(0.0), Some(0.001));
        assert!(PromHistogram::parse("nothing here", "h").is_none());
        assert_eq!(
            PromHistogram::parse("h_bucket{le=\"+Inf\"} 0\n", "h").and_then(|h| h.quantile(0.5)),
            None
        );
    }

    #[test]
    fn env_url_keeps_a_path_prefix() {
        let env = Env {
            client: Client::new(),
            base_url: "http://127.0.0.1:8080/sb".into(),
            api_key: None,
            token: None,
            keep: false,
            timeout: Duration::from_secs(30),
        };
        let url = env.url("/healthz").expect("valid URL");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/sb/healthz");
    }
}
