//! The RoutingSupervisor: owns the `Router` (who can take what) and the
//! addresses of every ExpertActor and EscalationActor. All routing decisions
//! happen here, one message at a time, so no case is ever given to two
//! experts and no expert is ever over capacity. It never waits on the
//! database inside its mailbox: a new case is committed by a spawned future
//! and routed when the commit answers, so creates batch in group commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::engine::{
    CaseReply, CreateCase, EngineConfig, EngineError, ReadRouting, RegisterExpert, Restore, RoutingSnapshot,
    ToCase, ToExpert,
};
use crate::escalation::{EscalationActor, Reserve};
use crate::expert::{CaseResolvedBy, ExpertActor};
use crate::instrument::ActorKind;
use crate::model::{EscalationId, ExpertId};
use crate::persistence::{Change, Persistence};
use crate::records::{EscalationRecord, ExpertRecord};
use crate::routing::{Assignment, CaseTicket, ExpertProfile, Owner, Router};

pub static SUPERVISOR: ActorKind = ActorKind::new("routing_supervisor");

pub struct RoutingSupervisor {
    router: Router,
    persistence: Arc<dyn Persistence>,
    config: Arc<EngineConfig>,
    cases: HashMap<EscalationId, Addr<EscalationActor>>,
    experts: HashMap<ExpertId, Addr<ExpertActor>>,
    /// (domain, priority) gauges set non-zero last time, so they can be zeroed.
    published_depths: HashSet<(String, &'static str)>,
}

impl RoutingSupervisor {
    pub fn new(persistence: Arc<dyn Persistence>, config: EngineConfig) -> Self {
        RoutingSupervisor {
            router: Router::new(),
            persistence,
            config: Arc::new(config),
            cases: HashMap::new(),
            experts: HashMap::new(),
            published_depths: HashSet::new(),
        }
    }

    fn spawn_case(
        &mut self,
        record: EscalationRecord,
        schema: Option<Arc<crate::quality_gate::CompiledSchema>>,
        ctx: &mut Context<Self>,
    ) {
        let id = record.id;
        let actor = EscalationActor::new(
            record,
            schema,
            ctx.address(),
            self.persistence.clone(),
            self.config.clone(),
        );
        self.cases.insert(id, actor.start());
    }

    fn spawn_expert(&mut self, record: ExpertRecord, ctx: &mut Context<Self>) {
        let id = record.id;
        let actor = ExpertActor::new(record, ctx.address(), self.persistence.clone());
        self.experts.insert(id, actor.start());
    }

    /// Tells each case's actor to reserve it for its expert. A refusal needs
    /// no answer here: the actor reports a closed case or a failed reservation itself.
    fn apply(&mut self, assignments: Vec<Assignment>) {
        for a in assignments {
            metrics::counter!("switchboard_routing_assignments_total").increment(1);
            match self.cases.get(&a.case) {
                Some(addr) => {
                    crate::escalation::ESCALATION.enqueued();
                    addr.do_send(Reserve { expert: a.expert });
                }
                None => {
                    // The router only knows cases that have actors; a missing one was closed.
                    self.router.close(a.case);
                }
            }
        }
    }

    fn publish_depths(&mut self) {
        let mut now = HashSet::new();
        for (domain, priority, depth) in self.router.queue_depths() {
            let key = (domain.as_str().to_string(), priority.as_str());
            metrics::gauge!("switchboard_routing_queue_depth", "domain" => key.0.clone(), "priority" => key.1)
                .set(depth as f64);
            now.insert(key);
        }
        for (domain, priority) in self.published_depths.difference(&now) {
            metrics::gauge!("switchboard_routing_queue_depth", "domain" => domain.clone(), "priority" => *priority)
                .set(0.0);
        }
        self.published_depths = now;
        let (experts, cases) = self.router.sizes();
        metrics::gauge!("switchboard_routing_experts").set(experts as f64);
        metrics::gauge!("switchboard_routing_open_cases").set(cases as f64);
    }
}

pub fn ticket(r: &EscalationRecord) -> CaseTicket {
    CaseTicket {
        id: r.id,
        tenant: r.tenant.clone(),
        domain: r.domain.clone(),
        priority: r.priority,
        deadline_ms: r.sla_deadline_ms,
        arrival_ms: r.created_at_ms,
    }
}

pub fn profile(r: &ExpertRecord) -> ExpertProfile {
    ExpertProfile {
        id: r.id,
        owner: if r.platform { Owner::Platform } else { Owner::Tenant(r.tenant.clone()) },
        domains: r.domains.clone(),
        status: r.status,
        max_concurrent: r.max_concurrent,
        quality: r.quality_score(),
    }
}

impl Actor for RoutingSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        SUPERVISOR.started();
        ctx.set_mailbox_capacity(crate::engine::MAILBOX_CAPACITY);
        ctx.run_interval(Duration::from_millis(500), |act, _| act.publish_depths());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        SUPERVISOR.stopped();
    }
}

