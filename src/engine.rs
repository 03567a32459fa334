//! The server's handle on the routing engine (the `switchboard-actors`
//! crate): starts the RoutingSupervisor on an arbiter of its own, rebuilds it
//! from the database at start-up, and turns engine errors into `AppError`s.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Arbiter};
use switchboard_actors::engine::{
    Caller, CaseCommand, CaseListener, CaseReply, CreateCase, EngineConfig, EngineError, ExpertCommand,
    ReadRouting, RegisterExpert, Restore, RoutingSnapshot, ToCase, ToExpert,
};
use switchboard_actors::model::{EscalationId, ExpertId, Priority};
use switchboard_actors::quality_gate::{summary, SchemaCache};
use switchboard_actors::records::{EscalationRecord, ExpertRecord};
use switchboard_actors::supervisor::{RoutingSupervisor, SUPERVISOR};

use crate::error::{AppError, FieldError};
use crate::outbound::OutboundGuard;
use crate::settings::Settings;
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct Engine {
    pub supervisor: Addr<RoutingSupervisor>,
    /// Every `output_schema` compiled once, shared by content.
    pub schemas: Arc<SchemaCache>,
    pub guard: OutboundGuard,
}

impl Engine {
    /// Starts an empty supervisor; `restore` fills it. `listener` (the webhook
    /// engine) hears of cases opening and closing. Must run inside an actix System.
    pub fn start(settings: &Settings, store: &Store, listener: Arc<dyn CaseListener>) -> Engine {
        let reservation = |p: Priority| settings.reservation_timeout.for_sla(settings.sla_for(p));
        let config = EngineConfig {
            reservation_urgent: reservation(Priority::Urgent),
            reservation_standard: reservation(Priority::Standard),
            reservation_batch: reservation(Priority::Batch),
            retry_after_failure: Duration::from_secs(1),
            listener,
        };
        let persistence: Arc<dyn switchboard_actors::Persistence> = Arc::new(store.clone());
        let arbiter = Arbiter::new();
        let supervisor = RoutingSupervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            RoutingSupervisor::new(persistence, config)
        });
        Engine {
            supervisor,
            schemas: Arc::new(SchemaCache::new()),
            guard: OutboundGuard::from_settings(settings),
        }
    }

    /// Rebuilds every expert and open case (with its timers) from the database.
    pub async fn restore(&self, store: &Store) -> Result<(usize, usize), StoreError> {
        let operator = store.operator_tenant().await?.map(|t| t.id);
        let experts: Vec<ExpertRecord> = store
            .all_experts()
            .await?
            .into_iter()
            .map(|row| {
                let platform = Some(&row.tenant_id) == operator.as_ref();
                row.into_record(platform)
            })
            .collect::<Result<_, _>>()?;
        let mut cases = Vec::new();
        for record in store.open_escalations().await? {
            let schema = match &record.output_schema {
                // It compiled when the case was created; a failure now would be a bug or a crate change.
                Some(s) => match self.schemas.compile(s) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::error!(escalation = %record.id, error = %e, "stored output_schema no longer compiles; the case will accept any answer");
                        None
                    }
                },
                None => None,
            };
            cases.push((record, schema));
        }
        let counts = (experts.len(), cases.len());
        SUPERVISOR.enqueued();
        SUPERVISOR.enqueued();
        self.supervisor
            .send(Restore { experts, cases })
            .await
            .map_err(|e| StoreError::Unavailable(format!("routing engine: {e}")))?;
        Ok(counts)
    }

    /// Engine errors come back unmapped: the caller tells a duplicate idempotency record apart.
    pub async fn create(&self, msg: CreateCase) -> Result<EscalationRecord, EngineError> {
        SUPERVISOR.enqueued();
        self.supervisor.send(msg).await.unwrap_or(Err(EngineError::Unavailable))
    }

    pub async fn register(&self, record: ExpertRecord) -> Result<ExpertRecord, AppError> {
        SUPERVISOR.enqueued();
        self.supervisor.send(RegisterExpert(record)).await.map_err(mailbox)?.map_err(engine_error)
    }

    /// A command for an open case; `Ok(None)` when it is not open (read the database).
    pub async fn case(
        &self,
        id: EscalationId,
        caller: Caller,
        command: CaseCommand,
    ) -> Result<Option<CaseReply>, AppError> {
        SUPERVISOR.enqueued();
        match self.supervisor.send(ToCase { id, caller, command }).await.map_err(mailbox)? {
            Ok(reply) => Ok(Some(reply)),
            Err(EngineError::NotOpen) => Ok(None),
            Err(e) => Err(engine_error(e)),
        }
    }

    pub async fn expert(
        &self,
        id: ExpertId,
        caller: Caller,
        command: ExpertCommand,
    ) -> Result<ExpertRecord, AppError> {
        SUPERVISOR.enqueued();
        self.supervisor.send(ToExpert { id, caller, command }).await.map_err(mailbox)?.map_err(engine_error)
    }

    /// The router's live picture with its `loads` most loaded experts (monitoring).
    pub async fn routing(&self, loads: usize) -> Result<RoutingSnapshot, AppError> {
        SUPERVISOR.enqueued();
        self.supervisor.send(ReadRouting { loads }).await.map_err(mailbox)
    }
}

fn mailbox(e: actix::MailboxError) -> AppError {
    tracing::error!(error = %e, "routing engine unreachable");
    AppError::Unavailable { code: "CIRCUIT_OPEN", message: "the routing engine is unavailable".into() }
}

pub fn engine_error(e: EngineError) -> AppError {
    match e {
        EngineError::NotFound | EngineError::NotOpen => AppError::NotFound("Not found".into()),
        EngineError::Conflict(m) => AppError::Conflict(m),
        EngineError::Gate(errors) => AppError::Unprocessable {
            message: summary(&errors),
            errors: errors.into_iter().map(|g| FieldError { path: g.path, message: g.message }).collect(),
        },
        EngineError::Persist(p) => match p {
            switchboard_actors::PersistError::Unavailable(m) => StoreError::Unavailable(m).into(),
            switchboard_actors::PersistError::Duplicate(m) => StoreError::Duplicate(m).into(),
            switchboard_actors::PersistError::Limited { message, retry_after_secs } => {
                AppError::RateLimited { message, retry_after_secs }
            }
            other => AppError::internal(other),
        },
        EngineError::Limited { message, retry_after_secs } => {
            AppError::RateLimited { message, retry_after_secs }
        }
        EngineError::Unavailable => AppError::Unavailable {
            code: "CIRCUIT_OPEN",
            message: "the routing engine is unavailable".into(),
        },
    }
}
