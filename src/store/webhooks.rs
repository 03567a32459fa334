//! SQL of the webhook engine: `webhooks` (the Agent API's subscriptions) and
//! `webhook_deliveries` (every event owed to a URL). Deliveries are written by
//! the actors as `Change`s; subscriptions by the `/v1/webhooks` handlers.
//! Monitoring reads deliveries across tenants (counts, the newest ones).

use diesel::prelude::*;
use switchboard_actors::model::{EscalationId, TenantId};
use switchboard_actors::records::{DeliveryRecord, DeliveryStatus};

use super::schema::{webhook_deliveries, webhooks};
use super::writes::{op, Row, Write};
use super::{now_ms, Store, StoreError};

#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub tenant_id: String,
    pub escalation_id: Option<String>,
    pub subscription_id: Option<String>,
    pub event: String,
    pub url: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an attempt changes.
#[derive(AsChangeset, Debug, Clone)]
#[diesel(table_name = webhook_deliveries, treat_none_as_null = true)]
struct DeliveryAttempt {
    status: String,
    attempts: i32,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    next_attempt_at: Option<i64>,
    delivered_at: Option<i64>,
    updated_at: i64,
}

impl From<&DeliveryRecord> for DeliveryRow {
    fn from(d: &DeliveryRecord) -> Self {
        DeliveryRow {
            id: d.id.clone(),
            tenant_id: d.tenant_id.0.clone(),
            escalation_id: d.escalation_id.map(|e| e.to_string()),
            subscription_id: d.subscription_id.clone(),
            event: d.event.clone(),
            url: d.url.clone(),
            payload: d.payload.clone(),
            status: d.status.as_str().to_string(),
            attempts: d.attempts as i32,
            last_status_code: d.last_status_code.map(i32::from),
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at_ms,
            delivered_at: d.delivered_at_ms,
            created_at: d.created_at_ms,
            updated_at: now_ms(),
        }
    }
}

impl TryFrom<DeliveryRow> for DeliveryRecord {
    type Error = StoreError;

    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Query(format!("webhook delivery {} has a bad {what}", r.id));
        Ok(DeliveryRecord {
            status: DeliveryStatus::parse(&r.status).ok_or_else(|| bad("status"))?,
            escalation_id: r
                .escalation_id
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|_| bad("escalation id"))?,
            last_status_code: r
                .last_status_code
                .map(u16::try_from)
                .transpose()
                .map_err(|_| bad("status code"))?,
            attempts: u32::try_from(r.attempts).map_err(|_| bad("attempt count"))?,
            id: r.id,
            tenant_id: TenantId(r.tenant_id),
            subscription_id: r.subscription_id,
            event: r.event,
            url: r.url,
            payload: r.payload,
            last_error: r.last_error,
            next_attempt_at_ms: r.next_attempt_at,
            delivered_at_ms: r.delivered_at,
            created_at_ms: r.created_at,
        })
    }
}

pub fn insert_delivery(d: &DeliveryRecord) -> Write {
    Write::Row(Row::Delivery(Box::new(DeliveryRow::from(d))))
}

pub fn update_delivery(d: &DeliveryRecord) -> Write {
    let id = d.id.clone();
    let row = DeliveryRow::from(d);
    let change = DeliveryAttempt {
        status: row.status,
        attempts: row.attempts,
        last_status_code: row.last_status_code,
        last_error: row.last_error,
        next_attempt_at: row.next_attempt_at,
        delivered_at: row.delivered_at,
        updated_at: row.updated_at,
    };
    op(move |conn| {
        diesel::update(webhook_deliveries::table.find(&id)).set(change.clone()).execute(conn).map(|_| ())
    })
}

/// A delivery as monitoring lists it: everything but its payload.
#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryListing {
    pub id: String,
    pub tenant_id: String,
    pub escalation_id: Option<String>,
    pub subscription_id: Option<String>,
    pub event: String,
    pub url: String,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

/// A `/v1/webhooks` subscription as stored: its secret sealed.
#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// JSON array of event names.
    pub events: String,
    pub secret_sealed: String,
    pub secret_hint: String,
    pub created_at: i64,
}

