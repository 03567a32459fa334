//! The webhook engine's server half: signing (`signing`), sending through the
//! outbound guard (`sender`), the signing keys (`secrets`), the `/v1/webhooks`
//! subscriptions (`registry`), and the routing engine's `CaseListener` that
//! turns a case's creation, resolution or expiry into deliveries committed in
//! the same transaction. The actors themselves are in
//! `switchboard_actors::webhook`.

pub mod registry;
pub mod secrets;
pub mod sender;
pub mod signing;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Arbiter};
use serde_json::{json, Map, Value};
use switchboard_actors::engine::{CaseEvent, CaseListener};
use switchboard_actors::model::TenantId;
use switchboard_actors::records::{DeliveryRecord, DeliveryStatus, EscalationRecord};
use switchboard_actors::webhook::{
    Dispatch, EndpointSnapshot, ReadEndpoints, WebhookConfig, WebhookDispatcher, DISPATCHER,
};
use switchboard_actors::{Change, Persistence};

use crate::http::agent::api_keys::rfc3339;
use crate::http::escalation::views::EscalationDetail;
use crate::identity::secret_box::SecretBox;
use crate::outbound::OutboundGuard;
use crate::settings::Settings;
use crate::store::webhooks::WebhookRow;
use crate::store::{now_ms, Store, StoreError};
use registry::{Registry, Subscription};
use secrets::Keys;
use signing::SigningKey;

/// The server's handle on the webhook engine.
#[derive(Clone)]
pub struct Webhooks {
    dispatcher: Addr<WebhookDispatcher>,
    pub registry: Arc<Registry>,
    store: Store,
}

impl Webhooks {
    /// Starts the dispatcher on an arbiter of its own. Must run inside an actix System.
    pub fn start(settings: &Settings, store: &Store, secrets: SecretBox) -> Webhooks {
        let registry = Arc::new(Registry::default());
        let keys = Arc::new(Keys::new(store.clone(), secrets, registry.clone()));
        let guard = OutboundGuard::from_settings(settings);
        let first_wait = settings.webhook_retry_schedule.first().copied().unwrap_or(Duration::from_secs(60));
        let config = WebhookConfig {
            retry_schedule: settings.webhook_retry_schedule.clone(),
            max_in_flight: 8,
            circuit_threshold: 5,
            // An open circuit holds attempts back about as long as the first retry would wait.
            circuit_cooldown: first_wait.min(Duration::from_secs(60)),
            retry_after_failure: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(60),
        };
        let persistence: Arc<dyn Persistence> = Arc::new(store.clone());
        let arbiter = Arbiter::new();
        let dispatcher = WebhookDispatcher::start_in_arbiter(&arbiter.handle(), move |_| {
            // awc's client is bound to the thread it is made on: the one the actors run on.
            WebhookDispatcher::new(persistence, config, sender::transport(guard, keys))
        });
        Webhooks { dispatcher, registry, store: store.clone() }
    }

    /// The routing engine's listener: deliveries for case events.
    pub fn listener(&self) -> Arc<dyn CaseListener> {
        Arc::new(Listener { webhooks: self.clone() })
    }

    /// Rebuilds the subscriptions and resumes every delivery still owed an attempt.
    pub async fn restore(&self, secrets: &SecretBox) -> Result<(usize, usize), StoreError> {
        let rows = self.store.all_webhooks().await?;
        let subscriptions = rows.len();
        for row in rows {
            match subscription_of(&row, secrets) {
                Ok(s) => self.registry.add(s),
                Err(e) => {
                    tracing::error!(webhook = %row.id, error = %e, "a stored webhook secret cannot be used")
                }
            }
        }
        let open = self.store.open_deliveries().await?;
        let count = open.len();
        self.dispatch(open);
        Ok((subscriptions, count))
    }

    /// Hands committed deliveries to their endpoint actors.
    pub fn dispatch(&self, deliveries: Vec<DeliveryRecord>) {
        if deliveries.is_empty() {
            return;
        }
        DISPATCHER.enqueued();
        self.dispatcher.do_send(Dispatch(deliveries));
    }

    /// The deliveries `event` about no escalation owes the tenant's
    /// subscribers, for the caller to commit with its own change and then
    /// hand to [`Webhooks::dispatch`].
    pub fn prepare(&self, tenant: &TenantId, event: &str, payload: &Value) -> Vec<DeliveryRecord> {
        self.for_subscribers(tenant, None, event, payload)
    }

    /// Emits `event` about no escalation (e.g. `conversation.completed`) to the
    /// tenant's subscribers: persisted, then sent.
    pub async fn emit(&self, tenant: &TenantId, event: &str, payload: Value) -> Result<(), StoreError> {
        let deliveries = self.for_subscribers(tenant, None, event, &payload);
        if deliveries.is_empty() {
            return Ok(());
        }
        let changes = deliveries.iter().map(|d| Change::InsertDelivery(Box::new(d.clone()))).collect();
        self.store.commit(changes).await.map_err(|e| match e {
            switchboard_actors::PersistError::Unavailable(m) => StoreError::Unavailable(m),
            other => StoreError::CommitFailed(other.to_string()),
        })?;
        self.dispatch(deliveries);
        Ok(())
    }

