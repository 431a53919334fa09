//! Audit-trail review by exception (PIC/S PI 041 §9.8, FDA data-integrity
//! Q&A 2018 Q7): which entries of a batch's chain QA must read before
//! release. Routine: the batch's creation, a first result recorded within
//! 72 h of `performed_at`, an accepted review, a custody event without
//! excursion, a material use. Everything else is an exception, including
//! an action this rule does not know (shown, never hidden).

use crate::domain::audit_event::{AuditEvent, CustodyRecorded, Recorded, ResultRecorded, payload};
use crate::domain::value::{Between, OptionalNote};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::IntoStaticStr;
use utoipa::ToSchema;

/// `POST /batches/{id}/audit-review` (and the review page): QA signs that
/// the batch's trail was read up to its last entry.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignAuditReview {
    /// The signer's password.
    pub password: String,
    /// The chain's last position as the review page showed it.
    pub up_to_seq: Between<1, { i64::MAX }>,
    /// Optional comment.
    #[serde(default)]
    pub comment: OptionalNote<2000>,
}

/// How long after `performed_at` a first result is still a routine entry.
pub const LATE_AFTER_HOURS: i64 = 72;

/// Why an entry is an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ExceptionKind {
    /// A result that replaces another, or the replaced result's entry.
    Replacement,
    /// A first result recorded more than 72 h after it was performed.
    LateEntry,
    /// A result rejected in review.
    ReviewRejected,
    /// A result invalidated by its investigation.
    Invalidation,
    /// A deviation opened.
    DeviationOpened,
    /// A deviation closed.
    DeviationClosed,
    /// A custody event outside the storage range.
    Excursion,
    /// A release signature.
    ReleaseSignature,
    /// A release, conditional release, rejection or recall.
    Disposition,
    /// An earlier signed review of this audit trail.
    AuditReview,
    /// An action this rule does not classify.
    Other,
}

impl ExceptionKind {
    /// Whether an exception written after a signed review makes it stale.
    /// Release signatures and dispositions are the decision the review
    /// prepares; custody events are not critical data of the release.
    pub fn makes_review_stale(self) -> bool {
        !matches!(
            self,
            ExceptionKind::ReleaseSignature
                | ExceptionKind::Disposition
                | ExceptionKind::Excursion
                | ExceptionKind::AuditReview
        )
    }
}

/// What the rule reads of an entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The entry's action (`result.recorded`, ...).
    pub action: &'a str,
    /// Its `after` content.
    pub after: Option<&'a Value>,
}

/// The entry's exception, or none when it is routine. An action this build
/// does not know, or a payload it can't read, is shown, never assumed
/// routine.
pub fn exception(e: &Entry<'_>) -> Option<ExceptionKind> {
    use AuditEvent as A;
    let Recorded::Known(action) = AuditEvent::read(e.action) else {
        return Some(ExceptionKind::Other);
    };
    match action {
        A::BatchCreated | A::ResultReviewed | A::MaterialUsed => None,
        A::ResultRecorded => match payload::<ResultRecorded>(e.after) {
            Some(r) if r.replaces_result_id.is_some() => Some(ExceptionKind::Replacement),
            Some(r) => (r.recorded_at - r.performed_at > Duration::hours(LATE_AFTER_HOURS))
                .then_some(ExceptionKind::LateEntry),
            // A result it cannot read: shown, not assumed routine.
            None => Some(ExceptionKind::LateEntry),
        },
        A::ResultSuperseded => Some(ExceptionKind::Replacement),
        A::ResultReviewRejected => Some(ExceptionKind::ReviewRejected),
        A::ResultInvalidated => Some(ExceptionKind::Invalidation),
        A::DeviationOpened => Some(ExceptionKind::DeviationOpened),
        A::DeviationClosed => Some(ExceptionKind::DeviationClosed),
        A::CustodyRecorded => match payload::<CustodyRecorded>(e.after) {
            Some(c) if c.excursion => Some(ExceptionKind::Excursion),
            Some(_) => None,
            None => Some(ExceptionKind::Other),
        },
        A::BatchReleaseSigned => Some(ExceptionKind::ReleaseSignature),
        a if a.is_disposition() => Some(ExceptionKind::Disposition),
        A::BatchAuditReviewed => Some(ExceptionKind::AuditReview),
        _ => Some(ExceptionKind::Other),
    }
}

