//! Every refusal a use case answers: a closed set of codes, each of one
//! kind. The use cases name the code; the faces decide, once each, what a
//! kind is answered as (the API's status in `error.rs`, which the pages
//! share) and the words (`problem-<code>` in `src/locales`, English and
//! Chinese alike). Pages match on these variants, never on strings.

use serde::{Serialize, Serializer};
use strum::{EnumIter, EnumString, IntoStaticStr};

/// What kind of refusal a code is: what the reader must do differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request could not be read (an address, a body, a form).
    Unreadable,
    /// Who is asking is not known (no session, a wrong password at signing).
    NotSignedIn,
    /// The person may not do this (role, independence, qualification).
    NotAllowed,
    /// What was named does not exist.
    NotFound,
    /// The address takes another method.
    WrongMethod,
    /// The record exists but its state does not allow this now.
    NotNow,
    /// A body larger than accepted.
    TooLarge,
    /// A body of a kind not accepted.
    WrongMediaType,
    /// A field, or the combination of fields, is wrong.
    Invalid,
    /// Too many requests: wait and retry.
    TooMany,
    /// The database or the schema is not ready: retry shortly.
    Unavailable,
    /// A failure of ours, logged; the reader learns nothing internal.
    Internal,
}

/// A refusal's stable machine code (its snake_case name is the API's
/// `code` and the key of its words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Code {
    // Unreadable
    InvalidForm,
    InvalidIdempotencyKey,
    InvalidPath,
    MalformedJson,
    UnreadableBody,
    /// A page request refused before any page of ours answered it.
    Refused,
    // NotSignedIn
    MissingToken,
    InvalidToken,
    InvalidCredentials,
    TokenRevoked,
    SessionTimedOut,
    SignatureFailed,
    AccountLocked,
    // NotAllowed
    ForbiddenRole,
    NotIndependent,
    OwnAccount,
    SelfApproval,
    SelfReview,
    AnalystNotQualified,
    PasswordChangeRequired,
    CsrfFailed,
    // NotFound
    BatchNotFound,
    DeviationNotFound,
    ImportMappingNotFound,
    InstrumentNotFound,
    MaterialNotFound,
    ProductNotFound,
    QualificationNotFound,
    ResultNotFound,
    RouteNotFound,
    SourceFileNotFound,
    SpecificationNotFound,
    UserNotFound,
    // WrongMethod
    MethodNotAllowed,
    // NotNow
    AlreadyOutOfService,
    AlreadyRevoked,
    AlreadySigned,
    BatchNumberTaken,
    CalibrationFailed,
    CorrectionOpen,
    CorrectionUnresolved,
    CustodyClosed,
    DeviationClosed,
    IdentityMismatch,
    ImportMappingExists,
    InTransit,
    InstrumentCodeTaken,
    InstrumentNotQualified,
    InvalidTransition,
    LastAdmin,
    MaterialLotExists,
    MaterialNotInQuarantine,
    MaterialNotUsable,
    MaterialRejectedAlready,
    NoEffectiveSpecification,
    NotCurrent,
    NotInTransit,
    NotOutOfService,
    NotReleasable,
    NotReleased,
    NotReplaceable,
    NotReviewable,
    NothingPending,
    OosUnresolved,
    ProductCodeTaken,
    RecordAltered,
    RecordClosed,
    ResultExists,
    SpecNotDraft,
    SpecVersionExists,
    StaleReview,
    UserInactive,
    UsernameTaken,
    // TooLarge, WrongMediaType
    PayloadTooLarge,
    UnsupportedMediaType,
    // Invalid
    ValidationFailed,
    IdempotencyKeyReused,
    RoleConflict,
    // TooMany
    RateLimited,
    ImportInProgress,
    SignInHeldOff,
    // Unavailable
    DatabaseUnavailable,
    MigrationsPending,
    // Internal
    InternalError,
}

impl Code {
    /// The code as the API and the words name it: `batch_not_found`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The kind of refusal this is.
    pub fn kind(self) -> Kind {
        use Code::*;
        match self {
            InvalidForm
            | InvalidIdempotencyKey
            | InvalidPath
            | MalformedJson
            | UnreadableBody
            | Refused => Kind::Unreadable,
            MissingToken | InvalidToken | InvalidCredentials | TokenRevoked | SessionTimedOut
            | SignatureFailed | AccountLocked => Kind::NotSignedIn,
            ForbiddenRole
            | NotIndependent
            | OwnAccount
            | SelfApproval
            | SelfReview
            | AnalystNotQualified
            | PasswordChangeRequired
            | CsrfFailed => Kind::NotAllowed,
            BatchNotFound
            | DeviationNotFound
            | ImportMappingNotFound
            | InstrumentNotFound
            | MaterialNotFound
            | ProductNotFound
            | QualificationNotFound
            | ResultNotFound
            | RouteNotFound
            | SourceFileNotFound
            | SpecificationNotFound
            | UserNotFound => Kind::NotFound,
            MethodNotAllowed => Kind::WrongMethod,
            AlreadyOutOfService
            | AlreadyRevoked
            | AlreadySigned
            | BatchNumberTaken
            | CalibrationFailed
            | CorrectionOpen
            | CorrectionUnresolved
            | CustodyClosed
            | DeviationClosed
            | IdentityMismatch
            | ImportMappingExists
            | InTransit
            | InstrumentCodeTaken
            | InstrumentNotQualified
            | InvalidTransition
            | LastAdmin
            | MaterialLotExists
            | MaterialNotInQuarantine
            | MaterialNotUsable
            | MaterialRejectedAlready
            | NoEffectiveSpecification
            | NotCurrent
            | NotInTransit
            | NotOutOfService
            | NotReleasable
            | NotReleased
            | NotReplaceable
            | NotReviewable
            | NothingPending
            | OosUnresolved
            | ProductCodeTaken
            | RecordAltered
            | RecordClosed
            | ResultExists
            | SpecNotDraft
            | SpecVersionExists
            | StaleReview
            | UserInactive
            | UsernameTaken => Kind::NotNow,
            PayloadTooLarge => Kind::TooLarge,
            UnsupportedMediaType => Kind::WrongMediaType,
            ValidationFailed | IdempotencyKeyReused | RoleConflict => Kind::Invalid,
            RateLimited | ImportInProgress | SignInHeldOff => Kind::TooMany,
            DatabaseUnavailable | MigrationsPending => Kind::Unavailable,
            InternalError => Kind::Internal,
        }
    }

    /// Whether the code's own sentence says all there is (a credential
    /// refusal says nothing more in any language): in another language than
    /// English the sentence alone is then the whole detail.
    pub fn said_in_full(self) -> bool {
        use Code::*;
        matches!(
            self,
            SignatureFailed
                | AccountLocked
                | InvalidCredentials
                | CsrfFailed
                | MissingToken
                | InvalidToken
                | TokenRevoked
                | SessionTimedOut
                | DatabaseUnavailable
                | InternalError
                | PasswordChangeRequired
                | ImportInProgress
        )
    }

    /// The id of the code's sentence in `src/locales`: `problem-batch-not-found`.
    pub fn words_id(self) -> String {
        format!("problem-{}", self.as_str().replace('_', "-"))
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn every_code_reads_back_from_its_name() {
        for code in Code::iter() {
            assert_eq!(code.as_str().parse::<Code>(), Ok(code));
            assert!(!code.as_str().contains(char::is_uppercase));
        }
    }
}
