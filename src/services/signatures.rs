//! Electronic signatures, one mechanism for every signed action
//! (21 CFR 11.50, 11.70, 11.200).
//!
//! A signed action, in its one transaction: checks its own rules, then
//! [`verify_signer`] re-checks the signer's password (a wrong one counts
//! toward lockout and is audited, and the action writes nothing), then writes
//! its rows and [`record`] stores the signature with the hash of what was signed.

use super::Actor;
use super::auth::{PasswordCheck, check_password};
use crate::db::models::{SignatureRow, UserRow};
use crate::db::schema::{signatures, users};
use crate::domain::audit::ActorRef;
use crate::domain::signature::{Meaning, record_hash};
use crate::domain::users::LockoutPolicy;
use crate::error::AppError;
use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// A signature as shown in the API, the history export and the certificate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignatureView {
    /// Signature id.
    pub id: Uuid,
    /// Who signed (printed name as at signing).
    pub signer: ActorRef,
    /// What the signature means.
    pub meaning: String,
    /// The sentence the signer agreed to.
    pub statement: String,
    /// Server time of signing.
    pub signed_at: DateTime<Utc>,
    /// Reason or comment given.
    pub reason: Option<String>,
    /// SHA-256 of the canonical JSON of what was signed, the signer, meaning and time.
    pub record_hash: String,
}

fn statement_of(meaning: &str) -> String {
    [
        Meaning::Reviewed,
        Meaning::ReviewRejected,
        Meaning::SpecApproved,
        Meaning::Released,
        Meaning::ConditionallyReleased,
        Meaning::Rejected,
        Meaning::Recalled,
        Meaning::DeviationClosed,
    ]
    .into_iter()
    .find(|m| m.as_str() == meaning)
    .map(|m| m.statement().to_owned())
    .unwrap_or_default()
}

impl From<&SignatureRow> for SignatureView {
    fn from(s: &SignatureRow) -> Self {
        SignatureView {
            id: s.id,
            signer: ActorRef {
                id: s.signer_id,
                username: s.signer_username.clone(),
                full_name: s.signer_full_name.clone(),
            },
            meaning: s.meaning.clone(),
            statement: statement_of(&s.meaning),
            signed_at: s.signed_at,
            reason: s.reason.clone(),
            record_hash: s.record_hash.clone(),
        }
    }
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
    let user: UserRow = users::table
        .find(signer.id)
        .select(UserRow::as_select())
        .for_update()
        .first(conn)?;
    Ok(
        match check_password(conn, lockout, &user, password, "signature")? {
            PasswordCheck::Accepted => Ok(()),
            PasswordCheck::Locked => Err(AppError::unauthorized(
                "account_locked",
                "the account is locked after repeated failed attempts",
            )),
            PasswordCheck::Wrong { .. } => Err(AppError::unauthorized(
                "signature_failed",
                "the password is wrong: nothing was signed",
            )),
        },
    )
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
    /// The record as signed (its canonical JSON is hashed).
    pub record: &'a Value,
}

/// Stores a signature; call after [`verify_signer`] in the same transaction.
pub fn record(
    conn: &mut PgConnection,
    signer: &Actor,
    s: &Signing<'_>,
) -> Result<SignatureRow, AppError> {
    // Microseconds: exactly what PostgreSQL stores and returns, so the hash
    // can be recomputed from the stored row.
    let signed_at = Utc::now().trunc_subsecs(6);
    let row = SignatureRow {
        id: Uuid::now_v7(),
        signer_id: signer.id,
        signer_username: signer.username.clone(),
        signer_full_name: signer.full_name.clone(),
        meaning: s.meaning.as_str().to_owned(),
        signed_at,
        reason: s.reason.map(str::to_owned),
        record_hash: record_hash(s.record, signer.id, s.meaning, signed_at)?,
        entity_type: s.entity_type.to_owned(),
        entity_id: s.entity_id,
        batch_id: s.batch_id,
    };
    diesel::insert_into(signatures::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

/// Signatures on the given records, by record id, oldest first.
pub fn for_entities(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<SignatureRow>>, AppError> {
    let rows: Vec<SignatureRow> = signatures::table
        .filter(signatures::entity_id.eq_any(ids))
        .order(signatures::id)
        .select(SignatureRow::as_select())
        .load(conn)?;
    let mut map: HashMap<Uuid, Vec<SignatureRow>> = HashMap::new();
    for r in rows {
        map.entry(r.entity_id).or_default().push(r);
    }
    Ok(map)
}
