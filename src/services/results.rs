//! Test results: recording (evaluated against the batch's specification),
//! replacement, the automatic OOS deviation, and second-person review.

use super::audit::{self, AuditRecord};
use super::batches::{lock_batch, status_of};
use super::deviations;
use super::products::spec_tests_of;
use super::signatures::{self, SignatureView, Signing};
use super::{Actor, in_transaction};
use crate::db::models::{BatchRow, ResultRow, SignatureRow, UserRow};
use crate::db::schema::{deviations as dev, results, signatures as sig, users};
use crate::domain::FieldError;
use crate::domain::audit::{ActorRef, batch_chain};
use crate::domain::result::{
    RecordRefusal, ResultFacts, ResultStatus, Review, ReviewRefusal, check_new_result, check_review,
};
use crate::domain::signature::Meaning;
use crate::domain::spec::{Outcome, ValueError, describe_limit, evaluate};
use crate::domain::users::LockoutPolicy;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// A result as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResultView {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub test_code: String,
    /// As entered.
    pub value: String,
    pub unit: Option<String>,
    pub outcome: String,
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

/// A batch's results with the facts their status follows from.
pub struct BatchResults {
    /// Result rows, oldest first.
    pub rows: Vec<ResultRow>,
    /// Their facts, same order.
    pub facts: Vec<ResultFacts>,
    /// Review signatures by result.
    pub signatures: HashMap<Uuid, Vec<SignatureRow>>,
}

/// Loads a batch's results and derives each one's status.
pub fn load(conn: &mut PgConnection, batch_id: Uuid) -> Result<BatchResults, AppError> {
    let rows: Vec<ResultRow> = results::table
        .filter(results::batch_id.eq(batch_id))
        .order(results::id)
        .select(ResultRow::as_select())
        .load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let reviews: Vec<SignatureRow> = sig::table
        .filter(sig::entity_type.eq("result"))
        .filter(sig::entity_id.eq_any(&ids))
        .order(sig::id)
        .select(SignatureRow::as_select())
        .load(conn)?;
    let invalidated: Vec<Uuid> = dev::table
        .filter(dev::batch_id.eq(batch_id))
        .filter(dev::conclusion.eq("invalid_test"))
        .select(dev::result_id)
        .load::<Option<Uuid>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    let mut signatures: HashMap<Uuid, Vec<SignatureRow>> = HashMap::new();
    for s in reviews {
        signatures.entry(s.entity_id).or_default().push(s);
    }
    let facts = rows
        .iter()
        .map(|r| {
            let review = signatures.get(&r.id).and_then(|sigs| {
                sigs.iter().find_map(|s| match s.meaning.as_str() {
                    "reviewed" => Some((Review::Accepted, s.signer_id)),
                    "review_rejected" => Some((Review::Rejected, s.signer_id)),
                    _ => None,
                })
            });
            ResultFacts {
                id: r.id,
                test_code: r.test_code.clone(),
                outcome: if r.outcome == "fail" {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                },
                performed_by: r.performed_by,
                review: review.map(|(d, _)| d),
                reviewed_by: review.map(|(_, who)| who),
                superseded: rows.iter().any(|o| o.replaces_result_id == Some(r.id)),
                invalidated: invalidated.contains(&r.id),
            }
        })
        .collect();
    Ok(BatchResults {
        rows,
        facts,
        signatures,
    })
}

fn user_refs(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, ActorRef>, AppError> {
    let rows: Vec<UserRow> = users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|u| {
            (
                u.id,
                ActorRef {
                    id: u.id,
                    username: u.username,
                    full_name: u.full_name,
                },
            )
        })
        .collect())
}

fn view(
    r: &ResultRow,
    f: &ResultFacts,
    performer: ActorRef,
    signatures: Option<&Vec<SignatureRow>>,
) -> ResultView {
    ResultView {
        id: r.id,
        batch_id: r.batch_id,
        test_code: r.test_code.clone(),
        value: r.value_text.clone(),
        unit: r.unit.clone(),
        outcome: r.outcome.clone(),
        status: f.status(),
        performed_by: performer,
        performed_at: r.performed_at,
        recorded_at: r.recorded_at,
        instrument: r.instrument.clone(),
        comment: r.comment.clone(),
        replaces_result_id: r.replaces_result_id,
        reason: r.reason.clone(),
        signatures: signatures
            .map(|v| v.iter().map(SignatureView::from).collect())
            .unwrap_or_default(),
    }
}

fn views(conn: &mut PgConnection, loaded: &BatchResults) -> Result<Vec<ResultView>, AppError> {
    let performers: Vec<Uuid> = loaded.rows.iter().map(|r| r.performed_by).collect();
    let refs = user_refs(conn, &performers)?;
    Ok(loaded
        .rows
        .iter()
        .zip(&loaded.facts)
        .map(|(r, f)| {
            let performer = refs.get(&r.performed_by).cloned().unwrap_or(ActorRef {
                id: r.performed_by,
                username: String::new(),
                full_name: String::new(),
            });
            view(r, f, performer, loaded.signatures.get(&r.id))
        })
        .collect())
}

