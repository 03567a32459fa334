//! The TenantActor: a tenant's "container". It owns what must be decided in
//! one place for the whole tenant — the request windows of its plan, the day's
//! LLM token budget, and the circuit breaker of each model provider it calls —
//! and runs its Cerebrals' turns through a [`Runtime`] (the server's
//! `embedded` runtime today; the `process` runtime later), concurrently: a
//! slow model call holds only its own turn.
//!
//! Time comes in with each message (`now_ms`, wall clock for the UTC windows)
//! and from `Instant` (monotonic, for the circuit's cool-down), so the logic is
//! testable without waiting a minute.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use crate::instrument::ActorKind;
/// The same three states as a webhook endpoint's circuit.
pub use crate::webhook::CircuitState;

pub static TENANT: ActorKind = ActorKind::new("tenant");

/// The container's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    Draft,
    Deploying,
    Running,
    Stopped,
    Error,
}

impl TenantState {
    pub const ALL: [TenantState; 5] = [
        TenantState::Draft,
        TenantState::Deploying,
        TenantState::Running,
        TenantState::Stopped,
        TenantState::Error,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            TenantState::Draft => "draft",
            TenantState::Deploying => "deploying",
            TenantState::Running => "running",
            TenantState::Stopped => "stopped",
            TenantState::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<TenantState> {
        TenantState::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A plan's limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub per_minute: Option<u64>,
    pub per_hour: Option<u64>,
    pub per_day: Option<u64>,
    /// LLM tokens per UTC day.
    pub daily_tokens: Option<u64>,
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// A fixed window aligned on UTC boundaries (minute, hour, day).
#[derive(Debug, Clone, Copy)]
struct Window {
    len_ms: i64,
    start_ms: i64,
    count: u64,
}

impl Window {
    fn new(len_ms: i64) -> Self {
        Window { len_ms, start_ms: 0, count: 0 }
    }

    fn roll(&mut self, now_ms: i64) {
        let start = now_ms - now_ms.rem_euclid(self.len_ms);
        if start != self.start_ms {
            self.start_ms = start;
            self.count = 0;
        }
    }

    fn end_ms(&self) -> i64 {
        self.start_ms + self.len_ms
    }
}

/// What the rate-limit headers and `GET /v1/rate-limits` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateView {
    /// The plan's limits per window (null: unlimited).
    pub per_minute: Option<u64>,
    pub per_hour: Option<u64>,
    pub per_day: Option<u64>,
    /// Requests counted in the current minute, hour and day.
    pub minute: u64,
    pub hour: u64,
    pub day: u64,
    /// The window closest to its limit: its limit and what remains (null: unlimited).
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// When that window (or, unlimited, the current minute) resets: Unix seconds.
    pub reset_at_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetState {
    Ok,
    Warn,
    Throttle,
    Block,
}

impl BudgetState {
    /// `warn` from 80% of the budget, `throttle` from 95%, `block` at 100%.
    pub fn of(used: u64, budget: Option<u64>) -> BudgetState {
        let Some(budget) = budget else { return BudgetState::Ok };
        if budget == 0 || used >= budget {
            return BudgetState::Block;
        }
        // Integer arithmetic: used/budget >= 0.95  <=>  used*100 >= budget*95.
        let (u, b) = (u128::from(used) * 100, u128::from(budget));
        if u >= b * 95 {
            BudgetState::Throttle
        } else if u >= b * 80 {
            BudgetState::Warn
        } else {
            BudgetState::Ok
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            BudgetState::Ok => "ok",
            BudgetState::Warn => "warn",
            BudgetState::Throttle => "throttle",
            BudgetState::Block => "block",
        }
    }
}

/// How bad a circuit state is, for reporting the worst of several.
fn severity(state: &CircuitState) -> u8 {
    match state {
        CircuitState::Closed => 0,
        CircuitState::HalfOpen => 1,
        CircuitState::Open => 2,
    }
}

/// A circuit breaker: `threshold` failures in a row open it; after `cooldown`
/// it is half-open and lets exactly one call through as a probe, whose
/// success closes it and whose failure opens it again.
#[derive(Debug, Clone)]
pub struct Circuit {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

impl Circuit {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Circuit { threshold: threshold.max(1), cooldown, failures: 0, opened_at: None, probing: false }
    }

    pub fn state(&self, now: Instant) -> CircuitState {
        match self.opened_at {
            None => CircuitState::Closed,
            Some(at) if self.probing || now.duration_since(at) >= self.cooldown => CircuitState::HalfOpen,
            Some(_) => CircuitState::Open,
        }
    }

    /// May a call go out now? `Ok(true)` when it is the half-open probe;
    /// `Err(wait)` while open (or while another probe is out).
    pub fn admit(&mut self, now: Instant) -> Result<bool, Duration> {
        let Some(at) = self.opened_at else { return Ok(false) };
        let elapsed = now.duration_since(at);
        if self.probing {
            return Err(Duration::from_secs(1));
        }
        if elapsed < self.cooldown {
            return Err(self.cooldown - elapsed);
        }
        self.probing = true;
        Ok(true)
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.opened_at = None;
        self.probing = false;
    }

    pub fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.probing || self.failures >= self.threshold {
            self.opened_at = Some(now);
        }
        self.probing = false;
    }

    /// A probe that ended without calling the provider proves nothing: the
    /// next call may probe.
    pub fn release_probe(&mut self, was_probe: bool) {
        if was_probe {
            self.probing = false;
        }
    }
}

/// Whether a turn called its model provider, and how that went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderUse {
    NotCalled,
    Succeeded,
    /// An error or timeout of the provider itself: counts toward the circuit.
    Failed,
}

/// A turn's result as the runtime reports it.
pub struct Ran<T, E> {
    pub result: Result<T, E>,
    /// LLM tokens the turn consumed, charged to the day's budget.
    pub tokens: u64,
    pub provider: ProviderUse,
}

/// How a tenant's Cerebrals run. Built on the tenant actor's thread, so it may
/// hold thread-bound clients.
pub trait Runtime: Unpin + 'static {
    type Turn: Send + 'static;
    type Reply: Send + 'static;
    type Error: Send + 'static;

