//! Property tests of the routing policy: random sequences of operations
//! against a naive reference model that scans everything. After every
//! operation, every assignment the router returned is checked against the
//! model's state at that moment, and then the router's whole observable state
//! is compared with the model's.
//!
//! Checks:
//! (a) an assignment goes only to an expert with room at that moment
//!     (available, open < max_concurrent); `restore_assigned` alone may
//!     exceed it;
//! (b) never to an expert the case excludes, of another tenant (unless
//!     platform-wide), lacking the domain, or not available;
//! (c) every case is either queued or assigned to exactly one expert, and
//!     the router's counts (open, depths, sizes) match the model's;
//! (d) after every operation, no queued case has an eligible expert with room;
//! (e) a drain takes, for its expert, the queued case with the best
//!     (priority, deadline, arrival, id) among those eligible for it;
//! (f) a routed case goes to the best eligible expert with room by
//!     (quality, fewest open, longest idle, id), and a queued one had none.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use switchboard_actors::model::{Domain, EscalationId, ExpertId, ExpertStatus, Priority, TenantId};
use switchboard_actors::routing::{Assignment, CaseTicket, ExpertProfile, Owner, Router, QUALITY_PRIOR};
use uuid::Uuid;

const EXPERTS: u8 = 6;
const DOMAINS: [&str; 3] = ["tax.us", "tax.eu", "legal.gdpr"];
const TENANTS: [&str; 2] = ["t0", "t1"];
/// Biased toward ties: `None` ranks as 0.5.
const QUALITIES: [Option<f64>; 6] = [None, Some(0.5), Some(0.5), Some(0.8), Some(0.0), Some(1.0)];

fn xid(n: u8) -> ExpertId {
    ExpertId(Uuid::from_u128(1 + n as u128))
}

fn cid(n: u64) -> EscalationId {
    EscalationId(Uuid::from_u128(1_000 + n as u128))
}

fn dom(n: u8) -> Domain {
    Domain::parse(DOMAINS[n as usize % DOMAINS.len()]).unwrap()
}

fn tenant(n: u8) -> TenantId {
    TenantId(TENANTS[n as usize % TENANTS.len()].to_string())
}

fn owner(n: u8) -> Owner {
    match n % 3 {
        0 => Owner::Platform,
        k => Owner::Tenant(tenant(k - 1)),
    }
}

/// Biased toward `available`, so that several experts compete for a case.
fn status(n: u8) -> ExpertStatus {
    match n % 8 {
        0 => ExpertStatus::Busy,
        1 => ExpertStatus::Offline,
        _ => ExpertStatus::Available,
    }
}

/// A domain set as a 3-bit mask, biased toward several domains.
fn domain_mask(n: u8) -> u8 {
    match n % 10 {
        0 => 0,
        1..=3 => 7,
        k => k % 7 + 1,
    }
}

fn priority(n: u8) -> Priority {
    Priority::ALL[n as usize % 3]
}

fn micros(q: Option<f64>) -> u32 {
    (q.unwrap_or(QUALITY_PRIOR) * 1_000_000.0).round() as u32
}

#[derive(Debug, Clone)]
struct TicketSpec {
    tenant: u8,
    domain: u8,
    priority: u8,
    deadline: i64,
    arrival: i64,
    excluded: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Op {
    Upsert { expert: u8, owner: u8, domains: u8, status: u8, max: u32, quality: u8 },
    SetStatus { expert: u8, status: u8 },
    Submit(TicketSpec),
    Close { pick: usize },
    GiveBack { pick: usize, exclude: bool, wrong_expert: bool },
    Restore { spec: TicketSpec, expert: u8 },
}

fn ticket_spec() -> impl Strategy<Value = TicketSpec> {
    (0..2u8, 0..3u8, 0..3u8, 0..4i64, 0..3i64, prop::collection::vec(0..EXPERTS, 0..3)).prop_map(
        |(tenant, domain, priority, deadline, arrival, excluded)| TicketSpec {
            tenant,
            domain,
            priority,
            deadline,
            arrival,
            excluded,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..EXPERTS, 0..3u8, 0..10u8, 0..8u8, 0..4u32, 0..6u8).prop_map(
            |(expert, owner, domains, status, max, quality)| Op::Upsert { expert, owner, domains, status, max, quality }
        ),
        2 => (0..EXPERTS, 0..8u8).prop_map(|(expert, status)| Op::SetStatus { expert, status }),
        6 => ticket_spec().prop_map(Op::Submit),
        3 => any::<usize>().prop_map(|pick| Op::Close { pick }),
        3 => (any::<usize>(), any::<bool>(), prop::bool::weighted(0.15))
            .prop_map(|(pick, exclude, wrong_expert)| Op::GiveBack { pick, exclude, wrong_expert }),
        1 => (ticket_spec(), 0..EXPERTS + 1).prop_map(|(spec, expert)| Op::Restore { spec, expert }),
    ]
}

#[derive(Debug, Clone)]
struct MExpert {
    profile: ExpertProfile,
    open: u32,
    stamp: u64,
}

impl MExpert {
    fn has_room(&self) -> bool {
        self.profile.status == ExpertStatus::Available && self.open < self.profile.max_concurrent
    }

