//! `POST /v1/cerebrals/{id}/message`: Cerebral turns per second on the
//! offline provider, with session memory. Each answer comes after the turn
//! (both messages and the usage) is committed, so this is the Agent API's
//! write path end to end: key check, the tenant actor's windows and budget,
//! the session's memory read, the model, the commit.
//!
//! Every worker keeps --sessions sessions of its own and rotates over them,
//! so memory grows through the run as real conversations do.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use reqwest::header::HeaderValue;
use reqwest::Url;
use serde_json::json;

use super::{body_excerpt, finish, run_id, Env, OpCtx, OpResult, Scenario};
use crate::report::ScenarioReport;
use crate::runner::{self, Interrupt, RunConfig};

pub const NAME: &str = "message";

const DEFAULT_SESSIONS: u32 = 4;

#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageArgs {
    /// An Agent API key (`sk_live_...`) of a tenant without request limits:
    /// `switchboard admin agent-key` prints one with its Cerebral
    #[arg(long, env = "SWITCHBOARD_LOAD_AGENT_KEY")]
    pub agent_key: Option<String>,
    /// The Cerebral to talk to (from the same `admin agent-key` output)
    #[arg(long, env = "SWITCHBOARD_LOAD_CEREBRAL")]
    pub cerebral: Option<String>,
    /// Sessions per worker (0: stateless calls, no session_id)
    #[arg(long, default_value_t = DEFAULT_SESSIONS, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub sessions: u32,
}

impl MessageArgs {
    /// For `all`: the key and Cerebral from the environment, the rest by default.
    pub fn from_env() -> Self {
        let var =
            |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        MessageArgs {
            agent_key: var("SWITCHBOARD_LOAD_AGENT_KEY"),
            cerebral: var("SWITCHBOARD_LOAD_CEREBRAL"),
            sessions: DEFAULT_SESSIONS,
        }
    }

    /// Both are needed; checked before anything runs.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.agent_key.is_none() || self.cerebral.is_none() {
            anyhow::bail!("{NAME} needs an Agent API key and a Cerebral id: {HINT}");
        }
        Ok(())
    }
}

const HINT: &str = "run `switchboard admin agent-key` with the server's settings and pass its api_key and \
                    cerebral_id as --agent-key and --cerebral (or SWITCHBOARD_LOAD_AGENT_KEY, SWITCHBOARD_LOAD_CEREBRAL)";

pub struct Message {
    url: Url,
    key: HeaderValue,
    sessions: u32,
    run: String,
}

impl Message {
    pub async fn new(args: &MessageArgs, env: &Env) -> anyhow::Result<Self> {
        let hint = HINT;
        let key =
            args.agent_key.as_deref().with_context(|| format!("{NAME} needs an Agent API key: {hint}"))?;
        let cerebral =
            args.cerebral.as_deref().with_context(|| format!("{NAME} needs a Cerebral id: {hint}"))?;
        let url = env.url(&format!("/v1/cerebrals/{cerebral}/message"))?;
        let scenario =
            Message { url, key: HeaderValue::from_str(key)?, sessions: args.sessions, run: run_id() };
        // One turn first: a wrong key, Cerebral or limited plan fails here with the server's reason.
        let resp = env
            .client
            .post(scenario.url.clone())
            .header("X-API-Key", scenario.key.clone())
            .json(&json!({ "message": "hello from switchboard-load" }))
            .send()
            .await?;
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
        Ok(scenario)
    }
}

impl Scenario for Message {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn op(&self, ctx: &OpCtx<'_>) -> OpResult {
        let mut body = json!({
            "message": format!("where is order #{}? (worker {})", ctx.seq, ctx.worker),
            "metadata": { "channel": "load" },
        });
        if self.sessions > 0 {
            let session = ctx.seq % u64::from(self.sessions);
            body["session_id"] = json!(format!("load-{}-{}-{session}", self.run, ctx.worker));
        }
        let resp = ctx
            .env
            .client
            .post(self.url.clone())
            .header("X-API-Key", self.key.clone())
            .json(&body)
            .send()
            .await;
        finish(resp, &[200]).await
    }
}

pub async fn run(
    args: &MessageArgs,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let scenario = Arc::new(Message::new(args, env).await?);
    Ok(vec![runner::run(scenario, env, cfg, interrupt).await?])
}
