//! Queues emails in the `email_outbox` table, in the transaction that decided
//! to send them; a worker delivers them later.

use crate::db::models::NewEmail;
use crate::db::prepared::prepared;
use crate::db::schema::email_outbox;
use crate::domain::roles::Role;
use crate::error::AppError;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
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

// One statement: the recipients are read where the message is written.
const QUEUE_TO_ROLE: &str = "INSERT INTO email_outbox (id, kind, recipients, subject, body, urgent, link_path) \
     SELECT $1, $2, array_agg(email ORDER BY id), $3, $4, $5, $6 FROM users \
      WHERE active AND roles @> ARRAY[$7]::text[] HAVING count(*) > 0";

/// Queues `email` to every active user holding `role`; nothing is queued
/// when there is none. Returns whether a message was queued.
pub fn queue_to_role(
    conn: &mut PgConnection,
    role: Role,
    email: &Email<'_>,
) -> Result<bool, AppError> {
    let queued = prepared(QUEUE_TO_ROLE)
        .bind::<diesel::sql_types::Uuid, _>(Uuid::now_v7())
        .bind::<Text, _>(email.kind)
        .bind::<Text, _>(email.subject)
        .bind::<Text, _>(email.body)
        .bind::<Bool, _>(email.urgent)
        .bind::<Nullable<Text>, _>(email.link_path)
        .bind::<Text, _>(role.as_str())
        .execute(conn)?;
    if queued == 0 {
        tracing::warn!(
            kind = email.kind,
            role = role.as_str(),
            "no active user to email; nothing queued"
        );
    }
    Ok(queued > 0)
}
