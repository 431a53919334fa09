//! The batch record: everything recorded about one batch (its product and
//! specification, results, signatures, deviations, custody and parents),
//! loaded once per transaction, and the questions the rules ask of it.
//!
//! Stored names arrive here already parsed (statuses, outcomes, meanings,
//! events). A use case asks the record (`readiness`, `check_new_result`,
//! `check_release`, `check_custody`, ...), writes its rows, and pushes what it
//! wrote into the same value, so a later question in the same transaction
//! sees it without reading the database again.

use super::audit::ActorRef;
use super::audit_review::{self, ReviewState};
use super::batch::BatchStatus;
use super::custody::{
    CustodyEvent, CustodyRefusal, CustodyState, PastEvent, Proposed, StorageRange, check_event,
};
use super::deviation::{
    CloseRefusal, Conclusion, CorrectionRefusal, DeviationKind, DeviationStatus, Severity,
    check_close,
};
use super::din::Din;
use super::release::{
    BatchFacts, BatchSignature, Certification, Certifications, DeviationFact, ParentFact,
    Readiness, ReleaseRefusal, ReleaseStep, check_release, readiness, took_part,
};
use super::result::{
    RecordRefusal, ResultFacts, ResultStatus, Review, ReviewRefusal, check_new_result, check_review,
};
use super::signature::Meaning;
use super::spec::{Outcome, TestDef};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The batch itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Id.
    pub id: Uuid,
    /// The batch number on its label.
    pub batch_number: String,
    /// Its product.
    pub product_id: Uuid,
    /// The specification bound at creation.
    pub spec_id: Uuid,
    /// Where it stands.
    pub status: BatchStatus,
    /// Manufacture time.
    pub manufactured_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// ISBT 128 donation identification number.
    pub donor_din: Option<String>,
    /// The patient it is made for, when autologous or directed.
    pub intended_recipient: Option<String>,
    /// Parent batches (e.g. the working cell bank), by id.
    pub parent_ids: Vec<Uuid>,
    /// Quantity, as entered.
    pub quantity: Option<String>,
    /// Unit of the quantity.
    pub unit: Option<String>,
    /// Who started it.
    pub created_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last status change.
    pub updated_at: DateTime<Utc>,
}

/// What the rules need of the batch's product.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Id.
    pub id: Uuid,
    /// Product code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind of product.
    pub product_type: String,
    /// Storage range: a custody temperature outside it is an excursion.
    pub storage: StorageRange,
    /// Release signatures required (1 or 2).
    pub release_signatures_required: usize,
    /// QA must sign a review of the batch's audit trail before release.
    pub audit_review_required: bool,
}

/// The specification the batch is bound to.
#[derive(Debug, Clone, PartialEq)]
pub struct Specification {
    /// Id.
    pub id: Uuid,
    /// Version.
    pub version: String,
    /// Its tests, in order.
    pub tests: Vec<TestDef>,
}

/// A result as recorded (never changed afterwards).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RecordedResult {
    /// Id (UUID v7: later results sort later).
    pub id: Uuid,
    /// Test code.
    pub test_code: String,
    /// The value as entered (numbers too: `"95.0"` stays `"95.0"`).
    pub value: String,
    /// Unit.
    pub unit: Option<String>,
    /// Pass or fail against the limit.
    pub outcome: Outcome,
    /// Who performed it.
    pub performed_by: ActorRef,
    /// When it was performed.
    pub performed_at: DateTime<Utc>,
    /// When it was recorded (server time).
    pub recorded_at: DateTime<Utc>,
    /// Instrument, as named.
    pub instrument: Option<String>,
    /// The registered instrument it was measured on.
    pub instrument_id: Option<Uuid>,
    /// The material lots it used.
    pub material_ids: Vec<Uuid>,
    /// The instrument export it was imported from (a true copy kept as
    /// uploaded); none when typed.
    pub source_file_id: Option<Uuid>,
    /// Comment.
    pub comment: Option<String>,
    /// The result it replaces.
    pub replaces_result_id: Option<Uuid>,
    /// Why it replaces it.
    pub reason: Option<String>,
}

