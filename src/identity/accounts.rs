//! The identity rules every surface shares: registering tenants, signing up,
//! signing in (password or one-time code), API keys, tenants and members.
//! Handlers parse and authenticate; this module decides; the store commits.
//! Every identity change writes an audit entry in the same transaction.

use serde_json::{json, Value};

use super::api_keys::{self, KeyKind};
use super::jwt::IssuedToken;
use super::model::{Email, IdentityMode, Plan, Role, TenantId, TenantStatus};
use super::rate_limit::retry_after_secs;
use super::secret_box::SecretBox;
use super::{otp, passwords, tokens, Identity};
use crate::error::AppError;
use crate::mail::Mail;
use crate::store::identity::{
    self as rows, ApiKeyRow, AuditRow, CodeRow, MembershipRow, TenantRow, UserRow, PURPOSE_LOGIN,
    PURPOSE_VERIFY_EMAIL,
};
use crate::store::{now_ms, Store, StoreError, Write, WriteRequest};

/// How long an email-verification token lives.
const VERIFY_TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;

pub fn audit(actor: Option<&str>, action: &str, tenant: Option<&str>, detail: Value) -> Write {
    rows::audit(AuditRow {
        id: tokens::new_id("aud_"),
        actor_id: actor.map(str::to_string),
        action: action.to_string(),
        tenant_id: tenant.map(str::to_string),
        detail: detail.to_string(),
        created_at: now_ms(),
    })
}

/// A duplicate key in an identity write is a conflict the caller can act on.
fn duplicate_as(message: &str) -> impl Fn(StoreError) -> AppError + '_ {
    move |e| match e {
        StoreError::Duplicate(_) => AppError::Conflict(message.to_string()),
        other => other.into(),
    }
}

pub fn tenant_row(id: TenantId, name: &str, plan: Plan, status: TenantStatus) -> TenantRow {
    let now = now_ms();
    TenantRow {
        id: id.0,
        name: name.to_string(),
        plan: plan.as_str().to_string(),
        company: None,
        is_operator: false,
        webhook_secret_sealed: None,
        status: status.as_str().to_string(),
        config: "{}".to_string(),
        provider_api_key_sealed: None,
        created_at: now,
        updated_at: now,
        runtime: "embedded".to_string(),
        pairing_code_sealed: None,
    }
}

pub fn user_row(email: &Email, name: Option<String>) -> UserRow {
    let now = now_ms();
    UserRow {
        id: tokens::new_id("usr_"),
        email: email.as_str().to_string(),
        name,
        password_hash: None,
        verified: false,
        is_super_admin: false,
        created_at: now,
        updated_at: now,
    }
}

pub fn membership_row(tenant_id: &str, user_id: &str, role: Role) -> MembershipRow {
    MembershipRow {
        id: tokens::new_id("mem_"),
        tenant_id: tenant_id.to_string(),
        user_id: user_id.to_string(),
        role: role.as_str().to_string(),
        created_at: now_ms(),
    }
}

/// Options of an Agent API key.
pub struct AgentKeyOptions {
    pub name: String,
    pub cerebral_id: Option<String>,
    pub identity_mode: IdentityMode,
    pub allowed_origins: Vec<String>,
}

