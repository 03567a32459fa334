//! Tallies, their merge, and how results are shown (table or JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::scenarios::{OpError, OpResult, TransportKind, CEILING};

/// 3 significant figures: latencies are exact below ~2 ms and within 0.1%
/// above, which is finer than anything the report prints.
const SIGFIG: u8 = 3;

fn new_histogram() -> Histogram<u64> {
    // `new` auto-resizes, so no recorded value can be out of range.
    Histogram::new(SIGFIG).expect("3 significant figures is within hdrhistogram's 0..=5")
}

/// What one worker saw. Each worker owns one, so the hot path takes no lock;
/// they are merged once the run is over.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency in microseconds of successful operations only, so fast
    /// failures (connection refused, 503) cannot flatter the figures.
    pub hist: Histogram<u64>,
    pub ops: u64,
    pub ok: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub by_kind: BTreeMap<TransportKind, u64>,
    /// Answers that were 2xx but not what the scenario needed (a case that
    /// expired, a body without an id), by what went wrong.
    pub by_outcome: BTreeMap<&'static str, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            hist: new_histogram(),
            ops: 0,
            ok: 0,
            by_status: BTreeMap::new(),
            by_kind: BTreeMap::new(),
            by_outcome: BTreeMap::new(),
        }
    }
}

impl Tally {
    pub fn record(&mut self, result: OpResult, latency: Duration) {
        self.ops += 1;
        match result {
            Ok(_) => {
                self.ok += 1;
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                // Not `saturating_record`: that clamps to the current top
                // instead of growing the histogram.
                if self.hist.record(micros).is_err() {
                    // Only when growing fails (values near u64::MAX µs).
                    self.hist.saturating_record(micros);
                }
            }
            Err(OpError::Status(s)) => *self.by_status.entry(s).or_default() += 1,
            Err(OpError::Transport(k)) => *self.by_kind.entry(k).or_default() += 1,
            Err(OpError::Outcome(o)) => *self.by_outcome.entry(o).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: &Tally) -> anyhow::Result<()> {
        self.hist.add(&other.hist).map_err(|e| anyhow::anyhow!("merging latency histograms: {e:?}"))?;
        self.ops += other.ops;
        self.ok += other.ok;
        for (s, n) in &other.by_status {
            *self.by_status.entry(*s).or_default() += n;
        }
        for (k, n) in &other.by_kind {
            *self.by_kind.entry(*k).or_default() += n;
        }
        for (o, n) in &other.by_outcome {
            *self.by_outcome.entry(*o).or_default() += n;
        }
        Ok(())
    }

    pub fn errors(&self) -> u64 {
        self.ops - self.ok
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// `None` when nothing succeeded: an empty histogram's zeros would read
    /// as "instant", which is the opposite of the truth.
    pub fn from_micros(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }

    fn rounded(self) -> Latency {
        let r = |x| round_to(x, 3);
        Latency {
            min: r(self.min),
            mean: r(self.mean),
            p50: r(self.p50),
            p90: r(self.p90),
            p99: r(self.p99),
            p999: r(self.p999),
            max: r(self.max),
        }
    }
}

/// How a figure compares with its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Cmp {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "<")]
    Below,
}

/// A target a figure should reach, e.g. `>= 0.40` (on SQLite).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    pub op: Cmp,
    pub target: f64,
    /// Where the goal applies or comes from, e.g. `sqlite`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Goal {
    pub fn new(op: Cmp, target: f64, note: Option<String>) -> Goal {
        Goal { op, target, note }
    }

    pub fn met(&self, value: f64) -> bool {
        match self.op {
            Cmp::AtLeast => value >= self.target,
            Cmp::AtMost => value <= self.target,
            Cmp::Below => value < self.target,
        }
    }

    /// `>= 0.40x (sqlite): met`, or without the verdict when there is no value.
    fn render(&self, value: Option<f64>, unit: &str) -> String {
        let op = match self.op {
            Cmp::AtLeast => ">=",
            Cmp::AtMost => "<=",
            Cmp::Below => "<",
        };
        let mut s = format!("{op} {}", show(self.target, unit));
        if let Some(note) = &self.note {
            let _ = write!(s, " ({note})");
        }
        match value {
            Some(v) if self.met(v) => s.push_str(": met"),
            Some(_) => s.push_str(": MISSED"),
            None => {}
        }
        s
    }
}

