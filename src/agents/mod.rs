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
pub mod providers;
pub mod runtime;
pub mod sop_engine;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use serde_json::Value;
use switchboard_actors::engine::{CaseEvent, CaseListener};
use switchboard_actors::records::EscalationRecord;
use switchboard_actors::tenant::{
    read_only, Admit, Converse, ConverseError, Health, Limits, Refused, TenantActor, TenantState, TENANT,
};
use switchboard_actors::{Change, SessionEntry};

use crate::error::AppError;
use crate::settings::Settings;
use crate::store::{now_ms, Store};
use providers::Providers;
use runtime::{Embedded, Reply, Turn, TurnError};

type Tenant = Addr<TenantActor<Embedded>>;

pub struct Agents {
    pub providers: Providers,
    store: Store,
    actors: Mutex<HashMap<String, Tenant>>,
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
    circuit_threshold: u32,
    circuit_cooldown: Duration,
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
        }
    }

    fn existing(&self, tenant_id: &str) -> Option<Tenant> {
        let actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors.get(tenant_id).filter(|a| a.connected()).cloned()
    }

    /// The tenant's actor, started on first use with the day's token usage
    /// read from the database.
    async fn actor(&self, tenant_id: &str) -> Result<Tenant, AppError> {
        if let Some(a) = self.existing(tenant_id) {
            return Ok(a);
        }
        let now = now_ms();
        let day_start = now - now.rem_euclid(86_400_000);
        let used = self.store.tokens_since(tenant_id.to_string(), day_start).await?;
        let mut actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = actors.get(tenant_id).filter(|a| a.connected()) {
            return Ok(a.clone());
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        let (id, threshold, cooldown) =
            (tenant_id.to_string(), self.circuit_threshold, self.circuit_cooldown);
        let addr = TenantActor::start_in_arbiter(&self.arbiters[i], move |_| {
            TenantActor::new(id, Embedded::new(), used, now, threshold, cooldown)
        });
        actors.insert(tenant_id.to_string(), addr.clone());
        Ok(addr)
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

    /// Runs one turn in the tenant's actor.
    pub async fn converse(&self, status: TenantState, limits: Limits, turn: Turn) -> Result<Reply, AppError> {
        let actor = self.actor(&turn.tenant_id).await?;
        let provider = turn.provider();
        TENANT.enqueued();
        let answer =
            actor.send(Converse::<Embedded> { turn, provider, status, limits, now_ms: now_ms() }).await;
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
            Err(ConverseError::Runtime(TurnError::Store(e))) => Err(e.into()),
        }
    }

    /// Stops and forgets a deleted tenant's actor.
    pub fn forget(&self, tenant_id: &str) {
        let mut actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
        actors.remove(tenant_id);
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
