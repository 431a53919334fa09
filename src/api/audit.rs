//! `/audit`: the audit trail and its verification, for auditors and QA.

use super::extract::{PageQuery, Query};
use crate::app::Db;
use crate::auth::extractors::{AuditReader, Authorized};
use crate::error::AppError;
use crate::services::audit::{self as svc, AuditFilter};
use actix_web::{HttpResponse, get};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// `GET /audit` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    entity_type: Option<String>,
    entity_id: Option<Uuid>,
    actor: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Lists audit entries, oldest first.
#[utoipa::path(tag = "audit", params(AuditQuery), responses((status = 200, body = crate::services::Page<crate::services::audit::AuditEntryView>), crate::api::openapi::Problems))]
#[get("/audit")]
pub async fn list_audit(
    db: Db,
    _reader: Authorized<AuditReader>,
    Query(q): Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .to_request()?;
    let filter = AuditFilter {
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        actor: q.actor,
        from: q.from,
        to: q.to,
    };
    let list = db.run(move |c| svc::list(c, &filter, page)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Verifies every hash chain.
#[utoipa::path(tag = "audit", responses((status = 200, body = crate::services::verification::VerifyReport), crate::api::openapi::Problems))]
#[get("/audit/verify")]
pub async fn verify_audit(
    db: Db,
    _reader: Authorized<AuditReader>,
) -> Result<HttpResponse, AppError> {
    let report = db.run(crate::services::verification::verify).await?;
    Ok(HttpResponse::Ok().json(report))
}
