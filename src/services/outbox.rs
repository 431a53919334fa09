//! Queues emails in the `email_outbox` table, in the transaction that decided
//! to send them; a worker delivers them later.

use crate::db::models::NewEmail;
use crate::db::schema::{email_outbox, users};
use crate::error::AppError;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

/// An email to queue.
#[derive(Debug, Clone)]
pub struct Email<'a> {
    /// Kind, e.g. `account_locked`.
    pub kind: &'a str,
    /// Subject line.
    pub subject: &'a str,
    /// Plain-text body.
    pub body: &'a str,
    /// Urgent messages are sent first.
    pub urgent: bool,
    /// The page the message is about (e.g. `/batches/{id}`), linked in the message.
    pub link_path: Option<&'a str>,
}

/// Email addresses of every active user holding `role`.
pub fn active_role_emails(conn: &mut PgConnection, role: &str) -> Result<Vec<String>, AppError> {
    Ok(users::table
        .filter(users::active.eq(true))
        .filter(users::roles.contains(vec![role.to_owned()]))
        .order(users::id)
        .select(users::email)
        .load(conn)?)
}

/// Queues `email` to `recipients`; nothing is queued when there are none.
/// Returns whether a message was queued.
pub fn queue(
    conn: &mut PgConnection,
    recipients: Vec<String>,
    email: &Email<'_>,
) -> Result<bool, AppError> {
    if recipients.is_empty() {
        tracing::warn!(
            kind = email.kind,
            "no recipient for an email; nothing queued"
        );
        return Ok(false);
    }
    diesel::insert_into(email_outbox::table)
        .values(NewEmail {
            id: Uuid::now_v7(),
            kind: email.kind,
            recipients,
            subject: email.subject,
            body: email.body,
            urgent: email.urgent,
            link_path: email.link_path,
        })
        .execute(conn)?;
    Ok(true)
}
