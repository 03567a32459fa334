//! Agent hosting: each tenant's "container" is a `TenantActor`
//! (`switchboard_actors::tenant`) running its Cerebrals on a runtime.
//!
//! - `config` — the tenant's stored container config and the plan's limits.
//! - `providers` — the built-in offline model and the OpenAI-compatible client.
//! - `sop_engine` — SOP matching and templates.
//! - `runtime` — the `embedded` runtime: one turn, from memory to commit.
//!
//! `Agents` starts tenant actors on demand, spread over a few arbiters, and is
//! how handlers reach them. `SessionMemory` is the routing engine's listener
//! that puts an expert's answer into the session an SOP escalated from, in the
//! same transaction as the resolution.

pub mod config;
pub mod logs;
pub mod process;
pub mod providers;
pub mod resources;
pub mod runtime;
pub mod sop_engine;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use switchboard_actors::engine::{CaseEvent, CaseListener};
use switchboard_actors::records::EscalationRecord;
use switchboard_actors::tenant::{
    read_only, Admit, Converse, ConverseError, Deploy, Health, Inspect, Journal, Level, LifecycleError,
    Limits, Probe, Refused, Restart, Shutdown, Stop, Supervision, TenantActor, TenantSetup, TenantState,
    TENANT,
};
use switchboard_actors::{Change, SessionEntry};

use crate::error::AppError;
use crate::settings::{Settings, TenantRuntime};
use crate::store::identity::{set_tenant_status, TenantRow};
use crate::store::{now_ms, Store, WriteRequest};
use logs::TenantLog;
use process::{Process, ProcessSpec};
use providers::Providers;
use runtime::{Embedded, Hosted, Reply, Turn, TurnError};

type Tenant = Addr<TenantActor<Hosted>>;

/// What a tenant's container looks like now, as its actor last reported it.
pub type Container = switchboard_actors::tenant::ContainerView;

/// Every live container's view, written by the tenant actors and read by
/// the status, listing and monitoring handlers without a round trip.
pub type Board = Arc<Mutex<HashMap<String, Container>>>;

/// How the `process` runtime starts children.
#[derive(Debug, Clone)]
struct ProcessSettings {
    bin: PathBuf,
    env: Vec<(String, String)>,
    start_timeout: Duration,
    call_timeout: Duration,
}

/// A runtime not built yet: it is built on the tenant actor's own thread.
enum RuntimeSpec {
    Embedded,
    Process(Box<ProcessSpec>),
}

impl RuntimeSpec {
    fn build(self) -> Hosted {
        match self {
            RuntimeSpec::Embedded => Hosted::Embedded(Embedded::new()),
            RuntimeSpec::Process(spec) => Hosted::process(Process::new(*spec)),
        }
    }
}

/// The containers' journal: states into `tenants`, lines into each tenant's
/// log file, views onto the board.
struct StoreJournal {
    store: Store,
    board: Board,
    data_dir: PathBuf,
}

impl Journal for StoreJournal {
    fn record(
        &self,
        tenant: &str,
        state: TenantState,
        runtime: &'static str,
    ) -> LocalBoxFuture<'static, Result<(), String>> {
        let (store, tenant) = (self.store.clone(), tenant.to_string());
        Box::pin(async move {
            let write = set_tenant_status(tenant, state.as_str(), runtime);
            store.submit(WriteRequest(vec![write])).await.map_err(|e| e.to_string())
        })
    }

    fn log(&self, tenant: &str, level: Level, line: &str) {
        TenantLog::in_dir(&self.data_dir.join(tenant)).write(level, line);
    }

    fn show(&self, tenant: &str, view: Option<&Container>) {
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        match view {
            Some(v) => {
                board.insert(tenant.to_string(), v.clone());
            }
            None => {
                board.remove(tenant);
            }
        }
    }
}

pub struct Agents {
    pub providers: Providers,
    store: Store,
    actors: Mutex<HashMap<String, Tenant>>,
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
    circuit_threshold: u32,
    circuit_cooldown: Duration,
    supervision: Supervision,
    choice: TenantRuntime,
    process: ProcessSettings,
    board: Board,
    journal: Arc<StoreJournal>,
    data_dir: PathBuf,
}

/// Why a request was refused before its turn ran, with the health to report.
pub enum AdmitError {
    Limited(Refused),
    Unavailable(AppError),
}

