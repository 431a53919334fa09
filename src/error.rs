//! Every failure becomes an RFC 9457 `application/problem+json` response here,
//! and only here. A use case refuses with a [`Code`] of the closed set in
//! `domain::refusal` (each domain refusal enum maps to its code in one `From`
//! impl below, as crates.io's `util/errors.rs` does); the status follows from
//! the code's kind in [`Problem::status`], so no service or face decides a
//! status of its own, and pages match on codes, never on strings.
//!
//! 4xx problems say exactly what is wrong and which field; 5xx problems are
//! logged once with their cause and answer with an opaque message.

use crate::db::models::StoredValueError;
use crate::domain::StoredName;
use crate::domain::custody::CustodyRefusal;
use crate::domain::deviation::CloseRefusal;
use crate::domain::release::{ReleaseRefusal, TransitionRefusal};
use crate::domain::result::{RecordRefusal, ReviewRefusal};
use crate::domain::roles::RoleRefusal;
use crate::domain::spec::ApprovalRefusal;
use crate::i18n::Locale;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

pub use crate::domain::FieldError;

pub use crate::domain::refusal::{Code, Kind};

/// A problem the client can act on (4xx, or 503 when the database is away).
/// Its status follows from its code's kind ([`Problem::status`]), decided
/// here once; no use case names one.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Stable machine code.
    pub code: Code,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// Invalid fields (422).
    pub errors: Vec<FieldError>,
    /// Release blockers (409 `not_releasable`).
    pub blockers: Option<serde_json::Value>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

/// The error type of every service and handler.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A problem to show the client as it is.
    #[error("{}", .0.detail)]
    Problem(Box<Problem>),
    /// A database error not handled closer to its cause.
    #[error("database error: {0}")]
    Database(#[from] DieselError),
    /// No connection could be had from the pool.
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// Anything else: a bug or an environment failure.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// The refusal `code`, in these words (its status follows from the
    /// code's kind).
    pub fn refused(code: Code, detail: impl Into<String>) -> Self {
        AppError::Problem(Box::new(Problem {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            blockers: None,
            retry_after: None,
        }))
    }

    /// `payload_too_large`: a body over the limit.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::refused(Code::PayloadTooLarge, detail)
    }

    /// `unsupported_media_type`: the body is not JSON.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::refused(Code::UnsupportedMediaType, detail)
    }

    /// 422: validation failure naming each field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        AppError::Problem(Box::new(Problem {
            code: Code::ValidationFailed,
            detail,
            errors,
            blockers: None,
            retry_after: None,
        }))
    }

    /// 422 for a single field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 422 for a single field, its words the message `id` (said in the
    /// reader's language where one is known).
    pub fn invalid_field_said(field: impl Into<String>, id: &'static str) -> Self {
        Self::validation(vec![FieldError::said(field, id, &[])])
    }

    /// 422 for a single field, its words the message `id` with `args`.
    pub fn invalid_field_with(
        field: impl Into<String>,
        id: &'static str,
        args: &[(&'static str, String)],
    ) -> Self {
        Self::validation(vec![FieldError::said(field, id, args)])
    }

    /// 429: slow down.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        AppError::Problem(Box::new(Problem {
            code: Code::RateLimited,
            detail: format!("too many requests from this address; retry in {retry_after_secs} s"),
            errors: Vec::new(),
            blockers: None,
            retry_after: Some(retry_after_secs),
        }))
    }

    /// 429 `import_in_progress`: the user's previous import has not
    /// answered yet.
    pub fn import_in_progress() -> Self {
        AppError::Problem(Box::new(Problem {
            code: Code::ImportInProgress,
            detail: "an import of yours is still running: one import per user at a time; \
                     send this one when it has answered"
                .to_owned(),
            errors: Vec::new(),
            blockers: None,
            retry_after: Some(IMPORT_RETRY_SECS),
        }))
    }

    /// 503: the database is unreachable.
    pub fn unavailable() -> Self {
        Self::refused(
            Code::DatabaseUnavailable,
            "the database is unavailable; retry shortly",
        )
    }

    /// The problem a client sees for this error (logging a 5xx cause once).
    pub fn to_problem(&self) -> Problem {
        match self {
            AppError::Problem(p) => (**p).clone(),
            _ => {
                if self.is_unavailable() {
                    tracing::warn!(error = %self, "database unavailable");
                } else {
                    tracing::error!(error = %self, "request failed");
                }
                Problem {
                    code: self.code(),
                    detail: if self.is_unavailable() {
                        "the database is unavailable; retry shortly".to_owned()
                    } else {
                        "an internal error occurred; it has been logged".to_owned()
                    },
                    errors: Vec::new(),
                    blockers: None,
                    retry_after: None,
                }
            }
        }
    }

    /// The machine code of this error.
    pub fn code(&self) -> Code {
        match self {
            AppError::Problem(p) => p.code,
            _ if self.is_unavailable() => Code::DatabaseUnavailable,
            _ => Code::InternalError,
        }
    }

    /// Whether the transaction should be retried (serialization failure).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AppError::Database(DieselError::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                _
            ))
        )
    }

    /// Whether the database is away rather than the request wrong.
    pub fn is_unavailable(&self) -> bool {
        match self {
            AppError::Pool(_) => true,
            AppError::Database(DieselError::BrokenTransactionManager) => true,
            AppError::Database(e) => crate::db::pool::is_connection_lost(e),
            _ => false,
        }
    }
}

