//! The Escalation API (root paths; errors `{"detail": ...}`): one file per
//! resource — auth, escalations, experts, portal, domains, deliveries.

pub mod auth;
pub mod deliveries;
pub mod domains;
pub mod escalations;
pub mod experts;
pub mod portal;
pub mod views;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure)
        .configure(escalations::configure)
        .configure(portal::configure)
        .configure(experts::configure)
        .configure(domains::configure)
        .configure(deliveries::configure);
}