impl Agents {
    /// Must run inside an actix System. Tenant actors run on one arbiter per core.
    pub fn start(settings: &Settings, store: &Store) -> Agents {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8);
        let arbiters = (0..threads).map(|_| Arbiter::new().handle()).collect();
        let board = Board::default();
        let data_dir = settings.data_dir.join("tenants");
        let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
        Agents {
            providers: Providers::new(
                crate::outbound::OutboundGuard::from_settings(settings),
                settings.provider_timeout,
            ),
            store: store.clone(),
            actors: Mutex::new(HashMap::new()),
            arbiters,
            next: AtomicUsize::new(0),
            circuit_threshold: settings.provider_circuit_threshold,
            circuit_cooldown: settings.provider_circuit_cooldown,
            supervision: Supervision {
                backoff: settings.runtime_restart_backoff,
                max_backoff: Duration::from_secs(30).max(settings.runtime_restart_backoff),
                max_restarts: settings.runtime_max_restarts,
                window: settings.runtime_restart_window,
            },
            choice: settings.tenant_runtime,
            process: ProcessSettings {
                bin: settings
                    .runtime_bin
                    .clone()
                    .or_else(|| std::env::current_exe().ok())
                    .unwrap_or_else(|| PathBuf::from("switchboard")),
                env: child_env(settings),
                start_timeout: settings.runtime_start_timeout,
                call_timeout: settings.provider_timeout + Duration::from_secs(5),
            },
            journal: Arc::new(StoreJournal {
                store: store.clone(),
                board: board.clone(),
                data_dir: data_dir.clone(),
            }),
            board,
            data_dir,
        }
    }

    /// The tenant's container as its actor last reported it; `None` when no
    /// actor runs for it in this process (its stored status is then the truth).
    pub fn container(&self, tenant_id: &str) -> Option<Container> {
        self.board.lock().unwrap_or_else(|e| e.into_inner()).get(tenant_id).cloned()
    }

    /// Every container with a live actor.
    pub fn containers(&self) -> Vec<(String, Container)> {
        let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        board.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The tenant's own directory: its logs, and the `process` runtime's working directory.
    pub fn data_dir(&self, tenant_id: &str) -> PathBuf {
        self.data_dir.join(tenant_id)
    }

    /// The tenant's log.
    pub fn log(&self, tenant_id: &str) -> TenantLog {
        TenantLog::in_dir(&self.data_dir(tenant_id))
    }

    fn spec(&self, tenant_id: &str, kind: &str) -> RuntimeSpec {
        if kind != "process" {
            return RuntimeSpec::Embedded;
        }
        let dir = self.data_dir(tenant_id);
        RuntimeSpec::Process(Box::new(ProcessSpec {
            bin: self.process.bin.clone(),
            tenant_id: tenant_id.to_string(),
            log: TenantLog::in_dir(&dir),
            dir,
            env: self.process.env.clone(),
            start_timeout: self.process.start_timeout,
            call_timeout: self.process.call_timeout,
        }))
    }

    fn existing(&self, tenant_id: &str) -> Option<Tenant> {
        let actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors.get(tenant_id).filter(|a| a.connected()).cloned()
    }

    /// The tenant's actor, started on first use from its stored state, with
    /// the day's token usage read from the database.
    async fn actor(&self, tenant_id: &str) -> Result<Tenant, AppError> {
        if let Some(a) = self.existing(tenant_id) {
            return Ok(a);
        }
        let row = self.store.existing_tenant(tenant_id).await?;
        self.actor_for(row).await
    }

    async fn actor_for(&self, row: TenantRow) -> Result<Tenant, AppError> {
        let now = now_ms();
        let day_start = now - now.rem_euclid(86_400_000);
        let used = self.store.tokens_since(row.id.clone(), day_start).await?;
        let stored = TenantState::parse(&row.status).ok_or_else(|| {
            AppError::internal(format!("tenant {} has a bad status {:?}", row.id, row.status))
        })?;
        let mut actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = actors.get(&row.id).filter(|a| a.connected()) {
            return Ok(a.clone());
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        let spec = self.spec(&row.id, &row.runtime);
        let setup = (
            row.id.clone(),
            stored,
            used,
            now,
            self.circuit_threshold,
            self.circuit_cooldown,
            self.supervision,
            self.journal.clone() as Arc<dyn Journal>,
        );
        let addr = TenantActor::start_in_arbiter(&self.arbiters[i], move |_| {
            let (id, stored, tokens_today, now_ms, circuit_threshold, circuit_cooldown, supervision, journal) =
                setup;
            TenantActor::new(TenantSetup {
                id,
                runtime: spec.build(),
                stored,
                tokens_today,
                now_ms,
                circuit_threshold,
                circuit_cooldown,
                supervision,
                journal,
            })
        });
        actors.insert(row.id, addr.clone());
        Ok(addr)
    }

    /// Starts the actor of every tenant that was `running` (or `deploying`)
    /// when the server stopped: their containers run again.
    pub async fn restore(&self) -> Result<usize, AppError> {
        let rows = self.store.tenants_with_status(&["running", "deploying"]).await?;
        let n = rows.len();
        for row in rows {
            self.actor_for(row).await?;
        }
        Ok(n)
    }

    /// Deploys on the runtime chosen for newly deployed tenants; idempotent.
    pub async fn deploy(&self, tenant_id: &str) -> Result<(), AppError> {
        let actor = self.actor(tenant_id).await?;
        let kind = match self.choice {
            TenantRuntime::Embedded => "embedded",
            TenantRuntime::Process => "process",
        };
        let spec = self.spec(tenant_id, kind);
        let fresh: Box<dyn FnOnce() -> Hosted + Send> = Box::new(move || spec.build());
        lifecycle(actor.send(Deploy { fresh: Some(fresh) }).await)
    }

    pub async fn restart(&self, tenant_id: &str) -> Result<(), AppError> {
        let actor = self.actor(tenant_id).await?;
        lifecycle(actor.send(Restart).await)
    }

    pub async fn stop(&self, tenant_id: &str) -> Result<(), AppError> {
        let actor = self.actor(tenant_id).await?;
        lifecycle(actor.send(Stop).await)
    }

    /// The container now (its actor is started if it was not).
    pub async fn inspect(&self, tenant_id: &str) -> Result<Container, AppError> {
        let actor = self.actor(tenant_id).await?;
        actor.send(Inspect).await.map_err(unreachable)
    }

    /// The `process` child's own status; `None` on the embedded runtime.
    pub async fn child_status(&self, tenant_id: &str) -> Result<Option<Result<Value, String>>, AppError> {
        let actor = self.actor(tenant_id).await?;
        // Awaited on the actor's thread, where the child's client lives.
        let answer = actor
            .send(Probe::<Hosted, Option<Result<Value, String>>> {
                f: Box::new(|rt: &mut Hosted| match rt.child_status() {
                    Some(status) => Box::pin(async move { Some(status.await) }),
                    None => Box::pin(std::future::ready(None)),
                }),
            })
            .await
            .map_err(unreachable)?;
        Ok(answer)
    }

    /// Counts a request against the tenant's windows (`count`), or only reads its health.
    pub async fn admit(&self, tenant_id: &str, limits: Limits, count: bool) -> Result<Health, AdmitError> {
        let actor = self.actor(tenant_id).await.map_err(AdmitError::Unavailable)?;
        TENANT.enqueued();
        let msg = if count { Admit { limits, count, now_ms: now_ms() } } else { read_only(limits, now_ms()) };
        match actor.send(msg).await {
            Ok(Ok(health)) => Ok(health),
            Ok(Err(refused)) => Err(AdmitError::Limited(refused)),
            Err(e) => Err(AdmitError::Unavailable(unreachable(e))),
        }
    }

    /// Runs one turn in the tenant's actor, on whichever runtime it runs.
    pub async fn converse(&self, limits: Limits, turn: Turn) -> Result<Reply, AppError> {
        let actor = self.actor(&turn.tenant_id).await?;
        let provider = turn.provider();
        TENANT.enqueued();
        let answer = actor.send(Converse::<Hosted> { turn, provider, limits, now_ms: now_ms() }).await;
        match answer.map_err(unreachable)? {
            Ok(reply) => Ok(reply),
            Err(ConverseError::NotRunning(s)) => Err(AppError::Unavailable {
                code: "TENANT_NOT_RUNNING",
                message: format!("the tenant's container is {}, not running: deploy it first", s.as_str()),
            }),
            Err(ConverseError::BudgetExhausted { used, budget, .. }) => {
                Err(AppError::PaymentRequired(format!(
                "the daily LLM budget of {budget} tokens is spent ({used} used); it resets at midnight UTC"
            )))
            }
            Err(ConverseError::CircuitOpen { provider, retry_after }) => Err(AppError::Unavailable {
                code: "CIRCUIT_OPEN",
                message: format!(
                    "the circuit to model provider {provider:?} is open after repeated failures; \
                     retry in {}s",
                    retry_after.as_secs().max(1)
                ),
            }),
            Err(ConverseError::Runtime(TurnError::Provider(e))) => Err(AppError::Unavailable {
                code: "CIRCUIT_OPEN",
                message: format!("the model provider is unavailable: {}", e.message()),
            }),
            Err(ConverseError::Runtime(TurnError::Runtime(e))) => Err(AppError::Unavailable {
                code: "TENANT_NOT_RUNNING",
                message: format!("the tenant's runtime could not take the message: {e}"),
            }),
            Err(ConverseError::Runtime(TurnError::Store(e))) => Err(e.into()),
        }
    }

    /// Stops a deleted tenant's runtime and its actor, and forgets them.
    pub async fn remove(&self, tenant_id: &str) {
        let actor = {
            let mut actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
            actors.remove(tenant_id)
        };
        if let Some(actor) = actor {
            if let Err(e) = actor.send(Shutdown).await {
                tracing::warn!(tenant = %tenant_id, error = %e, "tenant actor gone before its shutdown");
            }
        }
        self.board.lock().unwrap_or_else(|e| e.into_inner()).remove(tenant_id);
    }
}

/// What the `process` runtime's children are told: the outbound policy and
/// the provider timeout of this server; quiet tracing (their stdout is the
/// tenant's log).
fn child_env(settings: &Settings) -> Vec<(String, String)> {
    let mut env = vec![
        ("SWITCHBOARD_PROVIDER_TIMEOUT".to_string(), format!("{}ms", settings.provider_timeout.as_millis())),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE".to_string(), settings.webhook_allow_private.to_string()),
        ("SWITCHBOARD_LOG".to_string(), "warn".to_string()),
        ("SWITCHBOARD_LOG_FORMAT".to_string(), "text".to_string()),
    ];
    let allow = settings
        .outbound_allow
        .as_ref()
        .map(|nets| nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","));
    env.push(("SWITCHBOARD_OUTBOUND_ALLOW".to_string(), allow.unwrap_or_default()));
    env
}

