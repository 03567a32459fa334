//! How long does a tenant take from deploy to running, and how much memory
//! does a running tenant cost?
//!
//! Each step creates that many new tenants through the Platform API, deploys
//! them all (--concurrency at a time: deploy, then poll its status every
//! --poll until it is running) and then reads memory: the server's own
//! `process_resident_memory_bytes` before and after the step, and, on the
//! `process` runtime, the resident memory of the tenants' children from the
//! resource sampler (`GET /api/monitoring/resources`). The runtime is the
//! server's (`SWITCHBOARD_TENANT_RUNTIME`); it is read from the tenants'
//! status (a port means `process`). At the end every tenant it created is
//! stopped and deleted, unless --keep.
//!
//! The children's figure is the sampler's: resident memory, which counts in
//! every child the pages all children share (the `switchboard` binary's
//! code), so summed over children it overstates what a child adds.
//!
//! Rows: `deploy` is the tenant creates (POST /api/tenants per second),
//! `deploy@<n>` the deploy→running latency at each step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use reqwest::header::HeaderValue;
use reqwest::Client;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{sleep, Instant};

use super::{batch, body_excerpt, expect_status, resident_memory_bytes, run_id, Env, FirstFailure, OpError};
use crate::report::{error_breakdown, thousands, Figure, ScenarioReport, Tally};
use crate::runner::{Interrupt, RunConfig};

pub const NAME: &str = "deploy";

const DEFAULT_TENANTS: [u64; 3] = [1, 100, 1000];
const DEFAULT_POLL: &str = "5ms";
const DEFAULT_RUNNING_TIMEOUT: &str = "60s";
/// How long to wait for every tenant of a step to have a resource sample
/// taken while it runs.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `GET /api/monitoring/resources` is read meanwhile.
const SAMPLE_POLL: Duration = Duration::from_millis(500);
/// Memory figures are in KB of 1,000 bytes (as `scale`'s MB are 10^6).
const KB: f64 = 1000.0;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct DeployArgs {
    /// New tenants created and deployed at each step, comma-separated (a
    /// list of steps here, unlike the other scenarios' --tenants)
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub tenants: Vec<u64>,
    /// How often a deployed tenant's status is polled until it is running:
    /// the resolution of deploy→running
    #[arg(long, default_value = DEFAULT_POLL, value_parser = crate::parse_positive_duration)]
    pub poll: Duration,
    /// A tenant not running this long after its deploy counts as an error
    #[arg(long, default_value = DEFAULT_RUNNING_TIMEOUT, value_parser = crate::parse_positive_duration)]
    pub running_timeout: Duration,
}

impl Default for DeployArgs {
    fn default() -> Self {
        DeployArgs {
            tenants: DEFAULT_TENANTS.to_vec(),
            poll: humantime::parse_duration(DEFAULT_POLL).expect("a valid default duration"),
            running_timeout: humantime::parse_duration(DEFAULT_RUNNING_TIMEOUT)
                .expect("a valid default duration"),
        }
    }
}