    fn rank(&self) -> (Reverse<u32>, u32, u64, ExpertId) {
        (Reverse(micros(self.profile.quality)), self.open, self.stamp, self.profile.id)
    }
}

#[derive(Debug, Clone)]
struct MCase {
    ticket: CaseTicket,
    excluded: BTreeSet<ExpertId>,
    assigned: Option<ExpertId>,
}

impl MCase {
    fn key(&self) -> (Priority, i64, i64, EscalationId) {
        (self.ticket.priority, self.ticket.deadline_ms, self.ticket.arrival_ms, self.ticket.id)
    }
}

/// The naive reference: everything by scanning.
#[derive(Debug, Default)]
struct Model {
    experts: BTreeMap<ExpertId, MExpert>,
    cases: BTreeMap<EscalationId, MCase>,
    clock: u64,
    next_case: u64,
}

impl Model {
    /// Everything but capacity: domain, status, tenant, exclusion.
    fn eligible(&self, e: &MExpert, c: &MCase) -> bool {
        e.profile.domains.contains(&c.ticket.domain)
            && e.profile.status == ExpertStatus::Available
            && match &e.profile.owner {
                Owner::Platform => true,
                Owner::Tenant(t) => *t == c.ticket.tenant,
            }
            && !c.excluded.contains(&e.profile.id)
    }

    fn best_expert(&self, c: &MCase) -> Option<ExpertId> {
        self.experts
            .values()
            .filter(|e| e.has_room() && self.eligible(e, c))
            .min_by_key(|e| e.rank())
            .map(|e| e.profile.id)
    }

    fn take_slot(&mut self, expert: ExpertId) {
        self.clock += 1;
        let e = self.experts.get_mut(&expert).unwrap();
        e.open += 1;
        e.stamp = self.clock;
    }

    /// (a), (b), (f) for a case being routed now (not in `cases`).
    fn check_route(&self, c: &MCase, got: Option<ExpertId>) -> Result<(), TestCaseError> {
        let want = self.best_expert(c);
        if let Some(x) = got {
            let e = &self.experts[&x];
            prop_assert!(e.has_room(), "(a) {x} has no room: {e:?}");
            prop_assert!(self.eligible(e, c), "(b) {x} is not eligible for {c:?}");
        }
        prop_assert_eq!(got, want, "(f) not the best expert for {:?}", c);
        Ok(())
    }

