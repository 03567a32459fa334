//! The `/v1/webhooks` subscriptions, held in memory so that the routing
//! engine's listener can tell, inside a case's transition, which URLs are owed
//! an event. Rebuilt from the database at start; changed only after the
//! database committed the change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use switchboard_actors::model::TenantId;

use super::signing::SigningKey;

/// Events a subscription may ask for.
pub const EVENTS: [&str; 4] =
    ["conversation.completed", "escalation.created", "escalation.resolved", "escalation.expired"];

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub tenant: TenantId,
    pub url: String,
    pub events: Vec<String>,
    pub key: SigningKey,
}

#[derive(Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    by_tenant: HashMap<TenantId, Vec<Arc<Subscription>>>,
    by_id: HashMap<String, Arc<Subscription>>,
}

impl Registry {
    pub fn add(&self, s: Subscription) {
        let s = Arc::new(s);
        let mut inner = self.write();
        inner.by_tenant.entry(s.tenant.clone()).or_default().push(s.clone());
        inner.by_id.insert(s.id.clone(), s);
    }

    pub fn remove(&self, id: &str) {
        let mut inner = self.write();
        if let Some(s) = inner.by_id.remove(id) {
            if let Some(list) = inner.by_tenant.get_mut(&s.tenant) {
                list.retain(|x| x.id != id);
                if list.is_empty() {
                    inner.by_tenant.remove(&s.tenant);
                }
            }
        }
    }

    /// The tenant's subscriptions to `event`.
    pub fn subscribers(&self, tenant: &TenantId, event: &str) -> Vec<Arc<Subscription>> {
        self.read()
            .by_tenant
            .get(tenant)
            .map(|list| list.iter().filter(|s| s.events.iter().any(|e| e == event)).cloned().collect())
            .unwrap_or_default()
    }

    pub fn key(&self, id: &str) -> Option<SigningKey> {
        self.read().by_id.get(id).map(|s| s.key.clone())
    }

    // The maps are changed by single calls that cannot panic halfway, so a poisoned lock holds whole data.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}
