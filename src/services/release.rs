//! Release readiness and the Qualified Person's decisions: release (full or
//! conditional, one or two signatures), reject, recall. Each decision is
//! taken and written under the batch row lock, in one transaction, so two
//! simultaneous requests produce one release, never two.

use super::audit::AuditRecord;
use super::batch_record::views::BatchDetail;
use super::batch_record::{self, BatchOf, LockedBatch, series};
use super::signatures::{self, Signing, SigningRules};
use super::{Actor, in_transaction, notices};
use crate::domain::StoredName;
use crate::domain::audit_event::AuditEvent;
use crate::domain::record::BatchRecord;
use crate::domain::release::{
    Certification, DisposeBatch, Readiness, ReleaseBatch, ReleaseStep, Warning, WarningCode,
    check_recall, check_reject,
};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::TestKind;
use crate::domain::trend;
use crate::error::AppError;
use diesel::pg::PgConnection;
use serde_json::json;
use uuid::Uuid;

/// `GET /batches/{id}/release-readiness`.
pub fn release_readiness(conn: &mut PgConnection, batch_id: Uuid) -> Result<Readiness, AppError> {
    let record = batch_record::read(conn, batch_id)?;
    let mut readiness = record.readiness();
    readiness.warnings = out_of_trend(conn, &record)?;
    Ok(readiness)
}

/// A warning for each run rule the batch's current numeric results
/// complete in their product's trends (one statement for every test).
pub fn out_of_trend(
    conn: &mut PgConnection,
    record: &BatchRecord,
) -> Result<Vec<Warning>, AppError> {
    let current: Vec<_> = record
        .current_results()
        .into_iter()
        .filter(|r| {
            record
                .spec
                .tests
                .iter()
                .any(|t| t.code == r.test_code && t.kind == TestKind::Numeric)
        })
        .collect();
    let points: Vec<(String, chrono::DateTime<chrono::Utc>)> = current
        .iter()
        .map(|r| (r.test_code.clone(), r.performed_at))
        .collect();
    let around = series::around(conn, record.batch.product_id, record.batch.id, &points)?;
    let mut warnings = Vec::new();
    for (r, n) in current.iter().zip(around) {
        let Some(limits) = trend::limits(&n.baseline, n.baseline.len()) else {
            continue;
        };
        let x = series::decimal(&r.value)?;
        for rule in trend::rules_at(&limits, &n.before, &x) {
            warnings.push(Warning {
                code: WarningCode::OutOfTrend,
                test_code: r.test_code.clone(),
                rule,
                message: format!(
                    "{} {} is out of trend ({}): look at the product's trend before releasing; it does not block release",
                    r.test_code,
                    r.value,
                    rule.as_str()
                ),
            });
        }
    }
    Ok(warnings)
}

/// Audits a refused release on the system chain, naming the batch (so it
/// appears in the batch's history without taking the batch chain's head).
fn record_refusal(
    c: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    meaning: Meaning,
    refusal: &AppError,
) -> Result<(), AppError> {
    let p = refusal.to_problem();
    super::audit::append_refusal(
        c,
        actor,
        batch_id,
        AuditEvent::BatchReleaseRefused,
        json!({
            "meaning": meaning,
            "code": p.code,
            "detail": p.detail,
            "blockers": p.blockers,
        }),
    )
}

