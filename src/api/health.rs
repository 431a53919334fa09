//! Liveness and readiness probes (no authentication).

use crate::db::migrations_current;
use crate::error::AppError;
use crate::error::Code;
use crate::http::AppState;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

/// `GET /healthz`: the process is alive.
#[utoipa::path(tag = "operations", security(()), responses((status = 200, description = "The process is alive", body = Object)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /metrics`: Prometheus text, for a signed-in user or the static
/// `CELLQC_METRICS_TOKEN`.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain"), crate::api::openapi::Problems))]
#[get("/metrics")]
pub async fn metrics(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    user: Option<crate::http::auth::CurrentUser>,
) -> Result<HttpResponse, AppError> {
    let token_ok = state.metrics_token.as_deref().is_some_and(|t| {
        req.headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                crate::auth::secrets_equal(v.as_bytes(), format!("Bearer {t}").as_bytes())
            })
    });
    if user.is_none() && !token_ok {
        return Err(AppError::refused(
            Code::MissingToken,
            "send `Authorization: Bearer <token>` (a session token or CELLQC_METRICS_TOKEN)",
        ));
    }
    let pool = state.pool.clone();
    let reads = state.reads.as_ref().map(|r| r.pool.clone());
    let text = state
        .db(move |c| crate::observability::render(&pool, reads.as_ref(), c))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// `GET /readyz`: the database is reachable and every migration applied;
/// `database_role` says whether the role in use could rewrite the trail (it
/// should be `cellqc_app`, which can't).
#[utoipa::path(tag = "operations", security(()), responses((status = 200, description = "Database reachable, migrations applied; `database_role.can_rewrite_trail` true when the server's database role could rewrite the audit trail", body = Object), crate::api::openapi::Problems))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (current, role) = state
        .db(|c| {
            let current = migrations_current(c).map_err(|_| AppError::unavailable())?;
            Ok((current, crate::db::roles::check(c)?))
        })
        .await?;
    if !current {
        return Err(AppError::Problem(Box::new(crate::error::Problem {
            code: crate::error::Code::MigrationsPending,
            detail: "database migrations are not applied; run `cellqc migrate`".to_owned(),
            errors: Vec::new(),
            blockers: None,
            retry_after: None,
        })));
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "database_role": role })))
}
