//! Liveness and readiness probes (no authentication).

use crate::app::AppState;
use crate::db::migrations_current;
use crate::error::AppError;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

/// `GET /healthz`: the process is alive.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database is reachable and every migration applied.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let current = state
        .db(|c| migrations_current(c).map_err(|_| AppError::unavailable()))
        .await?;
    if !current {
        return Err(AppError::Problem(Box::new(crate::error::Problem {
            status: actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "migrations_pending",
            detail: "database migrations are not applied; run `cellqc migrate`".to_owned(),
            errors: Vec::new(),
            blockers: None,
            retry_after: None,
        })));
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}
