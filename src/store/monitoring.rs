//! SQL of monitoring: fleet counts, hourly usage (`tenant_usage`), pages of
//! the audit log, and the sampled resource figures of running containers
//! (`tenant_resources`, written by `agents::resources`).

use diesel::prelude::*;

use super::identity::AuditRow;
use super::schema::{audit_entries, channels, tenant_resources, tenant_usage, tenants, users};
use super::writes::{op, Write};
use super::{Store, StoreError};

/// Tenants per status, users and channels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetCounts {
    /// `(status, tenants)` for every status that has at least one tenant.
    pub tenants_by_status: Vec<(String, i64)>,
    pub users: i64,
    pub channels: i64,
}

impl FleetCounts {
    pub fn tenants(&self) -> i64 {
        self.tenants_by_status.iter().map(|(_, n)| n).sum()
    }

    pub fn with_status(&self, status: &str) -> i64 {
        self.tenants_by_status.iter().filter(|(s, _)| s == status).map(|(_, n)| n).sum()
    }
}

/// One tenant's hour of usage.
#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = tenant_usage)]
pub struct UsageRow {
    pub tenant_id: String,
    pub hour_start: i64,
    pub messages: i64,
    pub tokens_input: i64,
    pub tokens_output: i64,
}

/// Which audit entries a page shows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// An action name, matched exactly or as the last dotted segment (`deploy`
    /// matches `tenant.deploy`).
    pub action: Option<String>,
    /// Entries created at or after this time (epoch ms).
    pub since_ms: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// One container's figures at one sample; null where the runtime has none.
#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = tenant_resources, treat_none_as_default_value = false)]
pub struct ResourceRow {
    pub tenant_id: String,
    pub recorded_at: i64,
    /// `embedded` or `process`
    pub runtime: String,
    pub cpu_pct: Option<f64>,
    pub mem_bytes: Option<i64>,
    pub mem_limit: Option<i64>,
    pub disk_bytes: Option<i64>,
    pub net_in: Option<i64>,
    pub net_out: Option<i64>,
    pub pids: Option<i64>,
}

/// Does `action` match what the audit filter asked for?
pub fn action_matches(action: &str, wanted: &str) -> bool {
    action == wanted || action.rsplit_once('.').is_some_and(|(_, last)| last == wanted)
}

// ---- writes ----------------------------------------------------------------

/// One tick's samples. A tenant deleted since it was sampled is skipped, and a
/// sample already stored for the same instant is kept.
pub fn record_resources(rows: Vec<ResourceRow>) -> Write {
    op(move |conn| {
        let ids: Vec<&str> = rows.iter().map(|r| r.tenant_id.as_str()).collect();
        let live: Vec<String> =
            tenants::table.filter(tenants::id.eq_any(&ids)).select(tenants::id).load(conn)?;
        let rows: Vec<&ResourceRow> = rows.iter().filter(|r| live.contains(&r.tenant_id)).collect();
        if rows.is_empty() {
            return Ok(());
        }
        crate::on_backend!(conn, |c| diesel::insert_into(tenant_resources::table)
            .values(rows.clone())
            .on_conflict_do_nothing()
            .execute(c))
        .map(drop)
    })
}

/// Forgets samples recorded before `before_ms`.
pub fn prune_resources(before_ms: i64) -> Write {
    op(move |c| {
        diesel::delete(tenant_resources::table.filter(tenant_resources::recorded_at.lt(before_ms)))
            .execute(c)
            .map(drop)
    })
}

// ---- reads -----------------------------------------------------------------

impl Store {
    pub async fn fleet_counts(&self) -> Result<FleetCounts, StoreError> {
        self.read(|c| {
            let tenants_by_status = tenants::table
                .group_by(tenants::status)
                .select((tenants::status, diesel::dsl::count_star()))
                .order(tenants::status.asc())
                .load::<(String, i64)>(c)?;
            let users = users::table.count().get_result(c)?;
            let channels = channels::table.count().get_result(c)?;
            Ok(FleetCounts { tenants_by_status, users, channels })
        })
        .await
    }

    /// `(status, runtime, tenants)` for every pair that has at least one tenant.
    pub async fn tenants_by_state(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.read(|c| {
            Ok(tenants::table
                .group_by((tenants::status, tenants::runtime))
                .select((tenants::status, tenants::runtime, diesel::dsl::count_star()))
                .order((tenants::status.asc(), tenants::runtime.asc()))
                .load::<(String, String, i64)>(c)?)
        })
        .await
    }

