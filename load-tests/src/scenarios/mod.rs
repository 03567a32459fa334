//! What one operation against the server is, per scenario.
//!
//! Adding a scenario touches this file and one new file:
//! 1. write `src/scenarios/<name>.rs` with a type implementing [`Scenario`];
//! 2. add a variant to [`ScenarioCmd`] (its doc comment is the `--help` text);
//! 3. add its arm to [`ScenarioCmd::run`] and its entry to [`ScenarioCmd::all`].
//!
//! The compiler catches a missing arm in `run`; nothing catches a missing
//! entry in `all`, hence the test at the bottom of this file.

pub mod ceiling;

use std::future::Future;
use std::sync::Arc;

use clap::Subcommand;
use reqwest::{Client, Response, Url};
use serde::Serialize;

use crate::report::ScenarioReport;
use crate::runner::{self, Interrupt, RunConfig};

/// Name of the scenario every other throughput is a ratio to.
pub const CEILING: &str = "ceiling";

/// How a request failed before any HTTP status came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Connect,
    Timeout,
    Other,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Connect => "connect",
            TransportKind::Timeout => "timeout",
            TransportKind::Other => "other",
        }
    }
}

/// Why an operation does not count as successful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpError {
    /// The server answered, but not with a status the scenario expects.
    Status(u16),
    Transport(TransportKind),
}

impl From<reqwest::Error> for OpError {
    fn from(e: reqwest::Error) -> Self {
        // Connect first: a server that never accepted the connection is a
        // different problem from one that accepted and then went quiet, even
        // when the connect attempt itself ran out of time.
        let kind = if e.is_connect() {
            TransportKind::Connect
        } else if e.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        };
        OpError::Transport(kind)
    }
}

/// `Ok(status)` when the operation succeeded, else why not.
pub type OpResult = Result<u16, OpError>;

/// What every scenario gets: the shared client and where the server is.
pub struct Env {
    /// Shared by all workers so connections are pooled and kept alive.
    pub client: Client,
    /// The `--url` given, without a trailing slash; the only host ever contacted.
    pub base_url: String,
}

impl Env {
    /// `path` starts with `/`. Concatenation rather than `Url::join` so a base
    /// URL with a path prefix (server behind a proxy) keeps that prefix.
    pub fn url(&self, path: &str) -> anyhow::Result<Url> {
        let full = format!("{}{}", self.base_url, path);
        Url::parse(&full).map_err(|e| anyhow::anyhow!("bad URL {full}: {e}"))
    }
}

/// Identifies one operation, for scenarios that need distinct data per call.
#[allow(dead_code, reason = "worker and seq are for scenarios that need per-call data; ceiling does not")]
pub struct OpCtx<'a> {
    pub env: &'a Env,
    /// 0..concurrency.
    pub worker: usize,
    /// Per-worker operation counter, starting at 0 (warm-up and measured
    /// phases each start again from 0).
    pub seq: u64,
}

/// One kind of operation the runner repeats back to back on every worker.
///
/// Construction is where one-time setup goes (seeding data, resolving URLs):
/// it happens in [`ScenarioCmd::run`] before the warm-up, unmeasured.
pub trait Scenario: Send + Sync + 'static {
    /// Shown in the report and used as the key in JSON.
    fn name(&self) -> &'static str;

    /// Performs one operation. It may issue several requests; latency is
    /// measured around the whole call.
    fn op(&self, ctx: &OpCtx<'_>) -> impl Future<Output = OpResult> + Send;
}

/// Turns a response into an [`OpResult`], reading the whole body: an unread
/// body keeps the connection out of the pool and forces a reconnect.
pub async fn finish(resp: Result<Response, reqwest::Error>, expected: &[u16]) -> OpResult {
    let resp = resp?;
    let status = resp.status().as_u16();
    resp.bytes().await?;
    if expected.contains(&status) {
        Ok(status)
    } else {
        Err(OpError::Status(status))
    }
}

/// The scenarios, one subcommand each.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ScenarioCmd {
    /// GET /healthz: the reference ceiling every other figure is a ratio to
    Ceiling,
}

impl ScenarioCmd {
    /// Everything `all` runs, in order. The ceiling comes first so the
    /// others are compared with a figure measured moments before them.
    pub fn all() -> Vec<ScenarioCmd> {
        vec![ScenarioCmd::Ceiling]
    }

    /// Builds the scenario (its setup is not measured) and runs it.
    pub async fn run(
        &self,
        env: &Arc<Env>,
        cfg: &RunConfig,
        interrupt: &Interrupt,
    ) -> anyhow::Result<ScenarioReport> {
        match self {
            ScenarioCmd::Ceiling => runner::run(ceiling::Ceiling::new(env)?, env, cfg, interrupt).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_starts_with_the_ceiling_and_lists_each_scenario_once() {
        let all = ScenarioCmd::all();
        assert_eq!(all.first(), Some(&ScenarioCmd::Ceiling));
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "{a:?} listed twice");
        }
        // A new variant stops this match compiling, which brings whoever
        // added it here: extend `every` below, and `all` with it.
        fn _exhaustive(cmd: &ScenarioCmd) {
            match cmd {
                ScenarioCmd::Ceiling => {}
            }
        }
        let every = [ScenarioCmd::Ceiling];
        for cmd in &every {
            assert!(all.contains(cmd), "{cmd:?} missing from ScenarioCmd::all");
        }
    }

    #[test]
    fn env_url_keeps_a_path_prefix() {
        let env = Env { client: Client::new(), base_url: "http://127.0.0.1:8080/sb".into() };
        let url = env.url("/healthz").expect("valid URL");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/sb/healthz");
    }
}
