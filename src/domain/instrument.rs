//! Instruments fit for use (21 CFR 211.68, 211.160(b)(4)). An instrument's
//! status at a moment follows from its history: its latest calibration by
//! then (passed, and still valid), and whether it was out of service then. A
//! failed calibration takes it out of service; only QA's signed return puts
//! it back, and only a passing calibration makes it usable again.

use super::value::{Code, Line, Note, OptionalLine, OptionalNote, Word};
use chrono::{DateTime, Utc};
use serde::Serialize;
use strum::{EnumString, IntoStaticStr};

/// Whether `kind` is an instrument kind as tests and instruments name it: a
/// lower-case word of letters, digits and `_`, at most 40 long
/// (`flow_cytometer`).
pub fn is_kind(kind: &str) -> bool {
    kind.len() <= 40
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The words of a refused kind.
pub const KIND_RULE: &str = "fe-instrument-kind";

/// `POST /instruments`: an instrument registered (QA).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInstrument {
    /// Asset code; never reused.
    pub code: Code<40>,
    /// Name.
    pub name: Line<200>,
    /// What it is (`flow_cytometer`): the kind a test may require.
    pub kind: Word<40>,
    /// Where it stands.
    #[serde(default)]
    pub location: OptionalLine<200>,
}

/// A calibration's outcome.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CalibrationOutcome {
    /// Within its tolerances.
    Pass,
    /// Outside them: out of service from then on.
    Fail,
}

/// `POST /instruments/{id}/calibrations`: a calibration recorded.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCalibration {
    /// When it was performed (not in the future).
    pub performed_at: DateTime<Utc>,
    /// Passed or failed.
    pub outcome: CalibrationOutcome,
    /// Until when it is valid (after `performed_at`).
    pub valid_until: DateTime<Utc>,
    /// Certificate reference.
    #[serde(default)]
    pub certificate: OptionalLine<200>,
    /// Notes.
    #[serde(default)]
    pub notes: OptionalNote<2000>,
}

/// `POST /instruments/{id}/out-of-service`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutOfService {
    /// Why.
    pub reason: Note<2000>,
}

/// `POST /instruments/{id}/return-to-service` (QA, signed).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnToService {
    /// The signer's password.
    pub password: String,
    /// Why it may be used again.
    pub reason: Note<2000>,
}

/// What happened to an instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Calibrated: passed or failed, valid until a date.
    Calibration {
        /// Whether it passed.
        passed: bool,
        /// Until when it is valid.
        valid_until: DateTime<Utc>,
    },
    /// Taken out of service.
    OutOfService,
    /// Returned to service (QA, signed).
    Returned,
}

/// One event at its moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// When it happened (a calibration: when it was performed).
    pub at: DateTime<Utc>,
    /// What.
    pub kind: EventKind,
}

/// An instrument's status (API.md).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema, EnumString, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    /// Calibrated, valid, in service.
    InService,
    /// Never calibrated, or its calibration has expired.
    CalibrationDue,
    /// Taken out of service.
    OutOfService,
    /// Its latest calibration failed (and it is out of service).
    FailedCalibration,
}

/// The status at `t`, from `events` (any order).
pub fn status_at(events: &[Event], t: DateTime<Utc>) -> (Status, Option<DateTime<Utc>>) {
    let mut past: Vec<&Event> = events.iter().filter(|e| e.at <= t).collect();
    past.sort_by_key(|e| e.at);
    let calibration = past.iter().rev().find_map(|e| match e.kind {
        EventKind::Calibration {
            passed,
            valid_until,
        } => Some((passed, valid_until)),
        _ => None,
    });
    // Out of service since the latest of: taken out, or a failed calibration;
    // unless returned after it.
    let out = past.iter().rev().find_map(|e| match e.kind {
        EventKind::OutOfService | EventKind::Calibration { passed: false, .. } => Some(true),
        EventKind::Returned => Some(false),
        EventKind::Calibration { passed: true, .. } => None,
    });
    let valid_until = calibration.map(|(_, u)| u);
    let status = match (calibration, out) {
        (Some((false, _)), _) => Status::FailedCalibration,
        (_, Some(true)) => Status::OutOfService,
        (None, _) => Status::CalibrationDue,
        (Some((true, until)), _) if until < t => Status::CalibrationDue,
        (Some((true, _)), _) => Status::InService,
    };
    (status, valid_until)
}

/// Why a result can't name this instrument (409 `instrument_not_qualified`,
/// or 422 for the wrong kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotUsable {
    /// It measures something else.
    WrongKind {
        /// What the test needs.
        needed: String,
        /// What it is.
        is: String,
    },
    /// Not in service at `performed_at`.
    NotInService {
        /// Its code.
        code: String,
        /// Its status then.
        status: Status,
        /// Its calibration's end, if it had one.
        valid_until: Option<DateTime<Utc>>,
    },
}

/// The rule at every result that names an instrument.
pub fn check_usable(
    needed_kind: Option<&str>,
    code: &str,
    kind: &str,
    events: &[Event],
    performed_at: DateTime<Utc>,
) -> Result<(), NotUsable> {
    if let Some(needed) = needed_kind {
        if needed != kind {
            return Err(NotUsable::WrongKind {
                needed: needed.to_owned(),
                is: kind.to_owned(),
            });
        }
    }
    match status_at(events, performed_at) {
        (Status::InService, _) => Ok(()),
        (status, valid_until) => Err(NotUsable::NotInService {
            code: code.to_owned(),
            status,
            valid_until,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(d: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap() + Duration::days(d)
    }
    fn cal(at: i64, passed: bool, until: i64) -> Event {
        Event {
            at: t(at),
            kind: EventKind::Calibration {
                passed,
                valid_until: t(until),
            },
        }
    }
    fn ev(at: i64, kind: EventKind) -> Event {
        Event { at: t(at), kind }
    }

    #[test]
    fn status_follows_the_history_at_each_moment() {
        let h = [
            cal(0, true, 100),
            ev(10, EventKind::OutOfService),
            ev(12, EventKind::Returned),
            cal(50, false, 150),
            cal(60, true, 160),
            ev(61, EventKind::Returned),
        ];
        assert_eq!(
            status_at(&h, t(-1)).0,
            Status::CalibrationDue,
            "before any calibration"
        );
        assert_eq!(status_at(&h, t(5)).0, Status::InService);
        assert_eq!(status_at(&h, t(11)).0, Status::OutOfService);
        assert_eq!(status_at(&h, t(13)).0, Status::InService);
        assert_eq!(status_at(&h, t(55)).0, Status::FailedCalibration);
        assert_eq!(
            status_at(&h, t(60)).0,
            Status::OutOfService,
            "a passing calibration after a failure: still out until returned"
        );
        assert_eq!(status_at(&h, t(70)).0, Status::InService);
        assert_eq!(status_at(&h, t(170)).0, Status::CalibrationDue, "expired");
    }

    #[test]
    fn a_result_needs_the_right_kind_in_service_then() {
        let h = [cal(0, true, 30)];
        assert!(check_usable(Some("flow_cytometer"), "FC-1", "flow_cytometer", &h, t(5)).is_ok());
        assert!(matches!(
            check_usable(Some("flow_cytometer"), "CC-1", "cell_counter", &h, t(5)),
            Err(NotUsable::WrongKind { .. })
        ));
        assert!(matches!(
            check_usable(None, "FC-1", "flow_cytometer", &h, t(31)),
            Err(NotUsable::NotInService {
                status: Status::CalibrationDue,
                ..
            })
        ));
    }
}
