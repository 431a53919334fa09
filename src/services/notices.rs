//! What to email whom when a fact changes, decided in the transaction that
//! changed it (the outbox delivers later): an OOS result (urgent when late,
//! after release), a temperature excursion, a batch that has become ready
//! for release, a release, rejection or recall, and an account lockout.

use super::Actor;
use super::outbox::{Email, queue, queue_to_role};
use crate::db::models::UserRow;
use crate::domain::StoredName;
use crate::domain::batch::BatchStatus;
use crate::domain::deviation::Severity;
use crate::domain::record::{BatchRecord, Deviation, RecordedResult};
use crate::domain::roles::Role;
use crate::error::AppError;
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
    let subject = if urgent {
        format!(
            "[cellqc] URGENT: late OOS on {} batch {}: {} failed",
            batch.status.as_str().replace('_', " "),
            batch.batch_number,
            result.test_code
        )
    } else {
        format!(
            "[cellqc] OOS on batch {}: {} failed",
            batch.batch_number, result.test_code
        )
    };
    let body = format!(
        "{}\n\nBatch: {} (status {})\nTest: {}\nResult: {}{unit}\nLimit: {limit}\nDeviation: {} ({})\n\
         \nThe result can't be superseded or retested until QA closes the \
         investigation; only a documented assignable cause (invalid_test) invalidates it.\n",
        oos.description,
        batch.batch_number,
        batch.status.as_str(),
        result.test_code,
        result.value,
        oos.id,
        oos.severity.as_str(),
    );
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: if urgent { "late_oos" } else { "oos_recorded" },
            subject: &subject,
            body: &body,
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
    let subject = format!(
        "[cellqc] Temperature excursion on batch {}",
        record.batch.batch_number
    );
    let body = format!(
        "{}\n\nDeviation: {}\n\nThe batch can't be released while the deviation is open.\n",
        deviation.description, deviation.id
    );
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "custody_excursion",
            subject: &subject,
            body: &body,
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
    let subject = format!("[cellqc] Batch {number} is ready for release");
    let body = format!(
        "Every result of batch {number} is in, within specification and reviewed, and nothing else blocks \
         its release. A Qualified Person who took no part in its testing can now sign the release.\n"
    );
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "batch_ready",
            subject: &subject,
            body: &body,
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
    let what = to.as_str().replace('_', " ");
    let number = &record.batch.batch_number;
    let subject = format!("[cellqc] Batch {number} {what}");
    let body = format!(
        "Batch {number} was {what} by {} ({}) at {}.{}\n",
        actor.full_name,
        actor.username,
        utc(Utc::now()),
        reason.map(|w| format!("\nReason: {w}")).unwrap_or_default(),
    );
    let kind = format!("batch_{}", to.as_str());
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: &kind,
            subject: &subject,
            body: &body,
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
    let subject = format!("[cellqc] Account locked: {}", user.username);
    let body = format!(
        "The cellqc account `{}` ({}) was locked at {} after {} consecutive failed \
         password attempts. It unlocks by itself at {}, or an admin can unlock it \
         on the Users page (user id {}).\n\nIf the user did not make these attempts, \
         treat this as an attempted unauthorised use (21 CFR 11.300(d)).\n",
        user.username,
        user.full_name,
        utc(Utc::now()),
        failures,
        utc(until),
        user.id,
    );
    queue_to_role(
        conn,
        Role::Admin,
        &Email {
            kind: "account_locked",
            subject: &subject,
            body: &body,
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
    let subject = format!("[cellqc] Your password was reset: {}", user.username);
    let body = format!(
        "An administrator, {} ({}), set a new password for your cellqc account `{}` at {}. \
         Every session you had open was ended.\n\nThe new password is temporary: you can \
         sign in and read with it, but you sign nothing until you have chosen your own \
         (Account > Password). The administrator tells you the temporary password in \
         person; it is never sent by email.\n\nIf you did not ask for this, tell QA at once.\n",
        admin.full_name,
        admin.username,
        user.username,
        utc(Utc::now()),
    );
    queue(
        conn,
        vec![user.email.clone()],
        &Email {
            kind: "password_reset",
            subject: &subject,
            body: &body,
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
    let subject = format!(
        "[cellqc] Audit trail anchor {created_at}: root {}",
        &root[..16.min(root.len())]
    );
    let how = match too_large_for_email {
        None => "Keep this email unchanged (a mail archive that the database's operators can't \
                 edit): `cellqc audit verify --anchors DIR` with the JSON below saved in DIR \
                 proves that no chain was rewritten or cut back since. The signature is checked \
                 with the site's public key (GET /api/v1/audit/anchor-key)."
            .to_owned(),
        Some(file) => format!(
            "The anchor covers too many chains to be emailed whole: the JSON below is its \
             summary, without the chains' heads that the root and the signature cover. The \
             whole anchor is the file {file} in the server's anchor directory \
             (CELLQC_ANCHOR_DIR): copy it where the database's operators can't write. Keep \
             this email unchanged: the file's root must be the root above, and \
             `cellqc audit verify --anchors DIR` with the file in DIR proves that no chain was \
             rewritten or cut back since."
        ),
    };
    let body = format!(
        "cellqc anchored its audit trail at {created_at}.\n\nMerkle root: {root}\n\n{how}\n\n\
         --- anchor (JSON) ---\n{anchor_json}\n"
    );
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "audit_anchor",
            subject: &subject,
            body: &body,
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
    let subject = format!(
        "[cellqc] URGENT: impact on {} batch {}: {}",
        batch.status.as_str().replace('_', " "),
        batch.batch_number,
        deviation.title
    );
    let body = format!(
        "{}\n\nBatch: {} (status {})\nDeviation: {} (critical)\n\nThe batch has left \
         quality control. Assess at once whether it must be recalled.\n",
        deviation.description,
        batch.batch_number,
        batch.status.as_str(),
        deviation.id,
    );
    queue_to_role(
        conn,
        Role::Qa,
        &Email {
            kind: "impact_on_released",
            subject: &subject,
            body: &body,
            urgent: true,
            link_path: Some(&batch_link(batch.id)),
        },
    )?;
    Ok(())
}
