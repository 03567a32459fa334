//! `Router`: the indexes and the operations on them.
//!
//! Layout:
//! - `experts` / `cases`: the state of every known expert and case, by id.
//! - `domains`: per domain, a [`DomainIndex`] holding
//!   - the experts *with room* (available and `open < max_concurrent`), one
//!     ordered set for platform-wide experts and one per tenant, keyed by
//!     [`RankKey`] so the first entry is the best candidate;
//!   - the queued cases, once across tenants (what a platform expert may take)
//!     and once per tenant (what a tenant's expert may take), keyed by
//!     [`QueueKey`] so the first entry is the most urgent.
//! - `depths`: queued cases per (domain, priority), kept incrementally.
//!
//! An expert is in the room sets of each of its domains exactly when it has
//! room; every change to an expert removes its entries (under the key it was
//! indexed with), changes it, and re-inserts them: O(d log n). Routing a case
//! looks at the first non-excluded entry of two sets; draining for an expert
//! looks at the first non-excluding entry of one queue per domain.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;

/// Rank of an expert with room, best first: higher quality (micro-units),
/// fewer open cases, idle longer (lower assignment stamp), then id.
type RankKey = (Reverse<u32>, u32, u64, ExpertId);

/// Place of a queued case, most urgent first: priority, SLA deadline,
/// arrival, then id.
type QueueKey = (Priority, i64, i64, EscalationId);

/// The quality as integer micro-units in [0, 1_000_000]; no score (or a
/// non-finite one) counts as `QUALITY_PRIOR`.
fn quality_micros(quality: Option<f64>) -> u32 {
    let q = quality.filter(|q| q.is_finite()).unwrap_or(QUALITY_PRIOR).clamp(0.0, 1.0);
    (q * 1_000_000.0).round() as u32
}

fn priority_slot(p: Priority) -> usize {
    match p {
        Priority::Urgent => 0,
        Priority::Standard => 1,
        Priority::Batch => 2,
    }
}

#[derive(Debug)]
struct ExpertState {
    owner: Owner,
    /// Sorted, without duplicates.
    domains: Vec<Domain>,
    status: ExpertStatus,
    max_concurrent: u32,
    quality: u32,
    open: u32,
    /// Clock value of the last assignment (or of registration).
    stamp: u64,
}

impl ExpertState {
    fn has_room(&self) -> bool {
        self.status == ExpertStatus::Available && self.open < self.max_concurrent
    }

    fn rank_key(&self, id: ExpertId) -> RankKey {
        (Reverse(self.quality), self.open, self.stamp, id)
    }
}

#[derive(Debug)]
struct CaseState {
    ticket: CaseTicket,
    excluded: BTreeSet<ExpertId>,
    /// `None`: queued.
    assigned: Option<ExpertId>,
}

fn queue_key(t: &CaseTicket) -> QueueKey {
    (t.priority, t.deadline_ms, t.arrival_ms, t.id)
}

#[derive(Debug, Default)]
struct DomainIndex {
    platform_room: BTreeSet<RankKey>,
    tenant_room: HashMap<TenantId, BTreeSet<RankKey>>,
    queue_all: BTreeSet<QueueKey>,
    queue_tenant: HashMap<TenantId, BTreeSet<QueueKey>>,
}

impl DomainIndex {
    fn is_empty(&self) -> bool {
        self.platform_room.is_empty()
            && self.tenant_room.is_empty()
            && self.queue_all.is_empty()
            && self.queue_tenant.is_empty()
    }

    fn insert_room(&mut self, owner: &Owner, key: RankKey) {
        match owner {
            Owner::Platform => {
                self.platform_room.insert(key);
            }
            Owner::Tenant(t) => match self.tenant_room.get_mut(t) {
                Some(set) => {
                    set.insert(key);
                }
                None => {
                    self.tenant_room.insert(t.clone(), BTreeSet::from([key]));
                }
            },
        }
    }

    fn remove_room(&mut self, owner: &Owner, key: &RankKey) {
        match owner {
            Owner::Platform => {
                self.platform_room.remove(key);
            }
            Owner::Tenant(t) => {
                if let Some(set) = self.tenant_room.get_mut(t) {
                    set.remove(key);
                    if set.is_empty() {
                        self.tenant_room.remove(t);
                    }
                }
            }
        }
    }

    /// The best expert with room for a case of `tenant`, skipping `excluded`:
    /// the better of the first platform entry and the first tenant entry.
    fn best_room(&self, tenant: &TenantId, excluded: &BTreeSet<ExpertId>) -> Option<ExpertId> {
        let first = |set: &BTreeSet<RankKey>| set.iter().find(|k| !excluded.contains(&k.3)).copied();
        let platform = first(&self.platform_room);
        let own = self.tenant_room.get(tenant).and_then(first);
        match (platform, own) {
            (Some(a), Some(b)) => Some(a.min(b).3),
            (a, b) => a.or(b).map(|k| k.3),
        }
    }

