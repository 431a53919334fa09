//! `/batches/{id}/release-readiness`, `/release`, `/reject`, `/recall`.

use super::extract::Json;
use crate::domain::audit_review::SignAuditReview;
use crate::domain::release::{DisposeBatch, ReleaseBatch};
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{
    AuditReader, Authorized, CurrentUser, Recalls, Rejects, Releases, ReviewsAuditTrails,
};
use crate::services::Actor;
use crate::services::release::{self as svc, Disposition};
use actix_web::{HttpResponse, get, post, web};
use uuid::Uuid;

/// Every blocker standing between the batch and release.
#[utoipa::path(tag = "release", responses((status = 200, body = crate::domain::release::Readiness), crate::api::openapi::Problems))]
#[get("/batches/{id}/release-readiness")]
pub async fn release_readiness(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let r = db.run(move |c| svc::release_readiness(c, id)).await?;
    Ok(HttpResponse::Ok().json(r))
}

/// The exceptions of the batch's audit trail and its signed reviews (qa, auditor).
#[utoipa::path(tag = "release", responses((status = 200, body = crate::services::audit_review::AuditReviewView), crate::api::openapi::Problems))]
#[get("/batches/{id}/audit-review")]
pub async fn audit_review(
    db: Db,
    reader: Authorized<AuditReader>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let view = db
        .run(move |c| crate::services::audit_review::audit_review(c, &reader.actor, id))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Signs the review of the batch's audit trail up to its last entry (QA,
/// independent as for release; signed `audit_trail_reviewed`).
#[utoipa::path(tag = "release", request_body = SignAuditReview, responses((status = 200, body = crate::services::audit_review::AuditReviewView), crate::api::openapi::Problems))]
#[post("/batches/{id}/audit-review")]
pub async fn sign_audit_review(
    db: Db,
    qa: Authorized<ReviewsAuditTrails>,
    id: web::Path<Uuid>,
    body: Json<SignAuditReview>,
) -> Result<HttpResponse, AppError> {
    let req = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let view = db
        .run(move |c| crate::services::audit_review::sign_review(c, &rules, &qa.actor, id, &req))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Releases the batch (QA, independent; signed).
#[utoipa::path(tag = "release", request_body = ReleaseBatch, responses((status = 200, body = crate::services::batch_record::views::BatchDetail), crate::api::openapi::Problems))]
#[post("/batches/{id}/release")]
pub async fn release_batch(
    db: Db,
    qa: Authorized<Releases>,
    id: web::Path<Uuid>,
    body: Json<ReleaseBatch>,
) -> Result<HttpResponse, AppError> {
    let req = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let key = rules.seal.verifying();
    let batch = db
        .run(move |c| {
            // Nobody signs a record changed outside cellqc.
            crate::services::verification::check_batch_record(c, &key, id)?;
            svc::release(c, &rules, &qa.actor, id, &req)
        })
        .await?;
    Ok(HttpResponse::Ok().json(batch))
}

async fn dispose(
    db: Db,
    actor: Actor,
    id: Uuid,
    body: Json<DisposeBatch>,
    what: Disposition,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let rules = db.state().signing.clone();
    let batch = db
        .run(move |c| svc::dispose(c, &rules, &actor, id, what, &body))
        .await?;
    Ok(HttpResponse::Ok().json(batch))
}

/// Rejects the batch (QA; signed, with a reason).
#[utoipa::path(tag = "release", request_body = DisposeBatch, responses((status = 200, body = crate::services::batch_record::views::BatchDetail), crate::api::openapi::Problems))]
#[post("/batches/{id}/reject")]
pub async fn reject_batch(
    db: Db,
    qa: Authorized<Rejects>,
    id: web::Path<Uuid>,
    body: Json<DisposeBatch>,
) -> Result<HttpResponse, AppError> {
    dispose(
        db,
        qa.actor.clone(),
        id.into_inner(),
        body,
        Disposition::Reject,
    )
    .await
}

/// Recalls a released batch (QA; signed, with a reason).
#[utoipa::path(tag = "release", request_body = DisposeBatch, responses((status = 200, body = crate::services::batch_record::views::BatchDetail), crate::api::openapi::Problems))]
#[post("/batches/{id}/recall")]
pub async fn recall_batch(
    db: Db,
    qa: Authorized<Recalls>,
    id: web::Path<Uuid>,
    body: Json<DisposeBatch>,
) -> Result<HttpResponse, AppError> {
    dispose(
        db,
        qa.actor.clone(),
        id.into_inner(),
        body,
        Disposition::Recall,
    )
    .await
}
