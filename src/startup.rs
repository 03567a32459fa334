//! Builds the application from `Settings`: the store, the actors, the HTTP
//! server. Serving starts at once (so `/healthz` answers and `/readyz` says
//! 503); `initialize` then waits for the database, applies migrations,
//! rebuilds the live actors from it, and only then marks the server ready.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{middleware::from_fn, web, App, HttpServer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use switchboard_actors::{Change, EventRecord, Persistence};

use crate::http;
use crate::identity::model::Email;
use crate::identity::{accounts, master_key, Identity};
use crate::settings::Settings;
use crate::store::{self, connection, migrations, GroupCommitConfig, Store, StoreError};

/// What every handler can reach. Business state lives in actors, not here.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    /// Set once the actors were rebuilt from the database.
    pub ready: AtomicBool,
    pub metrics: PrometheusHandle,
    pub identity: Identity,
    pub openapi: String,
    pub engine: crate::engine::Engine,
    pub webhooks: crate::webhooks::Webhooks,
    pub agents: crate::agents::Agents,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting or configuration file cannot be used: exit code 2.
    #[error("{0}")]
    Config(String),
    /// Start-up failed for another reason: exit code 1.
    #[error("{0}")]
    Fatal(String),
}

impl StartupError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::Config(_) => 2,
            StartupError::Fatal(_) => 1,
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds the listener and starts serving; the server is not ready until `initialize`.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Self::build_with_routes(settings, |_| {}).await
    }

    /// `build`, with `extra` routes mounted before the product's own: the
    /// integration tests use it to exercise the shared middleware and
    /// extractors through routes that exist only in the test binary.
    pub async fn build_with_routes(
        settings: Settings,
        extra: fn(&mut web::ServiceConfig),
    ) -> Result<Application, StartupError> {
        // Installed before any actor starts, so their first figures are not lost.
        let metrics = metrics_handle();
        let master_key = master_key::resolve(&settings).map_err(StartupError::Config)?;
        let identity = Identity::new(master_key, &settings).map_err(StartupError::Config)?;
        connection::prepare(&settings.database_url).map_err(StartupError::Fatal)?;
        let pool = connection::build_pool(&settings.database_url, settings.db_pool_size);
        let store = Store::start(
            &settings.database_url,
            pool,
            GroupCommitConfig::for_backend(
                &settings.database_url,
                settings.store_batch_window,
                settings.store_batch_max,
            ),
        );
        // The TLS client of webhooks and providers signs with ring; another
        // provider may already be installed by an embedding program, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let webhooks = crate::webhooks::Webhooks::start(&settings, &store, identity.secrets.clone());
        let agents = crate::agents::Agents::start(&settings, &store);
        let listeners =
            crate::agents::Listeners(vec![webhooks.listener(), Arc::new(crate::agents::SessionMemory)]);
        let engine = crate::engine::Engine::start(&settings, &store, Arc::new(listeners));
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| StartupError::Fatal(format!("cannot listen on {}: {e}", settings.bind)))?;
        let port = listener.local_addr().map_err(|e| StartupError::Fatal(e.to_string()))?.port();
        let shutdown_timeout = settings.shutdown_timeout.as_secs().max(1);
        let (client_header_timeout, keep_alive) = (settings.client_header_timeout, settings.keep_alive);
        let state = web::Data::new(AppState {
            settings: Arc::new(settings),
            store,
            ready: AtomicBool::new(false),
            metrics,
            identity,
            openapi: http::openapi::document(),
            engine,
            webhooks,
            agents,
        });
        crate::agents::resources::spawn_sampler(state.clone());
        let limits = state.clone();
        actix_web::rt::spawn(async move {
            // Keys whose allowance refilled are forgotten, so memory follows recent traffic only.
            let mut every = actix_web::rt::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                limits.identity.signin_per_email.retain_recent();
                limits.identity.signin_per_client.retain_recent();
            }
        });
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(http::middleware::surface))
                .configure(extra)
                .configure(http::configure)
        })
        // A client slow to send its head is answered 408 and dropped; one slow to
        // send its body gets 408 from the body reader (`http::extract`).
        .client_request_timeout(client_header_timeout)
        .keep_alive(keep_alive)
        .listen(listener)
        .map_err(|e| StartupError::Fatal(format!("cannot serve: {e}")))?
        .shutdown_timeout(shutdown_timeout)
        .run();
        Ok(Application { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM/SIGINT or a handle): stops accepting,
    /// lets in-flight requests finish within the drain timeout, then flushes the Store.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let served = self.server.await;
        self.state.store.flush().await;
        tracing::info!("stopped");
        served.map_err(|e| StartupError::Fatal(format!("server failed: {e}")))
    }
}

