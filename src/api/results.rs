//! `/batches/{id}/results` and `/results/{id}`: recording and review.

use super::create_as;
use super::extract::{Creation, Json};
use crate::domain::result::{ReviewResult, ReviewResults};
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{Authorized, Caller, CurrentUser, RecordsResults, ReviewsResults};
use crate::services::results::{self as svc, NewResultInput};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// `POST /batches/{id}/results` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordResult {
    test_code: String,
    /// A number or decimal string (numeric tests) or a string (qualitative tests).
    #[schema(value_type = crate::api::openapi::DecimalInput)]
    value: Box<RawValue>,
    unit: Option<String>,
    performed_at: DateTime<Utc>,
    /// Free text (a model, a serial) for tests that name no instrument kind.
    instrument: Option<String>,
    /// The registered instrument it was measured on: required when the test
    /// names an `instrument_kind`; it must be of that kind and in service at
    /// `performed_at`.
    instrument_id: Option<Uuid>,
    /// The material lots it used: each released, not rejected and in date
    /// at `performed_at` (else `409 material_not_usable`).
    #[serde(default)]
    material_ids: Vec<Uuid>,
    comment: Option<String>,
    replaces_result_id: Option<Uuid>,
    reason: Option<String>,
}

/// Records a result (technician).
#[utoipa::path(tag = "results", request_body = RecordResult, params(crate::api::IdempotencyHeader), responses((status = 201, body = crate::services::batch_record::views::ResultView), crate::api::openapi::Problems))]
#[post("/batches/{id}/results")]
pub async fn record_result(
    tech: Caller<RecordsResults>,
    db: Db,
    id: web::Path<Uuid>,
    req: Creation<RecordResult>,
) -> Result<HttpResponse, AppError> {
    let batch_id = id.into_inner();
    // Read now, refused (422) only after the caller is decided.
    let parsed = req.parse().map(|(b, key)| {
        let input = NewResultInput {
            test_code: b.test_code,
            value: b.value.get().to_owned(),
            unit: b.unit,
            performed_at: b.performed_at,
            instrument: b.instrument,
            instrument_id: b.instrument_id,
            material_ids: b.material_ids,
            comment: b.comment,
            replaces_result_id: b.replaces_result_id,
            reason: b.reason,
        };
        (input, key)
    });
    create_as(db, tech, parsed, move |c, who, input| {
        svc::record_result(c, &who.actor, batch_id, &input)
    })
    .await
}

/// One result.
#[utoipa::path(tag = "results", responses((status = 200, body = crate::services::batch_record::views::ResultView), crate::api::openapi::Problems))]
#[get("/results/{id}")]
pub async fn get_result(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let r = db.run(move |c| svc::get_result(c, id)).await?;
    Ok(HttpResponse::Ok().json(r))
}

/// Reviews a result (reviewer, not its performer; signed).
#[utoipa::path(tag = "results", request_body = ReviewResult, responses((status = 200, body = crate::services::batch_record::views::ResultView), crate::api::openapi::Problems))]
#[post("/results/{id}/review")]
pub async fn review_result(
    db: Db,
    reviewer: Authorized<ReviewsResults>,
    id: web::Path<Uuid>,
    body: Json<ReviewResult>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let r = db
        .run(move |c| svc::review_result(c, &rules, &reviewer.actor, id, &body))
        .await?;
    Ok(HttpResponse::Ok().json(r))
}

/// Reviews several results with one signing act (reviewer, performer of none
/// of them; signed): one signature per result, all or nothing. A refusal of
/// any result refuses them all and names it (`errors[].field` =
/// `result_ids[i]`).
#[utoipa::path(tag = "results", request_body = ReviewResults, responses((status = 200, body = Vec<crate::services::batch_record::views::ResultView>), crate::api::openapi::Problems))]
#[post("/results/review")]
pub async fn review_results(
    db: Db,
    reviewer: Authorized<ReviewsResults>,
    body: Json<ReviewResults>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let rules = db.state().signing.clone();
    let r = db
        .run(move |c| svc::review_results(c, &rules, &reviewer.actor, &body))
        .await?;
    Ok(HttpResponse::Ok().json(r))
}
