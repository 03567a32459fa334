//! `switchboard bench-store`: durable single-row writes per second on the
//! configured database, through the Store's group commit and, for comparison,
//! with one transaction per write, from many concurrent senders. Operators use
//! it to size a deployment; the crash test uses `--print-acks` to learn which
//! writes were acknowledged before it kills the process.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use diesel::prelude::*;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::connection::{self, DbPool};
use super::schema::store_probes;
use super::{migrations, now_ms, GroupCommitConfig, Row, Store, StoreError};
use crate::settings::DatabaseUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    /// Through the Store: many writes per transaction.
    Group,
    /// One transaction per write, each sender on its own connection.
    Single,
    /// Both, and the ratio between them.
    Both,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub senders: usize,
    pub writes: u64,
    pub mode: BenchMode,
    pub keep: bool,
    pub print_acks: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchFigures {
    pub mode: &'static str,
    pub writes: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub writes_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub backend: &'static str,
    pub senders: usize,
    pub run_id: String,
    pub results: Vec<BenchFigures>,
    /// Group-commit throughput over single-commit throughput, when both ran.
    pub group_over_single: Option<f64>,
}

#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = store_probes)]
pub struct ProbeRow {
    id: String,
    run_id: String,
    sender: i64,
    seq: i64,
    created_at: i64,
}

impl ProbeRow {
    fn new(run_id: &str, mode: &str, sender: usize, seq: u64) -> Self {
        ProbeRow {
            id: format!("{run_id}-{mode}-{seq}"),
            run_id: run_id.to_string(),
            sender: sender as i64,
            seq: seq as i64,
            created_at: now_ms(),
        }
    }
}

/// Runs the benchmark. Must run inside an actix System (the Store is actors).
pub async fn run(
    url: &DatabaseUrl,
    group: GroupCommitConfig,
    opts: &BenchOptions,
) -> Result<BenchReport, String> {
    connection::prepare(url)?;
    let pool = connection::build_pool(url, opts.senders as u32 + 1);
    {
        let mut conn = pool.get().map_err(|e| format!("cannot connect to {url}: {e}"))?;
        migrations::run(&mut conn)?;
    }
    let run_id = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let mut results = Vec::new();
    if matches!(opts.mode, BenchMode::Group | BenchMode::Both) {
        let store = Store::start(url, pool.clone(), group);
        results.push(run_group(&store, &run_id, opts).await);
        store.flush().await;
    }
    if matches!(opts.mode, BenchMode::Single | BenchMode::Both) {
        results.push(run_single(&pool, &run_id, opts).await);
    }
    if !opts.keep {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        diesel::delete(store_probes::table.filter(store_probes::run_id.eq(&run_id)))
            .execute(&mut conn)
            .map_err(|e| format!("cannot remove the bench's rows: {e}"))?;
    }
    let ratio =
        match (results.iter().find(|r| r.mode == "group"), results.iter().find(|r| r.mode == "single")) {
            (Some(g), Some(s)) if s.writes_per_s > 0.0 => Some(g.writes_per_s / s.writes_per_s),
            _ => None,
        };
    Ok(BenchReport {
        backend: url.backend_name(),
        senders: opts.senders,
        run_id,
        results,
        group_over_single: ratio,
    })
}

struct Tally {
    next: AtomicU64,
    errors: AtomicU64,
}

