//! The instrumentation every actor kind uses: how many are alive, messages
//! handled, messages waiting in mailboxes, and handler latency. Figures go to
//! the `metrics` facade (exported as Prometheus by the server) and are kept in
//! process so the monitoring endpoints can read percentiles without scraping.
//!
//! Usage: a `static KIND: ActorKind = ActorKind::new("expert");`, `KIND.started()`
//! / `KIND.stopped()` in the actor's lifecycle, `KIND.enqueued()` when a
//! message is sent, and `let _t = KIND.handling("Route");` at the top of a handler.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the latency buckets; the last bucket is open.
const BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0,
];

/// Every kind registered so far, for listing in monitoring.
static REGISTRY: Mutex<Vec<&'static ActorKind>> = Mutex::new(Vec::new());

pub struct ActorKind {
    name: &'static str,
    alive: AtomicI64,
    handled: AtomicU64,
    waiting: AtomicI64,
    latency: [AtomicU64; BUCKETS.len() + 1],
    registered: std::sync::Once,
}

/// A point-in-time reading of one actor kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActorStats {
    pub kind: &'static str,
    pub alive: i64,
    pub messages_handled: u64,
    pub messages_waiting: i64,
    /// Upper bounds of the bucket holding each percentile, in seconds; null before any message.
    pub handler_latency_p50_seconds: Option<f64>,
    pub handler_latency_p99_seconds: Option<f64>,
}

impl ActorKind {
    #[allow(clippy::declare_interior_mutable_const)] // the array initialiser, not shared state
    const ZERO: AtomicU64 = AtomicU64::new(0);

    pub const fn new(name: &'static str) -> Self {
        ActorKind {
            name,
            alive: AtomicI64::new(0),
            handled: AtomicU64::new(0),
            waiting: AtomicI64::new(0),
            latency: [Self::ZERO; BUCKETS.len() + 1],
            registered: std::sync::Once::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn register(&'static self) {
        self.registered.call_once(|| {
            // A poisoned registry only means another thread panicked mid-push; the list is still usable.
            let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            reg.push(self);
        });
    }

    pub fn started(&'static self) {
        self.register();
        let n = self.alive.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("switchboard_actors_alive", "kind" => self.name).set(n as f64);
    }

    pub fn stopped(&'static self) {
        let n = self.alive.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("switchboard_actors_alive", "kind" => self.name).set(n as f64);
    }

    /// A message was put in a mailbox of this kind.
    pub fn enqueued(&'static self) {
        self.register();
        let n = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("switchboard_actor_mailbox_depth", "kind" => self.name).set(n as f64);
    }

    /// Starts timing one handler run; the figures are recorded when the timer drops.
    /// Call it for messages that were counted by `enqueued`.
    pub fn handling(&'static self, message: &'static str) -> HandlerTimer {
        let n = self.waiting.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("switchboard_actor_mailbox_depth", "kind" => self.name).set(n as f64);
        HandlerTimer { kind: self, message, start: Instant::now() }
    }

    fn record(&self, message: &'static str, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        self.handled.fetch_add(1, Ordering::Relaxed);
        let idx = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.latency[idx].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_actor_messages_handled_total", "kind" => self.name, "message" => message)
            .increment(1);
        metrics::histogram!("switchboard_actor_handler_seconds", "kind" => self.name).record(secs);
    }

    pub fn stats(&self) -> ActorStats {
        let counts: Vec<u64> = self.latency.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        ActorStats {
            kind: self.name,
            alive: self.alive.load(Ordering::Relaxed),
            messages_handled: self.handled.load(Ordering::Relaxed),
            messages_waiting: self.waiting.load(Ordering::Relaxed).max(0),
            handler_latency_p50_seconds: percentile(&counts, 0.50),
            handler_latency_p99_seconds: percentile(&counts, 0.99),
        }
    }

    /// Readings of every kind that has been used in this process.
    pub fn all_stats() -> Vec<ActorStats> {
        let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        reg.iter().map(|k| k.stats()).collect()
    }
}

fn percentile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            // The open last bucket reports the largest finite bound: "at least this".
            return Some(BUCKETS[i.min(BUCKETS.len() - 1)]);
        }
    }
    None
}

/// Records one handler run when dropped, so early returns are timed too.
pub struct HandlerTimer {
    kind: &'static ActorKind,
    message: &'static str,
    start: Instant,
}

impl Drop for HandlerTimer {
    fn drop(&mut self) {
        self.kind.record(self.message, self.start.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST_KIND: ActorKind = ActorKind::new("test_kind");

    #[test]
    fn counts_alive_waiting_handled_and_latency() {
        TEST_KIND.started();
        TEST_KIND.enqueued();
        TEST_KIND.enqueued();
        assert_eq!(TEST_KIND.stats().messages_waiting, 2);
        drop(TEST_KIND.handling("Ping"));
        let s = TEST_KIND.stats();
        assert_eq!(s.alive, 1);
        assert_eq!(s.messages_waiting, 1);
        assert_eq!(s.messages_handled, 1);
        assert!(s.handler_latency_p50_seconds.is_some());
        assert!(ActorKind::all_stats().iter().any(|k| k.kind == "test_kind"));
        TEST_KIND.stopped();
        assert_eq!(TEST_KIND.stats().alive, 0);
    }

    #[test]
    fn percentile_picks_the_bucket_holding_the_rank() {
        let mut counts = vec![0u64; BUCKETS.len() + 1];
        counts[2] = 98; // <= 50us
        counts[10] = 2; // <= 25ms
        assert_eq!(percentile(&counts, 0.5), Some(BUCKETS[2]));
        assert_eq!(percentile(&counts, 0.99), Some(BUCKETS[10]));
        assert_eq!(percentile(&[0; 3], 0.5), None);
    }
}