    /// `embedded` or `process`.
    fn kind(&self) -> &'static str;

    fn converse(&mut self, turn: Self::Turn) -> LocalBoxFuture<'static, Ran<Self::Reply, Self::Error>>;
}

/// What every authenticated `/v1` response reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Health {
    pub rate: RateView,
    pub budget: BudgetState,
    /// Tokens used today, and the plan's daily budget (null: unlimited).
    pub tokens_today: u64,
    pub daily_tokens: Option<u64>,
    pub circuit: CircuitState,
}

/// Counts a request against the tenant's windows (when `count`), or refuses it.
#[derive(Message)]
#[rtype(result = "Result<Health, Refused>")]
pub struct Admit {
    pub limits: Limits,
    pub count: bool,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Which window: `minute`, `hour` or `day`.
    pub window: &'static str,
    pub limit: u64,
    pub retry_after: Duration,
    pub health: Health,
}

/// One turn of a Cerebral, for the runtime to run.
pub struct Converse<R: Runtime> {
    pub turn: R::Turn,
    /// The provider the turn would call (its circuit is checked first).
    pub provider: String,
    pub status: TenantState,
    pub limits: Limits,
    pub now_ms: i64,
}

impl<R: Runtime> Message for Converse<R> {
    type Result = Result<R::Reply, ConverseError<R::Error>>;
}

#[derive(Debug)]
pub enum ConverseError<E> {
    NotRunning(TenantState),
    /// The day's token budget is spent; it resets at `resets_at_ms` (next UTC midnight).
    BudgetExhausted {
        used: u64,
        budget: u64,
        resets_at_ms: i64,
    },
    CircuitOpen {
        provider: String,
        retry_after: Duration,
    },
    Runtime(E),
}

pub struct TenantActor<R: Runtime> {
    id: String,
    runtime: R,
    minute: Window,
    hour: Window,
    day: Window,
    tokens_day: Window,
    circuits: HashMap<String, Circuit>,
    threshold: u32,
    cooldown: Duration,
}

impl<R: Runtime> TenantActor<R> {
    /// `tokens_today`: what the database says this UTC day used so far.
    pub fn new(
        id: String,
        runtime: R,
        tokens_today: u64,
        now_ms: i64,
        threshold: u32,
        cooldown: Duration,
    ) -> Self {
        let mut tokens_day = Window::new(DAY_MS);
        tokens_day.roll(now_ms);
        tokens_day.count = tokens_today;
        TenantActor {
            id,
            runtime,
            minute: Window::new(MINUTE_MS),
            hour: Window::new(HOUR_MS),
            day: Window::new(DAY_MS),
            tokens_day,
            circuits: HashMap::new(),
            threshold,
            cooldown,
        }
    }