impl Handler<Restore> for RoutingSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Restore, ctx: &mut Self::Context) {
        let _t = SUPERVISOR.handling("Restore");
        for expert in msg.experts {
            let p = profile(&expert);
            self.spawn_expert(expert, ctx);
            // Nothing is queued yet, so this makes no assignment.
            let none = self.router.upsert_expert(p);
            debug_assert!(none.is_empty());
        }
        let mut pending = Vec::new();
        let mut assignments = Vec::new();
        for (record, schema) in msg.cases {
            let t = ticket(&record);
            let excluded = record.excluded.clone();
            match (record.status, record.expert_id) {
                (
                    crate::model::EscalationStatus::Routed | crate::model::EscalationStatus::InReview,
                    Some(e),
                ) => {
                    assignments.extend(self.router.restore_assigned(t, e, excluded));
                }
                _ => pending.push((t, excluded)),
            }
            self.spawn_case(record, schema, ctx);
        }
        // Queued cases take their turn in routing order.
        pending.sort_by(|a, b| {
            (a.0.priority, a.0.deadline_ms, a.0.arrival_ms, a.0.id).cmp(&(
                b.0.priority,
                b.0.deadline_ms,
                b.0.arrival_ms,
                b.0.id,
            ))
        });
        for (t, excluded) in pending {
            assignments.extend(self.router.submit(t, excluded));
        }
        self.apply(assignments);
        self.publish_depths();
    }
}

impl Handler<CreateCase> for RoutingSupervisor {
    type Result = ResponseActFuture<Self, Result<EscalationRecord, EngineError>>;

    fn handle(&mut self, msg: CreateCase, _: &mut Self::Context) -> Self::Result {
        let _t = SUPERVISOR.handling("CreateCase");
        let CreateCase { record, schema, idempotency, quotas, extra: own } = msg;
        let mut changes: Vec<Change> = quotas.into_iter().map(|q| Change::CheckQuota(Box::new(q))).collect();
        changes.push(Change::InsertEscalation(Box::new(record.clone())));
        if let Some(i) = idempotency {
            changes.push(Change::RecordIdempotency(Box::new(i)));
        }
        changes.extend(own);
        let extra = self.config.listener.opening_changes(&record);
        changes.extend(extra.iter().cloned());
        let commit = self.persistence.commit(changes);
        Box::pin(commit.into_actor(self).map(move |result, act, ctx| {
            result?;
            metrics::counter!("switchboard_escalations_created_total").increment(1);
            act.config.listener.opened(&record, &extra);
            let t = ticket(&record);
            act.spawn_case(record.clone(), schema, ctx);
            let assignments: Vec<Assignment> = act.router.submit(t, Vec::new()).into_iter().collect();
            act.apply(assignments);
            Ok(record)
        }))
    }
}

impl Handler<RegisterExpert> for RoutingSupervisor {
    type Result = ResponseActFuture<Self, Result<ExpertRecord, EngineError>>;