/// Every result of a batch, oldest first, with its status.
pub fn results_of(conn: &mut PgConnection, batch: &BatchRow) -> Result<Vec<ResultView>, AppError> {
    let loaded = load(conn, batch.id)?;
    views(conn, &loaded)
}

fn result_view(conn: &mut PgConnection, batch_id: Uuid, id: Uuid) -> Result<ResultView, AppError> {
    let loaded = load(conn, batch_id)?;
    views(conn, &loaded)?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| result_not_found(id))
}

fn result_not_found(id: Uuid) -> AppError {
    AppError::not_found("result_not_found", format!("no result {id}"))
}

/// One result.
pub fn get_result(conn: &mut PgConnection, id: Uuid) -> Result<ResultView, AppError> {
    let batch_id: Uuid = results::table
        .find(id)
        .select(results::batch_id)
        .first(conn)
        .optional()?
        .ok_or_else(|| result_not_found(id))?;
    result_view(conn, batch_id, id)
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
    pub comment: Option<String>,
    pub replaces_result_id: Option<Uuid>,
    pub reason: Option<String>,
}

/// What a result record says, for its audit entry and its review signature.
pub(crate) fn result_record(r: &ResultRow) -> Value {
    json!({
        "id": r.id,
        "batch_id": r.batch_id,
        "test_code": r.test_code,
        "value": r.value_text,
        "unit": r.unit,
        "outcome": r.outcome,
        "performed_by": r.performed_by,
        "performed_at": r.performed_at,
        "recorded_at": r.recorded_at,
        "instrument": r.instrument,
        "comment": r.comment,
        "replaces_result_id": r.replaces_result_id,
        "reason": r.reason,
    })
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
    let mut errors = Vec::new();
    let instrument = crate::domain::text::optional_line(
        "instrument",
        input.instrument.as_deref(),
        200,
        &mut errors,
    );
    let comment =
        crate::domain::text::optional_note("comment", input.comment.as_deref(), 2000, &mut errors);
    let reason =
        crate::domain::text::optional_note("reason", input.reason.as_deref(), 2000, &mut errors);
    in_transaction(conn, |c| {
        let batch = lock_batch(c, batch_id)?;
        let status = status_of(&batch)?;
        if !status.accepts_results() {
            return Err(AppError::conflict(
                "batch_closed",
                format!(
                    "the batch is {}: no result can be recorded",
                    status.as_str()
                ),
            ));
        }
        let mut errors = errors.clone();
        let tests = spec_tests_of(c, batch.spec_id)?;
        let code = input.test_code.trim();
        let Some(def) = tests.iter().find(|t| t.code == code) else {
            let known: Vec<&str> = tests.iter().map(|t| t.code.as_str()).collect();
            errors.push(FieldError::new(
                "test_code",
                format!(
                    "`{code}` is not a test of this batch's specification ({})",
                    known.join(", ")
                ),
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
                errors.push(FieldError::new(
                    "unit",
                    format!("must be `{spec}`, the specification's unit"),
                ));
            }
            (Some(_), None) => errors.push(FieldError::new("unit", "this test has no unit")),
            _ => {}
        }
        let evaluated = evaluate(def, &input.value)
            .map_err(|e: ValueError| errors.push(FieldError::new("value", e.message())))
            .ok();
        let now = Utc::now();
        if input.performed_at > now {
            errors.push(FieldError::new("performed_at", "is in the future"));
        }
        if input.performed_at < batch.manufactured_at {
            errors.push(FieldError::new(
                "performed_at",
                "is before the batch was manufactured",
            ));
        }
        let (Some(evaluated), true) = (evaluated, errors.is_empty()) else {
            return Err(AppError::validation(errors));
        };
        let loaded = load(c, batch.id)?;
        match check_new_result(
            &loaded.facts,
            &def.code,
            input.replaces_result_id,
            reason.as_deref(),
        ) {
            Ok(()) => {}
            Err(RecordRefusal::OosUnresolved { current }) => {
                return Err(AppError::conflict(
                    "oos_unresolved",
                    format!(
                        "result {current} of {} failed; no retest or replacement until QA closes its OOS \
                         investigation as invalid_test",
                        def.code
                    ),
                ));
            }
            Err(RecordRefusal::ResultExists { current }) => {
                return Err(AppError::conflict(
                    "result_exists",
                    format!(
                        "{} already has result {current}: name it in replaces_result_id with a reason",
                        def.code
                    ),
                ));
            }
            Err(RecordRefusal::NotReplaceable) => {
                return Err(AppError::conflict(
                    "not_replaceable",
                    format!(
                        "replaces_result_id is not the current or review-rejected result of {}",
                        def.code
                    ),
                ));
            }
            Err(RecordRefusal::ReasonRequired) => {
                return Err(AppError::invalid_field(
                    "reason",
                    "a replacement needs a reason",
                ));
            }
        }
        let row = ResultRow {
            id: Uuid::now_v7(),
            batch_id: batch.id,
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
        };
        diesel::insert_into(results::table)
            .values(&row)
            .execute(c)?;
        let chain = batch_chain(batch.id);
        audit::append(
            c,
            AuditRecord::on_batch(
                &chain,
                batch.id,
                Some(actor),
                "result.recorded",
                "result",
                row.id,
            )
            .after(result_record(&row)),
        )?;
        if let Some(old) = row.replaces_result_id {
            let mut rec = AuditRecord::on_batch(
                &chain,
                batch.id,
                Some(actor),
                "result.superseded",
                "result",
                old,
            )
            .after(json!({"superseded_by": row.id}));
            rec.reason = row.reason.as_deref();
            audit::append(c, rec)?;
        }
        if evaluated.outcome == Outcome::Fail {
            deviations::open_oos(c, &batch, status, &row, &describe_limit(def))?;
        }
        // The new result's view from what was just written: it is unreviewed,
        // unsigned and not replaced, and the performer is the actor.
        let facts = ResultFacts {
            id: row.id,
            test_code: row.test_code.clone(),
            outcome: evaluated.outcome,
            performed_by: actor.id,
            review: None,
            reviewed_by: None,
            superseded: false,
            invalidated: false,
        };
        Ok(view(&row, &facts, actor.audit_ref(), None))
    })
}

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The result is correct as recorded.
    Accept,
    /// The result is not acceptable; a replacement must be recorded.
    Reject,
}

