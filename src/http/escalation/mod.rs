//! The Escalation API (root paths; errors `{"detail": ...}`): one file per
//! resource — auth, escalations, experts, portal, domains, deliveries.

pub mod auth;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure);
}
