//! Reading a batch's record in one statement, and turning its stored rows
//! into the domain's types (stored names parsed here, once).
//!
//! The statement returns the batch row and, as binary arrays of the tables'
//! own rows, its results (and their performers' names), signatures,
//! deviations, custody events and parents, plus the head of the batch's hash
//! chain, the last position of it QA signed a review of and the entries
//! after that position (none when never reviewed: the release gate's
//! `audit_trail_not_reviewed`), and the database time. Each array element
//! is decoded by the row struct's own `Queryable` derive, in the table's
//! column order. One
//! statement is one snapshot: what it returns is consistent without a
//! transaction. The product and the specification are immutable (triggers
//! refuse any change), so they come from [`super::fixed`], read once per
//! process.

use super::fixed;
use crate::db::digest::HexDigest;
use crate::db::models::{
    BatchRow, CustodyRow, DeviationRow, ResultRow, SignatureRow, parse_stored,
};
use crate::db::prepared::prepared;
use crate::db::schema::{batches, custody_events, deviations, results, signatures};
use crate::domain::audit::ActorRef;
use crate::domain::record::{
    Batch, BatchRecord, CustodyRecord, Deviation, RecordedResult, ReviewedTrail, TrailEntry,
};
use crate::domain::release::ParentFact;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::pg::{Pg, PgConnection, PgValue};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bytea, Jsonb, Nullable, Record, Text, Timestamptz, Uuid as SqlUuid,
};
use std::collections::HashMap;
use uuid::Uuid;

/// The statement a batch's record is read with (`$1`: the batch id); the
/// load generator replays it.
pub const LOAD: &str = "\
SELECT b AS batch,
  ARRAY(SELECT r FROM results r WHERE r.batch_id = b.id ORDER BY r.id) AS results,
  ARRAY(SELECT ROW(u.id, u.username, u.full_name) FROM users u
         WHERE u.id IN (SELECT r.performed_by FROM results r WHERE r.batch_id = b.id)) AS performers,
  ARRAY(SELECT g FROM signatures g WHERE g.batch_id = b.id ORDER BY g.id) AS signatures,
  ARRAY(SELECT d FROM deviations d WHERE d.batch_id = b.id ORDER BY d.id) AS deviations,
  ARRAY(SELECT c FROM custody_events c WHERE c.batch_id = b.id ORDER BY c.seq) AS custody,
  ARRAY(SELECT e.hash FROM custody_events c JOIN audit_entries e ON e.id = c.audit_entry_id
         WHERE c.batch_id = b.id ORDER BY c.seq) AS custody_hashes,
  ARRAY(SELECT ROW(mu.result_id, mu.material_id) FROM material_uses mu
         WHERE mu.batch_id = b.id AND mu.result_id IS NOT NULL ORDER BY mu.id) AS result_materials,
  ARRAY(SELECT ROW(pb.id, pb.batch_number, pb.status) FROM batch_parents bp
          JOIN batches pb ON pb.id = bp.parent_id
         WHERE bp.batch_id = b.id ORDER BY pb.batch_number) AS parents,
  rv.up_to_seq AS reviewed_up_to,
  ARRAY(SELECT ROW(e.seq, e.action, e.after) FROM audit_entries e
         WHERE e.chain_id = h.id AND e.seq > rv.up_to_seq ORDER BY e.seq) AS since_review,
  h.id AS head_id, h.seq AS head_seq, h.hash AS head_hash, GREATEST(clock_timestamp(), h.last_at) AS now
FROM batches b
LEFT JOIN audit_chain_heads h ON h.chain = 'batch:' || b.id::text
LEFT JOIN LATERAL (SELECT max(ar.up_to_seq) AS up_to_seq FROM audit_reviews ar
                    WHERE ar.batch_id = b.id) rv ON true
WHERE b.id = $1";

/// Rows of a table (or a `ROW(...)`), decoded from a binary array of
/// records by the row struct's `Queryable` derive.
pub(super) struct Rows<T>(pub(super) Vec<T>);

impl<T, ST> FromSql<Array<Record<ST>>, Pg> for Rows<T>
where
    T: Queryable<ST, Pg>,
    T::Row: FromSql<Record<ST>, Pg>,
{
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <Vec<T::Row> as FromSql<Array<Record<ST>>, Pg>>::from_sql(value)?
            .into_iter()
            .map(T::build)
            .collect::<deserialize::Result<_>>()
            .map(Rows)
    }
}

/// One row of a table, decoded from a binary record.
pub(super) struct One<T>(pub(super) T);

impl<T, ST> FromSql<Record<ST>, Pg> for One<T>
where
    T: Queryable<ST, Pg>,
    T::Row: FromSql<Record<ST>, Pg>,
{
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        T::build(<T::Row as FromSql<Record<ST>, Pg>>::from_sql(value)?).map(One)
    }
}

type Named = (SqlUuid, Text, Text);

