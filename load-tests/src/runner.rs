//! The two ways of offering load, the clock, and the live progress bar.
//!
//! Closed loop (the default): each worker issues one operation, waits for
//! it, and issues the next, so the offered load adapts to the server:
//! throughput is what the server sustains at `concurrency` operations in
//! flight, and latency is each operation's own.
//!
//! Open loop (`--rate R`, [`open_loop`]): operation `i` is due at
//! `t0 + i/R` whatever became of the ones before it, as independent users
//! arrive. Its latency is measured from that due time, not from when it
//! could start, so a slow server or a saturated client cannot hide the
//! queueing it causes by delaying the next requests (coordinated omission).
//! At most `concurrency` operations are in flight: each borrows a slot id
//! `0..concurrency` and gives it back when done, so scenarios that keep
//! state per worker (an expert per worker, a worker's sessions) still see
//! exclusive worker ids. An operation that finds every slot busy waits for
//! one, and that wait is part of its latency.

use std::collections::VecDeque;
use std::future::{pending, Future};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use crate::report::{thousands, OpenLoop, ScenarioReport, Tally, LATE};
use crate::scenarios::{Env, OpCtx, OpResult, Scenario};

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Operations still in flight at the deadline are abandoned and not
    /// counted, so a run never outlasts its duration by a request timeout.
    /// In open loop too: scheduling stops at the deadline, operations in
    /// flight then are abandoned (and counted as such), and those that were
    /// due but never found a free slot are counted as not started.
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
    /// `--rate`: operations per second, open loop; `None` is closed loop.
    pub rate: Option<f64>,
}

impl RunConfig {
    /// The same run closed loop: the ceiling other figures are ratios to is
    /// always the most the server does, not the rate it was offered.
    pub fn closed(&self) -> RunConfig {
        RunConfig { rate: None, ..self.clone() }
    }
}

/// Becomes `true` on Ctrl-C; every phase stops as if its limit was reached.
pub type Interrupt = watch::Receiver<bool>;

/// Live counters for the progress bar. Atomics, not locks: every worker
/// bumps them once per operation.
#[derive(Default)]
pub struct Live {
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
    // Open loop warms up at the same rate: what is warmed is what is measured.
    if !cfg.warmup.is_zero() && !*interrupt.borrow() {
        phase(&scenario, env, cfg, Limit::Duration(cfg.warmup), &format!("{name} (warm-up)"), interrupt)
            .await?;
    }
    scenario.measured_phase_starts().await;
    let (tally, elapsed, open_loop) = phase(&scenario, env, cfg, cfg.limit, name, interrupt).await?;
    let mut report = ScenarioReport::new(name, tally, elapsed);
    report.open_loop = open_loop;
    Ok(report)
}

fn describe(name: &str, cfg: &RunConfig) -> String {
    let limit = match cfg.limit {
        Limit::Duration(d) => humantime::format_duration(d).to_string(),
        Limit::Count(n) => format!("{} ops", thousands(n)),
    };
    let mode = match cfg.rate {
        Some(r) => format!("open loop at {r}/s, at most {} in flight", cfg.concurrency),
        None => format!("{} workers", cfg.concurrency),
    };
    format!("{name}: {mode}, {limit}, warm-up {}", humantime::format_duration(cfg.warmup))
}