    /// (a), (b), (e) for a drain of a queued case into `expert`; then applies it.
    fn apply_drain(&mut self, a: Assignment, expert: ExpertId) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.expert, expert, "a drain assigns only to the expert whose capacity appeared");
        let c = self.cases.get(&a.case).cloned();
        prop_assert!(
            c.as_ref().is_some_and(|c| c.assigned.is_none()),
            "drained case {} was not queued",
            a.case
        );
        let c = c.unwrap();
        let e = &self.experts[&expert];
        prop_assert!(e.has_room(), "(a) drain into {expert} without room: {e:?}");
        prop_assert!(self.eligible(e, &c), "(b) drain of {c:?} into ineligible {e:?}");
        let better = self
            .cases
            .values()
            .filter(|o| o.assigned.is_none() && o.ticket.id != c.ticket.id && self.eligible(e, o))
            .filter(|o| o.key() < c.key())
            .map(|o| o.ticket.id)
            .collect::<Vec<_>>();
        prop_assert!(better.is_empty(), "(e) {:?} drained before more urgent {better:?}", c.key());
        prop_assert_eq!(self.best_expert(&c), Some(expert), "(f) drain is not the best expert for the case");
        self.cases.get_mut(&a.case).unwrap().assigned = Some(expert);
        self.take_slot(expert);
        Ok(())
    }

    /// Routes the focal case `c` (not in `cases`) from the head of `out`,
    /// then returns the rest of `out`.
    fn apply_route<'a>(
        &mut self,
        mut c: MCase,
        out: &'a [Assignment],
    ) -> Result<&'a [Assignment], TestCaseError> {
        let (got, rest) = match out.split_first() {
            Some((a, rest)) if a.case == c.ticket.id => (Some(a.expert), rest),
            _ => (None, out),
        };
        self.check_route(&c, got)?;
        c.assigned = got;
        let id = c.ticket.id;
        self.cases.insert(id, c);
        if let Some(x) = got {
            self.take_slot(x);
        }
        Ok(rest)
    }

    fn ticket(&mut self, s: &TicketSpec) -> MCase {
        self.next_case += 1;
        MCase {
            ticket: CaseTicket {
                id: cid(self.next_case),
                tenant: tenant(s.tenant),
                domain: dom(s.domain),
                priority: priority(s.priority),
                deadline_ms: s.deadline,
                arrival_ms: s.arrival,
            },
            excluded: s.excluded.iter().map(|&n| xid(n)).collect(),
            assigned: None,
        }
    }

    /// (c) and (d), after each operation.
    fn check_state(&self, r: &Router, closed: &[EscalationId]) -> Result<(), TestCaseError> {
        prop_assert_eq!(r.sizes(), (self.experts.len(), self.cases.len()), "(c) sizes");
        for c in self.cases.values() {
            let id = c.ticket.id;
            prop_assert_eq!(r.assigned_to(id), c.assigned, "(c) assignment of {}", id);
            prop_assert_eq!(r.is_queued(id), c.assigned.is_none(), "(c) queued state of {}", id);
        }
        for &id in closed {
            prop_assert!(
                r.assigned_to(id).is_none() && !r.is_queued(id),
                "(c) closed case {} still held",
                id
            );
        }
        for e in self.experts.values() {
            let counted = self.cases.values().filter(|c| c.assigned == Some(e.profile.id)).count() as u32;
            prop_assert_eq!(e.open, counted);
            prop_assert_eq!(r.open_count(e.profile.id), e.open, "(c) open count of {}", e.profile.id);
        }
        let mut depths: BTreeMap<(Domain, Priority), usize> = BTreeMap::new();
        for c in self.cases.values().filter(|c| c.assigned.is_none()) {
            *depths.entry((c.ticket.domain.clone(), c.ticket.priority)).or_default() += 1;
            let starved = self
                .experts
                .values()
                .filter(|e| e.has_room() && self.eligible(e, c))
                .map(|e| e.profile.id)
                .collect::<Vec<_>>();
            prop_assert!(starved.is_empty(), "(d) queued {:?} while {starved:?} have room", c);
        }
        let depths = depths.into_iter().map(|((d, p), n)| (d, p, n)).collect::<Vec<_>>();
        prop_assert_eq!(r.queue_depths(), depths, "(c) queue depths");
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut r = Router::new();
    let mut m = Model::default();
    let mut closed = Vec::new();
    for op in ops {
        match op {
            Op::Upsert { expert, owner: o, domains, status: s, max, quality } => {
                let id = xid(expert);
                let profile = ExpertProfile {
                    id,
                    owner: owner(o),
                    domains: (0..3u8).filter(|d| domain_mask(domains) & (1 << d) != 0).map(dom).collect(),
                    status: status(s),
                    max_concurrent: max,
                    quality: QUALITIES[quality as usize % QUALITIES.len()],
                };
                upsert(&mut r, &mut m, profile)?;
            }
            Op::SetStatus { expert, status: s } => {
                let Some(e) = m.experts.get(&xid(expert)) else { continue };
                let profile = ExpertProfile { status: status(s), ..e.profile.clone() };
                upsert(&mut r, &mut m, profile)?;
            }
            Op::Submit(spec) => {
                let c = m.ticket(&spec);
                let out: Vec<Assignment> =
                    r.submit(c.ticket.clone(), c.excluded.iter().copied().collect()).into_iter().collect();
                let rest = m.apply_route(c, &out)?;
                prop_assert!(rest.is_empty(), "submit returned more than its case: {out:?}");
            }
            Op::Close { pick } => {
                let ids: Vec<EscalationId> = m.cases.keys().copied().collect();
                let Some(&id) = ids.get(pick % (ids.len() + 1)) else {
                    // An unknown case.
                    prop_assert!(r.close(cid(u64::MAX - 1)).is_empty());
                    continue;
                };
                let out = r.close(id);
                let c = m.cases.remove(&id).unwrap();
                closed.push(id);
                match c.assigned {
                    None => prop_assert!(out.is_empty(), "closing a queued case assigned {out:?}"),
                    Some(x) => {
                        m.experts.get_mut(&x).unwrap().open -= 1;
                        for a in out {
                            m.apply_drain(a, x)?;
                        }
                    }
                }
            }
            Op::GiveBack { pick, exclude, wrong_expert } => {
                let held: Vec<(EscalationId, ExpertId)> =
                    m.cases.values().filter_map(|c| Some((c.ticket.id, c.assigned?))).collect();
                if held.is_empty() {
                    continue;
                }
                let (id, x) = held[pick % held.len()];
                if wrong_expert {
                    let other = m.experts.keys().copied().find(|&e| e != x).unwrap_or(xid(EXPERTS + 3));
                    prop_assert!(r.give_back(id, other, exclude).is_empty());
                    continue;
                }
                let out = r.give_back(id, x, exclude);
                let mut c = m.cases.remove(&id).unwrap();
                c.assigned = None;
                if exclude {
                    c.excluded.insert(x);
                }
                m.experts.get_mut(&x).unwrap().open -= 1;
                let rest = m.apply_route(c, &out)?;
                for &a in rest {
                    m.apply_drain(a, x)?;
                }
            }
            Op::Restore { spec, expert } => {
                let mut c = m.ticket(&spec);
                let x = xid(expert);
                let out = r.restore_assigned(c.ticket.clone(), x, c.excluded.iter().copied().collect());
                if m.experts.contains_key(&x) {
                    prop_assert_eq!(out, None, "restoring to a known expert");
                    c.assigned = Some(x);
                    m.cases.insert(c.ticket.id, c);
                    m.take_slot(x);
                } else {
                    let out: Vec<Assignment> = out.into_iter().collect();
                    let rest = m.apply_route(c, &out)?;
                    prop_assert!(rest.is_empty());
                }
            }
        }
        m.check_state(&r, &closed)?;
    }
    Ok(())
}