impl Store {
    /// Deliveries about one escalation of `tenant`, oldest first.
    pub async fn deliveries_of_escalation(
        &self,
        tenant: TenantId,
        escalation: EscalationId,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let escalation = escalation.to_string();
        self.read(move |conn| {
            let rows: Vec<DeliveryRow> = webhook_deliveries::table
                .filter(webhook_deliveries::escalation_id.eq(escalation))
                .filter(webhook_deliveries::tenant_id.eq(tenant.0))
                .order((webhook_deliveries::created_at.asc(), webhook_deliveries::id.asc()))
                .select(DeliveryRow::as_select())
                .load(conn)?;
            rows.into_iter().map(DeliveryRecord::try_from).collect()
        })
        .await
    }

    /// Every delivery still owed an attempt, for the start-up rebuild.
    pub async fn open_deliveries(&self) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read(move |conn| {
            let rows: Vec<DeliveryRow> = webhook_deliveries::table
                .filter(webhook_deliveries::status.eq_any(["pending", "retrying"]))
                .order((webhook_deliveries::created_at.asc(), webhook_deliveries::id.asc()))
                .select(DeliveryRow::as_select())
                .load(conn)?;
            rows.into_iter().map(DeliveryRecord::try_from).collect()
        })
        .await
    }

    /// How many deliveries of every tenant are in each status; a status
    /// with none is absent.
    pub async fn delivery_counts(&self) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        self.read(move |conn| {
            let rows: Vec<(String, i64)> = webhook_deliveries::table
                .group_by(webhook_deliveries::status)
                .select((webhook_deliveries::status, diesel::dsl::count_star()))
                .load(conn)?;
            rows.into_iter()
                .map(|(status, n)| {
                    DeliveryStatus::parse(&status)
                        .map(|s| (s, n))
                        .ok_or_else(|| StoreError::Query(format!("a webhook delivery has status {status:?}")))
                })
                .collect()
        })
        .await
    }

    /// The newest `limit` deliveries of every tenant (ids are time-ordered,
    /// so they break ties the same way), optionally of one status.
    pub async fn newest_deliveries(
        &self,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<DeliveryListing>, StoreError> {
        self.read(move |conn| {
            let mut q = webhook_deliveries::table.select(DeliveryListing::as_select()).into_boxed();
            if let Some(s) = status {
                q = q.filter(webhook_deliveries::status.eq(s.as_str()));
            }
            Ok(q.order((webhook_deliveries::created_at.desc(), webhook_deliveries::id.desc()))
                .limit(limit)
                .load(conn)?)
        })
        .await
    }

    /// A tenant's subscriptions, oldest first.
    pub async fn webhooks_of(&self, tenant: TenantId) -> Result<Vec<WebhookRow>, StoreError> {
        self.read(move |conn| {
            Ok(webhooks::table
                .filter(webhooks::tenant_id.eq(tenant.0))
                .order((webhooks::created_at.asc(), webhooks::id.asc()))
                .select(WebhookRow::as_select())
                .load(conn)?)
        })
        .await
    }

    /// Every subscription, for the start-up rebuild of the registry.
    pub async fn all_webhooks(&self) -> Result<Vec<WebhookRow>, StoreError> {
        self.read(move |conn| Ok(webhooks::table.select(WebhookRow::as_select()).load(conn)?)).await
    }

    pub async fn webhook(&self, id: String) -> Result<Option<WebhookRow>, StoreError> {
        self.read(move |conn| {
            Ok(webhooks::table.find(id).select(WebhookRow::as_select()).first(conn).optional()?)
        })
        .await
    }
}

pub fn insert_webhook(row: WebhookRow) -> Write {
    op(move |conn| diesel::insert_into(webhooks::table).values(row.clone()).execute(conn).map(|_| ()))
}

pub fn delete_webhook(id: String) -> Write {
    op(move |conn| diesel::delete(webhooks::table.find(&id)).execute(conn).map(|_| ()))
}