    fn roll(&mut self, now_ms: i64) {
        self.minute.roll(now_ms);
        self.hour.roll(now_ms);
        self.day.roll(now_ms);
        self.tokens_day.roll(now_ms);
    }

    fn rate(&self, limits: &Limits) -> RateView {
        let windows =
            [(limits.per_minute, &self.minute), (limits.per_hour, &self.hour), (limits.per_day, &self.day)];
        // The window with the least left; on a tie, the shortest (listed first).
        let tightest = windows
            .iter()
            .filter_map(|(limit, w)| limit.map(|l| (l, l.saturating_sub(w.count), w.end_ms())))
            .min_by_key(|(_, remaining, _)| *remaining);
        let (limit, remaining, reset) = match tightest {
            Some((l, r, end)) => (Some(l), Some(r), end),
            None => (None, None, self.minute.end_ms()),
        };
        RateView {
            per_minute: limits.per_minute,
            per_hour: limits.per_hour,
            per_day: limits.per_day,
            minute: self.minute.count,
            hour: self.hour.count,
            day: self.day.count,
            limit,
            remaining,
            reset_at_secs: reset.div_euclid(1000),
        }
    }

    fn circuit_state(&self, now: Instant) -> CircuitState {
        self.circuits.values().map(|c| c.state(now)).max_by_key(severity).unwrap_or(CircuitState::Closed)
    }

    fn health(&self, limits: &Limits) -> Health {
        let used = self.tokens_day.count;
        Health {
            rate: self.rate(limits),
            budget: BudgetState::of(used, limits.daily_tokens),
            tokens_today: used,
            daily_tokens: limits.daily_tokens,
            circuit: self.circuit_state(Instant::now()),
        }
    }

    fn circuit(&mut self, provider: &str) -> &mut Circuit {
        let (threshold, cooldown) = (self.threshold, self.cooldown);
        self.circuits.entry(provider.to_string()).or_insert_with(|| Circuit::new(threshold, cooldown))
    }
}

impl<R: Runtime> Actor for TenantActor<R> {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        TENANT.started();
        tracing::debug!(tenant = %self.id, runtime = self.runtime.kind(), "tenant actor started");
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        TENANT.stopped();
    }
}

impl<R: Runtime> Handler<Admit> for TenantActor<R> {
    type Result = Result<Health, Refused>;

    fn handle(&mut self, msg: Admit, _: &mut Context<Self>) -> Self::Result {
        let _t = TENANT.handling("Admit");
        self.roll(msg.now_ms);
        if msg.count {
            let windows = [
                ("minute", msg.limits.per_minute, self.minute),
                ("hour", msg.limits.per_hour, self.hour),
                ("day", msg.limits.per_day, self.day),
            ];
            for (name, limit, w) in windows {
                if let Some(limit) = limit {
                    if w.count >= limit {
                        let wait = Duration::from_millis((w.end_ms() - msg.now_ms).max(0) as u64);
                        return Err(Refused {
                            window: name,
                            limit,
                            retry_after: wait,
                            health: self.health(&msg.limits),
                        });
                    }
                }
            }
            self.minute.count += 1;
            self.hour.count += 1;
            self.day.count += 1;
        }
        Ok(self.health(&msg.limits))
    }
}

impl<R: Runtime> Handler<Converse<R>> for TenantActor<R> {
    type Result = ResponseActFuture<Self, Result<R::Reply, ConverseError<R::Error>>>;

