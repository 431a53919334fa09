//! Email delivery: a worker drains the `email_outbox` table.
//!
//! Each message is claimed with `FOR UPDATE SKIP LOCKED` inside a
//! transaction, sent, and marked sent in that same transaction, so several
//! instances never send one message twice. A failure keeps the last error and
//! retries with exponential backoff (capped at an hour); nothing is dropped.
//! With `CELLQC_SMTP_URL` unset, messages are written as `.eml` files under
//! `<data dir>/mail` instead.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CELLQC_SMTP_URL` | unset | e.g. `smtp://mail.example:25`, `smtps://user:pass@mail.example`, `smtp://host:587?tls=required` |
//! | `CELLQC_MAIL_FROM` | `cellqc <cellqc@localhost>` | sender |
//! | `CELLQC_PUBLIC_URL` | `http://127.0.0.1:8080` | base of the links in messages |

use crate::db::models::EmailRow;
use crate::db::pool::DbPool;
use crate::db::schema::email_outbox;
use anyhow::Context;
use chrono::{Duration as ChronoDuration, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use lettre::message::Mailbox;
use lettre::{FileTransport, Message, SmtpTransport, Transport};
use std::path::PathBuf;
use std::time::Duration;

/// Where and how messages go.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// SMTP server URL; none writes `.eml` files into `mail_dir`.
    pub smtp_url: Option<String>,
    /// Sender.
    pub from: String,
    /// Base of the links in messages.
    pub public_url: String,
    /// Directory of `.eml` files.
    pub mail_dir: PathBuf,
    /// How often the outbox is looked at when idle.
    pub poll: Duration,
    /// First retry delay; doubles with each failure.
    pub retry_base: Duration,
}

/// The transport messages leave by.
pub enum Sender {
    /// An SMTP server.
    Smtp(SmtpTransport),
    /// `.eml` files.
    Files(FileTransport),
}

impl Sender {
    /// The sender for `cfg`.
    pub fn new(cfg: &MailConfig) -> anyhow::Result<Self> {
        match &cfg.smtp_url {
            Some(url) => Ok(Sender::Smtp(
                SmtpTransport::from_url(url)
                    .with_context(|| "CELLQC_SMTP_URL is not a valid SMTP URL")?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            )),
            None => {
                std::fs::create_dir_all(&cfg.mail_dir)
                    .with_context(|| format!("creating {}", cfg.mail_dir.display()))?;
                Ok(Sender::Files(FileTransport::new(&cfg.mail_dir)))
            }
        }
    }

    fn send(&self, m: &Message) -> Result<(), String> {
        match self {
            Sender::Smtp(t) => t.send(m).map(|_| ()).map_err(|e| e.to_string()),
            Sender::Files(t) => t.send(m).map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// Builds the message of an outbox row.
pub fn build_message(cfg: &MailConfig, row: &EmailRow) -> Result<Message, String> {
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| format!("sender {}: {e}", cfg.from))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(row.subject.clone())
        .message_id(Some(format!("<{}@cellqc>", row.id)))
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    for r in &row.recipients {
        let to: Mailbox = r.parse().map_err(|e| format!("recipient {r}: {e}"))?;
        builder = builder.to(to);
    }
    let link = row
        .link_path
        .as_deref()
        .map(|p| format!("\nOpen: {}{p}\n", cfg.public_url.trim_end_matches('/')))
        .unwrap_or_default();
    builder
        .body(format!("{}{link}\n-- \ncellqc\n", row.body))
        .map_err(|e| e.to_string())
}

/// The largest body a message may have (the anchors' emails stay far below).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Delay before the next attempt after `attempts` failures.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    base.saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(3600))
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Messages sent.
    pub sent: u32,
    /// Attempts that failed (to be retried).
    pub failed: u32,
}

/// Sends every message that is due, one transaction each; returns what it did.
pub fn deliver_due(
    conn: &mut PgConnection,
    sender: &Sender,
    cfg: &MailConfig,
) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    loop {
        let outcome = conn.transaction::<_, diesel::result::Error, _>(|c| {
            let row: Option<EmailRow> = email_outbox::table
                .filter(email_outbox::sent_at.is_null())
                .filter(email_outbox::next_attempt_at.le(Utc::now()))
                .order((email_outbox::urgent.desc(), email_outbox::next_attempt_at))
                .select(EmailRow::as_select())
                .for_update()
                .skip_locked()
                .first(c)
                .optional()?;
            let Some(row) = row else { return Ok(None) };
            if row.body.len() > MAX_BODY_BYTES {
                // Never attempted: building it would hold the worker (and the
                // urgent messages behind it) for minutes. It stays unsent, in
                // the backlog gauge, with the reason.
                let e = format!(
                    "not sent: the body is {} bytes, over the {MAX_BODY_BYTES} a message may have",
                    row.body.len()
                );
                tracing::error!(email = %row.id, error = %e, "email too large; not sent");
                diesel::update(email_outbox::table.find(row.id))
                    .set((
                        email_outbox::attempts.eq(row.attempts + 1),
                        email_outbox::last_error.eq(e),
                        email_outbox::next_attempt_at.eq(Utc::now() + ChronoDuration::days(36_500)),
                    ))
                    .execute(c)?;
                return Ok(Some(false));
            }
            let result = build_message(cfg, &row).and_then(|m| sender.send(&m));
            match &result {
                Ok(()) => {
                    diesel::update(email_outbox::table.find(row.id))
                        .set((
                            email_outbox::sent_at.eq(Utc::now()),
                            email_outbox::attempts.eq(row.attempts + 1),
                        ))
                        .execute(c)?;
                }
                Err(e) => {
                    let attempts = row.attempts + 1;
                    let wait = ChronoDuration::from_std(backoff(cfg.retry_base, attempts))
                        .unwrap_or(ChronoDuration::hours(1));
                    tracing::warn!(email = %row.id, attempts, error = %e, "email not delivered; will retry");
                    diesel::update(email_outbox::table.find(row.id))
                        .set((
                            email_outbox::attempts.eq(attempts),
                            email_outbox::last_error.eq(e),
                            email_outbox::next_attempt_at.eq(Utc::now() + wait),
                        ))
                        .execute(c)?;
                }
            }
            Ok(Some(result.is_ok()))
        })?;
        match outcome {
            None => return Ok(pass),
            Some(true) => {
                pass.sent += 1;
                metrics::counter!("cellqc_emails_sent_total").increment(1);
            }
            Some(false) => {
                pass.failed += 1;
                metrics::counter!("cellqc_email_failures_total").increment(1);
            }
        }
    }
}

/// The running worker; stop it with [`OutboxWorker::stop`].
pub struct OutboxWorker(crate::periodic::Worker);

impl OutboxWorker {
    /// Starts the worker thread.
    pub fn start(pool: DbPool, cfg: MailConfig) -> anyhow::Result<Self> {
        let sender = Sender::new(&cfg)?;
        let every = cfg.poll;
        Ok(OutboxWorker(crate::periodic::Worker::start(
            "email-outbox",
            pool,
            every,
            move |c| deliver_due(c, &sender, &cfg).map(|_| ()),
        )?))
    }

    /// Stops the worker after its current message.
    pub fn stop(self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(2);
        assert_eq!(backoff(base, 1), Duration::from_secs(2));
        assert_eq!(backoff(base, 2), Duration::from_secs(4));
        assert_eq!(backoff(base, 5), Duration::from_secs(32));
        assert_eq!(backoff(base, 40), Duration::from_secs(3600));
    }
}