/// A signature on the batch, one of its results or one of its deviations.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// Id.
    pub id: Uuid,
    /// Who signed (printed name as at signing).
    pub signer: ActorRef,
    /// What it means.
    pub meaning: Meaning,
    /// Server time of signing.
    pub signed_at: DateTime<Utc>,
    /// Reason or comment given.
    pub reason: Option<String>,
    /// Hash of what was signed.
    pub record_hash: String,
    /// The record signed: the batch, a result or a deviation.
    pub entity_id: Uuid,
    /// The statement the signer read, and its language.
    pub statement: Statement,
}

/// The words a signer agreed to, as shown to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The sentence.
    pub text: String,
    /// Its language (`en`, `zh-CN`).
    pub locale: crate::i18n::Locale,
}

/// A deviation of the batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Deviation {
    /// Id.
    pub id: Uuid,
    /// The result an OOS investigates.
    pub result_id: Option<Uuid>,
    /// What opened it.
    pub kind: DeviationKind,
    /// How serious.
    pub severity: Severity,
    /// Open or closed.
    pub status: DeviationStatus,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// How it ended.
    pub conclusion: Option<Conclusion>,
    /// Root cause.
    pub root_cause: Option<String>,
    /// Who opened it (none: the system, for an OOS).
    pub opened_by: Option<Uuid>,
    /// When.
    pub opened_at: DateTime<Utc>,
    /// Who closed it.
    pub closed_by: Option<Uuid>,
    /// When.
    pub closed_at: Option<DateTime<Utc>>,
    /// What an impact deviation investigates (an instrument, a material lot).
    pub subject_id: Option<Uuid>,
    /// The results an impact deviation lists.
    pub result_ids: Vec<Uuid>,
}

/// A custody event of the batch, with its place in the batch's hash chain
/// (as the API shows it, too).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CustodyRecord {
    /// Id.
    pub id: Uuid,
    /// The batch.
    pub batch_id: Uuid,
    /// Position in the batch's hash chain.
    pub seq: i64,
    /// What happened.
    pub event: CustodyEvent,
    /// When, as reported.
    pub occurred_at: DateTime<Utc>,
    /// Where.
    pub location: String,
    /// Who had it.
    pub party: String,
    /// Temperature, as entered.
    pub temperature_c: Option<String>,
    /// Outside the product's storage range.
    pub excursion: bool,
    /// The excursion's deviation.
    pub deviation_id: Option<Uuid>,
    /// Shipper or bag.
    pub container_id: Option<String>,
    /// The patient, for an administration.
    pub recipient_id: Option<String>,
    /// A move inside the facility.
    pub internal: bool,
    /// Notes.
    pub notes: Option<String>,
    /// Who recorded it.
    pub recorded_by: Uuid,
    /// When (server time).
    pub recorded_at: DateTime<Utc>,
    /// The chain's previous hash.
    pub prev_hash: String,
    /// Its entry's hash.
    pub hash: String,
}

/// Everything recorded about one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    /// The batch.
    pub batch: Batch,
    /// Its product.
    pub product: Product,
    /// Its specification.
    pub spec: Specification,
    /// Every result, oldest first.
    pub results: Vec<RecordedResult>,
    /// Every signature on the batch, its results and its deviations, oldest first.
    pub signatures: Vec<Signature>,
    /// Every deviation, oldest first.
    pub deviations: Vec<Deviation>,
    /// The chain of custody, in order.
    pub custody: Vec<CustodyRecord>,
    /// Parent batches, by batch number.
    pub parents: Vec<ParentFact>,
    /// The batch's audit-trail review as the gate needs it.
    pub audit_review: ReviewedTrail,
    /// Server time when the record was read.
    pub now: DateTime<Utc>,
}

/// An entry of the batch's chain as the audit-trail review rule reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrailEntry {
    /// Position in the chain.
    pub seq: i64,
    /// Action.
    pub action: String,
    /// Its `after` content.
    pub after: Option<serde_json::Value>,
}

