//! The runtimes a tenant's Cerebrals run on, and one turn.
//!
//! - `embedded`: inside the server, on its tenant actor's thread.
//! - `process`: the model calls are made by the tenant's own child process
//!   (`process.rs`); everything else of the turn stays in the server.
//!
//! One turn: read the session's recent memory; find the first SOP the message
//! matches and run its actions in order (`reply` templates, `http` calls
//! through the outbound guard, `escalate` to a human expert); answer with the
//! SOP's replies, or else ask the model provider with the system prompt, the
//! customer's identity, what the actions did, the memory and the message; then
//! commit the turn — both messages into the session's memory, the tenant's
//! usage, and the `conversation.completed` deliveries — in one transaction
//! before answering, and hand the deliveries to the webhook engine.

use std::time::Instant;

use actix_web::web;
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde_json::{json, Value};
use switchboard_actors::model::{Domain, Priority, TenantId};
use switchboard_actors::tenant::{ProviderUse, Ran, Runtime, Started};
use switchboard_actors::{Change, SessionLink};

use super::config::{TenantConfig, DEFAULT_MODEL, DEFAULT_SYSTEM_PROMPT};
use super::process::{ChildError, Process};
use super::providers::{ChatMessage, ChatReply, ChatRequest, ProviderError, EXPERT_PREFIX};
use super::sop_engine;
use crate::http::agent::api_keys::rfc3339;
use crate::http::agent::sops::{Sop, SopAction};
use crate::http::escalation::escalations::{open_escalation, CreateEscalationRequest};
use crate::identity::model::Plan;
use crate::outbound::http::{call_json, guarded_client};
use crate::startup::AppState;
use crate::store::cerebrals::CerebralRow;
use crate::store::sessions::{self, memory_id, SessionMessageRow};
use crate::store::{events, now_ms, StoreError, WriteRequest};

/// How many of a session's latest entries are given to the model.
pub const MEMORY_ENTRIES: i64 = 40;
/// How much of an SOP `http` answer is read.
const HTTP_BODY_MAX: usize = 64 * 1024;
/// How much of it is shown to the model.
const HTTP_NOTE_CHARS: usize = 2_000;

/// The customer a turn is for, as the templates and the model see it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CustomerInfo {
    pub id: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
}

/// One message to a Cerebral, checked and ready to run.
pub struct Turn {
    pub state: web::Data<AppState>,
    pub tenant_id: String,
    pub plan: Plan,
    pub config: TenantConfig,
    /// The provider key, opened from the secret box.
    pub api_key: Option<String>,
    pub cerebral: CerebralRow,
    pub sops: Vec<Sop>,
    pub message: String,
    pub session_id: Option<String>,
    pub customer: Option<CustomerInfo>,
    pub metadata: Value,
    pub execution_id: String,
    pub started: Instant,
}

impl Turn {
    /// The Cerebral's provider, else the tenant's, else `offline`.
    pub fn provider(&self) -> String {
        self.cerebral
            .provider
            .clone()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| self.config.provider().to_string())
    }

    fn model(&self) -> String {
        self.cerebral
            .model
            .clone()
            .or_else(|| self.config.model.clone())
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_MODEL.to_string())
    }

    fn system_prompt(&self) -> String {
        self.cerebral
            .system_prompt
            .clone()
            .or_else(|| self.config.system_prompt.clone())
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_string())
    }
}

/// The answer's `data` (agent-api.md).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reply {
    pub message: String,
    pub session_id: Option<String>,
    #[schema(example = "exec_9f2b44a1")]
    pub execution_id: String,
    pub metadata: ReplyMetadata,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplyMetadata {
    /// The model that answered; null when an SOP's `reply` answered without one.
    pub model: Option<String>,
    pub tokens_used: u64,
    pub actions_executed: u32,
    pub latency_ms: u64,
    pub sop_matched: Option<String>,
    /// Escalations this turn opened.
    pub escalation_ids: Vec<String>,
}

#[derive(Debug)]
pub enum TurnError {
    /// The model provider failed or cannot be reached as configured.
    Provider(ProviderError),
    Store(StoreError),
    /// The tenant's runtime could not take the turn (a `process` child that
    /// is restarting or does not answer).
    Runtime(String),
}

/// The runtime every tenant gets unless it runs on `process`.
pub struct Embedded {
    /// For SOP `http` actions: bound to this thread, like the actor.
    http: Option<awc::Client>,
}

impl Embedded {
    pub fn new() -> Self {
        Embedded { http: None }
    }
}

impl Default for Embedded {
    fn default() -> Self {
        Self::new()
    }
}

