//! `/batches/{id}/deviations` and `/deviations/{id}/close`.

use super::create;
use super::extract::{Creation, Json};
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{Authorized, ClosesDeviations, OpensDeviations};
use crate::services::deviations::{self as svc, NewCorrectionInput, NewDeviationInput};
use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use uuid::Uuid;

/// `POST /batches/{id}/deviations` body: a manual deviation
/// (`{title, description, severity?}`), or a post-release correction
/// (`{kind: "post_release_correction", result_id, title, reason, password}`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDeviation {
    /// `manual` (the default) or `post_release_correction` (QA, signed
    /// `correction_opened`: the decided record's one way to a changed result).
    kind: Option<String>,
    title: String,
    /// What happened (a manual deviation).
    description: Option<String>,
    /// `minor` (default), `major` or `critical` (a manual deviation).
    severity: Option<String>,
    /// The current result to correct (a correction).
    result_id: Option<Uuid>,
    /// Why the decided record must change (a correction).
    reason: Option<String>,
    /// The signer's password (a correction).
    password: Option<String>,
}

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
    match body.kind.as_deref() {
        Some("post_release_correction") => {
            let input = NewCorrectionInput {
                result_id: body.result_id,
                title: body.title,
                reason: body.reason.unwrap_or_default(),
                password: body.password.unwrap_or_default(),
            };
            let rules = db.state().signing.clone();
            create(db, actor.id, idempotency, move |c| {
                svc::open_correction(c, &rules, &actor, batch_id, &input)
            })
            .await
        }
        None | Some("manual") => {
            let input = NewDeviationInput {
                title: body.title,
                description: body.description.unwrap_or_default(),
                severity: body.severity,
            };
            create(db, actor.id, idempotency, move |c| {
                svc::open_manual(c, &actor, batch_id, &input)
            })
            .await
        }
        Some(_) => Err(AppError::invalid_field_said(
            "kind",
            "fe-must-be-manual-or-post-release-correction",
        )),
    }
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
