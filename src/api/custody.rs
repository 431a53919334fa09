//! `/batches/{id}/custody`: the chain of custody.

use super::create;
use super::extract::Creation;
use crate::domain::custody::RecordCustody;
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{Authorized, CurrentUser, RecordsCustody};
use crate::services::custody as svc;
use actix_web::{HttpResponse, get, post, web};
use uuid::Uuid;

/// Records a custody event (technician, QA).
#[utoipa::path(tag = "custody", request_body = RecordCustody, params(crate::api::IdempotencyHeader), responses((status = 201, body = crate::domain::record::CustodyRecord), crate::api::openapi::Problems))]
#[post("/batches/{id}/custody")]
pub async fn record_custody(
    db: Db,
    who: Authorized<RecordsCustody>,
    id: web::Path<Uuid>,
    req: Creation<RecordCustody>,
) -> Result<HttpResponse, AppError> {
    let (input, idempotency) = req.parse()?;
    let batch_id = id.into_inner();
    let actor = who.actor.clone();
    create(db, actor.id, idempotency, move |c| {
        svc::record_event(c, &actor, batch_id, &input)
    })
    .await
}

/// The batch's custody events, in order.
#[utoipa::path(tag = "custody", responses((status = 200, body = crate::services::Page<crate::domain::record::CustodyRecord>), crate::api::openapi::Problems))]
#[get("/batches/{id}/custody")]
pub async fn list_custody(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let events = db.run(move |c| svc::events_of(c, id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": events, "next_cursor": null })))
}