/// How far the batch's audit trail was reviewed, and what was written since.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewedTrail {
    /// The last signed review's chain position (none: never reviewed).
    pub up_to_seq: Option<i64>,
    /// The entries after it, in chain order (none when never reviewed).
    pub since: Vec<TrailEntry>,
}

impl ReviewedTrail {
    /// Where the review stands.
    pub fn state(&self) -> ReviewState {
        audit_review::state(
            self.up_to_seq,
            self.since.iter().map(|e| {
                (
                    e.seq,
                    audit_review::Entry {
                        action: &e.action,
                        after: e.after.as_ref(),
                    },
                )
            }),
        )
    }
}

impl BatchRecord {
    /// The test of the batch's specification with `code`.
    pub fn test(&self, code: &str) -> Option<&TestDef> {
        self.spec.tests.iter().find(|t| t.code == code)
    }

    /// A result of the batch.
    pub fn result(&self, id: Uuid) -> Option<&RecordedResult> {
        self.results.iter().find(|r| r.id == id)
    }

    /// A deviation of the batch.
    pub fn deviation(&self, id: Uuid) -> Option<&Deviation> {
        self.deviations.iter().find(|d| d.id == id)
    }

    /// The deviation that investigates a result (its OOS), if any.
    pub fn deviation_about(&self, result_id: Uuid) -> Option<&Deviation> {
        self.deviations
            .iter()
            .find(|d| d.result_id == Some(result_id))
    }

    /// Whether a result was invalidated by its investigation.
    fn invalidated(&self, result_id: Uuid) -> bool {
        self.deviation_about(result_id)
            .is_some_and(|d| d.conclusion == Some(Conclusion::InvalidTest))
    }

    /// What a result replaces: the result it names, or, for a retest after
    /// an invalidated result of the same test, that result; with the
    /// deviation that investigated it (a retest after an OOS).
    pub fn replaced_by(&self, id: Uuid) -> Option<(&RecordedResult, Option<&Deviation>)> {
        let r = self.result(id)?;
        let earlier = match r.replaces_result_id {
            Some(e) => self.result(e)?,
            None => self
                .results
                .iter()
                .rfind(|e| e.id < r.id && e.test_code == r.test_code && self.invalidated(e.id))?,
        };
        Some((earlier, self.deviation_about(earlier.id)))
    }

    /// The result that took the place of `id`: the one naming it, or the
    /// first later result of the same test after it was invalidated.
    pub fn replacement_of(&self, id: Uuid) -> Option<&RecordedResult> {
        let r = self.result(id)?;
        self.results
            .iter()
            .find(|n| n.replaces_result_id == Some(id))
            .or_else(|| {
                self.results
                    .iter()
                    .find(|n| n.id > id && n.test_code == r.test_code && self.invalidated(id))
            })
    }

    /// The signatures on one record (the batch, a result, a deviation), oldest first.
    pub fn signatures_on(&self, entity_id: Uuid) -> impl Iterator<Item = &Signature> {
        self.signatures
            .iter()
            .filter(move |s| s.entity_id == entity_id)
    }

    /// What each result's status follows from, in the order of `results`.
    pub fn result_facts(&self) -> Vec<ResultFacts> {
        self.results.iter().map(|r| self.facts_of(r)).collect()
    }

    fn facts_of(&self, r: &RecordedResult) -> ResultFacts {
        let review = self.signatures_on(r.id).find_map(|s| match s.meaning {
            Meaning::Reviewed => Some((Review::Accepted, s.signer.id)),
            Meaning::ReviewRejected => Some((Review::Rejected, s.signer.id)),
            _ => None,
        });
        ResultFacts {
            id: r.id,
            test_code: r.test_code.clone(),
            outcome: r.outcome,
            performed_by: r.performed_by.id,
            review: review.map(|(d, _)| d),
            reviewed_by: review.map(|(_, who)| who),
            superseded: self
                .results
                .iter()
                .any(|o| o.replaces_result_id == Some(r.id)),
            invalidated: self.deviations.iter().any(|d| {
                d.result_id == Some(r.id) && d.conclusion == Some(Conclusion::InvalidTest)
            }),
        }
    }

