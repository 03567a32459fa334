//! Who is calling: extractors for the credentials of the three surfaces.
//! `EscalationKey` (`X-API-Key: cero_...`), `AgentKey` (`X-API-Key:
//! sk_live_...`) and `Session` (`Authorization: Bearer <JWT>`). An unknown, a
//! revoked and a malformed credential get the same answer, so a caller learns
//! nothing by guessing.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::error::AppError;
use crate::identity::api_keys::{self, KeyKind};
use crate::identity::jwt::JwtError;
use crate::identity::model::Role;
use crate::identity::tokens;
use crate::startup::AppState;
use crate::store::identity::{ApiKeyRow, MembershipRow, TenantRow, UserRow};

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))
}

/// The client's address, for per-client limits.
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Finds the active key of `kind` that `presented` is, comparing hashes in constant time.
async fn active_key(
    state: &AppState,
    presented: &str,
    kind: KeyKind,
) -> Result<Option<(ApiKeyRow, TenantRow)>, AppError> {
    if api_keys::kind_of(presented) != Some(kind) {
        return Ok(None);
    }
    let hash = api_keys::hash(presented);
    let Some(key) = state.store.api_key_by_hash(&hash).await? else { return Ok(None) };
    if !tokens::ct_eq(&key.key_hash, &hash) || key.status != "active" {
        return Ok(None);
    }
    let Some(tenant) = state.store.tenant(&key.tenant_id).await? else { return Ok(None) };
    Ok(Some((key, tenant)))
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// An Escalation API caller: a tenant authenticated by a `cero_` key.
pub struct EscalationKey {
    pub key: ApiKeyRow,
    pub tenant: TenantRow,
}

impl FromRequest for EscalationKey {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let presented = header(&req, "x-api-key").ok_or_else(|| {
                AppError::Unauthorized("Missing API key: send it in the X-API-Key header".into())
            })?;
            match active_key(&state, presented, KeyKind::Escalation).await? {
                Some((key, tenant)) => Ok(EscalationKey { key, tenant }),
                None => Err(AppError::Unauthorized("Invalid API key".into())),
            }
        })
    }
}

/// An Agent API key caller (Cerebral invocation): a tenant authenticated by an `sk_live_` key.
pub struct AgentKey {
    pub key: ApiKeyRow,
    pub tenant: TenantRow,
}

impl FromRequest for AgentKey {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let presented = header(&req, "x-api-key")
                .ok_or_else(|| AppError::Unauthorized("Missing or invalid X-API-Key header".into()))?;
            let Some((key, tenant)) = active_key(&state, presented, KeyKind::Agent).await? else {
                return Err(AppError::Unauthorized("Missing or invalid X-API-Key header".into()));
            };
            // An empty list means server-to-server only: any browser Origin is refused.
            if let Some(origin) = header(&req, "origin") {
                let allowed: Vec<String> = serde_json::from_str(&key.allowed_origins).unwrap_or_default();
                if !allowed.iter().any(|a| a.trim_end_matches('/') == origin.trim_end_matches('/')) {
                    return Err(AppError::Forbidden(format!("Origin {origin} is not allowed for this key")));
                }
            }
            // `lastUsedAt`, at most once a minute per key, off the request's path.
            let now = crate::store::now_ms();
            if key.last_used_at.is_none_or(|at| now - at >= 60_000) {
                let (store, id) = (state.store.clone(), key.id.clone());
                actix_web::rt::spawn(async move {
                    if let Err(e) = store
                        .submit(crate::store::WriteRequest(vec![crate::store::identity::touch_api_key(
                            id, now,
                        )]))
                        .await
                    {
                        tracing::warn!(error = %e, "could not record an API key's last use");
                    }
                });
            }
            Ok(AgentKey { key, tenant })
        })
    }
}

/// A signed-in user: a valid, unrevoked JWT whose user still exists.
pub struct Session {
    pub user: UserRow,
    pub jti: String,
    /// The token's expiry, epoch milliseconds.
    pub expires_at_ms: i64,
}

/// What a JWT that is not good gets (401).
const INVALID_TOKEN: &str = "invalid token";

