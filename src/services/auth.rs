//! Sign-in, sessions, sign-out and password changes, with the lockout rule
//! (21 CFR 11.300(d), in [`signatures::check_password`]): consecutive
//! failures lock the account, the lock is audited and every active admin is
//! emailed.

use super::audit::{self, AuditRecord};
use super::signatures::{PasswordCheck, check_password, revoke_sessions};
use super::{Actor, UserView, in_transaction, notices};
use crate::auth::jwt::JwtKeys;
use crate::auth::password::{hash_password, verify_against_dummy, verify_password};
use crate::config::SessionPolicy;
use crate::db::models::{NewSession, SessionRow, UserRow};
use crate::db::prepared::prepared;
use crate::db::schema::{sessions, sign_in_throttle, users};
use crate::domain::audit::SYSTEM_CHAIN;
use crate::domain::audit_event::AuditEvent;
use crate::domain::users::{LockoutPolicy, Throttle, check_password_policy, is_locked};
use crate::error::AppError;
use crate::error::Code;
use chrono::{Duration, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use serde_json::json;
use uuid::Uuid;

/// What sign-in and session checks need.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Token signing keys.
    pub keys: JwtKeys,
    /// Lockout rule.
    pub lockout: LockoutPolicy,
    /// Token lifetime and idle timeout.
    pub sessions: SessionPolicy,
}

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct LoginOk {
    /// Bearer token.
    pub access_token: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// The user.
    pub user: UserView,
    /// The session's CSRF token (every browser form posts it back).
    pub csrf_token: String,
}

fn find_user_for_update(
    conn: &mut PgConnection,
    username: &str,
) -> Result<Option<UserRow>, AppError> {
    Ok(users::table
        .filter(users::username.eq(username.trim().to_lowercase()))
        .select(UserRow::as_select())
        .for_update()
        .first(conn)
        .optional()?)
}

fn invalid_credentials() -> AppError {
    AppError::refused(Code::InvalidCredentials, "wrong username or password")
}

fn account_locked() -> AppError {
    AppError::refused(
        Code::AccountLocked,
        "the account is locked after repeated failed attempts; wait or ask an admin to unlock it",
    )
}

