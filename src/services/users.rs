//! User accounts: creation, listing, changes, unlock, and the first admin.
//!
//! Users are never deleted (the database refuses it) and usernames are never
//! reassigned (21 CFR 11.100(a)): a leaver is deactivated.

use super::audit::{self, AuditRecord};
use super::notices;
use super::signatures::revoke_sessions;
use super::{Actor, Page, PageRequest, UserView, in_transaction};
use crate::auth::password::hash_password;
use crate::db::models::{NewUser, UserRow};
use crate::db::schema::{sign_in_throttle, users};
use crate::domain::audit::SYSTEM_CHAIN;
use crate::domain::audit_event::AuditEvent;
use crate::domain::roles::check_not_own;
use crate::domain::roles::{Action, Role, RoleSet};
use crate::domain::users::{Username, check_password_policy};
use crate::error::Code;
use crate::error::{AppError, FieldError};
use crate::i18n::Locale;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::json;
use std::str::FromStr;
use uuid::Uuid;

/// The audited snapshot of a user: what an admin can change, no secrets.
fn snapshot(u: &UserRow) -> serde_json::Value {
    json!({
        "id": u.id,
        "username": u.username,
        "full_name": u.full_name,
        "email": u.email,
        "roles": u.roles,
        "active": u.active,
        "password_temporary": u.password_temporary,
        "locale": u.locale,
    })
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUserInput {
    /// Username.
    pub username: String,
    /// Printed name.
    pub full_name: String,
    /// Email.
    pub email: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Initial password.
    pub password: String,
    /// Whether the password was chosen by someone other than the user (an
    /// admin, an operator at the command line): then the user signs nothing
    /// until they change it.
    pub temporary: bool,
    /// The language the user reads.
    pub locale: Locale,
}

fn check_email(raw: &str, errors: &mut Vec<FieldError>) -> String {
    let email = raw.trim();
    if lettre::Address::from_str(email).is_err() {
        errors.push(FieldError::said(
            "email",
            "fe-is-not-a-valid-email-address",
            &[],
        ));
    }
    email.to_owned()
}

fn check_roles(raw: &[String], errors: &mut Vec<FieldError>) -> Option<RoleSet> {
    RoleSet::parse(raw)
        .map_err(|e| errors.push(FieldError::worded("roles", e.words())))
        .ok()
}

/// The roles of a new or changed account: parsed, then an admin's
/// independence (422 `role_conflict`).
fn independent_roles(roles: Option<RoleSet>) -> Result<Option<RoleSet>, AppError> {
    if let Some(r) = &roles {
        r.check_independent()?;
    }
    Ok(roles)
}

fn unique_violation(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

/// Creates an account (admin; or the system at first start when `actor` is none).
pub fn create_user(
    conn: &mut PgConnection,
    actor: Option<&Actor>,
    input: &NewUserInput,
    reason: Option<&str>,
) -> Result<UserView, AppError> {
    // No actor: the system itself (first start, the command line).
    if let Some(a) = actor {
        a.authorize(Action::ManageUsers)?;
    }
    let mut errors = Vec::new();
    let username = Username::parse(&input.username)
        .map_err(|m| errors.push(FieldError::said("username", m, &[])))
        .ok();
    let full_name = crate::domain::text::line("full_name", &input.full_name, 200, &mut errors);
    let email = check_email(&input.email, &mut errors);
    let roles = check_roles(&input.roles, &mut errors);
    if let Err(m) = check_password_policy(
        &input.password,
        username
            .as_ref()
            .map_or(input.username.as_str(), Username::as_str),
    ) {
        errors.push(FieldError::said("password", m, &[]));
    }
    let (Some(username), Some(roles), true) = (username, roles, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    roles.check_independent()?;
    // Hashing is slow: do it before the transaction, not while holding locks.
    let password_hash = hash_password(&input.password)?;
    let result = in_transaction(conn, |c| {
        let row: UserRow = diesel::insert_into(users::table)
            .values(NewUser {
                id: Uuid::now_v7(),
                username: username.as_str(),
                full_name: &full_name,
                email: &email,
                roles: roles.names(),
                password_hash: &password_hash,
                password_temporary: input.temporary,
                locale: input.locale.as_str(),
            })
            .returning(UserRow::as_returning())
            .get_result(c)?;
        let mut rec = AuditRecord::new(
            SYSTEM_CHAIN,
            actor,
            AuditEvent::UserCreated,
            "user",
            Some(row.id),
        )
        .after(snapshot(&row));
        if let Some(r) = reason {
            rec = rec.reason(r);
        }
        audit::append(c, rec)?;
        Ok(UserView::from(&row))
    });
    result.map_err(|e| {
        if unique_violation(&e) {
            AppError::refused(
                Code::UsernameTaken,
                format!(
                    "username `{}` exists or existed: usernames are never reused",
                    username.as_str()
                ),
            )
        } else {
            e
        }
    })
}

/// Every account, by creation order.
pub fn list_users(conn: &mut PgConnection, page: PageRequest) -> Result<Page<UserView>, AppError> {
    let mut q = users::table
        .select(UserRow::as_select())
        .order(users::id)
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        q = q.filter(users::id.gt(after));
    }
    let rows = q.load(conn)?;
    Ok(Page::from_rows(rows, page.limit, |u| u.id).map(|u| UserView::from(&u)))
}

/// One account.
pub fn get_user(conn: &mut PgConnection, id: Uuid) -> Result<UserRow, AppError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::refused(Code::UserNotFound, format!("no user {id}")))
}

