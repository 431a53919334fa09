//! `/batches/{id}/deviations` and `/deviations/{id}/close`.

use super::create;
use super::extract::{Creation, Json};
use crate::domain::deviation::{CloseDeviation, OpenDeviation, OpenKind};
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{Authorized, ClosesDeviations, OpensDeviations};
use crate::services::deviations::{self as svc};
use actix_web::{HttpResponse, post, web};
use uuid::Uuid;

/// Opens a manual deviation (technician, reviewer, QA), or a post-release
/// correction (QA, signed): while it is open, the result it names may be
/// replaced and the batch stays in the facility.
#[utoipa::path(tag = "deviations", request_body = OpenDeviation, params(crate::api::IdempotencyHeader), responses((status = 201, body = crate::services::batch_record::views::DeviationView), crate::api::openapi::Problems))]
#[post("/batches/{id}/deviations")]
pub async fn open_deviation(
    db: Db,
    who: Authorized<OpensDeviations>,
    id: web::Path<Uuid>,
    req: Creation<OpenDeviation>,
) -> Result<HttpResponse, AppError> {
    let (body, idempotency) = req.parse()?;
    let batch_id = id.into_inner();
    let actor = who.actor.clone();
    match body.kind.unwrap_or_default() {
        OpenKind::PostReleaseCorrection => {
            let rules = db.state().signing.clone();
            create(db, actor.id, idempotency, move |c| {
                svc::open_correction(c, &rules, &actor, batch_id, &body)
            })
            .await
        }
        OpenKind::Manual => {
            create(db, actor.id, idempotency, move |c| {
                svc::open_manual(c, &actor, batch_id, &body)
            })
            .await
        }
    }
}

/// Closes a deviation (QA, signed).
#[utoipa::path(tag = "deviations", request_body = CloseDeviation, responses((status = 200, body = crate::services::batch_record::views::DeviationView), crate::api::openapi::Problems))]
#[post("/deviations/{id}/close")]
pub async fn close_deviation(
    db: Db,
    qa: Authorized<ClosesDeviations>,
    id: web::Path<Uuid>,
    body: Json<CloseDeviation>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let d = db
        .run(move |c| svc::close(c, &rules, &qa.actor, id, &body))
        .await?;
    Ok(HttpResponse::Ok().json(d))
}
