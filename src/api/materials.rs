//! `/materials`: lots received into quarantine, released or rejected by QA
//! (signed), their use in batches, and where each lot was used.

use super::extract::{Json, Query};
use crate::domain::material::{LotStatus, ReceiveMaterial, RejectMaterial, ReleaseMaterial};
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{
    Authorized, CurrentUser, ReceivesMaterials, RecordsResults, RejectsMaterials, ReleasesMaterials,
};
use crate::services::materials::{self as svc, BatchUse, MaterialView, UseView, WhereUsed};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use uuid::Uuid;

/// Receives a lot into quarantine (technician, QA).
#[utoipa::path(tag = "materials", request_body = ReceiveMaterial, responses((status = 201, body = MaterialView), crate::api::openapi::Problems))]
#[post("/materials")]
pub async fn receive(
    db: Db,
    who: Authorized<ReceivesMaterials>,
    body: Json<ReceiveMaterial>,
) -> Result<HttpResponse, AppError> {
    let input = body.parse()?;
    let v = db.run(move |c| svc::receive(c, &who.actor, &input)).await?;
    Ok(HttpResponse::Created().json(v))
}

/// `GET /materials` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MaterialQuery {
    code: Option<String>,
    /// `quarantine`, `released` or `rejected`.
    status: Option<String>,
    /// Part of the name, code or lot number.
    q: Option<String>,
}

/// Lots by code and lot number.
#[utoipa::path(tag = "materials", params(MaterialQuery), responses((status = 200, body = Vec<MaterialView>), crate::api::openapi::Problems))]
#[get("/materials")]
pub async fn list_materials(
    db: Db,
    _user: CurrentUser,
    Query(q): Query<MaterialQuery>,
) -> Result<HttpResponse, AppError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            LotStatus::from_str(s).map_err(|_| {
                AppError::invalid_field_said("status", "fe-must-be-quarantine-released-or-rejected")
            })
        })
        .transpose()?;
    for (field, v) in [("code", &q.code), ("q", &q.q)] {
        if v.as_deref()
            .is_some_and(|s| s.chars().any(char::is_control) || s.chars().count() > 200)
        {
            return Err(AppError::invalid_field_said(
                field,
                "fe-is-at-most-200-characters-without-control-characters",
            ));
        }
    }
    let list = db
        .run(move |c| svc::list(c, q.code.as_deref(), status, q.q.as_deref()))
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One lot.
#[utoipa::path(tag = "materials", responses((status = 200, body = MaterialView), crate::api::openapi::Problems))]
#[get("/materials/{id}")]
pub async fn get_material(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let v = db.run(move |c| svc::get(c, id)).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Releases a lot from quarantine (QA, signed `material_released`).
#[utoipa::path(tag = "materials", request_body = ReleaseMaterial, responses((status = 200, body = MaterialView), crate::api::openapi::Problems))]
#[post("/materials/{id}/release")]
pub async fn release(
    db: Db,
    qa: Authorized<ReleasesMaterials>,
    id: web::Path<Uuid>,
    body: Json<ReleaseMaterial>,
) -> Result<HttpResponse, AppError> {
    let b = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let v = db
        .run(move |c| svc::release(c, &rules, &qa.actor, id, &b.password))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Rejects a lot (QA, signed `material_rejected`); every batch that used it
/// gets an impact deviation.
#[utoipa::path(tag = "materials", request_body = RejectMaterial, responses((status = 200, body = MaterialView), crate::api::openapi::Problems))]
#[post("/materials/{id}/reject")]
pub async fn reject(
    db: Db,
    qa: Authorized<RejectsMaterials>,
    id: web::Path<Uuid>,
    body: Json<RejectMaterial>,
) -> Result<HttpResponse, AppError> {
    let b = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let v = db
        .run(move |c| svc::reject(c, &rules, &qa.actor, id, &b))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// `POST /batches/{id}/materials` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UseMaterial {
    material_id: Uuid,
    used_at: DateTime<Utc>,
    /// A positive number, as entered.
    #[schema(value_type = Option<String>)]
    quantity: Option<serde_json::Value>,
    unit: Option<String>,
}

/// Records a lot that went into the batch's manufacture (technician).
#[utoipa::path(tag = "materials", request_body = UseMaterial, responses((status = 201, body = UseView), crate::api::openapi::Problems))]
#[post("/batches/{id}/materials")]
pub async fn use_in_batch(
    db: Db,
    tech: Authorized<RecordsResults>,
    id: web::Path<Uuid>,
    body: Json<UseMaterial>,
) -> Result<HttpResponse, AppError> {
    let b = body.parse()?;
    let batch_id = id.into_inner();
    let quantity = match b.quantity {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(AppError::invalid_field_said(
                "quantity",
                "fe-is-a-positive-number",
            ));
        }
    };
    let input = BatchUse {
        material_id: b.material_id,
        used_at: b.used_at,
        quantity,
        unit: b.unit,
    };
    let v = db
        .run(move |c| svc::use_in_batch(c, &tech.actor, batch_id, &input))
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// `GET /materials/{id}/where-used` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhereUsedAnswer {
    batches: Vec<WhereUsed>,
}

/// Every batch the lot went into, in manufacture or in a test (as CSV with
/// `format=csv`: a recall's list).
#[utoipa::path(tag = "materials", params(super::FormatQuery), responses((status = 200, content((WhereUsedAnswer = "application/json"), (String = "text/csv"))), crate::api::openapi::Problems))]
#[get("/materials/{id}/where-used")]
pub async fn where_used(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
    super::extract::Query(format): super::extract::Query<super::FormatQuery>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let csv = format.csv()?;
    let batches = db.run(move |c| svc::where_used(c, id)).await?;
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type(crate::report::csv::MEDIA_TYPE)
            .insert_header(crate::http::download::download(
                false,
                &format!("where-used-{id}.csv"),
            ))
            .body(svc::where_used_csv(&batches)?));
    }
    Ok(HttpResponse::Ok().json(WhereUsedAnswer { batches }))
}