/// Signs a user in from `address` (the client, as the rate limit sees it):
/// checks the password, opens a session, issues a token.
///
/// Guessing never locks the account (anyone could lock anyone out): past
/// the threshold, `address` is held off the account as typed
/// ([`Throttle`]), 429 with the seconds to wait, the same for a username
/// that names nobody; the first hold of a spell is reported to every active
/// admin at once (21 CFR 11.300(d)). An account locked by guesses at
/// signing answers `account_locked` only to its right password.
pub fn login(
    conn: &mut PgConnection,
    cfg: &AuthConfig,
    username: &str,
    password: &str,
    address: &str,
) -> Result<LoginOk, AppError> {
    // The inner Result is the answer; the outer one a failure to record it.
    // A name with control characters (a NUL from a form) names nobody; it
    // is audited with them shown as U+FFFD.
    let printable = !username.chars().any(char::is_control);
    let shown: String = username
        .chars()
        .take(100)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    let key = shown.trim().to_lowercase();
    in_transaction(conn, |c| {
        let now = Utc::now();
        let held = throttle_of(c, &key, address)?;
        if let Some(wait) = held.as_ref().and_then(|(t, _)| t.wait(now)) {
            audit::append(
                c,
                AuditRecord::new(SYSTEM_CHAIN, None, AuditEvent::AuthLoginFailed, "user", None).after(
                    json!({"username": shown, "cause": "held_off", "address": address, "retry_after": wait}),
                ),
            )?;
            return Ok(Err(held_off(wait)));
        }
        let found = if printable {
            find_user_for_update(c, username)?
        } else {
            None
        };
        let refusal = match &found {
            None => {
                verify_against_dummy(password);
                Some((None, "unknown_user"))
            }
            Some(user) if !user.active => {
                verify_against_dummy(password);
                Some((Some(user.id), "inactive"))
            }
            Some(user) if !verify_password(password, &user.password_hash) => {
                Some((Some(user.id), "wrong_password"))
            }
            Some(_) => None,
        };
        if let Some((user_id, cause)) = refusal {
            audit::append(
                c,
                AuditRecord::new(
                    SYSTEM_CHAIN,
                    None,
                    AuditEvent::AuthLoginFailed,
                    "user",
                    user_id,
                )
                .after(json!({"username": shown, "cause": cause, "address": address})),
            )?;
            let next = Throttle::after_failure(cfg.lockout, held, now);
            diesel::insert_into(sign_in_throttle::table)
                .values((
                    sign_in_throttle::username.eq(&key),
                    sign_in_throttle::address.eq(address),
                    sign_in_throttle::failures.eq(next.failures),
                    sign_in_throttle::last_failure_at.eq(now),
                    sign_in_throttle::blocked_until.eq(next.blocked_until),
                ))
                .on_conflict((sign_in_throttle::username, sign_in_throttle::address))
                .do_update()
                .set((
                    sign_in_throttle::failures.eq(next.failures),
                    sign_in_throttle::last_failure_at.eq(now),
                    sign_in_throttle::blocked_until.eq(next.blocked_until),
                ))
                .execute(c)?;
            let first_hold =
                next.blocked_until.is_some() && held.is_none_or(|(t, _)| t.blocked_until.is_none());
            if first_hold {
                let until = next.blocked_until.unwrap_or(now);
                audit::append(
                    c,
                    AuditRecord::new(
                        SYSTEM_CHAIN,
                        None,
                        AuditEvent::AuthSignInHeldOff,
                        "user",
                        user_id,
                    )
                    .reason("repeated failed sign-ins for this account from this address")
                    .after(json!({"username": shown, "address": address,
                                      "consecutive_failures": next.failures, "held_until": until})),
                )?;
                notices::sign_in_held_off(c, &shown, address, next.failures, until)?;
            }
            return Ok(Err(invalid_credentials()));
        }
        let Some(user) = found else {
            return Ok(Err(invalid_credentials()));
        };
        // The right password: a lock from guesses at signing is said now,
        // and only now (else the answers would tell which accounts exist).
        if is_locked(user.locked_until, now) {
            audit::append(
                c,
                AuditRecord::new(
                    SYSTEM_CHAIN,
                    None,
                    AuditEvent::AuthRefusedLocked,
                    "user",
                    Some(user.id),
                )
                .after(json!({ "username": user.username, "purpose": "login" })),
            )?;
            return Ok(Err(account_locked()));
        }
        if held.is_some_and(|(t, _)| t.failures > 0) {
            diesel::update(
                sign_in_throttle::table
                    .filter(sign_in_throttle::username.eq(&key))
                    .filter(sign_in_throttle::address.eq(address)),
            )
            .set((
                sign_in_throttle::failures.eq(0),
                sign_in_throttle::blocked_until.eq(None::<chrono::DateTime<Utc>>),
            ))
            .execute(c)?;
        }
        if user.failed_logins != 0 || user.locked_until.is_some() {
            diesel::update(users::table.find(user.id))
                .set((
                    users::failed_logins.eq(0),
                    users::locked_until.eq(None::<chrono::DateTime<Utc>>),
                ))
                .execute(c)?;
        }
        let expires_at = now + cfg.sessions.token_ttl;
        let session_id = Uuid::now_v7();
        let csrf_token = random_token();
        diesel::insert_into(sessions::table)
            .values(NewSession {
                id: session_id,
                user_id: user.id,
                expires_at,
                csrf_token: Some(csrf_token.clone()),
            })
            .execute(c)?;
        diesel::update(sessions::table.find(session_id))
            .set(sessions::last_seen_at.eq(now))
            .execute(c)?;
        let actor = Actor::try_from(&user)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(&actor),
                AuditEvent::AuthLogin,
                "session",
                Some(session_id),
            )
            .after(json!({ "user_id": user.id, "expires_at": expires_at })),
        )?;
        let access_token = cfg.keys.issue(user.id, session_id, now, expires_at)?;
        let fresh = users::table
            .find(user.id)
            .select(UserRow::as_select())
            .first(c)?;
        Ok(Ok(LoginOk {
            access_token,
            expires_in: (expires_at - now).num_seconds(),
            user: UserView::from(&fresh),
            csrf_token,
        }))
    })?
}

