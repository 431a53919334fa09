//! Whether who, with what and on what were fit for a new result, read in
//! one statement: the performer's qualifications for the test, the named
//! instrument with its history, and the named material lots. The rules are
//! the domain's (`qualification`, `instrument`, `material`); this reads
//! their facts and applies them.

use super::load::{One, Rows};
use crate::db::models::{InstrumentEventRow, InstrumentRow, MaterialLotRow, QualificationRow};
use crate::db::prepared::prepared;
use crate::db::schema::{instrument_events, instruments, material_lots, qualifications};
use crate::domain::{instrument, material, qualification};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Nullable, Record, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// The statement (`$1` performer, `$2` test code, `$3` instrument or null,
/// `$4` performed at, `$5` material lot ids); each part is an indexed read.
/// Of the instrument's history it reads only the two events that decide its
/// status at `$4` (`domain::instrument::status_at`): its latest calibration
/// by then, and its latest event by then that is not a passing calibration
/// (taken out, failed, returned; index `instrument_events_service`), so a
/// long history costs nothing.
pub const FITNESS: &str = "\
SELECT
  ARRAY(SELECT q FROM qualifications q WHERE q.user_id = $1 AND q.test_code = $2 ORDER BY q.id) AS qualifications,
  (SELECT i FROM instruments i WHERE i.id = $3) AS instrument,
  ARRAY(SELECT x.e FROM (
      (SELECT e FROM instrument_events e
        WHERE e.instrument_id = $3 AND e.kind = 'calibration' AND e.at <= $4
        ORDER BY e.at DESC, e.id DESC LIMIT 1)
      UNION ALL
      (SELECT e FROM instrument_events e
        WHERE e.instrument_id = $3 AND NOT (e.kind = 'calibration' AND e.outcome = 'pass') AND e.at <= $4
        ORDER BY e.at DESC, e.id DESC LIMIT 1)
    ) x ORDER BY (x.e).at, (x.e).id) AS events,
  ARRAY(SELECT m FROM material_lots m WHERE m.id = ANY($5) ORDER BY m.id) AS lots";

#[derive(QueryableByName)]
struct Facts {
    #[diesel(sql_type = Array<Record<qualifications::SqlType>>)]
    qualifications: Rows<QualificationRow>,
    #[diesel(sql_type = Nullable<Record<instruments::SqlType>>)]
    instrument: Option<One<InstrumentRow>>,
    #[diesel(sql_type = Array<Record<instrument_events::SqlType>>)]
    events: Rows<InstrumentEventRow>,
    #[diesel(sql_type = Array<Record<material_lots::SqlType>>)]
    lots: Rows<MaterialLotRow>,
}

/// What a new result names, to be judged at `performed_at`.
pub struct Claim<'a> {
    pub performer: Uuid,
    pub test_code: &'a str,
    /// The test requires a qualification.
    pub qualification_required: bool,
    /// The instrument kind the test names, if any.
    pub instrument_kind: Option<&'a str>,
    pub instrument_id: Option<Uuid>,
    /// The lots, each once; reported under `lots_field`.
    pub material_ids: &'a [Uuid],
    pub lots_field: &'a str,
    pub performed_at: DateTime<Utc>,
}

/// Checks a claim: `403 analyst_not_qualified`, `422` for an instrument
/// missing or unknown (field named), `409 instrument_not_qualified`, `422`
/// for an unknown lot, `409 material_not_usable`. Returns the lots used.
/// Sends no statement when the claim names nothing to check.
pub fn check(conn: &mut PgConnection, claim: &Claim<'_>) -> Result<Vec<MaterialLotRow>, AppError> {
    if let (Some(kind), None) = (claim.instrument_kind, claim.instrument_id) {
        return Err(AppError::validation(vec![crate::error::FieldError::said(
            "instrument_id",
            "field-instrument-needed",
            &[("kind", kind.to_string())],
        )]));
    }
    if !claim.qualification_required
        && claim.instrument_id.is_none()
        && claim.material_ids.is_empty()
    {
        return Ok(Vec::new());
    }
    let facts: Facts = prepared(FITNESS)
        .bind::<SqlUuid, _>(claim.performer)
        .bind::<Text, _>(claim.test_code)
        .bind::<Nullable<SqlUuid>, _>(claim.instrument_id)
        .bind::<Timestamptz, _>(claim.performed_at)
        .bind::<Array<SqlUuid>, _>(claim.material_ids)
        .get_result(conn)?;
    if claim.qualification_required {
        let held: Vec<_> = facts
            .qualifications
            .0
            .iter()
            .map(QualificationRow::to_domain)
            .collect();
        qualification::check_qualified(true, &held, claim.test_code, claim.performed_at)?;
    }
    if let Some(id) = claim.instrument_id {
        let Some(One(i)) = facts.instrument else {
            return Err(AppError::invalid_field_with(
                "instrument_id",
                "fe-no-instrument",
                &[("id", id.to_string())],
            ));
        };
        let events = facts
            .events
            .0
            .iter()
            .map(InstrumentEventRow::to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        instrument::check_usable(
            claim.instrument_kind,
            &i.code,
            &i.kind,
            &events,
            claim.performed_at,
        )?;
    }
    let mut lots = Vec::with_capacity(claim.material_ids.len());
    for id in claim.material_ids {
        if lots.iter().any(|l: &MaterialLotRow| l.id == *id) {
            continue;
        }
        let lot = facts
            .lots
            .0
            .iter()
            .find(|l| l.id == *id)
            .ok_or_else(|| no_lot(claim.lots_field, *id))?;
        material::check_usable(&lot.to_domain(), claim.performed_at)?;
        lots.push(lot.clone());
    }
    Ok(lots)
}

/// A material lot usable at `used_at` (what went into manufacture): `422`
/// under `field` when unknown, `409 material_not_usable` when not.
pub fn usable_lot(
    conn: &mut PgConnection,
    id: Uuid,
    used_at: DateTime<Utc>,
    field: &str,
) -> Result<MaterialLotRow, AppError> {
    let claim = Claim {
        performer: Uuid::nil(),
        test_code: "",
        qualification_required: false,
        instrument_kind: None,
        instrument_id: None,
        material_ids: &[id],
        lots_field: field,
        performed_at: used_at,
    };
    check(conn, &claim)?
        .into_iter()
        .next()
        .ok_or_else(|| no_lot(field, id))
}

/// 422: `field` names no material lot.
fn no_lot(field: &str, id: Uuid) -> AppError {
    AppError::invalid_field_with(field, "fe-no-material-lot", &[("id", id.to_string())])
}
