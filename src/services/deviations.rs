//! Deviations, including OOS investigations: opened automatically by a
//! failing result (or by hand), closed by QA with a signed conclusion.
//! Closing an OOS as `invalid_test` invalidates its result.

use super::audit::{self, AuditRecord};
use super::batches::lock_batch;
use super::outbox::{self, Email};
use super::signatures::{self, SignatureView, Signing};
use super::{Actor, in_transaction};
use crate::db::models::{BatchRow, DeviationRow, ResultRow};
use crate::db::schema::deviations;
use crate::domain::FieldError;
use crate::domain::audit::batch_chain;
use crate::domain::batch::BatchStatus;
use crate::domain::deviation::{
    CloseRefusal, Conclusion, DeviationKind, Severity, check_close, oos_severity,
};
use crate::domain::signature::Meaning;
use crate::domain::users::LockoutPolicy;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// A deviation as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviationView {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub result_id: Option<Uuid>,
    pub kind: String,
    pub severity: String,
    pub status: String,
    pub title: String,
    pub description: String,
    pub conclusion: Option<String>,
    pub root_cause: Option<String>,
    pub opened_by: Option<Uuid>,
    pub opened_at: DateTime<Utc>,
    pub closed_by: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    pub signatures: Vec<SignatureView>,
}

fn view(d: &DeviationRow, sigs: Vec<SignatureView>) -> DeviationView {
    DeviationView {
        id: d.id,
        batch_id: d.batch_id,
        result_id: d.result_id,
        kind: d.kind.clone(),
        severity: d.severity.clone(),
        status: d.status.clone(),
        title: d.title.clone(),
        description: d.description.clone(),
        conclusion: d.conclusion.clone(),
        root_cause: d.root_cause.clone(),
        opened_by: d.opened_by,
        opened_at: d.opened_at,
        closed_by: d.closed_by,
        closed_at: d.closed_at,
        signatures: sigs,
    }
}

/// What the audit trail records of a deviation.
fn record_of(d: &DeviationRow) -> Value {
    json!({
        "id": d.id,
        "batch_id": d.batch_id,
        "result_id": d.result_id,
        "kind": d.kind,
        "severity": d.severity,
        "status": d.status,
        "title": d.title,
        "description": d.description,
        "conclusion": d.conclusion,
        "root_cause": d.root_cause,
    })
}

/// The page of a batch, linked from emails.
pub fn batch_link(batch_id: Uuid) -> String {
    format!("/batches/{batch_id}")
}

/// Every deviation of a batch, oldest first.
pub fn deviations_of(
    conn: &mut PgConnection,
    batch_id: Uuid,
) -> Result<Vec<DeviationView>, AppError> {
    let rows: Vec<DeviationRow> = deviations::table
        .filter(deviations::batch_id.eq(batch_id))
        .order(deviations::id)
        .select(DeviationRow::as_select())
        .load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
    let sigs = signatures::for_entities(conn, &ids)?;
    Ok(rows
        .iter()
        .map(|d| {
            let s = sigs
                .get(&d.id)
                .map(|v| v.iter().map(SignatureView::from).collect())
                .unwrap_or_default();
            view(d, s)
        })
        .collect())
}

fn insert_and_audit(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    row: &DeviationRow,
) -> Result<(), AppError> {
    diesel::insert_into(deviations::table)
        .values(row)
        .execute(conn)?;
    let chain = batch_chain(row.batch_id);
    audit::append(
        conn,
        AuditRecord::on_batch(
            &chain,
            row.batch_id,
            actor,
            "deviation.opened",
            "deviation",
            row.id,
        )
        .after(record_of(row)),
    )?;
    Ok(())
}