/// The throttle of `username` from `address`, locked for this transaction,
/// with its last failure's time.
fn throttle_of(
    c: &mut PgConnection,
    username: &str,
    address: &str,
) -> Result<Option<(Throttle, chrono::DateTime<Utc>)>, AppError> {
    let row: Option<(i32, chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>)> =
        sign_in_throttle::table
            .filter(sign_in_throttle::username.eq(username))
            .filter(sign_in_throttle::address.eq(address))
            .select((
                sign_in_throttle::failures,
                sign_in_throttle::last_failure_at,
                sign_in_throttle::blocked_until,
            ))
            .for_update()
            .first(c)
            .optional()?;
    Ok(row.map(|(failures, last, blocked_until)| {
        (
            Throttle {
                failures,
                blocked_until,
            },
            last,
        )
    }))
}

/// 429 `sign_in_held_off`: this address is held off this account for
/// `wait` seconds.
fn held_off(wait: u64) -> AppError {
    let mut e = AppError::rate_limited(wait);
    if let AppError::Problem(p) = &mut e {
        p.code = Code::SignInHeldOff;
        p.detail = format!(
            "too many failed sign-ins for this account from this address; retry in {wait} s \
             (the account itself is not locked)"
        );
    }
    e
}

/// The signed-in user behind a token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user.
    pub actor: Actor,
    /// The session the token belongs to.
    pub session_id: Uuid,
    /// The session's CSRF token.
    pub csrf_token: String,
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// 401 `invalid_token`: a token that is missing, not ours, or expired.
pub fn invalid_token() -> AppError {
    AppError::refused(
        Code::InvalidToken,
        "missing, invalid or expired access token",
    )
}

/// How often a session's last use is written: finer is wasted writes.
const TOUCH_EVERY: Duration = Duration::seconds(15);

const TOUCH: &str = "UPDATE sessions SET last_seen_at = $1 WHERE id = \
     (SELECT id FROM sessions WHERE id = $2 AND revoked_at IS NULL FOR UPDATE SKIP LOCKED)";

/// Checks a bearer token against its session: live, not revoked, not idle
/// past the timeout, user active. A session found idle is revoked (audited).
pub fn authenticate(
    conn: &mut PgConnection,
    cfg: &AuthConfig,
    token: &str,
) -> Result<Authenticated, AppError> {
    let claims = cfg.keys.verify(token).ok_or_else(invalid_token)?;
    // The common case is one read and no write, so no transaction: only the
    // idle-timeout revocation (a write plus its audit entry) needs one.
    let found: Option<(SessionRow, UserRow)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(claims.sid))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?;
    let Some((session, user)) = found else {
        return Err(invalid_token());
    };
    let now = Utc::now();
    if session.user_id != claims.sub || session.revoked_at.is_some() || !user.active {
        return Err(AppError::refused(
            Code::TokenRevoked,
            "this session has ended; sign in again",
        ));
    }
    if session.expires_at <= now {
        return Err(invalid_token());
    }
    if session.last_seen_at + cfg.sessions.idle_timeout <= now {
        in_transaction(conn, |c| {
            let revoked = diesel::update(sessions::table.find(session.id))
                .filter(sessions::revoked_at.is_null())
                .set((
                    sessions::revoked_at.eq(now),
                    sessions::revoked_reason.eq("idle_timeout"),
                ))
                .execute(c)?;
            if revoked > 0 {
                audit::append(
                    c,
                    AuditRecord::new(
                        SYSTEM_CHAIN,
                        None,
                        AuditEvent::AuthSessionTimedOut,
                        "session",
                        Some(session.id),
                    )
                    .after(json!({ "user_id": user.id, "last_seen_at": session.last_seen_at })),
                )?;
            }
            Ok(())
        })?;
        return Err(AppError::refused(
            Code::SessionTimedOut,
            "the session was idle too long; sign in again",
        ));
    }
    if session.last_seen_at + TOUCH_EVERY <= now {
        // One request touches; the others of the moment skip the row it holds
        // instead of queueing behind its commit. A revoked session is never
        // revived: the touch skips it.
        prepared(TOUCH)
            .bind::<Timestamptz, _>(now)
            .bind::<diesel::sql_types::Uuid, _>(session.id)
            .execute(conn)?;
    }
    Ok(Authenticated {
        actor: Actor::try_from(&user)?,
        session_id: session.id,
        csrf_token: session.csrf_token.clone().unwrap_or_default(),
    })
}