fn lifecycle(answer: Result<Result<(), LifecycleError>, actix::MailboxError>) -> Result<(), AppError> {
    match answer.map_err(unreachable)? {
        Ok(()) => Ok(()),
        Err(LifecycleError::Conflict(m)) => Err(AppError::Conflict(m)),
        Err(LifecycleError::Journal(m)) => {
            Err(AppError::internal(format!("cannot record the container's state: {m}")))
        }
    }
}

fn unreachable(e: actix::MailboxError) -> AppError {
    tracing::error!(error = %e, "tenant actor unreachable");
    AppError::Unavailable {
        code: "TENANT_NOT_RUNNING",
        message: "the tenant's container is unavailable".into(),
    }
}

/// Puts the expert's answer to an SOP's escalation into its session's memory,
/// atomically with the resolution (the store's `JoinSession` finds the session).
pub struct SessionMemory;

impl SessionMemory {
    fn from_a_cerebral(r: &EscalationRecord) -> bool {
        // Only a hint to skip the lookup: the link table decides.
        r.metadata.as_ref().and_then(|m| m.get("source")).and_then(Value::as_str) == Some("cerebral")
    }
}

impl CaseListener for SessionMemory {
    fn closing_changes(&self, r: &EscalationRecord, event: CaseEvent) -> Vec<Change> {
        if !Self::from_a_cerebral(r) {
            return Vec::new();
        }
        // An expert's answer; an expiry is a note of the system's, not an answer.
        let (role, content) = match (event, &r.resolution) {
            (CaseEvent::Resolved, Some(res)) => match &res.answer {
                Value::String(s) => ("expert", s.clone()),
                other => ("expert", other.to_string()),
            },
            (CaseEvent::Expired, _) => {
                ("system", "The escalation to a human expert expired without an answer.".to_string())
            }
            _ => return Vec::new(),
        };
        vec![Change::JoinSession(Box::new(SessionEntry {
            id: crate::store::sessions::memory_id(),
            escalation_id: r.id.to_string(),
            role: role.into(),
            content,
            at_ms: now_ms(),
        }))]
    }
}

/// Several listeners as one. Each is given every change the others added
/// too; each acts only on the kinds of change it made.
pub struct Listeners(pub Vec<Arc<dyn CaseListener>>);

impl CaseListener for Listeners {
    fn opening_changes(&self, r: &EscalationRecord) -> Vec<Change> {
        self.0.iter().flat_map(|l| l.opening_changes(r)).collect()
    }

    fn opened(&self, r: &EscalationRecord, changes: &[Change]) {
        self.0.iter().for_each(|l| l.opened(r, changes));
    }

    fn closing_changes(&self, r: &EscalationRecord, event: CaseEvent) -> Vec<Change> {
        self.0.iter().flat_map(|l| l.closing_changes(r, event)).collect()
    }

    fn closed(&self, r: &EscalationRecord, event: CaseEvent, changes: &[Change]) {
        self.0.iter().for_each(|l| l.closed(r, event, changes));
    }
}
