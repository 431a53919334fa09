//! Qualifications: QA qualifies analysts per test code (signed), anyone reads them.

use super::extract::Json;
use crate::domain::qualification::{GrantQualification, RevokeQualification};
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{Authorized, CurrentUser, QualifiesAnalysts, RevokesQualifications};
use crate::services::qualifications::{self as svc, QualificationView};
use actix_web::{HttpResponse, get, post, web};
use uuid::Uuid;

/// Qualifies a person for a test until a date (QA, never oneself; signed
/// `qualification_granted`).
#[utoipa::path(tag = "qualifications", request_body = GrantQualification, responses((status = 201, body = QualificationView), crate::api::openapi::Problems))]
#[post("/users/{id}/qualifications")]
pub async fn grant(
    db: Db,
    qa: Authorized<QualifiesAnalysts>,
    id: web::Path<Uuid>,
    body: Json<GrantQualification>,
) -> Result<HttpResponse, AppError> {
    let input = body.parse()?;
    let user_id = id.into_inner();
    let rules = db.state().signing.clone();
    let q = db
        .run(move |c| svc::grant(c, &rules, &qa.actor, user_id, &input))
        .await?;
    Ok(HttpResponse::Created().json(q))
}

/// A person's qualifications, newest first.
#[utoipa::path(tag = "qualifications", responses((status = 200, body = Vec<QualificationView>), crate::api::openapi::Problems))]
#[get("/users/{id}/qualifications")]
pub async fn of_user(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let user_id = id.into_inner();
    let list = db.run(move |c| svc::of_user(c, user_id)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Withdraws a qualification (QA, signed `qualification_revoked`).
#[utoipa::path(tag = "qualifications", request_body = RevokeQualification, responses((status = 200, body = QualificationView), crate::api::openapi::Problems))]
#[post("/qualifications/{id}/revoke")]
pub async fn revoke(
    db: Db,
    qa: Authorized<RevokesQualifications>,
    id: web::Path<Uuid>,
    body: Json<RevokeQualification>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let q = db
        .run(move |c| svc::revoke(c, &rules, &qa.actor, id, &body))
        .await?;
    Ok(HttpResponse::Ok().json(q))
}