    /// The most urgent queued case `expert` (of `owner`) may take, skipping
    /// the cases that exclude it.
    fn best_queued(
        &self,
        owner: &Owner,
        expert: ExpertId,
        cases: &HashMap<EscalationId, CaseState>,
    ) -> Option<QueueKey> {
        let queue = match owner {
            Owner::Platform => &self.queue_all,
            Owner::Tenant(t) => self.queue_tenant.get(t)?,
        };
        queue.iter().find(|k| cases.get(&k.3).is_some_and(|c| !c.excluded.contains(&expert))).copied()
    }
}

/// Removes the expert's entries from the room sets of its domains (if it
/// has room, it has exactly those entries).
fn unindex_expert(domains: &mut HashMap<Domain, DomainIndex>, id: ExpertId, e: &ExpertState) {
    if !e.has_room() {
        return;
    }
    let key = e.rank_key(id);
    for d in &e.domains {
        if let Some(ix) = domains.get_mut(d) {
            ix.remove_room(&e.owner, &key);
            if ix.is_empty() {
                domains.remove(d);
            }
        }
    }
}

/// Inserts the expert in the room sets of its domains if it has room.
fn index_expert(domains: &mut HashMap<Domain, DomainIndex>, id: ExpertId, e: &ExpertState) {
    if !e.has_room() {
        return;
    }
    let key = e.rank_key(id);
    for d in &e.domains {
        match domains.get_mut(d) {
            Some(ix) => ix.insert_room(&e.owner, key),
            None => {
                let mut ix = DomainIndex::default();
                ix.insert_room(&e.owner, key);
                domains.insert(d.clone(), ix);
            }
        }
    }
}

fn enqueue(
    domains: &mut HashMap<Domain, DomainIndex>,
    depths: &mut BTreeMap<Domain, [usize; 3]>,
    t: &CaseTicket,
) {
    let key = queue_key(t);
    if !domains.contains_key(&t.domain) {
        domains.insert(t.domain.clone(), DomainIndex::default());
    }
    let ix = domains.get_mut(&t.domain).expect("just inserted");
    ix.queue_all.insert(key);
    match ix.queue_tenant.get_mut(&t.tenant) {
        Some(q) => {
            q.insert(key);
        }
        None => {
            ix.queue_tenant.insert(t.tenant.clone(), BTreeSet::from([key]));
        }
    }
    match depths.get_mut(&t.domain) {
        Some(counts) => counts[priority_slot(t.priority)] += 1,
        None => {
            let mut counts = [0; 3];
            counts[priority_slot(t.priority)] = 1;
            depths.insert(t.domain.clone(), counts);
        }
    }
}

fn dequeue(
    domains: &mut HashMap<Domain, DomainIndex>,
    depths: &mut BTreeMap<Domain, [usize; 3]>,
    t: &CaseTicket,
) {
    let key = queue_key(t);
    if let Some(ix) = domains.get_mut(&t.domain) {
        ix.queue_all.remove(&key);
        if let Some(q) = ix.queue_tenant.get_mut(&t.tenant) {
            q.remove(&key);
            if q.is_empty() {
                ix.queue_tenant.remove(&t.tenant);
            }
        }
        if ix.is_empty() {
            domains.remove(&t.domain);
        }
    }
    if let Some(counts) = depths.get_mut(&t.domain) {
        let slot = &mut counts[priority_slot(t.priority)];
        *slot = slot.saturating_sub(1);
        if counts.iter().all(|&n| n == 0) {
            depths.remove(&t.domain);
        }
    }
}

