//! Rules for user accounts: username format, password policy, lockout.

use chrono::{DateTime, Duration, Utc};

/// Shortest password accepted (API.md: 12 to 128 characters).
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest password accepted.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// A username: 2 to 63 characters of `a-z 0-9 . _ -`, starting with a letter
/// or digit, stored lower-case. Usernames are never reassigned (21 CFR 11.100(a)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses a username, folding it to lower case. An error is the id of
    /// the message saying why.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim().to_lowercase();
        let len = name.chars().count();
        if !(2..=63).contains(&len) {
            return Err("fe-username-length");
        }
        let mut chars = name.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err("fe-username-start");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err("fe-may-contain-only-letters-digits-and");
        }
        Ok(Username(name))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password against the policy: 12 to 128 characters and not
/// containing the username (case-insensitive). An error is the id of the
/// message saying why.
pub fn check_password_policy(password: &str, username: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < PASSWORD_MIN_CHARS {
        return Err("fe-password-short");
    }
    if len > PASSWORD_MAX_CHARS {
        return Err("fe-password-long");
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        return Err("fe-password-username");
    }
    Ok(())
}

/// Lockout policy: after `threshold` consecutive failures the account is
/// locked for `duration` (21 CFR 11.300(d)).
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account.
    pub threshold: u32,
    /// How long the lock lasts.
    pub duration: Duration,
}

/// Whether an account is locked at `now`.
pub fn is_locked(locked_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    locked_until.is_some_and(|until| until > now)
}

/// The account's state after one more failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    /// The new consecutive-failure count.
    pub failed_logins: i32,
    /// Set when this failure locks the account.
    pub lock_until: Option<DateTime<Utc>>,
}

/// Counts one more failure. A lock that has run out starts the count afresh.
pub fn register_failure(
    policy: LockoutPolicy,
    failed_logins: i32,
    locked_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AfterFailure {
    let previous = if locked_until.is_some_and(|until| until <= now) {
        0
    } else {
        failed_logins
    };
    let count = previous.saturating_add(1);
    let threshold = i32::try_from(policy.threshold).unwrap_or(i32::MAX);
    AfterFailure {
        failed_logins: count,
        lock_until: (count >= threshold).then(|| now + policy.duration),
    }
}

/// Guessing at sign-in (21 CFR 11.300(d); OWASP ASVS 2.2): after
/// `policy.threshold` failures for one account from one address, that
/// address is held off that account, first for a minute, each further
/// failure doubling it up to `policy.duration`. The account itself is never
/// locked by sign-in guesses (anyone could lock anyone out), and an unknown
/// username is held off the same way (the answers tell nobody which
/// accounts exist). A quiet spell as long as the longest hold forgives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures counted for the account from the address.
    pub failures: i32,
    /// Held off until then.
    pub blocked_until: Option<DateTime<Utc>>,
}

/// The first hold once the threshold is reached.
pub const FIRST_HOLD: Duration = Duration::minutes(1);

impl Throttle {
    /// The throttle after one more failure at `now`, from `before` (none:
    /// the first), with the failure time of `before`.
    pub fn after_failure(
        policy: LockoutPolicy,
        before: Option<(Throttle, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Throttle {
        let previous = match before {
            Some((t, last)) if now - last < policy.duration => t.failures,
            _ => 0,
        };
        let failures = previous.saturating_add(1);
        let threshold = i32::try_from(policy.threshold).unwrap_or(i32::MAX);
        let blocked_until = (failures >= threshold).then(|| {
            let doublings = u32::try_from(failures - threshold)
                .unwrap_or(u32::MAX)
                .min(20);
            let hold = FIRST_HOLD
                .checked_mul(1_i32 << doublings)
                .unwrap_or(policy.duration)
                .min(policy.duration);
            now + hold
        });
        Throttle {
            failures,
            blocked_until,
        }
    }

    /// Whole seconds the address must still wait at `now` (none: it may
    /// try).
    pub fn wait(&self, now: DateTime<Utc>) -> Option<u64> {
        self.blocked_until
            .filter(|until| *until > now)
            .map(|until| {
                let ms = (until - now).num_milliseconds();
                u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
            })
    }
}

/// What a session on a password someone else set may do: read, sign out
/// and change its own password, and nothing else. The one who set it (an
/// admin) knows it, so whatever else the session wrote would not be
/// attributable to one person (ALCOA+; API v1.2 "A temporary password reads
/// only").
pub fn temporary_password_allows(writes: bool, signs_out_or_changes_own_password: bool) -> bool {
    !writes || signs_out_or_changes_own_password
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_folded_and_checked() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("a").is_err());
        assert!(Username::parse("-x").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("qa.lead_2-b").is_ok());
    }

    #[test]
    fn password_policy_boundaries() {
        assert!(check_password_policy("a".repeat(11).as_str(), "bob").is_err());
        assert!(check_password_policy("a".repeat(12).as_str(), "bob").is_ok());
        assert!(check_password_policy("a".repeat(128).as_str(), "bob").is_ok());
        assert!(check_password_policy("a".repeat(129).as_str(), "bob").is_err());
        assert!(check_password_policy("my-BOB-password-1", "bob").is_err());
        // characters, not bytes
        assert!(check_password_policy("ééééééééééé", "bob").is_err());
        assert!(check_password_policy("éééééééééééé", "bob").is_ok());
    }

    #[test]
    fn sign_in_guesses_hold_the_address_off_doubling_up_to_the_lock_duration() {
        let policy = LockoutPolicy {
            threshold: 5,
            duration: Duration::minutes(15),
        };
        let t0 = Utc::now();
        let mut t = None;
        let mut holds = Vec::new();
        for i in 0..10 {
            let now = t0 + Duration::seconds(i);
            let next = Throttle::after_failure(policy, t.map(|t| (t, now)), now);
            holds.push(next.blocked_until.map(|u| (u - now).num_minutes()));
            t = Some(next);
        }
        assert_eq!(
            holds,
            [
                None,
                None,
                None,
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(15),
                Some(15)
            ]
        );
        let held = t.unwrap();
        assert_eq!(held.wait(t0 + Duration::seconds(9)), Some(900));
        assert_eq!(held.wait(t0 + Duration::minutes(16)), None);
        // A quiet spell as long as the longest hold forgives.
        let later = t0 + Duration::minutes(40);
        let forgiven =
            Throttle::after_failure(policy, Some((held, t0 + Duration::seconds(9))), later);
        assert_eq!(forgiven.failures, 1);
        assert_eq!(forgiven.blocked_until, None);
    }

    #[test]
    fn fifth_failure_locks_and_an_expired_lock_restarts_the_count() {
        let policy = LockoutPolicy {
            threshold: 5,
            duration: Duration::minutes(15),
        };
        let now = Utc::now();
        let mut count = 0;
        for _ in 0..4 {
            let f = register_failure(policy, count, None, now);
            assert_eq!(f.lock_until, None);
            count = f.failed_logins;
        }
        let fifth = register_failure(policy, count, None, now);
        assert_eq!(fifth.failed_logins, 5);
        assert_eq!(fifth.lock_until, Some(now + Duration::minutes(15)));
        assert!(is_locked(fifth.lock_until, now));
        let later = now + Duration::minutes(16);
        assert!(!is_locked(fifth.lock_until, later));
        let after = register_failure(policy, 5, fifth.lock_until, later);
        assert_eq!(after.failed_logins, 1);
        assert_eq!(after.lock_until, None);
    }
}