async fn run_group(store: &Store, run_id: &str, opts: &BenchOptions) -> BenchFigures {
    let tally = Arc::new(Tally { next: AtomicU64::new(0), errors: AtomicU64::new(0) });
    let start = Instant::now();
    let mut tasks = Vec::new();
    for sender in 0..opts.senders {
        let (store, tally, run_id) = (store.clone(), tally.clone(), run_id.to_string());
        let (total, print) = (opts.writes, opts.print_acks);
        tasks.push(actix_web::rt::spawn(async move {
            let mut hist = new_histogram();
            loop {
                let seq = tally.next.fetch_add(1, Ordering::Relaxed);
                if seq >= total {
                    break;
                }
                let row = ProbeRow::new(&run_id, "group", sender, seq);
                let id = row.id.clone();
                let t = Instant::now();
                let outcome = store.insert(Row::Probe(row)).await;
                record(&mut hist, t);
                match outcome {
                    Ok(()) if print => ack(&id),
                    Ok(()) => {}
                    Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            hist
        }));
    }
    finish("group", tasks, start, opts.writes, &tally).await
}

async fn run_single(pool: &DbPool, run_id: &str, opts: &BenchOptions) -> BenchFigures {
    let tally = Arc::new(Tally { next: AtomicU64::new(0), errors: AtomicU64::new(0) });
    let start = Instant::now();
    let mut tasks = Vec::new();
    for sender in 0..opts.senders {
        let (pool, tally, run_id) = (pool.clone(), tally.clone(), run_id.to_string());
        let (total, print) = (opts.writes, opts.print_acks);
        // Each sender is a thread with its own connection, as a server without
        // group commit would be: every write is its own autocommit transaction.
        tasks.push(actix_web::rt::task::spawn_blocking(move || {
            let mut hist = new_histogram();
            let mut conn = match pool.get() {
                Ok(c) => c,
                Err(_) => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    return hist;
                }
            };
            loop {
                let seq = tally.next.fetch_add(1, Ordering::Relaxed);
                if seq >= total {
                    break;
                }
                let row = ProbeRow::new(&run_id, "single", sender, seq);
                let t = Instant::now();
                let outcome = diesel::insert_into(store_probes::table).values(&row).execute(&mut conn);
                record(&mut hist, t);
                match outcome {
                    Ok(_) if print => ack(&row.id),
                    Ok(_) => {}
                    Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            hist
        }));
    }
    finish("single", tasks, start, opts.writes, &tally).await
}

async fn finish<E: std::fmt::Debug>(
    mode: &'static str,
    tasks: Vec<impl std::future::Future<Output = Result<Histogram<u64>, E>>>,
    start: Instant,
    writes: u64,
    tally: &Tally,
) -> BenchFigures {
    let mut hist = new_histogram();
    for t in tasks {
        if let Ok(h) = t.await {
            // Both histograms auto-resize, so adding cannot fail on range.
            let _ = hist.add(h);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let errors = tally.errors.load(Ordering::Relaxed);
    let ok = writes.saturating_sub(errors);
    let ms = |v: u64| v as f64 / 1000.0;
    BenchFigures {
        mode,
        writes,
        errors,
        elapsed_s: elapsed,
        writes_per_s: if elapsed > 0.0 { ok as f64 / elapsed } else { 0.0 },
        p50_ms: ms(hist.value_at_quantile(0.50)),
        p99_ms: ms(hist.value_at_quantile(0.99)),
        p999_ms: ms(hist.value_at_quantile(0.999)),
        max_ms: ms(hist.max()),
    }
}

fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("3 significant figures is a valid precision");
    h.auto(true);
    h
}

fn record(hist: &mut Histogram<u64>, since: Instant) {
    let _ = hist.record(since.elapsed().as_micros() as u64);
}

/// One line per durable write, flushed at once so a reader sees it before any crash.
fn ack(id: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ack {id}");
    let _ = out.flush();
}

impl BenchReport {
    pub fn table(&self) -> String {
        let mut s = format!(
            "store bench on {} with {} concurrent senders (run {})\n",
            self.backend, self.senders, self.run_id
        );
        s.push_str(&format!(
            "{:<8} {:>8} {:>7} {:>10} {:>11} {:>8} {:>8} {:>9} {:>8}\n",
            "mode", "writes", "errors", "elapsed_s", "writes/s", "p50_ms", "p99_ms", "p99.9_ms", "max_ms"
        ));
        for r in &self.results {
            s.push_str(&format!(
                "{:<8} {:>8} {:>7} {:>10.2} {:>11.1} {:>8.2} {:>8.2} {:>9.2} {:>8.2}\n",
                r.mode,
                r.writes,
                r.errors,
                r.elapsed_s,
                r.writes_per_s,
                r.p50_ms,
                r.p99_ms,
                r.p999_ms,
                r.max_ms
            ));
        }
        if let Some(ratio) = self.group_over_single {
            s.push_str(&format!("group commit / one transaction per write = {ratio:.2}x\n"));
        }
        s
    }
}

/// Counts the probe rows of a run (used by the crash test's reader).
pub fn probe_ids(pool: &DbPool, run_prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut conn = pool.get().map_err(|e| StoreError::Unavailable(e.to_string()))?;
    store_probes::table
        .filter(store_probes::id.like(format!("{run_prefix}%")))
        .select(store_probes::id)
        .load(&mut conn)
        .map_err(StoreError::from)
}
