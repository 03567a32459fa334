//! Closed-loop workers, the clock, and the live progress bar.
//!
//! Each worker issues one operation, waits for it, and issues the next, so
//! the offered load adapts to the server: throughput is what the server
//! sustains at `concurrency` operations in flight.

use std::collections::VecDeque;
use std::future::pending;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use crate::report::{thousands, ScenarioReport, Tally};
use crate::scenarios::{Env, OpCtx, Scenario};

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Operations still in flight at the deadline are abandoned and not
    /// counted, so a run never outlasts its duration by a request timeout.
    Duration(Duration),
    /// Total operations across all workers.
    Count(u64),
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub concurrency: usize,
    pub limit: Limit,
    /// Run unmeasured first so connection set-up and cold caches stay out
    /// of the figures.
    pub warmup: Duration,
    pub progress: bool,
}

/// Becomes `true` on Ctrl-C; every phase stops as if its limit was reached.
pub type Interrupt = watch::Receiver<bool>;

/// Live counters for the progress bar. Atomics, not locks: every worker
/// bumps them once per operation.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
}

/// Warm-up (if any), then the measured phase. The caller keeps its own
/// handle on the scenario to read what it measured on the side afterwards.
pub async fn run<S: Scenario>(
    scenario: Arc<S>,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
) -> anyhow::Result<ScenarioReport> {
    let name = scenario.name();
    // On stderr so `--json` output on stdout stays one clean object.
    eprintln!("{}", describe(name, cfg));
    if !cfg.warmup.is_zero() && !*interrupt.borrow() {
        phase(&scenario, env, cfg, Limit::Duration(cfg.warmup), &format!("{name} (warm-up)"), interrupt)
            .await?;
    }
    scenario.measured_phase_starts().await;
    let (tally, elapsed) = phase(&scenario, env, cfg, cfg.limit, name, interrupt).await?;
    Ok(ScenarioReport::new(name, tally, elapsed))
}

fn describe(name: &str, cfg: &RunConfig) -> String {
    let limit = match cfg.limit {
        Limit::Duration(d) => humantime::format_duration(d).to_string(),
        Limit::Count(n) => format!("{} ops", thousands(n)),
    };
    format!(
        "{name}: {} workers, {limit}, warm-up {}",
        cfg.concurrency,
        humantime::format_duration(cfg.warmup)
    )
}

async fn phase<S: Scenario>(
    scenario: &Arc<S>,
    env: &Arc<Env>,
    cfg: &RunConfig,
    limit: Limit,
    label: &str,
    interrupt: &Interrupt,
) -> anyhow::Result<(Tally, Duration)> {
    let live = Arc::new(Live::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();

    // One task decides when to stop, so workers only watch a single flag.
    let deadline = match limit {
        Limit::Duration(d) => Some(start + d),
        Limit::Count(_) => None,
    };
    let mut interrupted = interrupt.clone();
    let stopper = tokio::spawn(async move {
        let until_deadline = async {
            match deadline {
                Some(d) => sleep_until(d).await,
                None => pending().await,
            }
        };
        let until_interrupt = async {
            // Err means main dropped the sender: no Ctrl-C can come any more.
            if interrupted.wait_for(|v| *v).await.is_err() {
                pending::<()>().await;
            }
        };
        tokio::select! {
            _ = until_deadline => {}
            _ = until_interrupt => {}
        }
        // Nobody listening just means every worker already finished.
        let _ = stop_tx.send(true);
    });

    let tickets = match limit {
        Limit::Count(n) => Some((Arc::new(AtomicU64::new(0)), n)),
        Limit::Duration(_) => None,
    };
    let workers: Vec<_> = (0..cfg.concurrency)
        .map(|id| {
            tokio::spawn(worker(
                Arc::clone(scenario),
                Arc::clone(env),
                id,
                tickets.clone(),
                stop_rx.clone(),
                Arc::clone(&live),
            ))
        })
        .collect();

    let bar = cfg.progress.then(|| progress_bar(label, limit, start, Arc::clone(&live)));

    let mut tally = Tally::default();
    let mut failure = None;
    for w in workers {
        match w.await {
            Ok(t) => tally.merge(&t)?,
            Err(e) => failure = Some(e),
        }
    }
    let elapsed = start.elapsed();
    stopper.abort();
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }
    if let Some(e) = failure {
        // A panicking scenario is a bug in this tool, not a server figure.
        anyhow::bail!("a worker of {label} failed: {e}");
    }
    Ok((tally, elapsed))
}

async fn worker<S: Scenario>(
    scenario: Arc<S>,
    env: Arc<Env>,
    id: usize,
    tickets: Option<(Arc<AtomicU64>, u64)>,
    mut stop: watch::Receiver<bool>,
    live: Arc<Live>,
) -> Tally {
    let mut tally = Tally::default();
    let mut seq = 0u64;
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        if let Some((next, total)) = &tickets {
            if next.fetch_add(1, Relaxed) >= *total {
                break;
            }
        }
        let ctx = OpCtx { env: &env, worker: id, seq };
        let started = Instant::now();
        let result = tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = scenario.op(&ctx) => r,
        };
        tally.record(result, started.elapsed());
        live.ops.fetch_add(1, Relaxed);
        if result.is_ok() {
            live.ok.fetch_add(1, Relaxed);
        } else {
            live.errors.fetch_add(1, Relaxed);
        }
        seq += 1;
    }
    tally
}

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);
/// The ok/s shown is over this window: one tick alone is too jumpy to read.
const RATE_WINDOW: Duration = Duration::from_secs(1);

fn progress_bar(
    label: &str,
    limit: Limit,
    start: Instant,
    live: Arc<Live>,
) -> (ProgressBar, tokio::task::JoinHandle<()>) {
    let len = match limit {
        Limit::Duration(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        Limit::Count(n) => n,
    };
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(5)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());

    let shown = bar.clone();
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut window: VecDeque<(Instant, u64)> = VecDeque::new();
        loop {
            interval.tick().await;
            let now = Instant::now();
            let ops = live.ops.load(Relaxed);
            let ok = live.ok.load(Relaxed);
            let errors = live.errors.load(Relaxed);

            window.push_back((now, ok));
            while window.len() > 2 && now - window[0].0 > RATE_WINDOW {
                window.pop_front();
            }
            let rate = match window.front() {
                Some(&(t0, ok0)) if now > t0 => (ok - ok0) as f64 / (now - t0).as_secs_f64(),
                _ => 0.0,
            };

            let done = match limit {
                Limit::Duration(d) => {
                    let el = now - start;
                    shown.set_position(u64::try_from(el.as_millis()).unwrap_or(u64::MAX));
                    format!("{:.1}s/{:.1}s", el.as_secs_f64(), d.as_secs_f64())
                }
                Limit::Count(n) => {
                    shown.set_position(ops);
                    format!("{}/{} ops", thousands(ops), thousands(n))
                }
            };
            shown.set_message(format!(
                "{done}  {} ok/s  {} errors",
                thousands(rate as u64),
                thousands(errors)
            ));
        }
    });
    (bar, ticker)
}
