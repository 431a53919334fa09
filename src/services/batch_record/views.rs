//! The batch record as the API and the pages show it, built from the one
//! loaded [`BatchRecord`]: no further reads.

use super::super::signatures::SignatureView;
use crate::domain::batch::BatchStatus;
use crate::domain::record::{Batch, BatchRecord, CustodyRecord, Deviation, RecordedResult};
use crate::domain::result::{ResultFacts, ResultStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchView {
    pub id: Uuid,
    pub batch_number: String,
    pub product_id: Uuid,
    /// The specification bound at creation.
    pub specification_id: Uuid,
    pub status: BatchStatus,
    pub manufactured_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub donor_din: Option<String>,
    pub intended_recipient: Option<String>,
    pub parent_batch_ids: Vec<Uuid>,
    /// As entered.
    pub quantity: Option<String>,
    pub unit: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<&Batch> for BatchView {
    fn from(b: &Batch) -> Self {
        BatchView {
            id: b.id,
            batch_number: b.batch_number.clone(),
            product_id: b.product_id,
            specification_id: b.spec_id,
            status: b.status,
            manufactured_at: b.manufactured_at,
            expires_at: b.expires_at,
            donor_din: b.donor_din.clone(),
            intended_recipient: b.intended_recipient.clone(),
            parent_batch_ids: b.parent_ids.clone(),
            quantity: b.quantity.clone(),
            unit: b.unit.clone(),
            created_by: b.created_by,
            created_at: b.created_at,
        }
    }
}

/// The batch record: the batch with everything recorded about it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchDetail {
    #[serde(flatten)]
    pub batch: BatchView,
    pub results: Vec<ResultView>,
    /// Signatures on the batch itself (release, rejection, recall).
    pub signatures: Vec<SignatureView>,
    pub deviations: Vec<DeviationView>,
    /// The chain of custody, in order.
    pub custody: Vec<CustodyRecord>,
}

impl From<&BatchRecord> for BatchDetail {
    fn from(r: &BatchRecord) -> Self {
        BatchDetail {
            batch: BatchView::from(&r.batch),
            results: result_views(r),
            signatures: signature_views(r, r.batch.id),
            deviations: r
                .deviations
                .iter()
                .map(|d| DeviationView::of(r, d))
                .collect(),
            custody: r.custody.clone(),
        }
    }
}

fn signature_views(r: &BatchRecord, entity_id: Uuid) -> Vec<SignatureView> {
    r.signatures_on(entity_id)
        .map(SignatureView::from)
        .collect()
}

/// A result as the API shows it: the result as recorded, its batch, its
/// status (derived from other facts) and its review signatures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResultView {
    #[serde(flatten)]
    pub result: RecordedResult,
    pub batch_id: Uuid,
    pub status: ResultStatus,
    pub signatures: Vec<SignatureView>,
}

impl ResultView {
    /// The view of `r`, whose status follows from `facts`.
    pub fn of(record: &BatchRecord, r: &RecordedResult, facts: &ResultFacts) -> Self {
        ResultView {
            result: r.clone(),
            batch_id: record.batch.id,
            status: facts.status(),
            signatures: signature_views(record, r.id),
        }
    }
}

/// Every result of the batch, oldest first, with its status.
pub fn result_views(record: &BatchRecord) -> Vec<ResultView> {
    record
        .results
        .iter()
        .zip(record.result_facts())
        .map(|(r, f)| ResultView::of(record, r, &f))
        .collect()
}

/// One result of the batch, with its status.
pub fn result_view(record: &BatchRecord, id: Uuid) -> Option<ResultView> {
    result_views(record).into_iter().find(|v| v.result.id == id)
}

/// A deviation as the API shows it: the deviation, its batch and its
/// signatures (the close).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviationView {
    #[serde(flatten)]
    pub deviation: Deviation,
    pub batch_id: Uuid,
    pub signatures: Vec<SignatureView>,
}

impl DeviationView {
    /// The view of deviation `d` of the batch.
    pub fn of(record: &BatchRecord, d: &Deviation) -> Self {
        DeviationView {
            deviation: d.clone(),
            batch_id: record.batch.id,
            signatures: signature_views(record, d.id),
        }
    }
}