/// See the module docs. Invariants (checked by the property tests):
/// - an expert's open count never exceeds its `max_concurrent` through routing
///   (a lowered `max_concurrent` keeps cases already assigned);
/// - a case is never assigned to an expert it excludes, nor to an expert of
///   another tenant unless that expert is platform-wide;
/// - a case is either queued, or assigned to exactly one expert, never both;
/// - after every operation, no queued case has an eligible expert with room.
#[derive(Debug, Default)]
pub struct Router {
    experts: HashMap<ExpertId, ExpertState>,
    cases: HashMap<EscalationId, CaseState>,
    domains: HashMap<Domain, DomainIndex>,
    /// Queued cases per domain, by priority slot (Urgent, Standard, Batch).
    depths: BTreeMap<Domain, [usize; 3]>,
    /// Monotonic stamp source for "idle longest".
    clock: u64,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds an expert or replaces its profile (registration, status, domains,
    /// `max_concurrent`, quality). Open cases stay with it. Returns the
    /// queued cases that the new capacity lets it take, already counted.
    pub fn upsert_expert(&mut self, profile: ExpertProfile) -> Vec<Assignment> {
        let ExpertProfile { id, owner, mut domains, status, max_concurrent, quality } = profile;
        domains.sort();
        domains.dedup();
        let quality = quality_micros(quality);
        match self.experts.get_mut(&id) {
            Some(e) => {
                unindex_expert(&mut self.domains, id, e);
                e.owner = owner;
                e.domains = domains;
                e.status = status;
                e.max_concurrent = max_concurrent;
                e.quality = quality;
                index_expert(&mut self.domains, id, e);
            }
            None => {
                self.clock += 1;
                let e = ExpertState {
                    owner,
                    domains,
                    status,
                    max_concurrent,
                    quality,
                    open: 0,
                    stamp: self.clock,
                };
                index_expert(&mut self.domains, id, &e);
                self.experts.insert(id, e);
            }
        }
        self.drain(id)
    }

    /// Restores, at start-up, a case that is already assigned to `expert`
    /// (routed or in review). Counts against the expert even if that exceeds
    /// its current `max_concurrent`. `excluded` are experts who declined or
    /// timed out on it. The expert must have been upserted first; if it is
    /// unknown, the case is submitted instead and its assignment returned.
    ///
    /// A case the router already knows is not counted twice: a queued one is
    /// taken out of its queue and restored; one already assigned stays with
    /// its expert, and if that is not `expert` its assignment is returned.
    pub fn restore_assigned(
        &mut self,
        ticket: CaseTicket,
        expert: ExpertId,
        excluded: Vec<ExpertId>,
    ) -> Option<Assignment> {
        if !self.experts.contains_key(&expert) {
            return self.submit(ticket, excluded);
        }
        if let Some(old) = self.cases.get(&ticket.id) {
            match old.assigned {
                Some(e) if e == expert => {
                    let c = self.cases.get_mut(&ticket.id).expect("known case");
                    c.ticket = ticket;
                    c.excluded.extend(excluded);
                    return None;
                }
                Some(e) => return Some(Assignment { case: ticket.id, expert: e }),
                None => {
                    let old = self.cases.remove(&ticket.id).expect("known case");
                    dequeue(&mut self.domains, &mut self.depths, &old.ticket);
                }
            }
        }
        let id = ticket.id;
        self.cases.insert(
            id,
            CaseState { ticket, excluded: excluded.into_iter().collect(), assigned: Some(expert) },
        );
        self.take_slot(expert);
        None
    }

    /// A new (or restored pending) case: assigned now, or queued.
    ///
    /// Submitting a case the router already knows: a queued one is replaced
    /// (taken out of its queue, then routed with the new ticket); one already
    /// assigned stays with its expert and that assignment is returned.
    pub fn submit(&mut self, ticket: CaseTicket, excluded: Vec<ExpertId>) -> Option<Assignment> {
        if let Some(old) = self.cases.get(&ticket.id) {
            if let Some(e) = old.assigned {
                return Some(Assignment { case: ticket.id, expert: e });
            }
            let old = self.cases.remove(&ticket.id).expect("known case");
            dequeue(&mut self.domains, &mut self.depths, &old.ticket);
        }
        self.place(ticket, excluded.into_iter().collect())
    }

    /// The case is closed (resolved, cancelled, expired). It leaves its queue,
    /// or frees its expert's slot, which is then offered to queued cases.
    /// Unknown cases are ignored (returns nothing).
    pub fn close(&mut self, case: EscalationId) -> Vec<Assignment> {
        let Some(c) = self.cases.remove(&case) else {
            return Vec::new();
        };
        match c.assigned {
            Some(e) => {
                self.free_slot(e);
                self.drain(e)
            }
            None => {
                dequeue(&mut self.domains, &mut self.depths, &c.ticket);
                Vec::new()
            }
        }
    }

    /// `expert` gave the case back (decline or reservation timeout, then
    /// `exclude` is true; a failed reservation, then false). Ignored unless
    /// the case is currently assigned to `expert`. The expert's slot is freed;
    /// the case is routed again (never to an excluded expert) or queued; then
    /// the freed slot is offered to queued cases. Returns every assignment made.
    pub fn give_back(&mut self, case: EscalationId, expert: ExpertId, exclude: bool) -> Vec<Assignment> {
        if self.cases.get(&case).and_then(|c| c.assigned) != Some(expert) {
            return Vec::new();
        }
        let mut c = self.cases.remove(&case).expect("known case");
        if exclude {
            c.excluded.insert(expert);
        }
        self.free_slot(expert);
        let mut out: Vec<Assignment> = self.place(c.ticket, c.excluded).into_iter().collect();
        out.extend(self.drain(expert));
        out
    }

    /// The expert the case is assigned to, if any.
    pub fn assigned_to(&self, case: EscalationId) -> Option<ExpertId> {
        self.cases.get(&case).and_then(|c| c.assigned)
    }

    /// Whether the case waits in a queue.
    pub fn is_queued(&self, case: EscalationId) -> bool {
        self.cases.get(&case).is_some_and(|c| c.assigned.is_none())
    }

    /// Cases counted against the expert (0 for an unknown expert).
    pub fn open_count(&self, expert: ExpertId) -> u32 {
        self.experts.get(&expert).map_or(0, |e| e.open)
    }

    /// Queued cases per (domain, priority), only non-zero entries, sorted.
    pub fn queue_depths(&self) -> Vec<(Domain, Priority, usize)> {
        let mut out = Vec::new();
        for (domain, counts) in &self.depths {
            for p in Priority::ALL {
                let n = counts[priority_slot(p)];
                if n > 0 {
                    out.push((domain.clone(), p, n));
                }
            }
        }
        out
    }

    /// Number of experts and of cases (queued + assigned) the router knows.
    pub fn sizes(&self) -> (usize, usize) {
        (self.experts.len(), self.cases.len())
    }

    /// Experts per status, cases assigned and the capacity of available
    /// experts (see [`ExpertTotals`]). O(experts): for monitoring, not routing.
    pub fn expert_totals(&self) -> ExpertTotals {
        let mut t = ExpertTotals { total: self.experts.len(), ..ExpertTotals::default() };
        for e in self.experts.values() {
            t.open += u64::from(e.open);
            match e.status {
                ExpertStatus::Available => {
                    t.available += 1;
                    t.capacity += u64::from(e.max_concurrent);
                    t.free += u64::from(e.max_concurrent.saturating_sub(e.open));
                }
                ExpertStatus::Busy => t.busy += 1,
                ExpertStatus::Offline => t.offline += 1,
            }
        }
        t
    }

    /// The `limit` most loaded experts: most open cases first, then by id.
    /// O(experts) to choose them, O(limit log limit) to order them.
    pub fn expert_loads(&self, limit: usize) -> Vec<ExpertLoad> {
        let mut keys: Vec<(Reverse<u32>, ExpertId)> =
            self.experts.iter().map(|(id, e)| (Reverse(e.open), *id)).collect();
        if keys.len() > limit {
            keys.select_nth_unstable(limit);
            keys.truncate(limit);
        }
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|(_, id)| {
                let e = self.experts.get(&id)?;
                Some(ExpertLoad {
                    id,
                    owner: e.owner.clone(),
                    domains: e.domains.clone(),
                    status: e.status,
                    open: e.open,
                    max_concurrent: e.max_concurrent,
                })
            })
            .collect()
    }