    fn handle(&mut self, msg: Converse<R>, _: &mut Context<Self>) -> Self::Result {
        let _t = TENANT.handling("Converse");
        self.roll(msg.now_ms);
        if msg.status != TenantState::Running {
            return Box::pin(fut::ready(Err(ConverseError::NotRunning(msg.status))));
        }
        if let Some(budget) = msg.limits.daily_tokens {
            let used = self.tokens_day.count;
            if used >= budget {
                let resets_at_ms = self.tokens_day.end_ms();
                return Box::pin(fut::ready(Err(ConverseError::BudgetExhausted {
                    used,
                    budget,
                    resets_at_ms,
                })));
            }
        }
        let provider = msg.provider;
        let probe = match self.circuit(&provider).admit(Instant::now()) {
            Ok(probe) => probe,
            Err(retry_after) => {
                return Box::pin(fut::ready(Err(ConverseError::CircuitOpen { provider, retry_after })));
            }
        };
        let running = self.runtime.converse(msg.turn);
        Box::pin(running.into_actor(self).map(move |ran, act, _| {
            act.tokens_day.count = act.tokens_day.count.saturating_add(ran.tokens);
            let circuit = act.circuit(&provider);
            match ran.provider {
                ProviderUse::NotCalled => circuit.release_probe(probe),
                ProviderUse::Succeeded => circuit.succeeded(),
                ProviderUse::Failed => circuit.failed(Instant::now()),
            }
            ran.result.map_err(ConverseError::Runtime)
        }))
    }
}

