//! Does routing stay fast as a domain's experts grow, and how much memory
//! do many experts and open cases take?
//!
//! One fresh domain per run; its experts are topped up size by size (100,
//! then 9,900 more, then 90,000 more), so "size" is the number of experts
//! eligible in the domain. Experts of earlier runs stay on the server but
//! serve other domains. At each size a batch of cases is routed with only a
//! few in flight, so the latency is routing, not queueing; each case is
//! cancelled once seen routed, which frees its expert's slot.
//!
//! With `--rate`, the measured cases of each size (and their warm-up) arrive
//! open loop at that rate, at most `--in-flight` at once; each latency then
//! also holds how late its case started. Seeding and the open cases stay
//! closed loop at `--concurrency`: they prepare, they are not the figure.
//!
//! Rows: `scale` is the seeding (POST /experts per second), `scale@<size>`
//! the create→routed latency at each size, `scale open cases` the creates
//! of the cases left open for the memory reading.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use reqwest::header::HeaderValue;
use reqwest::Client;
use serde_json::json;
use tokio::time::{sleep, Instant};

use super::tenants::escalation_keys;
use super::{
    batch, batch_at, check_can_create, expect_status, prom_histogram, resident_memory_bytes, run_id,
    CaseState, Env, FirstFailure, OpError, TIME_TO_ROUTE,
};
use crate::report::{error_breakdown, thousands, Cmp, Figure, Goal, ScenarioReport, Tally};
use crate::runner::{Interrupt, RunConfig};

pub const NAME: &str = "scale";

const DEFAULT_SIZES: [u64; 3] = [100, 10_000, 100_000];
const DEFAULT_CASES: u64 = 1000;
const DEFAULT_IN_FLIGHT: u32 = 4;
const DEFAULT_POLL: &str = "1ms";
const DEFAULT_OPEN_CASES: u64 = 100_000;
const DEFAULT_MAX_CONCURRENT: u32 = 10;
/// A case not routed within this counts as an error.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(30);
/// The goals are stated for these sizes.
const GOAL_EXPERTS: u64 = 100_000;
const GOAL_OPEN_CASES: u64 = 100_000;
const RATIO_GOAL: f64 = 1.5;
const MEMORY_GOAL_MB: f64 = 600.0;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ScaleArgs {
    /// Experts in the domain at each step, increasing, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "100,10000,100000",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub sizes: Vec<u64>,
    /// Cases routed (and measured) at each size
    #[arg(long, default_value_t = DEFAULT_CASES, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,
    /// Cases in flight at once while measuring (seeding uses --concurrency)
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub in_flight: u32,
    /// How often a new case is polled until it is routed: the resolution of
    /// create→routed
    #[arg(long, default_value = DEFAULT_POLL, value_parser = crate::parse_positive_duration)]
    pub poll: Duration,
    /// Cases left open (in a domain no expert serves) before reading memory
    #[arg(long, default_value_t = DEFAULT_OPEN_CASES)]
    pub open_cases: u64,
    /// Cases each seeded expert may take at once
    #[arg(long, default_value_t = DEFAULT_MAX_CONCURRENT, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_concurrent: u32,
    /// Set by `all`, which runs smaller sizes: says so when it runs.
    #[arg(skip)]
    pub reduced: bool,
}

impl Default for ScaleArgs {
    fn default() -> Self {
        ScaleArgs {
            sizes: DEFAULT_SIZES.to_vec(),
            cases: DEFAULT_CASES,
            in_flight: DEFAULT_IN_FLIGHT,
            poll: humantime::parse_duration(DEFAULT_POLL).expect("a valid default duration"),
            open_cases: DEFAULT_OPEN_CASES,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            reduced: false,
        }
    }
}

impl ScaleArgs {
    /// What `all` runs: 100 and 10,000 experts and 10,000 open cases. The
    /// full sizes add 100,000 experts and 100,000 open cases to the server
    /// on every run, which would weigh on every later run against it.
    pub fn for_all() -> Self {
        ScaleArgs { sizes: vec![100, 10_000], open_cases: 10_000, reduced: true, ..ScaleArgs::default() }
    }
}

fn ms(t: &Tally, q: f64) -> Option<f64> {
    (!t.hist.is_empty()).then(|| t.hist.value_at_quantile(q) as f64 / 1000.0)
}

