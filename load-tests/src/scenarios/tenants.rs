//! Where a scenario's tenants come from: seeded through the public APIs with
//! a super-admin's `--token`, or the one tenant of a key made by the admin
//! CLI (`--api-key`, `--agent-key`).
//!
//! With `--token`, the escalation scenarios register `--tenants` tenants with
//! `POST /auth/register` (no auth; unique emails per run), move each to the
//! `enterprise` plan (no escalation limits) with `PATCH /api/tenants/{id}`
//! (super-admin only), and register their experts with each tenant's own key,
//! so those experts serve that tenant only. `message` creates `--tenants`
//! enterprise tenants with `POST /api/tenants` (the token's user becomes their
//! Owner), deploys them, and makes a Cerebral and an Agent API key in each
//! (`POST /v1/cerebrals`, `POST /v1/api-keys`, with the JWT and `X-Tenant-Id`).
//!
//! What stays on the server: the registered escalation tenants, their experts
//! and cases (deleting them would cost more than the run; their names,
//! emails and domains are unique per run). Message tenants are stopped and
//! deleted at the end unless `--keep`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Client;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{sleep, Instant};

use super::{batch, body_excerpt, expect_status, run_id, Env, FirstFailure, OpError};
use crate::report::{error_breakdown, thousands};
use crate::runner::Interrupt;

/// How to get a token.
pub const TOKEN_HINT: &str = "pass a super-admin's JWT with --token or SWITCHBOARD_LOAD_TOKEN: start the \
     server with SWITCHBOARD_BOOTSTRAP_ADMIN=EMAIL, then `switchboard admin token --email EMAIL` (with the \
     server's settings and database) prints one";

/// Requests in flight while seeding.
const SEED_CONCURRENCY: usize = 16;
/// How long a seeded message tenant may take from deploy to running.
const RUNNING_TIMEOUT: Duration = Duration::from_secs(60);
const STATUS_POLL: Duration = Duration::from_millis(10);

/// `--token`, or a clear error naming the scenario that needs it.
pub fn token<'a>(env: &'a Env, scenario: &str) -> anyhow::Result<&'a str> {
    env.token.as_deref().ok_or_else(|| anyhow::anyhow!("{scenario} needs a Platform API token: {TOKEN_HINT}"))
}

/// Before anything runs: the token is accepted and is a super-admin's
/// (changing a plan, and the fleet's resources, need one).
pub async fn check_token(env: &Env) -> anyhow::Result<()> {
    let token = token(env, "seeding")?;
    let resp = env
        .client
        .get(env.url("/api/monitoring/dashboard")?)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GET /api/monitoring/dashboard failed: {e}"))?;
    let status = resp.status().as_u16();
    let detail = body_excerpt(resp).await;
    match status {
        200 => Ok(()),
        401 => anyhow::bail!("the server refused the token (401 {detail}): {TOKEN_HINT}"),
        403 => anyhow::bail!(
            "the token is not a super-admin's (403 {detail}); moving seeded tenants to the enterprise \
             plan needs one: {TOKEN_HINT}"
        ),
        s => anyhow::bail!("GET /api/monitoring/dashboard answered {s}, expected 200: {detail}"),
    }
}