    /// The current result of each test that has one, in specification order.
    pub fn current_results(&self) -> Vec<&RecordedResult> {
        let facts = self.result_facts();
        self.spec
            .tests
            .iter()
            .filter_map(|t| super::result::current_result(&facts, &t.code))
            .filter_map(|f| self.result(f.id))
            .collect()
    }

    /// Where the chain of custody stands.
    pub fn custody_state(&self) -> CustodyState {
        CustodyState::from_events(self.custody.iter().map(|c| PastEvent {
            event: c.event,
            occurred_at: c.occurred_at,
            internal: c.internal,
        }))
    }

    /// What the batch's own signatures say: when it was first released and
    /// which release signatures wait for a second QA user.
    pub fn certifications(&self) -> Certifications {
        Certifications::from_signatures(
            self.signatures_on(self.batch.id).map(|s| BatchSignature {
                meaning: s.meaning,
                signer: s.signer.id,
                signed_at: s.signed_at,
            }),
            self.product.release_signatures_required,
        )
    }

    /// Everything the release gate looks at.
    pub fn gate(&self) -> BatchFacts {
        BatchFacts {
            tests: self.spec.tests.clone(),
            results: self.result_facts(),
            deviations: self
                .deviations
                .iter()
                .map(|d| DeviationFact {
                    id: d.id,
                    title: d.title.clone(),
                    open: d.status == DeviationStatus::Open,
                    confirmed_oos: d.conclusion == Some(Conclusion::ConfirmedOos),
                    correction_failed: d.conclusion == Some(Conclusion::DoesNotMeetSpecification),
                })
                .collect(),
            in_transit: self.custody_state().in_transit(),
            expires_at: self.batch.expires_at,
            now: self.now,
            parents: self.parents.clone(),
            audit_review: self
                .product
                .audit_review_required
                .then(|| self.audit_review.state()),
        }
    }

    /// Whether and how the batch can be released now, with every blocker.
    pub fn readiness(&self) -> Readiness {
        readiness(&self.gate())
    }

    /// Checks recording a new result of `test_code`.
    pub fn check_new_result(
        &self,
        test_code: &str,
        replaces: Option<Uuid>,
        reason: Option<&str>,
    ) -> Result<(), RecordRefusal> {
        check_new_result(
            self.batch.status,
            &self.result_facts(),
            test_code,
            replaces,
            reason,
            &self.corrected_results(),
        )
    }

    /// The open post-release corrections.
    pub fn open_corrections(&self) -> impl Iterator<Item = &Deviation> {
        self.deviations.iter().filter(|d| {
            d.kind == DeviationKind::PostReleaseCorrection && d.status == DeviationStatus::Open
        })
    }

    /// The results under an open post-release correction: on a decided
    /// record, only they may be replaced.
    pub fn corrected_results(&self) -> Vec<Uuid> {
        self.open_corrections()
            .filter_map(|d| d.subject_id)
            .collect()
    }

    /// Checks opening a post-release correction of `result`: the batch is
    /// (conditionally) released, the result is a current result of it, and
    /// no correction of it is open.
    pub fn check_open_correction(&self, result: Uuid) -> Result<(), CorrectionRefusal> {
        if !self.batch.status.is_released() {
            return Err(CorrectionRefusal::NotReleased(self.batch.status));
        }
        let r = self.result(result).ok_or(CorrectionRefusal::NoSuchResult)?;
        let facts = self.result_facts();
        if super::result::current_result(&facts, &r.test_code).map(|c| c.id) != Some(result) {
            return Err(CorrectionRefusal::NotCurrent);
        }
        if self.corrected_results().contains(&result) {
            return Err(CorrectionRefusal::AlreadyOpen);
        }
        Ok(())
    }