#[derive(QueryableByName)]
struct Loaded {
    #[diesel(sql_type = Record<batches::SqlType>)]
    batch: One<BatchRow>,
    #[diesel(sql_type = Array<Record<results::SqlType>>)]
    results: Rows<ResultRow>,
    #[diesel(sql_type = Array<Record<Named>>)]
    performers: Rows<(Uuid, String, String)>,
    #[diesel(sql_type = Array<Record<signatures::SqlType>>)]
    signatures: Rows<SignatureRow>,
    #[diesel(sql_type = Array<Record<deviations::SqlType>>)]
    deviations: Rows<DeviationRow>,
    #[diesel(sql_type = Array<Record<custody_events::SqlType>>)]
    custody: Rows<CustodyRow>,
    #[diesel(sql_type = Array<Bytea>)]
    custody_hashes: Vec<HexDigest>,
    #[diesel(sql_type = Array<Record<(SqlUuid, SqlUuid)>>)]
    result_materials: Rows<(Uuid, Uuid)>,
    #[diesel(sql_type = Array<Record<Named>>)]
    parents: Rows<(Uuid, String, String)>,
    #[diesel(sql_type = Nullable<BigInt>)]
    reviewed_up_to: Option<i64>,
    #[diesel(sql_type = Array<Record<(BigInt, Text, Nullable<Jsonb>)>>)]
    since_review: Rows<(i64, String, Option<serde_json::Value>)>,
    #[diesel(sql_type = Nullable<BigInt>)]
    head_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    head_seq: Option<i64>,
    #[diesel(sql_type = Nullable<Bytea>)]
    head_hash: Option<HexDigest>,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// A record and the head of its hash chain, as read.
pub(super) struct Read {
    pub(super) record: BatchRecord,
    /// The chain head's key, sequence number and hash (none: the chain has
    /// no head).
    pub(super) head: Option<(i64, i64, String)>,
}

/// Reads the record of batch `id` in one statement (plus the product and
/// specification the first time this process meets them); `None` when
/// there is no such batch.
pub(super) fn read(conn: &mut PgConnection, id: Uuid) -> Result<Option<Read>, AppError> {
    let Some(l): Option<Loaded> = prepared(LOAD)
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let One(batch) = l.batch;
    let mut parent_ids: Vec<Uuid> = l.parents.0.iter().map(|(id, _, _)| *id).collect();
    parent_ids.sort();
    let (product, spec) = fixed::of(conn, batch.product_id, batch.spec_id)?;
    let names: HashMap<Uuid, (String, String)> = l
        .performers
        .0
        .into_iter()
        .map(|(id, username, full_name)| (id, (username, full_name)))
        .collect();
    let record = BatchRecord {
        batch: batch_of(batch, parent_ids)?,
        product: (*product).clone(),
        spec: (*spec).clone(),
        results: l
            .results
            .0
            .into_iter()
            .map(|r| {
                let (username, full_name) = names.get(&r.performed_by).cloned().unwrap_or_default();
                let performer = ActorRef {
                    id: r.performed_by,
                    username,
                    full_name,
                };
                let id = r.id;
                result_of(r, performer).map(|mut res| {
                    res.material_ids = l
                        .result_materials
                        .0
                        .iter()
                        .filter(|(result, _)| *result == id)
                        .map(|(_, m)| *m)
                        .collect();
                    res
                })
            })
            .collect::<Result<_, _>>()?,
        signatures: l
            .signatures
            .0
            .iter()
            .map(crate::domain::record::Signature::try_from)
            .collect::<Result<_, _>>()?,
        deviations: l
            .deviations
            .0
            .into_iter()
            .map(deviation_of)
            .collect::<Result<_, _>>()?,
        custody: l
            .custody
            .0
            .into_iter()
            .zip(l.custody_hashes)
            .map(|(c, hash)| custody_of(c, hash.0))
            .collect::<Result<_, _>>()?,
        parents: l
            .parents
            .0
            .into_iter()
            .map(|(_, batch_number, status)| {
                Ok(ParentFact {
                    status: parse_stored("batch status", &status)?,
                    batch_number,
                })
            })
            .collect::<Result<_, AppError>>()?,
        audit_review: ReviewedTrail {
            up_to_seq: l.reviewed_up_to,
            since: l
                .since_review
                .0
                .into_iter()
                .map(|(seq, action, after)| TrailEntry { seq, action, after })
                .collect(),
        },
        now: l.now,
    };
    Ok(Some(Read {
        record,
        head: l
            .head_id
            .zip(l.head_seq)
            .zip(l.head_hash)
            .map(|((id, seq), hash)| (id, seq, hash.0)),
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
        instrument_id: r.instrument_id,
        material_ids: Vec::new(),
        source_file_id: r.source_file_id,
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
        subject_id: d.subject_id,
        result_ids: d.result_ids.unwrap_or_default(),
    })
}

/// A stored custody event, its event parsed, with the hash of the entry
/// that binds it.
pub fn custody_of(c: CustodyRow, hash: String) -> Result<CustodyRecord, AppError> {
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
        hash,
    })
}
