//! Qualifications: QA qualifies analysts per test code (signed), anyone reads them.

use super::extract::Json;
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{Authorized, CurrentUser, QualifiesAnalysts, RevokesQualifications};
use crate::services::qualifications::{self as svc, GrantInput, QualificationView};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// `POST /users/{id}/qualifications` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantQualification {
    /// A test code of some specification (`CD73`).
    test_code: String,
    /// When the training was completed, when it is recorded later: not in
    /// the future, at most a year back; default now.
    valid_from: Option<DateTime<Utc>>,
    /// In the future, at most three years ahead.
    valid_until: DateTime<Utc>,
    password: String,
    /// The training record or assessment it rests on.
    reason: Option<String>,
}

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
    let body = body.parse()?;
    let user_id = id.into_inner();
    let rules = db.state().signing.clone();
    let input = GrantInput {
        test_code: body.test_code,
        valid_from: body.valid_from,
        valid_until: body.valid_until,
        password: body.password,
        reason: body.reason,
    };
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

/// `POST /qualifications/{id}/revoke` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeQualification {
    reason: String,
    password: String,
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
        .run(move |c| svc::revoke(c, &rules, &qa.actor, id, &body.reason, &body.password))
        .await?;
    Ok(HttpResponse::Ok().json(q))
}