/// Escalation API keys for `scenario`, tenant `i`'s at `i`: `tenants` fresh
/// enterprise tenants with `--token`, else the one tenant of `--api-key`.
pub async fn escalation_keys(
    env: &Env,
    scenario: &str,
    tenants: u32,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<String>> {
    if env.token.is_none() {
        let key = super::api_key(env, scenario)?;
        if tenants > 1 {
            anyhow::bail!(
                "{scenario}: --tenants {tenants} needs --token (the tenants are seeded through the API); \
                 with --api-key everything runs in that key's one tenant"
            );
        }
        return Ok(vec![key.to_string()]);
    }
    register(env, scenario, tenants, "enterprise", interrupt).await
}

/// One throwaway tenant on the free plan, for a pre-flight check.
pub async fn preflight_key(env: &Env, interrupt: &Interrupt) -> anyhow::Result<String> {
    let mut keys = register(env, "preflight", 1, "free", interrupt).await?;
    keys.pop().ok_or_else(|| anyhow::anyhow!("registering a pre-flight tenant was interrupted"))
}

/// Registers `count` tenants (`POST /auth/register`) and, unless `plan` is
/// `free`, puts each on `plan` (`PATCH /api/tenants/{id}`); their keys.
async fn register(
    env: &Env,
    scenario: &str,
    count: u32,
    plan: &'static str,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Registered {
        tenant_id: String,
        api_key: String,
    }
    let token = token(env, scenario)?;
    let run = run_id();
    let keys = Arc::new(Mutex::new(vec![None::<String>; count as usize]));
    let first = Arc::new(FirstFailure::default());
    let (client, base, auth) =
        (env.client.clone(), env.base_url.clone(), HeaderValue::from_str(&format!("Bearer {token}"))?);
    let (k, f, label) = (Arc::clone(&keys), Arc::clone(&first), scenario.to_string());
    let (tally, took) =
        batch("registering tenants", u64::from(count), SEED_CONCURRENCY, interrupt, move |i| {
            let (client, base, auth, k, f) =
                (client.clone(), base.clone(), auth.clone(), Arc::clone(&k), Arc::clone(&f));
            let body = json!({
                "name": format!("load {label} {run} {i}"),
                "email": format!("load-{label}-{run}-{i}@example.com"),
            });
            async move {
                let start = Instant::now();
                let req = client.post(format!("{base}/auth/register")).json(&body).send().await;
                let resp = expect_status(req, 201, "POST /auth/register", &f).await?;
                let t: Registered = resp.json().await.map_err(|e| {
                    f.note(|| format!("POST /auth/register 201 body: {e}"));
                    OpError::Outcome("bad body")
                })?;
                if plan != "free" {
                    let req = client
                        .patch(format!("{base}/api/tenants/{}", t.tenant_id))
                        .header("Authorization", auth)
                        .json(&json!({ "plan": plan }))
                        .send()
                        .await;
                    expect_status(req, 200, "PATCH /api/tenants/{id} (plan)", &f).await?.bytes().await?;
                }
                k.lock().unwrap_or_else(PoisonError::into_inner)[i as usize] = Some(t.api_key);
                Ok(start.elapsed())
            }
        })
        .await?;
    if tally.errors() > 0 {
        anyhow::bail!(
            "registering tenants: {} of {} failed ({}); first: {}",
            tally.errors(),
            tally.ops,
            error_breakdown(&tally),
            first.take().unwrap_or_default()
        );
    }
    let keys: Option<Vec<String>> =
        std::mem::take(&mut *keys.lock().unwrap_or_else(PoisonError::into_inner)).into_iter().collect();
    let keys = keys.ok_or_else(|| anyhow::anyhow!("registering tenants was interrupted"))?;
    if scenario != "preflight" {
        eprintln!(
            "{scenario}: registered {} tenant(s) on the {plan} plan in {:.1}s",
            thousands(keys.len() as u64),
            took.as_secs_f64()
        );
    }
    Ok(keys)
}

/// A tenant `message` talks to: an Agent API key and its Cerebral.
#[derive(Debug, Clone)]
pub struct AgentTarget {
    pub key: String,
    pub cerebral: String,
}

