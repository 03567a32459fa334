//! SQL of the Escalation API's aggregates: `escalations`, `experts` and
//! `idempotency_keys`. Writes come from the actors as `Change`s (see
//! `events.rs`, the `Persistence` impl); reads serve lists, closed cases, the
//! portal's token lookup, usage figures, monitoring's expert names and the
//! start-up rebuild.

use std::collections::HashMap;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Double};
use serde_json::Value;
use switchboard_actors::model::{
    Domain, EscalationId, EscalationStatus, ExpertId, ExpertStatus, ExpertTier, Priority, TenantId,
};
use switchboard_actors::records::{
    Candidate, EscalationRecord, ExpertRecord, Feedback, FeedbackWrite, IdempotencyRecord, QuotaCheck,
    Resolution,
};

use super::schema::{escalations, experts, idempotency_keys, tenants};
use super::writes::{conflict, limited, op, Row, Write};
use super::{Store, StoreError};

#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = escalations)]
pub struct EscalationRow {
    pub id: String,
    pub tenant_id: String,
    pub domain: String,
    pub query: String,
    pub context: Option<String>,
    pub priority: String,
    pub status: String,
    pub output_schema: Option<String>,
    pub callback_url: Option<String>,
    pub metadata: Option<String>,
    pub task_type: Option<String>,
    pub candidates: String,
    pub sla_deadline: i64,
    pub created_at: i64,
    pub routed_at: Option<i64>,
    pub accepted_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub expert_id: Option<String>,
    pub excluded_experts: String,
    pub resolution: Option<String>,
    pub feedback_score: Option<f64>,
    pub feedback_comment: Option<String>,
    pub feedback_at: Option<i64>,
    pub feedback_version: i64,
    pub updated_at: i64,
}

/// Everything a transition may change; feedback has its own write.
#[derive(AsChangeset, Debug, Clone)]
#[diesel(table_name = escalations, treat_none_as_null = true)]
struct EscalationTransition {
    status: String,
    routed_at: Option<i64>,
    accepted_at: Option<i64>,
    resolved_at: Option<i64>,
    closed_at: Option<i64>,
    expert_id: Option<String>,
    excluded_experts: String,
    resolution: Option<String>,
    updated_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = experts)]
pub struct ExpertRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub email: String,
    pub domains: String,
    pub credentials: String,
    pub tier: String,
    pub status: String,
    pub max_concurrent: i32,
    pub token_hash: String,
    pub quality_sum: f64,
    pub quality_count: i64,
    pub resolution_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(AsChangeset, Debug, Clone)]
#[diesel(table_name = experts)]
struct ExpertProfileChange {
    name: String,
    email: String,
    domains: String,
    credentials: String,
    tier: String,
    status: String,
    max_concurrent: i32,
    token_hash: String,
    updated_at: i64,
}

#[derive(Queryable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub tenant_id: String,
    pub idem_key: String,
    pub request_hash: String,
    pub escalation_id: String,
    pub response: String,
    pub created_at: i64,
}

fn json_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