    fn handle(&mut self, msg: RegisterExpert, _: &mut Self::Context) -> Self::Result {
        let _t = SUPERVISOR.handling("RegisterExpert");
        let record = msg.0;
        let commit = self.persistence.commit(vec![Change::InsertExpert(Box::new(record.clone()))]);
        Box::pin(commit.into_actor(self).map(move |result, act, ctx| {
            result?;
            let p = profile(&record);
            act.spawn_expert(record.clone(), ctx);
            let assignments = act.router.upsert_expert(p);
            act.apply(assignments);
            Ok(record)
        }))
    }
}

impl Handler<ToCase> for RoutingSupervisor {
    type Result = ResponseFuture<Result<CaseReply, EngineError>>;

    fn handle(&mut self, msg: ToCase, _: &mut Self::Context) -> Self::Result {
        let _t = SUPERVISOR.handling("ToCase");
        let addr = self.cases.get(&msg.id).cloned();
        Box::pin(async move {
            let Some(addr) = addr else { return Err(EngineError::NotOpen) };
            crate::escalation::ESCALATION.enqueued();
            // A stopped actor means the case closed meanwhile: its final state is committed.
            addr.send(msg).await.unwrap_or(Err(EngineError::NotOpen))
        })
    }
}

impl Handler<ToExpert> for RoutingSupervisor {
    type Result = ResponseFuture<Result<ExpertRecord, EngineError>>;

    fn handle(&mut self, msg: ToExpert, _: &mut Self::Context) -> Self::Result {
        let _t = SUPERVISOR.handling("ToExpert");
        let addr = self.experts.get(&msg.id).cloned();
        Box::pin(async move {
            let Some(addr) = addr else { return Err(EngineError::NotFound) };
            crate::expert::EXPERT.enqueued();
            addr.send(msg).await.unwrap_or(Err(EngineError::Unavailable))
        })
    }
}

impl Handler<ReadRouting> for RoutingSupervisor {
    type Result = MessageResult<ReadRouting>;

    fn handle(&mut self, msg: ReadRouting, _: &mut Self::Context) -> Self::Result {
        let _t = SUPERVISOR.handling("ReadRouting");
        let (experts, open_cases) = self.router.sizes();
        MessageResult(RoutingSnapshot {
            queue_depths: self
                .router
                .queue_depths()
                .into_iter()
                .map(|(d, p, n)| (d.as_str().to_string(), p.as_str(), n))
                .collect(),
            experts,
            open_cases,
            expert_totals: self.router.expert_totals(),
            expert_loads: self.router.expert_loads(msg.loads),
        })
    }
}

// ---- from the engine's own actors ----

/// A case closed (resolved, cancelled or expired) and its actor stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CaseClosed {
    pub id: EscalationId,
    pub resolved_by: Option<ExpertId>,
}

impl Handler<CaseClosed> for RoutingSupervisor {
    type Result = ();

    fn handle(&mut self, msg: CaseClosed, _: &mut Self::Context) {
        let _t = SUPERVISOR.handling("CaseClosed");
        self.cases.remove(&msg.id);
        if let Some(expert) = msg.resolved_by {
            if let Some(addr) = self.experts.get(&expert) {
                crate::expert::EXPERT.enqueued();
                addr.do_send(CaseResolvedBy);
            }
        }
        let assignments = self.router.close(msg.id);
        self.apply(assignments);
    }
}

/// The expert gave the case back (decline, missed reservation), or the
/// reservation could not be recorded (`exclude` false).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct GiveBack {
    pub id: EscalationId,
    pub expert: ExpertId,
    pub exclude: bool,
}

impl Handler<GiveBack> for RoutingSupervisor {
    type Result = ();

    fn handle(&mut self, msg: GiveBack, _: &mut Self::Context) {
        let _t = SUPERVISOR.handling("GiveBack");
        let assignments = self.router.give_back(msg.id, msg.expert, msg.exclude);
        self.apply(assignments);
    }
}

/// An expert's routing profile changed (status, domains, capacity, quality).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ExpertChanged(pub ExpertProfile);

impl Handler<ExpertChanged> for RoutingSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ExpertChanged, _: &mut Self::Context) {
        let _t = SUPERVISOR.handling("ExpertChanged");
        let assignments = self.router.upsert_expert(msg.0);
        self.apply(assignments);
    }
}