/// The client of SOP `http` actions, made once per runtime (bound to its thread).
fn sop_client(slot: &mut Option<awc::Client>, turn: &Turn) -> awc::Client {
    slot.get_or_insert_with(|| {
        guarded_client(
            turn.state.engine.guard.clone(),
            std::time::Duration::from_secs(10),
            concat!("Switchboard-SOP/", env!("CARGO_PKG_VERSION")),
        )
    })
    .clone()
}

impl Runtime for Embedded {
    type Turn = Turn;
    type Reply = Reply;
    type Error = TurnError;

    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn converse(&mut self, turn: Turn) -> LocalBoxFuture<'static, Ran<Reply, TurnError>> {
        let http = sop_client(&mut self.http, &turn);
        let providers = turn.state.agents.providers.clone();
        Box::pin(run(turn, http, "embedded", move |req| {
            let call = providers.chat(req);
            Box::pin(async move { call.await.map_err(ChildError::Provider) })
        }))
    }

    /// Nothing to start: the server is the runtime.
    fn start(&mut self) -> LocalBoxFuture<'static, Result<Started, String>> {
        Box::pin(std::future::ready(Ok(Started {
            port: None,
            pid: None,
            exited: Box::pin(std::future::pending()),
        })))
    }

    fn stop(&mut self) -> LocalBoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// A tenant's runtime: `embedded` or `process`, chosen when it is deployed.
pub enum Hosted {
    Embedded(Embedded),
    Process { process: Process, http: Option<awc::Client> },
}

impl Hosted {
    pub fn process(process: Process) -> Self {
        Hosted::Process { process, http: None }
    }

    /// The child's own status, on the `process` runtime.
    pub fn child_status(&mut self) -> Option<LocalBoxFuture<'static, Result<Value, String>>> {
        match self {
            Hosted::Embedded(_) => None,
            Hosted::Process { process, .. } => Some(process.status()),
        }
    }
}

impl Runtime for Hosted {
    type Turn = Turn;
    type Reply = Reply;
    type Error = TurnError;

    fn kind(&self) -> &'static str {
        match self {
            Hosted::Embedded(e) => e.kind(),
            Hosted::Process { .. } => "process",
        }
    }

    fn converse(&mut self, turn: Turn) -> LocalBoxFuture<'static, Ran<Reply, TurnError>> {
        match self {
            Hosted::Embedded(e) => e.converse(turn),
            Hosted::Process { process, http } => {
                let http = sop_client(http, &turn);
                // The child in place now takes this turn's model call.
                let mut call = Some(process.chat_fn());
                Box::pin(run(turn, http, "process", move |req| match call.take() {
                    Some(f) => f(req),
                    None => {
                        Box::pin(std::future::ready(Err(ChildError::Unreachable("one call per turn".into()))))
                    }
                }))
            }
        }
    }

    fn start(&mut self) -> LocalBoxFuture<'static, Result<Started, String>> {
        match self {
            Hosted::Embedded(e) => e.start(),
            Hosted::Process { process, .. } => process.start(),
        }
    }

    fn stop(&mut self) -> LocalBoxFuture<'static, ()> {
        match self {
            Hosted::Embedded(e) => e.stop(),
            Hosted::Process { process, .. } => process.stop(),
        }
    }
}

/// What the actions of the matched SOP did.
#[derive(Default)]
struct Actions {
    count: u32,
    replies: Vec<String>,
    /// Told to the model when it answers.
    notes: Vec<String>,
    escalations: Vec<String>,
}

/// One model call, wherever the runtime makes it.
type Chat = LocalBoxFuture<'static, Result<ChatReply, ChildError>>;

