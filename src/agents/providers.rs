//! Model providers: what answers an agent's (Cerebral's) chat.
//!
//! Two kinds, chosen by [`ChatRequest::provider`]:
//!
//! - **`offline`** (also an empty provider name; any case): built in, no
//!   network, no waiting, deterministic. The reply is
//!
//!   ```text
//!   Offline reply to "<last user message>".
//!   ```
//!
//!   followed, when the request holds an earlier user message, by
//!   ` Earlier in this conversation you said: "<the user message before the last>".`
//!   and, when a system message starts with `A human expert answered:`, by a
//!   space and that system message (the last such one). Message texts are
//!   quoted trimmed; with no user message at all the quotes are empty. The
//!   model is the request's `model`, or `offline-1` when it is empty. Tokens
//!   are an estimate, [`estimate_tokens`]: `prompt_tokens` = ceil(c / 4) where
//!   c is the number of characters of all the request's message contents
//!   together, `completion_tokens` = ceil(characters of the reply / 4),
//!   `tokens_used` their sum.
//!
//! - **any other name**: an OpenAI-compatible chat-completions server at
//!   `base_url`: `POST {base_url without trailing /}/chat/completions` with
//!   `{"model", "messages": [{"role", "content"}], "temperature"?}` and
//!   `Authorization: Bearer <api_key>` when a key is set. The reply is
//!   `choices[0].message.content`, `model` (the request's when absent) and
//!   `usage.prompt_tokens` / `completion_tokens` / `total_tokens`. A server
//!   that sends no `usage` (some compatible servers do not) gets the offline
//!   estimate for the missing figures; a missing `total_tokens` is the sum of
//!   the other two.
//!
//! Every call goes through the outbound guard: the base URL's syntax and
//! IP-literal host before sending, what a name resolves to at connect
//! ([`crate::outbound::http::guarded_client`]). Errors never contain the API key.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};

use crate::outbound::http::{
    classify_send_error, guarded_client, lossy_utf8, one_line, read_capped, SendFailure,
};
use crate::outbound::{OutboundGuard, Refusal};

/// The built-in provider's name.
pub const OFFLINE: &str = "offline";
/// The offline provider's model name when the request names none.
pub const OFFLINE_MODEL: &str = "offline-1";
/// The system message prefix that carries a human expert's answer.
pub const EXPERT_PREFIX: &str = "A human expert answered:";
/// The most of a provider's answer that is read.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// How much of a failed answer's body an error quotes (characters).
const QUOTED_BODY_CHARS: usize = 200;

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage { role: role.to_string(), content: content.into() }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// What to ask which provider. It crosses to a `process` runtime's child
/// over loopback, key included: the child makes the call.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatRequest {
    /// `offline` (or empty) for the built-in provider; any other name is an
    /// OpenAI-compatible server at `base_url`.
    pub provider: String,
    pub base_url: Option<String>,
    /// Sent as `Authorization: Bearer`; never logged nor put in an error.
    pub api_key: Option<String>,
    pub model: String,
    pub temperature: Option<f64>,
    pub messages: Vec<ChatMessage>,
}

impl fmt::Debug for ChatRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatRequest")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("messages", &self.messages)
            .finish()
    }
}

/// The provider's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatReply {
    pub content: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// prompt + completion (or the server's `total_tokens`).
    pub tokens_used: u64,
}

/// Why a chat produced no reply. Each message is one line, fit for a log or
/// an API error, and never contains the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum ProviderError {
    /// The caller's configuration cannot work (a non-offline provider without
    /// `base_url` or `model`, a `base_url` that is not an http(s) URL). Not a
    /// failure of the provider: it does not count toward the circuit breaker.
    #[error("{0}")]
    NotConfigured(String),
    /// The outbound guard refused the provider's address.
    #[error("{0}")]
    Refused(String),
    /// The provider failed: network error, timeout, non-2xx answer, an answer
    /// that is not a chat completion. Counts toward the circuit breaker.
    #[error("{0}")]
    Failed(String),
}

impl ProviderError {
    pub fn message(&self) -> &str {
        match self {
            Self::NotConfigured(m) | Self::Refused(m) | Self::Failed(m) => m,
        }
    }

