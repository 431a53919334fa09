//! The release gate: from a batch's facts, every reason it can't be released
//! now (EU GMP Part IV §11.3, §11.5; Annex 11 §15), and the independence and
//! signature rules of the Qualified Person's certification.

use super::StoredName;
use super::audit_review::ReviewState;
use super::batch::BatchStatus;
use super::result::{ResultFacts, ResultStatus, current_result};
use super::signature::Meaning;
use super::spec::{Outcome, TestDef};
use super::value::{Note, OptionalNote};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /batches/{id}/release` (and the release page): the Qualified
/// Person's signed certification.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBatch {
    /// The signer's password.
    pub password: String,
    /// Optional comment.
    #[serde(default)]
    pub comment: OptionalNote<2000>,
    /// A conditional release (Annex 16 §3.6), which needs a justification.
    #[serde(default)]
    pub conditional: Option<bool>,
    /// Why the batch is released before every result is in.
    #[serde(default)]
    pub justification: OptionalNote<10_000>,
}

/// `POST /batches/{id}/reject` and `/recall` (and their pages): signed,
/// with a reason.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisposeBatch {
    /// The signer's password.
    pub password: String,
    /// Why.
    pub reason: Note<10_000>,
}

/// Why a batch can't be released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockerCode {
    /// A required test has no current result.
    MissingResult,
    /// A current result failed.
    ResultFailed,
    /// A current result awaits second-person review.
    ResultNotReviewed,
    /// A deviation is open.
    OpenDeviation,
    /// An OOS was confirmed: the batch can only be rejected.
    ConfirmedOos,
    /// The batch was shipped and not yet delivered.
    InTransit,
    /// The batch is past its expiry.
    Expired,
    /// A parent batch (e.g. the working cell bank) is not released.
    ParentNotReleased,
    /// The product requires a signed audit-trail review, and there is none
    /// or exceptions were written after it.
    AuditTrailNotReviewed,
    /// A post-release correction concluded the batch does not meet its
    /// specification.
    CorrectionFailed,
}

/// One reason, in the lab's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Blocker {
    /// Machine code.
    pub code: BlockerCode,
    /// What is wrong.
    pub message: String,
    /// The test concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_code: Option<String>,
    /// What is wrong, in any language.
    #[serde(skip)]
    pub words: super::Words,
}

/// A deviation as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviationFact {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Still open.
    pub open: bool,
    /// Closed as `confirmed_oos`.
    pub confirmed_oos: bool,
    /// A post-release correction closed as `does_not_meet_specification`.
    pub correction_failed: bool,
}

/// A parent batch as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentFact {
    /// Batch number.
    pub batch_number: String,
    /// Status.
    pub status: BatchStatus,
}

/// Everything the gate looks at.
#[derive(Debug, Clone)]
pub struct BatchFacts {
    /// The specification's tests.
    pub tests: Vec<TestDef>,
    /// Every result of the batch.
    pub results: Vec<ResultFacts>,
    /// Every deviation of the batch.
    pub deviations: Vec<DeviationFact>,
    /// Shipped and not delivered.
    pub in_transit: bool,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Now.
    pub now: DateTime<Utc>,
    /// Parent batches.
    pub parents: Vec<ParentFact>,
    /// Where the audit-trail review stands; none when the product does not
    /// require one.
    pub audit_review: Option<ReviewState>,
}

fn blocker(code: BlockerCode, words: super::Words, test_code: Option<&str>) -> Blocker {
    Blocker {
        code,
        message: words.english(),
        test_code: test_code.map(str::to_owned),
        words,
    }
}

fn said(id: &'static str, args: &[(&'static str, String)]) -> super::Words {
    super::Words::with(id, args)
}

/// Every blocker, in a stable order: tests in specification order, then
/// deviations, custody, expiry, parents.
pub fn blockers(f: &BatchFacts) -> Vec<Blocker> {
    let mut out = Vec::new();
    for t in &f.tests {
        match current_result(&f.results, &t.code) {
            None if t.required => out.push(blocker(
                BlockerCode::MissingResult,
                said(
                    "blocker-missing-result",
                    &[("test", t.code.clone()), ("name", t.name.clone())],
                ),
                Some(&t.code),
            )),
            None => {}
            Some(r) => {
                if r.outcome == Outcome::Fail {
                    out.push(blocker(
                        BlockerCode::ResultFailed,
                        said("blocker-result-failed", &[("test", t.code.clone())]),
                        Some(&t.code),
                    ));
                }
                if r.status() == ResultStatus::Recorded {
                    out.push(blocker(
                        BlockerCode::ResultNotReviewed,
                        said("blocker-result-not-reviewed", &[("test", t.code.clone())]),
                        Some(&t.code),
                    ));
                }
            }
        }
    }
    for d in &f.deviations {
        if d.open {
            out.push(blocker(
                BlockerCode::OpenDeviation,
                said(
                    "blocker-open-deviation",
                    &[("title", d.title.clone()), ("id", d.id.to_string())],
                ),
                None,
            ));
        }
        if d.confirmed_oos {
            out.push(blocker(
                BlockerCode::ConfirmedOos,
                said("blocker-confirmed-oos", &[("title", d.title.clone())]),
                None,
            ));
        }
        if d.correction_failed {
            out.push(blocker(
                BlockerCode::CorrectionFailed,
                said("blocker-correction-failed", &[("title", d.title.clone())]),
                None,
            ));
        }
    }
    if f.in_transit {
        out.push(blocker(
            BlockerCode::InTransit,
            said("blocker-in-transit", &[]),
            None,
        ));
    }
    if f.expires_at <= f.now {
        out.push(blocker(
            BlockerCode::Expired,
            said(
                "blocker-expired",
                &[("at", f.expires_at.format("%Y-%m-%d %H:%M UTC").to_string())],
            ),
            None,
        ));
    }
    for p in &f.parents {
        if p.status != BatchStatus::Released {
            out.push(blocker(
                BlockerCode::ParentNotReleased,
                said(
                    "blocker-parent-not-released",
                    &[
                        ("number", p.batch_number.clone()),
                        ("status", p.status.as_str().to_owned()),
                    ],
                ),
                None,
            ));
        }
    }
    match f.audit_review {
        Some(ReviewState::NotReviewed) => out.push(blocker(
            BlockerCode::AuditTrailNotReviewed,
            said("blocker-audit-trail-not-reviewed", &[]),
            None,
        )),
        Some(ReviewState::Stale { seq }) => out.push(blocker(
            BlockerCode::AuditTrailNotReviewed,
            said("blocker-audit-trail-stale", &[("seq", seq.to_string())]),
            None,
        )),
        Some(ReviewState::Reviewed) | None => {}
    }
    out
}

/// The answer of `GET /batches/{id}/release-readiness`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// No blocker at all.
    pub releasable: bool,
    /// Every blocker is a missing result of a test allowed to be pending.
    pub conditionally_releasable: bool,
    /// Every blocker.
    pub blockers: Vec<Blocker>,
    /// What QA should look at; never blocks (out-of-trend points, filled in
    /// by the service that reads the product's series).
    pub warnings: Vec<Warning>,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// The batch's point of a test completes a run rule of its trend.
    OutOfTrend,
}

/// Something QA should look at before releasing; never a blocker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// Machine code.
    pub code: WarningCode,
    /// The test concerned.
    pub test_code: String,
    /// The rule the point completes (`nelson_1`, `nelson_2`, `nelson_3`, `nelson_5`).
    #[schema(value_type = String)]
    pub rule: crate::domain::trend::Rule,
    /// In the lab's words.
    pub message: String,
}

/// Readiness from the facts.
pub fn readiness(f: &BatchFacts) -> Readiness {
    let blockers = blockers(f);
    let pending_ok = |b: &Blocker| {
        b.code == BlockerCode::MissingResult
            && f.tests
                .iter()
                .any(|t| Some(&t.code) == b.test_code.as_ref() && t.pending_release_allowed)
    };
    Readiness {
        releasable: blockers.is_empty(),
        conditionally_releasable: !blockers.is_empty() && blockers.iter().all(pending_ok),
        blockers,
        warnings: Vec::new(),
    }
}

/// Whether `qa` took part in any current result (performed or reviewed it):
/// then they are not independent and may not certify the batch (Annex 11 §15).
pub fn took_part(f: &BatchFacts, qa: Uuid) -> bool {
    f.tests
        .iter()
        .filter_map(|t| current_result(&f.results, &t.code))
        .any(|r| r.performed_by == qa || r.reviewed_by == Some(qa))
}

/// The certification a release request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certification {
    /// Every result in, passing and reviewed.
    Full,
    /// Before pending (e.g. 14-day sterility) results are in.
    Conditional,
}

impl Certification {
    /// The meaning of its signature.
    pub fn meaning(self) -> Meaning {
        match self {
            Certification::Full => Meaning::Released,
            Certification::Conditional => Meaning::ConditionallyReleased,
        }
    }

    /// The status it leaves the batch in once enough QA users signed.
    pub fn status(self) -> BatchStatus {
        match self {
            Certification::Full => BatchStatus::Released,
            Certification::Conditional => BatchStatus::ConditionallyReleased,
        }
    }
}

/// Why a release request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseRefusal {
    /// The batch's status does not allow it (409 `invalid_transition`).
    WrongStatus(BatchStatus),
    /// Blockers stand (409 `not_releasable`).
    NotReleasable(Vec<Blocker>),
    /// Conditional release asked with nothing pending (409 `nothing_pending`).
    NothingPending,
    /// The QA user performed or reviewed a current result (403 `not_independent`).
    NotIndependent,
    /// The QA user already gave this release signature (409 `already_signed`).
    AlreadySigned,
}

/// Checks a release request against the status and the gate.
pub fn check_release(
    status: BatchStatus,
    kind: Certification,
    r: &Readiness,
) -> Result<(), ReleaseRefusal> {
    match (kind, status) {
        (Certification::Full, BatchStatus::Quarantine | BatchStatus::ConditionallyReleased)
        | (Certification::Conditional, BatchStatus::Quarantine) => {}
        (_, other) => return Err(ReleaseRefusal::WrongStatus(other)),
    }
    match kind {
        Certification::Full if r.releasable => Ok(()),
        Certification::Conditional if r.conditionally_releasable => Ok(()),
        Certification::Conditional if r.releasable => Err(ReleaseRefusal::NothingPending),
        _ => Err(ReleaseRefusal::NotReleasable(r.blockers.clone())),
    }
}

/// A signature on the batch itself (release, rejection, recall), as its
/// certification history sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSignature {
    /// What it means.
    pub meaning: Meaning,
    /// Who signed.
    pub signer: Uuid,
    /// When.
    pub signed_at: DateTime<Utc>,
}

/// What the batch's own signatures say, read oldest first: when it was
/// first released, and which release signatures still wait for a second
/// QA user. Every status change of a batch is one of these signatures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Certifications {
    /// When the batch was first released or conditionally released: the
    /// signature that completed the required number.
    pub released_at: Option<DateTime<Utc>>,
    /// Release signatures given since the batch's last status change.
    pending: Vec<(Meaning, Uuid)>,
}

impl Certifications {
    /// Reads the batch's signatures, oldest first; `required` is the
    /// product's number of release signatures (1 or 2).
    pub fn from_signatures(
        signatures: impl IntoIterator<Item = BatchSignature>,
        required: usize,
    ) -> Self {
        let mut c = Certifications::default();
        for s in signatures {
            match s.meaning {
                Meaning::Released | Meaning::ConditionallyReleased => {
                    c.pending.push((s.meaning, s.signer));
                    if c.pending_signers(s.meaning).count() >= required {
                        c.released_at.get_or_insert(s.signed_at);
                        c.pending.clear();
                    }
                }
                Meaning::Rejected | Meaning::Recalled => c.pending.clear(),
                Meaning::Reviewed
                | Meaning::ReviewRejected
                | Meaning::SpecApproved
                | Meaning::DeviationClosed
                | Meaning::QualificationGranted
                | Meaning::QualificationRevoked
                | Meaning::InstrumentReturned
                | Meaning::MaterialReleased
                | Meaning::MaterialRejected
                | Meaning::AuditTrailReviewed
                | Meaning::CorrectionOpened => {}
            }
        }
        c
    }

    /// Who signed `meaning` since the last status change.
    pub fn pending_signers(&self, meaning: Meaning) -> impl Iterator<Item = Uuid> + '_ {
        self.pending
            .iter()
            .filter(move |(m, _)| *m == meaning)
            .map(|(_, who)| *who)
    }

    /// What one more release signature of `kind` by `signer` does: certifies
    /// the batch, or waits for another QA user.
    pub fn step(
        &self,
        kind: Certification,
        signer: Uuid,
        required: usize,
    ) -> Result<ReleaseStep, ReleaseRefusal> {
        let earlier: Vec<Uuid> = self.pending_signers(kind.meaning()).collect();
        if earlier.contains(&signer) {
            return Err(ReleaseRefusal::AlreadySigned);
        }
        let signed = earlier.len() + 1;
        Ok(if signed >= required {
            ReleaseStep::Certified(kind.status())
        } else {
            ReleaseStep::Awaiting { signed, required }
        })
    }
}

/// What a release signature does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseStep {
    /// The batch moves to this status.
    Certified(BatchStatus),
    /// One more QA user must sign.
    Awaiting {
        /// Signatures so far, this one included.
        signed: usize,
        /// Signatures the product requires.
        required: usize,
    },
}

/// A status change the batch's status does not allow (409 `invalid_transition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionRefusal {
    /// Where the batch stands.
    pub from: BatchStatus,
    /// Where it was asked to go.
    pub to: BatchStatus,
}