/// A figure a scenario computes itself (percentiles of a side measurement,
/// a ratio between sizes, memory), shown after the two tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub label: String,
    /// `None` when it could not be measured: shown as `n/a`.
    pub value: Option<f64>,
    /// `x` (a ratio), `/s`, `ms`, `MB`, or empty for a plain count.
    pub unit: &'static str,
    pub goal: Option<Goal>,
}

impl Figure {
    pub fn new(label: impl Into<String>, value: Option<f64>, unit: &'static str) -> Figure {
        Figure { label: label.into(), value, unit, goal: None }
    }

    pub fn with_goal(mut self, goal: Goal) -> Figure {
        self.goal = Some(goal);
        self
    }
}

/// `1.23x`, `1,234.56/s`, `12.30 ms`, `1,234`.
fn show(v: f64, unit: &str) -> String {
    match unit {
        "x" => format!("{v:.2}x"),
        "/s" => format!("{}/s", two_decimals_grouped(v)),
        "" if v.fract() == 0.0 && v >= 0.0 => thousands(v as u64),
        "" => format!("{v:.2}"),
        u => format!("{} {u}", two_decimals_grouped(v)),
    }
}

/// How an open-loop phase kept to its schedule (`--rate`). Operation `i` is
/// due at `t0 + i / rate` whatever happened to the ones before it; its
/// latency is from that moment, so time spent waiting to start (every slot
/// busy, the client behind) counts as the server's, as a user arriving at
/// that moment would see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoop {
    /// `--rate`, operations per second.
    pub target_rate: f64,
    /// Operations started per second over the scheduling window.
    pub achieved_rate: f64,
    pub started: u64,
    /// Started more than [`LATE`] after they were due.
    pub late: u64,
    /// The longest wait between an operation's due time and its start.
    pub max_lag: Duration,
    /// Due before the phase ended but never started: every slot stayed busy.
    pub not_started: u64,
    /// In flight when the duration ran out: abandoned and not counted, as in
    /// closed loop (see [`crate::runner::Limit::Duration`]).
    pub abandoned: u64,
}

/// An operation that starts later than this after its due time counts as
/// late. Tokio's timers round up to the next millisecond and a busy client
/// takes a few more to spawn the operation, so on time is up to this; the
/// worst lag is reported besides, whatever it is.
pub const LATE: Duration = Duration::from_millis(5);

impl OpenLoop {
    fn to_json(&self) -> JsonOpenLoop {
        JsonOpenLoop {
            target_rate: round_to(self.target_rate, 3),
            achieved_rate: round_to(self.achieved_rate, 3),
            started: self.started,
            late: self.late,
            max_start_lag_ms: round_to(self.max_lag.as_secs_f64() * 1000.0, 3),
            not_started: self.not_started,
            abandoned: self.abandoned,
        }
    }
}

/// One scenario's measured phase.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub name: String,
    pub tally: Tally,
    pub elapsed: Duration,
    /// `false` for a row that only carries latencies (a side measurement, one
    /// size of `scale`): its ok/s would mean nothing, so none is shown.
    pub is_throughput: bool,
    /// Goal for the ratio of this row's throughput to the ceiling.
    pub ceiling_goal: Option<Goal>,
    pub figures: Vec<Figure>,
    /// Set when the phase ran open loop (`--rate`); its latencies are then
    /// from each operation's due time.
    pub open_loop: Option<OpenLoop>,
}

impl ScenarioReport {
    pub fn new(name: impl Into<String>, tally: Tally, elapsed: Duration) -> ScenarioReport {
        ScenarioReport {
            name: name.into(),
            tally,
            elapsed,
            is_throughput: true,
            ceiling_goal: None,
            figures: Vec::new(),
            open_loop: None,
        }
    }

    /// A row of latencies only (no throughput, no ratio to the ceiling).
    pub fn latency_only(name: impl Into<String>, tally: Tally, elapsed: Duration) -> ScenarioReport {
        ScenarioReport { is_throughput: false, ..ScenarioReport::new(name, tally, elapsed) }
    }

