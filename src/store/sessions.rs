//! SQL of a Cerebral's runtime state: session memory (`session_messages`),
//! the link from an SOP's escalation to its session (`session_escalations`),
//! and the hourly usage the daily token budget is read from (`tenant_usage`).

use diesel::prelude::*;
use switchboard_actors::{SessionEntry, SessionLink};

use super::schema::{session_escalations, session_messages, tenant_usage};
use super::writes::{op, Write};
use super::{Store, StoreError};

pub const HOUR_MS: i64 = 3_600_000;

/// One session as `zeroclaw sessions` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub cerebral_id: String,
    pub cerebral_name: Option<String>,
    pub session_id: String,
    pub messages: i64,
    pub last_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = session_messages)]
pub struct SessionMessageRow {
    pub id: String,
    pub tenant_id: String,
    pub cerebral_id: String,
    pub session_id: String,
    /// `user`, `assistant`, `expert` or `system`
    pub role: String,
    pub content: String,
    pub customer_id: Option<String>,
    pub execution_id: Option<String>,
    pub escalation_id: Option<String>,
    pub created_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = session_escalations)]
struct LinkRow {
    escalation_id: String,
    tenant_id: String,
    cerebral_id: String,
    session_id: String,
    execution_id: String,
    created_at: i64,
}

/// A time-ordered id: the order of a session's transcript.
pub fn memory_id() -> String {
    format!("mem_{}", uuid::Uuid::now_v7().simple())
}

impl Store {
    /// The last `limit` entries of a session, oldest first.
    pub async fn session_tail(
        &self,
        cerebral_id: String,
        session_id: String,
        limit: i64,
    ) -> Result<Vec<SessionMessageRow>, StoreError> {
        self.read(move |conn| {
            let mut rows: Vec<SessionMessageRow> = session_messages::table
                .filter(session_messages::cerebral_id.eq(&cerebral_id))
                .filter(session_messages::session_id.eq(&session_id))
                .order(session_messages::id.desc())
                .limit(limit)
                .select(SessionMessageRow::as_select())
                .load(conn)?;
            rows.reverse();
            Ok(rows)
        })
        .await
    }

    /// A session's whole transcript (at most `limit` entries from the start), oldest first.
    pub async fn session_transcript(
        &self,
        cerebral_id: String,
        session_id: String,
        limit: i64,
    ) -> Result<Vec<SessionMessageRow>, StoreError> {
        self.read(move |conn| {
            Ok(session_messages::table
                .filter(session_messages::cerebral_id.eq(&cerebral_id))
                .filter(session_messages::session_id.eq(&session_id))
                .order(session_messages::id.asc())
                .limit(limit)
                .select(SessionMessageRow::as_select())
                .load(conn)?)
        })
        .await
    }

    /// The tenant's most recent sessions, newest first.
    pub async fn recent_sessions(
        &self,
        tenant_id: String,
        limit: i64,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        use super::schema::cerebrals;
        use diesel::dsl::{count_star, max};
        self.read(move |conn| {
            let groups: Vec<(String, String, i64, Option<i64>)> = session_messages::table
                .filter(session_messages::tenant_id.eq(&tenant_id))
                .group_by((session_messages::cerebral_id, session_messages::session_id))
                .select((
                    session_messages::cerebral_id,
                    session_messages::session_id,
                    count_star(),
                    max(session_messages::created_at),
                ))
                .order(max(session_messages::created_at).desc())
                .limit(limit)
                .load(conn)?;
            let ids: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
            let names: std::collections::HashMap<String, String> = cerebrals::table
                .filter(cerebrals::id.eq_any(ids))
                .select((cerebrals::id, cerebrals::name))
                .load::<(String, String)>(conn)?
                .into_iter()
                .collect();
            Ok(groups
                .into_iter()
                .map(|(cerebral_id, session_id, messages, last_at)| SessionSummary {
                    cerebral_name: names.get(&cerebral_id).cloned(),
                    cerebral_id,
                    session_id,
                    messages,
                    last_at: last_at.unwrap_or(0),
                })
                .collect())
        })
        .await
    }