impl DeployArgs {
    /// Before anything runs: a token that is there, accepted, and a
    /// super-admin's (the fleet's resources need one).
    pub async fn check(&self, env: &Env) -> anyhow::Result<()> {
        super::tenants::token(env, NAME)?;
        super::tenants::check_token(env).await.map_err(|e| anyhow::anyhow!("{NAME}: {e:#}"))
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

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Status {
    status: String,
    port: Option<u16>,
}

/// One row of `GET /api/monitoring/resources` (other fields ignored).
#[derive(Deserialize)]
struct Sample {
    tenant_id: String,
    mem_bytes: Option<i64>,
    recorded_at: String,
}

/// A tenant seen running: when (wall clock, to compare with the sampler's
/// `recorded_at`) and whether its status had a port.
#[derive(Clone, Copy)]
struct Running {
    at: SystemTime,
    port: bool,
}

/// What every step needs, shared by the batch closures.
struct Ctx {
    client: Client,
    base: String,
    auth: HeaderValue,
    run: String,
    poll: Duration,
    running_timeout: Duration,
    first: FirstFailure,
    /// Every tenant created, for the clean-up at the end.
    created: Mutex<Vec<String>>,
    /// The deploy requests' own answers, per step: how much of deploy→running
    /// is the server answering the POST.
    deploy_posts: Mutex<Tally>,
    poll_gets: Mutex<Tally>,
}

impl Ctx {
    async fn create(&self, i: u64) -> Result<(String, Duration), OpError> {
        let body = json!({ "name": format!("load-deploy-{}-{i}", self.run) });
        let start = Instant::now();
        let req =
            self.client.post(format!("{}/api/tenants", self.base)).header("Authorization", self.auth.clone());
        let resp = expect_status(req.json(&body).send().await, 201, "POST /api/tenants", &self.first).await?;
        let created: Created = resp.json().await.map_err(|e| {
            self.first.note(|| format!("POST /api/tenants 201 body: {e}"));
            OpError::Outcome("bad body")
        })?;
        let took = start.elapsed();
        self.created.lock().unwrap_or_else(PoisonError::into_inner).push(created.id.clone());
        Ok((created.id, took))
    }

    /// Deploy, then poll the status until running: the latency from sending
    /// the deploy to the first answer that shows it running.
    async fn deploy(&self, id: &str) -> Result<(Duration, Running), OpError> {
        let url = format!("{}/api/tenants/{id}", self.base);
        let sent = Instant::now();
        let req = self.client.post(format!("{url}/deploy")).header("Authorization", self.auth.clone());
        let resp = expect_status(req.send().await, 200, "POST /api/tenants/{id}/deploy", &self.first).await?;
        resp.bytes().await?;
        self.deploy_posts.lock().unwrap_or_else(PoisonError::into_inner).record(Ok(200), sent.elapsed());
        let status_url = format!("{url}/status");
        loop {
            let asked = Instant::now();
            let req = self.client.get(&status_url).header("Authorization", self.auth.clone()).send().await;
            let resp = expect_status(req, 200, "GET /api/tenants/{id}/status", &self.first).await?;
            let status: Status = resp.json().await.map_err(|e| {
                self.first.note(|| format!("GET /api/tenants/{{id}}/status body: {e}"));
                OpError::Outcome("bad body")
            })?;
            let seen = Instant::now();
            self.poll_gets.lock().unwrap_or_else(PoisonError::into_inner).record(Ok(200), seen - asked);
            match status.status.as_str() {
                "running" => {
                    let running = Running { at: SystemTime::now(), port: status.port.is_some() };
                    return Ok((seen - sent, running));
                }
                "deploying" | "draft" if seen - sent < self.running_timeout => sleep(self.poll).await,
                "deploying" | "draft" => {
                    self.first.note(|| {
                        format!(
                            "tenant {id} still {} {} after its deploy",
                            status.status,
                            humantime::format_duration(self.running_timeout)
                        )
                    });
                    return Err(OpError::Outcome("not running in time"));
                }
                "error" => {
                    let log = self.log_tail(&url).await;
                    self.first.note(|| format!("tenant {id} went to error after its deploy; its log: {log}"));
                    return Err(OpError::Outcome("error"));
                }
                "stopped" => {
                    self.first.note(|| format!("tenant {id} showed stopped after its deploy"));
                    return Err(OpError::Outcome("stopped"));
                }
                other => {
                    self.first.note(|| format!("tenant {id}: unknown status {other:?}"));
                    return Err(OpError::Outcome("unknown status"));
                }
            }
        }
    }

    /// The last lines of a tenant's log, to say why it failed.
    async fn log_tail(&self, tenant_url: &str) -> String {
        let req =
            self.client.get(format!("{tenant_url}/logs?tail=5")).header("Authorization", self.auth.clone());
        match req.send().await {
            Ok(resp) => body_excerpt(resp).await,
            Err(e) => format!("(GET logs failed: {e})"),
        }
    }

    /// Stop, then delete. A tenant never deployed answers 409 to the stop.
    async fn remove(&self, id: &str) -> Result<Duration, OpError> {
        let url = format!("{}/api/tenants/{id}", self.base);
        let start = Instant::now();
        let req = self.client.post(format!("{url}/stop")).header("Authorization", self.auth.clone());
        let resp = req.send().await.map_err(|e| {
            self.first.note(|| format!("POST /api/tenants/{{id}}/stop: {e}"));
            OpError::from(e)
        })?;
        let status = resp.status().as_u16();
        if status != 200 && status != 409 {
            let detail = body_excerpt(resp).await;
            self.first.note(|| format!("POST /api/tenants/{{id}}/stop answered {status}: {detail}"));
            return Err(OpError::Status(status));
        }
        resp.bytes().await?;
        let req = self.client.delete(&url).header("Authorization", self.auth.clone());
        let resp = expect_status(req.send().await, 200, "DELETE /api/tenants/{id}", &self.first).await?;
        resp.bytes().await?;
        Ok(start.elapsed())
    }

    /// The latest resource sample of every tenant that has one.
    async fn samples(&self) -> Result<Vec<Sample>, String> {
        let req = self
            .client
            .get(format!("{}/api/monitoring/resources", self.base))
            .header("Authorization", self.auth.clone());
        let resp = req.send().await.map_err(|e| format!("GET /api/monitoring/resources: {e}"))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(format!(
                "GET /api/monitoring/resources answered {status}: {}",
                body_excerpt(resp).await
            ));
        }
        resp.json().await.map_err(|e| format!("GET /api/monitoring/resources body: {e}"))
    }

    /// Polls the sampler's figures until every tenant of `step` has a sample
    /// taken while it ran (its `mem_bytes` set, or recorded no earlier than
    /// the second it was seen running: `recorded_at` has whole seconds), for
    /// at most [`SAMPLE_TIMEOUT`]. Then the children's resident memory per
    /// tenant in bytes, `None` when no sample has one (the embedded runtime).
    async fn children_memory(&self, step: &HashMap<String, Running>, interrupt: &Interrupt) -> Option<f64> {
        let started = Instant::now();
        loop {
            let last_problem = match self.samples().await {
                Ok(samples) => {
                    let fresh: Vec<&Sample> = samples
                        .iter()
                        .filter(|s| {
                            step.get(&s.tenant_id).is_some_and(|r| {
                                s.mem_bytes.is_some() || recorded_secs(&s.recorded_at) >= unix_secs(r.at)
                            })
                        })
                        .collect();
                    if fresh.len() >= step.len() {
                        let with_mem: Vec<f64> =
                            fresh.iter().filter_map(|s| s.mem_bytes).map(|b| b as f64).collect();
                        if with_mem.is_empty() {
                            return None;
                        }
                        if with_mem.len() < fresh.len() {
                            eprintln!(
                                "{NAME}: {} of {} tenants' samples have no mem_bytes; children RSS is over the others",
                                thousands((fresh.len() - with_mem.len()) as u64),
                                thousands(fresh.len() as u64)
                            );
                        }
                        return Some(with_mem.iter().sum::<f64>() / with_mem.len() as f64);
                    }
                    format!(
                        "{} of {} tenants had a sample taken while running",
                        thousands(fresh.len() as u64),
                        thousands(step.len() as u64)
                    )
                }
                Err(e) => e,
            };
            if started.elapsed() >= SAMPLE_TIMEOUT || *interrupt.borrow() {
                eprintln!(
                    "{NAME}: children memory n/a: after {}s, {last_problem} (is the server running with \
                     SWITCHBOARD_RESOURCE_SAMPLE_INTERVAL=1s?)",
                    SAMPLE_TIMEOUT.as_secs()
                );
                return None;
            }
            sleep(SAMPLE_POLL).await;
        }
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2026-02-21T03:14:00Z` in seconds since the epoch; 0 when unreadable.
fn recorded_secs(rfc3339: &str) -> u64 {
    humantime::parse_rfc3339(rfc3339.trim()).map_or(0, unix_secs)
}

fn kb(bytes: Option<f64>) -> Option<f64> {
    bytes.map(|b| b / KB)
}

fn show(v: Option<f64>, unit: &str) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.1} {unit}"))
}

/// `process`, `embedded`, or both when tenants disagree.
fn runtime_of(running: &HashMap<String, Running>) -> &'static str {
    let with_port = running.values().filter(|r| r.port).count();
    match with_port {
        0 => "embedded",
        n if n == running.len() => "process",
        _ => "mixed (some tenants with a port, some without)",
    }
}

pub async fn run(
    args: &DeployArgs,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<ScenarioReport>> {
    if args.tenants.is_empty() {
        anyhow::bail!("--tenants needs at least one step, e.g. 1,100,1000");
    }
    let token = super::tenants::token(env, NAME)?;
    let total: u64 = args.tenants.iter().sum();
    eprintln!(
        "{NAME}: steps of {} new tenants ({} in all), {} deploys in flight, status polled every {}",
        args.tenants.iter().map(|s| thousands(*s)).collect::<Vec<_>>().join(", "),
        thousands(total),
        cfg.concurrency,
        humantime::format_duration(args.poll)
    );
    let client = Client::builder()
        .pool_max_idle_per_host(cfg.concurrency)
        .timeout(env.timeout)
        .tcp_nodelay(true)
        .build()?;
    let ctx = Arc::new(Ctx {
        client,
        base: env.base_url.clone(),
        auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
        run: run_id(),
        poll: args.poll,
        running_timeout: args.running_timeout,
        first: FirstFailure::default(),
        created: Mutex::new(Vec::new()),
        deploy_posts: Mutex::new(Tally::default()),
        poll_gets: Mutex::new(Tally::default()),
    });

    let measured = measure(args, env, cfg, interrupt, &ctx).await;

    if env.keep {
        let n = ctx.created.lock().unwrap_or_else(PoisonError::into_inner).len();
        eprintln!("{NAME}: --keep: the {} tenants it created stay on the server", thousands(n as u64));
    } else {
        clean_up(&ctx, cfg).await?;
    }
    measured
}

/// Stops and deletes every tenant created, even after Ctrl-C or a failed
/// step: a thousand children should not be left running.
async fn clean_up(ctx: &Arc<Ctx>, cfg: &RunConfig) -> anyhow::Result<()> {
    let ids = std::mem::take(&mut *ctx.created.lock().unwrap_or_else(PoisonError::into_inner));
    if ids.is_empty() {
        return Ok(());
    }
    eprintln!(
        "{NAME}: stopping and deleting the {} tenants it created (--keep skips this)",
        thousands(ids.len() as u64)
    );
    ctx.first.take();
    // Not stopped by Ctrl-C: that is when cleaning up matters most.
    let (_never_tx, never) = watch::channel(false);
    let ids = Arc::new(ids);
    let (c, list) = (Arc::clone(ctx), Arc::clone(&ids));
    let (tally, took) =
        batch("stopping and deleting tenants", ids.len() as u64, cfg.concurrency, &never, move |i| {
            let (c, list) = (Arc::clone(&c), Arc::clone(&list));
            async move { c.remove(&list[i as usize]).await }
        })
        .await?;
    if tally.errors() > 0 {
        eprintln!(
            "{NAME}: clean-up: {} of {} tenants not removed ({}); first: {}",
            thousands(tally.errors()),
            thousands(tally.ops),
            error_breakdown(&tally),
            ctx.first.take().unwrap_or_default()
        );
    } else {
        eprintln!("{NAME}: removed {} tenants in {:.1}s", thousands(tally.ok), took.as_secs_f64());
    }
    Ok(())
}

async fn measure(
    args: &DeployArgs,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
    ctx: &Arc<Ctx>,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let mut creates = Tally::default();
    let mut creates_time = Duration::ZERO;
    let mut named = 0u64;
    let mut steps: Vec<ScenarioReport> = Vec::new();
    let mut figures = Vec::new();
    let mut runtimes: Vec<&'static str> = Vec::new();

    for &n in &args.tenants {
        if *interrupt.borrow() {
            break;
        }
        let rss_before = resident_memory_bytes(env).await;

        // Create the step's tenants.
        let ids = Arc::new(Mutex::new(vec![None::<String>; n as usize]));
        let (c, slots, from) = (Arc::clone(ctx), Arc::clone(&ids), named);
        let label = format!("creating {} tenants", thousands(n));
        let (tally, took) = batch(&label, n, cfg.concurrency, interrupt, move |i| {
            let (c, slots) = (Arc::clone(&c), Arc::clone(&slots));
            async move {
                let (id, latency) = c.create(from + i).await?;
                slots.lock().unwrap_or_else(PoisonError::into_inner)[i as usize] = Some(id);
                Ok(latency)
            }
        })
        .await?;
        named += n;
        bail_on_errors("creating tenants", &tally, &ctx.first)?;
        creates.merge(&tally)?;
        creates_time += took;
        if *interrupt.borrow() {
            break;
        }
        let ids: Arc<Vec<String>> = Arc::new(
            std::mem::take(&mut *ids.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .flatten()
                .collect(),
        );

        // Deploy them all and wait until each runs.
        let running = Arc::new(Mutex::new(HashMap::<String, Running>::new()));
        *ctx.poll_gets.lock().unwrap_or_else(PoisonError::into_inner) = Tally::default();
        *ctx.deploy_posts.lock().unwrap_or_else(PoisonError::into_inner) = Tally::default();
        let (c, list, seen) = (Arc::clone(ctx), Arc::clone(&ids), Arc::clone(&running));
        let label = format!("deploying {} tenants", thousands(n));
        let (tally, took) = batch(&label, ids.len() as u64, cfg.concurrency, interrupt, move |i| {
            let (c, list, seen) = (Arc::clone(&c), Arc::clone(&list), Arc::clone(&seen));
            async move {
                let id = &list[i as usize];
                let (latency, r) = c.deploy(id).await?;
                seen.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), r);
                Ok(latency)
            }
        })
        .await?;
        let rss_after = resident_memory_bytes(env).await;
        let running = std::mem::take(&mut *running.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(first) = ctx.first.take() {
            eprintln!("{NAME}@{n}: {} failed ({}); first: {first}", tally.errors(), error_breakdown(&tally));
        }
        let all_running = tally.errors() == 0 && tally.ok == n;
        let runtime = runtime_of(&running);
        if !running.is_empty() {
            runtimes.push(runtime);
        }
        eprintln!(
            "{NAME}@{n}: {} of {} running after {:.2}s on the {runtime} runtime; deploy→running p50 {} ms, p99 {} ms, max {} ms",
            thousands(running.len() as u64),
            thousands(n),
            took.as_secs_f64(),
            ms(&tally, 0.5).map_or("n/a".into(), |v| format!("{v:.1}")),
            ms(&tally, 0.99).map_or("n/a".into(), |v| format!("{v:.1}")),
            ms(&tally, 1.0).map_or("n/a".into(), |v| format!("{v:.1}")),
        );

        // Memory: the server's growth over the step, and the children's.
        let count = running.len() as f64;
        let server = match (rss_before, rss_after) {
            (Some(b), Some(a)) if count > 0.0 => Some((a - b) / count),
            _ => None,
        };
        let children = if running.is_empty() || *interrupt.borrow() {
            None
        } else {
            ctx.children_memory(&running, interrupt).await
        };
        let embedded = runtime == "embedded";
        let total_mem = match (server, children) {
            (Some(s), Some(c)) => Some(s + c),
            (Some(s), None) if embedded => Some(s),
            _ => None,
        };
        eprintln!(
            "{NAME}@{n}: per tenant: server RSS growth {}, children RSS {}, total {}",
            show(kb(server), "KB"),
            show(kb(children), "KB"),
            show(kb(total_mem), "KB"),
        );
        if rss_before.is_none() || rss_after.is_none() {
            eprintln!("{NAME}: /metrics has no process_resident_memory_bytes: server memory is n/a");
        }

        let at = thousands(n);
        figures.push(Figure::new(format!("deploy→running p50 @{at}"), ms(&tally, 0.5), "ms"));
        figures.push(Figure::new(format!("deploy→running p99 @{at}"), ms(&tally, 0.99), "ms"));
        figures.push(Figure::new(format!("deploy→running max @{at}"), ms(&tally, 1.0), "ms"));
        let posts = ctx.deploy_posts.lock().unwrap_or_else(PoisonError::into_inner).clone();
        figures.push(Figure::new(format!("of which POST deploy p50 @{at}"), ms(&posts, 0.5), "ms"));
        figures.push(Figure::new(format!("of which POST deploy p99 @{at}"), ms(&posts, 0.99), "ms"));
        figures.push(Figure::new(
            format!("all {at} running after"),
            all_running.then_some(took.as_secs_f64()),
            "s",
        ));
        figures.push(Figure::new(
            format!("server RSS growth per tenant @{at} ({runtime})"),
            kb(server),
            "KB",
        ));
        figures.push(Figure::new(format!("children RSS per tenant @{at} ({runtime})"), kb(children), "KB"));
        figures.push(Figure::new(format!("total per tenant @{at} ({runtime})"), kb(total_mem), "KB"));
        steps.push(ScenarioReport::latency_only(format!("{NAME}@{n}"), tally, took));
    }

    runtimes.dedup();
    if let [one] = runtimes.as_slice() {
        eprintln!("{NAME}: tenant runtime: {one}");
    }
    let gets = ctx.poll_gets.lock().unwrap_or_else(PoisonError::into_inner).clone();
    figures.push(Figure::new("status poll interval", Some(ctx.poll.as_secs_f64() * 1000.0), "ms"));
    figures.push(Figure::new("status poll GET p50 (last step)", ms(&gets, 0.5), "ms"));

    let mut head = ScenarioReport::new(NAME, creates, creates_time);
    head.figures = figures;
    let mut rows = vec![head];
    rows.extend(steps);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_at_has_whole_seconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_771_643_640_750);
        assert_eq!(recorded_secs("2026-02-21T03:14:00Z"), unix_secs(t));
        assert_eq!(recorded_secs("not a time"), 0);
    }

    #[test]
    fn the_runtime_is_told_by_the_port() {
        let at = SystemTime::now();
        let mut seen = HashMap::new();
        seen.insert("a".to_string(), Running { at, port: false });
        assert_eq!(runtime_of(&seen), "embedded");
        seen.insert("b".to_string(), Running { at, port: true });
        assert!(runtime_of(&seen).starts_with("mixed"));
        seen.insert("a".to_string(), Running { at, port: true });
        assert_eq!(runtime_of(&seen), "process");
    }
}
