//! switchboard-actors: the engine of Switchboard. Every actor, the routing
//! policy, the messages, and the `Persistence` trait through which actors reach
//! the database. This crate knows nothing of HTTP or SQL: the server crate
//! implements `Persistence` with Diesel and turns HTTP requests into messages.
//!
//! Map:
//! - `instrument` — the one helper every actor kind uses to report messages
//!   handled, mailbox depth and handler latency (Prometheus via `metrics`,
//!   and readable in-process for the monitoring endpoints).
//! - `persistence` — `Persistence`, the `Change`s actors ask it to commit, and
//!   its error. A change is acknowledged only after its transaction committed.
//!
//! - `model` — ids, priorities, statuses and domains: the engine's vocabulary.
//! - `records` — the snapshots actors persist: escalations, experts, feedback.
//! - `routing` — the pure policy and its per-domain indexes (no actix).
//!
//! - `quality_gate` — `output_schema` compiled once, shared by content, and
//!   the check of an expert's answer.
//! - `engine` — configuration, errors and the messages the server sends.
//! - `supervisor`, `expert`, `escalation` — the RoutingSupervisor (owns the
//!   `Router`), one ExpertActor per expert, one EscalationActor per open case.
//!
//! - `webhook` — the WebhookDispatcher and one WebhookEndpointActor per target
//!   URL: queues, concurrency, retries on the schedule, circuit breakers.
//!
//! - `tenant` — one TenantActor per tenant (its "container"): request
//!   windows, the day's token budget, provider circuit breakers, and the
//!   `Runtime` its Cerebrals' turns run on.

pub mod engine;
pub mod escalation;
pub mod expert;
pub mod instrument;
pub mod model;
pub mod persistence;
pub mod quality_gate;
pub mod records;
pub mod routing;
pub mod supervisor;
pub mod tenant;
pub mod webhook;

pub use instrument::{ActorKind, ActorStats, HandlerTimer};
pub use persistence::{Change, EventRecord, PersistError, Persistence, SessionEntry, SessionLink};