async fn phase<S: Scenario>(
    scenario: &Arc<S>,
    env: &Arc<Env>,
    cfg: &RunConfig,
    limit: Limit,
    label: &str,
    interrupt: &Interrupt,
) -> anyhow::Result<(Tally, Duration, Option<OpenLoop>)> {
    let live = Arc::new(Live::default());
    if let Some(rate) = cfg.rate {
        let bar = cfg.progress.then(|| progress_bar(label, limit, Instant::now(), Arc::clone(&live)));
        let (s, e) = (Arc::clone(scenario), Arc::clone(env));
        let result = open_loop(rate, cfg.concurrency, limit, interrupt, Some(Arc::clone(&live)), move |id| {
            let (s, e) = (Arc::clone(&s), Arc::clone(&e));
            async move {
                let ctx = OpCtx { env: &e, worker: id.slot, seq: id.seq };
                let started = Instant::now();
                let result = s.op(&ctx).await;
                (result, started.elapsed())
            }
        })
        .await;
        if let Some((bar, ticker)) = bar {
            ticker.abort();
            bar.finish_and_clear();
        }
        let (tally, elapsed, schedule) = result.map_err(|e| anyhow::anyhow!("{label}: {e:#}"))?;
        return Ok((tally, elapsed, Some(schedule)));
    }
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
    Ok((tally, elapsed, None))
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

/// Which operation of an open-loop phase: the slot it holds (`0..slots`,
/// exclusive while it runs), the slot's own operation counter, and its
/// place in the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpId {
    pub slot: usize,
    pub seq: u64,
    pub index: u64,
}

/// Resolves when Ctrl-C was pressed; never when no Ctrl-C can come any more.
async fn interrupted(rx: &mut Interrupt) {
    if rx.wait_for(|v| *v).await.is_err() {
        pending::<()>().await;
    }
}

/// The due time of operation `i` at `rate` per second.
fn due(t0: Instant, rate: f64, i: u64) -> Instant {
    t0 + Duration::from_secs_f64(i as f64 / rate)
}

/// How many operations are due strictly before `t`, by the same [`due`]
/// rounding the scheduler uses.
fn due_before(t0: Instant, rate: f64, t: Instant) -> u64 {
    let mut n = ((t - t0).as_secs_f64() * rate).ceil().max(0.0) as u64;
    while n > 0 && due(t0, rate, n - 1) >= t {
        n -= 1;
    }
    while due(t0, rate, n) < t {
        n += 1;
    }
    n
}

/// What an open-loop operation hands back: its result and its own latency,
/// from when it started. The scheduler adds the wait before the start.
type Done = (usize, u64, OpResult, Duration);

