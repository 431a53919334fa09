//! Deviations opened by hand, post-release corrections QA opens with a
//! signature, and the signed close of any deviation (OOS investigations
//! included). Closing an OOS as `invalid_test` invalidates its result;
//! closing a correction as `does_not_meet_specification` blocks the batch
//! and tells QA at once. (A failing result opens its OOS in `results`; an
//! excursion opens its deviation in `custody`; both through
//! [`LockedBatch::open_deviation`].)

use super::audit::AuditRecord;
use super::batch_record::views::DeviationView;
use super::batch_record::{
    BatchOf, LockedBatch, NewDeviation, deviation_not_found, deviation_record,
};
use super::signatures::{self, Signing, SigningRules};
use super::{Actor, in_transaction, notices};
use crate::db::models::DeviationRow;
use crate::db::schema::deviations;
use crate::domain::FieldError;
use crate::domain::StoredName;
use crate::domain::audit_event::AuditEvent;
use crate::domain::deviation::{
    CloseDeviation, Conclusion, DeviationKind, DeviationStatus, OpenDeviation, Severity,
};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::AppError;
use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// Opens a deviation by hand (technician, reviewer, QA); severity defaults to minor.
pub fn open_manual(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    input: &OpenDeviation,
) -> Result<DeviationView, AppError> {
    actor.authorize(Action::OpenDeviation)?;
    let title = input.title.to_string();
    // A deviation opened by hand says what happened.
    let Some(description) = input.description.as_deref().map(str::to_owned) else {
        return Err(AppError::invalid_field_with(
            "description",
            "field-text-length",
            &[("max", "10000".to_owned())],
        ));
    };
    let severity = input.severity.unwrap_or(Severity::Minor);
    in_transaction(conn, |c| {
        let mut lb = LockedBatch::lock(c, BatchOf::Batch(batch_id))?;
        let d = lb.open_deviation(
            c,
            Some(actor),
            NewDeviation {
                kind: DeviationKind::Manual,
                severity,
                result_id: None,
                title: title.clone(),
                description: description.clone(),
                subject_id: None,
                result_ids: Vec::new(),
            },
        )?;
        Ok(DeviationView::of(&lb.record, &d))
    })
}

/// Closes a deviation (QA, signed) with a conclusion and root cause.
pub fn close(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    deviation_id: Uuid,
    input: &CloseDeviation,
) -> Result<DeviationView, AppError> {
    actor.authorize(Action::Sign(Meaning::DeviationClosed))?;
    let (conclusion, root_cause, password) = (
        input.conclusion,
        input.root_cause.to_string(),
        input.password.as_str(),
    );
    in_transaction(conn, |c| {
        let mut lb = LockedBatch::lock(c, BatchOf::Deviation(deviation_id))?;
        let was_releasable = lb.record.readiness().releasable;
        let before = lb
            .record
            .deviation(deviation_id)
            .cloned()
            .ok_or_else(|| deviation_not_found(deviation_id))?;
        lb.record
            .check_close(deviation_id, conclusion)
            .ok_or_else(|| deviation_not_found(deviation_id))??;
        if let Err(refusal) =
            signatures::verify_signer_on(c, rules.lockout, actor, password, Some(lb.id()))?
        {
            return Ok(Err(refusal));
        }
        let row: DeviationRow = diesel::update(deviations::table.find(deviation_id))
            .set((
                deviations::status.eq(DeviationStatus::Closed.as_str()),
                deviations::conclusion.eq(conclusion.as_str()),
                deviations::root_cause.eq(&root_cause),
                deviations::closed_by.eq(actor.id),
                deviations::closed_at.eq(Utc::now()),
            ))
            .returning(DeviationRow::as_returning())
            .get_result(c)?;
        let after = super::batch_record::deviation_of(row)?;
        let record = deviation_record(lb.id(), &after);
        lb.record.put_deviation(after.clone());
        let signature = lb.sign(
            c,
            rules,
            actor,
            &Signing {
                meaning: Meaning::DeviationClosed,
                entity_type: "deviation",
                entity_id: after.id,
                batch_id: Some(lb.id()),
                reason: Some(&root_cause),
                signs: after.id,
            },
        )?;
        let chain = lb.chain();
        let mut after_json = record.clone();
        if let Value::Object(fields) = &mut after_json {
            fields.insert("signature_id".to_owned(), json!(signature.id));
            fields.insert("record_hash".to_owned(), json!(signature.record_hash));
        }
        let mut rec = AuditRecord::on_batch(
            &chain,
            lb.id(),
            Some(actor),
            AuditEvent::DeviationClosed,
            "deviation",
            after.id,
        )
        .signed_change(&deviation_record(lb.id(), &before), after_json);
        rec.reason = Some(&root_cause);
        lb.append(c, rec)?;
        if let (Conclusion::InvalidTest, Some(result_id)) = (conclusion, after.result_id) {
            let mut rec = AuditRecord::on_batch(
                &chain,
                lb.id(),
                Some(actor),
                AuditEvent::ResultInvalidated,
                "result",
                result_id,
            )
            .after(json!({"deviation_id": after.id, "conclusion": conclusion}));
            rec.reason = Some(&root_cause);
            lb.append(c, rec)?;
        }
        if conclusion == Conclusion::DoesNotMeetSpecification {
            notices::correction_failed(c, &lb.record, &after, actor)?;
        }
        notices::ready_for_release(c, was_releasable, &lb.record)?;
        Ok(Ok(DeviationView::of(&lb.record, &after)))
    })?
}

