//! The isolation matrix: two tenants, A and B, each with every kind of
//! resource and every kind of credential. Every route of `/openapi.json`
//! whose path takes an id is called with every credential kind of A (the
//! Escalation API key, an expert token, an Agent API key, a JWT of each role)
//! and the super-admin's JWT on B's ids. Each answer must be exactly what the
//! specs prescribe (extensions.md: another tenant's resource is 404 on the
//! Escalation API and `/v1`, 403 where agent-api.md says so; on `/api` 403 for
//! a tenant the caller is not a member of, 404 for a missing one; the role
//! line of platform-api.md), in the surface's error format, and no answer
//! carries an identifier or secret of the other tenant. Controls show the
//! same credential reaches its own tenant's resources; B's resources are
//! re-read with B's credentials afterwards to show that no refused write
//! changed them; and where the spec prescribes one answer for "another
//! tenant's" and "missing", the two answers must be the same, so ids cannot
//! be probed. A documented route with an id that the matrix does not cover
//! fails the test.

mod common;
#[path = "common/escalation.rs"]
mod esc;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "iso-ops@example.com";
const DOMAIN: &str = "legal.compliance";

// ---------------------------------------------------------------------------
// Credentials, routes and the rules of the specs
// ---------------------------------------------------------------------------

/// A kind of credential. Roles are ordered Viewer < Contributor < Manager < Owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cred {
    EscKey,
    ExpertToken,
    AgentKey,
    Viewer,
    Contributor,
    Manager,
    Owner,
    SuperAdmin,
}

impl Cred {
    const ALL: [Cred; 8] = [
        Cred::EscKey,
        Cred::ExpertToken,
        Cred::AgentKey,
        Cred::Viewer,
        Cred::Contributor,
        Cred::Manager,
        Cred::Owner,
        Cred::SuperAdmin,
    ];

    fn label(self) -> &'static str {
        match self {
            Cred::EscKey => "escalation API key",
            Cred::ExpertToken => "expert token",
            Cred::AgentKey => "agent API key",
            Cred::Viewer => "JWT Viewer",
            Cred::Contributor => "JWT Contributor",
            Cred::Manager => "JWT Manager",
            Cred::Owner => "JWT Owner",
            Cred::SuperAdmin => "JWT super-admin",
        }
    }

    fn is_jwt(self) -> bool {
        self >= Cred::Viewer
    }

    /// The rank of the caller's role in the tenant its JWT acts for (the
    /// super-admin is Owner of the operator tenant).
    fn rank(self) -> u8 {
        match self {
            Cred::Viewer => 1,
            Cred::Contributor => 2,
            Cred::Manager => 3,
            Cred::Owner | Cred::SuperAdmin => 4,
            _ => 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Surface {
    Escalation,
    Portal,
    Agent,
    Platform,
}

impl Surface {
    fn label(self) -> &'static str {
        match self {
            Surface::Escalation => "Escalation API",
            Surface::Portal => "Expert portal",
            Surface::Agent => "Agent API /v1",
            Surface::Platform => "Platform API /api",
        }
    }
}

/// Which credential a route takes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Accepts {
    EscKey,
    ExpertToken,
    AgentKey,
    Jwt,
    AgentKeyOrJwt,
}

impl Accepts {
    fn takes(self, cred: Cred) -> bool {
        match self {
            Accepts::EscKey => cred == Cred::EscKey,
            Accepts::ExpertToken => cred == Cred::ExpertToken,
            Accepts::AgentKey => cred == Cred::AgentKey,
            Accepts::Jwt => cred.is_jwt(),
            Accepts::AgentKeyOrJwt => cred == Cred::AgentKey || cred.is_jwt(),
        }
    }
}

/// The least a JWT needs for a route (platform-api.md, extensions.md).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    Member,
    Manager,
    Owner,
    SuperAdmin,
}

impl Need {
    fn rank(self) -> u8 {
        match self {
            Need::Member => 1,
            Need::Manager => 3,
            Need::Owner => 4,
            Need::SuperAdmin => 5,
        }
    }
}

struct Route {
    method: &'static str,
    template: &'static str,
    surface: Surface,
    accepts: Accepts,
    need: Need,
    /// In the OpenAPI document's `paths` (false: the id is a query parameter).
    in_paths: bool,
}

const fn route(
    method: &'static str,
    template: &'static str,
    surface: Surface,
    accepts: Accepts,
    need: Need,
) -> Route {
    Route { method, template, surface, accepts, need, in_paths: true }
}

use Accepts as A;
use Need as N;
use Surface as S;

/// Every route with an id. The document is checked against this list.
const ROUTES: &[Route] = &[
    // Escalation API (X-API-Key: cero_...)
    route("GET", "/escalations/{escalation_id}", S::Escalation, A::EscKey, N::Member),
    route("POST", "/escalations/{escalation_id}/cancel", S::Escalation, A::EscKey, N::Member),
    route("POST", "/escalations/{escalation_id}/feedback", S::Escalation, A::EscKey, N::Member),
    route("GET", "/escalations/{escalation_id}/wait", S::Escalation, A::EscKey, N::Member),
    route("GET", "/webhooks/deliveries/{escalation_id}", S::Escalation, A::EscKey, N::Member),
    route("GET", "/experts/{expert_id}", S::Escalation, A::EscKey, N::Member),
    route("PATCH", "/experts/{expert_id}", S::Escalation, A::EscKey, N::Member),
    route("POST", "/experts/{expert_id}/token", S::Escalation, A::EscKey, N::Member),
    // Expert portal (X-Expert-Token: exp_...)
    route("GET", "/experts/me/escalations/{escalation_id}", S::Portal, A::ExpertToken, N::Member),
    route("POST", "/experts/me/escalations/{escalation_id}/accept", S::Portal, A::ExpertToken, N::Member),
    route("POST", "/experts/me/escalations/{escalation_id}/decline", S::Portal, A::ExpertToken, N::Member),
    route("POST", "/experts/me/escalations/{escalation_id}/resolve", S::Portal, A::ExpertToken, N::Member),
    // Agent API
    route("GET", "/v1/cerebrals/{id}", S::Agent, A::Jwt, N::Member),
    route("PATCH", "/v1/cerebrals/{id}", S::Agent, A::Jwt, N::Manager),
    route("DELETE", "/v1/cerebrals/{id}", S::Agent, A::Jwt, N::Manager),
    route("POST", "/v1/cerebrals/{id}/message", S::Agent, A::AgentKey, N::Member),
    route("GET", "/v1/cerebrals/{id}/sessions/{session_id}", S::Agent, A::Jwt, N::Member),
    route("GET", "/v1/customers/{id}", S::Agent, A::AgentKeyOrJwt, N::Member),
    route("DELETE", "/v1/api-keys/{id}", S::Agent, A::Jwt, N::Manager),
    route("DELETE", "/v1/webhooks/{id}", S::Agent, A::Jwt, N::Manager),
    // Platform API
    route("GET", "/api/tenants/{id}", S::Platform, A::Jwt, N::Member),
    route("PATCH", "/api/tenants/{id}", S::Platform, A::Jwt, N::Owner),
    route("DELETE", "/api/tenants/{id}", S::Platform, A::Jwt, N::Owner),
    route("GET", "/api/tenants/{id}/status", S::Platform, A::Jwt, N::Member),
    route("GET", "/api/tenants/{id}/logs", S::Platform, A::Jwt, N::Member),
    route("GET", "/api/tenants/{id}/resources", S::Platform, A::Jwt, N::Member),
    route("GET", "/api/tenants/{id}/config", S::Platform, A::Jwt, N::Member),
    route("POST", "/api/tenants/{id}/provider/test", S::Platform, A::Jwt, N::Member),
    route("GET", "/api/tenants/{id}/pairing-code", S::Platform, A::Jwt, N::Manager),
    route("POST", "/api/tenants/{id}/reset-pairing", S::Platform, A::Jwt, N::Manager),
    route("POST", "/api/tenants/{id}/exec", S::Platform, A::Jwt, N::Manager),
    route("GET", "/api/tenants/{tid}/channels", S::Platform, A::Jwt, N::Member),
    route("POST", "/api/tenants/{tid}/channels", S::Platform, A::Jwt, N::Manager),
    route("GET", "/api/tenants/{tid}/channels/{cid}", S::Platform, A::Jwt, N::Manager),
    route("PATCH", "/api/tenants/{tid}/channels/{cid}", S::Platform, A::Jwt, N::Manager),
    route("DELETE", "/api/tenants/{tid}/channels/{cid}", S::Platform, A::Jwt, N::Manager),
    route("GET", "/api/tenants/{tid}/members", S::Platform, A::Jwt, N::Member),
    route("POST", "/api/tenants/{tid}/members", S::Platform, A::Jwt, N::Owner),
    route("PATCH", "/api/tenants/{tid}/members/{mid}", S::Platform, A::Jwt, N::Owner),
    route("DELETE", "/api/tenants/{tid}/members/{mid}", S::Platform, A::Jwt, N::Owner),
    route("PATCH", "/api/users/{id}", S::Platform, A::Jwt, N::SuperAdmin),
    route("DELETE", "/api/users/{id}", S::Platform, A::Jwt, N::SuperAdmin),
    Route {
        method: "GET",
        template: "/api/monitoring/usage?tenant_id={id}",
        surface: S::Platform,
        accepts: A::Jwt,
        need: N::Member,
        in_paths: false,
    },
    // The container lifecycle comes last: its controls stop and restart A.
    route("PATCH", "/api/tenants/{id}/config", S::Platform, A::Jwt, N::Manager),
    route("POST", "/api/tenants/{id}/deploy", S::Platform, A::Jwt, N::Manager),
    route("POST", "/api/tenants/{id}/restart", S::Platform, A::Jwt, N::Manager),
    route("POST", "/api/tenants/{id}/stop", S::Platform, A::Jwt, N::Manager),
];

