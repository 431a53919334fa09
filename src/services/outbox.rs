//! Queues emails in the `email_outbox` table, in the transaction that decided
//! to send them; a worker delivers them later.

use crate::db::models::NewEmail;
use crate::db::prepared::prepared;
use crate::db::schema::email_outbox;
use crate::domain::roles::Role;
use crate::error::AppError;
use crate::i18n::Locale;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use uuid::Uuid;

/// The words of an email in one language.
#[derive(Debug, Clone)]
pub struct Letter {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// An email to queue: each recipient reads it in their own language.
pub struct Email<'a> {
    /// Kind, e.g. `account_locked`.
    pub kind: &'a str,
    /// Subject and body in a language.
    pub letter: &'a dyn Fn(Locale) -> Letter,
    /// Urgent messages are sent first.
    pub urgent: bool,
    /// The page the message is about (e.g. `/batches/{id}`), linked in the message.
    pub link_path: Option<&'a str>,
}

/// Queues `email` to `recipients`, who read `locale`; nothing is queued
/// when there are none. Returns whether a message was queued.
pub fn queue(
    conn: &mut PgConnection,
    recipients: Vec<String>,
    locale: Locale,
    email: &Email<'_>,
) -> Result<bool, AppError> {
    if recipients.is_empty() {
        tracing::warn!(
            kind = email.kind,
            "no recipient for an email; nothing queued"
        );
        return Ok(false);
    }
    let letter = (email.letter)(locale);
    diesel::insert_into(email_outbox::table)
        .values(NewEmail {
            id: Uuid::now_v7(),
            kind: email.kind,
            recipients,
            subject: &letter.subject,
            body: &letter.body,
            urgent: email.urgent,
            link_path: email.link_path,
        })
        .execute(conn)?;
    Ok(true)
}

// One statement: the recipients are read where the message is written, one
// message per language that any of them reads.
const QUEUE_TO_ROLE: &str = "INSERT INTO email_outbox (id, kind, recipients, subject, body, urgent, link_path) \
     SELECT $1, $2, array_agg(email ORDER BY id), $3, $4, $5, $6 FROM users \
      WHERE active AND roles @> ARRAY[$7]::text[] AND locale = 'en' HAVING count(*) > 0 \
     UNION ALL \
     SELECT $8, $2, array_agg(email ORDER BY id), $9, $10, $5, $6 FROM users \
      WHERE active AND roles @> ARRAY[$7]::text[] AND locale = 'zh-CN' HAVING count(*) > 0";

/// Queues `email` to every active user holding `role`, in each one's
/// language; nothing is queued when there is none. Returns whether a
/// message was queued.
pub fn queue_to_role(
    conn: &mut PgConnection,
    role: Role,
    email: &Email<'_>,
) -> Result<bool, AppError> {
    let (en, zh) = ((email.letter)(Locale::En), (email.letter)(Locale::ZhCn));
    let queued = prepared(QUEUE_TO_ROLE)
        .bind::<diesel::sql_types::Uuid, _>(Uuid::now_v7())
        .bind::<Text, _>(email.kind)
        .bind::<Text, _>(&en.subject)
        .bind::<Text, _>(&en.body)
        .bind::<Bool, _>(email.urgent)
        .bind::<Nullable<Text>, _>(email.link_path)
        .bind::<Text, _>(role.as_str())
        .bind::<diesel::sql_types::Uuid, _>(Uuid::now_v7())
        .bind::<Text, _>(&zh.subject)
        .bind::<Text, _>(&zh.body)
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
