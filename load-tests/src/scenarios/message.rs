//! `POST /v1/cerebrals/{id}/message`: Cerebral turns per second on the
//! offline provider, with session memory. Each answer comes after the turn
//! (both messages and the usage) is committed, so this is the Agent API's
//! write path end to end: key check, the tenant actor's windows and budget,
//! the session's memory read, the model, the commit.
//!
//! Every worker keeps --sessions sessions of its own and rotates over them,
//! so memory grows through the run as real conversations do. Worker `w`
//! talks to tenant `w mod --tenants`: with `--token` those are seeded (and
//! removed at the end, see [`super::tenants`]); else the one Cerebral of
//! `--agent-key` and `--cerebral`.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use clap::Args;
use reqwest::header::HeaderValue;
use reqwest::Url;
use serde_json::json;

use super::tenants::{agent_targets, remove_tenants, AgentTarget};
use super::{body_excerpt, finish, run_id, Env, OpCtx, OpResult, Scenario, DEFAULT_TENANTS};
use crate::report::ScenarioReport;
use crate::runner::{self, Interrupt, RunConfig};

pub const NAME: &str = "message";

const DEFAULT_SESSIONS: u32 = 4;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct MessageArgs {
    /// Without --token: an Agent API key (`sk_live_...`) of a tenant without
    /// request limits; `switchboard admin agent-key` prints one with its
    /// Cerebral
    #[arg(long, env = "SWITCHBOARD_LOAD_AGENT_KEY", hide_env_values = true)]
    pub agent_key: Option<String>,
    /// Without --token: the Cerebral to talk to (from the same `admin
    /// agent-key` output)
    #[arg(long, env = "SWITCHBOARD_LOAD_CEREBRAL")]
    pub cerebral: Option<String>,
    /// Sessions per worker (0: stateless calls, no session_id)
    #[arg(long, default_value_t = DEFAULT_SESSIONS, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub sessions: u32,
    /// Tenants (each with a Cerebral) the client workers are spread over;
    /// seeded with --token, one with --agent-key
    #[arg(long, default_value_t = DEFAULT_TENANTS, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub tenants: u32,
}

impl Default for MessageArgs {
    fn default() -> Self {
        MessageArgs { agent_key: None, cerebral: None, sessions: DEFAULT_SESSIONS, tenants: DEFAULT_TENANTS }
    }
}

impl MessageArgs {
    /// For `all`: the key and Cerebral from the environment, the rest by default.
    pub fn from_env() -> Self {
        let var =
            |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        MessageArgs {
            agent_key: var("SWITCHBOARD_LOAD_AGENT_KEY"),
            cerebral: var("SWITCHBOARD_LOAD_CEREBRAL"),
            ..MessageArgs::default()
        }
    }

    /// Without `--token`, both the key and the Cerebral are needed, and one
    /// tenant is all there is; checked before anything runs.
    pub fn check(&self, env: &Env) -> anyhow::Result<()> {
        if env.token.is_some() {
            return Ok(());
        }
        if self.agent_key.is_none() || self.cerebral.is_none() {
            anyhow::bail!("{NAME} needs --token, or an Agent API key and a Cerebral id: {HINT}");
        }
        if self.tenants > 1 {
            anyhow::bail!(
                "{NAME}: --tenants {} needs --token (the tenants are seeded through the API); with \
                 --agent-key everything runs in that key's one tenant",
                self.tenants
            );
        }
        Ok(())
    }
}

const HINT: &str = "pass a super-admin's JWT with --token (`switchboard admin token --email EMAIL`) to seed \
                    tenants through the API, or run `switchboard admin agent-key` with the server's settings \
                    and pass its api_key and cerebral_id as --agent-key and --cerebral (or \
                    SWITCHBOARD_LOAD_AGENT_KEY, SWITCHBOARD_LOAD_CEREBRAL)";

pub struct Message {
    /// One per tenant: the Cerebral's message URL and its key.
    targets: Vec<(Url, HeaderValue)>,
    sessions: u32,
    run: String,
}

impl Message {
    pub async fn new(args: &MessageArgs, env: &Env, targets: Vec<AgentTarget>) -> anyhow::Result<Self> {
        let targets = targets
            .into_iter()
            .map(|t| {
                let url = env.url(&format!("/v1/cerebrals/{}/message", t.cerebral))?;
                Ok((url, HeaderValue::from_str(&t.key)?))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (url, key) in &targets {
            first_turn(env, url, key).await?;
        }
        Ok(Message { targets, sessions: args.sessions, run: run_id() })
    }
}

/// One turn first: a wrong key, Cerebral or limited plan fails here with the server's reason.
async fn first_turn(env: &Env, url: &Url, key: &HeaderValue) -> anyhow::Result<()> {
    let hint = HINT;
    let resp = env
        .client
        .post(url.clone())
        .header("X-API-Key", key.clone())
        .json(&json!({ "message": "hello from switchboard-load" }))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{NAME}: POST /v1/cerebrals/{{id}}/message failed: {e}"))?;
    let status = resp.status();
    let limit = resp.headers().get("x-ratelimit-limit").and_then(|v| v.to_str().ok()).map(str::to_string);
    if !status.is_success() {
        anyhow::bail!("{NAME}: the first message was answered {status}: {}", body_excerpt(resp).await);
    }
    resp.bytes().await?;
    if limit.as_deref().is_some_and(|l| l != "unlimited") {
        anyhow::bail!(
            "{NAME}: the key's tenant has a request limit ({} per window); use an operator tenant key: {hint}",
            limit.unwrap_or_default()
        );
    }
    Ok(())
}

impl Scenario for Message {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn op(&self, ctx: &OpCtx<'_>) -> OpResult {
        let (url, key) = &self.targets[ctx.worker % self.targets.len()];
        let mut body = json!({
            "message": format!("where is order #{}? (worker {})", ctx.seq, ctx.worker),
            "metadata": { "channel": "load" },
        });
        if self.sessions > 0 {
            let session = ctx.seq % u64::from(self.sessions);
            body["session_id"] = json!(format!("load-{}-{}-{session}", self.run, ctx.worker));
        }
        let resp = ctx.env.client.post(url.clone()).header("X-API-Key", key.clone()).json(&body).send().await;
        finish(resp, &[200]).await
    }
}

pub async fn run(
    args: &MessageArgs,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<ScenarioReport>> {
    if env.token.is_none() {
        args.check(env)?;
        let key = args.agent_key.clone().with_context(|| format!("{NAME} needs an Agent API key: {HINT}"))?;
        let cerebral =
            args.cerebral.clone().with_context(|| format!("{NAME} needs a Cerebral id: {HINT}"))?;
        let scenario = Arc::new(Message::new(args, env, vec![AgentTarget { key, cerebral }]).await?);
        return Ok(vec![runner::run(scenario, env, cfg, interrupt).await?]);
    }
    // Every tenant created is removed at the end, even after a failure.
    let created = Arc::new(Mutex::new(Vec::new()));
    let measured = async {
        let targets = agent_targets(env, NAME, args.tenants, &created, interrupt).await?;
        let scenario = Arc::new(Message::new(args, env, targets).await?);
        runner::run(scenario, env, cfg, interrupt).await
    }
    .await;
    let ids = std::mem::take(&mut *created.lock().unwrap_or_else(PoisonError::into_inner));
    remove_tenants(env, NAME, ids).await;
    Ok(vec![measured?])
}