/// Why a signed audit-trail review is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditReviewRefusal {
    /// The chain has grown past the position the reviewer read
    /// (`409 stale_review`).
    Stale {
        /// The position the reviewer named.
        named: i64,
        /// The chain's last position now.
        last: i64,
    },
    /// The signer performed or reviewed a current result of the batch
    /// (`403 not_independent`, as for release).
    NotIndependent,
}

/// Checks a review of the chain up to `named` when the chain ends at
/// `last`, by a signer who `took_part` in the batch's current results or not.
pub fn check_review(named: i64, last: i64, took_part: bool) -> Result<(), AuditReviewRefusal> {
    if named != last {
        return Err(AuditReviewRefusal::Stale { named, last });
    }
    if took_part {
        return Err(AuditReviewRefusal::NotIndependent);
    }
    Ok(())
}

/// The action of a signed review's own entry in the batch's chain.
pub const REVIEWED_ACTION: AuditEvent = AuditEvent::BatchAuditReviewed;

/// Where a batch's audit-trail review stands, for the release gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    /// Nobody signed a review.
    NotReviewed,
    /// Entry `seq`, written after the last review, is an exception that
    /// review did not read.
    Stale {
        /// The first such entry.
        seq: i64,
    },
    /// The last review covers every exception that counts.
    Reviewed,
}

