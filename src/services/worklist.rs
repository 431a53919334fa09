//! What waits for whom: the lists of the signed-in person's start page.
//! Each batch's state is asked of its record ([`BatchRecord`]), as the
//! batch page asks it; the lists only choose which batches to read.

use super::batch_record;
use crate::db::models::parse_stored;
use crate::db::prepared::prepared;
use crate::domain::batch::BatchStatus;
use crate::domain::deviation::Severity;
use crate::domain::record::BatchRecord;
use crate::domain::release::{BlockerCode, Certification};
use crate::domain::result::ResultStatus;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// How many open batches the start page reads (newest first).
pub const OPEN_BATCHES_READ: i64 = 60;

/// A batch and what is still to do on it.
#[derive(Debug, Clone)]
pub struct BatchTodo {
    /// Batch id.
    pub id: Uuid,
    /// Batch number.
    pub batch_number: String,
    /// Its status.
    pub status: BatchStatus,
    /// Test codes without a current result.
    pub missing: Vec<String>,
    /// Whether the person asking may sign its release, or its audit-trail
    /// review (independence).
    pub you_may_release: bool,
}

/// A result a reviewer rejected that has no replacement yet.
#[derive(Debug, Clone)]
pub struct ToReplace {
    /// Batch id.
    pub batch_id: Uuid,
    /// Batch number.
    pub batch_number: String,
    /// The rejected result.
    pub result_id: Uuid,
    /// Its test.
    pub test_code: String,
    /// Its value.
    pub value: String,
    /// The reviewer's reason.
    pub reason: Option<String>,
}

/// An open deviation.
#[derive(Debug, Clone)]
pub struct OpenDeviation {
    /// Deviation id.
    pub id: Uuid,
    /// Its batch.
    pub batch_id: Uuid,
    /// The batch's number.
    pub batch_number: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Opened when.
    pub opened_at: DateTime<Utc>,
}

/// A specification version awaiting approval.
#[derive(Debug, Clone)]
pub struct DraftSpec {
    /// Specification id.
    pub id: Uuid,
    /// Its product's code.
    pub product_code: String,
    /// Version.
    pub version: String,
    /// Who wrote it.
    pub author: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Everything the start page may show; the page shows each person the
/// lists their roles act on.
#[derive(Debug, Clone, Default)]
pub struct WorkList {
    /// Batches in quarantine with results still to record.
    pub to_record: Vec<BatchTodo>,
    /// Rejected results awaiting their replacement.
    pub to_replace: Vec<ToReplace>,
    /// Batches every rule lets be released.
    pub ready_for_release: Vec<BatchTodo>,
    /// Batches in quarantine whose product requires a signed audit-trail
    /// review that is missing or stale.
    pub audit_review_waiting: Vec<BatchTodo>,
    /// Conditionally released batches whose pending results are still missing.
    pub conditional_awaiting: Vec<BatchTodo>,
    /// Open deviations, most severe and oldest first.
    pub open_deviations: Vec<OpenDeviation>,
    /// Specifications awaiting approval.
    pub specs_awaiting: Vec<DraftSpec>,
}

#[derive(QueryableByName)]
struct OpenBatch {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct DeviationRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    batch_id: Uuid,
    #[diesel(sql_type = Text)]
    batch_number: String,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    severity: String,
    #[diesel(sql_type = Timestamptz)]
    opened_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct DraftRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    product_code: String,
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    author: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

fn todo(record: &BatchRecord, viewer: Uuid) -> BatchTodo {
    BatchTodo {
        you_may_release: record.check_release(Certification::Full, viewer).is_ok(),
        id: record.batch.id,
        batch_number: record.batch.batch_number.clone(),
        status: record.batch.status,
        missing: record
            .readiness()
            .blockers
            .iter()
            .filter(|b| b.code == BlockerCode::MissingResult)
            .filter_map(|b| b.test_code.clone())
            .collect(),
    }
}

/// The work lists of `viewer` (read only).
pub fn work_list(conn: &mut PgConnection, viewer: Uuid) -> Result<WorkList, AppError> {
    let mut list = WorkList::default();
    let open: Vec<OpenBatch> = prepared(
        "(SELECT id FROM batches WHERE status = 'quarantine' ORDER BY id DESC LIMIT $1) \
         UNION ALL \
         (SELECT id FROM batches WHERE status = 'conditionally_released' ORDER BY id DESC LIMIT $1)",
    )
    .bind::<BigInt, _>(OPEN_BATCHES_READ)
    .load(conn)?;
    for b in open {
        let record = batch_record::read(conn, b.id)?;
        let t = todo(&record, viewer);
        let readiness = record.readiness();
        if record.batch.status == BatchStatus::Quarantine
            && readiness
                .blockers
                .iter()
                .any(|b| b.code == BlockerCode::AuditTrailNotReviewed)
        {
            list.audit_review_waiting.push(BatchTodo {
                you_may_release: !record.took_part(viewer),
                ..t.clone()
            });
        }
        match record.batch.status {
            BatchStatus::Quarantine if readiness.releasable => {
                list.ready_for_release.push(t);
            }
            BatchStatus::Quarantine if !t.missing.is_empty() => list.to_record.push(t),
            BatchStatus::ConditionallyReleased if !t.missing.is_empty() => {
                list.conditional_awaiting.push(t);
            }
            _ => {}
        }
        for (r, f) in record.results.iter().zip(record.result_facts()) {
            if f.status() == ResultStatus::ReviewRejected && !f.superseded {
                list.to_replace.push(ToReplace {
                    batch_id: record.batch.id,
                    batch_number: record.batch.batch_number.clone(),
                    result_id: r.id,
                    test_code: r.test_code.clone(),
                    value: r.value.clone(),
                    reason: record.signatures_on(r.id).find_map(|s| s.reason.clone()),
                });
            }
        }
    }
    let deviations: Vec<DeviationRow> = prepared(
        "SELECT d.id, d.batch_id, b.batch_number, d.title, d.severity, d.opened_at \
           FROM deviations d JOIN batches b ON b.id = d.batch_id \
          WHERE d.status = 'open' \
          ORDER BY CASE d.severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 ELSE 2 END, d.opened_at \
          LIMIT 200",
    )
    .load(conn)?;
    list.open_deviations = deviations
        .into_iter()
        .map(|d| {
            Ok(OpenDeviation {
                id: d.id,
                batch_id: d.batch_id,
                batch_number: d.batch_number,
                title: d.title,
                severity: parse_stored("deviation severity", &d.severity)?,
                opened_at: d.opened_at,
            })
        })
        .collect::<Result<_, AppError>>()?;
    let drafts: Vec<DraftRow> = prepared(
        "SELECT s.id, p.code AS product_code, s.version, u.full_name AS author, s.created_at \
           FROM specifications s JOIN products p ON p.id = s.product_id \
           JOIN users u ON u.id = s.author_id \
          WHERE s.status = 'draft' ORDER BY s.created_at LIMIT 200",
    )
    .load(conn)?;
    list.specs_awaiting = drafts
        .into_iter()
        .map(|d| DraftSpec {
            id: d.id,
            product_code: d.product_code,
            version: d.version,
            author: d.author,
            created_at: d.created_at,
        })
        .collect();
    Ok(list)
}