/// Rejection is for a batch not (fully) released: from quarantine or
/// conditional release (a released batch is recalled instead).
pub fn check_reject(status: BatchStatus) -> Result<BatchStatus, TransitionRefusal> {
    match status {
        BatchStatus::Quarantine | BatchStatus::ConditionallyReleased => Ok(BatchStatus::Rejected),
        from => Err(TransitionRefusal {
            from,
            to: BatchStatus::Rejected,
        }),
    }
}

/// Recall is for a batch that was released (fully or conditionally).
pub fn check_recall(status: BatchStatus) -> Result<BatchStatus, TransitionRefusal> {
    match status {
        BatchStatus::Released | BatchStatus::ConditionallyReleased => Ok(BatchStatus::Recalled),
        from => Err(TransitionRefusal {
            from,
            to: BatchStatus::Recalled,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::result::Review;
    use crate::domain::spec::{TestDefInput, validate_tests};
    use chrono::Duration;

    fn tests() -> Vec<TestDef> {
        let mut viab = TestDefInput {
            code: "VIAB".into(),
            name: "viability".into(),
            method: "m".into(),
            kind: "numeric".into(),
            min: Some(crate::domain::decimal::DecimalText::typed("80")),
            ..Default::default()
        };
        viab.unit = Some("%".into());
        let ster = TestDefInput {
            code: "STER".into(),
            name: "sterility".into(),
            method: "m".into(),
            kind: "qualitative".into(),
            allowed: Some(vec!["no growth".into()]),
            pending_release_allowed: Some(true),
            ..Default::default()
        };
        validate_tests(&[viab, ster]).unwrap()
    }

    fn result(code: &str, outcome: Outcome, reviewed: bool) -> ResultFacts {
        ResultFacts {
            id: Uuid::now_v7(),
            test_code: code.into(),
            outcome,
            performed_by: Uuid::from_u128(1),
            review: reviewed.then_some(Review::Accepted),
            reviewed_by: reviewed.then_some(Uuid::from_u128(2)),
            superseded: false,
            invalidated: false,
        }
    }

    fn facts(results: Vec<ResultFacts>) -> BatchFacts {
        let now = Utc::now();
        BatchFacts {
            tests: tests(),
            results,
            deviations: vec![],
            in_transit: false,
            expires_at: now + Duration::days(10),
            now,
            parents: vec![],
            audit_review: None,
        }
    }

    #[test]
    fn a_required_audit_trail_review_blocks_until_signed_and_again_when_stale() {
        let mut f = facts(vec![
            result("VIAB", Outcome::Pass, true),
            result("STER", Outcome::Pass, true),
        ]);
        assert!(readiness(&f).releasable, "not required: no blocker");
        for (state, blocked) in [
            (ReviewState::NotReviewed, true),
            (ReviewState::Stale { seq: 9 }, true),
            (ReviewState::Reviewed, false),
        ] {
            f.audit_review = Some(state);
            let r = readiness(&f);
            assert_eq!(r.releasable, !blocked, "{state:?}");
            assert_eq!(
                codes(&f) == vec![BlockerCode::AuditTrailNotReviewed],
                blocked,
                "{state:?}"
            );
            assert!(!r.conditionally_releasable, "{state:?}");
        }
    }

    fn codes(f: &BatchFacts) -> Vec<BlockerCode> {
        blockers(f).into_iter().map(|b| b.code).collect()
    }

    #[test]
    fn a_complete_reviewed_passing_batch_is_releasable() {
        let f = facts(vec![
            result("VIAB", Outcome::Pass, true),
            result("STER", Outcome::Pass, true),
        ]);
        let r = readiness(&f);
        assert!(r.releasable && !r.conditionally_releasable);
        assert_eq!(
            check_release(BatchStatus::Quarantine, Certification::Full, &r),
            Ok(())
        );
        assert_eq!(
            check_release(BatchStatus::Quarantine, Certification::Conditional, &r),
            Err(ReleaseRefusal::NothingPending)
        );
    }

    #[test]
    fn every_blocker_is_reported_not_just_the_first() {
        let mut f = facts(vec![result("VIAB", Outcome::Fail, false)]);
        f.deviations = vec![
            DeviationFact {
                id: Uuid::now_v7(),
                title: "OOS".into(),
                open: true,
                confirmed_oos: false,
                correction_failed: false,
            },
            DeviationFact {
                id: Uuid::now_v7(),
                title: "old".into(),
                open: false,
                confirmed_oos: true,
                correction_failed: false,
            },
            DeviationFact {
                id: Uuid::now_v7(),
                title: "corrected".into(),
                open: false,
                confirmed_oos: false,
                correction_failed: true,
            },
        ];
        f.in_transit = true;
        f.expires_at = f.now - Duration::seconds(1);
        f.parents = vec![ParentFact {
            batch_number: "WCB-1".into(),
            status: BatchStatus::Quarantine,
        }];
        assert_eq!(
            codes(&f),
            vec![
                BlockerCode::ResultFailed,
                BlockerCode::ResultNotReviewed,
                BlockerCode::MissingResult,
                BlockerCode::OpenDeviation,
                BlockerCode::ConfirmedOos,
                BlockerCode::CorrectionFailed,
                BlockerCode::InTransit,
                BlockerCode::Expired,
                BlockerCode::ParentNotReleased,
            ]
        );
        // Each says its specifics in English as before, and in Chinese
        // without a word of the English.
        let said = blockers(&f);
        let english: Vec<&str> = said.iter().map(|b| b.message.as_str()).collect();
        assert!(
            english.iter().any(|m| m.starts_with("deviation \"OOS\" (")),
            "{english:?}"
        );
        assert!(
            english.contains(&"parent batch WCB-1 is quarantine, not released"),
            "{english:?}"
        );
        for b in &said {
            let zh = b.words.in_locale(crate::i18n::Locale::ZhCn);
            assert_ne!(zh, b.message);
            assert!(!zh.contains(" is ") && !zh.contains("the "), "{zh}");
        }
        let zh: Vec<String> = said
            .iter()
            .map(|b| b.words.in_locale(crate::i18n::Locale::ZhCn))
            .collect();
        assert!(
            zh.contains(&"亲代批次 WCB-1 处于待检（隔离）状态，未放行".to_owned()),
            "{zh:?}"
        );
        assert!(zh.iter().any(|w| w.starts_with("偏差“OOS”（")), "{zh:?}");
    }

    #[test]
    fn only_a_pending_allowed_missing_result_permits_conditional_release() {
        let f = facts(vec![result("VIAB", Outcome::Pass, true)]);
        let r = readiness(&f);
        assert!(!r.releasable && r.conditionally_releasable);
        assert_eq!(
            check_release(BatchStatus::Quarantine, Certification::Conditional, &r),
            Ok(())
        );
        assert!(matches!(
            check_release(BatchStatus::Quarantine, Certification::Full, &r),
            Err(ReleaseRefusal::NotReleasable(_))
        ));
        // The conditional batch is later fully certified, never conditionally again.
        assert!(matches!(
            check_release(
                BatchStatus::ConditionallyReleased,
                Certification::Conditional,
                &r
            ),
            Err(ReleaseRefusal::WrongStatus(_))
        ));
        let unreviewed = facts(vec![result("VIAB", Outcome::Pass, false)]);
        assert!(!readiness(&unreviewed).conditionally_releasable);
    }

    #[test]
    fn the_releaser_must_not_have_performed_or_reviewed_a_current_result() {
        let f = facts(vec![result("VIAB", Outcome::Pass, true)]);
        assert!(took_part(&f, Uuid::from_u128(1)));
        assert!(took_part(&f, Uuid::from_u128(2)));
        assert!(!took_part(&f, Uuid::from_u128(3)));
    }

    #[test]
    fn reject_and_recall_follow_the_status() {
        assert_eq!(
            check_reject(BatchStatus::Quarantine),
            Ok(BatchStatus::Rejected)
        );
        assert_eq!(
            check_reject(BatchStatus::ConditionallyReleased),
            Ok(BatchStatus::Rejected)
        );
        assert_eq!(
            check_reject(BatchStatus::Released),
            Err(TransitionRefusal {
                from: BatchStatus::Released,
                to: BatchStatus::Rejected
            })
        );
        assert_eq!(
            check_recall(BatchStatus::Released),
            Ok(BatchStatus::Recalled)
        );
        assert_eq!(
            check_recall(BatchStatus::Quarantine),
            Err(TransitionRefusal {
                from: BatchStatus::Quarantine,
                to: BatchStatus::Recalled
            })
        );
        assert!(matches!(
            check_release(
                BatchStatus::Released,
                Certification::Full,
                &readiness(&facts(vec![]))
            ),
            Err(ReleaseRefusal::WrongStatus(BatchStatus::Released))
        ));
    }

    fn sig(meaning: Meaning, signer: u128, minute: i64) -> BatchSignature {
        BatchSignature {
            meaning,
            signer: Uuid::from_u128(signer),
            signed_at: DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minute),
        }
    }

    #[test]
    fn two_signatures_certify_and_the_second_signer_must_differ() {
        let one = Certifications::from_signatures([sig(Meaning::Released, 1, 5)], 2);
        assert_eq!(one.released_at, None);
        assert_eq!(
            one.step(Certification::Full, Uuid::from_u128(1), 2),
            Err(ReleaseRefusal::AlreadySigned)
        );
        assert_eq!(
            one.step(Certification::Full, Uuid::from_u128(2), 2),
            Ok(ReleaseStep::Certified(BatchStatus::Released))
        );
        let none = Certifications::default();
        assert_eq!(
            none.step(Certification::Full, Uuid::from_u128(1), 2),
            Ok(ReleaseStep::Awaiting {
                signed: 1,
                required: 2
            })
        );
        let both = Certifications::from_signatures(
            [sig(Meaning::Released, 1, 5), sig(Meaning::Released, 2, 9)],
            2,
        );
        assert_eq!(
            both.released_at,
            Some(sig(Meaning::Released, 2, 9).signed_at)
        );
        assert_eq!(both.pending_signers(Meaning::Released).count(), 0);
    }

    #[test]
    fn the_first_release_counts_and_a_status_change_clears_pending_signatures() {
        let c = Certifications::from_signatures(
            [
                sig(Meaning::ConditionallyReleased, 1, 1),
                sig(Meaning::Released, 2, 30),
            ],
            1,
        );
        assert_eq!(c.released_at, Some(sig(Meaning::Released, 1, 1).signed_at));
        let rejected = Certifications::from_signatures(
            [sig(Meaning::Released, 1, 1), sig(Meaning::Rejected, 2, 2)],
            2,
        );
        assert_eq!(rejected.released_at, None);
        assert_eq!(rejected.pending_signers(Meaning::Released).count(), 0);
    }
}
