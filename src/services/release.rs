//! Release readiness and the Qualified Person's decisions: release (full or
//! conditional, one or two signatures), reject, recall. Each decision is
//! taken and written under the batch row lock, in one transaction, so two
//! simultaneous requests produce one release, never two.

use super::audit::{self, AuditRecord};
use super::batches::{BatchDetail, find_batch, get_batch, lock_batch, status_of};
use super::custody;
use super::outbox::{self, Email};
use super::products::{get_product, spec_tests_of};
use super::results;
use super::signatures::{self, Signing};
use super::{Actor, in_transaction};
use crate::db::models::{BatchRow, DeviationRow, SignatureRow};
use crate::db::schema::{batch_parents, batches, deviations, signatures as sig};
use crate::domain::FieldError;
use crate::domain::audit::batch_chain;
use crate::domain::batch::BatchStatus;
use crate::domain::release::{
    BatchFacts, Certification, DeviationFact, ParentFact, Readiness, ReleaseRefusal, check_recall,
    check_reject, check_release, readiness, took_part,
};
use crate::domain::signature::Meaning;
use crate::domain::users::LockoutPolicy;
use crate::error::AppError;
use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// Loads everything the release gate looks at.
pub fn facts(conn: &mut PgConnection, batch: &BatchRow) -> Result<BatchFacts, AppError> {
    let tests = spec_tests_of(conn, batch.spec_id)?;
    let loaded = results::load(conn, batch.id)?;
    let devs: Vec<DeviationRow> = deviations::table
        .filter(deviations::batch_id.eq(batch.id))
        .order(deviations::id)
        .select(DeviationRow::as_select())
        .load(conn)?;
    let parents: Vec<(String, String)> = batch_parents::table
        .inner_join(batches::table.on(batches::id.eq(batch_parents::parent_id)))
        .filter(batch_parents::batch_id.eq(batch.id))
        .order(batches::batch_number)
        .select((batches::batch_number, batches::status))
        .load(conn)?;
    Ok(BatchFacts {
        tests,
        results: loaded.facts,
        deviations: devs
            .into_iter()
            .map(|d| DeviationFact {
                id: d.id,
                title: d.title,
                open: d.status == "open",
                confirmed_oos: d.conclusion.as_deref() == Some("confirmed_oos"),
            })
            .collect(),
        in_transit: custody::state_of(conn, batch.id)?.in_transit(),
        expires_at: batch.expires_at,
        now: Utc::now(),
        parents: parents
            .into_iter()
            .map(|(batch_number, status)| ParentFact {
                batch_number,
                status: BatchStatus::parse(&status).unwrap_or(BatchStatus::Quarantine),
            })
            .collect(),
    })
}

/// `GET /batches/{id}/release-readiness`.
pub fn release_readiness(conn: &mut PgConnection, batch_id: Uuid) -> Result<Readiness, AppError> {
    let batch = find_batch(conn, batch_id)?;
    Ok(readiness(&facts(conn, &batch)?))
}

/// Whether the batch is releasable now.
pub fn is_releasable(conn: &mut PgConnection, batch: &BatchRow) -> Result<bool, AppError> {
    Ok(readiness(&facts(conn, batch)?).releasable)
}

/// Queues "ready for release" to every active QA user when the batch, not
/// releasable before this change (`was_releasable`), is releasable now.
pub fn announce_if_ready(
    conn: &mut PgConnection,
    batch_id: Uuid,
    was_releasable: bool,
) -> Result<(), AppError> {
    if was_releasable {
        return Ok(());
    }
    let batch = find_batch(conn, batch_id)?;
    let status = status_of(&batch)?;
    if !matches!(
        status,
        BatchStatus::Quarantine | BatchStatus::ConditionallyReleased
    ) || !is_releasable(conn, &batch)?
    {
        return Ok(());
    }
    let subject = format!("[cellqc] Batch {} is ready for release", batch.batch_number);
    let body = format!(
        "Every result of batch {} is in, within specification and reviewed, and nothing else blocks \
         its release. A Qualified Person who took no part in its testing can now sign the release.\n",
        batch.batch_number
    );
    let qa = outbox::active_role_emails(conn, "qa")?;
    let link = super::deviations::batch_link(batch.id);
    outbox::queue(
        conn,
        qa,
        &Email {
            kind: "batch_ready",
            subject: &subject,
            body: &body,
            urgent: false,
            link_path: Some(&link),
        },
    )?;
    Ok(())
}

/// What a release request asks.
#[derive(Debug, Clone, Default)]
pub struct ReleaseRequest {
    pub password: String,
    pub comment: Option<String>,
    pub conditional: bool,
    pub justification: Option<String>,
}

