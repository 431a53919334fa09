//! Results: their status, which one is current, and when a new one may be
//! recorded (no testing into compliance) or a result reviewed.
//!
//! A result row is never edited. Its status follows from other facts: a
//! review signature, a newer result that replaces it, or an OOS deviation
//! closed as `invalid_test`.

use super::batch::BatchStatus;
use super::signature::Meaning;
use super::spec::Outcome;
use super::value::{Distinct, OptionalNote};
use serde::{Deserialize, Serialize};
use strum::IntoStaticStr;
use utoipa::ToSchema;
use uuid::Uuid;

/// A reviewer's decision on a result: never assumed, always chosen.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Decision {
    /// The result is correct as recorded.
    Accept,
    /// The result is not acceptable; a replacement must be recorded.
    Reject,
}

impl Decision {
    /// Both, in the order a form offers them.
    pub const ALL: [Decision; 2] = [Decision::Accept, Decision::Reject];

    /// The meaning of the review signature.
    pub fn meaning(self) -> Meaning {
        match self {
            Decision::Accept => Meaning::Reviewed,
            Decision::Reject => Meaning::ReviewRejected,
        }
    }

    /// Its code, as forms and the API send it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The most results one review signature covers (a batch's panel, with
/// room).
pub const MAX_REVIEW_AT_ONCE: usize = 200;

/// `POST /results/{id}/review`: a reviewer's signed decision on a result.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewResult {
    /// Chosen, never assumed.
    pub decision: Decision,
    /// The signer's password.
    pub password: String,
    /// Why (a rejection needs one).
    #[serde(default)]
    pub comment: OptionalNote<2000>,
}

/// The results one review signature covers, each once.
pub type ResultIds = Distinct<Uuid, MAX_REVIEW_AT_ONCE>;

/// `POST /results/review` (and a batch's review page): one signature over
/// the ticked results.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewResults {
    /// The results, each once.
    pub result_ids: ResultIds,
    /// Chosen, never assumed.
    pub decision: Decision,
    /// The signer's password.
    pub password: String,
    /// Why (a rejection needs one).
    #[serde(default)]
    pub comment: OptionalNote<2000>,
}

/// Where a result stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ResultStatus {
    /// Recorded, awaiting second-person review.
    Recorded,
    /// Accepted by a reviewer.
    Reviewed,
    /// Rejected by a reviewer: a replacement must be recorded.
    ReviewRejected,
    /// Replaced by a newer result of the same test.
    Superseded,
    /// Invalidated by an OOS investigation with an assignable cause.
    Invalidated,
}

impl ResultStatus {
    /// Whether a result in this status can be its test's current result
    /// (release and retest rules look only at current results).
    pub fn counts_as_current(self) -> bool {
        matches!(self, ResultStatus::Recorded | ResultStatus::Reviewed)
    }
}

/// The review decision on a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// `reviewed`.
    Accepted,
    /// `review_rejected`.
    Rejected,
}

/// What is known about one result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFacts {
    /// Result id (UUID v7: later results sort later).
    pub id: Uuid,
    /// Test code.
    pub test_code: String,
    /// Pass or fail.
    pub outcome: Outcome,
    /// Who performed it.
    pub performed_by: Uuid,
    /// Its review, if any.
    pub review: Option<Review>,
    /// Who reviewed it.
    pub reviewed_by: Option<Uuid>,
    /// Whether a newer result replaces it.
    pub superseded: bool,
    /// Whether its OOS investigation found the test invalid.
    pub invalidated: bool,
}

impl ResultFacts {
    /// The result's status.
    pub fn status(&self) -> ResultStatus {
        if self.invalidated {
            ResultStatus::Invalidated
        } else if self.review == Some(Review::Rejected) {
            ResultStatus::ReviewRejected
        } else if self.superseded {
            ResultStatus::Superseded
        } else if self.review == Some(Review::Accepted) {
            ResultStatus::Reviewed
        } else {
            ResultStatus::Recorded
        }
    }

