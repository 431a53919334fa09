//! Electronic signatures, one mechanism for every signed action
//! (21 CFR 11.50, 11.70, 11.200), and the re-entered password behind them
//! and behind sign-in (11.300(d): lockout).
//!
//! A signed action, in its one transaction: checks that the actor's roles
//! may sign its meaning, checks its own rules, then [`verify_signer`]
//! re-checks the signer's password (a wrong one counts toward lockout and is
//! audited, and the action writes nothing else), then writes its rows and
//! [`record`] stores the signature with the hash of what was signed.
//!
//! A failed attempt is a fact to keep: [`check_password`]'s counter update
//! and audit entry are committed even though the caller gets an error.

use super::Actor;
use super::audit::{self, AuditRecord};
use super::notices;
use crate::auth::anchor_key::AnchorKey;
use crate::auth::password::verify_password;
use crate::db::digest::HexDigest;
use crate::db::models::{SignatureRow, UserRow, parse_stored};
use crate::db::prepared::prepared;
use crate::db::schema::{sessions, signatures, users};
use crate::domain::StoredName;
use crate::domain::audit::{ActorRef, SYSTEM_CHAIN};
use crate::domain::audit_event::AuditEvent;
use crate::domain::record::{Signature, Statement};
use crate::domain::signature::{Meaning, record_hash, signed_row};
use crate::domain::users::{LockoutPolicy, is_locked, register_failure};
use crate::error::AppError;
use crate::error::Code;
use crate::i18n::Locale;
use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A signature as shown in the API, the history export and the certificate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignatureView {
    /// Signature id.
    pub id: Uuid,
    /// Who signed (printed name as at signing).
    pub signer: ActorRef,
    /// What the signature means.
    pub meaning: Meaning,
    /// The sentence the signer agreed to, as they read it.
    pub statement: String,
    /// The language the statement was shown in (`en`, `zh-CN`).
    pub statement_locale: Locale,
    /// Server time of signing.
    pub signed_at: DateTime<Utc>,
    /// Reason or comment given.
    pub reason: Option<String>,
    /// SHA-256 of the canonical JSON of what was signed, the signer, meaning and time.
    pub record_hash: String,
}

impl From<&Signature> for SignatureView {
    fn from(s: &Signature) -> Self {
        SignatureView {
            id: s.id,
            signer: s.signer.clone(),
            meaning: s.meaning,
            statement: s.statement.text.clone(),
            statement_locale: s.statement.locale,
            signed_at: s.signed_at,
            reason: s.reason.clone(),
            record_hash: s.record_hash.clone(),
        }
    }
}

impl TryFrom<&SignatureRow> for Signature {
    type Error = AppError;

    /// The stored signature, its meaning parsed.
    fn try_from(s: &SignatureRow) -> Result<Self, AppError> {
        let meaning: Meaning = parse_stored("signature meaning", &s.meaning)?;
        Ok(Signature {
            id: s.id,
            signer: ActorRef {
                id: s.signer_id,
                username: s.signer_username.clone(),
                full_name: s.signer_full_name.clone(),
            },
            meaning,
            signed_at: s.signed_at,
            reason: s.reason.clone(),
            record_hash: s.record_hash.clone(),
            entity_id: s.entity_id,
            statement: match (&s.statement, &s.statement_locale) {
                (Some(text), Some(locale)) => Statement {
                    text: text.clone(),
                    locale: parse_stored("signature statement locale", locale)?,
                },
                // Kept before statements were: every page was English then.
                _ => Statement {
                    text: meaning.statement(Locale::En),
                    locale: Locale::En,
                },
            },
        })
    }
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
    check_password_on(conn, lockout, user, password, purpose, None)
}