    /// Whether this counts toward the circuit breaker (only [`Self::Failed`]).
    pub fn is_provider_failure(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}

/// The providers, with the outbound policy and the time a call may take.
#[derive(Debug, Clone)]
pub struct Providers {
    guard: OutboundGuard,
    timeout: Duration,
}

impl Providers {
    /// `timeout` bounds one chat call from connect to the last byte of the answer.
    pub fn new(guard: OutboundGuard, timeout: Duration) -> Self {
        Providers { guard, timeout }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether `provider` names the built-in offline provider.
    pub fn is_offline(provider: &str) -> bool {
        let p = provider.trim();
        p.is_empty() || p.eq_ignore_ascii_case(OFFLINE)
    }

    /// Asks the provider. The offline provider answers at once; an
    /// OpenAI-compatible one over the network. Run it on an actix `System`
    /// (the awc client is built lazily, one per thread).
    pub fn chat(&self, req: ChatRequest) -> LocalBoxFuture<'static, Result<ChatReply, ProviderError>> {
        if Self::is_offline(&req.provider) {
            let reply = offline_reply(&req);
            return Box::pin(std::future::ready(Ok(reply)));
        }
        let guard = self.guard.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let key = req.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_string);
            openai_chat(&guard, timeout, req).await.map_err(|e| redact(e, key.as_deref()))
        })
    }
}

/// ceil(characters / 4): the usual rough figure for English text.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn prompt_estimate(messages: &[ChatMessage]) -> u64 {
    let chars: u64 = messages.iter().map(|m| m.content.chars().count() as u64).sum();
    chars.div_ceil(4)
}

/// The offline provider's answer (see the module documentation).
pub fn offline_reply(req: &ChatRequest) -> ChatReply {
    let users: Vec<&str> =
        req.messages.iter().filter(|m| m.role == "user").map(|m| m.content.trim()).collect();
    let last = users.last().copied().unwrap_or("");
    let mut content = format!("Offline reply to \"{last}\".");
    if users.len() >= 2 {
        let earlier = users[users.len() - 2];
        content.push_str(&format!(" Earlier in this conversation you said: \"{earlier}\"."));
    }
    let expert = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "system" && m.content.trim_start().starts_with(EXPERT_PREFIX));
    if let Some(expert) = expert {
        content.push(' ');
        content.push_str(expert.content.trim());
    }
    let model = match req.model.trim() {
        "" => OFFLINE_MODEL.to_string(),
        m => m.to_string(),
    };
    let prompt_tokens = prompt_estimate(&req.messages);
    let completion_tokens = estimate_tokens(&content);
    ChatReply {
        content,
        model,
        prompt_tokens,
        completion_tokens,
        tokens_used: prompt_tokens + completion_tokens,
    }
}

/// One awc client per thread (awc is `!Send`), rebuilt when the guard, the
/// timeout or the actix `System` differ from the cached one's.
struct CachedClient {
    system: Option<usize>,
    guard: OutboundGuard,
    timeout: Duration,
    client: awc::Client,
}

thread_local! {
    static CLIENT: RefCell<Option<CachedClient>> = const { RefCell::new(None) };
}

fn client_for(guard: &OutboundGuard, timeout: Duration) -> awc::Client {
    let system = actix_web::rt::System::try_current().map(|s| s.id());
    CLIENT.with(|cell| {
        let mut cached = cell.borrow_mut();
        if let Some(c) = cached.as_ref() {
            if c.system == system && c.guard == *guard && c.timeout == timeout {
                return c.client.clone();
            }
        }
        let client =
            guarded_client(guard.clone(), timeout, concat!("Switchboard-Agents/", env!("CARGO_PKG_VERSION")));
        *cached = Some(CachedClient { system, guard: guard.clone(), timeout, client: client.clone() });
        client
    })
}

