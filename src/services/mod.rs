//! Use cases, in two tiers (docs/architecture.md "Services in two tiers").
//!
//! The upper tier is one file per use case: one function is one database
//! transaction, which writes its own audit entry. Use cases never import
//! each other (`.ci/tiers` fails the build when one does); what several of
//! them need lives in the lower tier: [`batch_record`] (one locked batch and
//! its facts, loaded once per transaction), [`notices`] (what to email whom),
//! [`audit`], [`signatures`], [`outbox`], [`idempotency`], and this module.
//! No HTTP types here.

// The lower tier.
pub mod audit;
pub mod batch_record;
pub mod idempotency;
pub mod notices;
pub mod outbox;
pub mod signatures;

// The use cases.
pub mod anchors;
pub mod audit_review;
pub mod auth;
pub mod batches;
pub mod certificate;
pub mod custody;
pub mod deviations;
pub mod history;
pub mod import_mappings;
pub mod instruments;
pub mod materials;
pub mod products;
pub mod qualifications;
pub mod release;
pub mod results;
pub mod trends;
pub mod users;
pub mod verification;
pub mod worklist;

use crate::db::models::{UserRow, parse_stored};
use crate::domain::audit::ActorRef;
use crate::domain::roles::{Action, Role, RoleSet, check};
use crate::domain::users::is_locked;
use crate::error::AppError;
use crate::error::Code;
use crate::i18n::Locale;
use chrono::{DateTime, Utc};
use diesel::Connection;
use diesel::pg::PgConnection;
use serde::Serialize;
use std::time::Duration;
use uuid::Uuid;

/// The signed-in user on whose behalf a use case runs.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id.
    pub id: Uuid,
    /// Username.
    pub username: String,
    /// Printed name.
    pub full_name: String,
    /// Roles held now.
    pub roles: RoleSet,
    /// The password was set by someone else: nothing is signed until the
    /// user changes it (403 `password_change_required`).
    pub password_change_required: bool,
    /// The language the user reads (pages, emails, signature statements).
    pub locale: Locale,
}

impl Actor {
    /// The actor as the audit trail records them.
    pub fn audit_ref(&self) -> ActorRef {
        ActorRef {
            id: self.id,
            username: self.username.clone(),
            full_name: self.full_name.clone(),
        }
    }

    /// Whether the actor holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(role)
    }

    /// The authority check of every write (21 CFR 11.10(g)): 403
    /// `forbidden_role` unless the actor's roles allow `action`; 403
    /// `password_change_required` for a write on a temporary password.
    pub fn authorize(&self, action: Action) -> Result<(), AppError> {
        check(&self.roles, action)?;
        let writes = action != Action::ReadAuditTrail;
        if self.password_change_required
            && !crate::domain::users::temporary_password_allows(writes, false)
        {
            return Err(password_change_required());
        }
        Ok(())
    }
}

impl TryFrom<&UserRow> for Actor {
    type Error = AppError;

    /// The actor a user row stands for; its stored roles are parsed here.
    fn try_from(u: &UserRow) -> Result<Self, AppError> {
        let roles = RoleSet::parse(&u.roles)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("user {} has bad roles: {e}", u.id)))?;
        Ok(Actor {
            id: u.id,
            username: u.username.clone(),
            full_name: u.full_name.clone(),
            roles,
            password_change_required: u.password_temporary,
            locale: parse_stored("user locale", &u.locale)?,
        })
    }
}

/// `password_change_required`: a session on a password someone else set
/// writes nothing but its own new password.
pub fn password_change_required() -> AppError {
    AppError::refused(
        Code::PasswordChangeRequired,
        crate::error::PASSWORD_CHANGE_SAID,
    )
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Username (lower case, never reused).
    pub username: String,
    /// Printed name, as shown on signatures.
    pub full_name: String,
    /// Email address.
    pub email: String,
    /// Roles held.
    pub roles: Vec<String>,
    /// Whether the account may sign in.
    pub active: bool,
    /// Whether the account is locked now after failed attempts.
    pub locked: bool,
    /// End of the current lock.
    pub locked_until: Option<DateTime<Utc>>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// The password was set by someone else (an admin): the user may sign in
    /// and read, and signs nothing until they change it.
    pub password_change_required: bool,
    /// The language of the user's pages, emails and certificates.
    pub locale: Locale,
}

impl From<&UserRow> for UserView {
    fn from(u: &UserRow) -> Self {
        let locked = is_locked(u.locked_until, Utc::now());
        UserView {
            id: u.id,
            username: u.username.clone(),
            full_name: u.full_name.clone(),
            email: u.email.clone(),
            roles: u.roles.clone(),
            active: u.active,
            locked,
            locked_until: u.locked_until.filter(|_| locked),
            created_at: u.created_at,
            password_change_required: u.password_temporary,
            // The table's CHECK admits only the languages there are.
            locale: Locale::parse(&u.locale).unwrap_or_default(),
        }
    }
}

/// Runs `f` in one transaction; a serialization failure (another writer won
/// a race under REPEATABLE READ or SERIALIZABLE) re-runs it, up to five times.
pub fn in_transaction<T>(
    conn: &mut PgConnection,
    mut f: impl FnMut(&mut PgConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let mut attempt: u32 = 0;
    loop {
        match conn.transaction(&mut f) {
            Err(e) if e.is_retryable() && attempt < 5 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(u64::from(attempt) * 5));
            }
            other => return other,
        }
    }
}

/// A page request: at most `limit` items after the item `after`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Page size (1 to 500).
    pub limit: i64,
    /// Keyset cursor: the id of the last item of the previous page.
    pub after: Option<Uuid>,
}

/// One page of a list, with the cursor of the next page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items, in the list's stable order.
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in order: the extra
    /// row only tells whether there is a next page.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, id_of: impl Fn(&T) -> Uuid) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|r| id_of(r).to_string())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// Maps the items.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// A signed action's required reason (`reason`, one note of at most 2 000
/// characters): 422 naming the field otherwise.
pub fn required_reason(reason: &str) -> Result<String, AppError> {
    let mut errors = Vec::new();
    let reason = crate::domain::text::note("reason", reason, 2000, &mut errors);
    if errors.is_empty() {
        Ok(reason)
    } else {
        Err(AppError::validation(errors))
    }
}
