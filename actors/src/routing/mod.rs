//! The routing policy as plain data: per-domain ordered indexes of experts
//! with free capacity and per-domain priority queues of waiting cases. No
//! actix, no clocks, no I/O: the RoutingSupervisor owns one `Router` and asks
//! it what to do. Every decision and every capacity change costs O(log n)
//! in experts and queued cases (plus the few experts a case excludes).
//!
//! Policy (DESIGN "Routing"): a case goes to an expert whose domains contain
//! its domain, whose status is `available`, whose open cases are fewer than
//! `max_concurrent`, who belongs to the case's tenant or is platform-wide, and
//! who has not declined or timed out on it. Among those: highest quality first
//! (no score counts as `QUALITY_PRIOR`), then fewest open cases, then longest
//! idle. With no candidate the case waits in its domain's queue, ordered by
//! priority, then SLA deadline, then arrival; the queue is drained whenever
//! capacity appears.

use crate::model::{Domain, EscalationId, ExpertId, ExpertStatus, Priority, TenantId};

/// The quality an expert without feedback is ranked with.
pub const QUALITY_PRIOR: f64 = 0.5;

/// Whom an expert serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// Registered by the operator tenant: serves every tenant.
    Platform,
    /// Serves only this tenant's cases.
    Tenant(TenantId),
}

/// What routing needs to know of an expert.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertProfile {
    pub id: ExpertId,
    pub owner: Owner,
    pub domains: Vec<Domain>,
    pub status: ExpertStatus,
    pub max_concurrent: u32,
    /// Mean feedback score in [0, 1]; `None` until the first feedback.
    pub quality: Option<f64>,
}

/// What routing needs to know of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseTicket {
    pub id: EscalationId,
    pub tenant: TenantId,
    pub domain: Domain,
    pub priority: Priority,
    /// SLA deadline, epoch milliseconds.
    pub deadline_ms: i64,
    /// Creation time, epoch milliseconds (ties broken by id).
    pub arrival_ms: i64,
}

/// A decision: reserve `case` for `expert`. The router has already counted
/// the case against the expert's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub case: EscalationId,
    pub expert: ExpertId,
}

/// One expert's load as the router holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertLoad {
    pub id: ExpertId,
    pub owner: Owner,
    /// Sorted, without duplicates.
    pub domains: Vec<Domain>,
    pub status: ExpertStatus,
    /// Cases counted against it: routed to it or in its review.
    pub open: u32,
    pub max_concurrent: u32,
}

/// Totals over every expert the router knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpertTotals {
    pub total: usize,
    pub available: usize,
    pub busy: usize,
    pub offline: usize,
    /// Cases assigned now, whatever the expert's status: the sum of `open`.
    pub open: u64,
    /// The sum of `max_concurrent` over `available` experts.
    pub capacity: u64,
    /// Cases `available` experts could take now: the sum of their
    /// `max_concurrent - open` (never below 0 for one expert).
    pub free: u64,
}

mod router;

pub use router::Router;