async fn openai_chat(
    guard: &OutboundGuard,
    timeout: Duration,
    req: ChatRequest,
) -> Result<ChatReply, ProviderError> {
    let provider = req.provider.trim();
    let base = req.base_url.as_deref().map(str::trim).filter(|b| !b.is_empty()).ok_or_else(|| {
        ProviderError::NotConfigured(format!(
            "provider {provider:?} needs a base_url: the address of an OpenAI-compatible chat-completions \
             server (or use the \"offline\" provider)"
        ))
    })?;
    let model = req.model.trim();
    if model.is_empty() {
        return Err(ProviderError::NotConfigured(format!("provider {provider:?} needs a model")));
    }
    let endpoint = format!("{}/chat/completions", base.trim_end_matches('/'));
    let url = guard.check_url_syntax(&endpoint).map_err(|r| {
        let message = r.to_string().replacen("callback_url", "the provider's base_url", 1);
        match r {
            Refusal::Forbidden { .. } | Refusal::ForbiddenHost { .. } | Refusal::NotAllowed { .. } => {
                ProviderError::Refused(format!("refused by the outbound guard: {message}"))
            }
            _ => ProviderError::NotConfigured(message),
        }
    })?;

    let messages: Vec<Value> =
        req.messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
    let mut body = json!({"model": model, "messages": messages});
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }

    let client = client_for(guard, timeout);
    let started = Instant::now();
    let mut request = client.post(url.as_str()).insert_header(("accept", "application/json"));
    if let Some(key) = req.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        request = request.insert_header(("authorization", format!("Bearer {key}")));
    }
    let mut answer = request.send_json(&body).await.map_err(|e| match classify_send_error(&e) {
        SendFailure::Refused { message } => ProviderError::Refused(message),
        SendFailure::Unresolvable { message } => {
            ProviderError::Failed(format!("connection failed: {message}"))
        }
        SendFailure::TimedOut => {
            ProviderError::Failed(format!("the provider did not answer within {}", secs(timeout)))
        }
        SendFailure::Connect(c) => ProviderError::Failed(format!("connection failed: {c}")),
        SendFailure::Other(o) => ProviderError::Failed(format!("the request to the provider failed: {o}")),
    })?;
    let status = answer.status();
    // The rest of the budget for the body (at least a moment, so a fast head is not wasted).
    let remaining = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(100));
    let bytes =
        match actix_web::rt::time::timeout(remaining, read_capped(&mut answer, MAX_ANSWER_BYTES)).await {
            Err(_) => {
                return Err(ProviderError::Failed(format!(
                    "the provider did not finish its answer within {}",
                    secs(timeout)
                )))
            }
            Ok(Err(e)) => {
                return Err(ProviderError::Failed(format!(
                    "reading the provider's answer failed: {}",
                    one_line(&e.to_string())
                )))
            }
            Ok(Ok(bytes)) => bytes,
        };
    if !status.is_success() {
        let text = one_line(&lossy_utf8(&bytes));
        let quoted: String = text.chars().take(QUOTED_BODY_CHARS).collect();
        return Err(ProviderError::Failed(format!("the provider answered {}: {quoted}", status.as_u16())));
    }
    parse_completion(&bytes, &req)
}

/// A chat-completions answer into a reply (see the module documentation for
/// the estimate used when `usage` is missing).
fn parse_completion(bytes: &[u8], req: &ChatRequest) -> Result<ChatReply, ProviderError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        ProviderError::Failed(format!("the provider's answer is not a chat completion (not JSON: {e})"))
    })?;
    let content = match v.pointer("/choices/0/message/content") {
        Some(Value::String(s)) => s.clone(),
        // Some servers send content as parts: [{"type": "text", "text": "..."}].
        Some(Value::Array(parts)) if parts.iter().any(|p| p["text"].is_string()) => {
            parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("")
        }
        _ => {
            return Err(ProviderError::Failed(
                "the provider's answer is not a chat completion (no choices[0].message.content text)".into(),
            ))
        }
    };
    let model = match v.get("model").and_then(Value::as_str).map(str::trim) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => req.model.trim().to_string(),
    };
    let usage = v.get("usage").filter(|u| u.is_object());
    let figure = |name: &str| usage.and_then(|u| u.get(name)).and_then(Value::as_u64);
    let prompt_tokens = figure("prompt_tokens").unwrap_or_else(|| prompt_estimate(&req.messages));
    let completion_tokens = figure("completion_tokens").unwrap_or_else(|| estimate_tokens(&content));
    let tokens_used = figure("total_tokens").unwrap_or(prompt_tokens + completion_tokens);
    Ok(ChatReply { content, model, prompt_tokens, completion_tokens, tokens_used })
}

