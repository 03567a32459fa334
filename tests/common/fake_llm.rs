//! A loopback fake of an OpenAI-compatible chat-completions server, for the
//! agent tests: `POST {url}/chat/completions` on `127.0.0.1:0` records every
//! request (JSON body, `Authorization` header) and answers as told by a
//! [`Mode`] that the test may change at any time.
//!
//! It runs an actix-web server on a thread and `System` of its own, not on
//! the test's runtime: a fake that hangs, or a test runtime that is busy,
//! never holds the other up. It stops (and drops every held connection) when
//! the [`FakeLlm`] is dropped.
//!
//! Included by test files with `#[path = "common/fake_llm.rs"] mod fake_llm;`.

#![allow(dead_code)] // each test file uses a different part of it

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// How the fake answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 200 with a chat completion whose content is `reply` and whose
    /// `usage.total_tokens` is `total_tokens` (split half prompt, half completion).
    Ok { reply: String, total_tokens: u64 },
    /// This status, with a small JSON error body.
    Fail(u16),
    /// Reads the request and never answers, until the client gives up.
    Hang,
}

impl Default for Mode {
    fn default() -> Self {
        Mode::Ok { reply: "fake reply".into(), total_tokens: 42 }
    }
}

#[derive(Default)]
struct Shared {
    mode: Mutex<Mode>,
    /// (body as JSON, or the raw text as a JSON string; `Authorization`)
    log: Mutex<Vec<(Value, Option<String>)>>,
    in_flight: AtomicUsize,
}

/// A running fake; stops when dropped.
pub struct FakeLlm {
    /// The `base_url` to configure: `http://127.0.0.1:PORT/v1`.
    pub url: String,
    pub port: u16,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl FakeLlm {
    /// Starts a fake on `127.0.0.1:0` in [`Mode::default`].
    pub fn start() -> FakeLlm {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake LLM");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("fake-llm-{port}"))
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let data = web::Data::from(s);
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                            .route("/v1/chat/completions", web::post().to(completions))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .listen(listener)
                    .expect("listen on the fake LLM's socket")
                    .run();
                    let _ = tx.send(server.handle());
                    let _ = server.await;
                });
            })
            .expect("start the fake LLM's thread");
        let handle = rx.recv_timeout(Duration::from_secs(10)).expect("the fake LLM did not start");
        FakeLlm { url: format!("http://127.0.0.1:{port}/v1"), port, shared, handle }
    }

    /// Changes how the next requests are answered.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// The bodies received, in order (a body that is not JSON appears as a JSON string).
    pub fn requests(&self) -> Vec<Value> {
        self.shared.log.lock().unwrap().iter().map(|(b, _)| b.clone()).collect()
    }

    /// The `Authorization` header of each request, in order.
    pub fn auth_headers(&self) -> Vec<Option<String>> {
        self.shared.log.lock().unwrap().iter().map(|(_, a)| a.clone()).collect()
    }

    pub fn count(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    /// Requests received and not answered yet (held by [`Mode::Hang`]).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Polls until at least `n` requests arrived; returns their bodies, or
    /// panics with what did arrive.
    pub async fn until_count(&self, n: usize, within: Duration) -> Vec<Value> {
        let end = Instant::now() + within;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            if Instant::now() >= end {
                panic!("the fake LLM got {} requests, not {n}, within {within:?}: {got:#?}", got.len());
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        // `stop` sends its command at once; its future only waits for the end.
        drop(self.handle.stop(false));
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn completions(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let auth = req.headers().get("authorization").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let model = json["model"].as_str().unwrap_or("fake-model").to_string();
    shared.log.lock().unwrap().push((json, auth));
    let mode = shared.mode.lock().unwrap().clone();
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let _counted = InFlight(shared.clone().into_inner());
    match mode {
        Mode::Ok { reply, total_tokens } => {
            let prompt = total_tokens / 2;
            HttpResponse::Ok().json(json!({
                "id": format!("chatcmpl-fake-{}", uuid::Uuid::new_v4().simple()),
                "object": "chat.completion",
                "created": chrono::Utc::now().timestamp(),
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop"
                }],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": total_tokens - prompt,
                    "total_tokens": total_tokens
                }
            }))
        }
        Mode::Fail(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status).json(json!({
                "error": {"message": format!("the fake LLM was told to fail with {}", status.as_u16()),
                          "type": "fake_error"}
            }))
        }
        Mode::Hang => std::future::pending::<HttpResponse>().await,
    }
}