/// Seconds a second import of the same user is told to wait.
const IMPORT_RETRY_SECS: u64 = 5;

/// ... in English (the pages say it in the reader's language).
pub const PASSWORD_CHANGE_SAID: &str = "Your password was set by someone else, who knows it: \
    choose your own (Account, Password) before you sign or change anything. Until then you \
    can read and sign out.";

impl Problem {
    /// The refusal's words, to say it again as the error of a field that
    /// names what was refused (a row of an import, a result of a list): its
    /// one field error's words, else its code's sentence.
    pub fn words(&self) -> Option<crate::domain::Words> {
        match self.errors.as_slice() {
            [one] => one.words.clone(),
            [] => Some(crate::domain::Words {
                id: self.code.words_id().into(),
                args: Vec::new(),
            }),
            _ => None,
        }
    }

    /// The words of this problem for a reader of `loc`: in English as
    /// written; in Chinese the code's sentence, with the specific English
    /// detail after it in brackets (a value, a test, a field it names).
    pub fn in_locale(&self, loc: Locale) -> Problem {
        let mut p = self.clone();
        if loc != Locale::En {
            for e in &mut p.errors {
                e.message = e.message_in(loc);
            }
            let id = self.code.words_id();
            if !p.errors.is_empty() {
                // A validation refusal says each field's message again.
                let each: Vec<String> = p
                    .errors
                    .iter()
                    .map(|e| format!("{}：{}", e.field, e.message))
                    .collect();
                p.detail = format!("{}{}", loc.text(&id), each.join("；"));
            } else if loc.has(&id) {
                p.detail = if self.code.said_in_full() {
                    loc.text(&id)
                } else {
                    format!("{}（{}）", loc.text(&id), self.detail)
                };
            }
        }
        p
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::Internal(anyhow::Error::new(e).context("JSON serialisation"))
    }
}

impl From<StoredValueError> for AppError {
    fn from(e: StoredValueError) -> Self {
        AppError::Internal(anyhow::Error::new(e))
    }
}

impl From<RoleRefusal> for AppError {
    fn from(r: RoleRefusal) -> Self {
        AppError::refused(
            Code::ForbiddenRole,
            format!("this action needs the role {}", r.needed_words()),
        )
    }
}

/// A status as a reader says it: `conditionally released`.
fn words(status: crate::domain::batch::BatchStatus) -> String {
    status.as_str().replace('_', " ")
}