fn upsert(r: &mut Router, m: &mut Model, profile: ExpertProfile) -> Result<(), TestCaseError> {
    let id = profile.id;
    let out = r.upsert_expert(profile.clone());
    match m.experts.get_mut(&id) {
        Some(e) => e.profile = profile,
        None => {
            m.clock += 1;
            m.experts.insert(id, MExpert { profile, open: 0, stamp: m.clock });
        }
    }
    for a in out {
        m.apply_drain(a, id)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn routing_matches_the_policy_after_every_operation(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}

/// A fixed long run, to reach states with more queued cases than the random
/// sequences do.
#[test]
fn a_long_deterministic_run_keeps_the_invariants() {
    let mut ops = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3_000 {
        let n = next();
        let b = |k: u32| ((n >> k) & 0xff) as u8;
        let op = match n % 16 {
            0..=2 => Op::Upsert {
                expert: b(8) % EXPERTS,
                owner: b(16),
                domains: b(24),
                status: b(32),
                max: (b(40) % 4) as u32,
                quality: b(48) % 6,
            },
            3 => Op::SetStatus { expert: b(8) % EXPERTS, status: b(16) },
            4..=9 => Op::Submit(TicketSpec {
                tenant: b(8) % 2,
                domain: b(16) % 3,
                priority: b(24) % 3,
                deadline: (b(32) % 4) as i64,
                arrival: (b(40) % 3) as i64,
                excluded: if b(48) % 4 == 0 { vec![b(56) % EXPERTS] } else { vec![] },
            }),
            10..=12 => Op::Close { pick: (n >> 8) as usize },
            13..=14 => Op::GiveBack { pick: (n >> 8) as usize, exclude: b(40) % 2 == 0, wrong_expert: false },
            _ => Op::Restore {
                spec: TicketSpec {
                    tenant: 0,
                    domain: b(16) % 3,
                    priority: 1,
                    deadline: 1,
                    arrival: 1,
                    excluded: vec![],
                },
                expert: b(8) % (EXPERTS + 1),
            },
        };
        ops.push(op);
    }
    run(ops).unwrap();
}
