//! The TenantActor: a tenant's "container". It owns what must be decided in
//! one place for the whole tenant — the container's lifecycle (`draft |
//! deploying | running | stopped | error`), the request windows of its plan,
//! the day's LLM token budget, and the circuit breaker of each model provider
//! it calls — and runs its Cerebrals' turns through a [`Runtime`] (`embedded`
//! inside the server, or `process`: a supervised child per tenant),
//! concurrently: a slow model call holds only its own turn.
//!
//! Lifecycle: `Deploy` moves `draft | stopped | error → deploying → running`
//! in the background; `Restart` and `Stop` as the Platform API says. A runtime
//! instance that ends on its own (a crashed child) is started again after a
//! back-off that doubles per crash; more than `max_restarts` crashes within
//! the window put the container in `error`. Every state is recorded through
//! the [`Journal`] (the server's database) before a lifecycle request is
//! answered, so a restarted server brings running containers back.
//!
//! Time comes in with each message (`now_ms`, wall clock for the UTC windows)
//! and from `Instant` (monotonic, for the circuit's cool-down), so the logic is
//! testable without waiting a minute.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::{LocalBoxFuture, Shared};
use futures_util::FutureExt as _;
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

/// How crashed runtime instances are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    /// The wait before the first restart; it doubles per crash in the window.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// More crashes than this within `window` put the container in `error`.
    pub max_restarts: u32,
    pub window: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_restarts: 5,
            window: Duration::from_secs(600),
        }
    }
}

impl Supervision {
    /// The wait before restart number `n` (1-based) in the window.
    pub fn backoff_for(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// What a started runtime instance reports.
pub struct Started {
    /// The instance's loopback port (`process`), else none.
    pub port: Option<u16>,
    pub pid: Option<u32>,
    /// Resolves, with why, when the instance ends without being stopped (a
    /// crash). Never resolves for an instance that cannot crash (`embedded`).
    pub exited: LocalBoxFuture<'static, String>,
}

/// A container as its actor shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerView {
    pub status: TenantState,
    /// `embedded` or `process`.
    pub runtime: &'static str,
    /// When it last became `running` (epoch ms); none unless running.
    pub running_since_ms: Option<i64>,
    pub port: Option<u16>,
    pub pid: Option<u32>,
}

impl ContainerView {
    /// Whole seconds since it became `running`; none unless running.
    pub fn uptime_secs(&self, now_ms: i64) -> Option<u64> {
        match (self.status, self.running_since_ms) {
            (TenantState::Running, Some(since)) => Some(((now_ms - since).max(0) / 1000) as u64),
            _ => None,
        }
    }
}

/// A line's level in the tenant's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Where the container's lifecycle goes: the server's database, its log
/// file, and the board its status endpoints read.
pub trait Journal: Send + Sync + 'static {
    /// Durably records the container's state and runtime; resolves once committed.
    fn record(
        &self,
        tenant: &str,
        state: TenantState,
        runtime: &'static str,
    ) -> LocalBoxFuture<'static, Result<(), String>>;
    /// A line of the tenant's log.
    fn log(&self, tenant: &str, level: Level, line: &str);
    /// The container's view changed; `None` when its actor is gone.
    fn show(&self, tenant: &str, view: Option<&ContainerView>);
}

/// Why a lifecycle request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleError {
    /// Not allowed from the current state (stop or restart a `draft`).
    Conflict(String),
    /// The state could not be recorded: nothing changed.
    Journal(String),
}

/// Deploys the container; idempotent while `deploying` or `running`.
/// `fresh` builds the runtime to deploy on (the server's current choice for
/// newly deployed tenants); a running container keeps its own.
pub struct Deploy<R> {
    pub fresh: Option<Box<dyn FnOnce() -> R + Send>>,
}

impl<R: Runtime> Message for Deploy<R> {
    type Result = Result<(), LifecycleError>;
}