/// A new key: its row, and the plaintext shown once.
pub fn api_key_row(
    kind: KeyKind,
    tenant_id: &str,
    created_by: Option<&str>,
    options: Option<&AgentKeyOptions>,
) -> (ApiKeyRow, String) {
    let key = api_keys::generate(kind);
    let row = ApiKeyRow {
        id: tokens::new_id("key_"),
        tenant_id: tenant_id.to_string(),
        kind: match kind {
            KeyKind::Escalation => "escalation",
            KeyKind::Agent => "agent",
        }
        .to_string(),
        name: options.map(|o| o.name.clone()),
        key_hash: key.hash,
        preview: key.preview,
        cerebral_id: options.and_then(|o| o.cerebral_id.clone()),
        identity_mode: options.map_or(IdentityMode::Identified, |o| o.identity_mode).as_str().to_string(),
        allowed_origins: json!(options.map(|o| o.allowed_origins.clone()).unwrap_or_default()).to_string(),
        status: "active".to_string(),
        created_by: created_by.map(str::to_string),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    (row, key.plaintext)
}

// ---- Escalation API --------------------------------------------------------

pub struct Registered {
    pub tenant_id: String,
    pub api_key: String,
    pub webhook_secret: String,
}

/// `POST /auth/register`: a running free tenant, its Owner, a key and a webhook secret.
pub async fn register(
    store: &Store,
    identity: &Identity,
    name: &str,
    email: &Email,
    company: Option<String>,
) -> Result<Registered, AppError> {
    if store.user_by_email(email.as_str()).await?.is_some() {
        return Err(AppError::Conflict("email already registered".into()));
    }
    let webhook_secret = new_webhook_secret();
    let mut tenant = tenant_row(TenantId::new(), name, Plan::Free, TenantStatus::Running);
    tenant.company = company;
    tenant.webhook_secret_sealed = Some(identity.secrets.seal(&webhook_secret));
    let user = user_row(email, None);
    let (key, api_key) = api_key_row(KeyKind::Escalation, &tenant.id, Some(&user.id), None);
    let tenant_id = tenant.id.clone();
    let membership = membership_row(&tenant_id, &user.id, Role::Owner);
    let audit_entry =
        audit(Some(&user.id), "tenant.register", Some(&tenant_id), json!({ "email": email.as_str() }));
    // Parents before the rows that reference them.
    let request = WriteRequest(vec![
        rows::insert_tenant(tenant),
        rows::insert_user(user),
        rows::insert_membership(membership),
        rows::insert_api_key(key),
        audit_entry,
    ]);
    store.submit(request).await.map_err(duplicate_as("email already registered"))?;
    Ok(Registered { tenant_id, api_key, webhook_secret })
}

/// A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes.
pub fn new_webhook_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `POST /auth/api-key`: one more Escalation API key for the caller's tenant.
pub async fn new_escalation_key(store: &Store, tenant_id: &str) -> Result<String, AppError> {
    let (row, plaintext) = api_key_row(KeyKind::Escalation, tenant_id, None, None);
    let key_id = row.id.clone();
    store
        .submit(WriteRequest(vec![
            rows::insert_api_key(row),
            audit(None, "api_key.create", Some(tenant_id), json!({ "key_id": key_id, "kind": "escalation" })),
        ]))
        .await?;
    Ok(plaintext)
}

// ---- Agent API: sign-up and password sign-in --------------------------------

/// Counts one sign-in attempt against the email's and the client's allowance.
pub fn check_signin_rate(identity: &Identity, email: &Email, client: &str) -> Result<(), AppError> {
    for (limiter, key) in
        [(&identity.signin_per_email, email.as_str()), (&identity.signin_per_client, client)]
    {
        if let Err(wait) = limiter.check(key) {
            return Err(AppError::RateLimited {
                message: "too many sign-in attempts; retry later".into(),
                retry_after_secs: retry_after_secs(wait),
            });
        }
    }
    Ok(())
}

/// `POST /v1/auth/signup`: an unverified user, Owner of a new running tenant named after them.
pub async fn signup(
    store: &Store,
    identity: &Identity,
    email: &Email,
    password: &str,
    name: Option<String>,
) -> Result<String, AppError> {
    if password.chars().count() < passwords::MIN_PASSWORD_LEN {
        return Err(AppError::BadRequest(format!(
            "password must be at least {} characters",
            passwords::MIN_PASSWORD_LEN
        )));
    }
    if store.user_by_email(email.as_str()).await?.is_some() {
        return Err(AppError::Conflict("Email already registered".into()));
    }
    let hash = passwords::hash_password(password).map_err(AppError::internal)?;
    let mut user = user_row(email, name.clone());
    user.password_hash = Some(hash);
    let tenant_name = name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| email.as_str().to_string());
    let tenant = tenant_row(TenantId::new(), &tenant_name, Plan::Free, TenantStatus::Running);
    let token = tokens::random_alnum(40);
    let code = CodeRow {
        id: tokens::new_id("otc_"),
        email: email.as_str().to_string(),
        purpose: PURPOSE_VERIFY_EMAIL.to_string(),
        code_hash: tokens::sha256_hex(&token),
        attempts: 0,
        expires_at: now_ms() + VERIFY_TOKEN_TTL_MS,
        used_at: None,
        created_at: now_ms(),
    };
    let user_id = user.id.clone();
    let membership = membership_row(&tenant.id, &user.id, Role::Owner);
    let tenant_id = tenant.id.clone();
    store
        .submit(WriteRequest(vec![
            rows::insert_user(user),
            rows::insert_tenant(tenant),
            rows::insert_membership(membership),
            rows::insert_code(code),
            audit(Some(&user_id), "user.signup", Some(&tenant_id), json!({ "email": email.as_str() })),
        ]))
        .await
        .map_err(duplicate_as("Email already registered"))?;
    send(
        identity,
        Mail {
            to: email.as_str().to_string(),
            subject: "Verify your Switchboard email".into(),
            text: format!(
                "Welcome to Switchboard.\n\nYour verification token: {token}\n\n\
                 Verify with POST /v1/auth/verify-email {{\"token\": \"{token}\"}}. It expires in 24 hours.\n"
            ),
        },
    )
    .await;
    Ok(user_id)
}