    /// Checks closing deviation `id` with `conclusion`; `None` when it is not
    /// this batch's. A correction concluded `meets_specification` needs the
    /// corrected test's current result reviewed and passing.
    pub fn check_close(
        &self,
        id: Uuid,
        conclusion: Conclusion,
    ) -> Option<Result<(), CloseRefusal>> {
        let d = self.deviation(id)?;
        Some(
            check_close(d.status, d.kind, d.result_id.is_some(), conclusion).and_then(|()| {
                if conclusion != Conclusion::MeetsSpecification {
                    return Ok(());
                }
                let test_code = d
                    .subject_id
                    .and_then(|r| self.result(r))
                    .map(|r| r.test_code.clone())
                    .unwrap_or_default();
                let facts = self.result_facts();
                match super::result::current_result(&facts, &test_code) {
                    Some(c)
                        if c.status() == ResultStatus::Reviewed && c.outcome == Outcome::Pass =>
                    {
                        Ok(())
                    }
                    _ => Err(CloseRefusal::CorrectionUnresolved { test_code }),
                }
            }),
        )
    }

    /// Checks a second-person review of result `id` by `reviewer`; `None`
    /// when the result is not this batch's.
    pub fn check_review(&self, id: Uuid, reviewer: Uuid) -> Option<Result<(), ReviewRefusal>> {
        self.result(id)
            .map(|r| check_review(&self.facts_of(r), reviewer))
    }

    /// Checks a release signature of `kind` by `signer`: status, gate,
    /// independence, a second signer who differs from the first. Returns
    /// what the signature does.
    pub fn check_release(
        &self,
        kind: Certification,
        signer: Uuid,
    ) -> Result<ReleaseStep, ReleaseRefusal> {
        let gate = self.gate();
        check_release(self.batch.status, kind, &readiness(&gate))?;
        if took_part(&gate, signer) {
            return Err(ReleaseRefusal::NotIndependent);
        }
        self.certifications()
            .step(kind, signer, self.product.release_signatures_required)
    }

    /// Checks a signed review of the batch's audit trail up to `named` by
    /// `signer`, the chain ending at `last`: the newest position, and a
    /// signer independent of the current results (as for release).
    pub fn check_audit_review(
        &self,
        signer: Uuid,
        named: i64,
        last: i64,
    ) -> Result<(), audit_review::AuditReviewRefusal> {
        audit_review::check_review(named, last, self.took_part(signer))
    }

    /// Whether `qa` performed or reviewed a current result of the batch
    /// (then they may neither release it nor review its audit trail).
    pub fn took_part(&self, qa: Uuid) -> bool {
        took_part(&self.gate(), qa)
    }

    /// Checks a custody event against the chain so far, the batch's status,
    /// its release signature and its intended recipient.
    pub fn check_custody(
        &self,
        event: CustodyEvent,
        occurred_at: DateTime<Utc>,
        internal: bool,
        recipient_id: Option<&str>,
    ) -> Result<(), CustodyRefusal> {
        check_event(
            &self.custody_state(),
            &Proposed {
                event,
                occurred_at,
                now: self.now,
                batch_status: self.batch.status,
                released_at: self.certifications().released_at,
                correction_open: self.open_corrections().next().is_some(),
                internal,
                recipient_id,
                intended_recipient: self.batch.intended_recipient.as_deref(),
            },
        )
    }

    /// Checks a DIN scanned from the bag (or typed) against the batch's
    /// donation before any custody event is recorded.
    /// An empty scan is accepted only for a batch without a DIN.
    pub fn check_scanned_din(&self, scanned: &str) -> Result<(), CustodyRefusal> {
        let scanned = scanned.trim();
        match (self.batch.donor_din.as_deref().map(Din::parse), scanned) {
            (None, "") => Ok(()),
            (Some(_), "") => Err(CustodyRefusal::DinRequired),
            (Some(Ok(din)), s) if din.matches_scan(s) => Ok(()),
            _ => Err(CustodyRefusal::DinMismatch),
        }
    }

