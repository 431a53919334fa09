//! `/batches/{id}/deviations` and `/deviations/{id}/close`.

use super::create;
use super::extract::{Creation, Json};
use crate::app::Db;
use crate::auth::extractors::{Authorized, ClosesDeviations, OpensDeviations};
use crate::error::AppError;
use crate::services::deviations::{self as svc, NewDeviationInput};
use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use uuid::Uuid;

/// `POST /batches/{id}/deviations` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDeviation {
    title: String,
    description: String,
    severity: Option<String>,
}

/// Opens a manual deviation (technician, reviewer, QA).
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
    let input = NewDeviationInput {
        title: body.title,
        description: body.description,
        severity: body.severity,
    };
    let actor = who.actor.clone();
    create(db, actor.id, idempotency, move |c| {
        svc::open_manual(c, &actor, batch_id, &input)
    })
    .await
}

/// `POST /deviations/{id}/close` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseDeviation {
    conclusion: String,
    root_cause: String,
    password: String,
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
        .run(move |c| {
            svc::close(
                c,
                &rules,
                &qa.actor,
                id,
                &body.conclusion,
                &body.root_cause,
                &body.password,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(d))
}
