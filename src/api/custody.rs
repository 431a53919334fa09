//! `/batches/{id}/custody`: the chain of custody.

use super::create;
use super::extract::{Creation, raw_text};
use crate::error::AppError;
use crate::http::Db;
use crate::http::auth::{Authorized, CurrentUser, RecordsCustody};
use crate::services::custody::{self as svc, NewCustodyInput};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// `POST /batches/{id}/custody` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustodyBody {
    event: String,
    occurred_at: DateTime<Utc>,
    location: String,
    party: String,
    #[schema(value_type = Option<crate::api::openapi::DecimalInput>)]
    temperature_c: Option<Box<RawValue>>,
    container_id: Option<String>,
    recipient_id: Option<String>,
    internal: Option<bool>,
    notes: Option<String>,
    /// The DIN scanned from the bag's label (barcode content or the DIN as
    /// printed); a mismatch is `409 identity_mismatch` and records nothing.
    scanned_din: Option<String>,
}

/// Records a custody event (technician, QA).
#[utoipa::path(tag = "custody", request_body = CustodyBody, params(crate::api::IdempotencyHeader), responses((status = 201, body = crate::domain::record::CustodyRecord), crate::api::openapi::Problems))]
#[post("/batches/{id}/custody")]
pub async fn record_custody(
    db: Db,
    who: Authorized<RecordsCustody>,
    id: web::Path<Uuid>,
    req: Creation<CustodyBody>,
) -> Result<HttpResponse, AppError> {
    let (b, idempotency) = req.parse()?;
    let batch_id = id.into_inner();
    let input = NewCustodyInput {
        event: b.event,
        occurred_at: b.occurred_at,
        location: b.location,
        party: b.party,
        temperature_c: b.temperature_c.as_deref().map(raw_text),
        container_id: b.container_id,
        recipient_id: b.recipient_id,
        internal: b.internal.unwrap_or(false),
        notes: b.notes,
        scanned_din: b.scanned_din,
    };
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
