//! The whole life of a case under load: client workers create cases and
//! follow each to its resolution; simulated experts, seeded through the
//! public API, poll their queue and accept and resolve what they find.
//!
//! Closed loop (the default) on both sides: a client worker starts its next
//! case only once the last is resolved, and an expert polls again at once
//! after working, so the queue stays bounded and the figures describe a
//! steady state. With `--rate`, cases arrive at that rate instead (at most
//! `--concurrency` followed at once) and the experts keep up or fall behind.
//!
//! With several tenants (`--tenants`, seeded with `--token`), expert `i` is
//! in tenant `i mod tenants` and serves domain `(i div tenants) mod domains`,
//! so every tenant has experts and they spread over the domains; a client
//! worker creates its cases in its tenant's domains only, since a tenant's
//! experts serve no other tenant.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use reqwest::header::HeaderValue;
use reqwest::{Client, Url};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::tenants::escalation_keys;
use super::{
    check_can_create, expect_status, prom_histogram, run_id, seed_experts, CaseState, Env, ExpertSeed,
    FirstFailure, OpCtx, OpError, OpResult, PromHistogram, Scenario, DEFAULT_TENANTS, TIME_TO_ROUTE,
};
use crate::report::{Figure, ScenarioReport, Tally};
use crate::runner::{self, Interrupt, RunConfig};

pub const NAME: &str = "lifecycle";
const ROUTED: &str = "lifecycle create→routed";

const DEFAULT_EXPERTS: u32 = 50;
const DEFAULT_DOMAINS: u32 = 4;
const DEFAULT_MAX_CONCURRENT: u32 = 2;
const DEFAULT_POLL: &str = "2ms";
const DEFAULT_EXPERT_POLL: &str = "10ms";
const DEFAULT_CASE_TIMEOUT: &str = "60s";

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct LifecycleArgs {
    /// Simulated experts to seed through POST /experts, spread over the
    /// tenants (at least one each)
    #[arg(long, default_value_t = DEFAULT_EXPERTS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub experts: u32,
    /// Fresh domains the experts and cases are spread over
    #[arg(long, default_value_t = DEFAULT_DOMAINS, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub domains: u32,
    /// Tenants the experts and client workers are spread over (seeded with
    /// --token; with --api-key there is one)
    #[arg(long, default_value_t = DEFAULT_TENANTS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub tenants: u32,
    /// Cases each expert takes at once
    #[arg(long, default_value_t = DEFAULT_MAX_CONCURRENT, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_concurrent: u32,
    /// How often a client polls its new case until it is routed: the
    /// resolution of create→routed
    #[arg(long, default_value = DEFAULT_POLL, value_parser = crate::parse_positive_duration)]
    pub poll: Duration,
    /// How long an idle expert waits before polling its queue again
    #[arg(long, default_value = DEFAULT_EXPERT_POLL, value_parser = crate::parse_positive_duration)]
    pub expert_poll: Duration,
    /// A case not resolved within this counts as an error
    #[arg(long, default_value = DEFAULT_CASE_TIMEOUT, value_parser = crate::parse_positive_duration)]
    pub case_timeout: Duration,
}

impl Default for LifecycleArgs {
    fn default() -> Self {
        let d = |s: &str| humantime::parse_duration(s).expect("a valid default duration");
        LifecycleArgs {
            experts: DEFAULT_EXPERTS,
            domains: DEFAULT_DOMAINS,
            tenants: DEFAULT_TENANTS,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            poll: d(DEFAULT_POLL),
            expert_poll: d(DEFAULT_EXPERT_POLL),
            case_timeout: d(DEFAULT_CASE_TIMEOUT),
        }
    }
}

/// What the expert workers did, for the figures.
#[derive(Default)]
struct ExpertStats {
    polls: AtomicU64,
    accepted: AtomicU64,
    resolved: AtomicU64,
    /// Unexpected answers (by status; 0 for a transport error) on any
    /// expert request.
    errors: Mutex<BTreeMap<u16, u64>>,
    first_error: FirstFailure,
}

impl ExpertStats {
    fn error(&self, e: OpError) {
        let key = match e {
            OpError::Status(s) => s,
            _ => 0,
        };
        *self.errors.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_default() += 1;
    }