/// One account as the API shows it.
pub fn get_user_view(conn: &mut PgConnection, id: Uuid) -> Result<UserView, AppError> {
    Ok(UserView::from(&get_user(conn, id)?))
}

fn lock_user(conn: &mut PgConnection, id: Uuid) -> Result<UserRow, AppError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::refused(Code::UserNotFound, format!("no user {id}")))
}

/// Changes an admin may make to an account.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New printed name.
    pub full_name: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New roles.
    pub roles: Option<Vec<String>>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// The language the user reads.
    pub locale: Option<Locale>,
}

fn other_active_admins(conn: &mut PgConnection, id: Uuid) -> Result<i64, AppError> {
    Ok(users::table
        .filter(users::id.ne(id))
        .filter(users::active.eq(true))
        .filter(users::roles.contains(vec![Role::Admin.as_str().to_owned()]))
        .count()
        .get_result(conn)?)
}

/// Applies an admin's changes; deactivation revokes the user's sessions at once.
pub fn update_user(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    patch: &UserPatch,
) -> Result<UserView, AppError> {
    actor.authorize(Action::ManageUsers)?;
    check_not_own(
        actor.id,
        id,
        patch.roles.is_some() || patch.active.is_some(),
    )?;
    let mut errors = Vec::new();
    let full_name = patch
        .full_name
        .as_deref()
        .map(|n| crate::domain::text::line("full_name", n, 200, &mut errors));
    let email = patch.email.as_deref().map(|e| check_email(e, &mut errors));
    let roles = patch.roles.as_deref().map(|r| check_roles(r, &mut errors));
    if patch.full_name.is_none()
        && patch.email.is_none()
        && patch.roles.is_none()
        && patch.active.is_none()
        && patch.locale.is_none()
    {
        errors.push(FieldError::said(
            "body",
            "fe-give-at-least-one-of-full-name-email-roles-active-locale",
            &[],
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let roles: Option<RoleSet> = independent_roles(roles.flatten())?;
    in_transaction(conn, |c| {
        let before = lock_user(c, id)?;
        let before_roles = Actor::try_from(&before)?.roles;
        let new_roles = roles.clone().unwrap_or_else(|| before_roles.clone());
        let new_active = patch.active.unwrap_or(before.active);
        let was_admin = before.active && before_roles.contains(Role::Admin);
        let is_admin = new_active && new_roles.contains(Role::Admin);
        if was_admin && !is_admin && other_active_admins(c, id)? == 0 {
            return Err(AppError::refused(
                Code::LastAdmin,
                "this is the last active admin: make another admin first",
            ));
        }
        let after: UserRow = diesel::update(users::table.find(id))
            .set((
                users::full_name.eq(full_name.as_deref().unwrap_or(&before.full_name)),
                users::email.eq(email.as_deref().unwrap_or(&before.email)),
                users::roles.eq(new_roles.names()),
                users::active.eq(new_active),
                users::locale.eq(patch
                    .locale
                    .map_or(before.locale.clone(), |l| l.as_str().to_owned())),
                users::updated_at.eq(Utc::now()),
            ))
            .returning(UserRow::as_returning())
            .get_result(c)?;
        let action = match (before.active, after.active) {
            (true, false) => AuditEvent::UserDeactivated,
            (false, true) => AuditEvent::UserReactivated,
            _ => AuditEvent::UserUpdated,
        };
        audit::append(
            c,
            AuditRecord::new(SYSTEM_CHAIN, Some(actor), action, "user", Some(id))
                .change(&snapshot(&before), &snapshot(&after)),
        )?;
        if !after.active {
            let revoked = revoke_sessions(c, id, None, "deactivated")?;
            if revoked > 0 {
                audit::append(
                    c,
                    AuditRecord::new(
                        SYSTEM_CHAIN,
                        Some(actor),
                        AuditEvent::AuthSessionsRevoked,
                        "user",
                        Some(id),
                    )
                    .reason("account deactivated")
                    .after(json!({ "sessions_revoked": revoked })),
                )?;
            }
        }
        Ok(UserView::from(&after))
    })
}

/// Sets the language one reads oneself (`POST /auth/locale`). Choosing the
/// language one already has changes nothing and is not audited.
pub fn set_own_locale(
    conn: &mut PgConnection,
    actor: &Actor,
    locale: Locale,
) -> Result<UserView, AppError> {
    in_transaction(conn, |c| {
        let before = lock_user(c, actor.id)?;
        if before.locale == locale.as_str() {
            return Ok(UserView::from(&before));
        }
        let after: UserRow = diesel::update(users::table.find(actor.id))
            .set((
                users::locale.eq(locale.as_str()),
                users::updated_at.eq(Utc::now()),
            ))
            .returning(UserRow::as_returning())
            .get_result(c)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::UserLocaleChanged,
                "user",
                Some(actor.id),
            )
            .before(json!({ "locale": before.locale }))
            .after(json!({ "locale": after.locale })),
        )?;
        Ok(UserView::from(&after))
    })
}

/// Clears a lockout. Unlocking an account that is not locked changes nothing.
pub fn unlock_user(conn: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<(), AppError> {
    actor.authorize(Action::ManageUsers)?;
    in_transaction(conn, |c| {
        let before = lock_user(c, id)?;
        // Addresses held off the account's name at sign-in may try again.
        let released = diesel::update(
            sign_in_throttle::table
                .filter(sign_in_throttle::username.eq(&before.username))
                .filter(sign_in_throttle::blocked_until.is_not_null()),
        )
        .set((
            sign_in_throttle::failures.eq(0),
            sign_in_throttle::blocked_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(c)?;
        if before.failed_logins == 0 && before.locked_until.is_none() {
            if released > 0 {
                audit::append(
                    c,
                    AuditRecord::new(
                        SYSTEM_CHAIN,
                        Some(actor),
                        AuditEvent::UserUnlocked,
                        "user",
                        Some(id),
                    )
                    .after(json!({ "sign_in_holds_released": released })),
                )?;
            }
            return Ok(());
        }
        diesel::update(users::table.find(id))
            .set((
                users::failed_logins.eq(0),
                users::locked_until.eq(None::<DateTime<Utc>>),
                users::updated_at.eq(Utc::now()),
            ))
            .execute(c)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::UserUnlocked,
                "user",
                Some(id),
            )
            .before(json!({
                "failed_logins": before.failed_logins,
                "locked_until": before.locked_until,
            }))
            .after(json!({ "failed_logins": 0, "locked_until": null,
                               "sign_in_holds_released": released })),
        )?;
        Ok(())
    })
}

/// An admin sets a new password for someone else (they forgot theirs). The
/// password is temporary: the user signs nothing until they change it. Their
/// live sessions end (whoever held one no longer knows the password), the
/// reset is audited without the secret, and the user is emailed so that a
/// reset they did not ask for is noticed.
pub fn reset_password(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    password: &str,
) -> Result<UserView, AppError> {
    actor.authorize(Action::ManageUsers)?;
    // One's own password is changed with the current one (POST /auth/password).
    check_not_own(actor.id, id, true)?;
    let target = get_user(conn, id)?;
    if let Err(m) = check_password_policy(password, &target.username) {
        return Err(AppError::invalid_field_said("password", m));
    }
    let hash = hash_password(password)?;
    in_transaction(conn, |c| {
        let before = lock_user(c, id)?;
        let now = Utc::now();
        let after: UserRow = diesel::update(users::table.find(id))
            .set((
                users::password_hash.eq(&hash),
                users::password_temporary.eq(true),
                users::password_changed_at.eq(now),
                users::updated_at.eq(now),
            ))
            .returning(UserRow::as_returning())
            .get_result(c)?;
        let revoked = revoke_sessions(c, id, None, "password_reset")?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::UserPasswordReset,
                "user",
                Some(id),
            )
            .before(json!({ "password_temporary": before.password_temporary }))
            .after(json!({
                "password_temporary": true,
                "sessions_revoked": revoked,
            })),
        )?;
        notices::password_reset(c, &after, actor)?;
        Ok(UserView::from(&after))
    })
}

/// A random password for the first admin: 24 letters and digits.
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// With no user at all, creates `admin` (roles `[admin]`). Returns the
/// password when this call created the account and generated the password.
pub fn ensure_initial_admin(
    conn: &mut PgConnection,
    password: Option<&str>,
) -> Result<Option<String>, AppError> {
    // Two instances starting together must not both create an admin.
    diesel::sql_query("SELECT pg_advisory_lock(7208431)").execute(conn)?;
    let outcome = (|| {
        let existing: i64 = users::table.count().get_result(conn)?;
        if existing > 0 {
            return Ok(None);
        }
        let generated = password.is_none().then(generate_password);
        let input = NewUserInput {
            username: "admin".to_owned(),
            full_name: "Administrator".to_owned(),
            email: "admin@localhost".to_owned(),
            roles: vec!["admin".to_owned()],
            password: password.map_or_else(|| generated.clone().unwrap_or_default(), str::to_owned),
            // A generated password is printed where others may read it.
            temporary: generated.is_some(),
            locale: Locale::En,
        };
        create_user(conn, None, &input, Some("first start: no user existed"))?;
        Ok(generated)
    })();
    diesel::sql_query("SELECT pg_advisory_unlock(7208431)").execute(conn)?;
    outcome
}
