//! Test results: recording (evaluated against the batch's specification),
//! replacement, the automatic OOS deviation, and second-person review;
//! `import` records them from an instrument's export by the same rules.

mod import;

pub use import::{
    ImportInput, ImportOutcome, ImportPreview, ImportPreviewRow, Imported, ReadExport,
    SourceFileView, import_results, read_export, source_file,
};

use super::batch_record::views::{ResultView, result_view};
use super::batch_record::{self, BatchOf, LockedBatch, NewDeviation, fitness, result_not_found};
use super::signatures::{self, Signing, SigningRules};
use super::{Actor, audit::AuditRecord, in_transaction, notices};
use crate::db::models::ResultRow;
use crate::db::prepared::prepared;
use crate::db::schema::results;
use crate::domain::FieldError;
use crate::domain::StoredName;
use crate::domain::audit_event::{AuditEvent, ResultRecorded};
use crate::domain::deviation::{DeviationKind, opens_oos};
use crate::domain::record::{BatchRecord, RecordedResult};
pub use crate::domain::result::Decision;
use crate::domain::result::{ResultStatus, check_accepts_results};
use crate::domain::roles::Action;
use crate::domain::spec::{ValueError, describe_limit, evaluate};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// One result, as the API shows it.
pub fn get_result(conn: &mut PgConnection, id: Uuid) -> Result<ResultView, AppError> {
    let batch_id: Uuid = results::table
        .find(id)
        .select(results::batch_id)
        .first(conn)
        .optional()?
        .ok_or_else(|| result_not_found(id))?;
    let record = batch_record::read(conn, batch_id)?;
    result_view(&record, id).ok_or_else(|| result_not_found(id))
}

/// A result as recorded by a technician.
#[derive(Debug, Clone)]
pub struct NewResultInput {
    pub test_code: String,
    /// Raw JSON text of the value (number or string).
    pub value: String,
    pub unit: Option<String>,
    pub performed_at: DateTime<Utc>,
    pub instrument: Option<String>,
    /// The registered instrument it was measured on.
    pub instrument_id: Option<Uuid>,
    /// The material lots it used.
    pub material_ids: Vec<Uuid>,
    pub comment: Option<String>,
    pub replaces_result_id: Option<Uuid>,
    pub reason: Option<String>,
}

/// What a result record says, for its audit entry and its review signature.
pub fn result_record(batch_id: Uuid, r: &RecordedResult) -> Result<Value, AppError> {
    Ok(serde_json::to_value(ResultRecorded {
        id: r.id,
        batch_id,
        test_code: r.test_code.clone(),
        value: r.value.clone(),
        unit: r.unit.clone(),
        outcome: r.outcome,
        performed_by: r.performed_by.id,
        performed_at: r.performed_at,
        recorded_at: r.recorded_at,
        instrument: r.instrument.clone(),
        comment: r.comment.clone(),
        replaces_result_id: r.replaces_result_id,
        reason: r.reason.clone(),
        instrument_id: r.instrument_id,
        material_ids: r.material_ids.clone(),
        source_file_id: r.source_file_id,
    })?)
}

/// Records a result against the batch's specification. A failing result
/// opens an OOS deviation and queues an email to every active QA user, in
/// the same transaction.
pub fn record_result(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    input: &NewResultInput,
) -> Result<ResultView, AppError> {
    actor.authorize(Action::RecordResult)?;
    let notes = Notes::of(input);
    in_transaction(conn, |c| {
        let mut lb =
            LockedBatch::lock_using(c, batch_id, input.instrument_id, &input.material_ids)?;
        check_accepts_results(
            lb.record.batch.status,
            lb.record.open_corrections().next().is_some(),
        )?;
        record_on(c, actor, &mut lb, input, &notes, None)
    })
}

/// A result's free-text fields, checked before the transaction.
#[derive(Debug, Clone)]
struct Notes {
    instrument: Option<String>,
    comment: Option<String>,
    reason: Option<String>,
    errors: Vec<FieldError>,
}

