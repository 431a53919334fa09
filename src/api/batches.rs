//! `/batches`: create, list, the batch record, its history.

use super::create;
use super::extract::{Creation, PageQuery, Query, raw_text};
use crate::domain::batch::BatchStatus;
use crate::error::AppError;
use crate::http::auth::{AuditReader, Authorized, Caller, CreatesBatches, CurrentUser, SignedIn};
use crate::http::{Db, ReportDb};
use crate::report::coa::CoaLang;
use crate::services::batches::{self as svc, BatchFilter, NewBatchInput};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// `POST /batches` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    batch_number: String,
    product_id: Uuid,
    manufactured_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    donor_din: Option<String>,
    intended_recipient: Option<String>,
    parent_batch_ids: Option<Vec<Uuid>>,
    #[schema(value_type = Option<crate::api::openapi::DecimalInput>)]
    quantity: Option<Box<RawValue>>,
    unit: Option<String>,
}

/// Creates a batch bound to its product's effective specification.
#[utoipa::path(tag = "batches", request_body = CreateBatch, params(crate::api::IdempotencyHeader), responses((status = 201, body = crate::services::batch_record::views::BatchView), crate::api::openapi::Problems))]
#[post("/batches")]
pub async fn create_batch(
    db: Db,
    who: Authorized<CreatesBatches>,
    req: Creation<CreateBatch>,
) -> Result<HttpResponse, AppError> {
    let (body, idempotency) = req.parse()?;
    let b = body;
    let input = NewBatchInput {
        batch_number: b.batch_number,
        product_id: b.product_id,
        manufactured_at: b.manufactured_at,
        expires_at: b.expires_at,
        donor_din: b.donor_din,
        intended_recipient: b.intended_recipient,
        parent_batch_ids: b.parent_batch_ids.unwrap_or_default(),
        quantity: b.quantity.as_deref().map(raw_text),
        unit: b.unit,
    };
    let actor = who.actor.clone();
    create(db, actor.id, idempotency, move |c| {
        svc::create_batch(c, &actor, &input)
    })
    .await
}

/// `GET /batches` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BatchQuery {
    status: Option<String>,
    product_id: Option<Uuid>,
    q: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Lists batches.
#[utoipa::path(tag = "batches", params(BatchQuery), responses((status = 200, body = crate::services::Page<crate::services::batch_record::views::BatchView>), crate::api::openapi::Problems))]
#[get("/batches")]
pub async fn list_batches(
    db: Db,
    _user: CurrentUser,
    Query(q): Query<BatchQuery>,
) -> Result<HttpResponse, AppError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .to_request()?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(BatchStatus::try_from(s).map_err(|_| {
            AppError::invalid_field_said(
                "status",
                "fe-must-be-quarantine-conditionally-released-released-rejected",
            )
        })?),
    };
    let filter = BatchFilter {
        status,
        product_id: q.product_id,
        q: q.q,
    };
    let list = db.run(move |c| svc::list_batches(c, &filter, page)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// The batch record with results, signatures, deviations and custody.
#[utoipa::path(tag = "batches", responses((status = 200, body = crate::services::batch_record::views::BatchDetail), crate::api::openapi::Problems))]
#[get("/batches/{id}")]
pub async fn get_batch(
    user: Caller<SignedIn>,
    db: Db,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let batch = db.run_as(user, move |c, _| svc::get_batch(c, id)).await?;
    Ok(HttpResponse::Ok().json(batch))
}

/// `GET /batches/{id}/history` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    format: Option<String>,
}

/// Every audit entry of the batch, oldest first, as JSON or CSV.
#[utoipa::path(tag = "audit", params(HistoryQuery), responses((status = 200, description = "JSON `{batch_id, items, next_cursor}`, or CSV with `format=csv`", content((crate::services::audit::BatchHistory = "application/json"), (String = "text/csv"))), crate::api::openapi::Problems))]
#[get("/batches/{id}/history")]
pub async fn batch_history(
    db: ReportDb,
    _reader: Authorized<AuditReader>,
    id: web::Path<Uuid>,
    Query(q): Query<HistoryQuery>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let csv = super::wants_csv(q.format.as_deref())?;
    if csv {
        let body = db
            .run_for_batch(id, move |c| crate::services::history::csv_export(c, id))
            .await?;
        return Ok(HttpResponse::Ok()
            .content_type(crate::report::csv::MEDIA_TYPE)
            .insert_header(crate::http::download::download(
                false,
                &format!("batch-{id}-history.csv"),
            ))
            .body(body));
    }
    let entries = db
        .run_for_batch(id, move |c| crate::services::history::history(c, id))
        .await?;
    Ok(
        HttpResponse::Ok().json(crate::services::audit::BatchHistory {
            batch_id: id,
            items: entries,
            next_cursor: None,
        }),
    )
}

/// `GET /batches/{id}/certificate` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CertificateQuery {
    /// `en`, `zh-CN` or `bilingual` (default: the requesting user's language).
    #[param(inline)]
    lang: Option<CoaLang>,
}

/// The Certificate of Analysis (PDF) of a released or conditionally released
/// batch, in English, Chinese or both.
#[utoipa::path(tag = "batches", params(CertificateQuery), responses((status = 200, description = "Certificate of Analysis", body = crate::api::openapi::Binary, content_type = "application/pdf"), crate::api::openapi::Problems))]
#[get("/batches/{id}/certificate")]
pub async fn batch_certificate(
    db: ReportDb,
    user: CurrentUser,
    id: web::Path<Uuid>,
    Query(query): Query<CertificateQuery>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let actor = user.actor.clone();
    let lang = query.lang.unwrap_or(CoaLang::of(actor.locale));
    let key = db.state().signing.seal.verifying();
    let data = db
        .run_for_batch(id, move |c| {
            // Printed only as signed.
            crate::services::verification::check_batch_record(c, &key, id)?;
            crate::services::certificate::coa_data(c, id, &actor, lang)
        })
        .await?;
    let number = data.batch_number.clone();
    let pdf = web::block(move || crate::report::coa::render(&data))
        .await?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering the certificate: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(crate::http::download::download(
            true,
            &format!("CoA-{}.pdf", crate::report::name_part(&number)),
        ))
        .body(pdf))
}