/// Stops the runtime instance and starts it again (also from `stopped` or `error`).
#[derive(Message)]
#[rtype(result = "Result<(), LifecycleError>")]
pub struct Restart;

/// Stops the runtime instance; `stopped` stays `stopped`.
#[derive(Message)]
#[rtype(result = "Result<(), LifecycleError>")]
pub struct Stop;

/// Stops the runtime instance and the actor: the tenant is being deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The container's current view.
#[derive(Message)]
#[rtype(result = "ContainerView")]
pub struct Inspect;

/// Runs `f` on the actor's runtime: what only the runtime knows (a child's
/// own status) without a message per question.
pub struct Probe<R, T> {
    pub f: ProbeFn<R, T>,
}

/// What a [`Probe`] runs on the runtime.
pub type ProbeFn<R, T> = Box<dyn FnOnce(&mut R) -> LocalBoxFuture<'static, T> + Send>;

impl<R: Runtime, T: 'static> Message for Probe<R, T> {
    type Result = T;
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

    /// Starts an instance; resolves once it can take turns.
    fn start(&mut self) -> LocalBoxFuture<'static, Result<Started, String>>;

    /// Stops the current instance, if any; resolves once it is gone.
    fn stop(&mut self) -> LocalBoxFuture<'static, ()>;
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

/// What a tenant actor starts from.
pub struct TenantSetup<R> {
    pub id: String,
    pub runtime: R,
    /// The state the database holds: `running` and `deploying` start the runtime.
    pub stored: TenantState,
    /// What the database says this UTC day used so far.
    pub tokens_today: u64,
    pub now_ms: i64,
    pub circuit_threshold: u32,
    pub circuit_cooldown: Duration,
    pub supervision: Supervision,
    pub journal: std::sync::Arc<dyn Journal>,
}

pub struct TenantActor<R: Runtime> {
    id: String,
    runtime: R,
    state: TenantState,
    /// The last state the journal recorded.
    stored: TenantState,
    /// Bumped by every start and stop: an instance's exit or a start that
    /// finishes after a newer lifecycle request is recognised as stale.
    generation: u64,
    running_since_ms: Option<i64>,
    port: Option<u16>,
    pid: Option<u32>,
    crashes: std::collections::VecDeque<Instant>,
    supervision: Supervision,
    journal: std::sync::Arc<dyn Journal>,
    /// The last state sent to the journal. Each record waits for the one
    /// before it, so the journal sees states in the order they happened even
    /// where the store commits batches in parallel: a background record of
    /// `running` never lands after the `stopped` that followed it.
    journal_tail: Option<Shared<LocalBoxFuture<'static, Result<(), String>>>>,
    minute: Window,
    hour: Window,
    day: Window,
    tokens_day: Window,
    circuits: HashMap<String, Circuit>,
    threshold: u32,
    cooldown: Duration,
}

impl<R: Runtime> TenantActor<R> {
    pub fn new(setup: TenantSetup<R>) -> Self {
        let mut tokens_day = Window::new(DAY_MS);
        tokens_day.roll(setup.now_ms);
        tokens_day.count = setup.tokens_today;
        TenantActor {
            id: setup.id,
            runtime: setup.runtime,
            state: setup.stored,
            stored: setup.stored,
            generation: 0,
            running_since_ms: None,
            port: None,
            pid: None,
            crashes: std::collections::VecDeque::new(),
            supervision: setup.supervision,
            journal: setup.journal,
            journal_tail: None,
            minute: Window::new(MINUTE_MS),
            hour: Window::new(HOUR_MS),
            day: Window::new(DAY_MS),
            tokens_day,
            circuits: HashMap::new(),
            threshold: setup.circuit_threshold,
            cooldown: setup.circuit_cooldown,
        }
    }

    pub fn view(&self) -> ContainerView {
        ContainerView {
            status: self.state,
            runtime: self.runtime.kind(),
            running_since_ms: self.running_since_ms,
            port: self.port,
            pid: self.pid,
        }
    }