    /// Ratio of this row's throughput to the ceiling, when both mean something.
    pub fn ceiling_ratio(&self, ceiling: Option<f64>) -> Option<f64> {
        if self.is_throughput {
            ratio(self.throughput(), ceiling)
        } else {
            None
        }
    }

    /// Successful operations per second.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.tally.ok as f64 / secs
        } else {
            0.0
        }
    }

    pub fn latency(&self) -> Option<Latency> {
        Latency::from_micros(&self.tally.hist)
    }
}

/// `None` when there is nothing to compare with: no ceiling in this run, or
/// a ceiling that managed nothing.
pub fn ratio(throughput: f64, ceiling: Option<f64>) -> Option<f64> {
    match ceiling {
        Some(c) if c > 0.0 => Some(throughput / c),
        _ => None,
    }
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub scenarios: Vec<ScenarioReport>,
    /// `--rate`: `None` is closed loop.
    pub rate: Option<f64>,
}

impl Summary {
    /// Only a ceiling measured in this same run counts: one from another
    /// run, machine or build would make the ratio meaningless.
    pub fn ceiling_throughput(&self) -> Option<f64> {
        self.scenarios.iter().find(|s| s.name == CEILING).map(ScenarioReport::throughput)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let ceiling = self.ceiling_throughput();
        let scenarios = self
            .scenarios
            .iter()
            .map(|s| {
                let ratio_to_ceiling = s.ceiling_ratio(ceiling);
                JsonScenario {
                    name: &s.name,
                    ops: s.tally.ops,
                    ok: s.tally.ok,
                    errors: JsonErrors {
                        by_status: &s.tally.by_status,
                        by_kind: &s.tally.by_kind,
                        by_outcome: &s.tally.by_outcome,
                    },
                    elapsed_s: round_to(s.elapsed.as_secs_f64(), 3),
                    throughput: s.is_throughput.then(|| round_to(s.throughput(), 2)),
                    latency_ms: s.latency().map(Latency::rounded),
                    ratio_to_ceiling: ratio_to_ceiling.map(|r| round_to(r, 4)),
                    ceiling_goal: s.ceiling_goal.as_ref(),
                    ceiling_goal_met: s.ceiling_goal.as_ref().zip(ratio_to_ceiling).map(|(g, r)| g.met(r)),
                    open_loop: s.open_loop.as_ref().map(OpenLoop::to_json),
                    figures: s
                        .figures
                        .iter()
                        .map(|f| JsonFigure {
                            label: &f.label,
                            value: f.value.map(|v| round_to(v, 4)),
                            unit: f.unit,
                            goal: f.goal.as_ref(),
                            goal_met: f.goal.as_ref().zip(f.value).map(|(g, v)| g.met(v)),
                        })
                        .collect(),
                }
            })
            .collect();
        let summary = JsonSummary {
            mode: if self.rate.is_some() { "open" } else { "closed" },
            target_rate: self.rate,
            scenarios,
            ceiling_throughput: ceiling.map(|c| round_to(c, 2)),
        };
        // Every field is a plain number, string or string-keyed map.
        serde_json::to_value(summary).expect("summary serialises to JSON")
    }

