//! The Platform API (`/api/*`; errors `{"error": ...}`): one file per resource.

pub mod auth;
pub mod config;
pub mod members;
pub mod tenants;
pub mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure)
        .configure(users::configure)
        .configure(tenants::configure)
        .configure(config::configure)
        .configure(members::configure);
}
