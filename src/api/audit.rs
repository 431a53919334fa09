//! `/audit`: the audit trail and its verification, for auditors and QA.

use super::extract::{PageQuery, Query};
use crate::error::AppError;
use crate::http::auth::{AuditReader, Authorized, CurrentUser};
use crate::http::{Db, ReportDb};
use crate::services::anchors::{self, AnchorCheck, AnchorView};
use crate::services::audit::{self as svc, AuditFilter};
use crate::services::verification::VerifyReport;
use actix_web::{HttpResponse, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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
    /// `json` (the default) or `csv` (the page's entries; the next page's
    /// cursor in `X-Next-Cursor`).
    format: Option<String>,
}

/// Lists audit entries, oldest first (as CSV with `format=csv`).
#[utoipa::path(tag = "audit", params(AuditQuery), responses((status = 200, content((crate::services::Page<crate::services::audit::AuditEntryView> = "application/json"), (String = "text/csv"))), crate::api::openapi::Problems))]
#[get("/audit")]
pub async fn list_audit(
    db: ReportDb,
    _reader: Authorized<AuditReader>,
    Query(q): Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let csv = super::wants_csv(q.format.as_deref())?;
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
    if csv {
        let mut res = HttpResponse::Ok();
        res.content_type(crate::report::csv::MEDIA_TYPE)
            .insert_header(crate::http::download::download(false, "audit.csv"));
        if let Some(next) = &list.next_cursor {
            res.insert_header(("X-Next-Cursor", next.as_str()));
        }
        return Ok(res.body(svc::list_csv(&list)?));
    }
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /audit/verify` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// Also check every anchor (those the database keeps and the files in
    /// `CELLQC_ANCHOR_DIR`): each must be validly signed, and every chain must
    /// still hold each anchored entry with its anchored hash.
    anchors: Option<bool>,
}

/// `GET /audit/verify` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyAnswer {
    #[serde(flatten)]
    report: VerifyReport,
    /// With `?anchors=true`: what checking the anchors found (its breaks are
    /// also in `broken`, and make `ok` false).
    #[serde(skip_serializing_if = "Option::is_none")]
    anchors: Option<AnchorCheck>,
}

/// Verifies every hash chain; with `?anchors=true`, also against every anchor.
#[utoipa::path(tag = "audit", params(VerifyQuery), responses((status = 200, body = VerifyAnswer), crate::api::openapi::Problems))]
#[get("/audit/verify")]
pub async fn verify_audit(
    db: ReportDb,
    _reader: Authorized<AuditReader>,
    Query(q): Query<VerifyQuery>,
) -> Result<HttpResponse, AppError> {
    let sink = db.state().anchors.clone();
    let with_anchors = q.anchors.unwrap_or(false);
    let answer = db
        .run(move |c| {
            let mut report = crate::services::verification::verify(c, &sink.key.verifying())?;
            let anchors = if with_anchors {
                let check = anchors::check_kept(c, &sink)?;
                report.ok = report.ok && check.ok;
                report.broken.extend(check.broken.iter().cloned());
                Some(check)
            } else {
                None
            };
            Ok(VerifyAnswer { report, anchors })
        })
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Anchors the trail now: a signed Merkle root over every chain's head, kept
/// in the database, as a file in `CELLQC_ANCHOR_DIR` and emailed to QA.
#[utoipa::path(tag = "audit", responses((status = 201, body = AnchorView), crate::api::openapi::Problems))]
#[post("/audit/anchors")]
pub async fn create_anchor(
    db: Db,
    reader: Authorized<AuditReader>,
) -> Result<HttpResponse, AppError> {
    let sink = db.state().anchors.clone();
    let made = db
        .run(move |c| anchors::create(c, &sink, Some(&reader.actor), false))
        .await?;
    match made {
        Some(a) => Ok(HttpResponse::Created().json(a)),
        None => Err(AppError::Internal(anyhow::anyhow!(
            "an anchor was asked for and not made"
        ))),
    }
}

/// The anchors the database keeps, newest first.
#[utoipa::path(tag = "audit", params(PageQuery), responses((status = 200, body = crate::services::Page<AnchorView>), crate::api::openapi::Problems))]
#[get("/audit/anchors")]
pub async fn list_anchors(
    db: Db,
    reader: Authorized<AuditReader>,
    Query(page): Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let page = page.to_request()?;
    let list = db
        .run(move |c| anchors::list(c, &reader.actor, page))
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /audit/anchor-key` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnchorKeyView {
    /// Key id, as anchors name it.
    key_id: String,
    /// Always `ed25519`.
    algorithm: &'static str,
    /// The public key, hex (32 bytes).
    public_key: String,
}

/// The public key that checks anchors and backup manifests.
#[utoipa::path(tag = "audit", responses((status = 200, body = AnchorKeyView), crate::api::openapi::Problems))]
#[get("/audit/anchor-key")]
pub async fn anchor_key(
    state: actix_web::web::Data<crate::http::AppState>,
    _user: CurrentUser,
) -> HttpResponse {
    HttpResponse::Ok().json(AnchorKeyView {
        key_id: state.anchors.key.key_id.clone(),
        algorithm: "ed25519",
        public_key: state.anchors.key.public_hex(),
    })
}