impl FromRequest for Session {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let token = header(&req, "authorization")
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim)
                .ok_or_else(|| {
                    AppError::Unauthorized("JWT required: send Authorization: Bearer <token>".into())
                })?;
            Session::from_token(&state, token).await
        })
    }
}

impl Session {
    /// The session a JWT stands for, wherever it was carried (the header, or
    /// the operator console's cookie).
    pub async fn from_token(state: &AppState, token: &str) -> Result<Session, AppError> {
        // One answer for every token that is not good, whatever the reason,
        // so that nobody learns from it that a token was once valid (revoked,
        // user deleted) or how close a forgery came. Only expiry is told
        // apart: it is written in the token for anyone to read.
        let invalid = || AppError::Unauthorized(INVALID_TOKEN.into());
        let claims = state.identity.jwt.verify(token).map_err(|e| match e {
            JwtError::Expired => AppError::Unauthorized(format!("{INVALID_TOKEN}: {e}")),
            _ => invalid(),
        })?;
        if state.store.jwt_revoked(&claims.jti).await? {
            return Err(invalid());
        }
        let user = state.store.user(&claims.sub).await?.ok_or_else(invalid)?;
        Ok(Session { user, jti: claims.jti, expires_at_ms: claims.exp * 1000 })
    }
}

impl Session {
    pub fn is_super_admin(&self) -> bool {
        self.user.is_super_admin
    }

    pub fn require_super_admin(&self) -> Result<(), AppError> {
        if self.is_super_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden("super-admin only".into()))
        }
    }
}

/// The caller's standing in one tenant: their membership, if any.
pub struct TenantAccess {
    pub tenant: TenantRow,
    pub membership: Option<MembershipRow>,
    pub super_admin: bool,
}

impl TenantAccess {
    pub fn role(&self) -> Option<Role> {
        self.membership.as_ref().and_then(|m| Role::parse(&m.role).ok())
    }

    /// At least `min` in this tenant, or a super-admin.
    pub fn require(&self, min: Role) -> Result<(), AppError> {
        if self.super_admin || self.role().is_some_and(|r| r >= min) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!("needs the {} role or above in this tenant", min.as_str())))
        }
    }
}

/// The Platform API's rule: a tenant that does not exist is 404; one the
/// caller is not a member of is 403 (super-admins see every tenant).
pub async fn platform_tenant_access(
    state: &AppState,
    session: &Session,
    tenant_id: &str,
) -> Result<TenantAccess, AppError> {
    let tenant = state.store.existing_tenant(tenant_id).await?;
    let membership = state.store.membership(tenant_id, &session.user.id).await?;
    if membership.is_none() && !session.is_super_admin() {
        return Err(AppError::Forbidden("you are not a member of this tenant".into()));
    }
    Ok(TenantAccess { tenant, membership, super_admin: session.is_super_admin() })
}

/// An expert in the portal, authenticated by the `X-Expert-Token` (`exp_...`)
/// issued at registration or rotation. Unknown and retired tokens get the same 401.
pub struct ExpertToken {
    pub expert: crate::store::escalations::ExpertRow,
}

/// Prefix of expert portal tokens.
pub const EXPERT_TOKEN_PREFIX: &str = "exp_";

impl FromRequest for ExpertToken {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let presented = header(&req, "x-expert-token").ok_or_else(|| {
                AppError::Unauthorized("Missing expert token: send it in the X-Expert-Token header".into())
            })?;
            ExpertToken::from_token(&state, presented).await
        })
    }
}

impl ExpertToken {
    /// The expert a token belongs to, wherever it was carried (the header, or
    /// the expert portal's cookie).
    pub async fn from_token(state: &AppState, presented: &str) -> Result<ExpertToken, AppError> {
        if !presented.starts_with(EXPERT_TOKEN_PREFIX) || presented.len() > 200 {
            return Err(AppError::Unauthorized("Invalid expert token".into()));
        }
        // Looked up by its SHA-256: the comparison never touches the token itself.
        match state.store.expert_by_token_hash(tokens::sha256_hex(presented)).await? {
            Some(expert) => Ok(ExpertToken { expert }),
            None => Err(AppError::Unauthorized("Invalid expert token".into())),
        }
    }
}
