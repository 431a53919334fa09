//! Use cases. One use case is one function and one database transaction,
//! which writes its own audit entry. No HTTP types here.

pub mod audit;
pub mod auth;
pub mod batches;
pub mod certificate;
pub mod custody;
pub mod deviations;
pub mod idempotency;
pub mod outbox;
pub mod products;
pub mod release;
pub mod results;
pub mod signatures;
pub mod users;

use crate::domain::audit::ActorRef;
use crate::domain::roles::{Role, RoleSet};
use crate::error::AppError;
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