/// Documented routes with an id that the matrix leaves out on purpose: (method, path, why).
const EXCLUDED: &[(&str, &str, &str)] = &[];

/// How B's id sits in a request of A's credential.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scope {
    /// B's resource on the Escalation API or `/v1`.
    Resource,
    /// Invoking B's Cerebral with A's key: 403 by agent-api.md.
    Invoke,
    /// B's tenant in an `/api` path (or query).
    Tenant,
    /// A's tenant in an `/api` path, B's sub-resource (channel, member).
    Sub,
    /// A user (platform-wide): super-admin only.
    User,
}

#[derive(Clone, Debug, PartialEq)]
enum Want {
    Status(StatusCode),
    Success,
    /// The spec allows it, and sending it would change B: not sent.
    NotSent(&'static str),
}

/// The answer the specs prescribe for A's credential (or the super-admin) on B's id.
fn want_foreign(r: &Route, scope: Scope, cred: Cred) -> Want {
    if !r.accepts.takes(cred) {
        return Want::Status(StatusCode::UNAUTHORIZED);
    }
    let write = r.method != "GET";
    match r.surface {
        S::Escalation | S::Portal => Want::Status(StatusCode::NOT_FOUND),
        S::Agent => {
            if cred.is_jwt() && cred.rank() < r.need.rank() {
                // Writes on /v1 need Manager+; the role is checked before the lookup.
                return Want::Status(StatusCode::FORBIDDEN);
            }
            match scope {
                Scope::Invoke => Want::Status(StatusCode::FORBIDDEN),
                _ => Want::Status(StatusCode::NOT_FOUND),
            }
        }
        S::Platform => match (scope, cred) {
            (Scope::Tenant, Cred::SuperAdmin) if write => {
                Want::NotSent("a super-admin may write any tenant (platform-api.md)")
            }
            (Scope::Tenant, Cred::SuperAdmin) => Want::Success,
            (Scope::Tenant, _) => Want::Status(StatusCode::FORBIDDEN),
            (Scope::Sub, Cred::SuperAdmin) => Want::Status(StatusCode::NOT_FOUND),
            (Scope::Sub, c) if c.rank() < r.need.rank() => Want::Status(StatusCode::FORBIDDEN),
            (Scope::Sub, _) => Want::Status(StatusCode::NOT_FOUND),
            (Scope::User, Cred::SuperAdmin) => {
                Want::NotSent("a super-admin may change any user (platform-api.md)")
            }
            (Scope::User, _) => Want::Status(StatusCode::FORBIDDEN),
            (s, _) => panic!("no rule for {s:?} on {}", r.template),
        },
    }
}

/// The answer for the same credential on its own tenant's resource.
fn want_control(r: &Route, cred: Cred) -> Want {
    match r.surface {
        S::Escalation | S::Portal => Want::Success,
        S::Agent if !cred.is_jwt() => Want::Success,
        S::Agent | S::Platform => {
            if cred == Cred::SuperAdmin || cred.rank() >= r.need.rank() {
                Want::Success
            } else {
                Want::Status(StatusCode::FORBIDDEN)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The two tenants
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Member {
    email: String,
    jwt: String,
    user_id: String,
    mid: String,
}

#[derive(Clone, Debug)]
struct Side {
    label: &'static str,
    tid: String,
    name: String,
    esc_key: String,
    webhook_secret: String,
    expert: esc::Expert,
    expert_name: String,
    expert_email: String,
    open: String,
    open_query: String,
    done: String,
    done_query: String,
    callback: String,
    cerebral: String,
    cerebral_name: String,
    prompt: String,
    session: String,
    agent_key: String,
    agent_key_id: String,
    agent_key_name: String,
    customer: String,
    customer_email: String,
    customer_name: String,
    hook: String,
    hook_url: String,
    hook_secret: String,
    channel: String,
    bot_token: String,
    pairing: String,
    members: BTreeMap<Cred, Member>,
}

impl Side {
    fn owner(&self) -> &str {
        &self.members[&Cred::Owner].jwt
    }

    /// Identifiers and data: never in an answer to the other tenant.
    fn needles(&self) -> Vec<(String, &'static str)> {
        let mut n: Vec<(String, &'static str)> = vec![
            (self.tid.clone(), "tenant id"),
            (self.name.clone(), "tenant name"),
            (self.expert.id.clone(), "expert id"),
            (self.expert_name.clone(), "expert name"),
            (self.expert_email.clone(), "expert email"),
            (self.open.clone(), "escalation id"),
            (self.open_query.clone(), "escalation query"),
            (self.done.clone(), "escalation id"),
            (self.done_query.clone(), "escalation query"),
            (self.callback.clone(), "callback url"),
            (self.cerebral.clone(), "cerebral id"),
            (self.cerebral_name.clone(), "cerebral name"),
            (self.prompt.clone(), "system prompt"),
            (self.session.clone(), "session id"),
            (self.agent_key_id.clone(), "agent key id"),
            (self.agent_key_name.clone(), "agent key name"),
            (self.customer.clone(), "customer id"),
            (self.customer_email.clone(), "customer email"),
            (self.customer_name.clone(), "customer name"),
            (self.hook.clone(), "webhook id"),
            (self.hook_url.clone(), "webhook url"),
            (self.channel.clone(), "channel id"),
            (self.bot_token.clone(), "channel bot token"),
            (self.pairing.clone(), "pairing code"),
        ];
        for m in self.members.values() {
            n.push((m.email.clone(), "member email"));
            n.push((m.user_id.clone(), "user id"));
            n.push((m.mid.clone(), "membership id"));
        }
        n.extend(self.secrets());
        n
    }

    /// Credentials and secrets: in no read answer to anyone.
    fn secrets(&self) -> Vec<(String, &'static str)> {
        let mut n: Vec<(String, &'static str)> = vec![
            (self.esc_key.clone(), "escalation API key"),
            (self.webhook_secret.clone(), "callback webhook secret"),
            (self.expert.token.clone(), "expert token"),
            (self.agent_key.clone(), "agent API key"),
            (self.hook_secret.clone(), "/v1 webhook secret"),
        ];
        for m in self.members.values() {
            n.push((m.jwt.trim_start_matches("Bearer ").to_string(), "JWT"));
        }
        n
    }

    fn header(&self, cred: Cred, admin: &str) -> (&'static str, String) {
        match cred {
            Cred::EscKey => ("X-API-Key", self.esc_key.clone()),
            Cred::ExpertToken => ("X-Expert-Token", self.expert.token.clone()),
            Cred::AgentKey => ("X-API-Key", self.agent_key.clone()),
            Cred::SuperAdmin => ("Authorization", admin.to_string()),
            role => ("Authorization", self.members[&role].jwt.clone()),
        }
    }
}

/// What the super-admin owns on `/v1`: resources of the operator tenant.
struct Home {
    cerebral: String,
    customer: String,
}

fn unique(prefix: &str) -> String {
    esc::unique(prefix)
}

async fn ok(
    app: &common::TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Value {
    let (status, answer) = app.call(method.clone(), path, body.clone(), headers).await;
    assert!(status.is_success(), "setup {method} {path} {body:?}: {status} {answer}");
    answer
}

/// Creates a spare resource to delete as a control; returns its id (`id`, or `data.id` on `/v1`).
async fn spare(app: &common::TestApp, path: &str, body: Value, auth: &str) -> String {
    let v = ok(app, Method::POST, path, Some(body), &[("Authorization", auth)]).await;
    v["data"]["id"].as_str().or(v["id"].as_str()).expect("an id").to_string()
}

async fn side(app: &common::TestApp, api: &esc::Api, rx: &Receiver, label: &'static str) -> Side {
    let name = unique(&format!("{label}-tenant"));
    let owner_email = esc::email_for(&format!("{label}-owner"), "example.com");
    let reg =
        ok(app, Method::POST, "/auth/register", Some(json!({"name": name, "email": owner_email})), &[]).await;
    let tid = reg["tenant_id"].as_str().unwrap().to_string();
    let esc_key = reg["api_key"].as_str().unwrap().to_string();
    let webhook_secret = reg["webhook_secret"].as_str().unwrap().to_string();
    let owner_jwt = common::sign_in(app, &owner_email).await;
    let owner_h = [("Authorization", owner_jwt.as_str())];

    // Members of each role, signed in.
    let mut members = BTreeMap::new();
    for role in [Cred::Manager, Cred::Contributor, Cred::Viewer] {
        let role_name = role.label().trim_start_matches("JWT ");
        let email = esc::email_for(&format!("{label}-{role_name}"), "example.com");
        let m = ok(
            app,
            Method::POST,
            &format!("/api/tenants/{tid}/members"),
            Some(json!({"email": email, "role": role_name})),
            &owner_h,
        )
        .await;
        let jwt = common::sign_in(app, &email).await;
        members.insert(
            role,
            Member {
                email,
                jwt,
                user_id: m["user_id"].as_str().unwrap().to_string(),
                mid: m["id"].as_str().unwrap().to_string(),
            },
        );
    }
    let list = ok(app, Method::GET, &format!("/api/tenants/{tid}/members"), None, &owner_h).await;
    let own =
        list.as_array().unwrap().iter().find(|m| m["email"] == owner_email.as_str()).expect("owner member");
    members.insert(
        Cred::Owner,
        Member {
            email: owner_email.clone(),
            jwt: owner_jwt.clone(),
            user_id: own["user_id"].as_str().unwrap().to_string(),
            mid: own["id"].as_str().unwrap().to_string(),
        },
    );

    // An expert, a case routed to it, and a resolved case with a delivered callback.
    let expert_name = unique(&format!("{label}-expert"));
    let expert_email = esc::email_for(&expert_name, "experts.example.com");
    let expert = api
        .create_expert_with(
            &esc_key,
            json!({"name": expert_name, "email": expert_email, "domains": [DOMAIN], "max_concurrent": 50}),
        )
        .await;
    let open_query = unique(&format!("{label}-open-question"));
    let open = api.create(&esc_key, json!({"domain": DOMAIN, "query": open_query})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.until_status(&esc_key, &open, "routed", Some(&expert.id)).await;
    let done_query = unique(&format!("{label}-done-question"));
    let callback = rx.url(&format!("/{}", unique(&format!("{label}-callback"))));
    let done = api
        .create(&esc_key, json!({"domain": DOMAIN, "query": done_query, "callback_url": callback}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.until_status(&esc_key, &done, "routed", Some(&expert.id)).await;
    api.resolve(&expert.token, &done).await;
    let (status, body) = api.feedback(&esc_key, &done, 0.8).await;
    assert_eq!(status, StatusCode::OK, "feedback: {body}");
    let delivered = common::eventually(Duration::from_secs(10), || async {
        let (s, d) = api.get(&format!("/webhooks/deliveries/{done}"), &[("X-API-Key", &esc_key)]).await;
        s == StatusCode::OK
            && d["deliveries"].as_array().is_some_and(|l| l.iter().any(|x| x["status"] == "delivered"))
    })
    .await;
    assert!(delivered, "{label}: the callback of {done} was delivered");

    // A Cerebral, an agent key, a customer, a session, a /v1 webhook.
    let cerebral_name = unique(&format!("{label}-cerebral"));
    let prompt = unique(&format!("{label}-system-prompt"));
    let c = ok(
        app,
        Method::POST,
        "/v1/cerebrals",
        Some(json!({"name": cerebral_name, "system_prompt": prompt})),
        &owner_h,
    )
    .await;
    let cerebral = c["data"]["id"].as_str().unwrap().to_string();
    let agent_key_name = unique(&format!("{label}-key"));
    let k = ok(app, Method::POST, "/v1/api-keys", Some(json!({"name": agent_key_name})), &owner_h).await;
    let agent_key = k["data"]["key"].as_str().unwrap().to_string();
    let agent_key_id = k["data"]["id"].as_str().unwrap().to_string();
    let customer_email = esc::email_for(&format!("{label}-customer"), "customers.example.com");
    let customer_name = unique(&format!("{label}-customer-name"));
    let cu = ok(
        app,
        Method::POST,
        "/v1/customers",
        Some(json!({"email": customer_email, "name": customer_name, "external_id": unique(label)})),
        &owner_h,
    )
    .await;
    let customer = cu["data"]["id"].as_str().unwrap().to_string();
    let session = unique(&format!("{label}-session"));
    ok(
        app,
        Method::POST,
        &format!("/v1/cerebrals/{cerebral}/message"),
        Some(json!({"message": "hello", "session_id": session, "customer_id": customer})),
        &[("X-API-Key", agent_key.as_str())],
    )
    .await;
    let hook_url = rx.url(&format!("/{}", unique(&format!("{label}-v1hook"))));
    let h = ok(
        app,
        Method::POST,
        "/v1/webhooks",
        Some(json!({"url": hook_url, "events": ["conversation.completed"]})),
        &owner_h,
    )
    .await;
    let hook = h["data"]["id"].as_str().unwrap().to_string();
    let hook_secret = h["data"]["secret"].as_str().unwrap().to_string();

    // A channel and the pairing code.
    let bot_token = format!("{}:{}", 100000 + rand_digits(), unique(&format!("{label}-bot")));
    let ch = ok(
        app,
        Method::POST,
        &format!("/api/tenants/{tid}/channels"),
        Some(json!({"kind": "telegram", "config": {"bot_token": bot_token, "allowed_users": [100001]}, "enabled": false})),
        &owner_h,
    )
    .await;
    let channel = ch["id"].as_str().unwrap().to_string();
    let p = ok(app, Method::GET, &format!("/api/tenants/{tid}/pairing-code"), None, &owner_h).await;
    let pairing = p["pairing_code"].as_str().unwrap().to_string();

    Side {
        label,
        tid,
        name,
        esc_key,
        webhook_secret,
        expert,
        expert_name,
        expert_email,
        open,
        open_query,
        done,
        done_query,
        callback,
        cerebral,
        cerebral_name,
        prompt,
        session,
        agent_key,
        agent_key_id,
        agent_key_name,
        customer,
        customer_email,
        customer_name,
        hook,
        hook_url,
        hook_secret,
        channel,
        bot_token,
        pairing,
        members,
    }
}

fn rand_digits() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32 % 800_000
}

/// An id of the same shape that names nothing.
fn missing_like(id: &str) -> String {
    if uuid::Uuid::parse_str(id).is_ok() {
        return uuid::Uuid::new_v4().to_string();
    }
    match id.split_once('_') {
        Some((prefix, rest)) => {
            let fresh = uuid::Uuid::new_v4().simple().to_string();
            let mut tail: String = fresh.chars().cycle().take(rest.len()).collect();
            if rest.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                tail = tail.to_uppercase();
            }
            format!("{prefix}_{tail}")
        }
        None => unique("missing"),
    }
}

// ---------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A's credential on B's id.
    Foreign,
    /// The same credential on its own tenant's id.
    Control,
    /// A's credential on a missing id, compared with the foreign answer.
    Probe,
    /// `/v1` with `X-Tenant-Id` naming B.
    TenantHeader,
    /// An id-less list read, searched for B's data.
    List,
    /// Allowed by the spec but not sent (it would change B).
    NotSent,
}

const KINDS: [Kind; 6] =
    [Kind::Foreign, Kind::Control, Kind::Probe, Kind::TenantHeader, Kind::List, Kind::NotSent];

struct Answer {
    status: StatusCode,
    body: Value,
}

struct Matrix<'a> {
    app: &'a common::TestApp,
    api: esc::Api,
    a: Side,
    b: Side,
    admin: String,
    home: Home,
    counts: BTreeMap<(Surface, Cred, Kind), usize>,
    failures: Vec<String>,
    covered: BTreeSet<(String, String)>,
}

impl Matrix<'_> {
    fn count(&mut self, surface: Surface, cred: Cred, kind: Kind) {
        *self.counts.entry((surface, cred, kind)).or_default() += 1;
    }

    fn fail(&mut self, what: String) {
        self.failures.push(what);
    }

    /// Sends one request and checks status, error format and leaks. `about_b`: the
    /// request addresses B's data (then A's data must not appear in it).
    #[allow(clippy::too_many_arguments)]
    async fn cell(
        &mut self,
        kind: Kind,
        surface: Surface,
        cred: Cred,
        method: &str,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
        want: Want,
        about_b: bool,
    ) -> Option<Answer> {
        let (name, value) = self.a.header(cred, &self.admin);
        let mut req =
            self.app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), self.app.url(path));
        req = req.header(name, value.as_str());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status();
        let mut text = String::new();
        for (k, v) in res.headers() {
            text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
        }
        let raw = res.text().await.unwrap_or_default();
        text.push_str(&raw);
        let parsed: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        self.count(surface, cred, kind);
        let ctx = format!("[{:?}] {} on {} {}{}", kind, cred.label(), method, path, header_note(extra));

        match &want {
            Want::Status(s) if status != *s => {
                self.fail(format!("{ctx}: expected {s}, got {status}: {}", clip(&raw)));
            }
            Want::Success if !status.is_success() => {
                self.fail(format!("{ctx}: expected 2xx, got {status}: {}", clip(&raw)));
            }
            _ => {}
        }
        if let Some(problem) = format_problem(surface, status, &parsed) {
            self.fail(format!("{ctx}: {problem}: {}", clip(&raw)));
        }

        // Leaks: the other tenant's data; for the super-admin, credentials of anyone.
        let request_text = format!(
            "{path} {} {}",
            body.as_ref().map(|b| b.to_string()).unwrap_or_default(),
            header_note(extra)
        );
        let mut needles = if about_b { self.a.needles() } else { self.b.needles() };
        if cred == Cred::SuperAdmin || about_b {
            needles.extend(self.a.secrets());
            needles.extend(self.b.secrets());
        }
        for (needle, what) in needles {
            if request_text.contains(&needle) {
                continue; // the caller's own input echoed back is no leak
            }
            if text.contains(&needle) {
                let side = if self.a.needles().iter().any(|(n, _)| *n == needle) {
                    self.a.label
                } else {
                    self.b.label
                };
                self.fail(format!(
                    "{ctx}: the answer ({status}) carries {side}'s {what} `{needle}`: {}",
                    clip(&raw)
                ));
            }
        }
        Some(Answer { status, body: parsed })
    }
}

fn header_note(extra: &[(&str, &str)]) -> String {
    extra.iter().map(|(k, v)| format!(" [{k}: {v}]")).collect()
}

fn clip(s: &str) -> String {
    if s.len() > 400 {
        format!("{}…", &s[..s.char_indices().nth(400).map(|(i, _)| i).unwrap_or(s.len())])
    } else {
        s.to_string()
    }
}

/// The surface's error format, or None when the body is right.
fn format_problem(surface: Surface, status: StatusCode, body: &Value) -> Option<String> {
    match surface {
        S::Agent => {
            if status.is_success() {
                return (body["success"] != json!(true))
                    .then(|| "not a {success: true, data} envelope".into());
            }
            let code = match status.as_u16() {
                401 => "UNAUTHORIZED",
                403 => "FORBIDDEN",
                404 => "NOT_FOUND",
                409 => "CONFLICT",
                _ => return Some(format!("unexpected status {status}")),
            };
            let fine = body["success"] == json!(false)
                && body["error"]["code"] == code
                && body["error"]["message"].as_str().is_some_and(|m| !m.is_empty())
                && body["error"]["requestId"].as_str().is_some_and(|r| !r.is_empty());
            (!fine).then(|| format!("not the /v1 error envelope with code {code}"))
        }
        _ if status.is_success() => None,
        S::Escalation | S::Portal => {
            let fine = body.as_object().is_some_and(|o| o.len() == 1)
                && body["detail"].as_str().is_some_and(|m| !m.is_empty());
            (!fine).then(|| "not the Escalation API error {\"detail\": ...}".into())
        }
        S::Platform => {
            let fine = body.as_object().is_some_and(|o| o.len() == 1)
                && body["error"].as_str().is_some_and(|m| !m.is_empty());
            (!fine).then(|| "not the Platform API error {\"error\": ...}".into())
        }
    }
}

/// The message of an error answer, with `ids` replaced by `{id}`.
fn message_of(surface: Surface, body: &Value, ids: &[String]) -> String {
    let m = match surface {
        S::Agent => format!("{} {}", body["error"]["code"], body["error"]["message"]),
        S::Escalation | S::Portal => body["detail"].to_string(),
        S::Platform => body["error"].to_string(),
    };
    ids.iter().fold(m, |m, id| m.replace(id.as_str(), "{id}"))
}

fn channel_body() -> Value {
    json!({
        "kind": "telegram",
        "config": {"bot_token": format!("{}:{}", 100000 + rand_digits(), unique("matrix-bot")), "allowed_users": [1]},
        "enabled": false
    })
}

/// A request's body for `route` (fresh values each time). On B (`foreign`),
/// a write that got through would change what B reads back.
fn body_for(r: &Route, foreign: bool) -> Option<Value> {
    Some(match (r.method, r.template) {
        ("PATCH", "/experts/{expert_id}") if foreign => json!({"max_concurrent": 7, "status": "offline"}),
        ("PATCH", "/experts/{expert_id}") => json!({"max_concurrent": 50}),
        ("POST", "/experts/me/escalations/{escalation_id}/decline") => {
            json!({"reason": "too_busy", "notes": "isolation matrix"})
        }
        ("POST", "/experts/me/escalations/{escalation_id}/resolve") => {
            json!({"answer": {"ok": true}, "confidence": 0.9, "reasoning": "isolation matrix"})
        }
        ("POST", "/v1/cerebrals/{id}/message") => json!({"message": "hello"}),
        ("PATCH", "/v1/cerebrals/{id}") => json!({"system_prompt": unique("matrix-prompt")}),
        ("PATCH", "/api/tenants/{id}") => json!({"name": unique("matrix-renamed")}),
        ("POST", "/api/tenants/{id}/provider/test") => json!({}),
        ("POST", "/api/tenants/{id}/exec") => json!({"command": "zeroclaw status"}),
        ("POST", "/api/tenants/{tid}/channels") => channel_body(),
        ("PATCH", "/api/tenants/{tid}/channels/{cid}") => json!({"config": {"allowed_users": [424242]}}),
        ("POST", "/api/tenants/{tid}/members") => {
            json!({"email": esc::email_for("matrix-newcomer", "example.com"), "role": "Viewer"})
        }
        ("PATCH", "/api/tenants/{tid}/members/{mid}") => json!({"role": "Viewer"}),
        ("PATCH", "/api/users/{id}") if foreign => json!({"is_super_admin": true}),
        ("PATCH", "/api/users/{id}") => json!({"is_super_admin": false}),
        ("PATCH", "/api/tenants/{id}/config") => json!({"temperature": 0.25}),
        _ => return None,
    })
}

/// B's ids in `route`'s path, with how they sit (the same for every credential).
fn foreign_targets(r: &Route, a: &Side, b: &Side) -> Vec<(Scope, String)> {
    let one = |scope: Scope, path: String| vec![(scope, path)];
    match r.template {
        "/escalations/{escalation_id}" => one(Scope::Resource, format!("/escalations/{}", b.open)),
        "/escalations/{escalation_id}/cancel" => {
            one(Scope::Resource, format!("/escalations/{}/cancel", b.open))
        }
        "/escalations/{escalation_id}/feedback" => {
            one(Scope::Resource, format!("/escalations/{}/feedback?score=0.1", b.done))
        }
        "/escalations/{escalation_id}/wait" => vec![
            (Scope::Resource, format!("/escalations/{}/wait?timeout=1", b.open)),
            (Scope::Resource, format!("/escalations/{}/wait?timeout=1", b.done)),
        ],
        "/webhooks/deliveries/{escalation_id}" => {
            one(Scope::Resource, format!("/webhooks/deliveries/{}", b.done))
        }
        "/experts/{expert_id}" => one(Scope::Resource, format!("/experts/{}", b.expert.id)),
        "/experts/{expert_id}/token" => one(Scope::Resource, format!("/experts/{}/token", b.expert.id)),
        "/experts/me/escalations/{escalation_id}" => vec![
            (Scope::Resource, format!("/experts/me/escalations/{}", b.open)),
            (Scope::Resource, format!("/experts/me/escalations/{}", b.done)),
        ],
        t if t.starts_with("/experts/me/escalations/{escalation_id}/") => {
            one(Scope::Resource, t.replace("{escalation_id}", &b.open))
        }
        "/v1/cerebrals/{id}" => one(Scope::Resource, format!("/v1/cerebrals/{}", b.cerebral)),
        "/v1/cerebrals/{id}/message" => one(Scope::Invoke, format!("/v1/cerebrals/{}/message", b.cerebral)),
        "/v1/cerebrals/{id}/sessions/{session_id}" => vec![
            (Scope::Resource, format!("/v1/cerebrals/{}/sessions/{}", b.cerebral, b.session)),
            (Scope::Resource, format!("/v1/cerebrals/{}/sessions/{}", a.cerebral, b.session)),
        ],
        "/v1/customers/{id}" => one(Scope::Resource, format!("/v1/customers/{}", b.customer)),
        "/v1/api-keys/{id}" => one(Scope::Resource, format!("/v1/api-keys/{}", b.agent_key_id)),
        "/v1/webhooks/{id}" => one(Scope::Resource, format!("/v1/webhooks/{}", b.hook)),
        "/api/tenants/{tid}/channels/{cid}" => vec![
            (Scope::Tenant, format!("/api/tenants/{}/channels/{}", b.tid, b.channel)),
            (Scope::Sub, format!("/api/tenants/{}/channels/{}", a.tid, b.channel)),
        ],
        "/api/tenants/{tid}/members/{mid}" => vec![
            (Scope::Tenant, format!("/api/tenants/{}/members/{}", b.tid, b.members[&Cred::Manager].mid)),
            (Scope::Sub, format!("/api/tenants/{}/members/{}", a.tid, b.members[&Cred::Manager].mid)),
        ],
        "/api/users/{id}" => one(Scope::User, format!("/api/users/{}", b.members[&Cred::Manager].user_id)),
        "/api/monitoring/usage?tenant_id={id}" => {
            one(Scope::Tenant, format!("/api/monitoring/usage?tenant_id={}", b.tid))
        }
        t if t.starts_with("/api/tenants/{id}") => one(Scope::Tenant, t.replace("{id}", &b.tid)),
        t if t.starts_with("/api/tenants/{tid}") => one(Scope::Tenant, t.replace("{tid}", &b.tid)),
        t => panic!("no foreign target for {t}"),
    }
}

impl Matrix<'_> {
    fn b_ids(&self) -> Vec<String> {
        let b = &self.b;
        let mut ids = vec![
            b.tid.clone(),
            b.open.clone(),
            b.done.clone(),
            b.expert.id.clone(),
            b.cerebral.clone(),
            b.session.clone(),
            b.customer.clone(),
            b.agent_key_id.clone(),
            b.hook.clone(),
            b.channel.clone(),
        ];
        for m in b.members.values() {
            ids.push(m.mid.clone());
            ids.push(m.user_id.clone());
        }
        ids
    }

    async fn foreign(&mut self, r: &Route) {
        let targets = foreign_targets(r, &self.a, &self.b);
        for cred in Cred::ALL {
            for (scope, path) in &targets {
                let want = want_foreign(r, *scope, cred);
                if let Want::NotSent(_) = want {
                    self.count(r.surface, cred, Kind::NotSent);
                    continue;
                }
                let about_b = want == Want::Success;
                let Some(answer) = self
                    .cell(
                        Kind::Foreign,
                        r.surface,
                        cred,
                        r.method,
                        path,
                        body_for(r, true),
                        &[],
                        want.clone(),
                        about_b,
                    )
                    .await
                else {
                    continue;
                };
                // Same words for B's id as for an id that does not exist, where the spec
                // prescribes one answer for both (not /api tenant ids, not Cerebral invocation).
                let probe = matches!(want, Want::Status(s) if s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN)
                    && !matches!(scope, Scope::Invoke | Scope::Tenant)
                    && r.accepts.takes(cred);
                if probe {
                    let mut missing = path.clone();
                    let mut ids = self.b_ids();
                    for id in self.b_ids() {
                        if missing.contains(&id) {
                            let m = missing_like(&id);
                            missing = missing.replace(&id, &m);
                            ids.push(m);
                        }
                    }
                    ids.push(self.a.tid.clone());
                    ids.push(self.a.cerebral.clone());
                    if let Some(other) = self
                        .cell(
                            Kind::Probe,
                            r.surface,
                            cred,
                            r.method,
                            &missing,
                            body_for(r, true),
                            &[],
                            want.clone(),
                            false,
                        )
                        .await
                    {
                        let (x, y) = (
                            message_of(r.surface, &answer.body, &ids),
                            message_of(r.surface, &other.body, &ids),
                        );
                        if answer.status != other.status || x != y {
                            self.fail(format!(
                                "[Probe] {} on {} {path}: B's id answers {} {x}, a missing id answers {} {y}: \
                                 the answer tells that the id exists",
                                cred.label(),
                                r.method,
                                answer.status,
                                other.status
                            ));
                        }
                    }
                }
            }
        }
        // /v1 with X-Tenant-Id naming B: a tenant the caller is not a member of.
        if r.surface == S::Agent && matches!(r.accepts, Accepts::Jwt | Accepts::AgentKeyOrJwt) {
            let (_, path) = &targets[0];
            let b_tid = self.b.tid.clone();
            let missing_tid = uuid::Uuid::new_v4().to_string();
            for cred in Cred::ALL.into_iter().filter(|c| c.is_jwt()) {
                let forbidden = Want::Status(StatusCode::FORBIDDEN);
                let one = self
                    .cell(
                        Kind::TenantHeader,
                        r.surface,
                        cred,
                        r.method,
                        path,
                        body_for(r, true),
                        &[("X-Tenant-Id", &b_tid)],
                        forbidden.clone(),
                        false,
                    )
                    .await;
                let two = self
                    .cell(
                        Kind::TenantHeader,
                        r.surface,
                        cred,
                        r.method,
                        path,
                        body_for(r, true),
                        &[("X-Tenant-Id", &missing_tid)],
                        forbidden,
                        false,
                    )
                    .await;
                if let (Some(one), Some(two)) = (one, two) {
                    let ids = [b_tid.clone(), missing_tid.clone()];
                    let (x, y) =
                        (message_of(r.surface, &one.body, &ids), message_of(r.surface, &two.body, &ids));
                    if x != y {
                        self.fail(format!(
                            "[TenantHeader] {} on {} {path}: X-Tenant-Id of B answers {x}, of a missing tenant {y}",
                            cred.label(),
                            r.method
                        ));
                    }
                }
            }
        }
    }

    /// The path of the control for `cred` (its own tenant's resource), or None
    /// when the credential has no resource of that kind.
    async fn control_path(&mut self, r: &Route, cred: Cred) -> Option<String> {
        let allowed = want_control(r, cred) == Want::Success;
        let a = self.a.clone();
        let super_admin = cred == Cred::SuperAdmin;
        // On /v1 the super-admin acts for the operator tenant.
        let v1_auth = if super_admin { self.admin.clone() } else { a.owner().to_string() };
        Some(match (r.method, r.template) {
            ("GET", "/escalations/{escalation_id}") => format!("/escalations/{}", a.open),
            ("POST", "/escalations/{escalation_id}/cancel") => {
                let id = self.api.case(&a.esc_key, DOMAIN, "standard").await;
                format!("/escalations/{id}/cancel")
            }
            ("POST", "/escalations/{escalation_id}/feedback") => {
                format!("/escalations/{}/feedback?score=0.8", a.done)
            }
            ("GET", "/escalations/{escalation_id}/wait") => format!("/escalations/{}/wait?timeout=1", a.done),
            ("GET", "/webhooks/deliveries/{escalation_id}") => format!("/webhooks/deliveries/{}", a.done),
            (_, "/experts/{expert_id}") => format!("/experts/{}", a.expert.id),
            ("POST", "/experts/{expert_id}/token") => {
                let e = self.api.expert(&a.esc_key, &unique("a-spare-expert"), &["legal.spare"], 1).await;
                format!("/experts/{}/token", e.id)
            }
            ("GET", "/experts/me/escalations/{escalation_id}") => {
                format!("/experts/me/escalations/{}", a.open)
            }
            ("POST", t) if t.starts_with("/experts/me/escalations/") => {
                let id = self.api.case(&a.esc_key, DOMAIN, "standard").await;
                self.api.until_status(&a.esc_key, &id, "routed", Some(&a.expert.id)).await;
                t.replace("{escalation_id}", &id)
            }
            ("GET" | "PATCH", "/v1/cerebrals/{id}") => {
                format!("/v1/cerebrals/{}", if super_admin { &self.home.cerebral } else { &a.cerebral })
            }
            ("DELETE", "/v1/cerebrals/{id}") => {
                let id = if allowed {
                    spare(self.app, "/v1/cerebrals", json!({"name": unique("spare")}), v1_auth.as_str()).await
                } else {
                    a.cerebral.clone()
                };
                format!("/v1/cerebrals/{id}")
            }
            ("POST", "/v1/cerebrals/{id}/message") => format!("/v1/cerebrals/{}/message", a.cerebral),
            ("GET", "/v1/cerebrals/{id}/sessions/{session_id}") => {
                if super_admin {
                    return None;
                }
                format!("/v1/cerebrals/{}/sessions/{}", a.cerebral, a.session)
            }
            ("GET", "/v1/customers/{id}") => {
                format!("/v1/customers/{}", if super_admin { &self.home.customer } else { &a.customer })
            }
            ("DELETE", "/v1/api-keys/{id}") => {
                let id = if allowed {
                    spare(self.app, "/v1/api-keys", json!({"name": unique("spare")}), v1_auth.as_str()).await
                } else {
                    a.agent_key_id.clone()
                };
                format!("/v1/api-keys/{id}")
            }
            ("DELETE", "/v1/webhooks/{id}") => {
                let id = if allowed {
                    let url = format!("http://127.0.0.1:9/{}", unique("spare"));
                    spare(
                        self.app,
                        "/v1/webhooks",
                        json!({"url": url, "events": ["conversation.completed"]}),
                        v1_auth.as_str(),
                    )
                    .await
                } else {
                    a.hook.clone()
                };
                format!("/v1/webhooks/{id}")
            }
            ("DELETE", "/api/tenants/{id}") => {
                let id = if allowed {
                    spare(self.app, "/api/tenants", json!({"name": unique("spare")}), a.owner()).await
                } else {
                    a.tid.clone()
                };
                format!("/api/tenants/{id}")
            }
            ("GET" | "PATCH", "/api/tenants/{tid}/channels/{cid}") => {
                format!("/api/tenants/{}/channels/{}", a.tid, a.channel)
            }
            ("DELETE", "/api/tenants/{tid}/channels/{cid}") => {
                let id = if allowed {
                    let c = ok(
                        self.app,
                        Method::POST,
                        &format!("/api/tenants/{}/channels", a.tid),
                        Some(channel_body()),
                        &[("Authorization", a.owner())],
                    )
                    .await;
                    c["id"].as_str().unwrap().to_string()
                } else {
                    a.channel.clone()
                };
                format!("/api/tenants/{}/channels/{id}", a.tid)
            }
            (_, "/api/tenants/{tid}/members/{mid}") => {
                let id = if allowed {
                    let m = ok(
                        self.app,
                        Method::POST,
                        &format!("/api/tenants/{}/members", a.tid),
                        Some(json!({"email": esc::email_for("a-spare-member", "example.com"), "role": "Contributor"})),
                        &[("Authorization", a.owner())],
                    )
                    .await;
                    m["id"].as_str().unwrap().to_string()
                } else {
                    a.members[&Cred::Viewer].mid.clone()
                };
                format!("/api/tenants/{}/members/{id}", a.tid)
            }
            (_, "/api/users/{id}") => {
                let id = if allowed {
                    spare(
                        self.app,
                        "/api/users",
                        json!({"email": esc::email_for("spare-user", "example.com")}),
                        self.admin.as_str(),
                    )
                    .await
                } else {
                    a.members[&cred].user_id.clone()
                };
                format!("/api/users/{id}")
            }
            ("GET", "/api/monitoring/usage?tenant_id={id}") => {
                format!("/api/monitoring/usage?tenant_id={}", a.tid)
            }
            (_, t) if t.starts_with("/api/tenants/{id}") => t.replace("{id}", &a.tid),
            (_, t) if t.starts_with("/api/tenants/{tid}") => t.replace("{tid}", &a.tid),
            (m, t) => panic!("no control for {m} {t}"),
        })
    }

    async fn controls(&mut self, r: &Route) {
        for cred in Cred::ALL.into_iter().filter(|c| r.accepts.takes(*c)) {
            let Some(path) = self.control_path(r, cred).await else { continue };
            let want = want_control(r, cred);
            let mut body = body_for(r, false);
            if r.method == "PATCH" && r.template == "/api/tenants/{id}" {
                body = Some(json!({"name": self.a.name}));
            }
            if r.surface == S::Platform
                && ["deploy", "restart", "stop"].iter().any(|s| r.template.ends_with(s))
            {
                self.settle().await;
            }
            self.cell(Kind::Control, r.surface, cred, r.method, &path, body, &[], want, false).await;
        }
        if r.template == "/api/tenants/{id}/config" || r.template.ends_with("/stop") {
            // Bring A back to running for what follows.
            ok(
                self.app,
                Method::POST,
                &format!("/api/tenants/{}/deploy", self.a.tid),
                None,
                &[("Authorization", self.a.owner())],
            )
            .await;
            self.settle().await;
        }
    }

    /// Waits until A's container is no longer deploying.
    async fn settle(&self) {
        let path = format!("/api/tenants/{}/status", self.a.tid);
        let owner = self.a.owner().to_string();
        let settled = common::eventually(Duration::from_secs(10), || async {
            let (_, s) = self.app.get(&path, &[("Authorization", &owner)]).await;
            s["status"] != "deploying"
        })
        .await;
        assert!(settled, "A's container settles");
    }

    /// Id-less reads of A's credentials: nothing of B in them.
    async fn lists(&mut self) {
        let lists: [(&str, Surface, Accepts); 14] = [
            ("/escalations", S::Escalation, A::EscKey),
            ("/experts", S::Escalation, A::EscKey),
            ("/auth/usage", S::Escalation, A::EscKey),
            ("/experts/me", S::Portal, A::ExpertToken),
            ("/experts/me/escalations", S::Portal, A::ExpertToken),
            ("/v1/cerebrals", S::Agent, A::Jwt),
            ("/v1/api-keys", S::Agent, A::Jwt),
            ("/v1/webhooks", S::Agent, A::Jwt),
            ("/v1/rate-limits", S::Agent, A::AgentKeyOrJwt),
            ("/api/auth/me", S::Platform, A::Jwt),
            ("/api/tenants", S::Platform, A::Jwt),
            ("/api/monitoring/usage", S::Platform, A::Jwt),
            ("/api/monitoring/health", S::Platform, A::Jwt),
            ("/api/users", S::Platform, A::Jwt),
        ];
        for (path, surface, accepts) in lists {
            for cred in Cred::ALL.into_iter().filter(|c| accepts.takes(*c)) {
                let admin_only = ["/api/monitoring/health", "/api/users"].contains(&path);
                let fleet = admin_only || ["/api/tenants", "/api/monitoring/usage"].contains(&path);
                if cred == Cred::SuperAdmin && fleet {
                    continue; // the super-admin sees every tenant by design
                }
                let want = if admin_only { Want::Status(StatusCode::FORBIDDEN) } else { Want::Success };
                self.cell(Kind::List, surface, cred, "GET", path, None, &[], want, false).await;
            }
        }
    }
}

/// B's resources as B sees them, normalised for fields that move on their own.
async fn snapshot(app: &common::TestApp, b: &Side, admin: &str) -> Vec<(String, StatusCode, Value)> {
    let key = [("X-API-Key", b.esc_key.as_str())];
    let token = [("X-Expert-Token", b.expert.token.as_str())];
    let owner = [("Authorization", b.owner())];
    let mut reads: Vec<(String, &[(&str, &str)])> = vec![
        (format!("/escalations/{}", b.open), &key),
        (format!("/escalations/{}", b.done), &key),
        (format!("/webhooks/deliveries/{}", b.done), &key),
        (format!("/experts/{}", b.expert.id), &key),
        ("/escalations".into(), &key),
        ("/experts/me".into(), &token),
        (format!("/experts/me/escalations/{}", b.open), &token),
        (format!("/v1/cerebrals/{}", b.cerebral), &owner),
        (format!("/v1/cerebrals/{}/sessions/{}", b.cerebral, b.session), &owner),
        (format!("/v1/customers/{}", b.customer), &owner),
        ("/v1/cerebrals".into(), &owner),
        ("/v1/api-keys".into(), &owner),
        ("/v1/webhooks".into(), &owner),
        (format!("/api/tenants/{}", b.tid), &owner),
        (format!("/api/tenants/{}/config", b.tid), &owner),
        (format!("/api/tenants/{}/status", b.tid), &owner),
        (format!("/api/tenants/{}/pairing-code", b.tid), &owner),
        (format!("/api/tenants/{}/channels", b.tid), &owner),
        (format!("/api/tenants/{}/channels/{}", b.tid, b.channel), &owner),
        (format!("/api/tenants/{}/members", b.tid), &owner),
    ];
    let mut out = Vec::new();
    for (path, headers) in reads.drain(..) {
        let (status, mut body) = app.get(&path, headers).await;
        strip(&mut body, &["uptime", "lastUsedAt", "last_used_at", "rate_limit", "X-RateLimit-Remaining"]);
        out.push((path, status, body));
    }
    for (role, m) in &b.members {
        let (status, body) = app.get("/api/auth/me", &[("Authorization", &m.jwt)]).await;
        out.push((format!("/api/auth/me as B's {role:?}"), status, body));
    }
    // B's audit trail: a refused request leaves no entry.
    let mut trail = Vec::new();
    for page in 1.. {
        let (status, body) = app
            .get(&format!("/api/monitoring/audit?per_page=200&page={page}"), &[("Authorization", admin)])
            .await;
        assert_eq!(status, StatusCode::OK, "audit: {body}");
        let entries = body["entries"].as_array().unwrap().clone();
        let n = entries.len();
        trail.extend(entries.into_iter().filter(|e| e["tenant_id"] == b.tid.as_str()));
        if n < 200 {
            break;
        }
    }
    out.push(("B's audit entries".into(), StatusCode::OK, Value::Array(trail)));
    out
}

fn strip(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(o) => {
            for k in keys {
                o.remove(*k);
            }
            for x in o.values_mut() {
                strip(x, keys);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip(x, keys)),
        _ => {}
    }
}

async fn run_matrix() -> Vec<String> {
    let app = common::spawn_with_outbox(&[
        ("SWITCHBOARD_BOOTSTRAP_ADMIN", ADMIN),
        ("SWITCHBOARD_SIGNIN_LIMIT_PER_EMAIL", "1000/1m"),
        ("SWITCHBOARD_SIGNIN_LIMIT_PER_CLIENT", "1000/1m"),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "true"),
    ])
    .await;
    let api = esc::Api::of(&app);
    let rx = Receiver::start(Behaviour::Ok);
    let admin = common::sign_in(&app, ADMIN).await;
    let a = side(&app, &api, &rx, "alpha").await;
    let b = side(&app, &api, &rx, "bravo").await;
    // The super-admin's own /v1 resources, in the operator tenant.
    let c = ok(
        &app,
        Method::POST,
        "/v1/cerebrals",
        Some(json!({"name": unique("operator-cerebral")})),
        &[("Authorization", admin.as_str())],
    )
    .await;
    let cu = ok(
        &app,
        Method::POST,
        "/v1/customers",
        Some(json!({"email": esc::email_for("operator-customer", "example.com")})),
        &[("Authorization", admin.as_str())],
    )
    .await;
    let home = Home {
        cerebral: c["data"]["id"].as_str().unwrap().to_string(),
        customer: cu["data"]["id"].as_str().unwrap().to_string(),
    };

