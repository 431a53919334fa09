//! Deviations, including OOS investigations: kinds, severities, conclusions,
//! when a fact opens one, and the rule for closing one.

use super::batch::BatchStatus;
use super::spec::Outcome;
use super::value::{Line, Note, OptionalNote};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr};
use utoipa::ToSchema;
use uuid::Uuid;

/// What opened the deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, EnumString, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DeviationKind {
    /// A failing result (opened automatically).
    Oos,
    /// A temperature outside the product's storage range.
    Excursion,
    /// Opened by a person.
    Manual,
    /// An instrument failed its calibration after measuring the batch.
    Instrument,
    /// A material lot the batch used was rejected.
    Material,
    /// QA corrects a result of a decided batch under control (signed
    /// `correction_opened`; EU GMP Ch.4, Part IV §11).
    PostReleaseCorrection,
}

/// What a person opens: a deviation by hand, or QA's post-release
/// correction of a decided batch's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpenKind {
    /// A deviation opened by hand.
    #[default]
    Manual,
    /// A post-release correction (signed `correction_opened`).
    PostReleaseCorrection,
}

/// `POST /batches/{id}/deviations` (and the correction form): a deviation
/// opened by hand, or a post-release correction, which names its result,
/// its reason and the signer's password.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDeviation {
    /// `manual` when left out.
    #[serde(default)]
    pub kind: Option<OpenKind>,
    /// Title.
    pub title: Line<200>,
    /// What happened (a manual deviation).
    #[serde(default)]
    pub description: OptionalNote<10_000>,
    /// `minor` when left out.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// The result to correct (a correction).
    #[serde(default)]
    pub result_id: Option<Uuid>,
    /// Why the decided record must change (a correction).
    #[serde(default)]
    pub reason: OptionalNote<10_000>,
    /// The signer's password (a correction).
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /deviations/{id}/close`: QA's signed conclusion.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseDeviation {
    /// How the investigation ended.
    pub conclusion: Conclusion,
    /// The root cause found.
    pub root_cause: Note<10_000>,
    /// The signer's password.
    pub password: String,
}

/// How serious.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, EnumString, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Severity {
    /// Minor (the default of a deviation opened by hand).
    Minor,
    /// Major (an OOS before release; an excursion).
    Major,
    /// Critical (a failure after release).
    Critical,
}

/// Open until QA closes it with a signed conclusion; closed exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, EnumString, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DeviationStatus {
    /// Under investigation: blocks release.
    Open,
    /// Concluded.
    Closed,
}

/// How an investigation ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, EnumString, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Conclusion {
    /// An assignable cause invalidates the test: the result is invalidated.
    InvalidTest,
    /// The failure is real: the batch can only be rejected.
    ConfirmedOos,
    /// The deviation does not affect the batch.
    NoImpact,
    /// A post-release correction found the batch still meets its
    /// specification.
    MeetsSpecification,
    /// A post-release correction found it does not: the batch can't be
    /// released (again), and QA is told at once.
    DoesNotMeetSpecification,
}

impl Conclusion {
    /// Whether this concludes a post-release correction (and only that).
    pub fn concludes_a_correction(self) -> bool {
        matches!(
            self,
            Conclusion::MeetsSpecification | Conclusion::DoesNotMeetSpecification
        )
    }
}

/// Whether a result opens an OOS investigation, and how serious it is: every
/// failing result does (FDA OOS guidance; 21 CFR 211.192), and one found
/// after the batch was (conditionally) released is critical (EU GMP Part IV
/// §11.3), which also makes its notice urgent.
pub fn opens_oos(outcome: Outcome, batch: BatchStatus) -> Option<Severity> {
    match outcome {
        Outcome::Pass => None,
        Outcome::Fail if batch.is_released() => Some(Severity::Critical),
        Outcome::Fail => Some(Severity::Major),
    }
}

/// The severity of the deviation a temperature excursion opens.
pub const EXCURSION_SEVERITY: Severity = Severity::Major;

/// Why a deviation can't be closed as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseRefusal {
    /// Already closed (409 `deviation_closed`).
    AlreadyClosed,
    /// `invalid_test` and `confirmed_oos` conclude an OOS investigation of a
    /// result; this deviation has none (422 on `conclusion`).
    NotAnOos,
    /// A post-release correction is concluded `meets_specification` or
    /// `does_not_meet_specification`, and nothing else is (422 on
    /// `conclusion`).
    CorrectionConclusion,
    /// `meets_specification` while the corrected test's current result is
    /// not reviewed and passing (409 `correction_unresolved`).
    CorrectionUnresolved {
        /// The test corrected.
        test_code: String,
    },
}

/// Why a post-release correction can't be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrectionRefusal {
    /// The batch is not (conditionally) released: before release a result is
    /// replaced directly; after rejection or recall nothing is (409
    /// `not_released`).
    NotReleased(BatchStatus),
    /// The result is not the batch's (404 `result_not_found`).
    NoSuchResult,
    /// The result is not the current result of its test (409 `not_current`).
    NotCurrent,
    /// A correction of the result is open already (409 `correction_open`).
    AlreadyOpen,
}

/// Checks closing a deviation of `kind` in `status`, about a result or not,
/// with `conclusion`.
pub fn check_close(
    status: DeviationStatus,
    kind: DeviationKind,
    has_result: bool,
    conclusion: Conclusion,
) -> Result<(), CloseRefusal> {
    if status == DeviationStatus::Closed {
        return Err(CloseRefusal::AlreadyClosed);
    }
    if (kind == DeviationKind::PostReleaseCorrection) != conclusion.concludes_a_correction() {
        return Err(CloseRefusal::CorrectionConclusion);
    }
    if matches!(
        conclusion,
        Conclusion::InvalidTest | Conclusion::ConfirmedOos
    ) && !has_result
    {
        return Err(CloseRefusal::NotAnOos);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_rules() {
        let open = DeviationStatus::Open;
        let oos = DeviationKind::Oos;
        assert_eq!(
            check_close(open, oos, true, Conclusion::InvalidTest),
            Ok(())
        );
        assert_eq!(
            check_close(DeviationStatus::Closed, oos, true, Conclusion::NoImpact),
            Err(CloseRefusal::AlreadyClosed)
        );
        let manual = DeviationKind::Manual;
        assert_eq!(
            check_close(open, manual, false, Conclusion::InvalidTest),
            Err(CloseRefusal::NotAnOos)
        );
        assert_eq!(
            check_close(open, manual, false, Conclusion::NoImpact),
            Ok(())
        );
        // A correction is concluded as one, and only a correction is.
        let correction = DeviationKind::PostReleaseCorrection;
        for c in [
            Conclusion::MeetsSpecification,
            Conclusion::DoesNotMeetSpecification,
        ] {
            assert_eq!(check_close(open, correction, false, c), Ok(()));
            assert_eq!(
                check_close(open, manual, false, c),
                Err(CloseRefusal::CorrectionConclusion)
            );
        }
        assert_eq!(
            check_close(open, correction, false, Conclusion::NoImpact),
            Err(CloseRefusal::CorrectionConclusion)
        );
    }

    #[test]
    fn every_failure_opens_an_oos_and_a_late_one_is_critical() {
        assert_eq!(opens_oos(Outcome::Pass, BatchStatus::Quarantine), None);
        assert_eq!(
            opens_oos(Outcome::Fail, BatchStatus::Quarantine),
            Some(Severity::Major)
        );
        for released in [BatchStatus::Released, BatchStatus::ConditionallyReleased] {
            assert_eq!(opens_oos(Outcome::Fail, released), Some(Severity::Critical));
        }
        assert_eq!(
            Conclusion::try_from("invalid_test"),
            Ok(Conclusion::InvalidTest)
        );
        assert!(Severity::try_from("urgent").is_err());
    }
}