/// The state from the last reviewed position (none: never reviewed) and
/// the entries written after it, as `(seq, entry)` in chain order.
pub fn state<'a>(
    reviewed_up_to: Option<i64>,
    since: impl IntoIterator<Item = (i64, Entry<'a>)>,
) -> ReviewState {
    if reviewed_up_to.is_none() {
        return ReviewState::NotReviewed;
    }
    since
        .into_iter()
        .find(|(_, e)| exception(e).is_some_and(ExceptionKind::makes_review_stale))
        .map_or(ReviewState::Reviewed, |(seq, _)| ReviewState::Stale { seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A result as the writers record it, performed and recorded at these
    /// times.
    fn result(performed: &str, recorded: &str, replaces: Option<&str>) -> Value {
        let at = |s: &str| s.parse().unwrap();
        serde_json::to_value(ResultRecorded {
            id: uuid::Uuid::nil(),
            batch_id: uuid::Uuid::nil(),
            test_code: "VIAB".into(),
            value: "91.0".into(),
            unit: Some("%".into()),
            outcome: crate::domain::spec::Outcome::Pass,
            performed_by: uuid::Uuid::nil(),
            performed_at: at(performed),
            recorded_at: at(recorded),
            instrument: None,
            comment: None,
            replaces_result_id: replaces.map(|r| r.parse().unwrap()),
            reason: None,
            instrument_id: None,
            material_ids: Vec::new(),
            source_file_id: None,
        })
        .unwrap()
    }

    /// A custody event as the writers record it.
    fn custody(excursion: bool) -> Value {
        let at = "2026-11-01T08:00:00Z".parse().unwrap();
        serde_json::to_value(CustodyRecorded {
            id: uuid::Uuid::nil(),
            batch_id: uuid::Uuid::nil(),
            event: crate::domain::custody::CustodyEvent::Received,
            occurred_at: at,
            location: "QC store".into(),
            party: "QC".into(),
            temperature_c: Some("4".into()),
            excursion,
            deviation_id: None,
            container_id: None,
            recipient_id: None,
            internal: false,
            notes: None,
            recorded_by: uuid::Uuid::nil(),
            recorded_at: at,
        })
        .unwrap()
    }

    fn kind(action: &str, after: Value) -> Option<ExceptionKind> {
        exception(&Entry {
            action,
            after: Some(&after),
        })
    }

    #[test]
    fn routine_entries_are_not_exceptions() {
        assert_eq!(kind("batch.created", json!({})), None);
        assert_eq!(
            kind("result.reviewed", json!({"meaning": "reviewed"})),
            None
        );
        assert_eq!(kind("material.used", json!({})), None);
        assert_eq!(kind("custody.recorded", custody(false)), None);
        assert_eq!(
            kind(
                "result.recorded",
                result("2026-11-01T08:00:00Z", "2026-11-04T08:00:00Z", None)
            ),
            None,
            "exactly 72 h after: still within"
        );
    }

    #[test]
    fn a_first_result_recorded_more_than_72_hours_late_is_a_late_entry() {
        assert_eq!(
            kind(
                "result.recorded",
                result("2026-11-01T08:00:00Z", "2026-11-04T08:00:01Z", None)
            ),
            Some(ExceptionKind::LateEntry)
        );
        assert_eq!(
            kind("result.recorded", json!({"performed_at": "not a time"})),
            Some(ExceptionKind::LateEntry),
            "unreadable times are shown"
        );
    }

    #[test]
    fn corrections_investigations_deviations_excursions_and_decisions_are_exceptions() {
        let replacement = result(
            "2026-11-01T08:00:00Z",
            "2026-11-01T09:00:00Z",
            Some("01a23448-ff03-7647-971e-383712ce529f"),
        );
        for (action, after, expected) in [
            ("result.recorded", replacement, ExceptionKind::Replacement),
            ("result.superseded", json!({}), ExceptionKind::Replacement),
            (
                "result.review_rejected",
                json!({}),
                ExceptionKind::ReviewRejected,
            ),
            ("result.invalidated", json!({}), ExceptionKind::Invalidation),
            (
                "deviation.opened",
                json!({}),
                ExceptionKind::DeviationOpened,
            ),
            (
                "deviation.closed",
                json!({}),
                ExceptionKind::DeviationClosed,
            ),
            ("custody.recorded", custody(true), ExceptionKind::Excursion),
            (
                "custody.recorded",
                json!({"excursion": "unreadable"}),
                ExceptionKind::Other,
            ),
            (
                "batch.release_signed",
                json!({}),
                ExceptionKind::ReleaseSignature,
            ),
            ("batch.released", json!({}), ExceptionKind::Disposition),
            ("batch.recalled", json!({}), ExceptionKind::Disposition),
            (
                "batch.audit_reviewed",
                json!({}),
                ExceptionKind::AuditReview,
            ),
            ("something.new", json!({}), ExceptionKind::Other),
        ] {
            assert_eq!(kind(action, after), Some(expected), "{action}");
        }
    }

    #[test]
    fn a_review_names_the_last_position_and_its_signer_took_no_part() {
        assert_eq!(check_review(12, 12, false), Ok(()));
        assert_eq!(
            check_review(11, 12, false),
            Err(AuditReviewRefusal::Stale {
                named: 11,
                last: 12
            })
        );
        assert_eq!(
            check_review(13, 12, false),
            Err(AuditReviewRefusal::Stale {
                named: 13,
                last: 12
            })
        );
        assert_eq!(
            check_review(12, 12, true),
            Err(AuditReviewRefusal::NotIndependent)
        );
    }

    #[test]
    fn the_state_is_stale_only_from_an_exception_that_counts() {
        let signed = json!({});
        let excursion = custody(true);
        let late = result("2026-11-01T08:00:00Z", "2026-11-09T08:00:00Z", None);
        let e = |action, after| Entry {
            action,
            after: Some(after),
        };
        assert_eq!(state(None, []), ReviewState::NotReviewed);
        assert_eq!(state(Some(12), []), ReviewState::Reviewed);
        assert_eq!(
            state(
                Some(12),
                [
                    (13, e(REVIEWED_ACTION.as_str(), &signed)),
                    (14, e("batch.release_signed", &signed)),
                    (15, e("custody.recorded", &excursion)),
                    (16, e("result.reviewed", &signed)),
                ]
            ),
            ReviewState::Reviewed
        );
        assert_eq!(
            state(
                Some(12),
                [
                    (13, e(REVIEWED_ACTION.as_str(), &signed)),
                    (14, e("result.recorded", &late)),
                    (15, e("deviation.opened", &signed)),
                ]
            ),
            ReviewState::Stale { seq: 14 }
        );
    }

    #[test]
    fn release_decisions_and_custody_do_not_make_a_review_stale() {
        assert!(!ExceptionKind::AuditReview.makes_review_stale());
        assert!(!ExceptionKind::ReleaseSignature.makes_review_stale());
        assert!(!ExceptionKind::Disposition.makes_review_stale());
        assert!(!ExceptionKind::Excursion.makes_review_stale());
        for k in [
            ExceptionKind::Replacement,
            ExceptionKind::LateEntry,
            ExceptionKind::ReviewRejected,
            ExceptionKind::Invalidation,
            ExceptionKind::DeviationOpened,
            ExceptionKind::DeviationClosed,
            ExceptionKind::Other,
        ] {
            assert!(k.makes_review_stale(), "{k:?}");
        }
    }
}