    let before = snapshot(&app, &b, &admin).await;
    let mut m = Matrix {
        app: &app,
        api,
        a,
        b,
        admin,
        home,
        counts: BTreeMap::new(),
        failures: Vec::new(),
        covered: BTreeSet::new(),
    };

    // Every documented path with an id is in ROUTES (or excluded with a reason), and back.
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.contains('{') {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    for r in ROUTES.iter().filter(|r| r.in_paths) {
        m.covered.insert((r.method.to_string(), r.template.to_string()));
    }
    for (method, path) in &documented {
        let excluded = EXCLUDED.iter().any(|(em, ep, _)| em == method && ep == path);
        if !m.covered.contains(&(method.clone(), path.clone())) && !excluded {
            m.fail(format!("{method} {path} takes an id but is not in the isolation matrix"));
        }
    }
    for (method, path) in m.covered.clone() {
        if !documented.contains(&(method.clone(), path.clone())) {
            m.fail(format!("the matrix covers {method} {path}, which /openapi.json does not document"));
        }
    }

    // A's credentials on B's ids: nothing changes B.
    for r in ROUTES {
        m.foreign(r).await;
    }
    m.lists().await;
    let after = snapshot(&app, &m.b, &m.admin).await;
    for ((path, s1, b1), (_, s2, b2)) in before.iter().zip(after.iter()) {
        if s1 != s2 || b1 != b2 {
            m.fail(format!("B's {path} changed under the matrix: before {s1} {b1}, after {s2} {b2}"));
        }
    }
    let (status, body) = app
        .post(
            &format!("/v1/cerebrals/{}/message", m.b.cerebral),
            json!({"message": "still here"}),
            &[("X-API-Key", &m.b.agent_key)],
        )
        .await;
    if status != StatusCode::OK {
        m.fail(format!("B's agent key stopped working under the matrix: {status} {body}"));
    }

    // Controls: the same credentials reach their own tenant's resources.
    for r in ROUTES {
        m.controls(r).await;
    }

    // The figures.
    let mut by_surface: BTreeMap<(Surface, Cred), [usize; 6]> = BTreeMap::new();
    for ((s, c, k), n) in &m.counts {
        by_surface.entry((*s, *c)).or_default()[KINDS.iter().position(|x| x == k).unwrap()] += n;
    }
    println!(
        "isolation matrix: {} routes with an id ({} documented paths×methods)",
        ROUTES.len(),
        documented.len()
    );
    println!(
        "{:<18} {:<20} {:>7} {:>7} {:>7} {:>8} {:>5} {:>8}",
        "surface", "credential", "foreign", "control", "probe", "X-Tenant", "list", "not sent"
    );
    let mut totals = [0usize; 6];
    for ((s, c), v) in &by_surface {
        println!(
            "{:<18} {:<20} {:>7} {:>7} {:>7} {:>8} {:>5} {:>8}",
            s.label(),
            c.label(),
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            v[5]
        );
        for i in 0..6 {
            totals[i] += v[i];
        }
    }
    println!(
        "{:<39} {:>7} {:>7} {:>7} {:>8} {:>5} {:>8}",
        "total", totals[0], totals[1], totals[2], totals[3], totals[4], totals[5]
    );
    println!("requests checked: {}", totals[..5].iter().sum::<usize>());
    m.failures
}

#[actix_web::test]
async fn no_credential_of_one_tenant_reaches_another_tenants_resources() {
    let failures = run_matrix().await;
    assert!(failures.is_empty(), "{} isolation failures:\n{}", failures.len(), failures.join("\n"));
}