/// Opens the OOS deviation of a failing result and queues the email to every
/// active QA user; called inside the transaction that recorded the result.
/// A failure after (conditional) release is critical and urgent.
pub fn open_oos(
    conn: &mut PgConnection,
    batch: &BatchRow,
    status: BatchStatus,
    result: &ResultRow,
    limit: &str,
) -> Result<DeviationRow, AppError> {
    let severity = oos_severity(status.is_released());
    let unit = result
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    let row = DeviationRow {
        id: Uuid::now_v7(),
        batch_id: batch.id,
        result_id: Some(result.id),
        kind: DeviationKind::Oos.as_str().to_owned(),
        severity: severity.as_str().to_owned(),
        status: "open".to_owned(),
        title: format!(
            "OOS: {} {}{unit} (limit {limit})",
            result.test_code, result.value_text
        ),
        description: format!(
            "Result {} of test {} on batch {} is out of specification: {}{unit}, limit {limit}.",
            result.id, result.test_code, batch.batch_number, result.value_text
        ),
        opened_by: None,
        opened_at: Utc::now(),
        conclusion: None,
        root_cause: None,
        closed_by: None,
        closed_at: None,
    };
    insert_and_audit(conn, None, &row)?;
    let urgent = severity == Severity::Critical;
    let subject = if urgent {
        format!(
            "[cellqc] URGENT: late OOS on {} batch {}: {} failed",
            status.as_str().replace('_', " "),
            batch.batch_number,
            result.test_code
        )
    } else {
        format!(
            "[cellqc] OOS on batch {}: {} failed",
            batch.batch_number, result.test_code
        )
    };
    let body = format!(
        "{}\n\nBatch: {} (status {})\nTest: {}\nResult: {}{unit}\nLimit: {limit}\nDeviation: {} ({})\n\
         \nThe result can't be superseded or retested until QA closes the \
         investigation; only a documented assignable cause (invalid_test) invalidates it.\n",
        row.description,
        batch.batch_number,
        status.as_str(),
        result.test_code,
        result.value_text,
        row.id,
        severity.as_str(),
    );
    let qa = outbox::active_role_emails(conn, "qa")?;
    outbox::queue(
        conn,
        qa,
        &Email {
            kind: if urgent { "late_oos" } else { "oos_recorded" },
            subject: &subject,
            body: &body,
            urgent,
            link_path: Some(&batch_link(batch.id)),
        },
    )?;
    Ok(row)
}

/// Opens the `excursion` deviation of a custody event whose temperature is
/// outside the product's storage range, and queues the email to every active
/// QA user; called inside the transaction that records the event.
pub fn open_excursion(
    conn: &mut PgConnection,
    actor: &Actor,
    batch: &BatchRow,
    event: &str,
    temperature: &str,
    range: &str,
) -> Result<DeviationRow, AppError> {
    let row = DeviationRow {
        id: Uuid::now_v7(),
        batch_id: batch.id,
        result_id: None,
        kind: DeviationKind::Excursion.as_str().to_owned(),
        severity: Severity::Major.as_str().to_owned(),
        status: "open".to_owned(),
        title: format!("Temperature excursion: {temperature} °C at {event}"),
        description: format!(
            "Custody event `{event}` of batch {} recorded {temperature} °C, outside the storage range {range}.",
            batch.batch_number
        ),
        opened_by: Some(actor.id),
        opened_at: Utc::now(),
        conclusion: None,
        root_cause: None,
        closed_by: None,
        closed_at: None,
    };
    insert_and_audit(conn, Some(actor), &row)?;
    let subject = format!(
        "[cellqc] Temperature excursion on batch {}",
        batch.batch_number
    );
    let body = format!(
        "{}\n\nDeviation: {}\n\nThe batch can't be released while the deviation is open.\n",
        row.description, row.id
    );
    let qa = outbox::active_role_emails(conn, "qa")?;
    outbox::queue(
        conn,
        qa,
        &Email {
            kind: "custody_excursion",
            subject: &subject,
            body: &body,
            urgent: true,
            link_path: Some(&batch_link(batch.id)),
        },
    )?;
    Ok(row)
}

/// A manual deviation.
#[derive(Debug, Clone, Default)]
pub struct NewDeviationInput {
    pub title: String,
    pub description: String,
    pub severity: Option<String>,
}