impl From<RecordRefusal> for AppError {
    fn from(r: RecordRefusal) -> Self {
        match r {
            RecordRefusal::RecordClosed(status) => AppError::refused(
                Code::RecordClosed,
                format!(
                    "the batch is {}: its record is decided and takes no new or replaced result \
                     (a released batch's result is corrected only under QA's post-release correction)",
                    words(status)
                ),
            ),
            RecordRefusal::OosUnresolved { test_code, current } => AppError::refused(
                Code::OosUnresolved,
                format!(
                    "result {current} of {test_code} failed; no retest or replacement until QA closes its OOS \
                     investigation as invalid_test"
                ),
            ),
            RecordRefusal::ResultExists { test_code, current } => AppError::refused(
                Code::ResultExists,
                format!(
                    "{test_code} already has result {current}: name it in replaces_result_id with a reason"
                ),
            ),
            RecordRefusal::NotReplaceable { test_code } => AppError::refused(
                Code::NotReplaceable,
                format!(
                    "replaces_result_id is not the current or review-rejected result of {test_code}"
                ),
            ),
            RecordRefusal::ReasonRequired => {
                AppError::invalid_field_said("reason", "fe-a-replacement-needs-a-reason")
            }
        }
    }
}

impl From<crate::domain::roles::RoleConflict> for AppError {
    fn from(_: crate::domain::roles::RoleConflict) -> Self {
        let mut e = AppError::refused(
            Code::RoleConflict,
            "admin can't be held with technician, reviewer or qa: administrators are independent of the record",
        );
        if let AppError::Problem(p) = &mut e {
            p.errors.push(FieldError::said(
                "roles",
                "fe-admin-can-t-be-held-with-technician-reviewer-or-qa",
                &[],
            ));
        }
        e
    }
}