fn ids_text(ids: &[ExpertId]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

fn resolution_text(r: &Option<Resolution>) -> Option<String> {
    r.as_ref().and_then(|r| serde_json::to_string(r).ok())
}

impl From<&EscalationRecord> for EscalationRow {
    fn from(r: &EscalationRecord) -> Self {
        EscalationRow {
            id: r.id.to_string(),
            tenant_id: r.tenant.0.clone(),
            domain: r.domain.as_str().to_string(),
            query: r.query.clone(),
            context: json_text(&r.context),
            priority: r.priority.as_str().to_string(),
            status: r.status.as_str().to_string(),
            output_schema: json_text(&r.output_schema),
            callback_url: r.callback_url.clone(),
            metadata: json_text(&r.metadata),
            task_type: r.task_type.clone(),
            candidates: serde_json::to_string(&r.candidates).unwrap_or_else(|_| "[]".into()),
            sla_deadline: r.sla_deadline_ms,
            created_at: r.created_at_ms,
            routed_at: r.routed_at_ms,
            accepted_at: r.accepted_at_ms,
            resolved_at: r.resolved_at_ms,
            closed_at: r.closed_at_ms,
            expert_id: r.expert_id.map(|e| e.to_string()),
            excluded_experts: ids_text(&r.excluded),
            resolution: resolution_text(&r.resolution),
            feedback_score: r.feedback.as_ref().map(|f| f.score),
            feedback_comment: r.feedback.as_ref().and_then(|f| f.comment.clone()),
            feedback_at: r.feedback.as_ref().map(|f| f.at_ms),
            feedback_version: r.feedback_version,
            updated_at: r.updated_at_ms,
        }
    }
}

fn corrupt(what: &str, id: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Query(format!("stored {what} {id} is unreadable: {detail}"))
}

fn parse_json(text: &Option<String>, what: &str, id: &str) -> Result<Option<Value>, StoreError> {
    text.as_deref().map(serde_json::from_str).transpose().map_err(|e| corrupt(what, id, e))
}

impl TryFrom<EscalationRow> for EscalationRecord {
    type Error = StoreError;

    fn try_from(row: EscalationRow) -> Result<Self, StoreError> {
        let id = &row.id;
        let bad = |d: &dyn std::fmt::Display| corrupt("escalation", id, d);
        Ok(EscalationRecord {
            id: row.id.parse().map_err(|e| bad(&e))?,
            tenant: TenantId(row.tenant_id.clone()),
            domain: Domain::parse(&row.domain).map_err(|e| bad(&e))?,
            query: row.query.clone(),
            context: parse_json(&row.context, "escalation", id)?,
            priority: Priority::parse(&row.priority).ok_or_else(|| bad(&"priority"))?,
            status: EscalationStatus::parse(&row.status).ok_or_else(|| bad(&"status"))?,
            output_schema: parse_json(&row.output_schema, "escalation", id)?,
            callback_url: row.callback_url.clone(),
            metadata: parse_json(&row.metadata, "escalation", id)?,
            task_type: row.task_type.clone(),
            candidates: serde_json::from_str::<Vec<Candidate>>(&row.candidates).map_err(|e| bad(&e))?,
            sla_deadline_ms: row.sla_deadline,
            created_at_ms: row.created_at,
            routed_at_ms: row.routed_at,
            accepted_at_ms: row.accepted_at,
            resolved_at_ms: row.resolved_at,
            closed_at_ms: row.closed_at,
            expert_id: row.expert_id.as_deref().map(str::parse).transpose().map_err(|e| bad(&e))?,
            excluded: serde_json::from_str(&row.excluded_experts).map_err(|e| bad(&e))?,
            resolution: row
                .resolution
                .as_deref()
                .map(serde_json::from_str::<Resolution>)
                .transpose()
                .map_err(|e| bad(&e))?,
            feedback: row.feedback_score.map(|score| Feedback {
                score,
                comment: row.feedback_comment.clone(),
                at_ms: row.feedback_at.unwrap_or(row.updated_at),
            }),
            feedback_version: row.feedback_version,
            updated_at_ms: row.updated_at,
        })
    }
}

impl From<&ExpertRecord> for ExpertRow {
    fn from(r: &ExpertRecord) -> Self {
        ExpertRow {
            id: r.id.to_string(),
            tenant_id: r.tenant.0.clone(),
            name: r.name.clone(),
            email: r.email.clone(),
            domains: serde_json::to_string(&r.domains).unwrap_or_else(|_| "[]".into()),
            credentials: serde_json::to_string(&r.credentials).unwrap_or_else(|_| "[]".into()),
            tier: r.tier.as_str().to_string(),
            status: r.status.as_str().to_string(),
            max_concurrent: r.max_concurrent.min(i32::MAX as u32) as i32,
            token_hash: r.token_hash.clone(),
            quality_sum: r.quality_sum,
            quality_count: r.quality_count,
            resolution_count: r.resolution_count,
            created_at: r.created_at_ms,
            updated_at: r.updated_at_ms,
        }
    }
}

impl ExpertRow {
    /// `platform` is whether the row's tenant is the operator tenant.
    pub fn into_record(self, platform: bool) -> Result<ExpertRecord, StoreError> {
        let id = &self.id;
        let bad = |d: &dyn std::fmt::Display| corrupt("expert", id, d);
        Ok(ExpertRecord {
            id: self.id.parse().map_err(|e| bad(&e))?,
            tenant: TenantId(self.tenant_id.clone()),
            platform,
            name: self.name.clone(),
            email: self.email.clone(),
            domains: serde_json::from_str(&self.domains).map_err(|e| bad(&e))?,
            credentials: serde_json::from_str(&self.credentials).map_err(|e| bad(&e))?,
            tier: ExpertTier::parse(&self.tier).ok_or_else(|| bad(&"tier"))?,
            status: ExpertStatus::parse(&self.status).ok_or_else(|| bad(&"status"))?,
            max_concurrent: self.max_concurrent.max(0) as u32,
            token_hash: self.token_hash.clone(),
            quality_sum: self.quality_sum,
            quality_count: self.quality_count,
            resolution_count: self.resolution_count,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
        })
    }
}

// ---- writes (from the actors' Changes) ----

pub fn insert_escalation(r: &EscalationRecord) -> Write {
    Write::Row(Row::Escalation(Box::new(EscalationRow::from(r))))
}

pub fn update_escalation(r: &EscalationRecord) -> Write {
    let id = r.id.to_string();
    let change = EscalationTransition {
        status: r.status.as_str().to_string(),
        routed_at: r.routed_at_ms,
        accepted_at: r.accepted_at_ms,
        resolved_at: r.resolved_at_ms,
        closed_at: r.closed_at_ms,
        expert_id: r.expert_id.map(|e| e.to_string()),
        excluded_experts: ids_text(&r.excluded),
        resolution: resolution_text(&r.resolution),
        updated_at: r.updated_at_ms,
    };
    op(move |conn| {
        let n = diesel::update(escalations::table.find(&id)).set(change.clone()).execute(conn)?;
        if n == 0 {
            return Err(conflict(format!("escalation {id} does not exist")));
        }
        Ok(())
    })
}

pub fn insert_expert(r: &ExpertRecord) -> Write {
    let row = ExpertRow::from(r);
    op(move |conn| diesel::insert_into(experts::table).values(row.clone()).execute(conn).map(|_| ()))
}

pub fn update_expert(r: &ExpertRecord) -> Write {
    let id = r.id.to_string();
    let row = ExpertRow::from(r);
    let change = ExpertProfileChange {
        name: row.name,
        email: row.email,
        domains: row.domains,
        credentials: row.credentials,
        tier: row.tier,
        status: row.status,
        max_concurrent: row.max_concurrent,
        token_hash: row.token_hash,
        updated_at: row.updated_at,
    };
    op(move |conn| diesel::update(experts::table.find(&id)).set(change.clone()).execute(conn).map(|_| ()))
}

pub fn count_resolution(expert: ExpertId) -> Write {
    let id = expert.to_string();
    op(move |conn| {
        diesel::update(experts::table.find(&id))
            .set(experts::resolution_count.eq(experts::resolution_count + 1))
            .execute(conn)
            .map(|_| ())
    })
}

pub fn record_feedback(w: &FeedbackWrite) -> Write {
    let w = w.clone();
    op(move |conn| {
        let id = w.escalation.to_string();
        let n = diesel::update(
            escalations::table.find(&id).filter(escalations::feedback_version.eq(w.expected_version)),
        )
        .set((
            escalations::feedback_score.eq(w.feedback.score),
            escalations::feedback_comment.eq(w.feedback.comment.clone()),
            escalations::feedback_at.eq(w.feedback.at_ms),
            escalations::feedback_version.eq(w.expected_version + 1),
            escalations::updated_at.eq(w.feedback.at_ms),
        ))
        .execute(conn)?;
        if n == 0 {
            return Err(conflict("the feedback of this escalation changed meanwhile; send it again"));
        }
        diesel::update(experts::table.find(w.expert.to_string()))
            .set((experts::quality_sum.eq(w.quality_sum), experts::quality_count.eq(w.quality_count)))
            .execute(conn)
            .map(|_| ())
    })
}

pub fn record_idempotency(r: &IdempotencyRecord) -> Write {
    let row = IdempotencyRow {
        tenant_id: r.tenant.0.clone(),
        idem_key: r.key.clone(),
        request_hash: r.request_hash.clone(),
        escalation_id: r.escalation.to_string(),
        response: r.response.to_string(),
        created_at: r.at_ms,
    };
    op(move |conn| {
        // An expired record of the same key gives way to the new one.
        diesel::delete(
            idempotency_keys::table
                .find((&row.tenant_id, &row.idem_key))
                .filter(idempotency_keys::created_at.lt(row.created_at - IDEMPOTENCY_TTL_MS)),
        )
        .execute(conn)?;
        diesel::insert_into(idempotency_keys::table).values(row.clone()).execute(conn).map(|_| ())
    })
}

/// Refuses the request when the tenant has reached the limit. On PostgreSQL
/// the tenant's row is locked first, so two transactions cannot both count
/// below the limit and both insert; SQLite has a single writer anyway.
pub fn check_quota(q: &QuotaCheck) -> Write {
    let q = q.clone();
    op(move |conn| {
        if let crate::store::DbConn::Postgres(pg) = conn {
            tenants::table
                .find(&q.tenant.0)
                .select(tenants::id)
                .for_update()
                .first::<String>(pg)
                .optional()?;
        }
        let n: i64 = escalations::table
            .filter(escalations::tenant_id.eq(&q.tenant.0))
            .filter(escalations::created_at.ge(q.since_ms))
            .count()
            .get_result(conn)?;
        if n.max(0) as u64 >= q.limit {
            return Err(limited(q.message.clone(), q.retry_after_secs));
        }
        Ok(())
    })
}

/// How long an `Idempotency-Key` replays its first answer.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// Filters of the Escalation API's lists.
#[derive(Debug, Clone, Default)]
pub struct EscalationFilter {
    pub status: Option<EscalationStatus>,
    pub domain: Option<Domain>,
    pub limit: i64,
    pub offset: i64,
}

/// Filters of `GET /experts`.
#[derive(Debug, Clone, Default)]
pub struct ExpertFilter {
    pub domain: Option<Domain>,
    pub status: Option<ExpertStatus>,
    pub limit: i64,
}

/// `LIKE` pattern matching `"slug"` inside a JSON array of slugs.
fn domain_pattern(domain: &Domain) -> String {
    let mut p = String::from("%\"");
    for c in domain.as_str().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str("\"%");
    p
}

impl Store {
    pub async fn escalation(&self, id: EscalationId) -> Result<Option<EscalationRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            let row: Option<EscalationRow> =
                escalations::table.find(id).select(EscalationRow::as_select()).first(conn).optional()?;
            row.map(EscalationRecord::try_from).transpose()
        })
        .await
    }

    /// A tenant's escalations, newest first.
    pub async fn escalations_of_tenant(
        &self,
        tenant: TenantId,
        filter: EscalationFilter,
    ) -> Result<Vec<EscalationRecord>, StoreError> {
        self.read(move |conn| {
            let mut q = escalations::table
                .filter(escalations::tenant_id.eq(tenant.0))
                .select(EscalationRow::as_select())
                .into_boxed();
            if let Some(s) = filter.status {
                q = q.filter(escalations::status.eq(s.as_str()));
            }
            if let Some(d) = filter.domain {
                q = q.filter(escalations::domain.eq(d.as_str().to_string()));
            }
            let rows: Vec<EscalationRow> = q
                .order((escalations::created_at.desc(), escalations::id.desc()))
                .limit(filter.limit)
                .offset(filter.offset)
                .load(conn)?;
            rows.into_iter().map(EscalationRecord::try_from).collect()
        })
        .await
    }

    /// An expert's cases (routed to, in review with, or resolved by), newest first.
    pub async fn escalations_of_expert(
        &self,
        expert: ExpertId,
        status: Option<EscalationStatus>,
        limit: i64,
    ) -> Result<Vec<EscalationRecord>, StoreError> {
        self.read(move |conn| {
            let mut q = escalations::table
                .filter(escalations::expert_id.eq(expert.to_string()))
                .select(EscalationRow::as_select())
                .into_boxed();
            if let Some(s) = status {
                q = q.filter(escalations::status.eq(s.as_str()));
            }
            let rows: Vec<EscalationRow> =
                q.order((escalations::created_at.desc(), escalations::id.desc())).limit(limit).load(conn)?;
            rows.into_iter().map(EscalationRecord::try_from).collect()
        })
        .await
    }

    /// Every open case, for the start-up rebuild.
    pub async fn open_escalations(&self) -> Result<Vec<EscalationRecord>, StoreError> {
        self.read(move |conn| {
            let open = ["pending", "routed", "in_review"];
            let rows: Vec<EscalationRow> = escalations::table
                .filter(escalations::status.eq_any(open))
                .select(EscalationRow::as_select())
                .load(conn)?;
            rows.into_iter().map(EscalationRecord::try_from).collect()
        })
        .await
    }

    /// (created since `day_start_ms`, created since `month_start_ms`) for a tenant.
    pub async fn escalation_counts(
        &self,
        tenant: TenantId,
        day_start_ms: i64,
        month_start_ms: i64,
    ) -> Result<(u64, u64), StoreError> {
        self.read(move |conn| {
            let base = escalations::table.filter(escalations::tenant_id.eq(tenant.0.clone()));
            let month: i64 =
                base.filter(escalations::created_at.ge(month_start_ms)).count().get_result(conn)?;
            let day: i64 = escalations::table
                .filter(escalations::tenant_id.eq(tenant.0))
                .filter(escalations::created_at.ge(day_start_ms))
                .count()
                .get_result(conn)?;
            Ok((day.max(0) as u64, month.max(0) as u64))
        })
        .await
    }

    /// Mean seconds from creation to resolution over the tenant's cases resolved since `since_ms`.
    pub async fn avg_resolution_secs(
        &self,
        tenant: TenantId,
        since_ms: i64,
    ) -> Result<Option<f64>, StoreError> {
        self.read(move |conn| {
            let pairs: Vec<(i64, Option<i64>)> = escalations::table
                .filter(escalations::tenant_id.eq(tenant.0))
                .filter(escalations::status.eq("resolved"))
                .filter(escalations::resolved_at.ge(since_ms))
                .select((escalations::created_at, escalations::resolved_at))
                .load(conn)?;
            let secs: Vec<f64> =
                pairs.iter().filter_map(|(c, r)| r.map(|r| (r - c) as f64 / 1000.0)).collect();
            Ok((!secs.is_empty()).then(|| secs.iter().sum::<f64>() / secs.len() as f64))
        })
        .await
    }

    /// The live record of an `Idempotency-Key`: (request hash, first response).
    pub async fn idempotency(
        &self,
        tenant: TenantId,
        key: String,
        now_ms: i64,
    ) -> Result<Option<(String, Value)>, StoreError> {
        self.read(move |conn| {
            let row: Option<IdempotencyRow> = idempotency_keys::table
                .find((tenant.0, key))
                .filter(idempotency_keys::created_at.ge(now_ms - IDEMPOTENCY_TTL_MS))
                .first(conn)
                .optional()?;
            row.map(|r| {
                let body = serde_json::from_str(&r.response)
                    .map_err(|e| corrupt("idempotency key", &r.idem_key, e))?;
                Ok((r.request_hash, body))
            })
            .transpose()
        })
        .await
    }

    pub async fn expert(&self, id: ExpertId) -> Result<Option<ExpertRow>, StoreError> {
        self.read(move |conn| {
            Ok(experts::table.find(id.to_string()).select(ExpertRow::as_select()).first(conn).optional()?)
        })
        .await
    }

    pub async fn expert_by_token_hash(&self, hash: String) -> Result<Option<ExpertRow>, StoreError> {
        self.read(move |conn| {
            Ok(experts::table
                .filter(experts::token_hash.eq(hash))
                .select(ExpertRow::as_select())
                .first(conn)
                .optional()?)
        })
        .await
    }

    /// Every expert, for the start-up rebuild.
    pub async fn all_experts(&self) -> Result<Vec<ExpertRow>, StoreError> {
        self.read(move |conn| Ok(experts::table.select(ExpertRow::as_select()).load(conn)?)).await
    }

    /// The names of these experts (a page of monitoring's most loaded ones);
    /// an id with no row is left out.
    pub async fn expert_names(&self, ids: Vec<ExpertId>) -> Result<HashMap<ExpertId, String>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.read(move |conn| {
            let ids: Vec<String> = ids.iter().map(ExpertId::to_string).collect();
            let rows: Vec<(String, String)> = experts::table
                .filter(experts::id.eq_any(ids))
                .select((experts::id, experts::name))
                .load(conn)?;
            Ok(rows.into_iter().filter_map(|(id, name)| Some((id.parse().ok()?, name))).collect())
        })
        .await
    }

    /// Experts of `tenants` (the caller's and the operator's), best quality
    /// first (no score last), then oldest first.
    pub async fn experts_of(
        &self,
        tenants: Vec<TenantId>,
        filter: ExpertFilter,
    ) -> Result<Vec<ExpertRow>, StoreError> {
        self.read(move |conn| {
            let ids: Vec<String> = tenants.into_iter().map(|t| t.0).collect();
            let mut q = experts::table
                .filter(experts::tenant_id.eq_any(ids))
                .select(ExpertRow::as_select())
                .into_boxed();
            if let Some(s) = filter.status {
                q = q.filter(experts::status.eq(s.as_str()));
            }
            if let Some(d) = &filter.domain {
                q = q.filter(experts::domains.like(domain_pattern(d)).escape('\\'));
            }
            let rows = q
                .order((
                    sql::<Bool>("quality_count = 0").asc(),
                    sql::<Double>(
                        "quality_sum / (CASE WHEN quality_count = 0 THEN 1 ELSE quality_count END)",
                    )
                    .desc(),
                    experts::created_at.asc(),
                    experts::id.asc(),
                ))
                .limit(filter.limit)
                .load(conn)?;
            Ok(rows)
        })
        .await
    }

    /// Every domain the experts of `tenants` declare.
    pub async fn declared_domains(&self, tenants: Vec<TenantId>) -> Result<Vec<Domain>, StoreError> {
        self.read(move |conn| {
            let ids: Vec<String> = tenants.into_iter().map(|t| t.0).collect();
            let lists: Vec<String> = experts::table
                .filter(experts::tenant_id.eq_any(ids))
                .select(experts::domains)
                .distinct()
                .load(conn)?;
            let mut all: Vec<Domain> =
                lists.iter().filter_map(|l| serde_json::from_str::<Vec<Domain>>(l).ok()).flatten().collect();
            all.sort();
            all.dedup();
            Ok(all)
        })
        .await
    }
}