    fn log(&self, level: Level, line: &str) {
        self.journal.log(&self.id, level, line);
    }

    /// Moves to `state` and shows it; the caller records it.
    fn set(&mut self, state: TenantState) {
        if state != TenantState::Running {
            self.running_since_ms = None;
            self.port = None;
            self.pid = None;
        }
        self.state = state;
        self.journal.show(&self.id, Some(&self.view()));
    }

    /// Records the current state unless the journal has it already. Until
    /// the journal confirms, the state counts as recorded; a failure puts
    /// back what the journal had, so the next transition records again.
    fn record(&mut self) -> ResponseActFuture<Self, Result<(), String>> {
        if self.stored == self.state {
            return Box::pin(fut::ready(Ok(())));
        }
        let had = self.stored;
        self.stored = self.state;
        let before = self.journal_tail.take();
        let (journal, id, state, kind) =
            (self.journal.clone(), self.id.clone(), self.state, self.runtime.kind());
        let recorded = async move {
            if let Some(before) = before {
                let _ = before.await;
            }
            journal.record(&id, state, kind).await
        }
        .boxed_local()
        .shared();
        self.journal_tail = Some(recorded.clone());
        Box::pin(recorded.into_actor(self).map(move |recorded, act, _| {
            if recorded.is_err() && act.stored == act.state {
                act.stored = had;
            }
            recorded
        }))
    }

    /// Records in the background (transitions nobody waits on); a failure is logged.
    fn record_later(&mut self, ctx: &mut Context<Self>) {
        let recorded = self.record();
        ctx.spawn(recorded.map(|recorded, act, _| {
            if let Err(e) = recorded {
                tracing::error!(tenant = %act.id, error = %e, "cannot record the container's state");
            }
        }));
    }

    /// Starts a runtime instance; `deploying` until it answers.
    fn launch(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        let generation = self.generation;
        self.log(Level::Info, &format!("Deploying on the {} runtime", self.runtime.kind()));
        let starting = self.runtime.start();
        let handle = move |started: Result<Started, String>, act: &mut Self, ctx: &mut Context<Self>| {
            act.started_instance(generation, started, ctx)
        };
        // An instance that is ready at once (`embedded`) is running before
        // the next message is handled.
        let mut starting = starting;
        match futures_util::FutureExt::now_or_never(&mut starting) {
            Some(started) => handle(started, self, ctx),
            None => {
                ctx.spawn(starting.into_actor(self).map(move |started, act, ctx| handle(started, act, ctx)));
            }
        }
    }

    fn started_instance(
        &mut self,
        generation: u64,
        started: Result<Started, String>,
        ctx: &mut Context<Self>,
    ) {
        if generation != self.generation {
            // Stopped or restarted meanwhile: this instance is not wanted.
            if started.is_ok() {
                ctx.spawn(self.runtime.stop().into_actor(self));
            }
            return;
        }
        match started {
            Ok(instance) => {
                self.set(TenantState::Running);
                self.running_since_ms = Some(wall_ms());
                self.port = instance.port;
                self.pid = instance.pid;
                self.journal.show(&self.id, Some(&self.view()));
                let at = match (instance.port, instance.pid) {
                    (Some(port), Some(pid)) => format!(" on 127.0.0.1:{port} (pid {pid})"),
                    _ => String::new(),
                };
                self.log(Level::Info, &format!("Agent started{at}"));
                self.record_later(ctx);
                ctx.spawn(
                    instance
                        .exited
                        .into_actor(self)
                        .map(move |why, act, ctx| act.instance_exited(generation, why, ctx)),
                );
            }
            Err(e) => {
                self.log(Level::Error, &format!("Deploy failed: {e}"));
                self.set(TenantState::Error);
                self.record_later(ctx);
            }
        }
    }