    /// Hours of usage from `since_ms` on, of `tenants` (every tenant when
    /// `None`), by hour then tenant.
    pub async fn usage_hours(
        &self,
        tenants: Option<Vec<String>>,
        since_ms: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        if tenants.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        self.read(move |c| {
            let mut q = tenant_usage::table
                .filter(tenant_usage::hour_start.ge(since_ms))
                .select(UsageRow::as_select())
                .into_boxed();
            if let Some(ids) = tenants {
                q = q.filter(tenant_usage::tenant_id.eq_any(ids));
            }
            Ok(q.order((tenant_usage::hour_start.asc(), tenant_usage::tenant_id.asc())).load(c)?)
        })
        .await
    }

    /// One page of the audit log, newest first, and how many entries match in all.
    pub async fn audit_page(&self, filter: AuditFilter) -> Result<(Vec<AuditRow>, i64), StoreError> {
        self.read(move |c| {
            // The action names are few (and indexed): find those that match, then filter on them.
            let actions: Option<Vec<String>> = match &filter.action {
                None => None,
                Some(wanted) => {
                    let names: Vec<String> =
                        audit_entries::table.select(audit_entries::action).distinct().load(c)?;
                    Some(names.into_iter().filter(|a| action_matches(a, wanted)).collect())
                }
            };
            if actions.as_ref().is_some_and(Vec::is_empty) {
                return Ok((Vec::new(), 0));
            }
            let matching = || {
                let mut q = audit_entries::table.into_boxed();
                if let Some(names) = actions.clone() {
                    q = q.filter(audit_entries::action.eq_any(names));
                }
                if let Some(since) = filter.since_ms {
                    q = q.filter(audit_entries::created_at.ge(since));
                }
                q
            };
            let total: i64 = matching().count().get_result(c)?;
            let rows: Vec<AuditRow> = matching()
                .order((audit_entries::created_at.desc(), audit_entries::id.desc()))
                .limit(filter.limit)
                .offset(filter.offset)
                .load(c)?;
            Ok((rows, total))
        })
        .await
    }

    /// The latest sample of every tenant that has one, by tenant id. One
    /// index seek per tenant: a tenant's samples are many, tenants are fewer.
    pub async fn latest_resources(&self) -> Result<Vec<ResourceRow>, StoreError> {
        self.read(|c| {
            let ids: Vec<String> = tenants::table.select(tenants::id).order(tenants::id.asc()).load(c)?;
            let mut latest = Vec::new();
            for id in ids {
                if let Some(row) = latest_of(c, &id)? {
                    latest.push(row);
                }
            }
            Ok(latest)
        })
        .await
    }

    /// The tenant's latest sample.
    pub async fn latest_resource(&self, tenant_id: &str) -> Result<Option<ResourceRow>, StoreError> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| Ok(latest_of(c, &tenant_id)?)).await
    }

    /// `(recorded_at, cpu_pct, mem_bytes)` of the tenant's samples from `since_ms` on, oldest first.
    pub async fn resource_history(
        &self,
        tenant_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, Option<f64>, Option<i64>)>, StoreError> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            Ok(tenant_resources::table
                .filter(tenant_resources::tenant_id.eq(tenant_id))
                .filter(tenant_resources::recorded_at.ge(since_ms))
                .order(tenant_resources::recorded_at.asc())
                .select((
                    tenant_resources::recorded_at,
                    tenant_resources::cpu_pct,
                    tenant_resources::mem_bytes,
                ))
                .load(c)?)
        })
        .await
    }
}

fn latest_of(c: &mut super::DbConn, tenant_id: &str) -> QueryResult<Option<ResourceRow>> {
    tenant_resources::table
        .filter(tenant_resources::tenant_id.eq(tenant_id))
        .order(tenant_resources::recorded_at.desc())
        .select(ResourceRow::as_select())
        .first(c)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_matches_itself_or_its_last_segment() {
        assert!(action_matches("tenant.deploy", "tenant.deploy"));
        assert!(action_matches("tenant.deploy", "deploy"));
        assert!(action_matches("deploy", "deploy"));
        assert!(!action_matches("tenant.deploy", "tenant"));
        assert!(!action_matches("tenant.redeploy", "deploy"));
        assert!(!action_matches("a.tenant.deploy", "tenant.deploy"));
    }
}