/// Second-person review of a result (signed): not by its performer.
pub fn review_result(
    conn: &mut PgConnection,
    lockout: LockoutPolicy,
    actor: &Actor,
    result_id: Uuid,
    decision: Decision,
    password: &str,
    comment: Option<&str>,
) -> Result<ResultView, AppError> {
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if decision == Decision::Reject && comment.is_none() {
        return Err(AppError::invalid_field(
            "comment",
            "rejecting a result needs a reason",
        ));
    }
    in_transaction(conn, |c| {
        let batch_id: Uuid = results::table
            .find(result_id)
            .select(results::batch_id)
            .first(c)
            .optional()?
            .ok_or_else(|| result_not_found(result_id))?;
        let batch = lock_batch(c, batch_id)?;
        let was_releasable = super::release::is_releasable(c, &batch)?;
        let loaded = load(c, batch.id)?;
        let (row, facts) = loaded
            .rows
            .iter()
            .zip(&loaded.facts)
            .find(|(r, _)| r.id == result_id)
            .ok_or_else(|| result_not_found(result_id))?;
        match check_review(facts, actor.id) {
            Ok(()) => {}
            Err(ReviewRefusal::SelfReview) => {
                return Ok(Err(AppError::forbidden(
                    "self_review",
                    "you performed this result: another reviewer must review it",
                )));
            }
            Err(ReviewRefusal::NotAwaitingReview(status)) => {
                return Ok(Err(AppError::conflict(
                    "not_reviewable",
                    format!("the result is {status:?}; only a recorded result awaits review")
                        .to_lowercase(),
                )));
            }
        }
        if let Err(refusal) = signatures::verify_signer(c, lockout, actor, password)? {
            return Ok(Err(refusal));
        }
        let (meaning, action) = match decision {
            Decision::Accept => (Meaning::Reviewed, "result.reviewed"),
            Decision::Reject => (Meaning::ReviewRejected, "result.review_rejected"),
        };
        let record = result_record(row);
        let signature = signatures::record(
            c,
            actor,
            &Signing {
                meaning,
                entity_type: "result",
                entity_id: row.id,
                batch_id: Some(batch.id),
                reason: comment,
                record: &record,
            },
        )?;
        let chain = batch_chain(batch.id);
        let mut rec =
            AuditRecord::on_batch(&chain, batch.id, Some(actor), action, "result", row.id).after(
                json!({
                    "signature_id": signature.id,
                    "meaning": signature.meaning,
                    "signed_at": signature.signed_at,
                    "record_hash": signature.record_hash,
                }),
            );
        rec.reason = comment;
        audit::append(c, rec)?;
        super::release::announce_if_ready(c, batch.id, was_releasable)?;
        Ok(Ok(result_view(c, batch.id, row.id)?))
    })?
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
    let pending: Vec<Pending> = diesel::sql_query(
        "SELECT w.result_id AS id, w.batch_id, b.batch_number \
           FROM results_awaiting_review w JOIN batches b ON b.id = w.batch_id \
          WHERE w.performed_by <> $1 \
          ORDER BY w.result_id LIMIT $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(reviewer)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)?;
    // One load per batch, not per result.
    let mut found: HashMap<Uuid, ResultView> = HashMap::new();
    let mut batches_seen: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
    for p in &pending {
        if batches_seen.insert(p.batch_id) {
            let loaded = load(conn, p.batch_id)?;
            found.extend(views(conn, &loaded)?.into_iter().map(|v| (v.id, v)));
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
