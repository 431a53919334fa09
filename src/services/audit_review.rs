//! Audit-trail review before release (PIC/S PI 041 §9.8; FDA data-integrity
//! Q&A 2018, Q7): the exceptions of a batch's hash chain, as
//! [`crate::domain::audit_review`] classifies them, and QA's signed review
//! of the chain up to its last entry. The signature's record names that
//! position and its hash, so the review proves exactly what it covered.

use super::audit::{AuditEntryView, AuditRecord};
use super::batch_record::{self, BatchOf, LockedBatch};
use super::signatures::{self, SignatureView, Signing, SigningRules};
use super::{Actor, in_transaction};
use crate::db::digest::HexDigest;
use crate::db::models::AuditEntryRow;
use crate::db::schema::{audit_chain_heads, audit_entries, audit_reviews};
use crate::domain::audit::{ActorRef, batch_chain};
use crate::domain::audit_review::{
    self, ExceptionKind, REVIEWED_ACTION, ReviewState, SignAuditReview,
};
use crate::domain::record::BatchRecord;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::AppError;
use crate::report::history::{ResultNames, exception_summary, result_names};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// An entry of the chain QA must read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExceptionView {
    /// Position in the batch's chain.
    pub seq: i64,
    /// Server time of the entry.
    pub at: DateTime<Utc>,
    /// Why it is an exception.
    pub kind: ExceptionKind,
    /// Who wrote it (none: the system).
    pub actor: Option<ActorRef>,
    /// What happened, with before and after values and the reason.
    pub summary: String,
    /// The entry's id (its row in the batch's history).
    pub entry_id: Uuid,
    /// The entry's action.
    pub action: String,
    /// Written after the last signed review.
    pub after_last_review: bool,
}

/// A signed review and the position it covers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    /// The signature.
    #[serde(flatten)]
    pub signature: SignatureView,
    /// The last entry it covers.
    pub up_to_seq: i64,
    /// That entry's hash.
    pub head_hash: String,
    /// How many exceptions it covered.
    pub exceptions: i32,
}

/// `GET /batches/{id}/audit-review`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditReviewView {
    /// The batch.
    pub batch_id: Uuid,
    /// Its number.
    pub batch_number: String,
    /// The chain's last position: what a review signed now covers.
    pub up_to_seq: i64,
    /// That entry's hash.
    pub head_hash: String,
    /// How many entries the chain holds.
    pub entries: i64,
    /// Every entry that is not routine, in chain order.
    pub exceptions: Vec<ExceptionView>,
    /// Signed reviews, oldest first.
    pub reviews: Vec<ReviewView>,
    /// The product requires a signed review before release.
    pub required: bool,
    /// `not_reviewed`, `stale` (an exception that counts was written after
    /// the last review) or `reviewed`.
    pub state: &'static str,
}

fn state_name(s: ReviewState) -> &'static str {
    match s {
        ReviewState::NotReviewed => "not_reviewed",
        ReviewState::Stale { .. } => "stale",
        ReviewState::Reviewed => "reviewed",
    }
}

/// One row of `audit_reviews`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_reviews)]
struct ReviewRow {
    signature_id: Uuid,
    up_to_seq: i64,
    #[diesel(deserialize_as = HexDigest)]
    head_hash: String,
    exceptions: i32,
}

/// The batch's chain, oldest first.
fn chain_entries(conn: &mut PgConnection, batch_id: Uuid) -> Result<Vec<AuditEntryRow>, AppError> {
    Ok(audit_entries::table
        .inner_join(audit_chain_heads::table)
        .filter(audit_chain_heads::chain.eq(batch_chain(batch_id)))
        .order(audit_entries::seq)
        .select(AuditEntryRow::as_select())
        .load(conn)?)
}

/// The exceptions among `entries`, with their summaries.
fn exceptions(
    entries: &[AuditEntryRow],
    names: &ResultNames,
    reviewed_up_to: Option<i64>,
    loc: crate::i18n::Locale,
) -> Vec<ExceptionView> {
    entries
        .iter()
        .filter_map(|row| {
            let kind = audit_review::exception(&audit_review::Entry {
                action: &row.action,
                after: row.after.as_ref(),
            })?;
            let view = AuditEntryView::from(row.clone());
            Some(ExceptionView {
                seq: row.seq,
                at: row.at,
                kind,
                actor: view.actor.clone(),
                summary: exception_summary(&view, kind, names, loc),
                entry_id: row.id,
                action: row.action.clone(),
                // The review's own entry is not news to its reader.
                after_last_review: kind != ExceptionKind::AuditReview
                    && reviewed_up_to.is_none_or(|r| row.seq > r),
            })
        })
        .collect()
}

