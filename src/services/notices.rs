//! What to email whom when a fact changes, decided in the transaction that
//! changed it (the outbox delivers later): an OOS result (urgent when late,
//! after release), a temperature excursion, a batch that has become ready
//! for release, a release, rejection or recall, and an account lockout.

use super::Actor;
use super::outbox::{Email, Letter, queue, queue_to_role};
use crate::db::models::UserRow;
use crate::domain::StoredName;
use crate::domain::batch::BatchStatus;
use crate::domain::deviation::Severity;
use crate::domain::record::{BatchRecord, Deviation, RecordedResult};
use crate::domain::roles::Role;
use crate::error::AppError;
use crate::i18n::{Locale, Value};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use uuid::Uuid;

/// The page of a batch, linked from emails.
pub fn batch_link(batch_id: Uuid) -> String {
    format!("/batches/{batch_id}")
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A letter whose subject and body are messages of `src/locales`
/// (`email-<name>-subject`, `email-<name>-body`), with their arguments.
fn letter(loc: Locale, name: &str, args: &[(&'static str, Value<'_>)]) -> Letter {
    Letter {
        subject: format!(
            "[cellqc] {}",
            loc.text_with(&format!("email-{name}-subject"), args)
        ),
        body: format!("{}\n", loc.text_with(&format!("email-{name}-body"), args)),
    }
}

/// Emails every active QA user about the OOS investigation `oos` that the
/// failing result `result` opened; a late one (after release) is urgent.
pub fn oos_opened(
    conn: &mut PgConnection,
    record: &BatchRecord,
    result: &RecordedResult,
    oos: &Deviation,
    limit: &str,
) -> Result<(), AppError> {
    let batch = &record.batch;
    let urgent = oos.severity == Severity::Critical;
    let unit = result
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    let compose = |loc: Locale| {
        letter(
            loc,
            if urgent { "late-oos" } else { "oos" },
            &[
                ("description", oos.description.as_str().into()),
                ("batch", batch.batch_number.as_str().into()),
                (
                    "status",
                    loc.code_words("status", batch.status.as_str()).into(),
                ),
                ("test", result.test_code.as_str().into()),
                ("value", format!("{}{unit}", result.value).into()),
                ("limit", limit.into()),
                ("deviation", oos.id.to_string().into()),
                ("severity", oos.severity.as_str().into()),
            ],
        )
    };
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: if urgent { "late_oos" } else { "oos_recorded" },
            letter: &compose,
            urgent,
            link_path: Some(&batch_link(batch.id)),
        },
    )?;
    Ok(())
}

/// Emails every active QA user, urgently, about a temperature excursion and
/// the deviation it opened.
pub fn excursion_opened(
    conn: &mut PgConnection,
    record: &BatchRecord,
    deviation: &Deviation,
) -> Result<(), AppError> {
    let compose = |loc: Locale| {
        letter(
            loc,
            "excursion",
            &[
                ("batch", record.batch.batch_number.as_str().into()),
                ("description", deviation.description.as_str().into()),
                ("deviation", deviation.id.to_string().into()),
            ],
        )
    };
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "custody_excursion",
            letter: &compose,
            urgent: true,
            link_path: Some(&batch_link(record.batch.id)),
        },
    )?;
    Ok(())
}

/// Emails every active QA user, urgently, that a post-release correction
/// found the batch out of its specification.
pub fn correction_failed(
    conn: &mut PgConnection,
    record: &BatchRecord,
    correction: &Deviation,
    closed_by: &Actor,
) -> Result<(), AppError> {
    let compose = |loc: Locale| {
        letter(
            loc,
            "correction-failed",
            &[
                ("batch", record.batch.batch_number.as_str().into()),
                ("status", record.batch.status.as_str().into()),
                ("title", correction.title.as_str().into()),
                ("name", closed_by.full_name.as_str().into()),
                (
                    "root_cause",
                    correction.root_cause.as_deref().unwrap_or_default().into(),
                ),
            ],
        )
    };
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "correction_failed",
            letter: &compose,
            urgent: true,
            link_path: Some(&batch_link(record.batch.id)),
        },
    )?;
    Ok(())
}

/// Emails every active QA user that the batch is ready for release, when it
/// was not releasable before this change (`was_releasable`) and is now, and
/// is still awaiting its certification.
pub fn ready_for_release(
    conn: &mut PgConnection,
    was_releasable: bool,
    record: &BatchRecord,
) -> Result<(), AppError> {
    let awaiting = matches!(
        record.batch.status,
        BatchStatus::Quarantine | BatchStatus::ConditionallyReleased
    );
    if was_releasable || !awaiting || !record.readiness().releasable {
        return Ok(());
    }
    let number = &record.batch.batch_number;
    let compose = |loc: Locale| letter(loc, "ready", &[("batch", number.as_str().into())]);
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "batch_ready",
            letter: &compose,
            urgent: false,
            link_path: Some(&batch_link(record.batch.id)),
        },
    )?;
    Ok(())
}

