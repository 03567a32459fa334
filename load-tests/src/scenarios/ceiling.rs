//! `GET /healthz`: the cheapest request the server answers, so its
//! throughput is the ceiling for this machine, network path and client.
//! Other scenarios are reported as a ratio to it, which keeps figures
//! comparable across machines of different speed.

use reqwest::Url;

use super::{finish, Env, OpCtx, OpResult, Scenario, CEILING};

pub struct Ceiling {
    // Parsed once so the hot path does no URL work.
    url: Url,
}

impl Ceiling {
    pub fn new(env: &Env) -> anyhow::Result<Self> {
        Ok(Ceiling { url: env.url("/healthz")? })
    }
}

impl Scenario for Ceiling {
    fn name(&self) -> &'static str {
        CEILING
    }

    async fn op(&self, ctx: &OpCtx<'_>) -> OpResult {
        let resp = ctx.env.client.get(self.url.clone()).send().await;
        finish(resp, &[200]).await
    }
}