    /// Routes a case the router does not hold: to the best eligible expert
    /// with room, or into its queues.
    fn place(&mut self, ticket: CaseTicket, excluded: BTreeSet<ExpertId>) -> Option<Assignment> {
        let best = self.domains.get(&ticket.domain).and_then(|ix| ix.best_room(&ticket.tenant, &excluded));
        let case = ticket.id;
        match best {
            Some(expert) => {
                self.cases.insert(case, CaseState { ticket, excluded, assigned: Some(expert) });
                self.take_slot(expert);
                Some(Assignment { case, expert })
            }
            None => {
                enqueue(&mut self.domains, &mut self.depths, &ticket);
                self.cases.insert(case, CaseState { ticket, excluded, assigned: None });
                None
            }
        }
    }

    /// While `expert` has room, it takes the most urgent queued case it may
    /// take, across its domains.
    fn drain(&mut self, expert: ExpertId) -> Vec<Assignment> {
        let mut out = Vec::new();
        while let Some(e) = self.experts.get(&expert).filter(|e| e.has_room()) {
            let best = e
                .domains
                .iter()
                .filter_map(|d| self.domains.get(d)?.best_queued(&e.owner, expert, &self.cases))
                .min();
            let Some(key) = best else { break };
            let c = self.cases.get_mut(&key.3).expect("queued case is known");
            dequeue(&mut self.domains, &mut self.depths, &c.ticket);
            c.assigned = Some(expert);
            self.take_slot(expert);
            out.push(Assignment { case: key.3, expert });
        }
        out
    }

    /// Counts one more case against the expert and stamps it as just busy.
    fn take_slot(&mut self, expert: ExpertId) {
        let Some(e) = self.experts.get_mut(&expert) else { return };
        unindex_expert(&mut self.domains, expert, e);
        e.open += 1;
        self.clock += 1;
        e.stamp = self.clock;
        index_expert(&mut self.domains, expert, e);
    }

    /// Counts one case less against the expert.
    fn free_slot(&mut self, expert: ExpertId) {
        let Some(e) = self.experts.get_mut(&expert) else { return };
        unindex_expert(&mut self.domains, expert, e);
        e.open = e.open.saturating_sub(1);
        index_expert(&mut self.domains, expert, e);
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
