//! The JSON API under `/api/v1` (contract: API.md), plus `/healthz` and `/readyz`.
//!
//! Handlers are thin: extract, call one service on the blocking pool, map the
//! answer to JSON. Their signatures state who may call them.

pub mod audit;
pub mod auth;
pub mod extract;
pub mod health;
pub mod users;

use crate::error::AppError;
use actix_web::{HttpRequest, HttpResponse, web};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(
            web::scope("/api/v1")
                .service(auth::login)
                .service(auth::logout)
                .service(auth::me)
                .service(auth::change_password)
                .service(users::create_user)
                .service(users::list_users)
                .service(users::get_user)
                .service(users::update_user)
                .service(users::unlock_user)
                .service(audit::list_audit)
                .service(audit::verify_audit),
        );
}

/// Any path no route matches.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::not_found(
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