/// Mail failures are logged, not shown: the account exists either way and a
/// new code or token can be asked for.
async fn send(identity: &Identity, mail: Mail) {
    if let Err(e) = identity.mailer.send(&mail).await {
        tracing::error!(to = %mail.to, error = %e, "cannot send mail");
    }
}

/// `POST /v1/auth/verify-email`.
pub async fn verify_email(store: &Store, token: &str) -> Result<(), AppError> {
    let invalid = || AppError::BadRequest("invalid or expired verification token".into());
    let code =
        store.code_by_hash(PURPOSE_VERIFY_EMAIL, &tokens::sha256_hex(token)).await?.ok_or_else(invalid)?;
    if code.used_at.is_some() || code.expires_at <= now_ms() {
        return Err(invalid());
    }
    let user = store.user_by_email(&code.email).await?.ok_or_else(invalid)?;
    store
        .submit(WriteRequest(vec![
            rows::consume_code(code.id),
            rows::set_user_verified(user.id.clone()),
            audit(Some(&user.id), "user.verify_email", None, json!({})),
        ]))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => invalid(),
            other => other.into(),
        })
}

/// `POST /v1/auth/login`: a JWT for a verified user with the right password.
pub async fn login(
    store: &Store,
    identity: &Identity,
    email: &Email,
    password: &str,
) -> Result<(IssuedToken, UserRow), AppError> {
    let invalid = || AppError::Unauthorized("Invalid credentials".into());
    let user = store.user_by_email(email.as_str()).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = password.to_string();
    // argon2 is deliberately slow: off the async thread, and as slow for an
    // unknown email (or a user without a password) as for a wrong password.
    let ok = actix_web::rt::task::spawn_blocking(move || match hash {
        Some(h) => passwords::verify_password(&password, &h),
        None => {
            passwords::dummy_verify(&password);
            false
        }
    })
    .await
    .map_err(AppError::internal)?;
    let Some(user) = user.filter(|_| ok) else { return Err(invalid()) };
    if !user.verified {
        return Err(AppError::Forbidden("Email not verified".into()));
    }
    let token = identity.jwt.issue(&user.id, identity.jwt_ttl).map_err(AppError::internal)?;
    store.submit(WriteRequest(vec![audit(Some(&user.id), "user.login", None, json!({}))])).await?;
    Ok((token, user))
}

