//! Sign-in, sessions, sign-out and password changes, with the lockout rule
//! (21 CFR 11.300(d)): consecutive failures lock the account, the lock is
//! audited and every active admin is emailed.
//!
//! A failed attempt is a fact to keep: its counter update and audit entry are
//! committed even though the caller gets an error.

use super::audit::{self, AuditRecord};
use super::outbox::{self, Email};
use super::users::{UserView, actor_of, revoke_sessions};
use super::{Actor, in_transaction};
use crate::auth::jwt::JwtKeys;
use crate::auth::password::{hash_password, verify_against_dummy, verify_password};
use crate::config::SessionPolicy;
use crate::db::models::{NewSession, SessionRow, UserRow};
use crate::db::schema::{sessions, users};
use crate::domain::audit::SYSTEM_CHAIN;
use crate::domain::users::{LockoutPolicy, check_password_policy, is_locked, register_failure};
use crate::error::{AppError, FieldError};
use chrono::{DateTime, Duration, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
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

/// The outcome of re-entering a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// Right password, account usable.
    Accepted,
    /// Wrong password; `locked_now` when this failure locked the account.
    Wrong { locked_now: bool },
    /// The account is locked; the password was not even checked.
    Locked,
}

/// Checks a re-entered password of a user whose row the caller has locked
/// (`FOR UPDATE`), counting a failure toward lockout and auditing it.
/// `purpose` names the attempt in the audit trail: `login`, `signature`,
/// `password_change`.
pub fn check_password(
    conn: &mut PgConnection,
    lockout: LockoutPolicy,
    user: &UserRow,
    password: &str,
    purpose: &str,
) -> Result<PasswordCheck, AppError> {
    let now = Utc::now();
    if is_locked(user.locked_until, now) {
        audit::append(
            conn,
            AuditRecord::new(
                SYSTEM_CHAIN,
                None,
                "auth.refused_locked",
                "user",
                Some(user.id),
            )
            .after(json!({ "username": user.username, "purpose": purpose })),
        )?;
        return Ok(PasswordCheck::Locked);
    }
    if verify_password(password, &user.password_hash) {
        if user.failed_logins != 0 || user.locked_until.is_some() {
            diesel::update(users::table.find(user.id))
                .set((
                    users::failed_logins.eq(0),
                    users::locked_until.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)?;
        }
        return Ok(PasswordCheck::Accepted);
    }
    let next = register_failure(lockout, user.failed_logins, user.locked_until, now);
    diesel::update(users::table.find(user.id))
        .set((
            users::failed_logins.eq(next.failed_logins),
            users::locked_until.eq(next.lock_until.or(user.locked_until.filter(|u| *u > now))),
        ))
        .execute(conn)?;
    audit::append(
        conn,
        AuditRecord::new(
            SYSTEM_CHAIN,
            None,
            "auth.password_failed",
            "user",
            Some(user.id),
        )
        .after(json!({
            "username": user.username,
            "purpose": purpose,
            "consecutive_failures": next.failed_logins,
        })),
    )?;
    if let Some(until) = next.lock_until {
        lock_account(conn, user, until, next.failed_logins)?;
    }
    Ok(PasswordCheck::Wrong {
        locked_now: next.lock_until.is_some(),
    })
}

fn lock_account(
    conn: &mut PgConnection,
    user: &UserRow,
    until: DateTime<Utc>,
    failures: i32,
) -> Result<(), AppError> {
    audit::append(
        conn,
        AuditRecord::new(
            SYSTEM_CHAIN,
            None,
            "auth.account_locked",
            "user",
            Some(user.id),
        )
        .reason("consecutive failed password attempts")
        .after(json!({
            "username": user.username,
            "consecutive_failures": failures,
            "locked_until": until,
        })),
    )?;
    let subject = format!("[cellqc] Account locked: {}", user.username);
    let body = format!(
        "The cellqc account `{}` ({}) was locked at {} after {} consecutive failed \
         password attempts. It unlocks by itself at {}, or an admin can unlock it \
         on the Users page (user id {}).\n\nIf the user did not make these attempts, \
         treat this as an attempted unauthorised use (21 CFR 11.300(d)).\n",
        user.username,
        user.full_name,
        Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        failures,
        until.format("%Y-%m-%d %H:%M:%S UTC"),
        user.id,
    );
    // A lock also ends the user's sessions: guesses made through a stolen
    // session (for example at a signature) stop with it.
    let revoked = revoke_sessions(conn, user.id, None, "account_locked")?;
    if revoked > 0 {
        audit::append(
            conn,
            AuditRecord::new(
                SYSTEM_CHAIN,
                None,
                "auth.sessions_revoked",
                "user",
                Some(user.id),
            )
            .reason("account locked")
            .after(json!({ "sessions_revoked": revoked })),
        )?;
    }
    let admins = outbox::active_role_emails(conn, "admin")?;
    let link = "/users".to_owned();
    outbox::queue(
        conn,
        admins,
        &Email {
            kind: "account_locked",
            subject: &subject,
            body: &body,
            urgent: true,
            link_path: Some(&link),
        },
    )?;
    Ok(())
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
    AppError::unauthorized("invalid_credentials", "wrong username or password")
}

fn account_locked() -> AppError {
    AppError::unauthorized(
        "account_locked",
        "the account is locked after repeated failed attempts; wait or ask an admin to unlock it",
    )
}

/// Signs a user in: checks the password, opens a session, issues a token.
pub fn login(
    conn: &mut PgConnection,
    cfg: &AuthConfig,
    username: &str,
    password: &str,
) -> Result<LoginOk, AppError> {
    // The inner Result is the answer; the outer one a failure to record it.
    in_transaction(conn, |c| {
        let Some(user) = find_user_for_update(c, username)? else {
            verify_against_dummy(password);
            audit::append(
                c,
                AuditRecord::new(SYSTEM_CHAIN, None, "auth.login_failed", "user", None)
                    // What was typed, bounded: the trail keeps the attempt, not a payload.
                    .after(json!({
                        "username": username.chars().take(100).collect::<String>(),
                        "cause": "unknown_user",
                    })),
            )?;
            return Ok(Err(invalid_credentials()));
        };
        if !user.active {
            verify_against_dummy(password);
            audit::append(
                c,
                AuditRecord::new(
                    SYSTEM_CHAIN,
                    None,
                    "auth.login_failed",
                    "user",
                    Some(user.id),
                )
                .after(json!({ "username": user.username, "cause": "inactive" })),
            )?;
            return Ok(Err(invalid_credentials()));
        }
        match check_password(c, cfg.lockout, &user, password, "login")? {
            PasswordCheck::Locked | PasswordCheck::Wrong { locked_now: true } => {
                return Ok(Err(account_locked()));
            }
            PasswordCheck::Wrong { locked_now: false } => return Ok(Err(invalid_credentials())),
            PasswordCheck::Accepted => {}
        }
        let now = Utc::now();
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
        let actor = actor_of(&user)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(&actor),
                "auth.login",
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

fn invalid_token() -> AppError {
    AppError::unauthorized("invalid_token", "missing, invalid or expired access token")
}

/// How often a session's last use is written: finer is wasted writes.
const TOUCH_EVERY: Duration = Duration::seconds(15);

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
        return Err(AppError::unauthorized(
            "token_revoked",
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
                        "auth.session_timed_out",
                        "session",
                        Some(session.id),
                    )
                    .after(json!({ "user_id": user.id, "last_seen_at": session.last_seen_at })),
                )?;
            }
            Ok(())
        })?;
        return Err(AppError::unauthorized(
            "session_timed_out",
            "the session was idle too long; sign in again",
        ));
    }
    if session.last_seen_at + TOUCH_EVERY <= now {
        // A revoked session is never revived: the touch skips it.
        diesel::update(sessions::table.find(session.id))
            .filter(sessions::revoked_at.is_null())
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Authenticated {
        actor: actor_of(&user)?,
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
                "auth.logout",
                "session",
                Some(who.session_id),
            ),
        )?;
        Ok(())
    })
}

/// The signed-in user's account.
pub fn me(conn: &mut PgConnection, who: &Authenticated) -> Result<UserView, AppError> {
    let user = super::users::get_user(conn, who.actor.id)?;
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
        return Err(AppError::invalid_field("new_password", m));
    }
    if new == current {
        return Err(AppError::validation(vec![FieldError::new(
            "new_password",
            "must differ from the current password",
        )]));
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
                return Ok(Err(AppError::unauthorized(
                    "invalid_credentials",
                    "the current password is wrong",
                )));
            }
            PasswordCheck::Accepted => {}
        }
        let now = Utc::now();
        diesel::update(users::table.find(user.id))
            .set((
                users::password_hash.eq(&new_hash),
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
                "auth.password_changed",
                "user",
                Some(user.id),
            )
            .after(json!({ "other_sessions_revoked": revoked })),
        )?;
        Ok(Ok(()))
    })?
}