/// Opens a deviation by hand (technician, reviewer, QA); severity defaults to minor.
pub fn open_manual(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    input: &NewDeviationInput,
) -> Result<DeviationView, AppError> {
    let mut errors = Vec::new();
    let title = crate::domain::text::line("title", &input.title, 200, &mut errors);
    let description =
        crate::domain::text::note("description", &input.description, 10_000, &mut errors);
    let severity = match input.severity.as_deref() {
        None => Some(Severity::Minor),
        Some(s) => Severity::parse(s).or_else(|| {
            errors.push(FieldError::new(
                "severity",
                "must be minor, major or critical",
            ));
            None
        }),
    };
    let (Some(severity), true) = (severity, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    in_transaction(conn, |c| {
        let batch = lock_batch(c, batch_id)?;
        let row = DeviationRow {
            id: Uuid::now_v7(),
            batch_id: batch.id,
            result_id: None,
            kind: DeviationKind::Manual.as_str().to_owned(),
            severity: severity.as_str().to_owned(),
            status: "open".to_owned(),
            title: title.clone(),
            description: description.clone(),
            opened_by: Some(actor.id),
            opened_at: Utc::now(),
            conclusion: None,
            root_cause: None,
            closed_by: None,
            closed_at: None,
        };
        insert_and_audit(c, Some(actor), &row)?;
        Ok(view(&row, Vec::new()))
    })
}

/// Closes a deviation (QA, signed) with a conclusion and root cause.
pub fn close(
    conn: &mut PgConnection,
    lockout: LockoutPolicy,
    actor: &Actor,
    deviation_id: Uuid,
    conclusion: &str,
    root_cause: &str,
    password: &str,
) -> Result<DeviationView, AppError> {
    let mut errors = Vec::new();
    let conclusion = Conclusion::parse(conclusion).or_else(|| {
        errors.push(FieldError::new(
            "conclusion",
            "must be invalid_test, confirmed_oos or no_impact",
        ));
        None
    });
    let root_cause = crate::domain::text::note("root_cause", root_cause, 10_000, &mut errors);
    let (Some(conclusion), true) = (conclusion, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    in_transaction(conn, |c| {
        let batch_id: Uuid = deviations::table
            .find(deviation_id)
            .select(deviations::batch_id)
            .first(c)
            .optional()?
            .ok_or_else(|| {
                AppError::not_found(
                    "deviation_not_found",
                    format!("no deviation {deviation_id}"),
                )
            })?;
        let batch = lock_batch(c, batch_id)?;
        let was_releasable = super::release::is_releasable(c, &batch)?;
        let before: DeviationRow = deviations::table
            .find(deviation_id)
            .select(DeviationRow::as_select())
            .first(c)?;
        match check_close(
            before.status == "open",
            before.result_id.is_some(),
            conclusion,
        ) {
            Ok(()) => {}
            Err(CloseRefusal::AlreadyClosed) => {
                return Ok(Err(AppError::conflict(
                    "deviation_closed",
                    "the deviation is already closed",
                )));
            }
            Err(CloseRefusal::NotAnOos) => {
                return Ok(Err(AppError::invalid_field(
                    "conclusion",
                    "invalid_test and confirmed_oos conclude an OOS investigation of a result",
                )));
            }
        }
        if let Err(refusal) = signatures::verify_signer(c, lockout, actor, password)? {
            return Ok(Err(refusal));
        }
        let after: DeviationRow = diesel::update(deviations::table.find(deviation_id))
            .set((
                deviations::status.eq("closed"),
                deviations::conclusion.eq(conclusion.as_str()),
                deviations::root_cause.eq(&root_cause),
                deviations::closed_by.eq(actor.id),
                deviations::closed_at.eq(Utc::now()),
            ))
            .returning(DeviationRow::as_returning())
            .get_result(c)?;
        let record = record_of(&after);
        let signature = signatures::record(
            c,
            actor,
            &Signing {
                meaning: Meaning::DeviationClosed,
                entity_type: "deviation",
                entity_id: after.id,
                batch_id: Some(batch.id),
                reason: Some(&root_cause),
                record: &record,
            },
        )?;
        let chain = batch_chain(batch.id);
        let mut after_json = record.clone();
        after_json["signature_id"] = json!(signature.id);
        after_json["record_hash"] = json!(signature.record_hash);
        let mut rec = AuditRecord::on_batch(
            &chain,
            batch.id,
            Some(actor),
            "deviation.closed",
            "deviation",
            after.id,
        )
        .before(record_of(&before))
        .after(after_json);
        rec.reason = Some(&root_cause);
        audit::append(c, rec)?;
        if let (Conclusion::InvalidTest, Some(result_id)) = (conclusion, after.result_id) {
            let mut rec = AuditRecord::on_batch(
                &chain,
                batch.id,
                Some(actor),
                "result.invalidated",
                "result",
                result_id,
            )
            .after(json!({"deviation_id": after.id, "conclusion": conclusion.as_str()}));
            rec.reason = Some(&root_cause);
            audit::append(c, rec)?;
        }
        super::release::announce_if_ready(c, batch.id, was_releasable)?;
        Ok(Ok(view(&after, vec![SignatureView::from(&signature)])))
    })?
}