    /// Whether release may look at it.
    pub fn is_current_candidate(&self) -> bool {
        matches!(
            self.status(),
            ResultStatus::Recorded | ResultStatus::Reviewed
        )
    }
}

/// The current result of `test_code`: its latest result that is not
/// superseded, invalidated or review-rejected. `results` may be in any order.
pub fn current_result<'a>(results: &'a [ResultFacts], test_code: &str) -> Option<&'a ResultFacts> {
    results
        .iter()
        .filter(|r| r.test_code == test_code && r.is_current_candidate())
        .max_by_key(|r| r.id)
}

/// Why a new result of a test can't be recorded as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRefusal {
    /// The batch's record is decided (released, rejected, recalled; on a
    /// conditionally released batch, a reviewed result): 409
    /// `record_closed`. A released batch's result is replaced only under an
    /// open post-release correction.
    RecordClosed(BatchStatus),
    /// The test has a current result the request does not name (409 `result_exists`).
    ResultExists {
        /// The test.
        test_code: String,
        /// Its current result.
        current: Uuid,
    },
    /// The current result failed and its OOS is not closed as `invalid_test` (409 `oos_unresolved`).
    OosUnresolved {
        /// The test.
        test_code: String,
        /// Its failing current result.
        current: Uuid,
    },
    /// `replaces_result_id` names a result that is not the test's current or
    /// review-rejected result (409 `not_replaceable`).
    NotReplaceable {
        /// The test.
        test_code: String,
    },
    /// A replacement needs a reason (422 on `reason`).
    ReasonRequired,
}

/// Checks that a batch in `status` may still take a result: not after
/// rejection or recall, and after release only under an open post-release
/// correction (`correcting`).
pub fn check_accepts_results(status: BatchStatus, correcting: bool) -> Result<(), RecordRefusal> {
    match status {
        BatchStatus::Rejected | BatchStatus::Recalled => Err(RecordRefusal::RecordClosed(status)),
        BatchStatus::Released if !correcting => Err(RecordRefusal::RecordClosed(status)),
        _ => Ok(()),
    }
}

