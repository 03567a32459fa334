//! SQL of the identity tables: tenants, users, memberships, API keys, revoked
//! JWTs, one-time codes and the audit log. Reads are `Store` methods; writes
//! are `Write`s that callers combine into one atomic `WriteRequest`.

use diesel::prelude::*;

use super::schema::{api_keys, audit_entries, jwt_revocations, memberships, one_time_codes, tenants, users};
use super::writes::{conflict, op, Write};
use super::{now_ms, DbConn, Store, StoreError};
use crate::identity::model::Role;

#[derive(Queryable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = tenants)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub company: Option<String>,
    pub is_operator: bool,
    pub webhook_secret_sealed: Option<String>,
    pub status: String,
    pub config: String,
    pub provider_api_key_sealed: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// `embedded` or `process`: what the container runs on once deployed.
    pub runtime: String,
    pub pairing_code_sealed: Option<String>,
}

#[derive(Queryable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub verified: bool,
    pub is_super_admin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Queryable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub role: String,
    pub created_at: i64,
}

#[derive(Queryable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub name: Option<String>,
    pub key_hash: String,
    pub preview: String,
    pub cerebral_id: Option<String>,
    pub identity_mode: String,
    pub allowed_origins: String,
    pub status: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Queryable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = one_time_codes)]
pub struct CodeRow {
    pub id: String,
    pub email: String,
    pub purpose: String,
    pub code_hash: String,
    pub attempts: i32,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Queryable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = audit_entries)]
pub struct AuditRow {
    pub id: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub tenant_id: Option<String>,
    pub detail: String,
    pub created_at: i64,
}

/// What a one-time code is for.
pub const PURPOSE_LOGIN: &str = "login";
pub const PURPOSE_VERIFY_EMAIL: &str = "verify_email";

// ---- writes ----------------------------------------------------------------

pub fn insert_tenant(row: TenantRow) -> Write {
    op(move |c| diesel::insert_into(tenants::table).values(&row).execute(c).map(drop))
}

pub fn insert_user(row: UserRow) -> Write {
    op(move |c| diesel::insert_into(users::table).values(&row).execute(c).map(drop))
}

pub fn insert_membership(row: MembershipRow) -> Write {
    op(move |c| diesel::insert_into(memberships::table).values(&row).execute(c).map(drop))
}

pub fn insert_api_key(row: ApiKeyRow) -> Write {
    op(move |c| diesel::insert_into(api_keys::table).values(&row).execute(c).map(drop))
}

pub fn insert_code(row: CodeRow) -> Write {
    op(move |c| diesel::insert_into(one_time_codes::table).values(&row).execute(c).map(drop))
}

pub fn audit(row: AuditRow) -> Write {
    op(move |c| diesel::insert_into(audit_entries::table).values(&row).execute(c).map(drop))
}