async fn run(
    turn: Turn,
    http: awc::Client,
    runtime: &'static str,
    mut chat: impl FnMut(ChatRequest) -> Chat,
) -> Ran<Reply, TurnError> {
    let failed = |e: TurnError, tokens: u64, provider: ProviderUse| Ran { result: Err(e), tokens, provider };
    let memory = match &turn.session_id {
        Some(sid) => {
            match turn.state.store.session_tail(turn.cerebral.id.clone(), sid.clone(), MEMORY_ENTRIES).await {
                Ok(rows) => rows,
                Err(e) => return failed(TurnError::Store(e), 0, ProviderUse::NotCalled),
            }
        }
        None => Vec::new(),
    };
    let mut context = json!({
        "message": turn.message,
        "session_id": turn.session_id,
        "execution_id": turn.execution_id,
        "customer": turn.customer,
        "metadata": turn.metadata,
        "cerebral": { "id": turn.cerebral.id, "name": turn.cerebral.name },
    });
    let sop = sop_engine::matching(&turn.sops, &turn.message).cloned();
    let mut actions = Actions::default();
    if let Some(sop) = &sop {
        for action in &sop.actions {
            actions.count += 1;
            run_action(&turn, &http, action, &memory, &mut context, &mut actions).await;
        }
    }
    let (message, model, (tokens_in, tokens_out), provider_use) = if actions.replies.is_empty() {
        let request = ChatRequest {
            provider: turn.provider(),
            base_url: turn.config.base_url.clone(),
            api_key: turn.api_key.clone(),
            model: turn.model(),
            temperature: turn.config.temperature,
            messages: prompt(&turn, &memory, &actions.notes),
        };
        match chat(request).await {
            Ok(r) => {
                // The provider's total may exceed prompt + completion (e.g. reasoning tokens).
                let output = r.tokens_used.saturating_sub(r.prompt_tokens);
                (r.content, Some(r.model), (r.prompt_tokens, output), ProviderUse::Succeeded)
            }
            Err(ChildError::Provider(e)) => {
                let used = if e.is_provider_failure() { ProviderUse::Failed } else { ProviderUse::NotCalled };
                return failed(TurnError::Provider(e), 0, used);
            }
            Err(ChildError::Unreachable(e)) => {
                return failed(TurnError::Runtime(e), 0, ProviderUse::NotCalled)
            }
        }
    } else {
        (actions.replies.join("\n\n"), None, (0, 0), ProviderUse::NotCalled)
    };
    let tokens = tokens_in + tokens_out;
    let at = now_ms();
    let tenant = TenantId(turn.tenant_id.clone());
    let mut writes =
        vec![sessions::count_usage(turn.tenant_id.clone(), at, 1, tokens_in as i64, tokens_out as i64)];
    if let Some(sid) = &turn.session_id {
        let entry = |role: &str, content: &str, escalation: Option<String>, at: i64| SessionMessageRow {
            id: memory_id(),
            tenant_id: turn.tenant_id.clone(),
            cerebral_id: turn.cerebral.id.clone(),
            session_id: sid.clone(),
            role: role.to_string(),
            content: content.to_string(),
            customer_id: turn.customer.as_ref().map(|c| c.id.clone()),
            execution_id: Some(turn.execution_id.clone()),
            escalation_id: escalation,
            created_at: at,
        };
        writes.push(sessions::insert_message(entry("user", &turn.message, None, at)));
        let escalation = actions.escalations.first().cloned();
        writes.push(sessions::insert_message(entry("assistant", &message, escalation, at)));
    }
    let payload = json!({
        "event": "conversation.completed",
        "cerebral_id": turn.cerebral.id,
        "session_id": turn.session_id,
        "customer_id": turn.customer.as_ref().map(|c| c.id.clone()),
        "execution_id": turn.execution_id,
        "message": message,
        "timestamp": rfc3339(at),
    });
    let deliveries = turn.state.webhooks.prepare(&tenant, "conversation.completed", &payload);
    writes.extend(deliveries.iter().map(|d| events::to_write(Change::InsertDelivery(Box::new(d.clone())))));
    if let Err(e) = turn.state.store.submit(WriteRequest(writes)).await {
        return failed(TurnError::Store(e), tokens, provider_use);
    }
    turn.state.webhooks.dispatch(deliveries);
    metrics::counter!("switchboard_agent_messages_total", "runtime" => runtime).increment(1);
    metrics::counter!("switchboard_agent_tokens_total").increment(tokens);
    Ran {
        result: Ok(Reply {
            message,
            session_id: turn.session_id.clone(),
            execution_id: turn.execution_id.clone(),
            metadata: ReplyMetadata {
                model,
                tokens_used: tokens,
                actions_executed: actions.count,
                latency_ms: turn.started.elapsed().as_millis() as u64,
                sop_matched: sop.map(|s| s.name),
                escalation_ids: actions.escalations,
            },
        }),
        tokens,
        provider: provider_use,
    }
}