/// Checks recording a new result of `test_code` on a batch in `status`,
/// optionally replacing `replaces` with `reason`. `corrected` are the
/// results under an open post-release correction: on a decided record, only
/// they may be replaced (EU GMP Ch.4; Part IV §11). A conditionally
/// released batch takes a test without a current result (a pending test, a
/// retest after an invalidated OOS) and replaces none that was reviewed.
pub fn check_new_result(
    status: BatchStatus,
    results: &[ResultFacts],
    test_code: &str,
    replaces: Option<Uuid>,
    reason: Option<&str>,
    corrected: &[Uuid],
) -> Result<(), RecordRefusal> {
    let current = current_result(results, test_code);
    let under_correction = replaces.is_some_and(|t| corrected.contains(&t))
        && current.is_some_and(|c| Some(c.id) == replaces);
    check_accepts_results(status, under_correction)?;
    if status == BatchStatus::ConditionallyReleased
        && !under_correction
        && current.is_some_and(|c| c.status() != ResultStatus::Recorded)
    {
        return Err(RecordRefusal::RecordClosed(status));
    }
    // No testing into compliance: a failing current result blocks any new
    // result of the test, whether or not the request names it.
    if let Some(c) = current.filter(|c| c.outcome == Outcome::Fail) {
        return Err(RecordRefusal::OosUnresolved {
            test_code: test_code.to_owned(),
            current: c.id,
        });
    }
    match (current, replaces) {
        (Some(c), None) => Err(RecordRefusal::ResultExists {
            test_code: test_code.to_owned(),
            current: c.id,
        }),
        (_, Some(target)) => {
            let replaceable = results.iter().any(|r| {
                r.id == target
                    && r.test_code == test_code
                    && (current.is_some_and(|c| c.id == target)
                        || r.status() == ResultStatus::ReviewRejected && !r.superseded)
            });
            if !replaceable {
                return Err(RecordRefusal::NotReplaceable {
                    test_code: test_code.to_owned(),
                });
            }
            if reason.is_none_or(|r| r.trim().is_empty()) {
                return Err(RecordRefusal::ReasonRequired);
            }
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// Why a result can't be reviewed by this user now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRefusal {
    /// The reviewer performed the result (403 `self_review`).
    SelfReview,
    /// The result is not awaiting review (409 `not_reviewable`).
    NotAwaitingReview(ResultStatus),
}

/// Checks a second-person review (EU Annex 11 §6; 21 CFR 211.194(a)(8)).
pub fn check_review(result: &ResultFacts, reviewer: Uuid) -> Result<(), ReviewRefusal> {
    if result.performed_by == reviewer {
        return Err(ReviewRefusal::SelfReview);
    }
    match result.status() {
        ResultStatus::Recorded => Ok(()),
        other => Err(ReviewRefusal::NotAwaitingReview(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: BatchStatus = BatchStatus::Quarantine;

    fn fact(code: &str, outcome: Outcome) -> ResultFacts {
        ResultFacts {
            id: Uuid::now_v7(),
            test_code: code.into(),
            outcome,
            performed_by: Uuid::from_u128(1),
            review: None,
            reviewed_by: None,
            superseded: false,
            invalidated: false,
        }
    }

    #[test]
    fn status_follows_from_the_facts() {
        let mut r = fact("VIAB", Outcome::Pass);
        assert_eq!(r.status(), ResultStatus::Recorded);
        r.review = Some(Review::Accepted);
        assert_eq!(r.status(), ResultStatus::Reviewed);
        r.superseded = true;
        assert_eq!(r.status(), ResultStatus::Superseded);
        r.review = Some(Review::Rejected);
        assert_eq!(r.status(), ResultStatus::ReviewRejected);
        r.invalidated = true;
        assert_eq!(r.status(), ResultStatus::Invalidated);
    }

    #[test]
    fn the_current_result_is_the_latest_valid_one() {
        let mut old = fact("VIAB", Outcome::Pass);
        old.superseded = true;
        let new = fact("VIAB", Outcome::Pass);
        let mut rejected = fact("VIAB", Outcome::Pass);
        rejected.review = Some(Review::Rejected);
        let other = fact("STER", Outcome::Pass);
        let all = vec![old, new.clone(), rejected, other];
        assert_eq!(current_result(&all, "VIAB").map(|r| r.id), Some(new.id));
        assert!(current_result(&all, "ENDO").is_none());
    }

    #[test]
    fn a_failing_result_blocks_every_retest_until_invalidated() {
        let failing = fact("STER", Outcome::Fail);
        let all = vec![failing.clone()];
        let unresolved = Err(RecordRefusal::OosUnresolved {
            test_code: "STER".into(),
            current: failing.id,
        });
        assert_eq!(
            check_new_result(Q, &all, "STER", None, None, &[]),
            unresolved
        );
        assert_eq!(
            check_new_result(Q, &all, "STER", Some(failing.id), Some("retest"), &[]),
            unresolved
        );
        let mut invalidated = failing;
        invalidated.invalidated = true;
        assert_eq!(
            check_new_result(Q, &[invalidated], "STER", None, None, &[]),
            Ok(())
        );
    }

    #[test]
    fn replacing_needs_the_current_result_and_a_reason() {
        let current = fact("VIAB", Outcome::Pass);
        let all = vec![current.clone()];
        assert!(matches!(
            check_new_result(Q, &all, "VIAB", None, None, &[]),
            Err(RecordRefusal::ResultExists { .. })
        ));
        assert_eq!(
            check_new_result(Q, &all, "VIAB", Some(current.id), None, &[]),
            Err(RecordRefusal::ReasonRequired)
        );
        assert_eq!(
            check_new_result(Q, &all, "VIAB", Some(Uuid::now_v7()), Some("typo"), &[]),
            Err(RecordRefusal::NotReplaceable {
                test_code: "VIAB".into()
            })
        );
        assert_eq!(
            check_new_result(Q, &all, "VIAB", Some(current.id), Some("typo"), &[]),
            Ok(())
        );
    }

    #[test]
    fn a_review_rejected_result_may_be_replaced_or_simply_followed() {
        let mut rejected = fact("VIAB", Outcome::Pass);
        rejected.review = Some(Review::Rejected);
        let all = vec![rejected.clone()];
        assert_eq!(check_new_result(Q, &all, "VIAB", None, None, &[]), Ok(()));
        assert_eq!(
            check_new_result(Q, &all, "VIAB", Some(rejected.id), Some("re-entered"), &[]),
            Ok(())
        );
    }

    #[test]
    fn a_decided_record_takes_no_result_but_a_correction() {
        for closed in [
            BatchStatus::Rejected,
            BatchStatus::Recalled,
            BatchStatus::Released,
        ] {
            assert_eq!(
                check_new_result(closed, &[], "VIAB", None, None, &[]),
                Err(RecordRefusal::RecordClosed(closed))
            );
        }
        let mut reviewed = fact("VIAB", Outcome::Pass);
        reviewed.review = Some(Review::Accepted);
        let all = vec![reviewed.clone()];
        let released = BatchStatus::Released;
        assert_eq!(
            check_new_result(released, &all, "VIAB", Some(reviewed.id), Some("typo"), &[]),
            Err(RecordRefusal::RecordClosed(released))
        );
        // Under an open correction of that result, its replacement.
        let corrected = [reviewed.id];
        assert_eq!(
            check_new_result(
                released,
                &all,
                "VIAB",
                Some(reviewed.id),
                Some("typo"),
                &corrected
            ),
            Ok(())
        );
        assert_eq!(
            check_new_result(released, &all, "VIAB", None, None, &corrected),
            Err(RecordRefusal::RecordClosed(released))
        );
        // Never on a rejected or recalled batch.
        assert_eq!(
            check_new_result(
                BatchStatus::Recalled,
                &all,
                "VIAB",
                Some(reviewed.id),
                Some("typo"),
                &corrected
            ),
            Err(RecordRefusal::RecordClosed(BatchStatus::Recalled))
        );
    }

    #[test]
    fn a_conditionally_released_batch_takes_its_pending_tests_and_keeps_what_was_reviewed() {
        let conditional = BatchStatus::ConditionallyReleased;
        let mut reviewed = fact("VIAB", Outcome::Pass);
        reviewed.review = Some(Review::Accepted);
        let pending = fact("STER", Outcome::Pass);
        let all = vec![reviewed.clone(), pending.clone()];
        assert_eq!(
            check_new_result(conditional, &all, "MYCO", None, None, &[]),
            Ok(())
        );
        assert_eq!(
            check_new_result(
                conditional,
                &all,
                "VIAB",
                Some(reviewed.id),
                Some("typo"),
                &[]
            ),
            Err(RecordRefusal::RecordClosed(conditional))
        );
        // A result recorded since, not yet reviewed, is still corrected as before.
        assert_eq!(
            check_new_result(
                conditional,
                &all,
                "STER",
                Some(pending.id),
                Some("typo"),
                &[]
            ),
            Ok(())
        );
        assert_eq!(
            check_new_result(
                conditional,
                &all,
                "VIAB",
                Some(reviewed.id),
                Some("typo"),
                &[reviewed.id]
            ),
            Ok(())
        );
    }

    #[test]
    fn nobody_reviews_their_own_result_or_one_already_reviewed() {
        let r = fact("VIAB", Outcome::Pass);
        assert_eq!(
            check_review(&r, r.performed_by),
            Err(ReviewRefusal::SelfReview)
        );
        assert_eq!(check_review(&r, Uuid::from_u128(2)), Ok(()));
        let mut done = r;
        done.review = Some(Review::Accepted);
        assert_eq!(
            check_review(&done, Uuid::from_u128(2)),
            Err(ReviewRefusal::NotAwaitingReview(ResultStatus::Reviewed))
        );
    }
}
