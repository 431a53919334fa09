//! `/instruments`: the registry, calibrations, out of service and return to service.

use super::extract::{Json, Query};
use crate::domain::instrument::Status;
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{
    Authorized, CurrentUser, MaintainsInstruments, RegistersInstruments, ReturnsInstruments,
};
use crate::services::instruments::{
    self as svc, CalibrationInput, InstrumentEventView, InstrumentView, NewInstrument,
};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::str::FromStr;
use uuid::Uuid;

/// `POST /instruments` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInstrument {
    /// Asset code, never reused.
    code: String,
    name: String,
    /// A lower-case word (`flow_cytometer`), matched against a test's `instrument_kind`.
    kind: String,
    location: Option<String>,
}

/// Registers an instrument (QA); `calibration_due` until calibrated.
#[utoipa::path(tag = "instruments", request_body = RegisterInstrument, responses((status = 201, body = InstrumentView), crate::api::openapi::Problems))]
#[post("/instruments")]
pub async fn register(
    db: Db,
    qa: Authorized<RegistersInstruments>,
    body: Json<RegisterInstrument>,
) -> Result<HttpResponse, AppError> {
    let b = body.parse()?;
    let input = NewInstrument {
        code: b.code,
        name: b.name,
        kind: b.kind,
        location: b.location,
    };
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

/// `POST /instruments/{id}/calibrations` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCalibration {
    performed_at: DateTime<Utc>,
    /// `pass` or `fail`; a failure takes the instrument out of service.
    outcome: String,
    valid_until: DateTime<Utc>,
    certificate: Option<String>,
    notes: Option<String>,
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
    let b = body.parse()?;
    let id = id.into_inner();
    let input = CalibrationInput {
        performed_at: b.performed_at,
        outcome: b.outcome,
        valid_until: b.valid_until,
        certificate: b.certificate,
        notes: b.notes,
    };
    let v = db
        .run(move |c| svc::calibrate(c, &who.actor, id, &input))
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// `POST /instruments/{id}/out-of-service` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutOfService {
    reason: String,
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
        .run(move |c| svc::take_out_of_service(c, &who.actor, id, &b.reason))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// `POST /instruments/{id}/return-to-service` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnToService {
    password: String,
    reason: String,
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
        .run(move |c| svc::return_to_service(c, &rules, &qa.actor, id, &b.reason, &b.password))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