/// [`check_password`] for a signature on a batch's record: a refusal's
/// audit entry names the batch, so it appears in the batch's history.
fn check_password_on(
    conn: &mut PgConnection,
    lockout: LockoutPolicy,
    user: &UserRow,
    password: &str,
    purpose: &str,
    batch: Option<Uuid>,
) -> Result<PasswordCheck, AppError> {
    let now = Utc::now();
    if is_locked(user.locked_until, now) {
        let mut rec = AuditRecord::new(
            SYSTEM_CHAIN,
            None,
            AuditEvent::AuthRefusedLocked,
            "user",
            Some(user.id),
        )
        .after(json!({ "username": user.username, "purpose": purpose }));
        rec.batch_id = batch;
        audit::append(conn, rec)?;
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
    let mut rec = AuditRecord::new(
        SYSTEM_CHAIN,
        None,
        AuditEvent::AuthPasswordFailed,
        "user",
        Some(user.id),
    )
    .after(json!({
        "username": user.username,
        "purpose": purpose,
        "consecutive_failures": next.failed_logins,
    }));
    rec.batch_id = batch;
    audit::append(conn, rec)?;
    if let Some(until) = next.lock_until {
        lock_account(conn, user, until, next.failed_logins, purpose)?;
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
    purpose: &str,
) -> Result<(), AppError> {
    audit::append(
        conn,
        AuditRecord::new(
            SYSTEM_CHAIN,
            None,
            AuditEvent::AuthAccountLocked,
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
    // Guesses at sign-in come from anyone: they lock the account but leave
    // its live sessions alone (else anyone could sign a person out by
    // guessing). Guesses through a session (a signature, a password change)
    // end its sessions: a stolen session stops with them.
    if purpose != "login" {
        let revoked = revoke_sessions(conn, user.id, None, "account_locked")?;
        if revoked > 0 {
            audit::append(
                conn,
                AuditRecord::new(
                    SYSTEM_CHAIN,
                    None,
                    AuditEvent::AuthSessionsRevoked,
                    "user",
                    Some(user.id),
                )
                .reason("account locked")
                .after(json!({ "sessions_revoked": revoked })),
            )?;
        }
    }
    notices::account_locked(conn, user, until, failures)
}

/// Revokes every live session of a user but `except`; returns how many.
pub fn revoke_sessions(
    conn: &mut PgConnection,
    user_id: Uuid,
    except: Option<Uuid>,
    reason: &str,
) -> Result<usize, AppError> {
    let live = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.ne(except.unwrap_or(Uuid::nil())));
    Ok(diesel::update(live)
        .set((
            sessions::revoked_at.eq(Utc::now()),
            sessions::revoked_reason.eq(reason),
        ))
        .execute(conn)?)
}

/// Re-checks the signer's password (the second component; the first is the
/// session's user id). The outer error is a failure to record; the inner one
/// the refusal to return after the failure is committed.
pub fn verify_signer(
    conn: &mut PgConnection,
    lockout: LockoutPolicy,
    signer: &Actor,
    password: &str,
) -> Result<Result<(), AppError>, AppError> {
    verify_signer_on(conn, lockout, signer, password, None)
}

/// [`verify_signer`] for a signature on a batch or one of its records: a
/// refused signature appears in the batch's history.
pub fn verify_signer_on(
    conn: &mut PgConnection,
    lockout: LockoutPolicy,
    signer: &Actor,
    password: &str,
    batch: Option<Uuid>,
) -> Result<Result<(), AppError>, AppError> {
    let user: UserRow = users::table
        .find(signer.id)
        .select(UserRow::as_select())
        .for_update()
        .first(conn)?;
    if user.password_temporary {
        // Someone else knows this password: it signs nothing. Not a failed
        // attempt (the password is not even checked), but a refusal kept.
        let mut rec = AuditRecord::new(
            SYSTEM_CHAIN,
            Some(signer),
            AuditEvent::AuthSignatureRefused,
            "user",
            Some(user.id),
        )
        .reason("the password was set by someone else and has not been changed");
        rec.batch_id = batch;
        audit::append(conn, rec)?;
        return Ok(Err(super::password_change_required()));
    }
    Ok(
        match check_password_on(conn, lockout, &user, password, "signature", batch)? {
            PasswordCheck::Accepted => Ok(()),
            PasswordCheck::Locked => Err(AppError::refused(
                Code::AccountLocked,
                "the account is locked after repeated failed attempts",
            )),
            PasswordCheck::Wrong { .. } => Err(AppError::refused(
                Code::SignatureFailed,
                "the password is wrong: nothing was signed",
            )),
        },
    )
}

/// What a signed action needs besides its signer: the lockout rule for the
/// re-entered password, and the site's key that seals each signature (the
/// anchor key, kept outside the database: a signature row written without
/// it, with the app's own database credentials too, is found unsealed).
#[derive(Debug, Clone)]
pub struct SigningRules {
    /// Lockout after repeated wrong passwords.
    pub lockout: LockoutPolicy,
    /// The key that seals signatures.
    pub seal: Arc<AnchorKey>,
}

impl SigningRules {
    /// The rules `settings` give, the site's key read from its file (made
    /// when there is none yet).
    pub fn load(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        Ok(SigningRules {
            lockout: settings.lockout(),
            seal: Arc::new(AnchorKey::load_or_create(&settings.anchor_key_path())?),
        })
    }
}

/// What is being signed.
#[derive(Debug, Clone)]
pub struct Signing<'a> {
    /// The meaning.
    pub meaning: Meaning,
    /// Kind of record signed.
    pub entity_type: &'a str,
    /// Id of the record signed.
    pub entity_id: Uuid,
    /// Batch of the record.
    pub batch_id: Option<Uuid>,
    /// Reason or comment.
    pub reason: Option<&'a str>,
    /// The row the signature signs, in the meaning's table
    /// ([`Meaning::signs`]): its signed form, as the database holds it now,
    /// is what the record hash covers.
    pub signs: Uuid,
}

#[derive(QueryableByName)]
struct SignedForm {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    form: Option<HexDigest>,
}

/// Stores a signature; call after [`verify_signer`] in the same transaction,
/// once the row signed is written as it is signed.
pub fn record(
    conn: &mut PgConnection,
    rules: &SigningRules,
    signer: &Actor,
    s: &Signing<'_>,
) -> Result<Signature, AppError> {
    // Microseconds: exactly what PostgreSQL stores and returns, so the hash
    // can be recomputed from the stored row.
    let signed_at = Utc::now().trunc_subsecs(6);
    // What the signer read: the statement in their language.
    let statement = Statement {
        text: s.meaning.statement(signer.locale),
        locale: signer.locale,
    };
    let table = s.meaning.signs();
    let form = prepared(crate::db::binding::signed_form_sql())
        .bind::<diesel::sql_types::Text, _>(table.as_str())
        .bind::<diesel::sql_types::Uuid, _>(s.signs)
        .bind::<diesel::sql_types::Text, _>(s.meaning.as_str())
        .get_result::<SignedForm>(conn)?
        .form
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "the {} row {} to sign is missing",
                table.as_str(),
                s.signs
            ))
        })?;
    let record_hash = record_hash(
        &signed_row(table, s.signs, &form.0),
        signer.id,
        s.meaning,
        signed_at,
    )?;
    let id = Uuid::now_v7();
    let locale = statement.locale.as_str();
    let mut row = SignatureRow {
        id,
        signer_id: signer.id,
        signer_username: signer.username.clone(),
        signer_full_name: signer.full_name.clone(),
        meaning: s.meaning.as_str().to_owned(),
        signed_at,
        reason: s.reason.map(str::to_owned),
        record_hash,
        entity_type: s.entity_type.to_owned(),
        entity_id: s.entity_id,
        batch_id: s.batch_id,
        statement: Some(statement.text.clone()),
        statement_locale: Some(locale.to_owned()),
        record_table: Some(table.as_str().to_owned()),
        record_id: Some(s.signs),
        seal: None,
        xact: None,
    };
    row.seal = Some(rules.seal.seal(&row.sealed_content().canonical()?).to_vec());
    diesel::insert_into(signatures::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(Signature {
        id: row.id,
        signer: signer.audit_ref(),
        meaning: s.meaning,
        signed_at,
        reason: row.reason,
        record_hash: row.record_hash,
        entity_id: row.entity_id,
        statement,
    })
}

/// Signatures on the given records, by record id, oldest first.
pub fn for_entities(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Signature>>, AppError> {
    let rows: Vec<SignatureRow> = signatures::table
        .filter(signatures::entity_id.eq_any(ids))
        .order(signatures::id)
        .select(SignatureRow::as_select())
        .load(conn)?;
    let mut map: HashMap<Uuid, Vec<Signature>> = HashMap::new();
    for r in &rows {
        map.entry(r.entity_id)
            .or_default()
            .push(Signature::try_from(r)?);
    }
    Ok(map)
}