/// Waits for the database, migrates it, rebuilds the actors, and marks the server ready.
pub async fn initialize(state: &AppState) -> Result<(), StartupError> {
    let mut wait = Duration::from_millis(100);
    loop {
        match state.store.read(|conn| migrations::run(conn).map_err(StoreError::Rejected)).await {
            Ok(applied) => {
                if !applied.is_empty() {
                    tracing::info!(?applied, "applied migrations");
                }
                break;
            }
            Err(StoreError::Unavailable(e)) => {
                tracing::warn!(
                    database = %state.settings.database_url,
                    error = %e,
                    retry_in_ms = wait.as_millis() as u64,
                    "database not reachable yet"
                );
                actix_web::rt::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(StartupError::Fatal(e.to_string())),
        }
    }
    let operator = accounts::ensure_operator_tenant(&state.store)
        .await
        .map_err(|e| StartupError::Fatal(format!("cannot create the operator tenant: {e}")))?;
    if let Some(raw) = &state.settings.bootstrap_admin {
        // The setting was checked at parse time; Email::parse only normalises it again.
        let email = Email::parse(raw).map_err(StartupError::Config)?;
        accounts::ensure_bootstrap_admin(&state.store, &email, &operator)
            .await
            .map_err(|e| StartupError::Fatal(format!("cannot create the bootstrap admin: {e}")))?;
    }
    // The engine's actors are rebuilt here from the database as they are added.
    let (experts, cases) = state
        .engine
        .restore(&state.store)
        .await
        .map_err(|e| StartupError::Fatal(format!("cannot rebuild the routing engine: {e}")))?;
    tracing::info!(experts, open_escalations = cases, "routing engine rebuilt");
    let (subscriptions, deliveries) = state
        .webhooks
        .restore(&state.identity.secrets)
        .await
        .map_err(|e| StartupError::Fatal(format!("cannot rebuild the webhook engine: {e}")))?;
    tracing::info!(subscriptions, open_deliveries = deliveries, "webhook engine rebuilt");
    let containers = state
        .agents
        .restore()
        .await
        .map_err(|e| StartupError::Fatal(format!("cannot bring tenant containers back: {e}")))?;
    tracing::info!(containers, "tenant containers that were running are starting again");
    let started = EventRecord {
        id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        stream: "server".into(),
        kind: "server.started".into(),
        payload: serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "backend": state.store.backend(),
        }),
        at_ms: store::now_ms(),
    };
    state
        .store
        .commit(vec![Change::AppendEvent(started)])
        .await
        .map_err(|e| StartupError::Fatal(format!("cannot record start-up: {e}")))?;
    state.ready.store(true, Ordering::Release);
    tracing::info!(backend = state.store.backend(), "ready");
    Ok(())
}

/// The bucket bounds of every `*_seconds` histogram.
pub const SECONDS_BUCKETS: [f64; 16] =
    [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The bucket bounds of `switchboard_escalation_resolution_seconds`: people
/// answer in minutes to hours, beyond the 30 s where the others stop.
pub const RESOLUTION_BUCKETS: [f64; 16] = [
    0.1, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
    172800.0,
];

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let counts = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("switchboard_store_batch_writes".into()), &counts)
                })
                // A full name wins over the suffix above.
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("switchboard_escalation_resolution_seconds".into()),
                        &RESOLUTION_BUCKETS,
                    )
                });
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                // Only empty bucket lists are refused, and these are constants.
                Err(e) => unreachable!("bucket constants are valid: {e}"),
            };
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding test); keep ours readable anyway.
            if metrics::set_global_recorder(recorder).is_ok() {
                crate::telemetry::describe_metrics();
            }
            handle
        })
        .clone()
}