    /// Two aligned tables (throughput, then latency), the scenarios' own
    /// figures, and an error breakdown.
    pub fn render_table(&self) -> String {
        let ceiling = self.ceiling_throughput();
        let mut out = String::new();
        let with_goals = self.scenarios.iter().any(|s| s.ceiling_goal.is_some());

        let rows: Vec<Vec<String>> = self
            .scenarios
            .iter()
            .map(|s| {
                let r = s.ceiling_ratio(ceiling);
                let mut row = vec![
                    s.name.clone(),
                    thousands(s.tally.ops),
                    thousands(s.tally.ok),
                    thousands(s.tally.errors()),
                    format!("{:.2}", s.elapsed.as_secs_f64()),
                    if s.is_throughput { two_decimals_grouped(s.throughput()) } else { "-".to_string() },
                    r.map_or_else(|| "-".to_string(), |r| format!("{r:.2}x")),
                ];
                if with_goals {
                    row.push(s.ceiling_goal.as_ref().map_or_else(|| "-".to_string(), |g| g.render(r, "x")));
                }
                row
            })
            .collect();
        let mut headers = vec!["scenario", "ops", "ok", "errors", "elapsed s", "ok/s", "vs ceiling"];
        if with_goals {
            headers.push("goal");
        }
        out.push_str(&table(&headers, &rows));
        out.push('\n');

        let open: Vec<Vec<String>> = self
            .scenarios
            .iter()
            .filter_map(|s| {
                let o = s.open_loop.as_ref()?;
                Some(vec![
                    s.name.clone(),
                    two_decimals_grouped(o.target_rate),
                    two_decimals_grouped(o.achieved_rate),
                    thousands(o.started),
                    thousands(o.late),
                    format!("{:.2}", o.max_lag.as_secs_f64() * 1000.0),
                    thousands(o.not_started),
                    thousands(o.abandoned),
                ])
            })
            .collect();
        if !open.is_empty() {
            out.push_str(&table(
                &[
                    "open loop",
                    "target/s",
                    "started/s",
                    "started",
                    "late",
                    "worst lag ms",
                    "not started",
                    "abandoned",
                ],
                &open,
            ));
            out.push_str("(latencies of these rows are from each operation's due time)\n\n");
        }

        let rows: Vec<Vec<String>> = self
            .scenarios
            .iter()
            .map(|s| {
                let mut row = vec![s.name.clone()];
                match s.latency() {
                    Some(l) => row.extend(
                        [l.min, l.mean, l.p50, l.p90, l.p99, l.p999, l.max].iter().map(|v| format!("{v:.2}")),
                    ),
                    None => row.extend(std::iter::repeat_n("-".to_string(), 7)),
                }
                row
            })
            .collect();
        out.push_str(&table(&["latency ms", "min", "mean", "p50", "p90", "p99", "p99.9", "max"], &rows));

        let rows: Vec<Vec<String>> = self
            .scenarios
            .iter()
            .flat_map(|s| {
                s.figures.iter().map(move |f| {
                    vec![
                        format!("{}: {}", s.name, f.label),
                        f.value.map_or_else(|| "n/a".to_string(), |v| show(v, f.unit)),
                        f.goal.as_ref().map_or_else(String::new, |g| g.render(f.value, f.unit)),
                    ]
                })
            })
            .collect();
        if !rows.is_empty() {
            out.push('\n');
            out.push_str(&table(&["figures", "value", "goal"], &rows));
        }

        let failing: Vec<&ScenarioReport> = self.scenarios.iter().filter(|s| s.tally.errors() > 0).collect();
        if !failing.is_empty() {
            out.push_str("\nerrors\n");
            let width = failing.iter().map(|s| s.name.len()).max().unwrap_or(0);
            for s in failing {
                let _ = writeln!(out, "  {:<width$}  {}", s.name, error_breakdown(&s.tally));
            }
        }
        out
    }
}

/// `503: 12, timeout: 1`, statuses first since they are the server's word.
pub fn error_breakdown(t: &Tally) -> String {
    t.by_status
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .chain(t.by_kind.iter().map(|(k, n)| format!("{}: {n}", k.as_str())))
        .chain(t.by_outcome.iter().map(|(o, n)| format!("{o}: {n}")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    /// `closed` (the default) or `open` (`--rate`).
    mode: &'static str,
    /// `--rate`, null in closed loop.
    target_rate: Option<f64>,
    scenarios: Vec<JsonScenario<'a>>,
    ceiling_throughput: Option<f64>,
}

#[derive(Serialize)]
struct JsonScenario<'a> {
    name: &'a str,
    ops: u64,
    ok: u64,
    errors: JsonErrors<'a>,
    elapsed_s: f64,
    /// Null on a row of latencies only.
    throughput: Option<f64>,
    latency_ms: Option<Latency>,
    ratio_to_ceiling: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ceiling_goal: Option<&'a Goal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ceiling_goal_met: Option<bool>,
    /// On the rows an open-loop phase measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    open_loop: Option<JsonOpenLoop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    figures: Vec<JsonFigure<'a>>,
}

#[derive(Serialize)]
struct JsonOpenLoop {
    target_rate: f64,
    achieved_rate: f64,
    started: u64,
    late: u64,
    max_start_lag_ms: f64,
    not_started: u64,
    abandoned: u64,
}

#[derive(Serialize)]
struct JsonFigure<'a> {
    label: &'a str,
    value: Option<f64>,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    goal: Option<&'a Goal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    goal_met: Option<bool>,
}