/// The review page's data, from the record and the chain as read.
fn view(
    conn: &mut PgConnection,
    record: &BatchRecord,
    entries: &[AuditEntryRow],
    loc: crate::i18n::Locale,
) -> Result<AuditReviewView, AppError> {
    let batch_id = record.batch.id;
    let rows: Vec<ReviewRow> = audit_reviews::table
        .filter(audit_reviews::batch_id.eq(batch_id))
        .order(audit_reviews::up_to_seq)
        .select(ReviewRow::as_select())
        .load(conn)?;
    let reviews = rows
        .into_iter()
        .map(|r| {
            let signature = record
                .signatures
                .iter()
                .find(|s| s.id == r.signature_id)
                .map(SignatureView::from)
                .ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!(
                        "audit review of batch {batch_id} names signature {} it does not hold",
                        r.signature_id
                    ))
                })?;
            Ok(ReviewView {
                signature,
                up_to_seq: r.up_to_seq,
                head_hash: r.head_hash,
                exceptions: r.exceptions,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    // The same state the release gate reads from the record.
    let reviewed_up_to = record.audit_review.up_to_seq;
    let state = record.audit_review.state();
    let last = entries.last().ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("batch {batch_id} has an empty chain"))
    })?;
    Ok(AuditReviewView {
        batch_id,
        batch_number: record.batch.batch_number.clone(),
        up_to_seq: last.seq,
        head_hash: last.hash.clone(),
        entries: i64::try_from(entries.len()).unwrap_or(i64::MAX),
        exceptions: exceptions(entries, &result_names(record), reviewed_up_to, loc),
        reviews,
        required: record.product.audit_review_required,
        state: state_name(state),
    })
}

/// `GET /batches/{id}/audit-review` (qa, auditor): the exceptions of the
/// batch's chain and its signed reviews, read in one transaction.
pub fn audit_review(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
) -> Result<AuditReviewView, AppError> {
    actor.authorize(Action::ReadAuditTrail)?;
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|c| {
            let record = batch_record::read(c, batch_id)?;
            let entries = chain_entries(c, batch_id)?;
            view(c, &record, &entries, actor.locale)
        })
}

/// `POST /batches/{id}/audit-review` (qa, independent; signed
/// `audit_trail_reviewed`): under the batch's lock, the named position must
/// be the chain's last; the signature covers it, its hash and the
/// exceptions read; the review's row and its own chain entry are written
/// in the same transaction.
pub fn sign_review(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    batch_id: Uuid,
    req: &SignAuditReview,
) -> Result<AuditReviewView, AppError> {
    actor.authorize(Action::Sign(Meaning::AuditTrailReviewed))?;
    let comment = req.comment.as_deref();
    let up_to_seq = req.up_to_seq.get();
    in_transaction(conn, |c| {
        let mut lb = LockedBatch::lock(c, BatchOf::Batch(batch_id))?;
        let (last, head_hash) = {
            let (seq, hash) = lb.head();
            (seq, hash.to_owned())
        };
        lb.record.check_audit_review(actor.id, up_to_seq, last)?;
        if let Err(refusal) =
            signatures::verify_signer_on(c, rules.lockout, actor, &req.password, Some(lb.id()))?
        {
            return Ok(Err(refusal));
        }
        let entries = chain_entries(c, lb.id())?;
        let read = exceptions(&entries, &result_names(&lb.record), None, actor.locale);
        // The position reviewed up to: its entry's hash covers every entry
        // before it, and so every exception read.
        let position = entries
            .iter()
            .find(|e| e.seq == last)
            .map(|e| e.id)
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("entry {last} of {} is missing", lb.chain()))
            })?;
        let signature = lb.sign(
            c,
            rules,
            actor,
            &Signing {
                meaning: Meaning::AuditTrailReviewed,
                entity_type: "batch",
                entity_id: lb.id(),
                batch_id: Some(lb.id()),
                reason: comment,
                signs: position,
            },
        )?;
        let exceptions_n = i32::try_from(read.len()).unwrap_or(i32::MAX);
        diesel::insert_into(audit_reviews::table)
            .values((
                audit_reviews::id.eq(Uuid::now_v7()),
                audit_reviews::batch_id.eq(lb.id()),
                audit_reviews::signature_id.eq(signature.id),
                audit_reviews::up_to_seq.eq(last),
                audit_reviews::head_hash.eq(HexDigest(head_hash.clone())),
                audit_reviews::exceptions.eq(exceptions_n),
                audit_reviews::reviewed_at.eq(signature.signed_at),
            ))
            .execute(c)?;
        let chain = lb.chain();
        let mut rec = AuditRecord::on_batch(
            &chain,
            lb.id(),
            Some(actor),
            REVIEWED_ACTION,
            "batch",
            lb.id(),
        )
        .after(json!({
            "signature_id": signature.id,
            "record_hash": signature.record_hash,
            "up_to_seq": last,
            "head_hash": head_hash,
            "exceptions": exceptions_n,
        }));
        rec.reason = comment;
        lb.append(c, rec)?;
        // What this transaction wrote, as any later reader sees it.
        let record = batch_record::read(c, lb.id())?;
        let entries = chain_entries(c, lb.id())?;
        Ok(Ok(view(c, &record, &entries, actor.locale)?))
    })?
}
