//! Reading a batch's record in one statement, and turning its stored rows
//! into the domain's types (stored names parsed here, once).
//!
//! The statement returns the batch, its product, its specification's tests,
//! results (with their performers' names), signatures, deviations, custody
//! events and parents as JSON arrays of the tables' own rows, plus the head
//! of the batch's hash chain and the database time. One statement is one
//! snapshot: what it returns is consistent without a transaction.

use crate::db::models::{
    BatchRow, CustodyRow, DeviationRow, ProductRow, ResultRow, SignatureRow, SpecTestRow,
    parse_stored,
};
use crate::domain::audit::ActorRef;
use crate::domain::custody::StorageRange;
use crate::domain::decimal::Decimal;
use crate::domain::record::{
    Batch, BatchRecord, CustodyRecord, Deviation, Product, RecordedResult, Signature, Specification,
};
use crate::domain::release::ParentFact;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use serde::Deserialize;
use uuid::Uuid;

/// The statement a batch's record is read with (`$1`: the batch id); the
/// load generator replays it.
pub const LOAD: &str = "\
SELECT row_to_json(b)::text AS batch, row_to_json(p)::text AS product, s.version AS spec_version,
  (SELECT coalesce(json_agg(t ORDER BY t.position), '[]') FROM spec_tests t
    WHERE t.spec_id = b.spec_id)::text AS tests,
  (SELECT coalesce(json_agg(json_build_array(r, u.username, u.full_name) ORDER BY r.id), '[]')
     FROM results r JOIN users u ON u.id = r.performed_by WHERE r.batch_id = b.id)::text AS results,
  (SELECT coalesce(json_agg(g ORDER BY g.id), '[]') FROM signatures g
    WHERE g.batch_id = b.id)::text AS signatures,
  (SELECT coalesce(json_agg(d ORDER BY d.id), '[]') FROM deviations d
    WHERE d.batch_id = b.id)::text AS deviations,
  (SELECT coalesce(json_agg(c ORDER BY c.seq), '[]') FROM custody_events c
    WHERE c.batch_id = b.id)::text AS custody,
  (SELECT coalesce(json_agg(json_build_object('id', pb.id, 'batch_number', pb.batch_number,
       'status', pb.status) ORDER BY pb.batch_number), '[]')
     FROM batch_parents bp JOIN batches pb ON pb.id = bp.parent_id
    WHERE bp.batch_id = b.id)::text AS parents,
  h.seq AS head_seq, h.hash AS head_hash, GREATEST(clock_timestamp(), h.last_at) AS now
FROM batches b
JOIN products p ON p.id = b.product_id
JOIN specifications s ON s.id = b.spec_id
LEFT JOIN audit_chain_heads h ON h.chain = 'batch:' || b.id::text
WHERE b.id = $1";

#[derive(QueryableByName)]
struct Loaded {
    #[diesel(sql_type = Text)]
    batch: String,
    #[diesel(sql_type = Text)]
    product: String,
    #[diesel(sql_type = Text)]
    spec_version: String,
    #[diesel(sql_type = Text)]
    tests: String,
    #[diesel(sql_type = Text)]
    results: String,
    #[diesel(sql_type = Text)]
    signatures: String,
    #[diesel(sql_type = Text)]
    deviations: String,
    #[diesel(sql_type = Text)]
    custody: String,
    #[diesel(sql_type = Text)]
    parents: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    head_seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    head_hash: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

#[derive(Deserialize)]
struct StoredParent {
    id: Uuid,
    batch_number: String,
    status: String,
}

/// A record and the head of its hash chain, as read.
pub(super) struct Read {
    pub(super) record: BatchRecord,
    /// The chain head's sequence number and hash (none: the chain has no head).
    pub(super) head: Option<(i64, String)>,
}

fn decode<'a, T: Deserialize<'a>>(what: &str, json: &'a str) -> Result<T, AppError> {
    serde_json::from_str(json)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context(format!("decoding {what}"))))
}