/// QA opens a post-release correction of a current result of a released
/// (or conditionally released) batch, signed `correction_opened`: while it
/// is open, that result may be replaced (the replacement is reviewed like
/// any result) and the batch stays in the facility.
pub fn open_correction(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    batch_id: Uuid,
    input: &OpenDeviation,
) -> Result<DeviationView, AppError> {
    actor.authorize(Action::Sign(Meaning::CorrectionOpened))?;
    let mut errors = Vec::new();
    let title = input.title.to_string();
    // A correction names its reason and its result.
    let reason = input.reason.as_deref().unwrap_or_default().to_owned();
    if reason.is_empty() {
        errors.push(FieldError::said(
            "reason",
            "field-text-length",
            &[("max", "10000".to_owned())],
        ));
    }
    if input.result_id.is_none() {
        errors.push(FieldError::said(
            "result_id",
            "fe-name-the-result-to-correct",
            &[],
        ));
    }
    let (Some(result_id), true) = (input.result_id, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    in_transaction(conn, |c| {
        let mut lb = LockedBatch::lock(c, BatchOf::Batch(batch_id))?;
        lb.record.check_open_correction(result_id)?;
        if let Err(refusal) = signatures::verify_signer_on(
            c,
            rules.lockout,
            actor,
            input.password.as_deref().unwrap_or_default(),
            Some(lb.id()),
        )? {
            return Ok(Err(refusal));
        }
        let row = DeviationRow {
            id: Uuid::now_v7(),
            batch_id: lb.id(),
            result_id: None,
            kind: DeviationKind::PostReleaseCorrection.as_str().to_owned(),
            severity: Severity::Major.as_str().to_owned(),
            status: DeviationStatus::Open.as_str().to_owned(),
            title: title.clone(),
            description: reason.clone(),
            opened_by: Some(actor.id),
            opened_at: Utc::now(),
            conclusion: None,
            root_cause: None,
            closed_by: None,
            closed_at: None,
            subject_id: Some(result_id),
            result_ids: Some(vec![result_id]),
        };
        diesel::insert_into(deviations::table)
            .values(&row)
            .execute(c)?;
        let opened = super::batch_record::deviation_of(row)?;
        lb.record.put_deviation(opened.clone());
        let signature = lb.sign(
            c,
            rules,
            actor,
            &Signing {
                meaning: Meaning::CorrectionOpened,
                entity_type: "deviation",
                entity_id: opened.id,
                batch_id: Some(lb.id()),
                reason: Some(&reason),
                signs: opened.id,
            },
        )?;
        let chain = lb.chain();
        let mut after = deviation_record(lb.id(), &opened);
        if let Value::Object(fields) = &mut after {
            fields.insert("signature_id".to_owned(), json!(signature.id));
            fields.insert("record_hash".to_owned(), json!(signature.record_hash));
        }
        let mut rec = AuditRecord::on_batch(
            &chain,
            lb.id(),
            Some(actor),
            AuditEvent::DeviationOpened,
            "deviation",
            opened.id,
        )
        .after(after);
        rec.reason = Some(&reason);
        lb.append(c, rec)?;
        Ok(Ok(DeviationView::of(&lb.record, &opened)))
    })?
}