// ---- Platform API: one-time codes --------------------------------------------

/// `POST /api/auth/otp/request`: mails a code to a known email; an unknown one gets nothing.
pub async fn request_code(store: &Store, identity: &Identity, email: &Email) -> Result<(), AppError> {
    if store.user_by_email(email.as_str()).await?.is_none() {
        return Ok(());
    }
    let code = otp::generate_code();
    let now = now_ms();
    let row = CodeRow {
        id: tokens::new_id("otc_"),
        email: email.as_str().to_string(),
        purpose: PURPOSE_LOGIN.to_string(),
        code_hash: otp::hash_code(&identity.master, email.as_str(), &code),
        attempts: 0,
        expires_at: now + otp::CODE_TTL.as_millis() as i64,
        used_at: None,
        created_at: now,
    };
    store
        .submit(WriteRequest(vec![
            rows::retire_codes(email.as_str().to_string(), PURPOSE_LOGIN),
            rows::insert_code(row),
        ]))
        .await?;
    send(
        identity,
        Mail {
            to: email.as_str().to_string(),
            subject: "Your Switchboard sign-in code".into(),
            text: format!("Your sign-in code is {code}. It expires in 10 minutes and works once.\n"),
        },
    )
    .await;
    Ok(())
}

/// `POST /api/auth/otp/verify`: a JWT for the right code, once; five wrong codes burn it.
pub async fn verify_code(
    store: &Store,
    identity: &Identity,
    email: &Email,
    code: &str,
) -> Result<(IssuedToken, UserRow), AppError> {
    let invalid = || AppError::Unauthorized("invalid or expired code".into());
    let live = store.live_code(email.as_str(), PURPOSE_LOGIN).await?.ok_or_else(invalid)?;
    if !otp::code_matches(&identity.master, email.as_str(), code.trim(), &live.code_hash) {
        store
            .submit(WriteRequest(vec![rows::count_failed_attempt(live.id, otp::MAX_ATTEMPTS as i32)]))
            .await?;
        return Err(invalid());
    }
    let user = store.user_by_email(email.as_str()).await?.ok_or_else(invalid)?;
    store
        .submit(WriteRequest(vec![
            rows::consume_code(live.id),
            // A code that reached the mailbox proves the address.
            rows::set_user_verified(user.id.clone()),
            audit(Some(&user.id), "user.login", None, json!({ "method": "otp" })),
        ]))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => invalid(),
            other => other.into(),
        })?;
    let token = identity.jwt.issue(&user.id, identity.jwt_ttl).map_err(AppError::internal)?;
    Ok((token, user))
}

/// The tenant a JWT acts for on `/v1`: the user's first tenant as Owner, else their first membership.
pub fn home_tenant(memberships: &[(MembershipRow, TenantRow)]) -> Option<&TenantRow> {
    memberships
        .iter()
        .find(|(m, _)| m.role == Role::Owner.as_str())
        .or_else(|| memberships.first())
        .map(|(_, t)| t)
}

// ---- start-up and operators ---------------------------------------------------

/// The operator tenant (platform-wide experts, load tests): created on first start.
pub async fn ensure_operator_tenant(store: &Store) -> Result<TenantRow, AppError> {
    if let Some(t) = store.operator_tenant().await? {
        return Ok(t);
    }
    let mut tenant = tenant_row(TenantId::new(), "Operator", Plan::Enterprise, TenantStatus::Running);
    tenant.is_operator = true;
    let id = tenant.id.clone();
    store
        .submit(WriteRequest(vec![
            rows::insert_tenant(tenant.clone()),
            audit(None, "tenant.create", Some(&id), json!({ "name": "Operator", "operator": true })),
        ]))
        .await?;
    Ok(tenant)
}