pub fn revoke_jwt(jti: String, user_id: String, expires_at: i64) -> Write {
    op(move |c| {
        let now = now_ms();
        // Drop revocations of tokens that have expired anyway: the table stays small.
        diesel::delete(jwt_revocations::table.filter(jwt_revocations::expires_at.lt(now))).execute(c)?;
        let exists = jwt_revocations::table.find(&jti).count().get_result::<i64>(c)? > 0;
        if !exists {
            diesel::insert_into(jwt_revocations::table)
                .values((
                    jwt_revocations::jti.eq(&jti),
                    jwt_revocations::user_id.eq(&user_id),
                    jwt_revocations::expires_at.eq(expires_at),
                    jwt_revocations::revoked_at.eq(now),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

pub fn set_user_verified(user_id: String) -> Write {
    op(move |c| {
        diesel::update(users::table.find(&user_id))
            .set((users::verified.eq(true), users::updated_at.eq(now_ms())))
            .execute(c)
            .map(drop)
    })
}

pub fn update_user(user_id: String, email: Option<String>, is_super_admin: Option<bool>) -> Write {
    op(move |c| {
        if let Some(email) = &email {
            diesel::update(users::table.find(&user_id)).set(users::email.eq(email)).execute(c)?;
        }
        if let Some(flag) = is_super_admin {
            diesel::update(users::table.find(&user_id)).set(users::is_super_admin.eq(flag)).execute(c)?;
        }
        diesel::update(users::table.find(&user_id)).set(users::updated_at.eq(now_ms())).execute(c).map(drop)
    })
}

/// Deletes a user, unless that would leave one of their tenants without an Owner.
pub fn delete_user(user_id: String) -> Write {
    op(move |c| {
        let owned: Vec<String> = memberships::table
            .filter(memberships::user_id.eq(&user_id))
            .filter(memberships::role.eq(Role::Owner.as_str()))
            .select(memberships::tenant_id)
            .load(c)?;
        for tenant in owned {
            lock_tenant(c, &tenant)?;
            if owner_count(c, &tenant)? <= 1 {
                return Err(conflict(format!(
                    "the user is the last Owner of tenant {tenant}: add another Owner first"
                )));
            }
        }
        diesel::delete(memberships::table.filter(memberships::user_id.eq(&user_id))).execute(c)?;
        diesel::delete(users::table.find(&user_id)).execute(c).map(drop)
    })
}

/// Gives the tenant this sealed webhook secret unless it already has one
/// (the first of two concurrent writers wins; both then read the same).
pub fn set_webhook_secret_if_missing(tenant_id: String, sealed: String) -> Write {
    op(move |c| {
        diesel::update(tenants::table.find(&tenant_id).filter(tenants::webhook_secret_sealed.is_null()))
            .set(tenants::webhook_secret_sealed.eq(&sealed))
            .execute(c)
            .map(|_| ())
    })
}

pub fn update_tenant(tenant_id: String, name: Option<String>, plan: Option<String>) -> Write {
    op(move |c| {
        if let Some(name) = &name {
            diesel::update(tenants::table.find(&tenant_id)).set(tenants::name.eq(name)).execute(c)?;
        }
        if let Some(plan) = &plan {
            diesel::update(tenants::table.find(&tenant_id)).set(tenants::plan.eq(plan)).execute(c)?;
        }
        diesel::update(tenants::table.find(&tenant_id))
            .set(tenants::updated_at.eq(now_ms()))
            .execute(c)
            .map(drop)
    })
}

/// Removes the tenant and everything that hangs off it.
pub fn delete_tenant(tenant_id: String) -> Write {
    op(move |c| {
        diesel::delete(api_keys::table.filter(api_keys::tenant_id.eq(&tenant_id))).execute(c)?;
        diesel::delete(memberships::table.filter(memberships::tenant_id.eq(&tenant_id))).execute(c)?;
        diesel::delete(tenants::table.find(&tenant_id)).execute(c).map(drop)
    })
}

/// Changes a member's role; the last Owner cannot be demoted.
pub fn set_member_role(tenant_id: String, membership_id: String, role: Role) -> Write {
    op(move |c| {
        lock_tenant(c, &tenant_id)?;
        let current: String = memberships::table.find(&membership_id).select(memberships::role).first(c)?;
        if current == Role::Owner.as_str() && role != Role::Owner && owner_count(c, &tenant_id)? <= 1 {
            return Err(conflict("the last Owner of a tenant cannot be demoted"));
        }
        diesel::update(memberships::table.find(&membership_id))
            .set(memberships::role.eq(role.as_str()))
            .execute(c)
            .map(drop)
    })
}

/// Removes a member; the last Owner cannot be removed.
pub fn remove_member(tenant_id: String, membership_id: String) -> Write {
    op(move |c| {
        lock_tenant(c, &tenant_id)?;
        let current: String = memberships::table.find(&membership_id).select(memberships::role).first(c)?;
        if current == Role::Owner.as_str() && owner_count(c, &tenant_id)? <= 1 {
            return Err(conflict("the last Owner of a tenant cannot be removed"));
        }
        diesel::delete(memberships::table.find(&membership_id)).execute(c).map(drop)
    })
}

/// Records a key's use (`lastUsedAt`); callers throttle it to once a minute per key.
pub fn touch_api_key(key_id: String, at: i64) -> Write {
    op(move |conn| {
        diesel::update(api_keys::table.find(&key_id))
            .set(api_keys::last_used_at.eq(at))
            .execute(conn)
            .map(|_| ())
    })
}

pub fn revoke_api_key(key_id: String) -> Write {
    op(move |c| {
        diesel::update(api_keys::table.find(&key_id))
            .set((api_keys::status.eq("revoked"), api_keys::revoked_at.eq(now_ms())))
            .execute(c)
            .map(drop)
    })
}

/// Counts a wrong guess; the code is burned (used) at `max_attempts`.
pub fn count_failed_attempt(code_id: String, max_attempts: i32) -> Write {
    op(move |c| {
        let attempts: i32 =
            one_time_codes::table.find(&code_id).select(one_time_codes::attempts).first::<i32>(c)? + 1;
        let burned = (attempts >= max_attempts).then(now_ms);
        diesel::update(one_time_codes::table.find(&code_id))
            .set((one_time_codes::attempts.eq(attempts), one_time_codes::used_at.eq(burned)))
            .execute(c)
            .map(drop)
    })
}

/// Marks a code used, once: a second use, even a concurrent one, is a conflict.
pub fn consume_code(code_id: String) -> Write {
    op(move |c| {
        let changed =
            diesel::update(one_time_codes::table.find(&code_id).filter(one_time_codes::used_at.is_null()))
                .set(one_time_codes::used_at.eq(now_ms()))
                .execute(c)?;
        if changed == 0 {
            return Err(conflict("this code was already used"));
        }
        Ok(())
    })
}

/// Retires every unused code of `email` for `purpose` (a new one replaces them).
pub fn retire_codes(email: String, purpose: &'static str) -> Write {
    op(move |c| {
        diesel::update(
            one_time_codes::table
                .filter(one_time_codes::email.eq(&email))
                .filter(one_time_codes::purpose.eq(purpose))
                .filter(one_time_codes::used_at.is_null()),
        )
        .set(one_time_codes::used_at.eq(now_ms()))
        .execute(c)
        .map(drop)
    })
}

/// Replaces the tenant's config (JSON text) and, when `api_key_sealed` is
/// `Some`, its sealed provider API key (`Some(None)` clears it). A tenant
/// deleted meanwhile is a conflict.
/// Records the container's lifecycle state and runtime (the TenantActor's
/// journal). A tenant deleted meanwhile has nothing left to record.
pub fn set_tenant_status(tenant_id: String, status: &'static str, runtime: &'static str) -> Write {
    op(move |c| {
        diesel::update(tenants::table.find(&tenant_id))
            .set((tenants::status.eq(status), tenants::runtime.eq(runtime), tenants::updated_at.eq(now_ms())))
            .execute(c)
            .map(drop)
    })
}

/// Stores a new pairing code (sealed). With `only_if_unset`, an existing code
/// wins: two first reads at once agree on one code.
pub fn set_pairing_code(tenant_id: String, sealed: String, only_if_unset: bool) -> Write {
    op(move |c| {
        let target = tenants::table.find(&tenant_id);
        let changed = if only_if_unset {
            diesel::update(target.filter(tenants::pairing_code_sealed.is_null()))
                .set(tenants::pairing_code_sealed.eq(&sealed))
                .execute(c)?
        } else {
            diesel::update(target).set(tenants::pairing_code_sealed.eq(&sealed)).execute(c)?
        };
        if changed == 0 && !only_if_unset {
            return Err(conflict("the tenant was deleted meanwhile"));
        }
        Ok(())
    })
}

pub fn set_tenant_config(
    tenant_id: String,
    config_json: String,
    api_key_sealed: Option<Option<String>>,
) -> Write {
    op(move |c| {
        let changed = diesel::update(tenants::table.find(&tenant_id))
            .set((tenants::config.eq(&config_json), tenants::updated_at.eq(now_ms())))
            .execute(c)?;
        if changed == 0 {
            return Err(conflict("the tenant was deleted meanwhile"));
        }
        if let Some(sealed) = &api_key_sealed {
            diesel::update(tenants::table.find(&tenant_id))
                .set(tenants::provider_api_key_sealed.eq(sealed))
                .execute(c)?;
        }
        Ok(())
    })
}

fn owner_count(c: &mut DbConn, tenant_id: &str) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::tenant_id.eq(tenant_id))
        .filter(memberships::role.eq(Role::Owner.as_str()))
        .count()
        .get_result(c)
}

/// Serialises concurrent membership changes of one tenant. SQLite has one
/// writer already; PostgreSQL needs the row lock, or two demotions could each
/// see the other Owner and leave none.
fn lock_tenant(c: &mut DbConn, tenant_id: &str) -> QueryResult<()> {
    if let DbConn::Postgres(pg) = c {
        tenants::table.find(tenant_id).select(tenants::id).for_update().first::<String>(pg).optional()?;
    }
    Ok(())
}

// ---- reads -----------------------------------------------------------------

impl Store {
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        let email = email.to_string();
        self.read(move |c| Ok(users::table.filter(users::email.eq(email)).first(c).optional()?)).await
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| Ok(users::table.find(id).first(c).optional()?)).await
    }

    pub async fn users_all(&self) -> Result<Vec<UserRow>, StoreError> {
        self.read(|c| Ok(users::table.order(users::created_at.asc()).load(c)?)).await
    }

    pub async fn tenant(&self, id: &str) -> Result<Option<TenantRow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| Ok(tenants::table.find(id).first(c).optional()?)).await
    }

    /// The tenant, or the 404 every surface answers for one that does not exist.
    pub async fn existing_tenant(&self, id: &str) -> Result<TenantRow, crate::error::AppError> {
        self.tenant(id).await?.ok_or_else(|| crate::error::AppError::NotFound("tenant not found".into()))
    }

    pub async fn operator_tenant(&self) -> Result<Option<TenantRow>, StoreError> {
        self.read(|c| Ok(tenants::table.filter(tenants::is_operator.eq(true)).first(c).optional()?)).await
    }

    /// Tenants whose stored container state is one of `statuses`.
    pub async fn tenants_with_status(&self, statuses: &[&str]) -> Result<Vec<TenantRow>, StoreError> {
        let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
        self.read(move |c| {
            Ok(tenants::table
                .filter(tenants::status.eq_any(statuses))
                .order(tenants::created_at.asc())
                .load(c)?)
        })
        .await
    }

    pub async fn tenants_all(&self) -> Result<Vec<TenantRow>, StoreError> {
        self.read(|c| Ok(tenants::table.order(tenants::created_at.asc()).load(c)?)).await
    }

    /// The user's memberships with their tenants, oldest first.
    pub async fn tenants_of_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<(MembershipRow, TenantRow)>, StoreError> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            Ok(memberships::table
                .inner_join(tenants::table)
                .filter(memberships::user_id.eq(user_id))
                .order((memberships::created_at.asc(), memberships::id.asc()))
                .load::<(MembershipRow, TenantRow)>(c)?)
        })
        .await
    }

    pub async fn membership(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Option<MembershipRow>, StoreError> {
        let (tenant_id, user_id) = (tenant_id.to_string(), user_id.to_string());
        self.read(move |c| {
            Ok(memberships::table
                .filter(memberships::tenant_id.eq(tenant_id))
                .filter(memberships::user_id.eq(user_id))
                .first(c)
                .optional()?)
        })
        .await
    }

    pub async fn membership_by_id(&self, id: &str) -> Result<Option<MembershipRow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| Ok(memberships::table.find(id).first(c).optional()?)).await
    }

    /// A tenant's members with their users, oldest first.
    pub async fn members_of_tenant(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<(MembershipRow, UserRow)>, StoreError> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            Ok(memberships::table
                .inner_join(users::table)
                .filter(memberships::tenant_id.eq(tenant_id))
                .order((memberships::created_at.asc(), memberships::id.asc()))
                .load::<(MembershipRow, UserRow)>(c)?)
        })
        .await
    }

    pub async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let hash = hash.to_string();
        self.read(move |c| Ok(api_keys::table.filter(api_keys::key_hash.eq(hash)).first(c).optional()?)).await
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| Ok(api_keys::table.find(id).first(c).optional()?)).await
    }

    /// A tenant's keys of one kind, newest first.
    pub async fn api_keys_of_tenant(
        &self,
        tenant_id: &str,
        kind: &str,
    ) -> Result<Vec<ApiKeyRow>, StoreError> {
        let (tenant_id, kind) = (tenant_id.to_string(), kind.to_string());
        self.read(move |c| {
            Ok(api_keys::table
                .filter(api_keys::tenant_id.eq(tenant_id))
                .filter(api_keys::kind.eq(kind))
                .order((api_keys::created_at.desc(), api_keys::id.desc()))
                .load(c)?)
        })
        .await
    }

    pub async fn jwt_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let jti = jti.to_string();
        self.read(move |c| Ok(jwt_revocations::table.find(jti).count().get_result::<i64>(c)? > 0)).await
    }

    /// The newest live (unused, unexpired) code of `email` for `purpose`.
    pub async fn live_code(&self, email: &str, purpose: &'static str) -> Result<Option<CodeRow>, StoreError> {
        let email = email.to_string();
        self.read(move |c| {
            Ok(one_time_codes::table
                .filter(one_time_codes::email.eq(email))
                .filter(one_time_codes::purpose.eq(purpose))
                .filter(one_time_codes::used_at.is_null())
                .filter(one_time_codes::expires_at.gt(now_ms()))
                .order(one_time_codes::created_at.desc())
                .first(c)
                .optional()?)
        })
        .await
    }

    pub async fn code_by_hash(
        &self,
        purpose: &'static str,
        hash: &str,
    ) -> Result<Option<CodeRow>, StoreError> {
        let hash = hash.to_string();
        self.read(move |c| {
            Ok(one_time_codes::table
                .filter(one_time_codes::purpose.eq(purpose))
                .filter(one_time_codes::code_hash.eq(hash))
                .first(c)
                .optional()?)
        })
        .await
    }
}