    /// Every endpoint actor's queue and circuit, for monitoring.
    pub async fn endpoints(&self) -> Vec<EndpointSnapshot> {
        DISPATCHER.enqueued();
        self.dispatcher.send(ReadEndpoints).await.unwrap_or_default()
    }

    fn for_subscribers(
        &self,
        tenant: &TenantId,
        escalation: Option<&EscalationRecord>,
        event: &str,
        payload: &Value,
    ) -> Vec<DeliveryRecord> {
        self.registry
            .subscribers(tenant, event)
            .into_iter()
            .map(|s| {
                let mut d = delivery(tenant, escalation, event, &s.url, payload);
                d.subscription_id = Some(s.id.clone());
                d
            })
            .collect()
    }
}

/// A subscription as the registry holds it: its secret opened.
pub fn subscription_of(row: &WebhookRow, secrets: &SecretBox) -> Result<Subscription, String> {
    let secret = secrets.open(&row.secret_sealed).map_err(|e| e.to_string())?;
    Ok(Subscription {
        id: row.id.clone(),
        tenant: TenantId(row.tenant_id.clone()),
        url: row.url.clone(),
        events: serde_json::from_str(&row.events).map_err(|e| e.to_string())?,
        key: SigningKey::parse(&secret)?,
    })
}

fn delivery(
    tenant: &TenantId,
    escalation: Option<&EscalationRecord>,
    event: &str,
    url: &str,
    payload: &Value,
) -> DeliveryRecord {
    DeliveryRecord {
        id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: tenant.clone(),
        escalation_id: escalation.map(|r| r.id),
        subscription_id: None,
        event: event.to_string(),
        url: url.to_string(),
        payload: payload.to_string(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status_code: None,
        last_error: None,
        next_attempt_at_ms: None,
        delivered_at_ms: None,
        created_at_ms: now_ms(),
    }
}

/// The payload a `callback_url` receives (escalation-api.md "Webhooks").
fn callback_payload(r: &EscalationRecord, event: &str) -> Value {
    let detail = EscalationDetail::from(r);
    json!({
        "event": event,
        "escalation_id": detail.id,
        "domain": detail.domain,
        "status": detail.status,
        "resolution": detail.resolution,
        "timestamp": rfc3339(now_ms()),
    })
}

/// The payload `/v1/webhooks` receive: the escalation's detail with the event's name and time.
fn subscription_payload(r: &EscalationRecord, event: &str) -> Value {
    let mut body = Map::new();
    body.insert("event".into(), json!(event));
    body.insert("timestamp".into(), json!(rfc3339(now_ms())));
    if let Ok(Value::Object(detail)) = serde_json::to_value(EscalationDetail::from(r)) {
        body.extend(detail);
    }
    Value::Object(body)
}

struct Listener {
    webhooks: Webhooks,
}

impl Listener {
    fn deliveries(&self, r: &EscalationRecord, event: &str, callback: bool) -> Vec<Change> {
        let mut out = Vec::new();
        if callback {
            if let Some(url) = &r.callback_url {
                out.push(delivery(&r.tenant, Some(r), event, url, &callback_payload(r, event)));
            }
        }
        if !self.webhooks.registry.subscribers(&r.tenant, event).is_empty() {
            let payload = subscription_payload(r, event);
            out.extend(self.webhooks.for_subscribers(&r.tenant, Some(r), event, &payload));
        }
        out.into_iter().map(|d| Change::InsertDelivery(Box::new(d))).collect()
    }

    fn send(&self, changes: &[Change]) {
        let deliveries: Vec<DeliveryRecord> = changes
            .iter()
            .filter_map(|c| if let Change::InsertDelivery(d) = c { Some(d.as_ref().clone()) } else { None })
            .collect();
        self.webhooks.dispatch(deliveries);
    }
}

impl CaseListener for Listener {
    fn opening_changes(&self, r: &EscalationRecord) -> Vec<Change> {
        self.deliveries(r, "escalation.created", false)
    }

    fn opened(&self, _: &EscalationRecord, changes: &[Change]) {
        self.send(changes);
    }

    fn closing_changes(&self, r: &EscalationRecord, event: CaseEvent) -> Vec<Change> {
        match event {
            CaseEvent::Resolved | CaseEvent::Expired => self.deliveries(r, event.name(), true),
            CaseEvent::Cancelled => Vec::new(),
        }
    }

    fn closed(&self, _: &EscalationRecord, _: CaseEvent, changes: &[Change]) {
        self.send(changes);
    }
}
