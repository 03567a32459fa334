//! The EscalationActor: one per open case. It owns the case's lifecycle, its
//! SLA and reservation timers and its long-poll waiters. Every transition is
//! committed before the actor's state changes and before anyone is answered;
//! transitions run one at a time (the mailbox waits while one commits), so
//! a timer and an expert can never both win.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::engine::{
    now_ms, until, Caller, CaseCommand, CaseEvent, CaseReply, DeclineInput, EngineConfig, EngineError,
    ResolveInput, ToCase,
};
use crate::instrument::ActorKind;
use crate::model::{EscalationStatus, ExpertId};
use crate::persistence::{Change, EventRecord, Persistence};
use crate::quality_gate::{check_resolution, CompiledSchema};
use crate::records::{EscalationRecord, Resolution};
use crate::supervisor::{CaseClosed, GiveBack, RoutingSupervisor};

pub static ESCALATION: ActorKind = ActorKind::new("escalation");

pub struct EscalationActor {
    record: EscalationRecord,
    schema: Option<Arc<CompiledSchema>>,
    supervisor: Addr<RoutingSupervisor>,
    persistence: Arc<dyn Persistence>,
    config: Arc<EngineConfig>,
    waiters: Vec<oneshot::Sender<EscalationRecord>>,
    reservation_timer: Option<SpawnHandle>,
}

/// From the supervisor: the router chose `expert` for this pending case.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reserve {
    pub expert: ExpertId,
}

fn event(record: &EscalationRecord, kind: &str, payload: serde_json::Value) -> Change {
    Change::AppendEvent(EventRecord {
        id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        stream: record.stream(),
        kind: kind.to_string(),
        payload,
        at_ms: record.updated_at_ms,
    })
}

type Transition = ResponseActFuture<EscalationActor, Result<CaseReply, EngineError>>;

impl EscalationActor {
    pub(crate) fn new(
        record: EscalationRecord,
        schema: Option<Arc<CompiledSchema>>,
        supervisor: Addr<RoutingSupervisor>,
        persistence: Arc<dyn Persistence>,
        config: Arc<EngineConfig>,
    ) -> Self {
        EscalationActor {
            record,
            schema,
            supervisor,
            persistence,
            config,
            waiters: Vec::new(),
            reservation_timer: None,
        }
    }