/// Release (signed, QA, independent of the batch's results). With two
/// signatures required, the first leaves the status as it is.
pub fn release(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    batch_id: Uuid,
    req: &ReleaseBatch,
) -> Result<BatchDetail, AppError> {
    let conditional = req.conditional.unwrap_or(false);
    let kind = if conditional {
        Certification::Conditional
    } else {
        Certification::Full
    };
    let meaning = kind.meaning();
    actor.authorize(Action::Sign(meaning))?;
    let (justification, comment) = (req.justification.as_deref(), req.comment.as_deref());
    if conditional && justification.is_none() {
        return Err(AppError::invalid_field_with(
            "justification",
            "fe-a-conditional-release-needs-a-justification",
            &[],
        ));
    }
    in_transaction(conn, |c| {
        let mut lb = LockedBatch::lock(c, BatchOf::Batch(batch_id))?;
        let step = match lb.record.check_release(kind, actor.id) {
            Ok(step) => step,
            // A refused release is part of the batch's history.
            Err(refusal) => {
                let refusal = AppError::from(refusal);
                record_refusal(c, actor, lb.id(), meaning, &refusal)?;
                return Ok(Err(refusal));
            }
        };
        if let Err(refusal) =
            signatures::verify_signer_on(c, rules.lockout, actor, &req.password, Some(lb.id()))?
        {
            return Ok(Err(refusal));
        }
        let from = lb.record.batch.status;
        let signature = lb.sign(
            c,
            rules,
            actor,
            &Signing {
                meaning,
                entity_type: "batch",
                entity_id: lb.id(),
                batch_id: Some(lb.id()),
                reason: justification.or(comment),
                signs: lb.id(),
            },
        )?;
        let required = lb.record.product.release_signatures_required;
        let signed = match step {
            ReleaseStep::Certified(_) => required,
            ReleaseStep::Awaiting { signed, .. } => signed,
        };
        let chain = lb.chain();
        let sig_json = json!({"signature_id": signature.id, "meaning": signature.meaning,
                              "record_hash": signature.record_hash, "signatures": signed, "required": required});
        let action = match step {
            ReleaseStep::Certified(to) => disposition(to)?,
            ReleaseStep::Awaiting { .. } => AuditEvent::BatchReleaseSigned,
        };
        let rec = AuditRecord::on_batch(&chain, lb.id(), Some(actor), action, "batch", lb.id());
        let rec = match step {
            ReleaseStep::Certified(to) => {
                lb.set_status(c, to)?;
                notices::status_changed(c, &lb.record, to, actor, justification)?;
                rec.before(json!({"status": from}))
                    .after(json!({"status": to, "signature": sig_json}))
            }
            ReleaseStep::Awaiting { .. } => rec.after(sig_json),
        };
        let mut rec = rec;
        rec.reason = justification.or(comment);
        lb.append(c, rec)?;
        Ok(Ok(BatchDetail::from(&lb.record)))
    })?
}

/// Reject or recall, both signed with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// From quarantine or conditional release.
    Reject,
    /// From (conditional) release.
    Recall,
}

impl Disposition {
    /// The meaning of its signature.
    pub fn meaning(self) -> Meaning {
        match self {
            Disposition::Reject => Meaning::Rejected,
            Disposition::Recall => Meaning::Recalled,
        }
    }
}

/// Rejects or recalls a batch (signed, QA, reason required).
pub fn dispose(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    batch_id: Uuid,
    what: Disposition,
    cmd: &DisposeBatch,
) -> Result<BatchDetail, AppError> {
    let meaning = what.meaning();
    actor.authorize(Action::Sign(meaning))?;
    let (password, reason) = (cmd.password.as_str(), cmd.reason.as_str());
    in_transaction(conn, |c| {
        let mut lb = LockedBatch::lock(c, BatchOf::Batch(batch_id))?;
        let from = lb.record.batch.status;
        let to = match what {
            Disposition::Reject => check_reject(from)?,
            Disposition::Recall => check_recall(from)?,
        };
        if let Err(refusal) =
            signatures::verify_signer_on(c, rules.lockout, actor, password, Some(lb.id()))?
        {
            return Ok(Err(refusal));
        }
        let signature = lb.sign(
            c,
            rules,
            actor,
            &Signing {
                meaning,
                entity_type: "batch",
                entity_id: lb.id(),
                batch_id: Some(lb.id()),
                reason: Some(reason),
                signs: lb.id(),
            },
        )?;
        lb.set_status(c, to)?;
        let chain = lb.chain();
        let action = disposition(to)?;
        let mut rec = AuditRecord::on_batch(&chain, lb.id(), Some(actor), action, "batch", lb.id())
            .before(json!({"status": from}))
            .after(json!({"status": to, "signature_id": signature.id, "record_hash": signature.record_hash}));
        rec.reason = Some(reason);
        lb.append(c, rec)?;
        notices::status_changed(c, &lb.record, to, actor, Some(reason))?;
        Ok(Ok(BatchDetail::from(&lb.record)))
    })?
}

/// The trail's action for a batch's move to `to`.
fn disposition(to: crate::domain::batch::BatchStatus) -> Result<AuditEvent, AppError> {
    AuditEvent::batch_became(to)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a batch moved to {}", to.as_str())))
}