    fn reset(&self) {
        self.polls.store(0, Relaxed);
        self.accepted.store(0, Relaxed);
        self.resolved.store(0, Relaxed);
        self.errors.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// Locks a side tally; a poisoned lock only means a worker panicked, and
/// the runner reports that.
fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct Lifecycle {
    create_url: Url,
    base_url: String,
    /// One per tenant; worker `w` is in tenant `w % len`.
    keys: Vec<HeaderValue>,
    /// The domains each tenant's experts serve, by tenant.
    domains_of: Vec<Vec<String>>,
    poll: Duration,
    case_timeout: Duration,
    /// From the create's 201 to the first GET showing the case routed.
    routed: Mutex<Tally>,
    /// Every GET of that polling: its latency is the figure's resolution.
    poll_gets: Mutex<Tally>,
    stats: Arc<ExpertStats>,
    experts: Vec<JoinHandle<()>>,
    client: Client,
    metrics: Url,
    /// The server's time-to-route histogram when the measured phase began.
    route_start: Mutex<Option<PromHistogram>>,
}

impl Drop for Lifecycle {
    /// The expert workers live as long as the scenario.
    fn drop(&mut self) {
        for h in &self.experts {
            h.abort();
        }
    }
}

/// Expert `i`'s tenant and domain (indexes) with `tenants` tenants and
/// `domains` domains: every tenant gets experts before any gets a second,
/// and each tenant's experts go round the domains.
fn placement(i: u32, tenants: u32, domains: u32) -> (usize, usize) {
    ((i % tenants) as usize, ((i / tenants) % domains) as usize)
}

/// The domains each tenant's experts serve, by tenant, without repeats.
fn domains_of(experts: u32, tenants: u32, domains: &[String]) -> Vec<Vec<String>> {
    let mut of = vec![Vec::new(); tenants as usize];
    for i in 0..experts {
        let (t, d) = placement(i, tenants, domains.len() as u32);
        if !of[t].contains(&domains[d]) {
            of[t].push(domains[d].clone());
        }
    }
    of
}

async fn seed(
    args: &LifecycleArgs,
    env: &Env,
    keys: &[String],
    domains: &[String],
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<String>> {
    let tenants = keys.len() as u32;
    let seed = ExpertSeed {
        scenario: NAME,
        name: "Load expert".into(),
        email: format!("load-life-{}", run_id()),
        domains: (0..args.experts)
            .map(|i| domains[placement(i, tenants, domains.len() as u32).1].clone())
            .collect(),
        max_concurrent: args.max_concurrent,
    };
    // Expert i registers with keys[i % tenants]: the same tenant as `placement`.
    seed_experts(env, keys, seed, interrupt).await
}

/// One simulated expert: poll the queue, accept and resolve each case,
/// poll again at once after work and after `idle` when there was none.
async fn expert_worker(client: Client, base: String, token: String, idle: Duration, stats: Arc<ExpertStats>) {
    let list = format!("{base}/experts/me/escalations?status=routed");
    let token = match HeaderValue::from_str(&token) {
        Ok(t) => t,
        Err(_) => return,
    };
    let answer = json!({
        "answer": {"verdict": "approved", "by": "switchboard-load"},
        "confidence": 0.9,
        "reasoning": "load test resolution",
    });
    loop {
        stats.polls.fetch_add(1, Relaxed);
        let req = client.get(&list).header("X-Expert-Token", token.clone()).send().await;
        let cases: Vec<CaseState> =
            match expect_status(req, 200, "GET /experts/me/escalations", &stats.first_error).await {
                Ok(resp) => match resp.json().await {
                    Ok(c) => c,
                    Err(e) => {
                        stats.first_error.note(|| format!("GET /experts/me/escalations body: {e}"));
                        stats.error(OpError::Outcome("bad body"));
                        Vec::new()
                    }
                },
                Err(e) => {
                    stats.error(e);
                    Vec::new()
                }
            };
        if cases.is_empty() {
            sleep(idle).await;
            continue;
        }
        for case in cases {
            let accept = format!("{base}/experts/me/escalations/{}/accept", case.id);
            let req = client.post(&accept).header("X-Expert-Token", token.clone()).send().await;
            match expect_status(req, 200, "POST .../accept", &stats.first_error).await {
                Ok(resp) => {
                    let _ = resp.bytes().await;
                    stats.accepted.fetch_add(1, Relaxed);
                }
                Err(e) => stats.error(e),
            }
            // Resolve even when accept failed: the spec allows it from `routed`.
            let resolve = format!("{base}/experts/me/escalations/{}/resolve", case.id);
            let req =
                client.post(&resolve).header("X-Expert-Token", token.clone()).json(&answer).send().await;
            match expect_status(req, 200, "POST .../resolve", &stats.first_error).await {
                Ok(resp) => {
                    let _ = resp.bytes().await;
                    stats.resolved.fetch_add(1, Relaxed);
                }
                Err(e) => stats.error(e),
            }
        }
    }
}

impl Lifecycle {
    pub async fn new(args: &LifecycleArgs, env: &Env, interrupt: &Interrupt) -> anyhow::Result<Self> {
        if args.experts < args.tenants {
            anyhow::bail!(
                "--experts {} is fewer than --tenants {}: every tenant needs an expert of its own",
                args.experts,
                args.tenants
            );
        }
        let keys = escalation_keys(env, NAME, args.tenants, interrupt).await?;
        let run = run_id();
        let domains: Vec<String> = (0..args.domains).map(|d| format!("load.life-{run}-{d}")).collect();
        // Fails fast on a refused key; the case is resolved once experts exist.
        check_can_create(env, &keys[0], &domains[0]).await?;
        let tokens = seed(args, env, &keys, &domains, interrupt).await?;
        let domains_of = domains_of(args.experts, keys.len() as u32, &domains);

        // Their own pool, sized for them, so the client workers' pool
        // (sized for --concurrency) does not close their connections.
        let client = Client::builder()
            .pool_max_idle_per_host(tokens.len())
            .timeout(env.timeout)
            .tcp_nodelay(true)
            .build()?;
        let stats = Arc::new(ExpertStats::default());
        let experts = tokens
            .into_iter()
            .map(|token| {
                tokio::spawn(expert_worker(
                    client.clone(),
                    env.base_url.clone(),
                    token,
                    args.expert_poll,
                    Arc::clone(&stats),
                ))
            })
            .collect();
        Ok(Lifecycle {
            create_url: env.url("/escalations")?,
            base_url: env.base_url.clone(),
            keys: keys.iter().map(|k| HeaderValue::from_str(k)).collect::<Result<_, _>>()?,
            domains_of,
            poll: args.poll,
            case_timeout: args.case_timeout,
            routed: Mutex::new(Tally::default()),
            poll_gets: Mutex::new(Tally::default()),
            stats,
            experts,
            client: env.client.clone(),
            metrics: env.url("/metrics")?,
            route_start: Mutex::new(None),
        })
    }

    async fn get_state(&self, ctx: &OpCtx<'_>, key: &HeaderValue, url: &str) -> Result<CaseState, OpError> {
        let resp = ctx.env.client.get(url).header("X-API-Key", key.clone()).send().await?;
        let status = resp.status().as_u16();
        if status != 200 {
            let _ = resp.bytes().await;
            return Err(OpError::Status(status));
        }
        resp.json::<CaseState>().await.map_err(|_| OpError::Outcome("bad body"))
    }

    /// Figures and the create→routed row, once the measured phase is over.
    async fn finish(&self, report: &mut ScenarioReport) -> ScenarioReport {
        let start = self.route_start.lock().unwrap_or_else(PoisonError::into_inner).take();
        let end = prom_histogram(&self.client, &self.metrics, TIME_TO_ROUTE).await;
        let server = start.zip(end).map(|(s, e)| e.since(&s));
        let server_ms = |q: f64| server.as_ref().and_then(|h| h.quantile(q)).map(|s| s * 1000.0);
        let secs = report.elapsed.as_secs_f64().max(f64::EPSILON);
        let routed = lock(&self.routed).clone();
        let gets = lock(&self.poll_gets).clone();
        let p = |t: &Tally, q: f64| (!t.hist.is_empty()).then(|| t.hist.value_at_quantile(q) as f64 / 1000.0);
        let errors: u64 = self.stats.errors.lock().unwrap_or_else(PoisonError::into_inner).values().sum();
        report.figures = vec![
            Figure::new("resolved/s", Some(report.throughput()), "/s"),
            Figure::new("create→routed p50", p(&routed, 0.5), "ms"),
            Figure::new("create→routed p99", p(&routed, 0.99), "ms"),
            Figure::new("create→routed poll interval", Some(self.poll.as_secs_f64() * 1000.0), "ms"),
            Figure::new("create→routed poll GET p50", p(&gets, 0.5), "ms"),
            Figure::new("server time to route p50 (/metrics buckets)", server_ms(0.5), "ms"),
            Figure::new("server time to route p99 (/metrics buckets)", server_ms(0.99), "ms"),
            Figure::new("expert queue polls/s", Some(self.stats.polls.load(Relaxed) as f64 / secs), "/s"),
            Figure::new("expert accepts", Some(self.stats.accepted.load(Relaxed) as f64), ""),
            Figure::new("expert resolves", Some(self.stats.resolved.load(Relaxed) as f64), ""),
            Figure::new("expert request errors", Some(errors as f64), ""),
        ];
        if errors > 0 {
            let by: Vec<String> = self
                .stats
                .errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(s, n)| if *s == 0 { format!("transport: {n}") } else { format!("{s}: {n}") })
                .collect();
            eprintln!(
                "{NAME}: expert requests failed ({}); first: {}",
                by.join(", "),
                self.stats.first_error.take().unwrap_or_default()
            );
        }
        ScenarioReport::latency_only(ROUTED, routed, report.elapsed)
    }
}

impl Scenario for Lifecycle {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn measured_phase_starts(&self) {
        *lock(&self.routed) = Tally::default();
        *lock(&self.poll_gets) = Tally::default();
        self.stats.reset();
        let now = prom_histogram(&self.client, &self.metrics, TIME_TO_ROUTE).await;
        *self.route_start.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    async fn op(&self, ctx: &OpCtx<'_>) -> OpResult {
        let tenant = ctx.worker % self.keys.len();
        let key = &self.keys[tenant];
        let domains = &self.domains_of[tenant];
        let i = (ctx.worker as u64).wrapping_add(ctx.seq) % domains.len() as u64;
        let body = json!({
            "domain": domains[i as usize],
            "query": format!("load test case {}-{}", ctx.worker, ctx.seq),
            "priority": "standard",
        });
        let resp = ctx
            .env
            .client
            .post(self.create_url.clone())
            .header("X-API-Key", key.clone())
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        if status != 201 {
            let _ = resp.bytes().await;
            return Err(OpError::Status(status));
        }
        let created: CaseState = resp.json().await.map_err(|_| OpError::Outcome("bad body"))?;
        let created_at = Instant::now();
        let deadline = created_at + self.case_timeout;

        let detail = format!("{}/escalations/{}", self.base_url, created.id);
        loop {
            let sent = Instant::now();
            let state = self.get_state(ctx, key, &detail).await?;
            let seen = Instant::now();
            lock(&self.poll_gets).record(Ok(200), seen - sent);
            match state.status.as_str() {
                "pending" if seen < deadline => sleep(self.poll).await,
                "pending" => return Err(OpError::Outcome("not routed in time")),
                "routed" | "in_review" | "resolved" => {
                    lock(&self.routed).record(Ok(200), seen - created_at);
                    break;
                }
                "expired" => return Err(OpError::Outcome("expired")),
                "cancelled" => return Err(OpError::Outcome("cancelled")),
                _ => return Err(OpError::Outcome("unknown status")),
            }
        }

        // Well under the client's --timeout (30 s by default).
        let wait = format!("{detail}/wait?timeout=10");
        loop {
            let state = self.get_state(ctx, key, &wait).await?;
            match state.status.as_str() {
                "resolved" => return Ok(200),
                "expired" => return Err(OpError::Outcome("expired")),
                "cancelled" => return Err(OpError::Outcome("cancelled")),
                _ if Instant::now() >= deadline => return Err(OpError::Outcome("not resolved in time")),
                _ => {}
            }
        }
    }
}

pub async fn run(
    args: &LifecycleArgs,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let scenario = Arc::new(Lifecycle::new(args, env, interrupt).await?);
    let mut report = runner::run(Arc::clone(&scenario), env, cfg, interrupt).await?;
    let routed = scenario.finish(&mut report).await;
    Ok(vec![report, routed])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenant_gets_experts_and_they_go_round_the_domains() {
        let domains: Vec<String> = (0..3).map(|d| format!("d{d}")).collect();
        // One tenant: as before, expert i in domain i mod 3.
        assert_eq!(domains_of(5, 1, &domains), vec![vec!["d0", "d1", "d2"]]);
        // Two tenants, 4 experts: each tenant has two, in d0 and d1.
        assert_eq!(domains_of(4, 2, &domains), vec![vec!["d0", "d1"], vec!["d0", "d1"]]);
        // As many experts as tenants: one each, all in d0.
        assert_eq!(domains_of(3, 3, &domains), vec![vec!["d0"], vec!["d0"], vec!["d0"]]);
        assert_eq!(placement(7, 2, 3), (1, 0));
    }
}
