//! The batch record as the API and the pages show it, built from the one
//! loaded [`BatchRecord`]: no further reads.

use super::super::signatures::SignatureView;
use crate::domain::audit::ActorRef;
use crate::domain::batch::BatchStatus;
use crate::domain::custody::CustodyEvent;
use crate::domain::deviation::{Conclusion, DeviationKind, DeviationStatus, Severity};
use crate::domain::record::{Batch, BatchRecord, CustodyRecord, Deviation, RecordedResult};
use crate::domain::result::{ResultFacts, ResultStatus};
use crate::domain::spec::Outcome;
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
    pub custody: Vec<CustodyView>,
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
            custody: r
                .custody
                .iter()
                .map(|c| CustodyView::of(r.batch.id, c))
                .collect(),
        }
    }
}

fn signature_views(r: &BatchRecord, entity_id: Uuid) -> Vec<SignatureView> {
    r.signatures_on(entity_id)
        .map(SignatureView::from)
        .collect()
}

/// A result as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResultView {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub test_code: String,
    /// As entered.
    pub value: String,
    pub unit: Option<String>,
    pub outcome: Outcome,
    pub status: ResultStatus,
    pub performed_by: ActorRef,
    pub performed_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub instrument: Option<String>,
    pub comment: Option<String>,
    pub replaces_result_id: Option<Uuid>,
    pub reason: Option<String>,
    pub signatures: Vec<SignatureView>,
}

impl ResultView {
    /// The view of `r`, whose status follows from `facts`.
    pub fn of(record: &BatchRecord, r: &RecordedResult, facts: &ResultFacts) -> Self {
        ResultView {
            id: r.id,
            batch_id: record.batch.id,
            test_code: r.test_code.clone(),
            value: r.value.clone(),
            unit: r.unit.clone(),
            outcome: r.outcome,
            status: facts.status(),
            performed_by: r.performed_by.clone(),
            performed_at: r.performed_at,
            recorded_at: r.recorded_at,
            instrument: r.instrument.clone(),
            comment: r.comment.clone(),
            replaces_result_id: r.replaces_result_id,
            reason: r.reason.clone(),
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
    result_views(record).into_iter().find(|v| v.id == id)
}

/// A deviation as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviationView {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub result_id: Option<Uuid>,
    pub kind: DeviationKind,
    pub severity: Severity,
    pub status: DeviationStatus,
    pub title: String,
    pub description: String,
    pub conclusion: Option<Conclusion>,
    pub root_cause: Option<String>,
    pub opened_by: Option<Uuid>,
    pub opened_at: DateTime<Utc>,
    pub closed_by: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    pub signatures: Vec<SignatureView>,
}

impl DeviationView {
    /// The view of deviation `d` of the batch.
    pub fn of(record: &BatchRecord, d: &Deviation) -> Self {
        DeviationView {
            id: d.id,
            batch_id: record.batch.id,
            result_id: d.result_id,
            kind: d.kind,
            severity: d.severity,
            status: d.status,
            title: d.title.clone(),
            description: d.description.clone(),
            conclusion: d.conclusion,
            root_cause: d.root_cause.clone(),
            opened_by: d.opened_by,
            opened_at: d.opened_at,
            closed_by: d.closed_by,
            closed_at: d.closed_at,
            signatures: signature_views(record, d.id),
        }
    }
}

/// A custody event as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustodyView {
    pub id: Uuid,
    pub batch_id: Uuid,
    /// Position in the batch's hash chain.
    pub seq: i64,
    pub event: CustodyEvent,
    pub occurred_at: DateTime<Utc>,
    pub location: String,
    pub party: String,
    /// As entered.
    pub temperature_c: Option<String>,
    pub excursion: bool,
    pub deviation_id: Option<Uuid>,
    pub container_id: Option<String>,
    pub recipient_id: Option<String>,
    pub internal: bool,
    pub notes: Option<String>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

impl CustodyView {
    /// The view of custody event `c` of batch `batch_id`.
    pub fn of(batch_id: Uuid, c: &CustodyRecord) -> Self {
        CustodyView {
            id: c.id,
            batch_id,
            seq: c.seq,
            event: c.event,
            occurred_at: c.occurred_at,
            location: c.location.clone(),
            party: c.party.clone(),
            temperature_c: c.temperature_c.clone(),
            excursion: c.excursion,
            deviation_id: c.deviation_id,
            container_id: c.container_id.clone(),
            recipient_id: c.recipient_id.clone(),
            internal: c.internal,
            notes: c.notes.clone(),
            recorded_by: c.recorded_by,
            recorded_at: c.recorded_at,
            prev_hash: c.prev_hash.clone(),
            hash: c.hash.clone(),
        }
    }
}
