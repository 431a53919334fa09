//! One batch and its facts, loaded once per transaction: the lower tier
//! every use case on a batch shares.
//!
//! [`LockedBatch::lock`] takes the batch row lock that serialises every
//! writer of the batch's record and hash chain, then reads the whole record
//! (results, signatures, deviations, custody, parents; the product and the
//! specification, immutable, from the process's cache) and the chain's head
//! in one statement. Two statements in all: the read comes
//! after the lock, so under READ COMMITTED it sees everything committed by
//! the writer that held the lock before. The domain answers every question
//! from `record`; the writes below put what they wrote into it, and append
//! to the chain after the head read under the lock (one statement each).
//!
//! [`read`] is the same record without a lock, for pages and reports: one
//! statement, one snapshot.

pub mod equipment;
pub mod fitness;
mod fixed;
mod load;
pub mod series;
pub mod views;

pub use fixed::of as product_and_spec;
pub use load::{LOAD, batch_of, custody_of, deviation_of, result_of};

use super::Actor;
use super::audit::{self, AuditRecord, ChainHead};
use super::signatures::{self, Signing, SigningRules};
use crate::db::models::{AuditEntryRow, DeviationRow};
use crate::db::prepared::prepared;
use crate::db::schema::{batches, deviations};
use crate::domain::StoredName;
use crate::domain::audit::batch_chain;
use crate::domain::audit_event::AuditEvent;
use crate::domain::batch::BatchStatus;
use crate::domain::deviation::{DeviationKind, DeviationStatus, Severity};
use crate::domain::record::{BatchRecord, Deviation, Signature};
use crate::error::AppError;
use crate::error::Code;
use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use serde_json::{Value, json};
use uuid::Uuid;

/// 404 for an unknown batch.
pub fn batch_not_found(id: Uuid) -> AppError {
    AppError::refused(Code::BatchNotFound, format!("no batch {id}"))
}

/// 404 for an unknown result.
pub fn result_not_found(id: Uuid) -> AppError {
    AppError::refused(Code::ResultNotFound, format!("no result {id}"))
}

/// 404 for an unknown deviation.
pub fn deviation_not_found(id: Uuid) -> AppError {
    AppError::refused(Code::DeviationNotFound, format!("no deviation {id}"))
}

/// The record of batch `id`, unlocked: one statement, one snapshot.
pub fn read(conn: &mut PgConnection, id: Uuid) -> Result<BatchRecord, AppError> {
    load::read(conn, id)?
        .map(|r| r.record)
        .ok_or_else(|| batch_not_found(id))
}