impl From<crate::domain::qualification::NotQualified> for AppError {
    fn from(n: crate::domain::qualification::NotQualified) -> Self {
        AppError::refused(
            Code::AnalystNotQualified,
            format!(
                "you hold no qualification for {} valid at {} (performed_at): QA qualifies analysts per test",
                n.test_code,
                n.performed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        )
    }
}

impl From<crate::domain::instrument::NotUsable> for AppError {
    fn from(n: crate::domain::instrument::NotUsable) -> Self {
        use crate::domain::instrument::{NotUsable, Status};
        match n {
            NotUsable::WrongKind { needed, is } => AppError::invalid_field_with(
                "instrument_id",
                "field-instrument-wrong-kind",
                &[("needed", needed.to_string()), ("is", is.to_string())],
            ),
            NotUsable::NotInService {
                code,
                status,
                valid_until,
            } => {
                let until = valid_until
                    .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default();
                let why = match status {
                    Status::CalibrationDue if valid_until.is_some() => {
                        format!("its calibration expired on {until}")
                    }
                    Status::CalibrationDue => "it had never been calibrated".to_owned(),
                    Status::OutOfService => "it was out of service".to_owned(),
                    Status::FailedCalibration => "its latest calibration had failed".to_owned(),
                    Status::InService => "it was in service".to_owned(),
                };
                AppError::refused(
                    Code::InstrumentNotQualified,
                    format!("instrument {code} was not fit for use at performed_at: {why}"),
                )
            }
        }
    }
}

impl From<crate::domain::material::NotUsable> for AppError {
    fn from(n: crate::domain::material::NotUsable) -> Self {
        AppError::refused(
            Code::MaterialNotUsable,
            format!("{} could not be used then: {}", n.label, n.why),
        )
    }
}

impl From<crate::domain::roles::OwnAccount> for AppError {
    fn from(_: crate::domain::roles::OwnAccount) -> Self {
        AppError::refused(
            Code::OwnAccount,
            "nobody changes their own roles or active flag: another admin must",
        )
    }
}

impl From<ReviewRefusal> for AppError {
    fn from(r: ReviewRefusal) -> Self {
        match r {
            ReviewRefusal::SelfReview => AppError::refused(
                Code::SelfReview,
                "you performed this result: another reviewer must review it",
            ),
            ReviewRefusal::NotAwaitingReview(status) => AppError::refused(
                Code::NotReviewable,
                format!(
                    "the result is {}; only a recorded result awaits review",
                    status.as_str().replace('_', " ")
                ),
            ),
        }
    }
}

impl From<TransitionRefusal> for AppError {
    fn from(r: TransitionRefusal) -> Self {
        AppError::refused(
            Code::InvalidTransition,
            format!("a {} batch can't be {}", words(r.from), words(r.to)),
        )
    }
}

impl From<crate::domain::audit_review::AuditReviewRefusal> for AppError {
    fn from(r: crate::domain::audit_review::AuditReviewRefusal) -> Self {
        use crate::domain::audit_review::AuditReviewRefusal;
        match r {
            AuditReviewRefusal::Stale { named, last } => AppError::refused(
                Code::StaleReview,
                format!(
                    "the audit trail ends at entry {last}, not {named}: read the entries written since and sign again with up_to_seq {last}"
                ),
            ),
            AuditReviewRefusal::NotIndependent => AppError::refused(
                Code::NotIndependent,
                "you performed or reviewed a current result of this batch: another QA user must review its audit trail",
            ),
        }
    }
}

impl From<ReleaseRefusal> for AppError {
    fn from(r: ReleaseRefusal) -> Self {
        match r {
            ReleaseRefusal::WrongStatus(status) => AppError::refused(
                Code::InvalidTransition,
                format!("a {} batch can't be released", words(status)),
            ),
            ReleaseRefusal::NothingPending => AppError::refused(
                Code::NothingPending,
                "every result is in: release without `conditional`",
            ),
            ReleaseRefusal::NotReleasable(blockers) => {
                let mut e = AppError::refused(
                    Code::NotReleasable,
                    format!("{} blocker(s) stand in the way of release", blockers.len()),
                );
                if let AppError::Problem(p) = &mut e {
                    p.blockers = serde_json::to_value(&blockers).ok();
                }
                e
            }
            ReleaseRefusal::NotIndependent => AppError::refused(
                Code::NotIndependent,
                "you performed or reviewed a current result of this batch: another QA user must release it",
            ),
            ReleaseRefusal::AlreadySigned => AppError::refused(
                Code::AlreadySigned,
                "you already signed this release: a second, different QA user must sign",
            ),
        }
    }
}

impl From<CustodyRefusal> for AppError {
    fn from(r: CustodyRefusal) -> Self {
        match r {
            CustodyRefusal::Closed(last) => AppError::refused(
                Code::CustodyClosed,
                format!("the batch was {}: nothing can follow", last.as_str()),
            ),
            CustodyRefusal::InTransit => AppError::refused(
                Code::InTransit,
                "the batch is in transit: only `delivered` can be recorded",
            ),
            CustodyRefusal::NotInTransit => AppError::refused(
                Code::NotInTransit,
                "the batch was not shipped: there is nothing to deliver",
            ),
            CustodyRefusal::CorrectionOpen => AppError::refused(
                Code::NotReleased,
                "a post-release correction of the batch is open: it stays in the facility until QA \
                 closes it",
            ),
            CustodyRefusal::NotReleased(status) => AppError::refused(
                Code::NotReleased,
                format!(
                    "the batch's status is {}: it can't leave the facility or reach a patient until \
                     released (a move within the facility is recorded as internal)",
                    status.as_str()
                ),
            ),
            CustodyRefusal::BeforeRelease { event, released_at } => AppError::refused(
                Code::NotReleased,
                format!(
                    "the batch was released at {}: `{}` takes it out of the facility and can't be dated before that",
                    released_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    event.as_str()
                ),
            ),
            CustodyRefusal::RecipientRequired => AppError::invalid_field_said(
                "recipient_id",
                "fe-administration-needs-the-recipient-s-id",
            ),
            CustodyRefusal::RecipientNotExpected => AppError::invalid_field_said(
                "recipient_id",
                "fe-only-an-administered-event-names-a-recipient",
            ),
            CustodyRefusal::IdentityMismatch => AppError::refused(
                Code::IdentityMismatch,
                "the recipient is not this batch's intended recipient: do not administer",
            ),
            CustodyRefusal::DinRequired => AppError::invalid_field_said(
                "scanned_din",
                "fe-is-required-scan-the-din-on-the-bag-s-label",
            ),
            CustodyRefusal::DinMismatch => {
                let mut e = AppError::refused(
                    Code::IdentityMismatch,
                    "the scanned DIN is not this batch's donation: this is not the bag of this batch. Nothing was recorded",
                );
                if let AppError::Problem(p) = &mut e {
                    p.errors.push(FieldError::said(
                        "scanned_din",
                        "fe-is-not-this-batch-s-donation",
                        &[],
                    ));
                }
                e
            }
            CustodyRefusal::BeforePrevious => AppError::invalid_field_said(
                "occurred_at",
                "fe-is-earlier-than-the-previous-custody-event",
            ),
            CustodyRefusal::InFuture => {
                AppError::invalid_field_with("occurred_at", "field-in-future", &[])
            }
        }
    }
}

impl From<crate::domain::deviation::CorrectionRefusal> for AppError {
    fn from(r: crate::domain::deviation::CorrectionRefusal) -> Self {
        use crate::domain::deviation::CorrectionRefusal;
        match r {
            CorrectionRefusal::NotReleased(status) => AppError::refused(
                Code::NotReleased,
                format!(
                    "the batch is {}: a post-release correction is opened on a released or \
                     conditionally released batch (before release a result is replaced directly)",
                    words(status)
                ),
            ),
            CorrectionRefusal::NoSuchResult => AppError::refused(
                Code::ResultNotFound,
                "the result is not one of this batch's",
            ),
            CorrectionRefusal::NotCurrent => AppError::refused(
                Code::NotCurrent,
                "the result is not the current result of its test: correct the current one",
            ),
            CorrectionRefusal::AlreadyOpen => AppError::refused(
                Code::CorrectionOpen,
                "a post-release correction of this result is open already",
            ),
        }
    }
}

impl From<CloseRefusal> for AppError {
    fn from(r: CloseRefusal) -> Self {
        match r {
            CloseRefusal::AlreadyClosed => {
                AppError::refused(Code::DeviationClosed, "the deviation is already closed")
            }
            CloseRefusal::NotAnOos => AppError::invalid_field_said(
                "conclusion",
                "fe-invalid-test-and-confirmed-oos-conclude-an-oos-investigation",
            ),
            CloseRefusal::CorrectionConclusion => AppError::invalid_field_said(
                "conclusion",
                "fe-a-correction-meets-or-does-not-meet-its-specification",
            ),
            CloseRefusal::CorrectionUnresolved { test_code } => AppError::refused(
                Code::CorrectionUnresolved,
                format!(
                    "{test_code}'s current result is not reviewed and passing: the correction can't \
                     conclude that the batch meets its specification"
                ),
            ),
        }
    }
}

impl From<ApprovalRefusal> for AppError {
    fn from(r: ApprovalRefusal) -> Self {
        match r {
            ApprovalRefusal::NotDraft(status) => AppError::refused(
                Code::SpecNotDraft,
                format!(
                    "the specification is {}; only a draft can be approved",
                    status.as_str()
                ),
            ),
            ApprovalRefusal::SelfApproval => AppError::refused(
                Code::SelfApproval,
                "the author of a specification can't approve it: another QA user must",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn every_refusal_has_its_words_in_every_language_and_a_status_of_its_kind() {
        for code in Code::iter() {
            for loc in Locale::ALL {
                assert!(loc.has(&code.words_id()), "{code} in {}", loc.as_str());
            }
            let p = Problem {
                code,
                detail: String::new(),
                errors: Vec::new(),
                blockers: None,
                retry_after: None,
            };
            let status = p.status();
            match code.kind() {
                Kind::Unavailable | Kind::Internal => assert!(status.is_server_error()),
                _ => assert!(status.is_client_error(), "{code}"),
            }
        }
    }
}