/// Ends the session: its token is refused from now on.
pub fn logout(conn: &mut PgConnection, who: &Authenticated) -> Result<(), AppError> {
    in_transaction(conn, |c| {
        diesel::update(sessions::table.find(who.session_id))
            .filter(sessions::revoked_at.is_null())
            .set((
                sessions::revoked_at.eq(Utc::now()),
                sessions::revoked_reason.eq("logout"),
            ))
            .execute(c)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(&who.actor),
                AuditEvent::AuthLogout,
                "session",
                Some(who.session_id),
            ),
        )?;
        Ok(())
    })
}

/// The signed-in user's account.
pub fn me(conn: &mut PgConnection, who: &Authenticated) -> Result<UserView, AppError> {
    let user: UserRow = users::table
        .find(who.actor.id)
        .select(UserRow::as_select())
        .first(conn)?;
    Ok(UserView::from(&user))
}

/// Changes one's own password after re-entering the current one. Every other
/// session of the user is revoked; the current one stays.
pub fn change_password(
    conn: &mut PgConnection,
    cfg: &AuthConfig,
    who: &Authenticated,
    current: &str,
    new: &str,
) -> Result<(), AppError> {
    if let Err(m) = check_password_policy(new, &who.actor.username) {
        return Err(AppError::invalid_field_said("new_password", m));
    }
    if new == current {
        return Err(AppError::invalid_field_with(
            "new_password",
            "fe-must-differ-from-the-current-password",
            &[],
        ));
    }
    let new_hash = hash_password(new)?;
    in_transaction(conn, |c| {
        let user: UserRow = users::table
            .find(who.actor.id)
            .select(UserRow::as_select())
            .for_update()
            .first(c)?;
        match check_password(c, cfg.lockout, &user, current, "password_change")? {
            PasswordCheck::Locked | PasswordCheck::Wrong { locked_now: true } => {
                return Ok(Err(account_locked()));
            }
            PasswordCheck::Wrong { locked_now: false } => {
                return Ok(Err(AppError::refused(
                    Code::InvalidCredentials,
                    "the current password is wrong",
                )));
            }
            PasswordCheck::Accepted => {}
        }
        let now = Utc::now();
        diesel::update(users::table.find(user.id))
            .set((
                users::password_hash.eq(&new_hash),
                users::password_temporary.eq(false),
                users::password_changed_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(c)?;
        let revoked = revoke_sessions(c, user.id, Some(who.session_id), "password_changed")?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(&who.actor),
                AuditEvent::AuthPasswordChanged,
                "user",
                Some(user.id),
            )
            .after(json!({
                "other_sessions_revoked": revoked,
                "was_temporary": user.password_temporary,
            })),
        )?;
        Ok(Ok(()))
    })?
}

/// A write refused because the session's password is temporary: the refusal
/// is kept (who, what was asked), and the 403 to answer is returned.
pub fn refuse_write_on_temporary_password(
    conn: &mut PgConnection,
    who: &Authenticated,
    method: &str,
    path: &str,
) -> Result<AppError, AppError> {
    in_transaction(conn, |c| {
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(&who.actor),
                AuditEvent::AuthWriteRefused,
                "user",
                Some(who.actor.id),
            )
            .reason("the password was set by someone else and has not been changed")
            .after(json!({
                "method": method,
                "path": path.chars().take(200).collect::<String>(),
            })),
        )
    })?;
    Ok(super::password_change_required())
}