async fn run_action(
    turn: &Turn,
    http: &awc::Client,
    action: &SopAction,
    memory: &[SessionMessageRow],
    context: &mut Value,
    actions: &mut Actions,
) {
    match action {
        SopAction::Reply { template } => actions.replies.push(sop_engine::render(template, context)),
        SopAction::Http { method, url, body } => {
            let body = body.as_ref().map(|b| sop_engine::render_json(b, context));
            let url = sop_engine::render_url(url, context);
            let guard = &turn.state.engine.guard;
            // call_json checks the rendered URL against the guard again.
            match call_json(http, guard, method.as_str(), &url, body.as_ref(), HTTP_BODY_MAX).await {
                Ok(answer) => {
                    let shown: String = answer.body.chars().take(HTTP_NOTE_CHARS).collect();
                    actions.notes.push(format!(
                        "The {} {} call answered {}: {}",
                        method.as_str(),
                        url,
                        answer.status,
                        shown
                    ));
                    context["http"] = json!({ "status": answer.status, "body": answer.body, "error": null });
                }
                Err(error) => {
                    actions.notes.push(format!("The {} {} call failed: {error}", method.as_str(), url));
                    context["http"] = json!({ "status": null, "body": null, "error": error });
                }
            }
        }
        SopAction::Escalate { domain, priority } => match escalate(turn, domain, *priority, memory).await {
            Ok(id) => {
                actions.notes.push(format!(
                    "This question was handed to a human expert ({domain}); escalation {id} is pending. \
                     Tell the customer an expert will answer."
                ));
                context["escalation"] = json!({ "id": id, "status": "pending", "domain": domain.as_str() });
                actions.escalations.push(id);
            }
            Err(error) => {
                tracing::warn!(tenant = %turn.tenant_id, cerebral = %turn.cerebral.id, %error, "an SOP escalation could not be opened");
                actions.notes.push(format!("Handing this to a human expert failed: {error}"));
                context["escalation"] = json!({ "id": null, "status": null, "domain": domain.as_str(), "error": error.to_string() });
            }
        },
    }
}

/// Opens the escalation, linked in its own transaction to the session (if any)
/// so that the expert's answer joins the memory.
async fn escalate(
    turn: &Turn,
    domain: &Domain,
    priority: Option<Priority>,
    memory: &[SessionMessageRow],
) -> Result<String, crate::error::AppError> {
    let transcript: Vec<Value> =
        memory.iter().map(|m| json!({ "role": m.role, "content": m.content })).collect();
    let body = CreateEscalationRequest {
        domain: domain.as_str().to_string(),
        query: turn.message.clone(),
        context: Some(json!({
            "cerebral": { "id": turn.cerebral.id, "name": turn.cerebral.name },
            "session_id": turn.session_id,
            "customer": turn.customer,
            "transcript": transcript,
            "metadata": turn.metadata,
        })),
        priority: priority.map(|p| p.as_str().to_string()),
        output_schema: None,
        callback_url: None,
        metadata: Some(json!({
            "source": "cerebral",
            "cerebral_id": turn.cerebral.id,
            "session_id": turn.session_id,
            "execution_id": turn.execution_id,
        })),
        task_type: Some("cerebral_escalation".into()),
        candidates: None,
    };
    let id = switchboard_actors::model::EscalationId::new();
    let extra = match &turn.session_id {
        Some(sid) => vec![Change::LinkSession(Box::new(SessionLink {
            escalation_id: id.to_string(),
            tenant_id: turn.tenant_id.clone(),
            cerebral_id: turn.cerebral.id.clone(),
            session_id: sid.clone(),
            execution_id: turn.execution_id.clone(),
            at_ms: now_ms(),
        }))],
        None => Vec::new(),
    };
    let record =
        open_escalation(&turn.state, TenantId(turn.tenant_id.clone()), turn.plan, body, Some(id), extra)
            .await?;
    Ok(record.id.to_string())
}

/// The conversation the model sees.
fn prompt(turn: &Turn, memory: &[SessionMessageRow], notes: &[String]) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::system(turn.system_prompt())];
    if let Some(c) = &turn.customer {
        let mut who = Vec::new();
        if let Some(n) = &c.name {
            who.push(format!("name {n}"));
        }
        if let Some(e) = &c.email {
            who.push(format!("email {e}"));
        }
        if let Some(p) = &c.phone {
            who.push(format!("phone {p}"));
        }
        if !who.is_empty() {
            messages.push(ChatMessage::system(format!("The customer: {}.", who.join(", "))));
        }
    }
    for m in memory {
        match m.role.as_str() {
            "user" => messages.push(ChatMessage::user(m.content.clone())),
            "assistant" => messages.push(ChatMessage::assistant(m.content.clone())),
            "system" => messages.push(ChatMessage::system(m.content.clone())),
            _ => messages.push(ChatMessage::system(format!("{EXPERT_PREFIX} {}", m.content))),
        }
    }
    for note in notes {
        messages.push(ChatMessage::system(note.clone()));
    }
    messages.push(ChatMessage::user(turn.message.clone()));
    messages
}
