//! `/instruments`: the registry, calibrations, out of service and return to service.

use super::extract::{Json, Query};
use crate::domain::instrument::{
    OutOfService, RecordCalibration, RegisterInstrument, ReturnToService, Status,
};
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{
    Authorized, CurrentUser, MaintainsInstruments, RegistersInstruments, ReturnsInstruments,
};
use crate::services::instruments::{self as svc, InstrumentEventView, InstrumentView};
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use std::str::FromStr;
use uuid::Uuid;

/// Registers an instrument (QA); `calibration_due` until calibrated.
#[utoipa::path(tag = "instruments", request_body = RegisterInstrument, responses((status = 201, body = InstrumentView), crate::api::openapi::Problems))]
#[post("/instruments")]
pub async fn register(
    db: Db,
    qa: Authorized<RegistersInstruments>,
    body: Json<RegisterInstrument>,
) -> Result<HttpResponse, AppError> {
    let input = body.parse()?;
    let v = db.run(move |c| svc::register(c, &qa.actor, &input)).await?;
    Ok(HttpResponse::Created().json(v))
}

/// `GET /instruments` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InstrumentQuery {
    kind: Option<String>,
    /// `in_service`, `calibration_due`, `out_of_service` or `failed_calibration`.
    status: Option<String>,
}

/// Every instrument with its status now, by code.
#[utoipa::path(tag = "instruments", params(InstrumentQuery), responses((status = 200, body = Vec<InstrumentView>), crate::api::openapi::Problems))]
#[get("/instruments")]
pub async fn list_instruments(
    db: Db,
    _user: CurrentUser,
    Query(q): Query<InstrumentQuery>,
) -> Result<HttpResponse, AppError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            Status::from_str(s).map_err(|_| {
                AppError::invalid_field_said(
                    "status",
                    "fe-must-be-in-service-calibration-due-out-of-service-or-failed",
                )
            })
        })
        .transpose()?;
    let kind = q.kind;
    let list = db
        .run(move |c| svc::list(c, kind.as_deref(), status))
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One instrument with its history.
#[utoipa::path(tag = "instruments", responses((status = 200, body = InstrumentView), crate::api::openapi::Problems))]
#[get("/instruments/{id}")]
pub async fn get_instrument(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let v = db.run(move |c| svc::get(c, id)).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Records a calibration (technician, QA).
#[utoipa::path(tag = "instruments", request_body = RecordCalibration, responses((status = 201, body = InstrumentEventView), crate::api::openapi::Problems))]
#[post("/instruments/{id}/calibrations")]
pub async fn calibrate(
    db: Db,
    who: Authorized<MaintainsInstruments>,
    id: web::Path<Uuid>,
    body: Json<RecordCalibration>,
) -> Result<HttpResponse, AppError> {
    let input = body.parse()?;
    let id = id.into_inner();
    let v = db
        .run(move |c| svc::calibrate(c, &who.actor, id, &input))
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// Takes an instrument out of service now (technician, QA).
#[utoipa::path(tag = "instruments", request_body = OutOfService, responses((status = 200, body = InstrumentView), crate::api::openapi::Problems))]
#[post("/instruments/{id}/out-of-service")]
pub async fn out_of_service(
    db: Db,
    who: Authorized<MaintainsInstruments>,
    id: web::Path<Uuid>,
    body: Json<OutOfService>,
) -> Result<HttpResponse, AppError> {
    let b = body.parse()?;
    let id = id.into_inner();
    let v = db
        .run(move |c| svc::take_out_of_service(c, &who.actor, id, &b))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Returns an instrument to service (QA, signed `instrument_returned`).
#[utoipa::path(tag = "instruments", request_body = ReturnToService, responses((status = 200, body = InstrumentView), crate::api::openapi::Problems))]
#[post("/instruments/{id}/return-to-service")]
pub async fn return_to_service(
    db: Db,
    qa: Authorized<ReturnsInstruments>,
    id: web::Path<Uuid>,
    body: Json<ReturnToService>,
) -> Result<HttpResponse, AppError> {
    let b = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let v = db
        .run(move |c| svc::return_to_service(c, &rules, &qa.actor, id, &b))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
