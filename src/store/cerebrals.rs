//! SQL of `cerebrals`: a tenant's Cerebrals, written by the `/v1/cerebrals`
//! handlers. The SOPs column holds the validated, normalised JSON array.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use switchboard_actors::model::TenantId;
use utoipa::ToSchema;

use super::schema::cerebrals;
use super::writes::{conflict, op, Write};
use super::{Store, StoreError};

/// Whether a Cerebral answers: only `active` ones do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CerebralStatus {
    Draft,
    Active,
    Paused,
}

impl CerebralStatus {
    pub const ALL: [CerebralStatus; 3] =
        [CerebralStatus::Draft, CerebralStatus::Active, CerebralStatus::Paused];

    pub fn as_str(&self) -> &'static str {
        match self {
            CerebralStatus::Draft => "draft",
            CerebralStatus::Active => "active",
            CerebralStatus::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<CerebralStatus> {
        CerebralStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = cerebrals)]
pub struct CerebralRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub system_prompt: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// `draft`, `active` or `paused` (see [`CerebralStatus`]).
    pub status: String,
    /// JSON array of SOPs, as validated at write time.
    pub sops: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// One Cerebral, whoever's it is: the caller checks the tenant.
    pub async fn cerebral(&self, id: String) -> Result<Option<CerebralRow>, StoreError> {
        self.read(move |conn| {
            Ok(cerebrals::table.find(id).select(CerebralRow::as_select()).first(conn).optional()?)
        })
        .await
    }

    /// A tenant's Cerebrals, newest first.
    pub async fn cerebrals_of(&self, tenant: TenantId) -> Result<Vec<CerebralRow>, StoreError> {
        self.read(move |conn| {
            Ok(cerebrals::table
                .filter(cerebrals::tenant_id.eq(tenant.0))
                .order((cerebrals::created_at.desc(), cerebrals::id.desc()))
                .select(CerebralRow::as_select())
                .load(conn)?)
        })
        .await
    }
}

pub fn insert_cerebral(row: CerebralRow) -> Write {
    op(move |conn| diesel::insert_into(cerebrals::table).values(row.clone()).execute(conn).map(|_| ()))
}

/// Rewrites every field of the Cerebral but its id, tenant and creation time.
/// If it was deleted meanwhile, the request is refused (and its audit entry
/// with it) rather than answered as if the update had landed.
pub fn update_cerebral(row: CerebralRow) -> Write {
    op(move |conn| {
        let changed = diesel::update(cerebrals::table.find(&row.id))
            .set((
                cerebrals::name.eq(&row.name),
                cerebrals::system_prompt.eq(&row.system_prompt),
                cerebrals::provider.eq(&row.provider),
                cerebrals::model.eq(&row.model),
                cerebrals::status.eq(&row.status),
                cerebrals::sops.eq(&row.sops),
                cerebrals::updated_at.eq(row.updated_at),
            ))
            .execute(conn)?;
        if changed == 0 {
            return Err(conflict("the Cerebral was deleted meanwhile"));
        }
        Ok(())
    })
}

pub fn delete_cerebral(id: String) -> Write {
    op(move |conn| diesel::delete(cerebrals::table.find(&id)).execute(conn).map(|_| ()))
}