/// The tenant's `webhook_secret` (`whsec_...`), which signs its
/// `callback_url` deliveries. Tenants made by `/auth/register` got theirs
/// there; any other (the operator tenant, sign-up, `POST /api/tenants`) gets
/// one the first time it is needed. `None` when the tenant does not exist.
pub async fn webhook_secret(
    store: &Store,
    secrets: &SecretBox,
    tenant_id: &str,
) -> Result<Option<String>, AppError> {
    let Some(tenant) = store.tenant(tenant_id).await? else { return Ok(None) };
    let sealed = match tenant.webhook_secret_sealed {
        Some(sealed) => sealed,
        None => {
            let fresh = secrets.seal(&new_webhook_secret());
            store
                .submit(WriteRequest(vec![rows::set_webhook_secret_if_missing(tenant.id.clone(), fresh)]))
                .await?;
            match store.tenant(tenant_id).await?.and_then(|t| t.webhook_secret_sealed) {
                Some(sealed) => sealed,
                None => return Ok(None),
            }
        }
    };
    secrets.open(&sealed).map(Some).map_err(AppError::internal)
}

/// `SWITCHBOARD_BOOTSTRAP_ADMIN`: that email is a verified super-admin and an Owner of the operator tenant.
pub async fn ensure_bootstrap_admin(
    store: &Store,
    email: &Email,
    operator: &TenantRow,
) -> Result<(), AppError> {
    let mut writes = Vec::new();
    let user_id = match store.user_by_email(email.as_str()).await? {
        Some(u) if u.is_super_admin => u.id,
        Some(u) => {
            writes.push(rows::update_user(u.id.clone(), None, Some(true)));
            u.id
        }
        None => {
            let mut user = user_row(email, None);
            user.is_super_admin = true;
            user.verified = true;
            let id = user.id.clone();
            writes.push(rows::insert_user(user));
            id
        }
    };
    if store.membership(&operator.id, &user_id).await?.is_none() {
        writes.push(rows::insert_membership(membership_row(&operator.id, &user_id, Role::Owner)));
    }
    if writes.is_empty() {
        return Ok(());
    }
    writes.push(audit(None, "user.bootstrap_admin", Some(&operator.id), json!({ "email": email.as_str() })));
    store.submit(WriteRequest(writes)).await?;
    Ok(())
}

/// `switchboard admin agent-key`: a new active Cerebral of the operator
/// tenant (offline provider, no SOPs) and a new Agent API key; (id, key).
pub async fn new_operator_cerebral(store: &Store, name: &str) -> Result<(String, String), AppError> {
    let operator = ensure_operator_tenant(store).await?;
    let now = now_ms();
    let cerebral = crate::store::cerebrals::CerebralRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: operator.id.clone(),
        name: name.trim().chars().take(200).collect::<String>(),
        system_prompt: None,
        provider: None,
        model: None,
        status: "active".into(),
        sops: "[]".into(),
        created_at: now,
        updated_at: now,
    };
    if cerebral.name.is_empty() {
        return Err(AppError::BadRequest("the Cerebral's name must not be empty".into()));
    }
    let options = AgentKeyOptions {
        name: format!("{} (admin agent-key)", cerebral.name),
        cerebral_id: None,
        identity_mode: IdentityMode::Identified,
        allowed_origins: Vec::new(),
    };
    let (key_row, key) = api_key_row(KeyKind::Agent, &operator.id, None, Some(&options));
    let id = cerebral.id.clone();
    store
        .submit(WriteRequest(vec![
            crate::store::cerebrals::insert_cerebral(cerebral),
            rows::insert_api_key(key_row),
            audit(
                None,
                "cerebral.create",
                Some(&operator.id),
                json!({ "cerebral_id": id, "by": "admin agent-key" }),
            ),
        ]))
        .await?;
    Ok((id, key))
}

/// `switchboard admin operator-key`: a new Escalation API key of the operator tenant.
pub async fn new_operator_key(store: &Store) -> Result<String, AppError> {
    let operator = ensure_operator_tenant(store).await?;
    new_escalation_key(store, &operator.id).await
}