impl Notes {
    fn of(input: &NewResultInput) -> Self {
        let mut errors = Vec::new();
        let instrument = crate::domain::text::optional_line(
            "instrument",
            input.instrument.as_deref(),
            200,
            &mut errors,
        );
        let comment = crate::domain::text::optional_note(
            "comment",
            input.comment.as_deref(),
            2000,
            &mut errors,
        );
        let reason = crate::domain::text::optional_note(
            "reason",
            input.reason.as_deref(),
            2000,
            &mut errors,
        );
        Notes {
            instrument,
            comment,
            reason,
            errors,
        }
    }
}

/// Records one result on a batch locked and accepting results: every rule
/// of a typed result (the specification, times, replacement, the analyst's
/// qualification, the instrument, the lots), its audit entry and the OOS
/// deviation a failing value opens. Typed and imported results both come
/// through here.
fn record_on(
    c: &mut PgConnection,
    actor: &Actor,
    lb: &mut LockedBatch,
    input: &NewResultInput,
    notes: &Notes,
    source_file_id: Option<Uuid>,
) -> Result<ResultView, AppError> {
    {
        let reason = &notes.reason;
        let instrument = &notes.instrument;
        let comment = &notes.comment;
        let mut errors = notes.errors.clone();
        let code = input.test_code.trim();
        let Some(def) = lb.record.test(code).cloned() else {
            let known: Vec<&str> = lb
                .record
                .spec
                .tests
                .iter()
                .map(|t| t.code.as_str())
                .collect();
            errors.push(FieldError::said(
                "test_code",
                "field-not-a-test",
                &[("code", code.to_owned()), ("known", known.join(", "))],
            ));
            return Err(AppError::validation(errors));
        };
        let unit = input
            .unit
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        match (unit, def.unit.as_deref()) {
            (Some(given), Some(spec)) if given != spec => {
                errors.push(FieldError::said(
                    "unit",
                    "field-unit-must-be",
                    &[("unit", spec.to_owned())],
                ));
            }
            (Some(_), None) => errors.push(FieldError::said("unit", "field-no-unit", &[])),
            _ => {}
        }
        let evaluated = evaluate(&def, &input.value)
            .map_err(|e: ValueError| errors.push(e.field_error()))
            .ok();
        let now = Utc::now();
        if input.performed_at > now {
            errors.push(FieldError::said("performed_at", "field-in-future", &[]));
        }
        if input.performed_at < lb.record.batch.manufactured_at {
            errors.push(FieldError::said(
                "performed_at",
                "field-before-manufacture",
                &[],
            ));
        }
        let (Some(evaluated), true) = (evaluated, errors.is_empty()) else {
            return Err(AppError::validation(errors));
        };
        lb.record
            .check_new_result(&def.code, input.replaces_result_id, reason.as_deref())?;
        let lots = fitness::check(
            c,
            &fitness::Claim {
                performer: actor.id,
                test_code: &def.code,
                qualification_required: def.qualification_required,
                instrument_kind: def.instrument_kind.as_deref(),
                instrument_id: input.instrument_id,
                material_ids: &input.material_ids,
                lots_field: "material_ids",
                performed_at: input.performed_at,
            },
        )?;
        let row = ResultRow {
            id: Uuid::now_v7(),
            batch_id: lb.id(),
            test_code: def.code.clone(),
            value_text: evaluated.text.clone(),
            value_numeric: evaluated.numeric.clone(),
            unit: def.unit.clone(),
            outcome: evaluated.outcome.as_str().to_owned(),
            performed_by: actor.id,
            performed_at: input.performed_at,
            recorded_at: now,
            instrument: instrument.clone(),
            comment: comment.clone(),
            replaces_result_id: input.replaces_result_id,
            reason: input.replaces_result_id.and(reason.clone()),
            instrument_id: input.instrument_id,
            source_file_id,
        };
        diesel::insert_into(results::table)
            .values(&row)
            .execute(c)?;
        if !lots.is_empty() {
            // One statement for every lot the result used.
            use crate::db::schema::material_uses;
            let uses: Vec<_> = lots
                .iter()
                .map(|l| {
                    (
                        material_uses::id.eq(Uuid::now_v7()),
                        material_uses::material_id.eq(l.id),
                        material_uses::batch_id.eq(row.batch_id),
                        material_uses::result_id.eq(Some(row.id)),
                        material_uses::used_at.eq(row.performed_at),
                        material_uses::recorded_by.eq(actor.id),
                        material_uses::recorded_at.eq(now),
                    )
                })
                .collect();
            diesel::insert_into(material_uses::table)
                .values(&uses)
                .execute(c)?;
        }
        let mut recorded = batch_record::result_of(row, actor.audit_ref())?;
        recorded.material_ids = lots.iter().map(|l| l.id).collect();
        let chain = lb.chain();
        lb.append(
            c,
            AuditRecord::on_batch(
                &chain,
                lb.id(),
                Some(actor),
                AuditEvent::ResultRecorded,
                "result",
                recorded.id,
            )
            .after(result_record(lb.id(), &recorded)?),
        )?;
        if let Some(old) = recorded.replaces_result_id {
            let mut rec = AuditRecord::on_batch(
                &chain,
                lb.id(),
                Some(actor),
                AuditEvent::ResultSuperseded,
                "result",
                old,
            )
            .after(json!({"superseded_by": recorded.id}));
            rec.reason = recorded.reason.as_deref();
            lb.append(c, rec)?;
        }
        lb.record.push_result(recorded.clone());
        if let Some(severity) = opens_oos(recorded.outcome, lb.record.batch.status) {
            let limit = describe_limit(&def);
            let oos = lb.open_deviation(
                c,
                None,
                oos_deviation(&lb.record, &recorded, &limit, severity),
            )?;
            notices::oos_opened(c, &lb.record, &recorded, &oos, &limit)?;
        }
        result_view(&lb.record, recorded.id)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("result {} vanished", recorded.id)))
    }
}

