//! The Escalation API (root paths; errors `{"detail": ...}`): one file per
//! resource — auth, escalations, experts, portal, domains, deliveries.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