/// `count` new enterprise tenants, each deployed and running, with an active
/// Cerebral (offline provider) and an Agent API key bound to it. The ids of
/// every tenant created are in `created` even when this fails part-way, so
/// the caller can remove them.
pub async fn agent_targets(
    env: &Env,
    scenario: &str,
    count: u32,
    created: &Arc<Mutex<Vec<String>>>,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<AgentTarget>> {
    let token = token(env, scenario)?;
    let run = run_id();
    let targets = Arc::new(Mutex::new(vec![None::<AgentTarget>; count as usize]));
    let first = Arc::new(FirstFailure::default());
    let seeder = Arc::new(Seeder {
        client: env.client.clone(),
        base: env.base_url.clone(),
        auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
        first: Arc::clone(&first),
    });
    let (t, c, label) = (Arc::clone(&targets), Arc::clone(created), scenario.to_string());
    let (tally, took) =
        batch("creating agent tenants", u64::from(count), SEED_CONCURRENCY, interrupt, move |i| {
            let (s, t, c) = (Arc::clone(&seeder), Arc::clone(&t), Arc::clone(&c));
            let name = format!("load-{label}-{run}-{i}");
            async move {
                let start = Instant::now();
                let target = s.agent_tenant(&name, &c).await?;
                t.lock().unwrap_or_else(PoisonError::into_inner)[i as usize] = Some(target);
                Ok(start.elapsed())
            }
        })
        .await?;
    if tally.errors() > 0 {
        anyhow::bail!(
            "creating agent tenants: {} of {} failed ({}); first: {}",
            tally.errors(),
            tally.ops,
            error_breakdown(&tally),
            first.take().unwrap_or_default()
        );
    }
    let targets: Option<Vec<AgentTarget>> =
        std::mem::take(&mut *targets.lock().unwrap_or_else(PoisonError::into_inner)).into_iter().collect();
    let targets = targets.ok_or_else(|| anyhow::anyhow!("creating agent tenants was interrupted"))?;
    eprintln!(
        "{scenario}: {} enterprise tenant(s) deployed, each with a Cerebral and a key, in {:.1}s",
        thousands(targets.len() as u64),
        took.as_secs_f64()
    );
    Ok(targets)
}

struct Seeder {
    client: Client,
    base: String,
    auth: HeaderValue,
    first: Arc<FirstFailure>,
}

/// `{success, data: {...}}` of the Agent API.
#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

impl Seeder {
    async fn agent_tenant(&self, name: &str, created: &Mutex<Vec<String>>) -> Result<AgentTarget, OpError> {
        #[derive(Deserialize)]
        struct Tenant {
            id: String,
        }
        #[derive(Deserialize)]
        struct Status {
            status: String,
        }
        #[derive(Deserialize)]
        struct Cerebral {
            id: String,
        }
        #[derive(Deserialize)]
        struct Key {
            key: String,
        }
        let f = &*self.first;
        let body_error = |what: &'static str| {
            move |e: reqwest::Error| {
                f.note(|| format!("{what} body: {e}"));
                OpError::Outcome("bad body")
            }
        };
        let req = self
            .client
            .post(format!("{}/api/tenants", self.base))
            .header("Authorization", self.auth.clone())
            .json(&json!({ "name": name, "plan": "enterprise" }));
        let resp = expect_status(req.send().await, 201, "POST /api/tenants", f).await?;
        let tenant: Tenant = resp.json().await.map_err(body_error("POST /api/tenants 201"))?;
        created.lock().unwrap_or_else(PoisonError::into_inner).push(tenant.id.clone());

        let url = format!("{}/api/tenants/{}", self.base, tenant.id);
        let req = self.client.post(format!("{url}/deploy")).header("Authorization", self.auth.clone());
        expect_status(req.send().await, 200, "POST /api/tenants/{id}/deploy", f).await?.bytes().await?;
        let deployed = Instant::now();
        loop {
            let req = self.client.get(format!("{url}/status")).header("Authorization", self.auth.clone());
            let resp = expect_status(req.send().await, 200, "GET /api/tenants/{id}/status", f).await?;
            let status: Status = resp.json().await.map_err(body_error("GET /api/tenants/{id}/status"))?;
            match status.status.as_str() {
                "running" => break,
                "deploying" | "draft" if deployed.elapsed() < RUNNING_TIMEOUT => sleep(STATUS_POLL).await,
                other => {
                    f.note(|| {
                        format!(
                            "tenant {} is {other} {:.1}s after its deploy, not running",
                            tenant.id,
                            deployed.elapsed().as_secs_f64()
                        )
                    });
                    return Err(OpError::Outcome("not running"));
                }
            }
        }

        let req = self
            .client
            .post(format!("{}/v1/cerebrals", self.base))
            .header("Authorization", self.auth.clone())
            .header("X-Tenant-Id", tenant.id.as_str())
            .json(&json!({ "name": "load test", "status": "active" }));
        let resp = expect_status(req.send().await, 201, "POST /v1/cerebrals", f).await?;
        let cerebral: Envelope<Cerebral> = resp.json().await.map_err(body_error("POST /v1/cerebrals 201"))?;
        let req = self
            .client
            .post(format!("{}/v1/api-keys", self.base))
            .header("Authorization", self.auth.clone())
            .header("X-Tenant-Id", tenant.id.as_str())
            .json(&json!({ "name": "switchboard-load", "cerebral_id": cerebral.data.id }));
        let resp = expect_status(req.send().await, 201, "POST /v1/api-keys", f).await?;
        let key: Envelope<Key> = resp.json().await.map_err(body_error("POST /v1/api-keys 201"))?;
        Ok(AgentTarget { key: key.data.key, cerebral: cerebral.data.id })
    }

    /// Stop, then delete. A tenant never deployed answers 409 to the stop.
    async fn remove(&self, id: &str) -> Result<Duration, OpError> {
        let f = &*self.first;
        let url = format!("{}/api/tenants/{id}", self.base);
        let start = Instant::now();
        let req = self.client.post(format!("{url}/stop")).header("Authorization", self.auth.clone());
        let resp = req.send().await.map_err(|e| {
            f.note(|| format!("POST /api/tenants/{{id}}/stop: {e}"));
            OpError::from(e)
        })?;
        let status = resp.status().as_u16();
        if status != 200 && status != 409 {
            let detail = body_excerpt(resp).await;
            f.note(|| format!("POST /api/tenants/{{id}}/stop answered {status}: {detail}"));
            return Err(OpError::Status(status));
        }
        resp.bytes().await?;
        let req = self.client.delete(&url).header("Authorization", self.auth.clone());
        expect_status(req.send().await, 200, "DELETE /api/tenants/{id}", f).await?.bytes().await?;
        Ok(start.elapsed())
    }
}

