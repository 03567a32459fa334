//! Channels: reads and writes of `channels`. A row holds the config without
//! its sensitive fields (JSON text) and those fields apart, sealed with the
//! secret box (`secrets_sealed`, null when there are none); splitting and
//! sealing is the caller's (`http::platform::channels`).

use diesel::prelude::*;

use super::schema::{channels, tenants};
use super::writes::{conflict, op, Write};
use super::{Store, StoreError};

#[derive(Queryable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = channels)]
pub struct ChannelRow {
    /// `ch_` + a time-ordered suffix.
    pub id: String,
    pub tenant_id: String,
    /// A lowercase slug: `telegram`, `slack`, ...
    pub kind: String,
    /// JSON object: the config without its sensitive fields.
    pub config: String,
    /// The sealed JSON object of the sensitive fields; `None` when there are none.
    pub secrets_sealed: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What [`update_channel_if_unchanged`] refuses with when the row changed (or
/// went) since it was read: the caller reads again and retries, or answers 404.
pub const CHANGED_MEANWHILE: &str = "the channel was changed meanwhile";

// ---- writes ----------------------------------------------------------------

/// Inserts a channel; a tenant deleted meanwhile is a conflict (not a
/// foreign-key failure).
pub fn insert_channel(row: ChannelRow) -> Write {
    op(move |c| {
        let tenant = tenants::table.find(&row.tenant_id).count().get_result::<i64>(c)?;
        if tenant == 0 {
            return Err(conflict("the tenant was deleted meanwhile"));
        }
        diesel::insert_into(channels::table).values(&row).execute(c).map(drop)
    })
}

/// Replaces a channel's config, sealed secrets and `enabled`, but only if the
/// row still holds what the caller read (`seen`): a concurrent update in
/// between would otherwise be lost by the caller's read-merge-write. Refuses
/// with [`CHANGED_MEANWHILE`] when it does not (or is gone).
pub fn update_channel_if_unchanged(seen: ChannelRow, next: ChannelRow) -> Write {
    op(move |c| {
        let target = channels::table
            .filter(channels::id.eq(&seen.id))
            .filter(channels::tenant_id.eq(&seen.tenant_id))
            .filter(channels::config.eq(&seen.config))
            .filter(channels::enabled.eq(seen.enabled))
            .filter(channels::updated_at.eq(seen.updated_at));
        let changed = match &seen.secrets_sealed {
            Some(sealed) => diesel::update(target.filter(channels::secrets_sealed.eq(sealed)))
                .set((
                    channels::config.eq(&next.config),
                    channels::secrets_sealed.eq(&next.secrets_sealed),
                    channels::enabled.eq(next.enabled),
                    channels::updated_at.eq(next.updated_at),
                ))
                .execute(c)?,
            None => diesel::update(target.filter(channels::secrets_sealed.is_null()))
                .set((
                    channels::config.eq(&next.config),
                    channels::secrets_sealed.eq(&next.secrets_sealed),
                    channels::enabled.eq(next.enabled),
                    channels::updated_at.eq(next.updated_at),
                ))
                .execute(c)?,
        };
        if changed == 0 {
            return Err(conflict(CHANGED_MEANWHILE));
        }
        Ok(())
    })
}

/// Deletes a tenant's channel; one already gone is not an error.
pub fn delete_channel(tenant_id: String, channel_id: String) -> Write {
    op(move |c| {
        diesel::delete(
            channels::table.filter(channels::id.eq(&channel_id)).filter(channels::tenant_id.eq(&tenant_id)),
        )
        .execute(c)
        .map(drop)
    })
}

// ---- reads -----------------------------------------------------------------

impl Store {
    /// The tenant's channels, oldest first.
    pub async fn channels_of_tenant(&self, tenant_id: &str) -> Result<Vec<ChannelRow>, StoreError> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            Ok(channels::table
                .filter(channels::tenant_id.eq(tenant_id))
                .order((channels::created_at.asc(), channels::id.asc()))
                .load(c)?)
        })
        .await
    }

    /// One channel of the tenant; another tenant's is `None` like a missing one.
    pub async fn channel(&self, tenant_id: &str, channel_id: &str) -> Result<Option<ChannelRow>, StoreError> {
        let (tenant_id, channel_id) = (tenant_id.to_string(), channel_id.to_string());
        self.read(move |c| {
            Ok(channels::table
                .filter(channels::id.eq(channel_id))
                .filter(channels::tenant_id.eq(tenant_id))
                .first(c)
                .optional()?)
        })
        .await
    }
}
