//! The instrument registry (21 CFR 211.68, 211.160(b)(4)): QA registers
//! instruments; technicians and QA record calibrations and take an
//! instrument out of service; QA returns it to service with a signature.
//! Every change is written to the system chain. Status is derived from the
//! history (`domain::instrument::status_at`); the rule at each result is
//! `domain::instrument::check_usable`, asked by `results::record_result`.

use super::audit::{self, AuditRecord};
use super::signatures::{self, Signing, SigningRules};
use super::{Actor, in_transaction};
use crate::db::models::{InstrumentEventRow, InstrumentRow};
use crate::db::schema::{instrument_events, instruments};
use crate::domain::StoredName;
use crate::domain::audit::SYSTEM_CHAIN;
use crate::domain::audit_event::AuditEvent;
use crate::domain::instrument::{
    Event, OutOfService, RecordCalibration, RegisterInstrument, ReturnToService, Status, status_at,
};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::Code;
use crate::error::{AppError, FieldError};
use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

/// One event of an instrument's history, as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstrumentEventView {
    /// Event id.
    pub id: Uuid,
    /// `calibration`, `out_of_service` or `returned`.
    pub kind: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// A calibration's outcome: `pass` or `fail`.
    pub outcome: Option<String>,
    /// A calibration's end of validity.
    pub valid_until: Option<DateTime<Utc>>,
    /// A calibration's certificate reference.
    pub certificate: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Why (out of service, returned).
    pub reason: Option<String>,
    /// Who recorded it.
    pub recorded_by: Uuid,
}

impl From<&InstrumentEventRow> for InstrumentEventView {
    fn from(e: &InstrumentEventRow) -> Self {
        InstrumentEventView {
            id: e.id,
            kind: e.kind.clone(),
            at: e.at,
            outcome: e.outcome.clone(),
            valid_until: e.valid_until,
            certificate: e.certificate.clone(),
            notes: e.notes.clone(),
            reason: e.reason.clone(),
            recorded_by: e.recorded_by,
        }
    }
}

/// An instrument as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstrumentView {
    /// Id.
    pub id: Uuid,
    /// Its code (asset number).
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind (`flow_cytometer`), matched against a test's `instrument_kind`.
    pub kind: String,
    /// Where it stands.
    pub location: Option<String>,
    /// Status now.
    pub status: Status,
    /// The end of its latest calibration's validity.
    pub calibration_valid_until: Option<DateTime<Utc>>,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// Its history, oldest first (one instrument only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<InstrumentEventView>>,
}

fn view(
    i: &InstrumentRow,
    events: &[InstrumentEventRow],
    with_history: bool,
) -> Result<InstrumentView, AppError> {
    let domain: Vec<Event> = events
        .iter()
        .map(InstrumentEventRow::to_domain)
        .collect::<Result<_, _>>()?;
    let (status, calibration_valid_until) = status_at(&domain, Utc::now());
    Ok(InstrumentView {
        id: i.id,
        code: i.code.clone(),
        name: i.name.clone(),
        kind: i.kind.clone(),
        location: i.location.clone(),
        status,
        calibration_valid_until,
        created_at: i.created_at,
        history: with_history.then(|| events.iter().map(InstrumentEventView::from).collect()),
    })
}

fn not_found(id: Uuid) -> AppError {
    AppError::refused(Code::InstrumentNotFound, format!("no instrument {id}"))
}