/// Stops and deletes the tenants `scenario` created, even after Ctrl-C
/// (when cleaning up matters most), unless `--keep`. Failures are reported
/// on stderr, not fatal: the figures were measured.
pub async fn remove_tenants(env: &Env, scenario: &str, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    if env.keep {
        eprintln!("{scenario}: --keep: the {} tenant(s) it created stay on the server", ids.len());
        return;
    }
    let Some(token) = env.token.as_deref() else { return };
    let Ok(auth) = HeaderValue::from_str(&format!("Bearer {token}")) else { return };
    let first = Arc::new(FirstFailure::default());
    let seeder = Arc::new(Seeder {
        client: env.client.clone(),
        base: env.base_url.clone(),
        auth,
        first: Arc::clone(&first),
    });
    let (_never_tx, never) = watch::channel(false);
    let ids = Arc::new(ids);
    let list = Arc::clone(&ids);
    let outcome = batch("removing tenants", ids.len() as u64, SEED_CONCURRENCY, &never, move |i| {
        let (s, list) = (Arc::clone(&seeder), Arc::clone(&list));
        async move { s.remove(&list[i as usize]).await }
    })
    .await;
    match outcome {
        Ok((tally, _)) if tally.errors() == 0 => {
            eprintln!("{scenario}: stopped and deleted the {} tenant(s) it created", thousands(tally.ok))
        }
        Ok((tally, _)) => eprintln!(
            "{scenario}: clean-up: {} of {} tenants not removed ({}); first: {}",
            tally.errors(),
            tally.ops,
            error_breakdown(&tally),
            first.take().unwrap_or_default()
        ),
        Err(e) => eprintln!("{scenario}: clean-up failed: {e:#}"),
    }
}