    fn visible_to(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Tenant(t) => *t == self.record.tenant,
            Caller::Expert(e) => self.record.expert_id == Some(*e),
            Caller::Trusted => true,
        }
    }

    /// Commits `next` with `changes`, then makes it the actor's state.
    fn commit(
        &mut self,
        next: EscalationRecord,
        mut changes: Vec<Change>,
    ) -> impl ActorFuture<Self, Output = Result<(), EngineError>> {
        changes.insert(0, Change::UpdateEscalation(Box::new(next.clone())));
        self.persistence.commit(changes).into_actor(self).map(move |result, act, _| {
            result?;
            act.record = next;
            Ok(())
        })
    }

    fn schedule_reservation(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.reservation_timer.take() {
            ctx.cancel_future(h);
        }
        if let (EscalationStatus::Routed, Some(expert), Some(routed_at)) =
            (self.record.status, self.record.expert_id, self.record.routed_at_ms)
        {
            let deadline = routed_at + self.config.reservation_for(self.record.priority).as_millis() as i64;
            self.reservation_timer =
                Some(ctx.run_later(until(deadline), move |act, ctx| act.reservation_missed(expert, ctx)));
        }
    }

    fn cancel_reservation(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.reservation_timer.take() {
            ctx.cancel_future(h);
        }
    }

    /// After a closing commit: wake waiters, tell listeners and the supervisor, stop.
    fn closed(&mut self, how: CaseEvent, extra: &[Change], ctx: &mut Context<Self>) {
        for w in self.waiters.drain(..) {
            let _ = w.send(self.record.clone());
        }
        if how != CaseEvent::Cancelled {
            self.config.listener.closed(&self.record, how, extra);
        }
        let resolved_by = (how == CaseEvent::Resolved).then_some(self.record.expert_id).flatten();
        crate::supervisor::SUPERVISOR.enqueued();
        self.supervisor.do_send(CaseClosed { id: self.record.id, resolved_by });
        ctx.stop();
    }

    fn reservation_missed(&mut self, expert: ExpertId, ctx: &mut Context<Self>) {
        ESCALATION.enqueued(); // a timer firing counts as a message
        let _t = ESCALATION.handling("ReservationMissed");
        self.reservation_timer = None;
        if self.record.status != EscalationStatus::Routed || self.record.expert_id != Some(expert) {
            return;
        }
        let mut next = self.record.clone();
        next.status = EscalationStatus::Pending;
        next.expert_id = None;
        next.routed_at_ms = None;
        next.excluded.push(expert);
        next.updated_at_ms = now_ms();
        let ev = event(&next, "escalation.reservation_missed", serde_json::json!({ "expert_id": expert }));
        let fut = self.commit(next, vec![ev]).map(move |result, act, ctx| match result {
            Ok(()) => {
                metrics::counter!("switchboard_routing_reservation_timeouts_total").increment(1);
                crate::supervisor::SUPERVISOR.enqueued();
                act.supervisor.do_send(GiveBack { id: act.record.id, expert, exclude: true });
            }
            Err(e) => {
                tracing::warn!(escalation = %act.record.id, error = %e, "could not record a missed reservation; retrying");
                act.reservation_timer = Some(
                    ctx.run_later(act.config.retry_after_failure, move |act, ctx| act.reservation_missed(expert, ctx)),
                );
            }
        });
        ctx.wait(fut);
    }

    fn sla_passed(&mut self, ctx: &mut Context<Self>) {
        ESCALATION.enqueued(); // a timer firing counts as a message
        let _t = ESCALATION.handling("SlaPassed");
        if !self.record.status.is_open() {
            return;
        }
        let mut next = self.record.clone();
        next.status = EscalationStatus::Expired;
        next.closed_at_ms = Some(now_ms());
        next.updated_at_ms = next.closed_at_ms.unwrap_or_default();
        let mut changes = vec![event(&next, "escalation.expired", serde_json::json!({}))];
        let extra = self.config.listener.closing_changes(&next, CaseEvent::Expired);
        changes.extend(extra.iter().cloned());
        let fut = self.commit(next, changes).map(move |result, act, ctx| match result {
            Ok(()) => {
                metrics::counter!("switchboard_escalations_expired_total").increment(1);
                act.cancel_reservation(ctx);
                act.closed(CaseEvent::Expired, &extra, ctx);
            }
            Err(e) => {
                tracing::warn!(escalation = %act.record.id, error = %e, "could not record an expiry; retrying");
                ctx.run_later(act.config.retry_after_failure, |act, ctx| act.sla_passed(ctx));
            }
        });
        ctx.wait(fut);
    }

    fn reply(&self) -> CaseReply {
        CaseReply::Record(Box::new(self.record.clone()))
    }

    fn cancel(&mut self) -> Transition {
        if !matches!(self.record.status, EscalationStatus::Pending | EscalationStatus::Routed) {
            return conflict(format!(
                "an escalation that is {} cannot be cancelled",
                self.record.status.as_str()
            ));
        }
        let mut next = self.record.clone();
        next.status = EscalationStatus::Cancelled;
        next.closed_at_ms = Some(now_ms());
        next.updated_at_ms = next.closed_at_ms.unwrap_or_default();
        let ev = event(&next, "escalation.cancelled", serde_json::json!({}));
        Box::pin(self.commit(next, vec![ev]).map(|result, act, ctx| {
            result?;
            metrics::counter!("switchboard_escalations_cancelled_total").increment(1);
            act.cancel_reservation(ctx);
            let reply = act.reply();
            act.closed(CaseEvent::Cancelled, &[], ctx);
            Ok(reply)
        }))
    }

    fn accept(&mut self, expert: ExpertId) -> Transition {
        if self.record.status != EscalationStatus::Routed {
            return conflict(format!(
                "an escalation that is {} cannot be accepted",
                self.record.status.as_str()
            ));
        }
        let mut next = self.record.clone();
        next.status = EscalationStatus::InReview;
        next.accepted_at_ms = Some(now_ms());
        next.updated_at_ms = next.accepted_at_ms.unwrap_or_default();
        let ev = event(&next, "escalation.accepted", serde_json::json!({ "expert_id": expert }));
        Box::pin(self.commit(next, vec![ev]).map(|result, act, ctx| {
            result?;
            act.cancel_reservation(ctx);
            Ok(act.reply())
        }))
    }

    fn resolve(&mut self, expert: ExpertId, input: ResolveInput) -> Transition {
        if !matches!(self.record.status, EscalationStatus::Routed | EscalationStatus::InReview) {
            return conflict(format!(
                "an escalation that is {} cannot be resolved",
                self.record.status.as_str()
            ));
        }
        if let Err(errors) = check_resolution(self.schema.as_deref(), &input.answer, input.confidence) {
            return Box::pin(fut::ready(Err(EngineError::Gate(errors))));
        }
        let at = now_ms();
        let mut next = self.record.clone();
        next.status = EscalationStatus::Resolved;
        next.resolved_at_ms = Some(at);
        next.updated_at_ms = at;
        next.resolution = Some(Resolution {
            answer: input.answer,
            confidence: input.confidence,
            reasoning: input.reasoning,
            expert_id: expert,
            resolved_at_ms: at,
            source_candidate_id: input.source_candidate_id,
            candidate_action: input.candidate_action,
        });
        let mut changes = vec![
            Change::CountResolution(expert),
            event(&next, "escalation.resolved", serde_json::json!({ "expert_id": expert })),
        ];
        let extra = self.config.listener.closing_changes(&next, CaseEvent::Resolved);
        changes.extend(extra.iter().cloned());
        Box::pin(self.commit(next, changes).map(move |result, act, ctx| {
            result?;
            metrics::counter!("switchboard_escalations_resolved_total").increment(1);
            let secs = (act.record.updated_at_ms - act.record.created_at_ms).max(0) as f64 / 1000.0;
            metrics::histogram!("switchboard_escalation_resolution_seconds").record(secs);
            act.cancel_reservation(ctx);
            let reply = act.reply();
            act.closed(CaseEvent::Resolved, &extra, ctx);
            Ok(reply)
        }))
    }

    fn decline(&mut self, expert: ExpertId, input: DeclineInput) -> Transition {
        if !matches!(self.record.status, EscalationStatus::Routed | EscalationStatus::InReview) {
            return conflict(format!(
                "an escalation that is {} cannot be declined",
                self.record.status.as_str()
            ));
        }
        let mut next = self.record.clone();
        next.status = EscalationStatus::Pending;
        next.expert_id = None;
        next.routed_at_ms = None;
        next.accepted_at_ms = None;
        next.excluded.push(expert);
        next.updated_at_ms = now_ms();
        let ev = event(
            &next,
            "escalation.declined",
            serde_json::json!({
                "expert_id": expert,
                "reason": input.reason.as_str(),
                "notes": input.notes,
                "source_candidate_id": input.source_candidate_id,
            }),
        );
        let reply_record = next.clone();
        Box::pin(self.commit(next, vec![ev]).map(move |result, act, ctx| {
            result?;
            metrics::counter!("switchboard_routing_declines_total").increment(1);
            act.cancel_reservation(ctx);
            crate::supervisor::SUPERVISOR.enqueued();
            act.supervisor.do_send(GiveBack { id: act.record.id, expert, exclude: true });
            // The decliner no longer sees the case; it is answered with the state it left.
            Ok(CaseReply::Record(Box::new(reply_record)))
        }))
    }
}