/// The record of batch `id` and where its hash chain ends (for the
/// certificate): `(seq, hash)`.
pub fn read_with_head(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(BatchRecord, Option<(i64, String)>), AppError> {
    load::read(conn, id)?
        .map(|r| (r.record, r.head.map(|(_, seq, hash)| (seq, hash))))
        .ok_or_else(|| batch_not_found(id))
}

/// How the batch to lock is named.
#[derive(Debug, Clone, Copy)]
pub enum BatchOf {
    /// By its own id.
    Batch(Uuid),
    /// As the batch of this result.
    Result(Uuid),
    /// As the batch of this deviation.
    Deviation(Uuid),
}

#[derive(QueryableByName)]
struct LockedId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// A batch whose row this transaction has locked, with its record and the
/// head of its hash chain.
#[derive(Debug)]
pub struct LockedBatch {
    /// Everything recorded about the batch, kept current as this
    /// transaction writes.
    pub record: BatchRecord,
    head: ChainHead,
}

impl LockedBatch {
    /// Locks the batch's row (`FOR UPDATE`) and reads its record: two statements.
    pub fn lock(conn: &mut PgConnection, of: BatchOf) -> Result<LockedBatch, AppError> {
        let (sql, key, missing) = match of {
            BatchOf::Batch(id) => (
                "SELECT id FROM batches WHERE id = $1 FOR UPDATE",
                id,
                batch_not_found(id),
            ),
            BatchOf::Result(id) => (
                "SELECT b.id FROM batches b JOIN results r ON r.batch_id = b.id \
                 WHERE r.id = $1 FOR UPDATE OF b",
                id,
                result_not_found(id),
            ),
            BatchOf::Deviation(id) => (
                "SELECT b.id FROM batches b JOIN deviations d ON d.batch_id = b.id \
                 WHERE d.id = $1 FOR UPDATE OF b",
                id,
                deviation_not_found(id),
            ),
        };
        let Some(locked): Option<LockedId> = prepared(sql)
            .bind::<SqlUuid, _>(key)
            .get_result(conn)
            .optional()?
        else {
            return Err(missing);
        };
        Self::read_locked(conn, locked.id)
    }

    /// Locks the batch's row (`FOR UPDATE`) as [`LockedBatch::lock`] does,
    /// and first, in the same statement, shares the rows of the instrument
    /// and the material lots a new fact names (`FOR SHARE`, lots in id
    /// order): until this transaction ends, nobody records an instrument
    /// event or changes a lot's status, and a change that committed before
    /// is seen by every later statement (the fitness read). Whoever changes
    /// them locks them first and the batches after, in the same order.
    pub fn lock_using(
        conn: &mut PgConnection,
        batch_id: Uuid,
        instrument: Option<Uuid>,
        lots: &[Uuid],
    ) -> Result<LockedBatch, AppError> {
        let Some(locked): Option<LockedId> = prepared(
            "WITH i AS (SELECT id FROM instruments WHERE id = $1 FOR SHARE), \
                  m AS (SELECT id FROM material_lots WHERE id = ANY($2) ORDER BY id FOR SHARE) \
             SELECT b.id FROM batches b \
              WHERE b.id = $3 AND (SELECT count(*) FROM i) + (SELECT count(*) FROM m) >= 0 \
              FOR UPDATE OF b",
        )
        .bind::<diesel::sql_types::Nullable<SqlUuid>, _>(instrument)
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(lots)
        .bind::<SqlUuid, _>(batch_id)
        .get_result(conn)
        .optional()?
        else {
            return Err(batch_not_found(batch_id));
        };
        Self::read_locked(conn, locked.id)
    }

    fn read_locked(conn: &mut PgConnection, id: Uuid) -> Result<LockedBatch, AppError> {
        let read = load::read(conn, id)?.ok_or_else(|| batch_not_found(id))?;
        let (key, seq, hash) = read
            .head
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("batch {} has no chain head", id)))?;
        Ok(LockedBatch {
            head: ChainHead {
                id: key,
                chain: batch_chain(id),
                seq,
                hash,
                at: read.record.now,
            },
            record: read.record,
        })
    }

    /// The batch's id.
    pub fn id(&self) -> Uuid {
        self.record.batch.id
    }

    /// The position of the chain's last entry and its hash.
    pub fn head(&self) -> (i64, &str) {
        (self.head.seq, &self.head.hash)
    }

    /// The batch's hash chain.
    pub fn chain(&self) -> String {
        self.head.chain.clone()
    }

    /// Appends an entry to the batch's chain (one statement).
    pub fn append(
        &mut self,
        conn: &mut PgConnection,
        rec: AuditRecord<'_>,
    ) -> Result<AuditEntryRow, AppError> {
        audit::append_at_head(conn, &mut self.head, rec)
    }

    /// Stores a signature on the batch or one of its records and adds it to
    /// the record; call after [`signatures::verify_signer`].
    pub fn sign(
        &mut self,
        conn: &mut PgConnection,
        rules: &SigningRules,
        signer: &Actor,
        signing: &Signing<'_>,
    ) -> Result<Signature, AppError> {
        let s = signatures::record(conn, rules, signer, signing)?;
        self.record.push_signature(s.clone());
        Ok(s)
    }

    /// Opens a deviation on the batch with its audit entry (`opened_by`
    /// none: the system, for an OOS) and adds it to the record.
    pub fn open_deviation(
        &mut self,
        conn: &mut PgConnection,
        opened_by: Option<&Actor>,
        new: NewDeviation,
    ) -> Result<Deviation, AppError> {
        let row = DeviationRow {
            id: Uuid::now_v7(),
            batch_id: self.id(),
            result_id: new.result_id,
            kind: new.kind.as_str().to_owned(),
            severity: new.severity.as_str().to_owned(),
            status: DeviationStatus::Open.as_str().to_owned(),
            title: new.title,
            description: new.description,
            opened_by: opened_by.map(|a| a.id),
            opened_at: Utc::now(),
            conclusion: None,
            root_cause: None,
            closed_by: None,
            closed_at: None,
            subject_id: new.subject_id,
            result_ids: (!new.result_ids.is_empty()).then_some(new.result_ids),
        };
        diesel::insert_into(deviations::table)
            .values(&row)
            .execute(conn)?;
        let deviation = deviation_of(row)?;
        let chain = self.chain();
        let after = deviation_record(self.id(), &deviation);
        self.append(
            conn,
            AuditRecord::on_batch(
                &chain,
                self.id(),
                opened_by,
                AuditEvent::DeviationOpened,
                "deviation",
                deviation.id,
            )
            .after(after),
        )?;
        self.record.put_deviation(deviation.clone());
        Ok(deviation)
    }

    /// Moves the batch to `to` (its audit entry is the caller's, with the
    /// signature that decided it).
    pub fn set_status(&mut self, conn: &mut PgConnection, to: BatchStatus) -> Result<(), AppError> {
        let at = Utc::now();
        diesel::update(batches::table.find(self.id()))
            .set((batches::status.eq(to.as_str()), batches::updated_at.eq(at)))
            .execute(conn)?;
        self.record.set_status(to, at);
        Ok(())
    }
}