fn bail_on_errors(what: &str, tally: &Tally, first: &FirstFailure) -> anyhow::Result<()> {
    if tally.errors() > 0 {
        anyhow::bail!(
            "{what}: {} of {} failed ({}); first: {}",
            tally.errors(),
            tally.ops,
            error_breakdown(tally),
            first.take().unwrap_or_default()
        );
    }
    Ok(())
}

/// What every step needs, shared by the batch closures.
struct Ctx {
    client: Client,
    base: String,
    key: HeaderValue,
    run: String,
    domain: String,
    open_domain: String,
    max_concurrent: u32,
    poll: Duration,
    first: FirstFailure,
    poll_gets: Mutex<Tally>,
    cancel_failures: AtomicU64,
}

impl Ctx {
    async fn add_expert(&self, i: u64) -> Result<Duration, OpError> {
        let body = json!({
            "name": format!("Load scale expert {i}"),
            "email": format!("load-scale-{}-{i}@example.com", self.run),
            "domains": [self.domain],
            "max_concurrent": self.max_concurrent,
        });
        let start = Instant::now();
        let req = self
            .client
            .post(format!("{}/experts", self.base))
            .header("X-API-Key", self.key.clone())
            .json(&body);
        let resp = expect_status(req.send().await, 201, "POST /experts", &self.first).await?;
        resp.bytes().await?;
        Ok(start.elapsed())
    }

    async fn create(&self, domain: &str, priority: &str) -> Result<(String, Duration), OpError> {
        let body = json!({"domain": domain, "query": "load test scale case", "priority": priority});
        let start = Instant::now();
        let req = self
            .client
            .post(format!("{}/escalations", self.base))
            .header("X-API-Key", self.key.clone())
            .json(&body);
        let resp = expect_status(req.send().await, 201, "POST /escalations", &self.first).await?;
        let created: CaseState = resp.json().await.map_err(|e| {
            self.first.note(|| format!("POST /escalations 201 body: {e}"));
            OpError::Outcome("bad body")
        })?;
        Ok((created.id, start.elapsed()))
    }

    /// Create, poll until routed (latency from the 201), cancel.
    async fn route_one(&self) -> Result<Duration, OpError> {
        let (id, _) = self.create(&self.domain, "standard").await?;
        let created = Instant::now();
        let url = format!("{}/escalations/{id}", self.base);
        let latency = loop {
            let sent = Instant::now();
            let req = self.client.get(&url).header("X-API-Key", self.key.clone()).send().await;
            let resp = expect_status(req, 200, "GET /escalations/{id}", &self.first).await?;
            let state: CaseState = resp.json().await.map_err(|_| OpError::Outcome("bad body"))?;
            let seen = Instant::now();
            self.poll_gets.lock().unwrap_or_else(PoisonError::into_inner).record(Ok(200), seen - sent);
            match state.status.as_str() {
                "pending" if seen - created < ROUTE_TIMEOUT => sleep(self.poll).await,
                "pending" => return Err(OpError::Outcome("not routed in time")),
                "routed" | "in_review" | "resolved" => break seen - created,
                "expired" => return Err(OpError::Outcome("expired")),
                "cancelled" => return Err(OpError::Outcome("cancelled")),
                _ => return Err(OpError::Outcome("unknown status")),
            }
        };
        // Frees the expert's slot for the next cases. Not part of the figure.
        let req =
            self.client.post(format!("{url}/cancel")).header("X-API-Key", self.key.clone()).send().await;
        match expect_status(req, 200, "POST /escalations/{id}/cancel", &self.first).await {
            Ok(resp) => {
                let _ = resp.bytes().await;
            }
            Err(_) => {
                self.cancel_failures.fetch_add(1, Relaxed);
            }
        }
        Ok(latency)
    }
}

fn mb(bytes: Option<f64>) -> Option<f64> {
    bytes.map(|b| b / 1_000_000.0)
}