    /// Tokens the tenant used since `since_ms` (an hour boundary).
    pub async fn tokens_since(&self, tenant_id: String, since_ms: i64) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let sums: Vec<i64> = tenant_usage::table
                .filter(tenant_usage::tenant_id.eq(&tenant_id))
                .filter(tenant_usage::hour_start.ge(since_ms))
                .select(tenant_usage::tokens)
                .load(conn)?;
            Ok(sums.into_iter().map(|t| t.max(0) as u64).sum())
        })
        .await
    }
}

pub fn insert_message(row: SessionMessageRow) -> Write {
    op(move |conn| {
        crate::on_backend!(conn, |c| diesel::insert_into(session_messages::table).values(&row).execute(c))
            .map(|_| ())
    })
}

/// Adds a turn's messages and tokens (prompt and completion) to the tenant's hour.
pub fn count_usage(tenant_id: String, at_ms: i64, messages: i64, tokens_in: i64, tokens_out: i64) -> Write {
    let hour = at_ms - at_ms.rem_euclid(HOUR_MS);
    let tokens = tokens_in + tokens_out;
    op(move |conn| {
        crate::on_backend!(conn, |c| diesel::insert_into(tenant_usage::table)
            .values((
                tenant_usage::tenant_id.eq(&tenant_id),
                tenant_usage::hour_start.eq(hour),
                tenant_usage::messages.eq(messages),
                tenant_usage::tokens.eq(tokens),
                tenant_usage::tokens_input.eq(tokens_in),
                tenant_usage::tokens_output.eq(tokens_out),
            ))
            .on_conflict((tenant_usage::tenant_id, tenant_usage::hour_start))
            .do_update()
            .set((
                tenant_usage::messages.eq(tenant_usage::messages + messages),
                tenant_usage::tokens.eq(tenant_usage::tokens + tokens),
                tenant_usage::tokens_input.eq(tenant_usage::tokens_input + tokens_in),
                tenant_usage::tokens_output.eq(tenant_usage::tokens_output + tokens_out),
            ))
            .execute(c))
        .map(|_| ())
    })
}

pub fn link_session(link: &SessionLink) -> Write {
    let row = LinkRow {
        escalation_id: link.escalation_id.clone(),
        tenant_id: link.tenant_id.clone(),
        cerebral_id: link.cerebral_id.clone(),
        session_id: link.session_id.clone(),
        execution_id: link.execution_id.clone(),
        created_at: link.at_ms,
    };
    op(move |conn| {
        crate::on_backend!(conn, |c| diesel::insert_into(session_escalations::table).values(&row).execute(c))
            .map(|_| ())
    })
}

/// In the closing transaction: if the escalation came from a session, its
/// answer joins that session's memory. A session whose Cerebral was deleted
/// meanwhile has no memory left to join.
pub fn join_session(entry: &SessionEntry) -> Write {
    let entry = entry.clone();
    op(move |conn| {
        let link: Option<LinkRow> = session_escalations::table
            .find(&entry.escalation_id)
            .select(LinkRow::as_select())
            .first(conn)
            .optional()?;
        let Some(link) = link else { return Ok(()) };
        let cerebral_exists = super::schema::cerebrals::table
            .find(&link.cerebral_id)
            .select(super::schema::cerebrals::id)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if !cerebral_exists {
            return Ok(());
        }
        let row = SessionMessageRow {
            id: entry.id.clone(),
            tenant_id: link.tenant_id,
            cerebral_id: link.cerebral_id,
            session_id: link.session_id,
            role: entry.role.clone(),
            content: entry.content.clone(),
            customer_id: None,
            execution_id: Some(link.execution_id),
            escalation_id: Some(entry.escalation_id.clone()),
            created_at: entry.at_ms,
        };
        crate::on_backend!(conn, |c| diesel::insert_into(session_messages::table).values(&row).execute(c))
            .map(|_| ())
    })
}
