//! Switchboard: the server crate. Map:
//! - `settings` — defaults < `switchboard.toml` < `SWITCHBOARD_*` environment.
//! - `startup` — builds the app from settings; `initialize` makes it ready.
//! - `error` — `AppError` and the three surfaces' wire formats.
//! - `http/` — the surfaces: `escalation/` (root), `agent/` (`/v1`),
//!   `platform/` (`/api`), `operator` (health, metrics, OpenAPI), and the
//!   middleware and extractors they share.
//! - `store/` — Diesel on SQLite or PostgreSQL: connections, migrations,
//!   group commit, one module per aggregate.
//! - `identity/` — keys, tokens, codes, passwords, the master key.
//! - `engine` — starts and restores the routing engine, maps its errors.
//! - `outbound` — the SSRF guard for every outbound call.
//! - `telemetry` — logging.
//!
//! The engine (actors, routing) is the `switchboard-actors` crate.

pub mod agents;
pub mod engine;
pub mod error;
pub mod http;
pub mod identity;
pub mod mail;
pub mod outbound;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod webhooks;