#[derive(Serialize)]
struct JsonErrors<'a> {
    // serde_json writes integer and unit-variant keys as strings: {"503": 12}.
    by_status: &'a BTreeMap<u16, u64>,
    by_kind: &'a BTreeMap<TransportKind, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    by_outcome: &'a BTreeMap<&'static str, u64>,
}

fn round_to(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// `12345.678` → `12,345.68`.
fn two_decimals_grouped(x: f64) -> String {
    let cents = (x.max(0.0) * 100.0).round() as u64;
    format!("{}.{:02}", thousands(cents / 100), cents % 100)
}

/// `1234567` → `1,234,567`: counts in the hundreds of thousands are hard to
/// read at a glance otherwise.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// First column left-aligned (names), the rest right-aligned (numbers).
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(s, "{cell:<w$}");
            } else {
                let _ = write!(s, "  {cell:>w$}");
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, ok: u64, secs: u64) -> ScenarioReport {
        let mut tally = Tally::default();
        for _ in 0..ok {
            tally.record(Ok(200), Duration::from_micros(1500));
        }
        ScenarioReport::new(name, tally, Duration::from_secs(secs))
    }

    #[test]
    fn merged_histograms_give_the_percentiles_of_the_union() {
        // 1..=1000 µs split unevenly between two workers.
        let mut a = Tally::default();
        let mut b = Tally::default();
        for us in 1..=1000u64 {
            let t = if us % 3 == 0 { &mut a } else { &mut b };
            t.record(Ok(200), Duration::from_micros(us));
        }
        let mut merged = Tally::default();
        merged.merge(&a).expect("merge a");
        merged.merge(&b).expect("merge b");
        assert_eq!(merged.ops, 1000);
        assert_eq!(merged.ok, 1000);

        // Values below 2048 are exact at 3 significant figures.
        let l = Latency::from_micros(&merged.hist).expect("not empty");
        assert_eq!(l.min, 0.001);
        assert_eq!(l.p50, 0.5);
        assert_eq!(l.p90, 0.9);
        assert_eq!(l.p99, 0.99);
        assert_eq!(l.p999, 0.999);
        assert_eq!(l.max, 1.0);
        assert!((l.mean - 0.5005).abs() < 1e-9, "mean {}", l.mean);
    }

    #[test]
    fn large_latencies_stay_within_three_significant_figures() {
        let mut t = Tally::default();
        t.record(Ok(200), Duration::from_millis(12_345));
        let l = Latency::from_micros(&t.hist).expect("not empty");
        assert!((l.max - 12_345.0).abs() / 12_345.0 < 0.001, "max {}", l.max);

        // Merging into a fresh (small) histogram must grow it too.
        let mut merged = Tally::default();
        merged.merge(&t).expect("merge");
        let m = Latency::from_micros(&merged.hist).expect("not empty");
        assert_eq!(m.max, l.max);
    }

    #[test]
    fn errors_are_grouped_by_status_and_kind_and_merge() {
        let mut a = Tally::default();
        a.record(Err(OpError::Status(503)), Duration::from_millis(1));
        a.record(Err(OpError::Status(503)), Duration::from_millis(1));
        a.record(Err(OpError::Status(429)), Duration::from_millis(1));
        a.record(Ok(200), Duration::from_millis(1));
        let mut b = Tally::default();
        b.record(Err(OpError::Status(503)), Duration::from_millis(1));
        b.record(Err(OpError::Transport(TransportKind::Timeout)), Duration::from_secs(30));
        a.merge(&b).expect("merge");

        assert_eq!(a.ops, 6);
        assert_eq!(a.ok, 1);
        assert_eq!(a.errors(), 5);
        assert_eq!(a.by_status, BTreeMap::from([(429, 1), (503, 3)]));
        assert_eq!(a.by_kind, BTreeMap::from([(TransportKind::Timeout, 1)]));
        // Failed operations stay out of the latency figures.
        assert_eq!(a.hist.len(), 1);
        assert_eq!(error_breakdown(&a), "429: 1, 503: 3, timeout: 1");
    }

    #[test]
    fn ratio_is_to_the_ceiling_of_the_same_run() {
        assert_eq!(ratio(500.0, Some(1000.0)), Some(0.5));
        assert_eq!(ratio(500.0, None), None);
        assert_eq!(ratio(500.0, Some(0.0)), None);

        let summary =
            Summary { scenarios: vec![report("ceiling", 1000, 1), report("create", 250, 1)], rate: None };
        assert_eq!(summary.ceiling_throughput(), Some(1000.0));
        let without = Summary { scenarios: vec![report("create", 250, 1)], rate: None };
        assert_eq!(without.ceiling_throughput(), None);
    }

    #[test]
    fn json_has_the_documented_shape() {
        let mut s = report("ceiling", 3, 2);
        s.tally.record(Err(OpError::Status(503)), Duration::from_millis(1));
        s.tally.record(Err(OpError::Transport(TransportKind::Connect)), Duration::from_millis(1));
        let v = Summary { scenarios: vec![s], rate: None }.to_json();

        assert_eq!(v["ceiling_throughput"], 1.5);
        let sc = &v["scenarios"][0];
        assert_eq!(sc["name"], "ceiling");
        assert_eq!(sc["ops"], 5);
        assert_eq!(sc["ok"], 3);
        assert_eq!(sc["errors"]["by_status"]["503"], 1);
        assert_eq!(sc["errors"]["by_kind"]["connect"], 1);
        assert_eq!(sc["elapsed_s"], 2.0);
        assert_eq!(sc["throughput"], 1.5);
        assert_eq!(sc["ratio_to_ceiling"], 1.0);
        let lat = sc["latency_ms"].as_object().expect("latency object");
        // Key order depends on serde_json's preserve_order feature, which the workspace may unify in.
        let mut keys: Vec<&str> = lat.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = ["min", "mean", "p50", "p90", "p99", "p999", "max"];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(lat["p50"], 1.5);
    }

    #[test]
    fn json_without_ceiling_or_successes_uses_null() {
        let mut s = report("create", 0, 1);
        s.tally.record(Err(OpError::Transport(TransportKind::Other)), Duration::from_millis(1));
        let v = Summary { scenarios: vec![s], rate: None }.to_json();
        assert!(v["ceiling_throughput"].is_null());
        assert!(v["scenarios"][0]["ratio_to_ceiling"].is_null());
        assert!(v["scenarios"][0]["latency_ms"].is_null());
        assert_eq!(v["scenarios"][0]["errors"]["by_kind"]["other"], 1);
    }

    #[test]
    fn table_is_aligned_and_shows_ratios_and_errors() {
        let mut create = report("create", 250, 1);
        create.tally.record(Err(OpError::Status(503)), Duration::from_millis(1));
        let summary = Summary { scenarios: vec![report("ceiling", 1000, 1), create], rate: None };
        let text = summary.render_table();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("scenario"));
        assert!(lines[1].contains("1.00x"), "{text}");
        assert!(lines[2].contains("0.25x"), "{text}");
        // Right-aligned columns end at the same place on every row.
        assert_eq!(lines[0].len(), lines[1].len());
        assert_eq!(lines[1].len(), lines[2].len());
        assert!(text.contains("create  503: 1"), "{text}");
    }

    #[test]
    fn goals_and_figures_are_shown_and_judged() {
        let mut create = report("create", 300, 1);
        create.ceiling_goal = Some(Goal::new(Cmp::AtLeast, 0.40, Some("sqlite".into())));
        let mut scale =
            ScenarioReport::latency_only("scale@100", report("x", 10, 1).tally, Duration::from_secs(1));
        scale.figures = vec![
            Figure::new("p50 ratio", Some(1.2), "x").with_goal(Goal::new(Cmp::AtMost, 1.5, None)),
            Figure::new("resident memory", None, "MB").with_goal(Goal::new(Cmp::Below, 600.0, None)),
            Figure::new("cases", Some(1234.0), ""),
        ];
        let summary = Summary { scenarios: vec![report("ceiling", 1000, 1), create, scale], rate: None };
        let text = summary.render_table();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("goal"), "{text}");
        assert!(lines[2].contains("0.30x  >= 0.40x (sqlite): MISSED"), "{text}");
        // A latency-only row has no throughput and no ratio.
        assert!(lines[3].starts_with("scale@100") && lines[3].contains("  -  "), "{text}");
        assert!(text.contains("scale@100: p50 ratio"), "{text}");
        assert!(text.contains("1.20x  <= 1.50x: met"), "{text}");
        let memory = lines.iter().find(|l| l.contains("resident memory")).expect("memory line");
        assert!(memory.contains("n/a") && memory.ends_with("< 600.00 MB"), "{text}");
        assert!(text.contains("1,234"), "{text}");

        let v = summary.to_json();
        let c = &v["scenarios"][1];
        assert_eq!(c["ceiling_goal"]["op"], ">=");
        assert_eq!(c["ceiling_goal"]["note"], "sqlite");
        assert_eq!(c["ceiling_goal_met"], false);
        let s = &v["scenarios"][2];
        assert!(s["throughput"].is_null());
        assert!(s["ratio_to_ceiling"].is_null());
        assert_eq!(s["figures"][0]["goal_met"], true);
        assert!(s["figures"][1]["value"].is_null());
        assert!(s["figures"][1].get("goal_met").is_none());
        // Rows without goals or figures keep the old shape.
        assert!(v["scenarios"][0].get("figures").is_none());
        assert!(v["scenarios"][0].get("ceiling_goal").is_none());
    }

    #[test]
    fn open_loop_rows_show_their_schedule_in_the_table_and_json() {
        let mut create = report("create", 90, 1);
        create.open_loop = Some(OpenLoop {
            target_rate: 100.0,
            achieved_rate: 95.0,
            started: 95,
            late: 7,
            max_lag: Duration::from_micros(12_500),
            not_started: 5,
            abandoned: 2,
        });
        let summary = Summary { scenarios: vec![report("ceiling", 1000, 1), create], rate: Some(100.0) };
        let text = summary.render_table();
        let line = text.lines().find(|l| l.starts_with("create") && l.contains("95.00")).expect("open row");
        assert!(line.contains("100.00") && line.contains("12.50"), "{text}");
        let v = summary.to_json();
        assert_eq!(v["mode"], "open");
        assert_eq!(v["target_rate"], 100.0);
        let o = &v["scenarios"][1]["open_loop"];
        assert_eq!(o["late"], 7);
        assert_eq!(o["max_start_lag_ms"], 12.5);
        assert_eq!(o["not_started"], 5);
        assert_eq!(o["abandoned"], 2);
        assert!(v["scenarios"][0].get("open_loop").is_none());
        let closed = Summary { scenarios: vec![report("ceiling", 1, 1)], rate: None }.to_json();
        assert_eq!(closed["mode"], "closed");
        assert!(closed["target_rate"].is_null());
    }

    #[test]
    fn outcome_errors_are_counted_apart() {
        let mut t = Tally::default();
        t.record(Err(OpError::Outcome("expired")), Duration::from_millis(1));
        t.record(Err(OpError::Status(409)), Duration::from_millis(1));
        assert_eq!(t.errors(), 2);
        assert_eq!(error_breakdown(&t), "409: 1, expired: 1");
        let v = Summary {
            scenarios: vec![ScenarioReport::new("lifecycle", t, Duration::from_secs(1))],
            rate: None,
        }
        .to_json();
        assert_eq!(v["scenarios"][0]["errors"]["by_outcome"]["expired"], 1);
    }

    #[test]
    fn throughput_is_grouped_with_two_decimals() {
        assert_eq!(two_decimals_grouped(12_345.678), "12,345.68");
        assert_eq!(two_decimals_grouped(12.996), "13.00");
        assert_eq!(two_decimals_grouped(0.0), "0.00");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