    /// The instance ended without being stopped: restart it after the
    /// back-off, or give up after too many crashes.
    fn instance_exited(&mut self, generation: u64, why: String, ctx: &mut Context<Self>) {
        if generation != self.generation || self.state != TenantState::Running {
            return;
        }
        self.generation += 1;
        let now = Instant::now();
        while self.crashes.front().is_some_and(|t| now.duration_since(*t) > self.supervision.window) {
            self.crashes.pop_front();
        }
        self.crashes.push_back(now);
        let crashes = self.crashes.len() as u32;
        if crashes > self.supervision.max_restarts {
            self.log(
                Level::Error,
                &format!(
                    "Agent exited ({why}); {crashes} crashes within {:?}: giving up",
                    self.supervision.window
                ),
            );
            self.set(TenantState::Error);
            self.record_later(ctx);
            return;
        }
        let wait = self.supervision.backoff_for(crashes);
        self.log(Level::Warn, &format!("Agent exited ({why}); restarting in {} ms", wait.as_millis()));
        self.set(TenantState::Deploying);
        self.record_later(ctx);
        let planned = self.generation;
        ctx.run_later(wait, move |act, ctx| {
            if act.generation == planned && act.state == TenantState::Deploying {
                act.launch(ctx);
            }
        });
    }

    /// Stops the current instance (if any): later exits and starts are stale.
    fn halt(&mut self) -> LocalBoxFuture<'static, ()> {
        self.generation += 1;
        self.runtime.stop()
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