fn conflict(message: String) -> Transition {
    Box::pin(fut::ready(Err(EngineError::Conflict(message))))
}

impl Actor for EscalationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ESCALATION.started();
        ctx.set_mailbox_capacity(crate::engine::MAILBOX_CAPACITY);
        ctx.run_later(until(self.record.sla_deadline_ms), |act, ctx| act.sla_passed(ctx));
        self.schedule_reservation(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        ESCALATION.stopped();
    }
}

impl Handler<ToCase> for EscalationActor {
    type Result = AtomicResponse<Self, Result<CaseReply, EngineError>>;

    fn handle(&mut self, msg: ToCase, _: &mut Self::Context) -> Self::Result {
        let _t = ESCALATION.handling("ToCase");
        if !self.visible_to(&msg.caller) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(EngineError::NotFound))));
        }
        let expert = match msg.caller {
            Caller::Expert(e) => Some(e),
            Caller::Tenant(_) | Caller::Trusted => None,
        };
        let transition: Transition = match (msg.command, expert) {
            (CaseCommand::Get, _) => Box::pin(fut::ready(Ok(self.reply()))),
            (CaseCommand::Wait, _) => {
                let (tx, rx) = oneshot::channel();
                self.waiters.retain(|w| !w.is_closed());
                self.waiters.push(tx);
                Box::pin(fut::ready(Ok(CaseReply::Waiting {
                    current: Box::new(self.record.clone()),
                    closed: rx,
                })))
            }
            (CaseCommand::Cancel, None) => self.cancel(),
            (CaseCommand::Accept, Some(e)) => self.accept(e),
            (CaseCommand::Resolve(input), Some(e)) => self.resolve(e, input),
            (CaseCommand::Decline(input), Some(e)) => self.decline(e, input),
            // A tenant cannot answer, an expert cannot cancel: not theirs to see.
            _ => Box::pin(fut::ready(Err(EngineError::NotFound))),
        };
        AtomicResponse::new(transition)
    }
}

impl Handler<Reserve> for EscalationActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Reserve, _: &mut Self::Context) -> Self::Result {
        let _t = ESCALATION.handling("Reserve");
        if self.record.status != EscalationStatus::Pending {
            // Closed meanwhile: its CaseClosed frees the expert in the router.
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let first = self.record.excluded.is_empty();
        let mut next = self.record.clone();
        let at = now_ms();
        next.status = EscalationStatus::Routed;
        next.expert_id = Some(msg.expert);
        next.routed_at_ms = Some(at);
        next.updated_at_ms = at;
        let ev = event(&next, "escalation.routed", serde_json::json!({ "expert_id": msg.expert }));
        let expert = msg.expert;
        AtomicResponse::new(Box::pin(self.commit(next, vec![ev]).map(move |result, act, ctx| match result {
            Ok(()) => {
                if first {
                    let secs = (at - act.record.created_at_ms).max(0) as f64 / 1000.0;
                    metrics::histogram!("switchboard_routing_time_to_route_seconds").record(secs);
                } else {
                    metrics::counter!("switchboard_routing_reassignments_total").increment(1);
                }
                act.schedule_reservation(ctx);
            }
            Err(e) => {
                tracing::warn!(escalation = %act.record.id, error = %e, "could not record a routing; returning the case");
                let id = act.record.id;
                ctx.run_later(act.config.retry_after_failure, move |act, _| {
                    crate::supervisor::SUPERVISOR.enqueued();
                    act.supervisor.do_send(GiveBack { id, expert, exclude: false });
                });
            }
        })))
    }
}
