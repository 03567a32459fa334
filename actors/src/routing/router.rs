//! `Router`: the indexes and the operations on them.

use super::*;

/// See the module docs. Invariants (checked by the property tests):
/// - an expert's open count never exceeds its `max_concurrent` through routing
///   (a lowered `max_concurrent` keeps cases already assigned);
/// - a case is never assigned to an expert it excludes, nor to an expert of
///   another tenant unless that expert is platform-wide;
/// - a case is either queued, or assigned to exactly one expert, never both;
/// - after every operation, no queued case has an eligible expert with room.
#[derive(Debug, Default)]
pub struct Router {
    // implemented by the routing work
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds an expert or replaces its profile (registration, status, domains,
    /// `max_concurrent`, quality). Open cases stay with it. Returns the
    /// queued cases that the new capacity lets it take, already counted.
    pub fn upsert_expert(&mut self, profile: ExpertProfile) -> Vec<Assignment> {
        let _ = profile;
        unimplemented!()
    }

    /// Restores, at start-up, a case that is already assigned to `expert`
    /// (routed or in review). Counts against the expert even if that exceeds
    /// its current `max_concurrent`. `excluded` are experts who declined or
    /// timed out on it. The expert must have been upserted first; if it is
    /// unknown, the case is submitted instead and its assignment returned.
    pub fn restore_assigned(
        &mut self,
        ticket: CaseTicket,
        expert: ExpertId,
        excluded: Vec<ExpertId>,
    ) -> Option<Assignment> {
        let _ = (ticket, expert, excluded);
        unimplemented!()
    }

    /// A new (or restored pending) case: assigned now, or queued.
    pub fn submit(&mut self, ticket: CaseTicket, excluded: Vec<ExpertId>) -> Option<Assignment> {
        let _ = (ticket, excluded);
        unimplemented!()
    }

    /// The case is closed (resolved, cancelled, expired). It leaves its queue,
    /// or frees its expert's slot, which is then offered to queued cases.
    /// Unknown cases are ignored (returns nothing).
    pub fn close(&mut self, case: EscalationId) -> Vec<Assignment> {
        let _ = case;
        unimplemented!()
    }

    /// `expert` gave the case back (decline or reservation timeout, then
    /// `exclude` is true; a failed reservation, then false). Ignored unless
    /// the case is currently assigned to `expert`. The expert's slot is freed;
    /// the case is routed again (never to an excluded expert) or queued; then
    /// the freed slot is offered to queued cases. Returns every assignment made.
    pub fn give_back(&mut self, case: EscalationId, expert: ExpertId, exclude: bool) -> Vec<Assignment> {
        let _ = (case, expert, exclude);
        unimplemented!()
    }

    /// The expert the case is assigned to, if any.
    pub fn assigned_to(&self, case: EscalationId) -> Option<ExpertId> {
        let _ = case;
        unimplemented!()
    }

    /// Whether the case waits in a queue.
    pub fn is_queued(&self, case: EscalationId) -> bool {
        let _ = case;
        unimplemented!()
    }

    /// Cases counted against the expert (0 for an unknown expert).
    pub fn open_count(&self, expert: ExpertId) -> u32 {
        let _ = expert;
        unimplemented!()
    }

    /// Queued cases per (domain, priority), only non-zero entries, sorted.
    pub fn queue_depths(&self) -> Vec<(Domain, Priority, usize)> {
        unimplemented!()
    }

    /// Number of experts and of cases (queued + assigned) the router knows.
    pub fn sizes(&self) -> (usize, usize) {
        unimplemented!()
    }
}
