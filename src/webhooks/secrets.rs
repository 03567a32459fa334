//! Where each delivery's signing key comes from: a `/v1/webhooks`
//! subscription's own secret (held by the registry), or, for a `callback_url`,
//! the tenant's `webhook_secret`, opened from the database once and cached
//! (and made then for a tenant that has none yet: `switchboard admin
//! webhook-secret` shows it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use switchboard_actors::model::TenantId;
use switchboard_actors::records::DeliveryRecord;

use super::registry::Registry;
use super::signing::SigningKey;
use crate::error::AppError;
use crate::identity::accounts;
use crate::identity::secret_box::SecretBox;
use crate::store::Store;

#[derive(Debug)]
pub enum KeyError {
    /// The key is gone for good (the subscription was deleted): the delivery fails.
    Gone(String),
    /// The key could not be read now (database unavailable): the attempt is retried.
    Unavailable(String),
}

pub struct Keys {
    /// `None` only in unit tests of the sender, which sign with subscription keys.
    store: Option<Store>,
    secrets: SecretBox,
    registry: Arc<Registry>,
    tenants: Mutex<HashMap<TenantId, SigningKey>>,
}

impl Keys {
    pub fn new(store: Store, secrets: SecretBox, registry: Arc<Registry>) -> Keys {
        Keys { store: Some(store), secrets, registry, tenants: Mutex::new(HashMap::new()) }
    }

    #[cfg(test)]
    pub fn without_store(secrets: SecretBox, registry: Arc<Registry>) -> Keys {
        Keys { store: None, secrets, registry, tenants: Mutex::new(HashMap::new()) }
    }

    pub async fn key_for(&self, d: &DeliveryRecord) -> Result<SigningKey, KeyError> {
        if let Some(id) = &d.subscription_id {
            return self
                .registry
                .key(id)
                .ok_or_else(|| KeyError::Gone("the webhook subscription was deleted".into()));
        }
        if let Some(key) = self.cached(&d.tenant_id) {
            return Ok(key);
        }
        let Some(store) = &self.store else {
            return Err(KeyError::Unavailable("no store".into()));
        };
        let secret = match accounts::webhook_secret(store, &self.secrets, &d.tenant_id.0).await {
            Ok(Some(secret)) => secret,
            Ok(None) => return Err(KeyError::Gone("the tenant no longer exists".into())),
            Err(AppError::Internal(why)) => {
                return Err(KeyError::Gone(format!("the tenant's webhook secret: {why}")))
            }
            Err(other) => return Err(KeyError::Unavailable(other.to_string())),
        };
        let key = SigningKey::parse(&secret).map_err(KeyError::Gone)?;
        self.lock().insert(d.tenant_id.clone(), key.clone());
        Ok(key)
    }

    fn cached(&self, tenant: &TenantId) -> Option<SigningKey> {
        self.lock().get(tenant).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, SigningKey>> {
        // A panic while holding this lock cannot leave the map half-written: inserts are single calls.
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }
}
