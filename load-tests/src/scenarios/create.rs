//! `POST /escalations`: durable creates per second. The server answers 201
//! only once the case is committed, so this is the write path end to end:
//! validation, the database commit, and handing the case to routing.
//!
//! No experts are seeded: the cases go to domains no expert serves, so
//! routing only queues them and they stay pending. The tenants are seeded
//! with `--token` (see [`super::tenants`]) or are the one of `--api-key`.

use std::sync::Arc;

use clap::Args;
use reqwest::header::HeaderValue;
use reqwest::Url;
use serde_json::json;

use super::tenants::escalation_keys;
use super::{backend, check_can_create, finish, Env, OpCtx, OpResult, Scenario, DEFAULT_TENANTS};
use crate::report::{Cmp, Goal, ScenarioReport};
use crate::runner::{self, Interrupt, RunConfig};

pub const NAME: &str = "create";

const DEFAULT_DOMAINS: u32 = 8;

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct CreateArgs {
    /// How many domains (`load.create-0` ...) the cases are spread over
    #[arg(long, default_value_t = DEFAULT_DOMAINS, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub domains: u32,
    /// Tenants the client workers are spread over (seeded with --token;
    /// with --api-key there is one)
    #[arg(long, default_value_t = DEFAULT_TENANTS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub tenants: u32,
}

impl Default for CreateArgs {
    fn default() -> Self {
        CreateArgs { domains: DEFAULT_DOMAINS, tenants: DEFAULT_TENANTS }
    }
}

/// `load.create-<i>`: no expert ever declares these, so cases stay pending.
pub fn domain(i: u32) -> String {
    format!("load.create-{i}")
}

/// The goal for the ratio of creates/s to the ceiling on this backend.
pub fn goal_for(backend: Option<&str>) -> Option<Goal> {
    match backend {
        Some("sqlite") => Some(Goal::new(Cmp::AtLeast, 0.40, Some("sqlite".into()))),
        Some("postgres") => Some(Goal::new(Cmp::AtLeast, 0.20, Some("postgres".into()))),
        _ => None,
    }
}

pub struct Create {
    url: Url,
    /// One per tenant; worker `w` uses `keys[w % len]`.
    keys: Vec<HeaderValue>,
    domains: Vec<String>,
}

impl Create {
    pub async fn new(args: &CreateArgs, env: &Env, interrupt: &Interrupt) -> anyhow::Result<Self> {
        let keys = escalation_keys(env, NAME, args.tenants, interrupt).await?;
        let domains: Vec<String> = (0..args.domains).map(domain).collect();
        check_can_create(env, &keys[0], &domains[0]).await?;
        let keys = keys.iter().map(|k| HeaderValue::from_str(k)).collect::<Result<_, _>>()?;
        Ok(Create { url: env.url("/escalations")?, keys, domains })
    }
}

impl Scenario for Create {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn op(&self, ctx: &OpCtx<'_>) -> OpResult {
        // Consecutive operations of a worker, and the workers themselves,
        // rotate over the domains.
        let i = (ctx.worker as u64).wrapping_add(ctx.seq) % self.domains.len() as u64;
        let body = json!({
            "domain": self.domains[i as usize],
            "query": format!("load test case {}-{}", ctx.worker, ctx.seq),
            // 24 h SLA: the pending cases do not all expire during a later run.
            "priority": "batch",
        });
        let resp = ctx
            .env
            .client
            .post(self.url.clone())
            .header("X-API-Key", self.keys[ctx.worker % self.keys.len()].clone())
            .json(&body)
            .send()
            .await;
        finish(resp, &[201]).await
    }
}

pub async fn run(
    args: &CreateArgs,
    env: &Arc<Env>,
    cfg: &RunConfig,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let scenario = Arc::new(Create::new(args, env, interrupt).await?);
    let backend = backend(env).await;
    let mut report = runner::run(scenario, env, cfg, interrupt).await?;
    if cfg.rate.is_some() {
        // The goal is about the most creates the server sustains; at a set
        // rate the throughput is the rate, so the goal says nothing.
        return Ok(vec![report]);
    }
    report.ceiling_goal = goal_for(backend.as_deref());
    if report.ceiling_goal.is_none() {
        eprintln!(
            "{NAME}: /readyz did not name the backend ({}); goals are >= 0.40 on sqlite, >= 0.20 on postgres",
            backend.as_deref().unwrap_or("no answer")
        );
    }
    Ok(vec![report])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_follows_the_backend() {
        assert_eq!(goal_for(Some("sqlite")).map(|g| g.target), Some(0.40));
        assert_eq!(goal_for(Some("postgres")).map(|g| g.target), Some(0.20));
        assert!(goal_for(None).is_none());
        assert!(goal_for(Some("sqlite")).is_some_and(|g| g.met(0.4) && !g.met(0.39)));
    }
}