/// What a release signature signs: the batch, the results it rests on and
/// the gate's answer at that moment.
fn release_record(batch: &BatchRow, f: &BatchFacts, r: &Readiness, conditional: bool) -> Value {
    let current: Vec<Value> = f
        .tests
        .iter()
        .filter_map(|t| crate::domain::result::current_result(&f.results, &t.code))
        .map(|r| json!({"result_id": r.id, "test_code": r.test_code, "outcome": r.outcome}))
        .collect();
    json!({
        "batch_id": batch.id,
        "batch_number": batch.batch_number,
        "spec_id": batch.spec_id,
        "status": batch.status,
        "current_results": current,
        "blockers": r.blockers,
        "conditional": conditional,
    })
}

/// Release signatures given since the batch's last status change.
fn pending_signatures(
    conn: &mut PgConnection,
    batch: &BatchRow,
    meaning: Meaning,
) -> Result<Vec<SignatureRow>, AppError> {
    Ok(sig::table
        .filter(sig::entity_type.eq("batch"))
        .filter(sig::entity_id.eq(batch.id))
        .filter(sig::meaning.eq(meaning.as_str()))
        .filter(sig::signed_at.gt(batch.updated_at))
        .order(sig::id)
        .select(SignatureRow::as_select())
        .load(conn)?)
}

