//! The Platform API (`/api/*`; errors `{"error": ...}`): one file per resource.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
