//! Personnel qualified for what they do (21 CFR 211.25, 11.10(i)): QA
//! qualifies an analyst per test code until a date, never themselves; a test
//! that requires it is recorded only by someone qualified at `performed_at`.

use super::value::{Line, Note, OptionalNote};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// `POST /users/{id}/qualifications` (and the matrix page): QA qualifies a
/// person for a test until a date (signed `qualification_granted`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantQualification {
    /// A test code of some specification (`CD73`).
    pub test_code: Line<40>,
    /// When the training was completed, when it is recorded later: not in
    /// the future, at most a year back; default now.
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// In the future, at most three years ahead.
    pub valid_until: DateTime<Utc>,
    /// The signer's password.
    pub password: String,
    /// The training record or assessment it rests on.
    #[serde(default)]
    pub reason: OptionalNote<2000>,
}

/// `POST /qualifications/{id}/revoke` (and the matrix page): QA withdraws a
/// qualification (signed `qualification_revoked`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeQualification {
    /// Why.
    pub reason: Note<2000>,
    /// The signer's password.
    pub password: String,
}

/// One grant, as the rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualification {
    /// Grant id.
    pub id: Uuid,
    /// The analyst.
    pub user_id: Uuid,
    /// The test code it covers.
    pub test_code: String,
    /// From when (the grant).
    pub valid_from: DateTime<Utc>,
    /// Until when.
    pub valid_until: DateTime<Utc>,
    /// When it was withdrawn, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Qualification {
    /// Whether it covers `test_code` at `at`: granted by then, not expired,
    /// not yet withdrawn.
    pub fn covers(&self, test_code: &str, at: DateTime<Utc>) -> bool {
        self.test_code == test_code
            && self.valid_from <= at
            && at <= self.valid_until
            && self.revoked_at.is_none_or(|r| at < r)
    }
}

/// A result by someone not qualified for its test at `performed_at` (403
/// `analyst_not_qualified`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotQualified {
    /// The test.
    pub test_code: String,
    /// When it was performed.
    pub performed_at: DateTime<Utc>,
}

/// The rule at every result of a test that requires a qualification.
pub fn check_qualified(
    required: bool,
    held: &[Qualification],
    test_code: &str,
    performed_at: DateTime<Utc>,
) -> Result<(), NotQualified> {
    if !required || held.iter().any(|q| q.covers(test_code, performed_at)) {
        Ok(())
    } else {
        Err(NotQualified {
            test_code: test_code.to_owned(),
            performed_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn grant(from: i64, until: i64, revoked: Option<i64>) -> Qualification {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        Qualification {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            test_code: "CD73".into(),
            valid_from: t0 + Duration::days(from),
            valid_until: t0 + Duration::days(until),
            revoked_at: revoked.map(|r| t0 + Duration::days(r)),
        }
    }

    #[test]
    fn a_qualification_covers_its_test_from_grant_to_expiry_until_withdrawn() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |d: i64| t0 + Duration::days(d);
        let q = [grant(0, 30, Some(20))];
        assert!(check_qualified(true, &q, "CD73", at(10)).is_ok());
        assert!(
            check_qualified(true, &q, "CD73", at(-1)).is_err(),
            "before the grant"
        );
        assert!(
            check_qualified(true, &q, "CD73", at(25)).is_err(),
            "after withdrawal"
        );
        assert!(
            check_qualified(true, &q, "CD90", at(10)).is_err(),
            "another test"
        );
        assert!(
            check_qualified(true, &[grant(0, 30, None)], "CD73", at(31)).is_err(),
            "expired"
        );
        assert!(
            check_qualified(false, &[], "CD73", at(10)).is_ok(),
            "not required"
        );
    }
}