/// Runs operations open loop: operation `i` is due at `t0 + i/rate`, starts
/// then or as soon as one of `slots` slot ids is free, and is recorded with
/// the latency from its due time (its start lag plus what `op` measured
/// from its start). `op` gets the slot it holds. Stops scheduling at the
/// deadline of a [`Limit::Duration`] (abandoning what is in flight, as
/// closed loop does) or after the `n` operations of a [`Limit::Count`]
/// (waiting for them to finish), and on Ctrl-C.
///
/// Returns the tally, the elapsed time (to the deadline, or until the last
/// operation finished) and how the schedule was kept.
pub async fn open_loop<F, Fut>(
    rate: f64,
    slots: usize,
    limit: Limit,
    interrupt: &Interrupt,
    live: Option<Arc<Live>>,
    op: F,
) -> anyhow::Result<(Tally, Duration, OpenLoop)>
where
    F: Fn(OpId) -> Fut,
    Fut: Future<Output = (OpResult, Duration)> + Send + 'static,
{
    anyhow::ensure!(rate.is_finite() && rate > 0.0, "the rate must be above zero, not {rate}");
    let slots = slots.max(1);
    let t0 = Instant::now();
    let (deadline, total) = match limit {
        Limit::Duration(d) => (Some(t0 + d), None),
        Limit::Count(n) => (None, Some(n)),
    };
    let until_deadline = || async move {
        match deadline {
            Some(d) => sleep_until(d).await,
            None => pending().await,
        }
    };
    let mut interrupt = interrupt.clone();
    // Popped from the end: slot 0 is lent first, as worker 0 runs first in closed loop.
    let mut free: Vec<(usize, u64)> = (0..slots).rev().map(|s| (s, 0)).collect();
    let mut running: JoinSet<Done> = JoinSet::new();
    let mut tally = Tally::default();
    let late = Arc::new(AtomicU64::new(0));
    let max_lag_us = Arc::new(AtomicU64::new(0));
    let mut failure = None;
    let mut record = |done: Result<Done, tokio::task::JoinError>,
                      free: &mut Vec<(usize, u64)>,
                      tally: &mut Tally| match done {
        Ok((slot, seq, result, latency)) => {
            free.push((slot, seq + 1));
            tally.record(result, latency);
            if let Some(live) = &live {
                live.ops.fetch_add(1, Relaxed);
                let counter = if result.is_ok() { &live.ok } else { &live.errors };
                counter.fetch_add(1, Relaxed);
            }
        }
        // A panicking scenario is a bug in this tool; its slot is lost with it.
        Err(e) => failure = Some(e),
    };

    let mut started = 0u64;
    let mut last_start = t0;
    // Why scheduling ended early, if it did.
    let mut stopped_at: Option<Instant> = None;
    let mut ctrl_c = false;
    'schedule: loop {
        if total.is_some_and(|n| started >= n) {
            break;
        }
        let at = due(t0, rate, started);
        if deadline.is_some_and(|d| at >= d) {
            break;
        }
        // Until it is due, taking in what finishes meanwhile.
        loop {
            tokio::select! {
                biased;
                _ = interrupted(&mut interrupt) => {
                    (stopped_at, ctrl_c) = (Some(Instant::now()), true);
                    break 'schedule;
                }
                Some(done) = running.join_next(), if !running.is_empty() => record(done, &mut free, &mut tally),
                _ = sleep_until(at) => break,
            }
        }
        // Then a free slot, however long that takes: the wait is the point.
        let (slot, seq) = loop {
            if let Some(s) = free.pop() {
                break s;
            }
            tokio::select! {
                biased;
                _ = interrupted(&mut interrupt) => {
                    (stopped_at, ctrl_c) = (Some(Instant::now()), true);
                    break 'schedule;
                }
                _ = until_deadline() => {
                    stopped_at = deadline;
                    break 'schedule;
                }
                Some(done) = running.join_next(), if !running.is_empty() => record(done, &mut free, &mut tally),
            }
        };
        let fut = op(OpId { slot, seq, index: started });
        let (late, max_lag_us) = (Arc::clone(&late), Arc::clone(&max_lag_us));
        running.spawn(async move {
            let start = Instant::now();
            let lag = start.saturating_duration_since(at);
            if lag > LATE {
                late.fetch_add(1, Relaxed);
            }
            max_lag_us.fetch_max(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX), Relaxed);
            let (result, own) = fut.await;
            (slot, seq, result, lag + own)
        });
        started += 1;
        last_start = Instant::now();
    }

    // What is in flight: until the deadline (a duration), or to the end (a count).
    if !ctrl_c {
        loop {
            tokio::select! {
                biased;
                _ = interrupted(&mut interrupt) => {
                    ctrl_c = true;
                    break;
                }
                _ = until_deadline() => break,
                done = running.join_next() => match done {
                    Some(done) => record(done, &mut free, &mut tally),
                    // A count is done; a duration still runs to its deadline.
                    None if deadline.is_none() => break,
                    None => {
                        tokio::select! {
                            _ = interrupted(&mut interrupt) => ctrl_c = true,
                            _ = until_deadline() => {}
                        }
                        break;
                    }
                },
            }
        }
    }
    let end = Instant::now();
    let abandoned = running.len() as u64;
    running.abort_all();
    if let Some(e) = failure {
        anyhow::bail!("an operation failed: {e}");
    }

    // Scheduling ran from t0 to the deadline (or Ctrl-C); a count's window is
    // its last start plus one interval, so n operations on time give the rate.
    let window_end = match (stopped_at, deadline) {
        (Some(t), _) => t,
        (None, Some(d)) => d.min(end),
        (None, None) => last_start + Duration::from_secs_f64(1.0 / rate),
    };
    let window = (window_end - t0).as_secs_f64().max(1.0 / rate);
    let due_by_then = match (ctrl_c, deadline) {
        (true, _) => due_before(t0, rate, window_end),
        (false, Some(d)) => due_before(t0, rate, d),
        (false, None) => started,
    };
    let due_by_then = total.map_or(due_by_then, |n| due_by_then.min(n));
    let schedule = OpenLoop {
        target_rate: rate,
        achieved_rate: started as f64 / window,
        started,
        late: late.load(Relaxed),
        max_lag: Duration::from_micros(max_lag_us.load(Relaxed)),
        not_started: due_by_then.saturating_sub(started),
        abandoned,
    };
    let elapsed = match deadline {
        Some(d) if !ctrl_c => d - t0,
        _ => end - t0,
    };
    Ok((tally, elapsed, schedule))
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use tokio::time::sleep;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The latencies recorded, in µs, smallest first (each is exact in the
    /// histogram up to its 3 significant figures).
    fn recorded(t: &Tally) -> Vec<u64> {
        t.hist
            .iter_recorded()
            .flat_map(|v| std::iter::repeat_n(v.value_iterated_to(), v.count_at_value() as usize))
            .collect()
    }

    fn assert_recorded(t: &Tally, expected_ms: &[u64]) {
        let got = recorded(t);
        assert_eq!(got.len(), expected_ms.len(), "{got:?}");
        let mut want: Vec<u64> = expected_ms.iter().map(|m| m * 1000).collect();
        want.sort_unstable();
        for (g, w) in got.iter().zip(&want) {
            assert!(t.hist.equivalent(*g, *w), "recorded {got:?} µs, expected {want:?} µs");
        }
    }

    /// An interrupt that never fires.
    fn never() -> (watch::Sender<bool>, Interrupt) {
        watch::channel(false)
    }

    // Paused time: the clock only moves when every task waits on a timer,
    // and then straight to the next one, so every figure below is exact.
    #[tokio::test(start_paused = true)]
    async fn a_slow_operation_inflates_the_latency_of_those_due_behind_it() {
        let (_tx, interrupt) = never();
        // Every 100 ms, one slot; the first operation takes 350 ms, the rest 10 ms.
        let (tally, elapsed, schedule) =
            open_loop(10.0, 1, Limit::Count(5), &interrupt, None, |id| async move {
                let took = if id.index == 0 { ms(350) } else { ms(10) };
                sleep(took).await;
                (Ok(200), took)
            })
            .await
            .expect("runs");
        // Due at 0, 100, 200, 300, 400; started at 0, 350, 360, 370, 400.
        // Closed loop would have recorded 350, 10, 10, 10, 10.
        assert_recorded(&tally, &[350, 260, 170, 80, 10]);
        assert_eq!((tally.ops, tally.ok), (5, 5));
        assert_eq!(schedule.started, 5);
        assert_eq!(schedule.late, 3);
        assert_eq!(schedule.max_lag, ms(250));
        assert_eq!((schedule.not_started, schedule.abandoned), (0, 0));
        assert_eq!(elapsed, ms(410));
        assert!((schedule.achieved_rate - 10.0).abs() < 1e-9, "{}", schedule.achieved_rate);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_deadline_operations_in_flight_are_abandoned_and_those_due_are_counted() {
        let (_tx, interrupt) = never();
        // 10 due in the second; each takes 300 ms on the one slot.
        let (tally, elapsed, schedule) =
            open_loop(10.0, 1, Limit::Duration(ms(1000)), &interrupt, None, |_| async move {
                sleep(ms(300)).await;
                (Ok(200), ms(300))
            })
            .await
            .expect("runs");
        // Started at 0, 300, 600, 900 (due 0, 100, 200, 300); the fourth is
        // still running at 1,000 ms, and the six due from 400 ms on never start.
        assert_recorded(&tally, &[300, 500, 700]);
        assert_eq!(schedule.started, 4);
        assert_eq!(schedule.abandoned, 1);
        assert_eq!(schedule.not_started, 6);
        assert_eq!(schedule.late, 3);
        assert_eq!(schedule.max_lag, ms(600));
        assert_eq!(elapsed, ms(1000));
        assert!((schedule.achieved_rate - 4.0).abs() < 1e-9, "{}", schedule.achieved_rate);
    }

    #[tokio::test(start_paused = true)]
    async fn operations_on_time_are_not_late_and_run_at_the_rate() {
        let (_tx, interrupt) = never();
        let (tally, elapsed, schedule) =
            open_loop(50.0, 4, Limit::Duration(ms(1000)), &interrupt, None, |_| async move {
                sleep(ms(5)).await;
                (Ok(200), ms(5))
            })
            .await
            .expect("runs");
        assert_eq!(tally.ok, 50);
        assert_eq!((schedule.late, schedule.max_lag, schedule.not_started), (0, Duration::ZERO, 0));
        assert_eq!(elapsed, ms(1000));
        assert!((schedule.achieved_rate - 50.0).abs() < 1e-9);
        assert_recorded(&tally, &[5; 50]);
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_exclusive_while_borrowed_and_each_counts_its_own_operations() {
        let (_tx, interrupt) = never();
        let busy = Arc::new(Mutex::new(HashSet::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (b, s) = (Arc::clone(&busy), Arc::clone(&seen));
        let (tally, _, schedule) = open_loop(1000.0, 3, Limit::Count(60), &interrupt, None, move |id| {
            let (b, s) = (Arc::clone(&b), Arc::clone(&s));
            async move {
                assert!(id.slot < 3, "{id:?}");
                assert!(b.lock().unwrap().insert(id.slot), "slot {} lent twice", id.slot);
                s.lock().unwrap().push(id);
                // Uneven durations so slots come back out of order.
                sleep(ms(1 + (id.index * 7) % 13)).await;
                b.lock().unwrap().remove(&id.slot);
                (Ok(200), ms(1))
            }
        })
        .await
        .expect("runs");
        assert_eq!(tally.ok, 60);
        assert!(schedule.late > 0, "60 ops of ~7 ms on 3 slots at 1,000/s must queue");
        let seen = seen.lock().unwrap();
        for slot in 0..3 {
            let seqs: Vec<u64> = seen.iter().filter(|id| id.slot == slot).map(|id| id.seq).collect();
            assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "slot {slot}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ctrl_c_stops_scheduling_and_abandons_what_runs() {
        let (tx, interrupt) = watch::channel(false);
        tokio::spawn(async move {
            sleep(ms(250)).await;
            let _ = tx.send(true);
            // Held so the receiver does not see a closed channel.
            sleep(ms(10_000)).await;
        });
        let (tally, elapsed, schedule) =
            open_loop(10.0, 2, Limit::Duration(ms(10_000)), &interrupt, None, |_| async move {
                sleep(ms(120)).await;
                (Ok(200), ms(120))
            })
            .await
            .expect("runs");
        // Due at 0, 100, 200: the first two finished by 250 ms, the third runs.
        assert_eq!(tally.ok, 2);
        assert_eq!(schedule.started, 3);
        assert_eq!(schedule.abandoned, 1);
        assert_eq!(elapsed, ms(250));
    }

    #[test]
    fn due_before_agrees_with_due() {
        let t0 = Instant::now();
        for rate in [1.0, 3.0, 7.5, 1000.0] {
            for t_ms in [0, 1, 99, 100, 333, 1000] {
                let t = t0 + ms(t_ms);
                let n = due_before(t0, rate, t);
                assert!(n == 0 || due(t0, rate, n - 1) < t, "{rate} {t_ms}");
                assert!(due(t0, rate, n) >= t, "{rate} {t_ms}");
            }
        }
    }
}