fn load(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(InstrumentRow, Vec<InstrumentEventRow>), AppError> {
    Ok((instrument_row(conn, id, false)?, events_of(conn, id)?))
}

/// The instrument locked (`FOR UPDATE`) before its history is read and
/// added to: a result naming it holds `FOR SHARE` on the row from before its
/// fitness read until it commits (`batch_record::LockedBatch::lock_using`),
/// so a failed calibration's impact search sees every result that its
/// history did not refuse, and a result recorded after the event sees it.
fn load_for_change(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(InstrumentRow, Vec<InstrumentEventRow>), AppError> {
    Ok((instrument_row(conn, id, true)?, events_of(conn, id)?))
}

fn instrument_row(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<InstrumentRow, AppError> {
    let q = instruments::table
        .find(id)
        .select(InstrumentRow::as_select());
    let found = if lock {
        q.for_update().first(conn)
    } else {
        q.first(conn)
    };
    found.optional()?.ok_or_else(|| not_found(id))
}

fn events_of(conn: &mut PgConnection, id: Uuid) -> Result<Vec<InstrumentEventRow>, AppError> {
    Ok(instrument_events::table
        .filter(instrument_events::instrument_id.eq(id))
        .order((instrument_events::at, instrument_events::id))
        .select(InstrumentEventRow::as_select())
        .load(conn)?)
}

/// Registers an instrument (QA); it is `calibration_due` until calibrated.
pub fn register(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &RegisterInstrument,
) -> Result<InstrumentView, AppError> {
    actor.authorize(Action::RegisterInstruments)?;
    let (code, name, kind) = (
        input.code.as_str(),
        input.name.as_str(),
        input.kind.as_str(),
    );
    let location = input.location.as_deref();
    in_transaction(conn, |c| {
        let taken: bool = diesel::select(diesel::dsl::exists(
            instruments::table.filter(instruments::code.eq(&code)),
        ))
        .get_result(c)?;
        if taken {
            return Err(AppError::refused(
                Code::InstrumentCodeTaken,
                format!("an instrument {code} exists: codes are never reused"),
            ));
        }
        let row = InstrumentRow {
            id: Uuid::now_v7(),
            code: code.to_owned(),
            name: name.to_owned(),
            kind: kind.to_owned(),
            location: location.map(str::to_owned),
            created_at: Utc::now().trunc_subsecs(6),
            created_by: actor.id,
        };
        diesel::insert_into(instruments::table)
            .values(&row)
            .execute(c)?;
        audit::append(
            c,
            AuditRecord::new(SYSTEM_CHAIN, Some(actor), AuditEvent::InstrumentRegistered, "instrument", Some(row.id))
                .after(json!({"code": row.code, "name": row.name, "kind": row.kind, "location": row.location})),
        )?;
        view(&row, &[], false)
    })
}

/// Every instrument (optionally of one kind or status), by code.
pub fn list(
    conn: &mut PgConnection,
    kind: Option<&str>,
    status: Option<Status>,
) -> Result<Vec<InstrumentView>, AppError> {
    let mut q = instruments::table
        .select(InstrumentRow::as_select())
        .order(instruments::code)
        .into_boxed();
    if let Some(k) = kind {
        q = q.filter(instruments::kind.eq(k.to_owned()));
    }
    let rows: Vec<InstrumentRow> = q.load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut events: HashMap<Uuid, Vec<InstrumentEventRow>> = HashMap::new();
    for e in instrument_events::table
        .filter(instrument_events::instrument_id.eq_any(&ids))
        .order((instrument_events::at, instrument_events::id))
        .select(InstrumentEventRow::as_select())
        .load::<InstrumentEventRow>(conn)?
    {
        events.entry(e.instrument_id).or_default().push(e);
    }
    let mut out = Vec::new();
    for r in &rows {
        let v = view(r, events.get(&r.id).map_or(&[][..], Vec::as_slice), false)?;
        if status.is_none_or(|s| s == v.status) {
            out.push(v);
        }
    }
    Ok(out)
}

/// One instrument with its history.
pub fn get(conn: &mut PgConnection, id: Uuid) -> Result<InstrumentView, AppError> {
    let (i, events) = load(conn, id)?;
    view(&i, &events, true)
}

fn append_event(
    c: &mut PgConnection,
    actor: &Actor,
    row: &InstrumentEventRow,
    action: AuditEvent,
    code: &str,
    reason: Option<&str>,
) -> Result<(), AppError> {
    let mut rec = AuditRecord::new(
        SYSTEM_CHAIN,
        Some(actor),
        action,
        "instrument",
        Some(row.instrument_id),
    )
    .after(json!({
        "instrument": code,
        "event_id": row.id,
        "kind": row.kind,
        "at": row.at,
        "outcome": row.outcome,
        "valid_until": row.valid_until,
        "certificate": row.certificate,
    }));
    rec.reason = reason;
    audit::append(c, rec)?;
    Ok(())
}

/// Records a calibration (technician, QA). A failed one takes the instrument
/// out of service from its `performed_at` on.
pub fn calibrate(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    input: &RecordCalibration,
) -> Result<InstrumentEventView, AppError> {
    actor.authorize(Action::MaintainInstruments)?;
    let mut errors = Vec::new();
    let outcome: &'static str = input.outcome.into();
    let now = Utc::now();
    if input.performed_at > now {
        errors.push(FieldError::said("performed_at", "field-in-future", &[]));
    }
    if input.valid_until <= input.performed_at {
        errors.push(FieldError::said(
            "valid_until",
            "fe-must-be-after-performed-at",
            &[],
        ));
    }
    let certificate = input.certificate.as_deref().map(str::to_owned);
    let notes = input.notes.as_deref().map(str::to_owned);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    in_transaction(conn, |c| {
        let (instrument, events) = load_for_change(c, id)?;
        let row = InstrumentEventRow {
            id: Uuid::now_v7(),
            instrument_id: id,
            kind: "calibration".to_owned(),
            at: input.performed_at.trunc_subsecs(6),
            outcome: Some(outcome.to_owned()),
            valid_until: Some(input.valid_until.trunc_subsecs(6)),
            certificate: certificate.clone(),
            notes: notes.clone(),
            reason: None,
            recorded_by: actor.id,
            recorded_at: now,
        };
        diesel::insert_into(instrument_events::table)
            .values(&row)
            .execute(c)?;
        let action = if outcome == "pass" {
            AuditEvent::InstrumentCalibrated
        } else {
            AuditEvent::InstrumentCalibrationFailed
        };
        append_event(c, actor, &row, action, &instrument.code, notes.as_deref())?;
        if outcome == "fail" {
            let since = events
                .iter()
                .filter(|e| {
                    e.kind == "calibration" && e.outcome.as_deref() == Some("pass") && e.at < row.at
                })
                .map(|e| e.at)
                .max();
            assess_impact(c, &instrument, &row, since)?;
        }
        Ok(InstrumentEventView::from(&row))
    })
}

/// Takes an instrument out of service now (technician, QA).
pub fn take_out_of_service(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    input: &OutOfService,
) -> Result<InstrumentView, AppError> {
    actor.authorize(Action::MaintainInstruments)?;
    let reason = input.reason.to_string();
    in_transaction(conn, |c| {
        let (instrument, mut events) = load_for_change(c, id)?;
        let current = view(&instrument, &events, false)?;
        if matches!(
            current.status,
            Status::OutOfService | Status::FailedCalibration
        ) {
            return Err(AppError::refused(
                Code::AlreadyOutOfService,
                format!("{} is out of service already", instrument.code),
            ));
        }
        let row = service_event(c, actor, id, "out_of_service", &reason)?;
        append_event(
            c,
            actor,
            &row,
            AuditEvent::InstrumentOutOfService,
            &instrument.code,
            Some(&reason),
        )?;
        events.push(row);
        view(&instrument, &events, true)
    })
}

/// Writes a service event (`out_of_service`, `returned`) at this moment.
fn service_event(
    c: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    kind: &str,
    reason: &str,
) -> Result<InstrumentEventRow, AppError> {
    let now = Utc::now().trunc_subsecs(6);
    let row = InstrumentEventRow {
        id: Uuid::now_v7(),
        instrument_id: id,
        kind: kind.to_owned(),
        at: now,
        outcome: None,
        valid_until: None,
        certificate: None,
        notes: None,
        reason: Some(reason.to_owned()),
        recorded_by: actor.id,
        recorded_at: now,
    };
    diesel::insert_into(instrument_events::table)
        .values(&row)
        .execute(c)?;
    Ok(row)
}

/// Returns an instrument to service (QA, signed `instrument_returned`). Its
/// latest calibration must have passed.
pub fn return_to_service(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    id: Uuid,
    input: &ReturnToService,
) -> Result<InstrumentView, AppError> {
    actor.authorize(Action::Sign(Meaning::InstrumentReturned))?;
    let (reason, password) = (input.reason.to_string(), input.password.as_str());
    in_transaction(conn, |c| {
        let (instrument, mut events) = load_for_change(c, id)?;
        let current = view(&instrument, &events, false)?;
        match current.status {
            Status::OutOfService => {}
            Status::FailedCalibration => {
                return Err(AppError::refused(
                    Code::CalibrationFailed,
                    format!(
                        "{}'s latest calibration failed: record a passing calibration first",
                        instrument.code
                    ),
                ));
            }
            other => {
                return Err(AppError::refused(
                    Code::NotOutOfService,
                    format!(
                        "{} is {}, not out of service",
                        instrument.code,
                        other.as_str()
                    ),
                ));
            }
        }
        if let Err(refusal) = signatures::verify_signer(c, rules.lockout, actor, password)? {
            return Ok(Err(refusal));
        }
        let row = service_event(c, actor, id, "returned", &reason)?;
        signatures::record(
            c,
            rules,
            actor,
            &Signing {
                meaning: Meaning::InstrumentReturned,
                entity_type: "instrument",
                entity_id: id,
                batch_id: None,
                reason: Some(&reason),
                signs: row.id,
            },
        )?;
        append_event(
            c,
            actor,
            &row,
            AuditEvent::InstrumentReturned,
            &instrument.code,
            Some(&reason),
        )?;
        events.push(row);
        Ok(Ok(view(&instrument, &events, true)?))
    })?
}

#[derive(QueryableByName)]
struct Affected {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    batch_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Uuid>)]
    result_ids: Vec<Uuid>,
}

/// The impact search: every batch, not rejected or recalled, with a current
/// (not replaced) result performed on the instrument since its last passing
/// calibration. An index range on `results (instrument_id, performed_at)`.
const AFFECTED: &str = "SELECT r.batch_id, array_agg(r.id ORDER BY r.id) AS result_ids \
     FROM results r JOIN batches b ON b.id = r.batch_id \
     WHERE r.instrument_id = $1 AND r.performed_at >= $2 \
       AND NOT EXISTS (SELECT FROM results n WHERE n.replaces_result_id = r.id) \
       AND b.status NOT IN ('rejected', 'recalled') \
     GROUP BY r.batch_id ORDER BY r.batch_id";

/// A failed calibration opens an instrument deviation on every affected
/// batch (`batch_record::open_impact`).
fn assess_impact(
    c: &mut PgConnection,
    instrument: &InstrumentRow,
    failed: &InstrumentEventRow,
    since: Option<DateTime<Utc>>,
) -> Result<usize, AppError> {
    use super::batch_record::{Impact, open_impact};
    use crate::domain::deviation::DeviationKind;
    let since = since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let affected: Vec<Affected> = diesel::sql_query(AFFECTED)
        .bind::<diesel::sql_types::Uuid, _>(instrument.id)
        .bind::<diesel::sql_types::Timestamptz, _>(since)
        .load(c)?;
    let impact = Impact {
        kind: DeviationKind::Instrument,
        subject_id: instrument.id,
        title: format!("Instrument {} failed its calibration", instrument.code),
        cause: format!(
            "Instrument {} ({}) failed the calibration performed {}{}; these results were measured on it since its last passing calibration",
            instrument.code,
            instrument.name,
            failed.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            failed
                .certificate
                .as_deref()
                .map(|c| format!(" (certificate {c})"))
                .unwrap_or_default(),
        ),
    };
    for a in &affected {
        open_impact(c, &impact, a.batch_id, &a.result_ids)?;
    }
    Ok(affected.len())
}
