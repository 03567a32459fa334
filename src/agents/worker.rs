//! `switchboard runtime --tenant ID`: the child of the `process` runtime.
//!
//! It serves on a loopback port (announced as the first stdout line) with
//! one worker thread, makes the tenant's model calls through the same
//! providers and outbound guard as the server, and answers:
//! - `POST /chat` — a `ChatRequest`; 200 `ChatReply`, or 502 `ProviderError`;
//! - `GET /status` — what `zeroclaw status` shows;
//! - `GET /healthz`.
//!
//! Every call needs `Authorization: Bearer <SWITCHBOARD_RUNTIME_TOKEN>`.
//! It exits when its stdin closes (the server is gone). Its stdout lines are
//! the tenant's log.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::process::{READY_PREFIX, TOKEN_ENV};
use super::providers::{ChatRequest, Providers};
use crate::outbound::OutboundGuard;
use crate::settings::Settings;

struct Worker {
    tenant_id: String,
    token: String,
    providers: Providers,
    started: Instant,
    turns: AtomicU64,
    tokens: AtomicU64,
    failures: AtomicU64,
}

impl Worker {
    fn allowed(&self, req: &HttpRequest) -> bool {
        let given = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        given.len() == self.token.len() && bool::from(given.as_bytes().ct_eq(self.token.as_bytes()))
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the child until its stdin closes.
pub async fn run(settings: Settings, tenant_id: String) -> Result<(), String> {
    let token = std::env::var(TOKEN_ENV).map_err(|_| format!("{TOKEN_ENV} is not set"))?;
    if token.len() < 32 {
        return Err(format!("{TOKEN_ENV} is too short"));
    }
    let worker = web::Data::new(Worker {
        tenant_id: tenant_id.clone(),
        token,
        providers: Providers::new(OutboundGuard::from_settings(&settings), settings.provider_timeout),
        started: Instant::now(),
        turns: AtomicU64::new(0),
        tokens: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let data = worker.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(8 * 1024 * 1024))
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(json!({"status": "ok"})) }))
            .route("/status", web::get().to(status))
            .route("/chat", web::post().to(chat))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|e| format!("cannot serve: {e}"))?
    .run();
    // The server holds our stdin; end-of-file means it is gone.
    std::thread::spawn(|| {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
    });
    say(&format!("{READY_PREFIX}{port}"));
    say(&format!(
        "[INFO] Agent runtime for tenant {tenant_id} listening on 127.0.0.1:{port} (pid {})",
        std::process::id()
    ));
    server.await.map_err(|e| format!("server failed: {e}"))
}

async fn status(worker: web::Data<Worker>, req: HttpRequest) -> HttpResponse {
    if !worker.allowed(&req) {
        return HttpResponse::Unauthorized().json(json!({"error": "bad runtime token"}));
    }
    HttpResponse::Ok().json(json!({
        "tenant_id": worker.tenant_id,
        "pid": std::process::id(),
        "uptime_secs": worker.started.elapsed().as_secs(),
        "turns": worker.turns.load(Ordering::Relaxed),
        "tokens": worker.tokens.load(Ordering::Relaxed),
        "provider_failures": worker.failures.load(Ordering::Relaxed),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn chat(worker: web::Data<Worker>, req: HttpRequest, body: web::Json<ChatRequest>) -> HttpResponse {
    if !worker.allowed(&req) {
        return HttpResponse::Unauthorized().json(json!({"error": "bad runtime token"}));
    }
    let request = body.into_inner();
    let (provider, model) = (request.provider.clone(), request.model.clone());
    let began = Instant::now();
    match worker.providers.chat(request).await {
        Ok(reply) => {
            worker.turns.fetch_add(1, Ordering::Relaxed);
            worker.tokens.fetch_add(reply.tokens_used, Ordering::Relaxed);
            say(&format!(
                "[INFO] Turn answered by {}/{} in {} ms ({} tokens)",
                provider_name(&provider),
                reply.model,
                began.elapsed().as_millis(),
                reply.tokens_used
            ));
            HttpResponse::Ok().json(reply)
        }
        Err(e) => {
            worker.failures.fetch_add(1, Ordering::Relaxed);
            say(&format!("[WARN] Provider {}/{model} failed: {}", provider_name(&provider), e.message()));
            HttpResponse::BadGateway().json(e)
        }
    }
}

fn provider_name(p: &str) -> &str {
    if Providers::is_offline(p) {
        "offline"
    } else {
        p
    }
}