/// Reads the record of batch `id` in one statement; `None` when there is
/// no such batch.
pub(super) fn read(conn: &mut PgConnection, id: Uuid) -> Result<Option<Read>, AppError> {
    let Some(l): Option<Loaded> = diesel::sql_query(LOAD)
        .bind::<diesel::sql_types::Uuid, _>(id)
        .get_result(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let parents: Vec<StoredParent> = decode("parents", &l.parents)?;
    let mut parent_ids: Vec<Uuid> = parents.iter().map(|p| p.id).collect();
    parent_ids.sort();
    let tests: Vec<SpecTestRow> = decode("tests", &l.tests)?;
    let results: Vec<(ResultRow, String, String)> = decode("results", &l.results)?;
    let signatures: Vec<SignatureRow> = decode("signatures", &l.signatures)?;
    let deviations: Vec<DeviationRow> = decode("deviations", &l.deviations)?;
    let custody: Vec<CustodyRow> = decode("custody", &l.custody)?;
    let batch: BatchRow = decode("batch", &l.batch)?;
    let record = BatchRecord {
        spec: Specification {
            id: batch.spec_id,
            version: l.spec_version,
            tests: tests
                .iter()
                .map(SpecTestRow::to_test_def)
                .collect::<Result<_, _>>()?,
        },
        batch: batch_of(batch, parent_ids)?,
        product: product_of(&decode("product", &l.product)?)?,
        results: results
            .into_iter()
            .map(|(r, username, full_name)| {
                let performer = ActorRef {
                    id: r.performed_by,
                    username,
                    full_name,
                };
                result_of(r, performer)
            })
            .collect::<Result<_, _>>()?,
        signatures: signatures
            .iter()
            .map(Signature::try_from)
            .collect::<Result<_, _>>()?,
        deviations: deviations
            .into_iter()
            .map(deviation_of)
            .collect::<Result<_, _>>()?,
        custody: custody
            .into_iter()
            .map(custody_of)
            .collect::<Result<_, _>>()?,
        parents: parents
            .into_iter()
            .map(|p| {
                Ok(ParentFact {
                    status: parse_stored("batch status", &p.status)?,
                    batch_number: p.batch_number,
                })
            })
            .collect::<Result<_, AppError>>()?,
        now: l.now,
    };
    Ok(Some(Read {
        record,
        head: l.head_seq.zip(l.head_hash),
    }))
}

/// A stored batch, its status parsed.
pub fn batch_of(r: BatchRow, parent_ids: Vec<Uuid>) -> Result<Batch, AppError> {
    Ok(Batch {
        status: parse_stored("batch status", &r.status)?,
        id: r.id,
        batch_number: r.batch_number,
        product_id: r.product_id,
        spec_id: r.spec_id,
        manufactured_at: r.manufactured_at,
        expires_at: r.expires_at,
        donor_din: r.donor_din,
        intended_recipient: r.intended_recipient,
        parent_ids,
        quantity: r.quantity,
        unit: r.unit,
        created_by: r.created_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// What the rules need of a stored product.
pub fn product_of(p: &ProductRow) -> Result<Product, AppError> {
    let bound = |what: &'static str, t: &Option<String>| {
        t.as_deref()
            .map(|t| {
                Decimal::from_stored(t).map_err(|_| {
                    AppError::Internal(anyhow::anyhow!("product {} has a bad {what}: {t}", p.id))
                })
            })
            .transpose()
    };
    Ok(Product {
        id: p.id,
        code: p.code.clone(),
        name: p.name.clone(),
        product_type: p.product_type.clone(),
        storage: StorageRange {
            min: bound("storage_min_c", &p.storage_min_c)?,
            max: bound("storage_max_c", &p.storage_max_c)?,
        },
        release_signatures_required: usize::try_from(p.release_signatures_required).unwrap_or(1),
    })
}

/// A stored result, its outcome parsed.
pub fn result_of(r: ResultRow, performed_by: ActorRef) -> Result<RecordedResult, AppError> {
    Ok(RecordedResult {
        outcome: parse_stored("result outcome", &r.outcome)?,
        id: r.id,
        test_code: r.test_code,
        value: r.value_text,
        unit: r.unit,
        performed_by,
        performed_at: r.performed_at,
        recorded_at: r.recorded_at,
        instrument: r.instrument,
        comment: r.comment,
        replaces_result_id: r.replaces_result_id,
        reason: r.reason,
    })
}

/// A stored deviation, its kind, severity, status and conclusion parsed.
pub fn deviation_of(d: DeviationRow) -> Result<Deviation, AppError> {
    Ok(Deviation {
        kind: parse_stored("deviation kind", &d.kind)?,
        severity: parse_stored("deviation severity", &d.severity)?,
        status: parse_stored("deviation status", &d.status)?,
        conclusion: d
            .conclusion
            .as_deref()
            .map(|c| parse_stored("deviation conclusion", c))
            .transpose()?,
        id: d.id,
        result_id: d.result_id,
        title: d.title,
        description: d.description,
        root_cause: d.root_cause,
        opened_by: d.opened_by,
        opened_at: d.opened_at,
        closed_by: d.closed_by,
        closed_at: d.closed_at,
    })
}

/// A stored custody event, its event parsed.
pub fn custody_of(c: CustodyRow) -> Result<CustodyRecord, AppError> {
    Ok(CustodyRecord {
        event: parse_stored("custody event", &c.event)?,
        id: c.id,
        batch_id: c.batch_id,
        occurred_at: c.occurred_at,
        location: c.location,
        party: c.party,
        temperature_c: c.temperature_c,
        excursion: c.excursion,
        deviation_id: c.deviation_id,
        container_id: c.container_id,
        recipient_id: c.recipient_id,
        internal: c.internal,
        notes: c.notes,
        recorded_by: c.recorded_by,
        recorded_at: c.recorded_at,
        seq: c.seq,
        prev_hash: c.prev_hash,
        hash: c.hash,
    })
}