    /// Adds a result just written.
    pub fn push_result(&mut self, r: RecordedResult) {
        self.results.push(r);
    }

    /// Adds a signature just written.
    pub fn push_signature(&mut self, s: Signature) {
        self.signatures.push(s);
    }

    /// Adds a deviation just opened, or replaces one just closed.
    pub fn put_deviation(&mut self, d: Deviation) {
        match self.deviations.iter_mut().find(|o| o.id == d.id) {
            Some(old) => *old = d,
            None => self.deviations.push(d),
        }
    }

    /// Adds a custody event just written.
    pub fn push_custody(&mut self, c: CustodyRecord) {
        self.custody.push(c);
    }

    /// Records a status change just written.
    pub fn set_status(&mut self, to: BatchStatus, at: DateTime<Utc>) {
        self.batch.status = to;
        self.batch.updated_at = at;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::release::BlockerCode;
    use crate::domain::spec::{TestDefInput, validate_tests};
    use chrono::Duration;

    pub(crate) fn person(n: u128) -> ActorRef {
        ActorRef {
            id: Uuid::from_u128(n),
            username: format!("user{n}"),
            full_name: format!("User {n}"),
        }
    }

    /// A quarantined batch of a product with a VIAB and a pending-allowed STER test.
    pub(crate) fn record(required: usize) -> BatchRecord {
        let now = Utc::now();
        let tests = validate_tests(&[
            TestDefInput {
                code: "VIAB".into(),
                name: "viability".into(),
                method: "7-AAD".into(),
                kind: "numeric".into(),
                unit: Some("%".into()),
                min: Some(crate::domain::decimal::DecimalText::typed("80")),
                ..Default::default()
            },
            TestDefInput {
                code: "STER".into(),
                name: "sterility".into(),
                method: "Ph. Eur. 2.6.1".into(),
                kind: "qualitative".into(),
                allowed: Some(vec!["no growth".into()]),
                pending_release_allowed: Some(true),
                ..Default::default()
            },
        ])
        .unwrap();
        BatchRecord {
            batch: Batch {
                id: Uuid::now_v7(),
                batch_number: "MSC-1".into(),
                product_id: Uuid::now_v7(),
                spec_id: Uuid::now_v7(),
                status: BatchStatus::Quarantine,
                manufactured_at: now - Duration::days(3),
                expires_at: now + Duration::days(30),
                donor_din: None,
                intended_recipient: Some("PT-1".into()),
                parent_ids: vec![],
                quantity: None,
                unit: None,
                created_by: Uuid::from_u128(1),
                created_at: now - Duration::days(3),
                updated_at: now - Duration::days(3),
            },
            product: Product {
                id: Uuid::now_v7(),
                code: "MSC".into(),
                name: "MSC injection".into(),
                product_type: "cell therapy".into(),
                storage: StorageRange::default(),
                release_signatures_required: required,
                audit_review_required: false,
            },
            spec: Specification {
                id: Uuid::now_v7(),
                version: "1".into(),
                tests,
            },
            results: vec![],
            signatures: vec![],
            deviations: vec![],
            custody: vec![],
            parents: vec![],
            audit_review: ReviewedTrail::default(),
            now,
        }
    }

    pub(crate) fn result(r: &BatchRecord, code: &str, value: &str, by: u128) -> RecordedResult {
        let outcome = crate::domain::spec::evaluate(
            r.test(code).unwrap(),
            &serde_json::to_string(value).unwrap(),
        )
        .map(|e| e.outcome)
        .unwrap_or(Outcome::Pass);
        RecordedResult {
            id: Uuid::now_v7(),
            test_code: code.into(),
            value: value.into(),
            unit: None,
            outcome,
            performed_by: person(by),
            performed_at: r.now - Duration::hours(2),
            recorded_at: r.now - Duration::hours(1),
            instrument: None,
            instrument_id: None,
            material_ids: Vec::new(),
            source_file_id: None,
            comment: None,
            replaces_result_id: None,
            reason: None,
        }
    }

    pub(crate) fn signature(on: Uuid, meaning: Meaning, by: u128, at: DateTime<Utc>) -> Signature {
        Signature {
            id: Uuid::now_v7(),
            signer: person(by),
            meaning,
            signed_at: at,
            reason: None,
            record_hash: "0".repeat(64),
            entity_id: on,
            statement: Statement {
                text: meaning.statement(crate::i18n::Locale::En),
                locale: crate::i18n::Locale::En,
            },
        }
    }

    fn reviewed(r: &mut BatchRecord, code: &str, value: &str) -> Uuid {
        let res = result(r, code, value, 1);
        let id = res.id;
        r.push_result(res);
        let now = r.now;
        r.push_signature(signature(id, Meaning::Reviewed, 2, now));
        id
    }

    #[test]
    fn what_is_pushed_is_what_the_rules_see_next() {
        let mut r = record(1);
        assert_eq!(r.readiness().blockers.len(), 2);
        let viab = result(&r, "VIAB", "91.5", 1);
        let viab_id = viab.id;
        r.push_result(viab);
        assert!(matches!(
            r.check_new_result("VIAB", None, None),
            Err(RecordRefusal::ResultExists { .. })
        ));
        let codes: Vec<BlockerCode> = r.readiness().blockers.iter().map(|b| b.code).collect();
        assert_eq!(
            codes,
            vec![BlockerCode::ResultNotReviewed, BlockerCode::MissingResult]
        );
        assert_eq!(
            r.check_review(viab_id, Uuid::from_u128(1)),
            Some(Err(ReviewRefusal::SelfReview))
        );
        assert_eq!(r.check_review(viab_id, Uuid::from_u128(2)), Some(Ok(())));
        assert_eq!(r.check_review(Uuid::now_v7(), Uuid::from_u128(2)), None);
        let now = r.now;
        r.push_signature(signature(viab_id, Meaning::Reviewed, 2, now));
        assert!(r.readiness().conditionally_releasable);
        assert_eq!(r.current_results().len(), 1);
    }

    #[test]
    fn release_asks_for_independence_then_counts_signatures() {
        let mut r = record(2);
        reviewed(&mut r, "VIAB", "91.5");
        reviewed(&mut r, "STER", "no growth");
        assert_eq!(
            r.check_release(Certification::Full, Uuid::from_u128(2)),
            Err(ReleaseRefusal::NotIndependent)
        );
        let qa = Uuid::from_u128(7);
        assert_eq!(
            r.check_release(Certification::Full, qa),
            Ok(ReleaseStep::Awaiting {
                signed: 1,
                required: 2
            })
        );
        let (id, now) = (r.batch.id, r.now);
        r.push_signature(signature(id, Meaning::Released, 7, now));
        assert_eq!(
            r.check_release(Certification::Full, qa),
            Err(ReleaseRefusal::AlreadySigned)
        );
        assert_eq!(
            r.check_release(Certification::Full, Uuid::from_u128(8)),
            Ok(ReleaseStep::Certified(BatchStatus::Released))
        );
    }

    #[test]
    fn custody_leaving_the_facility_waits_for_the_release_signature() {
        let mut r = record(1);
        r.batch.intended_recipient = None;
        reviewed(&mut r, "VIAB", "91.5");
        reviewed(&mut r, "STER", "no growth");
        let signed = r.now - Duration::hours(1);
        let id = r.batch.id;
        r.push_signature(signature(id, Meaning::Released, 7, signed));
        r.set_status(BatchStatus::Released, signed);
        let five_hours_before = signed - Duration::hours(5);
        assert_eq!(
            r.check_custody(CustodyEvent::Shipped, five_hours_before, false, None),
            Err(CustodyRefusal::BeforeRelease {
                event: CustodyEvent::Shipped,
                released_at: signed
            })
        );
        assert_eq!(
            r.check_custody(CustodyEvent::Shipped, five_hours_before, true, None),
            Ok(())
        );
        assert_eq!(
            r.check_custody(CustodyEvent::Shipped, signed, false, None),
            Ok(())
        );
    }
}