fn set_status(conn: &mut PgConnection, batch: &BatchRow, to: BatchStatus) -> Result<(), AppError> {
    diesel::update(batches::table.find(batch.id))
        .set((
            batches::status.eq(to.as_str()),
            batches::updated_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    Ok(())
}

fn notify_qa(
    conn: &mut PgConnection,
    kind: &str,
    batch: &BatchRow,
    what: &str,
    actor: &Actor,
    why: Option<&str>,
) -> Result<(), AppError> {
    let subject = format!("[cellqc] Batch {} {what}", batch.batch_number);
    let body = format!(
        "Batch {} was {what} by {} ({}) at {}.{}\n",
        batch.batch_number,
        actor.full_name,
        actor.username,
        Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        why.map(|w| format!("\nReason: {w}")).unwrap_or_default(),
    );
    let qa = outbox::active_role_emails(conn, "qa")?;
    outbox::queue(
        conn,
        qa,
        &Email {
            kind,
            subject: &subject,
            body: &body,
            urgent: kind == "batch_recalled",
            link_path: Some(&super::deviations::batch_link(batch.id)),
        },
    )?;
    Ok(())
}

fn transition_error(status: BatchStatus, action: &str) -> AppError {
    AppError::conflict(
        "invalid_transition",
        format!(
            "a {} batch can't be {action}",
            status.as_str().replace('_', " ")
        ),
    )
}

/// Release (signed, QA, independent of the batch's results). With two
/// signatures required, the first leaves the status as it is.
pub fn release(
    conn: &mut PgConnection,
    lockout: LockoutPolicy,
    actor: &Actor,
    batch_id: Uuid,
    req: &ReleaseRequest,
) -> Result<BatchDetail, AppError> {
    let justification = req
        .justification
        .as_deref()
        .map(str::trim)
        .filter(|j| !j.is_empty());
    if req.conditional && justification.is_none() {
        return Err(AppError::validation(vec![FieldError::new(
            "justification",
            "a conditional release needs a justification",
        )]));
    }
    let comment = req
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let kind = if req.conditional {
        Certification::Conditional
    } else {
        Certification::Full
    };
    in_transaction(conn, |c| {
        let batch = lock_batch(c, batch_id)?;
        let status = status_of(&batch)?;
        let f = facts(c, &batch)?;
        let gate = readiness(&f);
        match check_release(status, kind, &gate) {
            Ok(()) => {}
            Err(ReleaseRefusal::WrongStatus(s)) => return Ok(Err(transition_error(s, "released"))),
            Err(ReleaseRefusal::NothingPending) => {
                return Ok(Err(AppError::conflict(
                    "nothing_pending",
                    "every result is in: release without `conditional`",
                )));
            }
            Err(ReleaseRefusal::NotReleasable(blockers)) => {
                let mut e = AppError::conflict(
                    "not_releasable",
                    format!("{} blocker(s) stand in the way of release", blockers.len()),
                );
                if let AppError::Problem(p) = &mut e {
                    p.blockers = Some(serde_json::to_value(&blockers)?);
                }
                return Ok(Err(e));
            }
        }
        if took_part(&f, actor.id) {
            return Ok(Err(AppError::forbidden(
                "not_independent",
                "you performed or reviewed a current result of this batch: another QA user must release it",
            )));
        }
        let meaning = match kind {
            Certification::Full => Meaning::Released,
            Certification::Conditional => Meaning::ConditionallyReleased,
        };
        let earlier = pending_signatures(c, &batch, meaning)?;
        if earlier.iter().any(|s| s.signer_id == actor.id) {
            return Ok(Err(AppError::conflict(
                "already_signed",
                "you already signed this release: a second, different QA user must sign",
            )));
        }
        if let Err(refusal) = signatures::verify_signer(c, lockout, actor, &req.password)? {
            return Ok(Err(refusal));
        }
        let record = release_record(&batch, &f, &gate, req.conditional);
        let signature = signatures::record(
            c,
            actor,
            &Signing {
                meaning,
                entity_type: "batch",
                entity_id: batch.id,
                batch_id: Some(batch.id),
                reason: justification.or(comment),
                record: &record,
            },
        )?;
        let product = get_product(c, batch.product_id)?;
        let required = usize::try_from(product.release_signatures_required).unwrap_or(1);
        let signed = earlier.len() + 1;
        let chain = batch_chain(batch.id);
        let sig_json = json!({"signature_id": signature.id, "meaning": signature.meaning,
                              "record_hash": signature.record_hash, "signatures": signed, "required": required});
        if signed >= required {
            let to = match kind {
                Certification::Full => BatchStatus::Released,
                Certification::Conditional => BatchStatus::ConditionallyReleased,
            };
            set_status(c, &batch, to)?;
            let mut after = json!({"status": to.as_str()});
            after["signature"] = sig_json;
            let action = format!("batch.{}", to.as_str());
            let mut rec =
                AuditRecord::on_batch(&chain, batch.id, Some(actor), &action, "batch", batch.id)
                    .before(json!({"status": status.as_str()}))
                    .after(after);
            rec.reason = justification.or(comment);
            audit::append(c, rec)?;
            let what = to.as_str().replace('_', " ");
            notify_qa(
                c,
                &format!("batch_{}", to.as_str()),
                &batch,
                &what,
                actor,
                justification,
            )?;
        } else {
            let mut rec = AuditRecord::on_batch(
                &chain,
                batch.id,
                Some(actor),
                "batch.release_signed",
                "batch",
                batch.id,
            )
            .after(sig_json);
            rec.reason = justification.or(comment);
            audit::append(c, rec)?;
        }
        Ok(Ok(get_batch(c, batch.id)?))
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

/// Rejects or recalls a batch (signed, QA, reason required).
pub fn dispose(
    conn: &mut PgConnection,
    lockout: LockoutPolicy,
    actor: &Actor,
    batch_id: Uuid,
    what: Disposition,
    password: &str,
    reason: &str,
) -> Result<BatchDetail, AppError> {
    let mut errors = Vec::new();
    let reason = crate::domain::text::note("reason", reason, 10_000, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    in_transaction(conn, |c| {
        let batch = lock_batch(c, batch_id)?;
        let status = status_of(&batch)?;
        let (checked, meaning, verb) = match what {
            Disposition::Reject => (check_reject(status), Meaning::Rejected, "rejected"),
            Disposition::Recall => (check_recall(status), Meaning::Recalled, "recalled"),
        };
        let to = match checked {
            Ok(to) => to,
            Err(s) => return Ok(Err(transition_error(s, verb))),
        };
        if let Err(refusal) = signatures::verify_signer(c, lockout, actor, password)? {
            return Ok(Err(refusal));
        }
        let record = json!({"batch_id": batch.id, "batch_number": batch.batch_number,
                            "from": status.as_str(), "to": to.as_str(), "reason": reason});
        let signature = signatures::record(
            c,
            actor,
            &Signing {
                meaning,
                entity_type: "batch",
                entity_id: batch.id,
                batch_id: Some(batch.id),
                reason: Some(&reason),
                record: &record,
            },
        )?;
        set_status(c, &batch, to)?;
        let chain = batch_chain(batch.id);
        let action = format!("batch.{verb}");
        let mut rec = AuditRecord::on_batch(&chain, batch.id, Some(actor), &action, "batch", batch.id)
            .before(json!({"status": status.as_str()}))
            .after(json!({"status": to.as_str(), "signature_id": signature.id, "record_hash": signature.record_hash}));
        rec.reason = Some(&reason);
        audit::append(c, rec)?;
        notify_qa(
            c,
            &format!("batch_{verb}"),
            &batch,
            verb,
            actor,
            Some(&reason),
        )?;
        Ok(Ok(get_batch(c, batch.id)?))
    })?
}