/// The OOS investigation a failing result opens.
fn oos_deviation(
    record: &BatchRecord,
    r: &RecordedResult,
    limit: &str,
    severity: crate::domain::deviation::Severity,
) -> NewDeviation {
    let unit = r
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    NewDeviation {
        kind: DeviationKind::Oos,
        severity,
        result_id: Some(r.id),
        title: format!("OOS: {} {}{unit} (limit {limit})", r.test_code, r.value),
        description: format!(
            "Result {} of test {} on batch {} is out of specification: {}{unit}, limit {limit}.",
            r.id, r.test_code, record.batch.batch_number, r.value
        ),
        subject_id: None,
        result_ids: Vec::new(),
    }
}

/// Second-person review of a result (signed): not by its performer.
pub fn review_result(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    result_id: Uuid,
    input: &ReviewResult,
) -> Result<ResultView, AppError> {
    let reviewed = review(
        conn,
        &Review {
            rules,
            actor,
            ids: &[result_id],
            decision: input.decision,
            password: &input.password,
            comment: input.comment.as_deref(),
        },
        |_, e| e,
    )?;
    reviewed
        .into_iter()
        .next()
        .ok_or_else(|| result_not_found(result_id))
}

pub use crate::domain::result::{MAX_REVIEW_AT_ONCE, ReviewResult, ReviewResults};

/// Reviews several results with one signing act (signed): one signature row
/// per result, all or nothing. A refusal of any result refuses them all and
/// names that result (`result_ids[i]`).
pub fn review_results(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    input: &ReviewResults,
) -> Result<Vec<ResultView>, AppError> {
    let ids: &[Uuid] = &input.result_ids;
    let (decision, password, comment) = (
        input.decision,
        input.password.as_str(),
        input.comment.as_deref(),
    );
    review(
        conn,
        &Review {
            rules,
            actor,
            ids,
            decision,
            password,
            comment,
        },
        |i, e| name_result(e, i, ids.get(i).copied()),
    )
}