    fn started(&mut self, ctx: &mut Self::Context) {
        TENANT.started();
        tracing::debug!(tenant = %self.id, runtime = self.runtime.kind(), "tenant actor started");
        if matches!(self.state, TenantState::Running | TenantState::Deploying) {
            // Was running before this server started: run again.
            self.set(TenantState::Deploying);
            self.launch(ctx);
        } else {
            self.journal.show(&self.id, Some(&self.view()));
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        TENANT.stopped();
        self.journal.show(&self.id, None);
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
        if self.state != TenantState::Running {
            return Box::pin(fut::ready(Err(ConverseError::NotRunning(self.state))));
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

impl<R: Runtime> Handler<Deploy<R>> for TenantActor<R> {
    type Result = AtomicResponse<Self, Result<(), LifecycleError>>;

    fn handle(&mut self, msg: Deploy<R>, _: &mut Context<Self>) -> Self::Result {
        let _t = TENANT.handling("Deploy");
        if matches!(self.state, TenantState::Running | TenantState::Deploying) {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        let before = self.state;
        if let Some(fresh) = msg.fresh {
            self.runtime = fresh();
        }
        self.crashes.clear();
        self.set(TenantState::Deploying);
        let recorded = self.record();
        AtomicResponse::new(Box::pin(recorded.map(move |recorded, act, ctx| match recorded {
            Ok(()) => {
                act.launch(ctx);
                Ok(())
            }
            Err(e) => {
                act.set(before);
                Err(LifecycleError::Journal(e))
            }
        })))
    }
}

impl<R: Runtime> Handler<Restart> for TenantActor<R> {
    type Result = AtomicResponse<Self, Result<(), LifecycleError>>;

    fn handle(&mut self, _: Restart, _: &mut Context<Self>) -> Self::Result {
        let _t = TENANT.handling("Restart");
        if self.state == TenantState::Draft {
            return AtomicResponse::new(Box::pin(fut::ready(Err(LifecycleError::Conflict(
                "a draft tenant has never been deployed: deploy it first".into(),
            )))));
        }
        self.log(Level::Info, "Restart requested");
        let halted = self.halt();
        AtomicResponse::new(Box::pin(halted.into_actor(self).then(|(), act, _| {
            act.crashes.clear();
            act.set(TenantState::Deploying);
            act.record().map(|recorded, act, ctx| {
                // The old instance is gone either way; start the new one.
                act.launch(ctx);
                recorded.map_err(LifecycleError::Journal)
            })
        })))
    }
}

impl<R: Runtime> Handler<Stop> for TenantActor<R> {
    type Result = AtomicResponse<Self, Result<(), LifecycleError>>;

    fn handle(&mut self, _: Stop, _: &mut Context<Self>) -> Self::Result {
        let _t = TENANT.handling("Stop");
        match self.state {
            TenantState::Draft => {
                return AtomicResponse::new(Box::pin(fut::ready(Err(LifecycleError::Conflict(
                    "a draft tenant has never been deployed: there is nothing to stop".into(),
                )))))
            }
            // Stopped, and the journal says so (a stop it could not record is recorded now).
            TenantState::Stopped if self.stored == TenantState::Stopped => {
                return AtomicResponse::new(Box::pin(fut::ready(Ok(()))))
            }
            _ => {}
        }
        let halted = self.halt();
        AtomicResponse::new(Box::pin(halted.into_actor(self).then(|(), act, _| {
            act.log(Level::Info, "Agent stopped");
            act.set(TenantState::Stopped);
            act.record().map(|recorded, _, _| recorded.map_err(LifecycleError::Journal))
        })))
    }
}

impl<R: Runtime> Handler<Shutdown> for TenantActor<R> {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        let _t = TENANT.handling("Shutdown");
        let halted = self.halt();
        AtomicResponse::new(Box::pin(halted.into_actor(self).map(|(), _, ctx| ctx.stop())))
    }
}

impl<R: Runtime> Handler<Inspect> for TenantActor<R> {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.view())
    }
}

impl<R: Runtime, T: 'static> Handler<Probe<R, T>> for TenantActor<R> {
    type Result = ResponseFuture<T>;

    fn handle(&mut self, msg: Probe<R, T>, _: &mut Context<Self>) -> Self::Result {
        (msg.f)(&mut self.runtime)
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

        fn start(&mut self) -> LocalBoxFuture<'static, Result<Started, String>> {
            Box::pin(fut::ready(Ok(Started {
                port: None,
                pid: None,
                exited: Box::pin(std::future::pending()),
            })))
        }

        fn stop(&mut self) -> LocalBoxFuture<'static, ()> {
            Box::pin(fut::ready(()))
        }
    }

    /// Records every state and log line; refuses to record while `fail` is set.
    #[derive(Default)]
    struct Book {
        states: std::sync::Mutex<Vec<TenantState>>,
        lines: std::sync::Mutex<Vec<String>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Journal for Book {
        fn record(
            &self,
            _: &str,
            state: TenantState,
            _: &'static str,
        ) -> LocalBoxFuture<'static, Result<(), String>> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Box::pin(fut::ready(Err("database down".to_string())));
            }
            self.states.lock().unwrap().push(state);
            Box::pin(fut::ready(Ok(())))
        }

        fn log(&self, _: &str, level: Level, line: &str) {
            self.lines.lock().unwrap().push(format!("[{}] {line}", level.as_str()));
        }

        fn show(&self, _: &str, _: Option<&ContainerView>) {}
    }

    fn setup<R: Runtime>(runtime: R, stored: TenantState, tokens: u64, now: i64) -> TenantSetup<R> {
        TenantSetup {
            id: "t".into(),
            runtime,
            stored,
            tokens_today: tokens,
            now_ms: now,
            circuit_threshold: 5,
            circuit_cooldown: Duration::from_secs(30),
            supervision: Supervision::default(),
            journal: std::sync::Arc::new(Book::default()),
        }
    }

    fn echo(tokens: u64, now: i64, threshold: u32, cooldown: Duration) -> Addr<TenantActor<Echo>> {
        let mut s = setup(Echo, TenantState::Running, tokens, now);
        s.circuit_threshold = threshold;
        s.circuit_cooldown = cooldown;
        TenantActor::new(s).start()
    }

    /// A runtime whose instances crash when told to, and take `delay` to start.
    #[derive(Clone, Default)]
    struct Crashy {
        /// The crash switch of the current instance.
        kill: std::rc::Rc<std::cell::RefCell<Option<tokio::sync::oneshot::Sender<()>>>>,
        starts: std::rc::Rc<std::cell::Cell<u32>>,
        stops: std::rc::Rc<std::cell::Cell<u32>>,
    }

    impl Crashy {
        fn crash(&self) {
            if let Some(k) = self.kill.borrow_mut().take() {
                let _ = k.send(());
            }
        }
    }

    impl Runtime for Crashy {
        type Turn = (String, u64, ProviderUse);
        type Reply = String;
        type Error = String;

        fn kind(&self) -> &'static str {
            "crashy"
        }

        fn converse(&mut self, turn: Self::Turn) -> LocalBoxFuture<'static, Ran<String, String>> {
            Echo.converse(turn)
        }

        fn start(&mut self) -> LocalBoxFuture<'static, Result<Started, String>> {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            *self.kill.borrow_mut() = Some(tx);
            self.starts.set(self.starts.get() + 1);
            let n = self.starts.get();
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(Started {
                    port: Some(40_000 + n as u16),
                    pid: Some(n),
                    exited: Box::pin(async move {
                        match rx.await {
                            Ok(()) => "killed by signal 9".to_string(),
                            // Dropped by a stop: never an exit the actor acts on.
                            Err(_) => std::future::pending().await,
                        }
                    }),
                })
            })
        }

        fn stop(&mut self) -> LocalBoxFuture<'static, ()> {
            self.kill.borrow_mut().take();
            self.stops.set(self.stops.get() + 1);
            Box::pin(fut::ready(()))
        }
    }

    async fn wait_for<R: Runtime>(actor: &Addr<TenantActor<R>>, state: TenantState) -> ContainerView {
        for _ in 0..400 {
            let view = actor.send(Inspect).await.unwrap();
            if view.status == state {
                return view;
            }
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never reached {state:?}");
    }

    fn limits() -> Limits {
        Limits { per_minute: Some(2), per_hour: Some(10), per_day: Some(100), daily_tokens: Some(100) }
    }

    fn converse<R: Runtime<Turn = (String, u64, ProviderUse)>>(
        text: &str,
        tokens: u64,
        provider: ProviderUse,
        now_ms: i64,
    ) -> Converse<R> {
        Converse {
            turn: (text.to_string(), tokens, provider),
            provider: "p".into(),
            limits: limits(),
            now_ms,
        }
    }

    #[actix_rt::test]
    async fn admits_up_to_the_minute_limit_then_refuses_until_the_window_ends() {
        let now = 1_700_000_050_000; // 10 s into a minute
        let actor = echo(0, now, 5, Duration::from_secs(30));
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
        let actor = echo(60, now, 5, Duration::from_secs(30));
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
        let actor = echo(0, now, 2, Duration::from_millis(50));
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
        let actor = TenantActor::new(setup(Echo, TenantState::Draft, 0, now)).start();
        let r = actor.send(converse("x", 0, ProviderUse::Succeeded, now)).await.unwrap();
        assert!(matches!(r, Err(ConverseError::NotRunning(TenantState::Draft))));
    }

    #[actix_rt::test]
    async fn deploy_goes_through_deploying_to_running_and_is_idempotent() {
        let book = std::sync::Arc::new(Book::default());
        let rt = Crashy::default();
        let mut s = setup(rt.clone(), TenantState::Draft, 0, 0);
        s.journal = book.clone();
        let actor = TenantActor::new(s).start();
        // Stop and restart of a draft are conflicts.
        assert!(matches!(actor.send(Stop).await.unwrap(), Err(LifecycleError::Conflict(_))));
        assert!(matches!(actor.send(Restart).await.unwrap(), Err(LifecycleError::Conflict(_))));
        actor.send(Deploy { fresh: None }).await.unwrap().unwrap();
        // Recorded before the answer; the instance is still starting.
        assert_eq!(*book.states.lock().unwrap(), vec![TenantState::Deploying]);
        actor.send(Deploy { fresh: None }).await.unwrap().unwrap();
        let view = wait_for(&actor, TenantState::Running).await;
        assert_eq!((view.port, view.pid, view.runtime), (Some(40_001), Some(1), "crashy"));
        assert!(view.running_since_ms.is_some());
        actor.send(Deploy { fresh: None }).await.unwrap().unwrap();
        assert_eq!(rt.starts.get(), 1, "deploy of a running container starts nothing");
        let now = wall_ms();
        assert_eq!(actor.send(converse("hi", 1, ProviderUse::Succeeded, now)).await.unwrap().unwrap(), "hi");
        actor.send(Stop).await.unwrap().unwrap();
        assert_eq!(rt.stops.get(), 1);
        let view = actor.send(Inspect).await.unwrap();
        assert_eq!((view.status, view.port, view.pid), (TenantState::Stopped, None, None));
        assert!(matches!(
            actor.send(converse("hi", 1, ProviderUse::Succeeded, now)).await.unwrap(),
            Err(ConverseError::NotRunning(TenantState::Stopped))
        ));
        actor.send(Stop).await.unwrap().unwrap();
        assert_eq!(
            *book.states.lock().unwrap(),
            vec![TenantState::Deploying, TenantState::Running, TenantState::Stopped]
        );
        // Restart from stopped runs it again.
        actor.send(Restart).await.unwrap().unwrap();
        wait_for(&actor, TenantState::Running).await;
        assert_eq!(rt.starts.get(), 2);
    }

    /// A journal whose record of `running` takes longer than the others, as
    /// a batch on a busy writer does while the next one commits on another.
    #[derive(Default)]
    struct SlowRunning {
        committed: std::sync::Arc<std::sync::Mutex<Vec<TenantState>>>,
    }

    impl Journal for SlowRunning {
        fn record(
            &self,
            _: &str,
            state: TenantState,
            _: &'static str,
        ) -> LocalBoxFuture<'static, Result<(), String>> {
            let delay = if state == TenantState::Running { 50 } else { 0 };
            let committed = self.committed.clone();
            Box::pin(async move {
                actix_rt::time::sleep(Duration::from_millis(delay)).await;
                committed.lock().unwrap().push(state);
                Ok(())
            })
        }

        fn log(&self, _: &str, _: Level, _: &str) {}

        fn show(&self, _: &str, _: Option<&ContainerView>) {}
    }

    #[actix_rt::test]
    async fn states_reach_the_journal_in_the_order_they_happened() {
        let journal = std::sync::Arc::new(SlowRunning::default());
        let mut s = setup(Echo, TenantState::Draft, 0, 0);
        s.journal = journal.clone();
        let actor = TenantActor::new(s).start();
        actor.send(Deploy { fresh: None }).await.unwrap().unwrap();
        // `running` is being recorded in the background when the stop comes.
        actor.send(Stop).await.unwrap().unwrap();
        assert_eq!(
            *journal.committed.lock().unwrap(),
            vec![TenantState::Deploying, TenantState::Running, TenantState::Stopped],
            "the stop was answered only after everything before it was recorded, in order"
        );
    }

    #[actix_rt::test]
    async fn a_crashed_instance_is_restarted_with_back_off_until_too_many_crashes() {
        let book = std::sync::Arc::new(Book::default());
        let rt = Crashy::default();
        let mut s = setup(rt.clone(), TenantState::Draft, 0, 0);
        s.journal = book.clone();
        s.supervision = Supervision {
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            max_restarts: 2,
            window: Duration::from_secs(60),
        };
        let actor = TenantActor::new(s).start();
        actor.send(Deploy { fresh: None }).await.unwrap().unwrap();
        wait_for(&actor, TenantState::Running).await;
        for n in 1..=2u32 {
            rt.crash();
            wait_for(&actor, TenantState::Deploying).await;
            let view = wait_for(&actor, TenantState::Running).await;
            assert_eq!(view.pid, Some(n + 1), "a new instance after crash {n}");
        }
        rt.crash();
        wait_for(&actor, TenantState::Error).await;
        assert_eq!(rt.starts.get(), 3);
        let lines = book.lines.lock().unwrap().join("\n");
        assert!(lines.contains("restarting in 10 ms"), "{lines}");
        assert!(lines.contains("restarting in 20 ms"), "{lines}");
        assert!(lines.contains("giving up"), "{lines}");
        assert_eq!(book.states.lock().unwrap().last(), Some(&TenantState::Error));
        // From error, deploy starts afresh with a clean crash count.
        actor.send(Deploy { fresh: None }).await.unwrap().unwrap();
        wait_for(&actor, TenantState::Running).await;
    }

    #[actix_rt::test]
    async fn a_stop_during_start_leaves_no_instance_and_a_stale_exit_is_ignored() {
        let rt = Crashy::default();
        let actor = TenantActor::new(setup(rt.clone(), TenantState::Draft, 0, 0)).start();
        actor.send(Deploy { fresh: None }).await.unwrap().unwrap();
        actor.send(Stop).await.unwrap().unwrap();
        actix_rt::time::sleep(Duration::from_millis(30)).await;
        let view = actor.send(Inspect).await.unwrap();
        assert_eq!(view.status, TenantState::Stopped);
        assert!(rt.stops.get() >= 2, "the instance that finished starting late was stopped too");
    }

    #[actix_rt::test]
    async fn a_container_that_was_running_runs_again_when_its_actor_starts() {
        let rt = Crashy::default();
        let actor = TenantActor::new(setup(rt.clone(), TenantState::Running, 0, 0)).start();
        wait_for(&actor, TenantState::Running).await;
        assert_eq!(rt.starts.get(), 1);
        // An embedded-like runtime is running before the first message.
        let actor = TenantActor::new(setup(Echo, TenantState::Running, 0, 0)).start();
        assert_eq!(actor.send(Inspect).await.unwrap().status, TenantState::Running);
    }

    #[actix_rt::test]
    async fn a_stop_the_journal_could_not_record_is_recorded_by_the_next_stop() {
        let book = std::sync::Arc::new(Book::default());
        let mut s = setup(Echo, TenantState::Running, 0, 0);
        s.journal = book.clone();
        let actor = TenantActor::new(s).start();
        book.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(actor.send(Stop).await.unwrap(), Err(LifecycleError::Journal(_))));
        assert!(book.states.lock().unwrap().is_empty());
        book.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        actor.send(Stop).await.unwrap().unwrap();
        assert_eq!(*book.states.lock().unwrap(), vec![TenantState::Stopped]);
        actor.send(Stop).await.unwrap().unwrap();
        assert_eq!(book.states.lock().unwrap().len(), 1, "nothing more to record");
    }

    #[actix_rt::test]
    async fn a_deploy_the_journal_cannot_record_changes_nothing() {
        let book = std::sync::Arc::new(Book::default());
        book.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut s = setup(Echo, TenantState::Stopped, 0, 0);
        s.journal = book.clone();
        let actor = TenantActor::new(s).start();
        assert!(matches!(actor.send(Deploy { fresh: None }).await.unwrap(), Err(LifecycleError::Journal(_))));
        assert_eq!(actor.send(Inspect).await.unwrap().status, TenantState::Stopped);
    }

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let s = Supervision {
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_restarts: 5,
            window: Duration::from_secs(60),
        };
        assert_eq!(s.backoff_for(1), Duration::from_millis(500));
        assert_eq!(s.backoff_for(2), Duration::from_secs(1));
        assert_eq!(s.backoff_for(4), Duration::from_secs(4));
        assert_eq!(s.backoff_for(40), Duration::from_secs(30));
    }
}