/// Emails every active QA user that `actor` moved the batch to `to`
/// (released, conditionally released, rejected, recalled); a recall is urgent.
pub fn status_changed(
    conn: &mut PgConnection,
    record: &BatchRecord,
    to: BatchStatus,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<(), AppError> {
    let number = &record.batch.batch_number;
    let at = utc(Utc::now());
    let compose = |loc: Locale| {
        let mut l = letter(
            loc,
            "status",
            &[
                ("batch", number.as_str().into()),
                ("status", loc.code_words("status", to.as_str()).into()),
                ("name", actor.full_name.as_str().into()),
                ("username", actor.username.as_str().into()),
                ("at", at.as_str().into()),
            ],
        );
        if let Some(why) = reason {
            l.body
                .push_str(&loc.text_with("email-reason", &[("reason", why.into())]));
            l.body.push('\n');
        }
        l
    };
    let kind = format!("batch_{}", to.as_str());
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: &kind,
            letter: &compose,
            urgent: to == BatchStatus::Recalled,
            link_path: Some(&batch_link(record.batch.id)),
        },
    )?;
    Ok(())
}

/// Emails every active admin, urgently, that `user` was locked after
/// `failures` consecutive failed passwords (21 CFR 11.300(d)).
pub fn account_locked(
    conn: &mut PgConnection,
    user: &UserRow,
    until: DateTime<Utc>,
    failures: i32,
) -> Result<(), AppError> {
    let (at, until) = (utc(Utc::now()), utc(until));
    let compose = |loc: Locale| {
        letter(
            loc,
            "locked",
            &[
                ("username", user.username.as_str().into()),
                ("name", user.full_name.as_str().into()),
                ("at", at.as_str().into()),
                ("failures", failures.into()),
                ("until", until.as_str().into()),
                ("id", user.id.to_string().into()),
            ],
        )
    };
    queue_to_role(
        conn,
        Role::Admin,
        &Email {
            kind: "account_locked",
            letter: &compose,
            urgent: true,
            link_path: Some("/users"),
        },
    )?;
    Ok(())
}

/// Emails every active admin, urgently, that `address` was held off the
/// sign-in name `username` (known or not) after `failures` consecutive
/// failures (21 CFR 11.300(d)).
pub fn sign_in_held_off(
    conn: &mut PgConnection,
    username: &str,
    address: &str,
    failures: i32,
    until: DateTime<Utc>,
) -> Result<(), AppError> {
    let (at, until) = (utc(Utc::now()), utc(until));
    let compose = |loc: Locale| {
        letter(
            loc,
            "held-off",
            &[
                ("username", username.into()),
                ("address", address.into()),
                ("at", at.as_str().into()),
                ("failures", failures.into()),
                ("until", until.as_str().into()),
            ],
        )
    };
    queue_to_role(
        conn,
        Role::Admin,
        &Email {
            kind: "sign_in_held_off",
            letter: &compose,
            urgent: true,
            link_path: Some("/users"),
        },
    )?;
    Ok(())
}

/// Tells `user` that an admin set them a new, temporary password, so a reset
/// they did not ask for is noticed. The password itself is never emailed.
pub fn password_reset(
    conn: &mut PgConnection,
    user: &UserRow,
    admin: &Actor,
) -> Result<(), AppError> {
    let at = utc(Utc::now());
    let compose = |loc: Locale| {
        letter(
            loc,
            "reset",
            &[
                ("admin", admin.full_name.as_str().into()),
                ("admin_username", admin.username.as_str().into()),
                ("username", user.username.as_str().into()),
                ("at", at.as_str().into()),
            ],
        )
    };
    // The user reads it in their own language (the table's CHECK admits
    // only the languages there are).
    let locale = Locale::parse(&user.locale).unwrap_or_default();
    queue(
        conn,
        vec![user.email.clone()],
        locale,
        &Email {
            kind: "password_reset",
            letter: &compose,
            urgent: true,
            link_path: Some("/account/password"),
        },
    )?;
    Ok(())
}

/// Emails every active QA user a new anchor of the audit trail, so that a
/// copy lives where the database's operators can't reach it.
pub fn anchor_made(
    conn: &mut PgConnection,
    root: &str,
    created_at: &str,
    anchor_json: &str,
    too_large_for_email: Option<&str>,
) -> Result<(), AppError> {
    let short = root.get(..16).unwrap_or(root);
    let compose = |loc: Locale| {
        let how = match too_large_for_email {
            None => loc.text("email-anchor-keep"),
            Some(file) => loc.text_with("email-anchor-too-large", &[("file", file.into())]),
        };
        let mut l = letter(
            loc,
            "anchor",
            &[
                ("at", created_at.into()),
                ("root", root.into()),
                ("short", short.into()),
                ("how", how.into()),
            ],
        );
        // The JSON exactly as made, after the words.
        l.body
            .push_str(&format!("\n--- anchor (JSON) ---\n{anchor_json}\n"));
        l
    };
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "audit_anchor",
            letter: &compose,
            urgent: false,
            link_path: Some("/audit/verify"),
        },
    )?;
    Ok(())
}

/// Emails every active QA user, at once, that an impact deviation was
/// opened on a batch already released: what failed may have measured or
/// made it, and it may be in a patient.
pub fn impact_on_released(
    conn: &mut PgConnection,
    record: &BatchRecord,
    deviation: &Deviation,
) -> Result<(), AppError> {
    let batch = &record.batch;
    let compose = |loc: Locale| {
        letter(
            loc,
            "impact",
            &[
                (
                    "status",
                    loc.code_words("status", batch.status.as_str()).into(),
                ),
                ("batch", batch.batch_number.as_str().into()),
                ("title", deviation.title.as_str().into()),
                ("description", deviation.description.as_str().into()),
                ("deviation", deviation.id.to_string().into()),
            ],
        )
    };
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "impact_on_released",
            letter: &compose,
            urgent: true,
            link_path: Some(&batch_link(batch.id)),
        },
    )?;
    Ok(())
}
