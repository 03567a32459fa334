//! Logging: a `tracing` subscriber on stderr filtered by `SWITCHBOARD_LOG`,
//! as text or JSON lines (`SWITCHBOARD_LOG_FORMAT=json`). And the catalogue
//! of every metric family the server exports, which gives `/metrics` its
//! `# HELP` lines and its counters a 0 before their first event.

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, Settings};

pub fn init(settings: &Settings) {
    // The filter was checked when settings were parsed.
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// What kind of Prometheus family a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One family of `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct MetricFamily {
    pub name: &'static str,
    pub kind: MetricKind,
    /// Its label names, in the order they are documented.
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn family(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricFamily {
    MetricFamily { name, kind, labels, help }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every family the server exports, by group. `switchboard_tenants` and the
/// `process_*` families are rendered at scrape time (`http::operator`); the
/// rest come from the `metrics` recorder. The README's metrics table and a
/// test both follow this list.
pub const METRICS: &[MetricFamily] = &[
    // HTTP
    family(
        "switchboard_http_requests_total",
        Counter,
        &["surface", "route", "method", "status"],
        "HTTP requests answered, by surface, route pattern, method and status.",
    ),
    family(
        "switchboard_http_request_duration_seconds",
        Histogram,
        &["surface", "route", "method"],
        "Time from a request's arrival to its answer.",
    ),
    // Routing
    family(
        "switchboard_routing_queue_depth",
        Gauge,
        &["domain", "priority"],
        "Cases waiting for an expert, per domain and priority.",
    ),
    family("switchboard_routing_experts", Gauge, &[], "Experts the router knows."),
    family(
        "switchboard_routing_open_cases",
        Gauge,
        &[],
        "Escalations not yet resolved, expired or cancelled.",
    ),
    family(
        "switchboard_routing_assignments_total",
        Counter,
        &[],
        "Cases reserved for an expert (first routes and reassignments).",
    ),
    family("switchboard_routing_declines_total", Counter, &[], "Routed cases an expert declined."),
    family(
        "switchboard_routing_reservation_timeouts_total",
        Counter,
        &[],
        "Reservations that lapsed before the expert accepted.",
    ),
    family(
        "switchboard_routing_reassignments_total",
        Counter,
        &[],
        "Cases routed again after a decline or a lapsed reservation.",
    ),
    family(
        "switchboard_routing_time_to_route_seconds",
        Histogram,
        &[],
        "Time from a case's creation to its first route.",
    ),
    family("switchboard_escalations_created_total", Counter, &[], "Escalations created."),
    family("switchboard_escalations_resolved_total", Counter, &[], "Escalations resolved by an expert."),
    family(
        "switchboard_escalations_expired_total",
        Counter,
        &[],
        "Escalations whose SLA passed before resolution.",
    ),
    family("switchboard_escalations_cancelled_total", Counter, &[], "Escalations cancelled by their tenant."),
    family(
        "switchboard_escalation_resolution_seconds",
        Histogram,
        &[],
        "Time from a case's creation to its resolution.",
    ),
    // Actors
    family("switchboard_actors_alive", Gauge, &["kind"], "Actors running, per kind."),
    family(
        "switchboard_actor_messages_handled_total",
        Counter,
        &["kind", "message"],
        "Messages handled, per actor kind and message.",
    ),
    family(
        "switchboard_actor_mailbox_depth",
        Gauge,
        &["kind"],
        "Messages sent to actors of a kind and not yet handled.",
    ),
    family(
        "switchboard_actor_handler_seconds",
        Histogram,
        &["kind"],
        "Time an actor of a kind spends handling one message.",
    ),
    // Webhooks
    family("switchboard_webhook_attempts_total", Counter, &["outcome"], "Delivery attempts, by outcome."),
    family(
        "switchboard_webhook_deliveries_total",
        Counter,
        &[],
        "Deliveries a receiver accepted with a 2xx.",
    ),
    family("switchboard_webhook_failures_total", Counter, &[], "Deliveries given up after their last retry."),
    family("switchboard_webhook_retry_queue", Gauge, &[], "Deliveries waiting for their next attempt."),
    family("switchboard_webhook_attempt_seconds", Histogram, &[], "Time one delivery attempt takes."),
    family(
        "switchboard_webhook_delivery_seconds",
        Histogram,
        &[],
        "Time from a delivery's creation to its 2xx.",
    ),
    family(
        "switchboard_webhook_circuit_state",
        Gauge,
        &["endpoint"],
        "Per receiving origin: 0 closed, 1 open, 2 half open.",
    ),
    // Store
    family(
        "switchboard_store_batch_writes",
        Histogram,
        &[],
        "Writes committed together in one Store transaction.",
    ),
    family("switchboard_store_commit_seconds", Histogram, &[], "Time one Store transaction takes to commit."),
    family(
        "switchboard_store_write_wait_seconds",
        Histogram,
        &[],
        "Time from a write's submission to its commit's answer.",
    ),
    family(
        "switchboard_store_failed_batches_total",
        Counter,
        &[],
        "Store transactions of which no write committed.",
    ),
    // Tenants and agents
    family("switchboard_tenants", Gauge, &["status", "runtime"], "Tenants by container state and runtime."),
    family(
        "switchboard_agent_messages_total",
        Counter,
        &["runtime"],
        "Agent API turns answered, per runtime.",
    ),
    family("switchboard_agent_tokens_total", Counter, &[], "Model tokens used by Agent API turns."),
    // Process
    family("process_resident_memory_bytes", Gauge, &[], "Resident memory of the server process."),
    family("process_virtual_memory_bytes", Gauge, &[], "Virtual memory of the server process."),
    family("process_open_fds", Gauge, &[], "Open file descriptors of the server process."),
];

/// Gives every recorder family its `# HELP` line, and every family without
/// labels its 0, so `rate()` and alerts work before the first event.
pub fn describe_metrics() {
    for f in METRICS {
        if f.name == "switchboard_tenants" || f.name.starts_with("process_") {
            continue; // rendered at scrape time, with their own HELP lines
        }
        match f.kind {
            MetricKind::Counter => {
                metrics::describe_counter!(f.name, f.help);
                if f.labels.is_empty() {
                    metrics::counter!(f.name).increment(0);
                }
            }
            MetricKind::Gauge => {
                metrics::describe_gauge!(f.name, f.help);
                if f.labels.is_empty() {
                    metrics::gauge!(f.name).increment(0.0);
                }
            }
            MetricKind::Histogram => metrics::describe_histogram!(f.name, f.help),
        }
    }
}