pub async fn run(
    args: &ScaleArgs,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<ScenarioReport>> {
    if args.sizes.is_empty() || args.sizes.windows(2).any(|w| w[0] >= w[1]) {
        anyhow::bail!("--sizes must be increasing, e.g. 100,10000,100000");
    }
    // One tenant: the figure is about the experts of one domain.
    let key = escalation_keys(env, NAME, 1, interrupt).await?.remove(0);
    let key = key.as_str();
    let run = run_id();
    let domain = format!("load.scale-{run}");
    let open_domain = format!("load.scale-{run}-open");
    if args.reduced {
        eprintln!(
            "{NAME}: `all` runs it with --sizes 100,10000 --open-cases 10000; \
             `switchboard-load scale` gives the full 100,000-expert figures"
        );
    }
    eprintln!(
        "{NAME}: sizes {} in {domain}, {} cases each ({} in flight, poll {}), then {} open cases; seeding at {} in flight",
        args.sizes.iter().map(|s| thousands(*s)).collect::<Vec<_>>().join(", "),
        thousands(args.cases),
        args.in_flight,
        humantime::format_duration(args.poll),
        thousands(args.open_cases),
        cfg.concurrency
    );
    // The pre-flight case is the first of the open ones.
    check_can_create(env, key, &open_domain).await?;
    let rss_start = resident_memory_bytes(env).await;

    let pool = cfg.concurrency.max(args.in_flight as usize);
    let client =
        Client::builder().pool_max_idle_per_host(pool).timeout(env.timeout).tcp_nodelay(true).build()?;
    let ctx = Arc::new(Ctx {
        client,
        base: env.base_url.clone(),
        key: HeaderValue::from_str(key)?,
        run,
        domain,
        open_domain,
        max_concurrent: args.max_concurrent,
        poll: args.poll,
        first: FirstFailure::default(),
        poll_gets: Mutex::new(Tally::default()),
        cancel_failures: AtomicU64::new(0),
    });

    let mut seeding = Tally::default();
    let mut seeding_time = Duration::ZERO;
    let mut seeded = 0u64;
    let mut sizes: Vec<ScenarioReport> = Vec::new();
    let mut p50s: Vec<(u64, Option<f64>)> = Vec::new();
    let mut server_p50s: Vec<(u64, Option<f64>)> = Vec::new();
    let mut server_figures = Vec::new();
    let metrics = env.url("/metrics")?;

    for &size in &args.sizes {
        if *interrupt.borrow() {
            break;
        }
        let from = seeded;
        let c = Arc::clone(&ctx);
        let label = format!("seeding experts {}..{}", thousands(from), thousands(size));
        let (tally, took) = batch(&label, size - from, cfg.concurrency, interrupt, move |i| {
            let c = Arc::clone(&c);
            async move { c.add_expert(from + i).await }
        })
        .await?;
        bail_on_errors("seeding experts", &tally, &ctx.first)?;
        seeding.merge(&tally)?;
        seeding_time += took;
        seeded = from + tally.ok;
        eprintln!(
            "{NAME}: {} experts in the domain (+{} in {:.1}s)",
            thousands(seeded),
            thousands(tally.ok),
            took.as_secs_f64()
        );
        if *interrupt.borrow() {
            break;
        }

        let c = Arc::clone(&ctx);
        let warm = (args.cases / 10).clamp(1, 100);
        batch_at("warm-up", warm, args.in_flight as usize, cfg.rate, interrupt, move |_| {
            let c = Arc::clone(&c);
            async move { c.route_one().await }
        })
        .await?;
        *ctx.poll_gets.lock().unwrap_or_else(PoisonError::into_inner) = Tally::default();
        let before = prom_histogram(&env.client, &metrics, TIME_TO_ROUTE).await;
        let c = Arc::clone(&ctx);
        let (tally, took, schedule) =
            batch_at("routing", args.cases, args.in_flight as usize, cfg.rate, interrupt, move |_| {
                let c = Arc::clone(&c);
                async move { c.route_one().await }
            })
            .await?;
        if let Some(first) = ctx.first.take() {
            eprintln!(
                "{NAME}@{size}: {} failed ({}); first: {first}",
                tally.errors(),
                error_breakdown(&tally)
            );
        }
        let p50 = ms(&tally, 0.5);
        eprintln!(
            "{NAME}@{size}: create→routed p50 {} ms, p99 {} ms",
            p50.map_or("n/a".into(), |v| format!("{v:.2}")),
            ms(&tally, 0.99).map_or("n/a".into(), |v| format!("{v:.2}"))
        );
        p50s.push((size, p50));
        let after = prom_histogram(&env.client, &metrics, TIME_TO_ROUTE).await;
        let server = before.zip(after).map(|(b, a)| a.since(&b));
        let server_ms = |q: f64| server.as_ref().and_then(|h| h.quantile(q)).map(|s| s * 1000.0);
        server_p50s.push((size, server_ms(0.5)));
        server_figures.push(Figure::new(
            format!("server time to route p50 @{} (/metrics buckets)", thousands(size)),
            server_ms(0.5),
            "ms",
        ));
        server_figures.push(Figure::new(
            format!("server time to route p99 @{} (/metrics buckets)", thousands(size)),
            server_ms(0.99),
            "ms",
        ));
        let mut row = ScenarioReport::latency_only(format!("{NAME}@{size}"), tally, took);
        row.open_loop = schedule;
        sizes.push(row);
    }
    let rss_experts = resident_memory_bytes(env).await;

    let mut open_row = None;
    let mut opened = 1u64; // the pre-flight case
    if args.open_cases > 1 && !*interrupt.borrow() {
        let c = Arc::clone(&ctx);
        let (tally, took) =
            batch("opening cases", args.open_cases - 1, cfg.concurrency, interrupt, move |_| {
                let c = Arc::clone(&c);
                async move { c.create(&c.open_domain, "batch").await.map(|(_, latency)| latency) }
            })
            .await?;
        bail_on_errors("opening cases", &tally, &ctx.first)?;
        opened += tally.ok;
        eprintln!(
            "{NAME}: {} open cases in {} ({:.1}s)",
            thousands(opened),
            ctx.open_domain,
            took.as_secs_f64()
        );
        open_row = Some(ScenarioReport::new(format!("{NAME} open cases"), tally, took));
    }
    let rss_all = resident_memory_bytes(env).await;

    // Figures, on the first row.
    let mut figures = Vec::new();
    let ratio = |p50s: &[(u64, Option<f64>)], what: &str| match (p50s.first(), p50s.last()) {
        (Some(&(first, Some(lo))), Some(&(last, Some(hi)))) if last != first && lo > 0.0 => {
            let note = (first != DEFAULT_SIZES[0] || last != GOAL_EXPERTS)
                .then(|| "goal set for 100,000 ÷ 100".into());
            Some(
                Figure::new(
                    format!("{what} p50 {} ÷ {}", thousands(last), thousands(first)),
                    Some(hi / lo),
                    "x",
                )
                .with_goal(Goal::new(Cmp::AtMost, RATIO_GOAL, note)),
            )
        }
        _ => None,
    };
    figures.extend(ratio(&p50s, "create→routed (client)"));
    figures.extend(ratio(&server_p50s, "server time to route"));
    figures.extend(server_figures);
    let gets = ctx.poll_gets.lock().unwrap_or_else(PoisonError::into_inner).clone();
    figures.push(Figure::new("create→routed poll interval", Some(args.poll.as_secs_f64() * 1000.0), "ms"));
    figures.push(Figure::new("create→routed poll GET p50 (last size)", ms(&gets, 0.5), "ms"));
    figures.push(Figure::new("cancels that failed", Some(ctx.cancel_failures.load(Relaxed) as f64), ""));
    figures.push(Figure::new("resident memory at start", mb(rss_start), "MB"));
    figures.push(Figure::new(
        format!("resident memory, {} experts", thousands(seeded)),
        mb(rss_experts),
        "MB",
    ));
    let mut memory = Figure::new(
        format!("resident memory, {} experts + {} open cases", thousands(seeded), thousands(opened)),
        mb(rss_all),
        "MB",
    );
    if seeded >= GOAL_EXPERTS && opened >= GOAL_OPEN_CASES {
        memory = memory.with_goal(Goal::new(Cmp::Below, MEMORY_GOAL_MB, None));
    }
    figures.push(memory);
    if rss_all.is_none() {
        eprintln!("{NAME}: /metrics has no process_resident_memory_bytes: memory is n/a");
    }

    let mut head = ScenarioReport::new(NAME, seeding, seeding_time);
    head.figures = figures;
    let mut rows = vec![head];
    rows.extend(sizes);
    rows.extend(open_row);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_runs_smaller_sizes_than_the_default() {
        let full = ScaleArgs::default();
        let light = ScaleArgs::for_all();
        assert_eq!(full.sizes, vec![100, 10_000, 100_000]);
        assert!(light.sizes.iter().max() < full.sizes.iter().max());
        assert!(light.reduced && !full.reduced);
    }
}
