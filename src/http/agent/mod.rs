//! The Agent API (`/v1/*`; envelope `{success, data}` / `{success, error}`):
//! one file per resource.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