/// The key out of an error message, whatever put it there (a server echoing it, say).
fn redact(e: ProviderError, key: Option<&str>) -> ProviderError {
    let Some(key) = key.filter(|k| k.len() >= 4) else { return e };
    let clean = |m: String| m.replace(key, "[redacted]");
    match e {
        ProviderError::NotConfigured(m) => ProviderError::NotConfigured(clean(m)),
        ProviderError::Refused(m) => ProviderError::Refused(clean(m)),
        ProviderError::Failed(m) => ProviderError::Failed(clean(m)),
    }
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

    fn offline(messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest {
            provider: OFFLINE.into(),
            base_url: None,
            api_key: None,
            model: String::new(),
            temperature: None,
            messages,
        }
    }

    #[test]
    fn offline_reply_format() {
        let r = offline_reply(&offline(vec![ChatMessage::system("Be nice."), ChatMessage::user("Hello")]));
        assert_eq!(r.content, "Offline reply to \"Hello\".");
        assert_eq!(r.model, OFFLINE_MODEL);

        let r = offline_reply(&offline(vec![
            ChatMessage::user("My order is 42"),
            ChatMessage::assistant("Offline reply to \"My order is 42\"."),
            ChatMessage::user("  Where is it?  "),
        ]));
        assert_eq!(
            r.content,
            "Offline reply to \"Where is it?\". Earlier in this conversation you said: \"My order is 42\"."
        );

        let r = offline_reply(&offline(vec![
            ChatMessage::user("a"),
            ChatMessage::user("b"),
            ChatMessage::system("A human expert answered: old"),
            ChatMessage::system("A human expert answered: ship it Monday"),
            ChatMessage::user("c"),
        ]));
        assert_eq!(
            r.content,
            "Offline reply to \"c\". Earlier in this conversation you said: \"b\". \
             A human expert answered: ship it Monday"
        );

        let r = offline_reply(&offline(vec![]));
        assert_eq!(r.content, "Offline reply to \"\".");
        let mut req = offline(vec![ChatMessage::user("x")]);
        req.model = " my-model ".into();
        assert_eq!(offline_reply(&req).model, "my-model");
    }

    #[test]
    fn offline_tokens_are_an_honest_estimate() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("éééé"), 1, "characters, not bytes");

        let req = offline(vec![ChatMessage::system("12345"), ChatMessage::user("Hello")]); // 10 chars
        let r = offline_reply(&req);
        assert_eq!(r.prompt_tokens, 3);
        assert_eq!(r.completion_tokens, estimate_tokens("Offline reply to \"Hello\"."));
        assert_eq!(r.completion_tokens, 7); // 25 characters
        assert_eq!(r.tokens_used, r.prompt_tokens + r.completion_tokens);
    }

    #[actix_web::test]
    async fn offline_is_deterministic_and_needs_no_network() {
        // A guard that refuses everything: offline never goes near it.
        let providers = Providers::new(OutboundGuard::new(false, Some(vec![])), Duration::from_millis(1));
        let mut req = offline(vec![ChatMessage::user("Hi")]);
        let a = providers.chat(req.clone()).await.unwrap();
        let b = providers.chat(req.clone()).await.unwrap();
        assert_eq!(a, b);
        req.provider = String::new();
        assert_eq!(providers.chat(req.clone()).await.unwrap(), a);
        req.provider = "Offline".into();
        assert_eq!(providers.chat(req).await.unwrap(), a);
    }

    // ---- the OpenAI-compatible path, against a loopback server --------------

    #[derive(Clone)]
    enum Answer {
        Json(u16, String),
        Hang,
    }

    #[derive(Default)]
    struct Seen {
        bodies: Vec<Value>,
        auth: Vec<Option<String>>,
        paths: Vec<String>,
    }

    struct Fake {
        base: String,
        seen: Arc<Mutex<Seen>>,
        answer: Arc<Mutex<Answer>>,
    }

    impl Fake {
        fn set(&self, a: Answer) {
            *self.answer.lock().unwrap() = a;
        }
        fn count(&self) -> usize {
            self.seen.lock().unwrap().bodies.len()
        }
    }

    fn completion(content: &str) -> String {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "served-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
        })
        .to_string()
    }

    /// A loopback server on this test's System answering every path with the current `Answer`.
    fn fake() -> Fake {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let answer = Arc::new(Mutex::new(Answer::Json(200, completion("hi there"))));
        let (s, a) = (seen.clone(), answer.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let (s, a) = (s.clone(), a.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (s, a) = (s.clone(), a.clone());
                async move {
                    {
                        let mut seen = s.lock().unwrap();
                        seen.bodies.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        seen.auth.push(
                            req.headers().get("authorization").map(|v| v.to_str().unwrap().to_string()),
                        );
                        seen.paths.push(req.path().to_string());
                    }
                    let answer = a.lock().unwrap().clone();
                    match answer {
                        Answer::Json(status, text) => {
                            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                                .content_type("application/json")
                                .body(text)
                        }
                        Answer::Hang => {
                            std::future::pending::<()>().await;
                            HttpResponse::Ok().finish()
                        }
                    }
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        Fake { base: format!("http://127.0.0.1:{port}/v1/"), seen, answer }
    }

    fn loopback() -> Providers {
        let allow = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        Providers::new(OutboundGuard::new(true, Some(allow)), Duration::from_secs(5))
    }

    const KEY: &str = "sk-test-secret-key-123";

    fn remote(base: &str) -> ChatRequest {
        ChatRequest {
            provider: "openai".into(),
            base_url: Some(base.into()),
            api_key: Some(KEY.into()),
            model: "gpt-test".into(),
            temperature: Some(0.2),
            messages: vec![ChatMessage::system("Be brief."), ChatMessage::user("Hello")],
        }
    }

    #[actix_web::test]
    async fn openai_compatible_round_trip() {
        let fake = fake();
        let reply = loopback().chat(remote(&fake.base)).await.unwrap();
        assert_eq!(
            reply,
            ChatReply {
                content: "hi there".into(),
                model: "served-model".into(),
                prompt_tokens: 11,
                completion_tokens: 5,
                tokens_used: 16,
            }
        );
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.paths, vec!["/v1/chat/completions"]);
        assert_eq!(
            seen.bodies[0],
            json!({
                "model": "gpt-test",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
                "temperature": 0.2
            })
        );
        assert_eq!(seen.auth[0].as_deref(), Some(format!("Bearer {KEY}").as_str()));
    }

    #[actix_web::test]
    async fn no_key_no_temperature_and_no_usage() {
        let fake = fake();
        fake.set(Answer::Json(
            200,
            json!({"choices": [{"message": {"role": "assistant", "content": "abcdefgh"}}]}).to_string(),
        ));
        let mut req = remote(fake.base.trim_end_matches('/'));
        req.api_key = None;
        req.temperature = None;
        let reply = loopback().chat(req).await.unwrap();
        // No usage: estimated like the offline provider; no model: the request's.
        assert_eq!(reply.model, "gpt-test");
        assert_eq!(reply.prompt_tokens, 4); // "Be brief." + "Hello" = 14 characters
        assert_eq!(reply.completion_tokens, 2);
        assert_eq!(reply.tokens_used, 6);
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.auth, vec![None]);
        assert!(seen.bodies[0].get("temperature").is_none());
        assert_eq!(seen.paths, vec!["/v1/chat/completions"]);
    }

    #[actix_web::test]
    async fn a_server_error_is_a_failure_that_quotes_the_body_without_the_key() {
        let fake = fake();
        let long = format!("boom {} {}", KEY, "x".repeat(500));
        fake.set(Answer::Json(500, long));
        let e = loopback().chat(remote(&fake.base)).await.unwrap_err();
        let ProviderError::Failed(m) = &e else { panic!("{e:?}") };
        assert!(m.starts_with("the provider answered 500: boom [redacted] xxx"), "{m}");
        assert!(!m.contains(KEY));
        assert!(m.len() < 260, "{m}");
        assert!(e.is_provider_failure());

        fake.set(Answer::Json(401, json!({"error": {"message": format!("bad key {KEY}")}}).to_string()));
        let e = loopback().chat(remote(&fake.base)).await.unwrap_err();
        assert!(matches!(&e, ProviderError::Failed(m) if m.starts_with("the provider answered 401: ")));
        assert!(!e.message().contains(KEY));
    }

    #[actix_web::test]
    async fn an_unparsable_answer_is_a_failure() {
        let fake = fake();
        for body in
            ["not json at all", "{\"choices\": []}", "{\"choices\": [{\"message\": {\"content\": null}}]}"]
        {
            fake.set(Answer::Json(200, body.into()));
            let e = loopback().chat(remote(&fake.base)).await.unwrap_err();
            assert!(
                matches!(&e, ProviderError::Failed(m) if m.contains("not a chat completion")),
                "{body}: {e:?}"
            );
        }
    }

    #[actix_web::test]
    async fn a_hanging_provider_times_out() {
        let fake = fake();
        fake.set(Answer::Hang);
        let allow = vec!["127.0.0.0/8".parse().unwrap()];
        let providers = Providers::new(OutboundGuard::new(true, Some(allow)), Duration::from_millis(300));
        let started = Instant::now();
        let e = providers.chat(remote(&fake.base)).await.unwrap_err();
        assert_eq!(e, ProviderError::Failed("the provider did not answer within 300ms".into()));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[actix_web::test]
    async fn a_closed_port_is_a_failure() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = loopback().chat(remote(&format!("http://127.0.0.1:{port}/v1"))).await.unwrap_err();
        assert!(matches!(&e, ProviderError::Failed(m) if m.starts_with("connection failed: ")), "{e:?}");
    }

    #[actix_web::test]
    async fn configuration_errors_are_not_failures() {
        let providers = loopback();
        let mut req = remote("http://127.0.0.1:9/v1");
        req.base_url = None;
        let e = providers.chat(req.clone()).await.unwrap_err();
        assert!(matches!(&e, ProviderError::NotConfigured(m) if m.contains("needs a base_url")), "{e:?}");
        assert!(!e.is_provider_failure());
        req.base_url = Some("   ".into());
        assert!(matches!(providers.chat(req.clone()).await, Err(ProviderError::NotConfigured(_))));
        req.base_url = Some("ftp://127.0.0.1/v1".into());
        let e = providers.chat(req.clone()).await.unwrap_err();
        assert!(matches!(&e, ProviderError::NotConfigured(m) if m.contains("base_url")), "{e:?}");
        req.base_url = Some("not a url".into());
        assert!(matches!(providers.chat(req.clone()).await, Err(ProviderError::NotConfigured(_))));
        let mut req = remote("http://127.0.0.1:9/v1");
        req.model = " ".into();
        assert!(
            matches!(providers.chat(req).await, Err(ProviderError::NotConfigured(m)) if m.contains("model"))
        );
    }

    #[actix_web::test]
    async fn a_guard_that_forbids_loopback_refuses_without_connecting() {
        let fake = fake();
        let strict = Providers::new(OutboundGuard::new(false, None), Duration::from_secs(2));
        let e = strict.chat(remote(&fake.base)).await.unwrap_err();
        assert_eq!(
            e,
            ProviderError::Refused(
                "refused by the outbound guard: the provider's base_url points at a loopback address (127.0.0.1)"
                    .into()
            )
        );
        assert!(!e.is_provider_failure());
        // A name is judged by what it resolves to, at connect.
        let port = fake.base.split(':').nth(2).unwrap().trim_end_matches("/v1/");
        let limited = Providers::new(
            OutboundGuard::new(true, Some(vec!["10.0.0.0/8".parse().unwrap()])),
            Duration::from_secs(2),
        );
        let e = limited.chat(remote(&format!("http://localhost:{port}/v1"))).await.unwrap_err();
        assert!(
            matches!(&e, ProviderError::Refused(m) if m.starts_with("refused by the outbound guard: ")),
            "{e:?}"
        );
        assert_eq!(fake.count(), 0);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", remote("http://x/"));
        assert!(!shown.contains(KEY) && shown.contains("[redacted]"), "{shown}");
    }
}
