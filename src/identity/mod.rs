//! Identity: keys, JWTs, one-time codes, passwords, and the master key that
//! signs tokens and encrypts secrets at rest.

pub mod accounts;
pub mod api_keys;
pub mod jwt;
pub mod master_key;
pub mod model;
pub mod otp;
pub mod passwords;
pub mod rate_limit;
pub mod secret_box;
pub mod tokens;

use std::time::Duration;

use crate::mail::Mailer;
use crate::settings::{MasterKey, Settings};
use jwt::JwtKeys;
use rate_limit::KeyedLimiter;
use secret_box::SecretBox;

/// Everything identity needs at run time, built once at start from the master key and settings.
pub struct Identity {
    pub master: MasterKey,
    pub jwt: JwtKeys,
    pub secrets: SecretBox,
    pub mailer: Mailer,
    pub jwt_ttl: Duration,
    pub signin_per_email: KeyedLimiter,
    pub signin_per_client: KeyedLimiter,
}

impl Identity {
    pub fn new(master: MasterKey, settings: &Settings) -> Result<Identity, String> {
        let mailer = Mailer::from_setting(&settings.mail).map_err(|e| format!("SWITCHBOARD_MAIL: {e}"))?;
        let (email, client) = (settings.signin_limit_per_email, settings.signin_limit_per_client);
        Ok(Identity {
            jwt: JwtKeys::from_master(&master),
            secrets: SecretBox::new(&master),
            master,
            mailer,
            jwt_ttl: settings.jwt_ttl,
            signin_per_email: KeyedLimiter::new(email.max, email.per),
            signin_per_client: KeyedLimiter::new(client.max, client.per),
        })
    }
}
