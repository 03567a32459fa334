//! The ExpertActor: one per expert. It owns the expert's profile, portal
//! token hash and quality figures; each change is committed before it takes
//! effect, one at a time, and then reported to the supervisor so routing
//! sees the new status, domains, capacity or quality.

use std::sync::Arc;

use actix::prelude::*;

use crate::engine::{now_ms, Caller, EngineError, ExpertCommand, ExpertPatch, ToExpert};
use crate::instrument::ActorKind;
use crate::persistence::{Change, Persistence};
use crate::records::{ExpertRecord, FeedbackWrite};
use crate::supervisor::{profile, ExpertChanged, RoutingSupervisor};

pub static EXPERT: ActorKind = ActorKind::new("expert");

pub struct ExpertActor {
    record: ExpertRecord,
    supervisor: Addr<RoutingSupervisor>,
    persistence: Arc<dyn Persistence>,
}

/// From the supervisor: a case this expert resolved closed (the count in the
/// database moved in the case's own transaction).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CaseResolvedBy;

type Reply = ResponseActFuture<ExpertActor, Result<ExpertRecord, EngineError>>;

impl ExpertActor {
    pub(crate) fn new(
        record: ExpertRecord,
        supervisor: Addr<RoutingSupervisor>,
        persistence: Arc<dyn Persistence>,
    ) -> Self {
        ExpertActor { record, supervisor, persistence }
    }

    fn visible_to(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Tenant(t) => *t == self.record.tenant,
            Caller::Expert(e) => *e == self.record.id,
            Caller::Trusted => true,
        }
    }

    fn commit(&mut self, next: ExpertRecord, change: Change, reroute: bool) -> Reply {
        Box::pin(self.persistence.commit(vec![change]).into_actor(self).map(move |result, act, _| {
            result?;
            act.record = next;
            if reroute {
                crate::supervisor::SUPERVISOR.enqueued();
                act.supervisor.do_send(ExpertChanged(profile(&act.record)));
            }
            Ok(act.record.clone())
        }))
    }

    fn patch(&mut self, patch: ExpertPatch) -> Reply {
        let mut next = self.record.clone();
        if let Some(s) = patch.status {
            next.status = s;
        }
        if let Some(d) = patch.domains {
            next.domains = d;
        }
        if let Some(c) = patch.credentials {
            next.credentials = c;
        }
        if let Some(t) = patch.tier {
            next.tier = t;
        }
        if let Some(m) = patch.max_concurrent {
            next.max_concurrent = m;
        }
        next.updated_at_ms = now_ms();
        let change = Change::UpdateExpert(Box::new(next.clone()));
        self.commit(next, change, true)
    }
}

impl Actor for ExpertActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        EXPERT.started();
        ctx.set_mailbox_capacity(crate::engine::MAILBOX_CAPACITY);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        EXPERT.stopped();
    }
}

impl Handler<ToExpert> for ExpertActor {
    type Result = AtomicResponse<Self, Result<ExpertRecord, EngineError>>;

    fn handle(&mut self, msg: ToExpert, _: &mut Self::Context) -> Self::Result {
        let _t = EXPERT.handling("ToExpert");
        if !self.visible_to(&msg.caller) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(EngineError::NotFound))));
        }
        let reply = match msg.command {
            ExpertCommand::Patch(patch) => self.patch(patch),
            ExpertCommand::RotateToken { token_hash } => {
                let mut next = self.record.clone();
                next.token_hash = token_hash;
                next.updated_at_ms = now_ms();
                let change = Change::UpdateExpert(Box::new(next.clone()));
                self.commit(next, change, false)
            }
            ExpertCommand::Feedback { escalation, expected_version, previous, feedback } => {
                let mut next = self.record.clone();
                match previous {
                    Some(old) => next.quality_sum += feedback.score - old,
                    None => {
                        next.quality_sum += feedback.score;
                        next.quality_count += 1;
                    }
                }
                let change = Change::RecordFeedback(Box::new(FeedbackWrite {
                    escalation,
                    expected_version,
                    feedback,
                    expert: next.id,
                    quality_sum: next.quality_sum,
                    quality_count: next.quality_count,
                }));
                self.commit(next, change, true)
            }
        };
        AtomicResponse::new(reply)
    }
}

impl Handler<CaseResolvedBy> for ExpertActor {
    type Result = ();

    fn handle(&mut self, _: CaseResolvedBy, _: &mut Self::Context) {
        let _t = EXPERT.handling("CaseResolvedBy");
        self.record.resolution_count += 1;
    }
}