/// A refusal of one result of a list, naming it.
fn name_result(e: AppError, i: usize, id: Option<Uuid>) -> AppError {
    match e {
        AppError::Problem(mut p) => {
            let id = id.map(|id| id.to_string()).unwrap_or_default();
            p.detail = format!("result {id}: {}", p.detail);
            let words = p.words();
            p.errors.push(FieldError {
                field: format!("result_ids[{i}]"),
                message: p.detail.clone(),
                words,
            });
            AppError::Problem(p)
        }
        other => other,
    }
}

/// One signing act over one or more results.
struct Review<'a> {
    rules: &'a SigningRules,
    actor: &'a Actor,
    ids: &'a [Uuid],
    decision: Decision,
    password: &'a str,
    comment: Option<&'a str>,
}

fn review(
    conn: &mut PgConnection,
    r: &Review<'_>,
    refusal_of: impl Fn(usize, AppError) -> AppError,
) -> Result<Vec<ResultView>, AppError> {
    let meaning = r.decision.meaning();
    r.actor.authorize(Action::Sign(meaning))?;
    let mut errors = Vec::new();
    let comment = crate::domain::text::optional_note("comment", r.comment, 2000, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let comment = comment.as_deref();
    if r.decision == Decision::Reject && comment.is_none() {
        return Err(AppError::invalid_field_said(
            "comment",
            "fe-rejecting-a-result-needs-a-reason",
        ));
    }
    let actor = r.actor;
    in_transaction(conn, |c| {
        // The batches, locked in one order (two reviewers of overlapping
        // lists can't deadlock), each read once.
        let mut batches = lock_batches_of(c, r.ids, &refusal_of)?;
        let was_releasable: Vec<bool> = batches
            .iter()
            .map(|b| b.record.readiness().releasable)
            .collect();
        let mut at = Vec::with_capacity(r.ids.len());
        for (i, id) in r.ids.iter().enumerate() {
            let found = batches.iter().position(|b| b.record.result(*id).is_some());
            let Some(k) = found else {
                return Err(refusal_of(i, result_not_found(*id)));
            };
            if let Some(b) = batches.get(k) {
                b.record
                    .check_review(*id, actor.id)
                    .ok_or_else(|| result_not_found(*id))?
                    .map_err(|e| refusal_of(i, e.into()))?;
            }
            at.push(k);
        }
        // A refused signature on one batch's results appears in its history.
        let batch = match batches.as_slice() {
            [one] => Some(one.id()),
            _ => None,
        };
        if let Err(refusal) =
            signatures::verify_signer_on(c, r.rules.lockout, actor, r.password, batch)?
        {
            return Ok(Err(refusal));
        }
        let mut reviewed = Vec::with_capacity(r.ids.len());
        for (id, k) in r.ids.iter().zip(at) {
            let lb = batches.get_mut(k).ok_or_else(|| result_not_found(*id))?;
            reviewed.push(sign_review(
                c, r.rules, lb, actor, *id, r.decision, comment,
            )?);
        }
        for (lb, was) in batches.iter().zip(was_releasable) {
            notices::ready_for_release(c, was, &lb.record)?;
        }
        Ok(Ok(reviewed))
    })?
}

/// Locks the batches of `ids` in id order; an unknown result is 404 naming it.
fn lock_batches_of(
    c: &mut PgConnection,
    ids: &[Uuid],
    refusal_of: &impl Fn(usize, AppError) -> AppError,
) -> Result<Vec<LockedBatch>, AppError> {
    if let [id] = ids {
        return Ok(vec![LockedBatch::lock(c, BatchOf::Result(*id))?]);
    }
    let pairs: Vec<(Uuid, Uuid)> = results::table
        .filter(results::id.eq_any(ids))
        .select((results::id, results::batch_id))
        .load(c)?;
    if let Some(i) = ids
        .iter()
        .position(|id| !pairs.iter().any(|(r, _)| r == id))
    {
        let id = ids.get(i).copied().unwrap_or_default();
        return Err(refusal_of(i, result_not_found(id)));
    }
    let mut batch_ids: Vec<Uuid> = pairs.into_iter().map(|(_, b)| b).collect();
    batch_ids.sort_unstable();
    batch_ids.dedup();
    batch_ids
        .into_iter()
        .map(|b| LockedBatch::lock(c, BatchOf::Batch(b)))
        .collect()
}

/// Signs one review and appends its audit entry.
fn sign_review(
    c: &mut PgConnection,
    rules: &SigningRules,
    lb: &mut LockedBatch,
    actor: &Actor,
    result_id: Uuid,
    decision: Decision,
    comment: Option<&str>,
) -> Result<ResultView, AppError> {
    if lb.record.result(result_id).is_none() {
        return Err(result_not_found(result_id));
    }
    let signature = lb.sign(
        c,
        rules,
        actor,
        &Signing {
            meaning: decision.meaning(),
            entity_type: "result",
            entity_id: result_id,
            batch_id: Some(lb.id()),
            reason: comment,
            signs: result_id,
        },
    )?;
    let chain = lb.chain();
    let action = match decision {
        Decision::Accept => AuditEvent::ResultReviewed,
        Decision::Reject => AuditEvent::ResultReviewRejected,
    };
    let mut rec = AuditRecord::on_batch(&chain, lb.id(), Some(actor), action, "result", result_id)
        .after(json!({
            "signature_id": signature.id,
            "meaning": signature.meaning,
            "signed_at": signature.signed_at,
            "record_hash": signature.record_hash,
        }));
    rec.reason = comment;
    lb.append(c, rec)?;
    result_view(&lb.record, result_id).ok_or_else(|| result_not_found(result_id))
}

/// A result awaiting review, with its batch number.
#[derive(Debug, Clone)]
pub struct AwaitingReview {
    /// The result.
    pub result: ResultView,
    /// Its batch's number.
    pub batch_number: String,
}

/// Results awaiting second-person review, oldest first, leaving out those
/// `reviewer` performed (they may not review them).
pub fn review_queue(
    conn: &mut PgConnection,
    reviewer: Uuid,
    limit: i64,
) -> Result<Vec<AwaitingReview>, AppError> {
    #[derive(QueryableByName)]
    struct Pending {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        batch_id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Text)]
        batch_number: String,
    }
    // Candidates: the reviewers' work list (results_awaiting_review, kept by
    // triggers: no review signature, no replacement, no invalidation).
    let pending: Vec<Pending> = prepared(
        "SELECT w.result_id AS id, w.batch_id, b.batch_number \
           FROM results_awaiting_review w JOIN batches b ON b.id = w.batch_id \
          WHERE w.performed_by <> $1 \
          ORDER BY w.result_id LIMIT $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(reviewer)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)?;
    // One read per batch, not per result.
    let mut found: HashMap<Uuid, ResultView> = HashMap::new();
    let mut batches_seen: HashSet<Uuid> = HashSet::new();
    for p in &pending {
        if batches_seen.insert(p.batch_id) {
            let record = batch_record::read(conn, p.batch_id)?;
            found.extend(
                batch_record::views::result_views(&record)
                    .into_iter()
                    .map(|v| (v.result.id, v)),
            );
        }
    }
    Ok(pending
        .into_iter()
        .filter_map(|p| {
            found.remove(&p.id).map(|result| AwaitingReview {
                result,
                batch_number: p.batch_number,
            })
        })
        // The list narrows the candidates; the domain's status decides.
        .filter(|a| a.result.status == ResultStatus::Recorded)
        .collect())
}