/// A deviation to open.
#[derive(Debug, Clone)]
pub struct NewDeviation {
    /// What opens it.
    pub kind: DeviationKind,
    /// How serious.
    pub severity: Severity,
    /// The result an OOS investigates.
    pub result_id: Option<Uuid>,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// What an impact deviation investigates.
    pub subject_id: Option<Uuid>,
    /// The results an impact deviation lists.
    pub result_ids: Vec<Uuid>,
}

/// What the audit trail records of a deviation.
pub fn deviation_record(batch_id: Uuid, d: &Deviation) -> Value {
    let mut record = json!({
        "id": d.id,
        "batch_id": batch_id,
        "result_id": d.result_id,
        "kind": d.kind,
        "severity": d.severity,
        "status": d.status,
        "title": d.title,
        "description": d.description,
        "conclusion": d.conclusion,
        "root_cause": d.root_cause,
    });
    // Only an impact deviation names a subject and results: the others are
    // recorded exactly as before.
    if let (Some(subject), Value::Object(f)) = (d.subject_id, &mut record) {
        f.insert("subject_id".to_owned(), json!(subject));
        f.insert("result_ids".to_owned(), json!(d.result_ids));
    }
    record
}

/// What an impact deviation investigates: an instrument that failed its
/// calibration, a material lot that was rejected.
#[derive(Debug, Clone)]
pub struct Impact {
    /// `instrument` or `material`.
    pub kind: crate::domain::deviation::DeviationKind,
    /// The instrument or lot.
    pub subject_id: Uuid,
    /// The deviation's title.
    pub title: String,
    /// What happened, as the description's first sentence.
    pub cause: String,
}

/// Opens the impact deviation on batch `batch_id`, listing `result_ids`
/// (none: the batch used the lot in manufacture): major, or critical with an
/// email to every active QA user at once when the batch was already
/// (conditionally) released. Until closed it blocks release.
pub fn open_impact(
    conn: &mut PgConnection,
    impact: &Impact,
    batch_id: Uuid,
    result_ids: &[Uuid],
) -> Result<Deviation, AppError> {
    use crate::domain::batch::BatchStatus;
    use crate::domain::deviation::Severity;
    let mut lb = LockedBatch::lock(conn, BatchOf::Batch(batch_id))?;
    let released = matches!(
        lb.record.batch.status,
        BatchStatus::Released | BatchStatus::ConditionallyReleased
    );
    let lines: Vec<String> = lb
        .record
        .results
        .iter()
        .filter(|r| result_ids.contains(&r.id))
        .map(|r| {
            format!(
                "- {} {}{} performed {} by {} (result {})",
                r.test_code,
                r.value,
                r.unit
                    .as_deref()
                    .map(|u| format!(" {u}"))
                    .unwrap_or_default(),
                r.performed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                r.performed_by.full_name,
                r.id
            )
        })
        .collect();
    let listing = if lines.is_empty() {
        format!(
            "Batch {} used it in manufacture.",
            lb.record.batch.batch_number
        )
    } else {
        format!(
            "Results of batch {}:\n{}",
            lb.record.batch.batch_number,
            lines.join("\n")
        )
    };
    let d = lb.open_deviation(
        conn,
        None,
        NewDeviation {
            kind: impact.kind,
            severity: if released {
                Severity::Critical
            } else {
                Severity::Major
            },
            result_id: None,
            title: impact.title.clone(),
            description: format!("{}. {listing}", impact.cause),
            subject_id: Some(impact.subject_id),
            result_ids: result_ids.to_vec(),
        },
    )?;
    if released {
        super::notices::impact_on_released(conn, &lb.record, &d)?;
    }
    Ok(d)
}