/// The tenant's health without counting a request (JWT management calls, `GET /v1/rate-limits`).
pub fn read_only(limits: Limits, now_ms: i64) -> Admit {
    Admit { limits, count: false, now_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_states_follow_the_thresholds() {
        assert_eq!(BudgetState::of(0, None), BudgetState::Ok);
        assert_eq!(BudgetState::of(79_999, Some(100_000)), BudgetState::Ok);
        assert_eq!(BudgetState::of(80_000, Some(100_000)), BudgetState::Warn);
        assert_eq!(BudgetState::of(95_000, Some(100_000)), BudgetState::Throttle);
        assert_eq!(BudgetState::of(100_000, Some(100_000)), BudgetState::Block);
        assert_eq!(BudgetState::of(u64::MAX, Some(u64::MAX - 1)), BudgetState::Block);
    }

    #[test]
    fn windows_align_on_utc_boundaries() {
        let mut w = Window::new(MINUTE_MS);
        w.roll(125_000);
        assert_eq!(w.start_ms, 120_000);
        assert_eq!(w.end_ms(), 180_000);
        w.count = 3;
        w.roll(179_999);
        assert_eq!(w.count, 3);
        w.roll(180_000);
        assert_eq!(w.count, 0);
    }

    #[test]
    fn circuit_opens_after_the_threshold_and_one_probe_decides() {
        let t0 = Instant::now();
        let mut c = Circuit::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert_eq!(c.admit(t0), Ok(false));
            c.failed(t0);
        }
        assert_eq!(c.state(t0), CircuitState::Closed);
        c.failed(t0);
        assert_eq!(c.state(t0), CircuitState::Open);
        assert!(c.admit(t0 + Duration::from_secs(5)).is_err());
        let later = t0 + Duration::from_secs(10);
        assert_eq!(c.state(later), CircuitState::HalfOpen);
        assert_eq!(c.admit(later), Ok(true));
        // Only one probe at a time.
        assert!(c.admit(later).is_err());
        c.failed(later);
        assert_eq!(c.state(later), CircuitState::Open);
        let again = later + Duration::from_secs(10);
        assert_eq!(c.admit(again), Ok(true));
        c.succeeded();
        assert_eq!(c.state(again), CircuitState::Closed);
        assert_eq!(c.admit(again), Ok(false));
    }

    #[test]
    fn a_probe_that_never_called_the_provider_frees_the_slot() {
        let t0 = Instant::now();
        let mut c = Circuit::new(1, Duration::ZERO);
        c.failed(t0);
        assert_eq!(c.admit(t0), Ok(true));
        c.release_probe(true);
        assert_eq!(c.admit(t0), Ok(true));
    }

    struct Echo;

    impl Runtime for Echo {
        type Turn = (String, u64, ProviderUse);
        type Reply = String;
        type Error = String;

        fn kind(&self) -> &'static str {
            "test"
        }

        fn converse(&mut self, turn: Self::Turn) -> LocalBoxFuture<'static, Ran<String, String>> {
            let (text, tokens, provider) = turn;
            Box::pin(async move {
                let result = if provider == ProviderUse::Failed { Err(text) } else { Ok(text) };
                Ran { result, tokens, provider }
            })
        }
    }

    fn limits() -> Limits {
        Limits { per_minute: Some(2), per_hour: Some(10), per_day: Some(100), daily_tokens: Some(100) }
    }

    fn converse(text: &str, tokens: u64, provider: ProviderUse, now_ms: i64) -> Converse<Echo> {
        Converse {
            turn: (text.to_string(), tokens, provider),
            provider: "p".into(),
            status: TenantState::Running,
            limits: limits(),
            now_ms,
        }
    }

    #[actix_rt::test]
    async fn admits_up_to_the_minute_limit_then_refuses_until_the_window_ends() {
        let now = 1_700_000_050_000; // 10 s into a minute
        let actor = TenantActor::new("t".into(), Echo, 0, now, 5, Duration::from_secs(30)).start();
        let first = actor.send(Admit { limits: limits(), count: true, now_ms: now }).await.unwrap().unwrap();
        assert_eq!((first.rate.limit, first.rate.remaining), (Some(2), Some(1)));
        actor.send(Admit { limits: limits(), count: true, now_ms: now }).await.unwrap().unwrap();
        let refused =
            actor.send(Admit { limits: limits(), count: true, now_ms: now }).await.unwrap().unwrap_err();
        assert_eq!(refused.window, "minute");
        assert_eq!(refused.retry_after, Duration::from_secs(50));
        assert_eq!(refused.health.rate.minute, 2);
        // A read does not count; the next minute starts afresh.
        let read = actor.send(read_only(limits(), now)).await.unwrap().unwrap();
        assert_eq!(read.rate.minute, 2);
        let next = actor.send(Admit { limits: limits(), count: true, now_ms: now + 50_000 }).await.unwrap();
        let next = next.unwrap();
        assert_eq!((next.rate.minute, next.rate.hour), (1, 3));
    }

    #[actix_rt::test]
    async fn the_token_budget_blocks_once_spent() {
        let now = 1_700_000_000_000;
        let actor = TenantActor::new("t".into(), Echo, 60, now, 5, Duration::from_secs(30)).start();
        let reply = actor.send(converse("hi", 50, ProviderUse::Succeeded, now)).await.unwrap().unwrap();
        assert_eq!(reply, "hi");
        match actor.send(converse("again", 1, ProviderUse::Succeeded, now)).await.unwrap() {
            Err(ConverseError::BudgetExhausted { used: 110, budget: 100, .. }) => {}
            other => panic!("expected the budget refusal, got {:?}", other.map_err(|e| format!("{e:?}"))),
        }
        let health = actor.send(read_only(limits(), now)).await.unwrap().unwrap();
        assert_eq!(health.budget, BudgetState::Block);
    }

    #[actix_rt::test]
    async fn provider_failures_open_the_circuit() {
        let now = 1_700_000_000_000;
        let actor = TenantActor::new("t".into(), Echo, 0, now, 2, Duration::from_millis(50)).start();
        for _ in 0..2 {
            let r = actor.send(converse("x", 0, ProviderUse::Failed, now)).await.unwrap();
            assert!(matches!(r, Err(ConverseError::Runtime(_))));
        }
        let r = actor.send(converse("x", 0, ProviderUse::Succeeded, now)).await.unwrap();
        assert!(matches!(r, Err(ConverseError::CircuitOpen { .. })));
        assert_eq!(actor.send(read_only(limits(), now)).await.unwrap().unwrap().circuit, CircuitState::Open);
        actix_rt::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            actor.send(read_only(limits(), now)).await.unwrap().unwrap().circuit,
            CircuitState::HalfOpen
        );
        let r = actor.send(converse("ok", 0, ProviderUse::Succeeded, now)).await.unwrap();
        assert_eq!(r.unwrap(), "ok");
        assert_eq!(
            actor.send(read_only(limits(), now)).await.unwrap().unwrap().circuit,
            CircuitState::Closed
        );
    }

    #[actix_rt::test]
    async fn a_tenant_that_is_not_running_does_not_converse() {
        let now = 1_700_000_000_000;
        let actor = TenantActor::new("t".into(), Echo, 0, now, 2, Duration::from_secs(1)).start();
        let mut msg = converse("x", 0, ProviderUse::Succeeded, now);
        msg.status = TenantState::Draft;
        let r = actor.send(msg).await.unwrap();
        assert!(matches!(r, Err(ConverseError::NotRunning(TenantState::Draft))));
    }
}
