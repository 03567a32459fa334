//! The Platform API (`/api/*`; errors `{"error": ...}`): one file per resource.

pub mod auth;
pub mod channels;
pub mod config;
pub mod containers;
pub mod members;
pub mod monitoring;
pub mod provider_test;
pub mod tenants;
pub mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure)
        .configure(users::configure)
        .configure(tenants::configure)
        .configure(config::configure)
        .configure(containers::configure)
        .configure(members::configure)
        .configure(channels::configure)
        .configure(monitoring::configure)
        .configure(provider_test::configure);
}
