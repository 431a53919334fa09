//! Qualifications (21 CFR 211.25, 11.10(i)): QA qualifies an analyst for a
//! test code until a date, with a signature, never themselves; and withdraws
//! a qualification, signed too. Both are written to the system chain. The
//! rule at each result is `domain::qualification::check_qualified`, asked by
//! `results::record_result`.

use super::audit::{self, AuditRecord};
use super::signatures::{self, Signing, SigningRules};
use super::{Actor, in_transaction};
use crate::db::models::{QualificationRow, UserRow};
use crate::db::schema::{qualifications, spec_tests, users};
use crate::domain::audit::SYSTEM_CHAIN;
use crate::domain::audit_event::AuditEvent;
use crate::domain::qualification::{GrantQualification, RevokeQualification};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::Code;
use crate::error::{AppError, FieldError};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// A qualification as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QualificationView {
    /// Grant id.
    pub id: Uuid,
    /// The analyst.
    pub user_id: Uuid,
    /// Their username.
    pub username: String,
    /// The test code it covers.
    pub test_code: String,
    /// From when (the grant's signing, or the training it records).
    pub valid_from: DateTime<Utc>,
    /// Until when.
    pub valid_until: DateTime<Utc>,
    /// Who granted it.
    pub granted_by: Uuid,
    /// The grant's comment.
    pub reason: Option<String>,
    /// When it was withdrawn.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who withdrew it.
    pub revoked_by: Option<Uuid>,
    /// Why.
    pub revoke_reason: Option<String>,
    /// `valid`, `expired` or `revoked`, now.
    pub status: &'static str,
}

impl QualificationView {
    fn of(q: &QualificationRow, username: &str) -> Self {
        let now = Utc::now();
        let status = if q.revoked_at.is_some() {
            "revoked"
        } else if q.valid_until < now {
            "expired"
        } else {
            "valid"
        };
        QualificationView {
            id: q.id,
            user_id: q.user_id,
            username: username.to_owned(),
            test_code: q.test_code.clone(),
            valid_from: q.valid_from,
            valid_until: q.valid_until,
            granted_by: q.granted_by,
            reason: q.reason.clone(),
            revoked_at: q.revoked_at,
            revoked_by: q.revoked_by,
            revoke_reason: q.revoke_reason.clone(),
            status,
        }
    }
}

fn record_of(q: &QualificationRow) -> Value {
    json!({
        "id": q.id,
        "user_id": q.user_id,
        "test_code": q.test_code,
        "valid_from": q.valid_from,
        "valid_until": q.valid_until,
        "granted_by": q.granted_by,
        "revoked_at": q.revoked_at,
        "revoked_by": q.revoked_by,
    })
}

fn active_user(conn: &mut PgConnection, id: Uuid) -> Result<UserRow, AppError> {
    let user: Option<UserRow> = users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    match user {
        None => Err(AppError::refused(
            Code::UserNotFound,
            format!("no user {id}"),
        )),
        Some(u) if !u.active => Err(AppError::refused(
            Code::UserInactive,
            format!("{} is deactivated: nobody qualifies a leaver", u.username),
        )),
        Some(u) => Ok(u),
    }
}

/// Qualifies `user_id` for a test code (signed `qualification_granted`).
pub fn grant(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    user_id: Uuid,
    input: &GrantQualification,
) -> Result<QualificationView, AppError> {
    actor.authorize(Action::Sign(Meaning::QualificationGranted))?;
    if actor.id == user_id {
        return Err(AppError::refused(
            Code::OwnAccount,
            "nobody qualifies themselves: another QA person must",
        ));
    }
    let mut errors = Vec::new();
    let code = input.test_code.as_str().to_owned();
    let reason = input.reason.as_deref().map(str::to_owned);
    let now = Utc::now().trunc_subsecs(6);
    let valid_from = input.valid_from.map_or(now, |f| f.trunc_subsecs(6));
    if valid_from > now {
        errors.push(FieldError::said(
            "valid_from",
            "fe-must-not-be-in-the-future",
            &[],
        ));
    } else if valid_from < now - Duration::days(366) {
        errors.push(FieldError::said(
            "valid_from",
            "fe-is-more-than-a-year-ago",
            &[],
        ));
    }
    if input.valid_until <= now {
        errors.push(FieldError::said(
            "valid_until",
            "fe-must-be-in-the-future",
            &[],
        ));
    } else if input.valid_until > now + Duration::days(3 * 366) {
        errors.push(FieldError::said(
            "valid_until",
            "fe-is-more-than-three-years-ahead-requalify-at-least-that-often",
            &[],
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    in_transaction(conn, |c| {
        let user = active_user(c, user_id)?;
        let known: bool = diesel::select(diesel::dsl::exists(
            spec_tests::table.filter(spec_tests::code.eq(&code)),
        ))
        .get_result(c)?;
        if !known {
            return Err(AppError::invalid_field_with(
                "test_code",
                "fe-no-spec-has-test",
                &[("code", code.to_string())],
            ));
        }
        if let Err(refusal) = signatures::verify_signer(c, rules.lockout, actor, &input.password)? {
            return Ok(Err(refusal));
        }
        let row = QualificationRow {
            id: Uuid::now_v7(),
            user_id,
            test_code: code.clone(),
            valid_from,
            valid_until: input.valid_until,
            granted_by: actor.id,
            granted_at: now,
            reason: reason.clone(),
            revoked_at: None,
            revoked_by: None,
            revoke_reason: None,
        };
        diesel::insert_into(qualifications::table)
            .values(&row)
            .execute(c)?;
        let record = record_of(&row);
        let sig = signatures::record(
            c,
            rules,
            actor,
            &Signing {
                meaning: Meaning::QualificationGranted,
                entity_type: "qualification",
                entity_id: row.id,
                batch_id: None,
                reason: reason.as_deref(),
                signs: row.id,
            },
        )?;
        let mut after = record.clone();
        if let Value::Object(f) = &mut after {
            f.insert("username".into(), json!(user.username));
            f.insert("signature_id".into(), json!(sig.id));
            f.insert("record_hash".into(), json!(sig.record_hash));
        }
        let mut rec = AuditRecord::new(
            SYSTEM_CHAIN,
            Some(actor),
            AuditEvent::QualificationGranted,
            "qualification",
            Some(row.id),
        )
        .after(after);
        rec.reason = reason.as_deref();
        audit::append(c, rec)?;
        Ok(Ok(QualificationView::of(&row, &user.username)))
    })?
}

/// Withdraws a qualification (signed `qualification_revoked`), once.
pub fn revoke(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    id: Uuid,
    cmd: &RevokeQualification,
) -> Result<QualificationView, AppError> {
    actor.authorize(Action::Sign(Meaning::QualificationRevoked))?;
    let (reason, password) = (cmd.reason.as_str(), cmd.password.as_str());
    in_transaction(conn, |c| {
        let before: QualificationRow = qualifications::table
            .find(id)
            .select(QualificationRow::as_select())
            .for_update()
            .first(c)
            .optional()?
            .ok_or_else(|| {
                AppError::refused(
                    Code::QualificationNotFound,
                    format!("no qualification {id}"),
                )
            })?;
        if before.revoked_at.is_some() {
            return Err(AppError::refused(
                Code::AlreadyRevoked,
                "this qualification was withdrawn already",
            ));
        }
        if let Err(refusal) = signatures::verify_signer(c, rules.lockout, actor, password)? {
            return Ok(Err(refusal));
        }
        let after: QualificationRow = diesel::update(qualifications::table.find(id))
            .set((
                qualifications::revoked_at.eq(Utc::now().trunc_subsecs(6)),
                qualifications::revoked_by.eq(actor.id),
                qualifications::revoke_reason.eq(Some(reason)),
            ))
            .returning(QualificationRow::as_returning())
            .get_result(c)?;
        let record = record_of(&after);
        let sig = signatures::record(
            c,
            rules,
            actor,
            &Signing {
                meaning: Meaning::QualificationRevoked,
                entity_type: "qualification",
                entity_id: id,
                batch_id: None,
                reason: Some(reason),
                signs: id,
            },
        )?;
        let mut after_json = record.clone();
        if let Value::Object(f) = &mut after_json {
            f.insert("signature_id".into(), json!(sig.id));
        }
        let mut rec = AuditRecord::new(
            SYSTEM_CHAIN,
            Some(actor),
            AuditEvent::QualificationRevoked,
            "qualification",
            Some(id),
        )
        .signed_change(&record_of(&before), after_json);
        rec.reason = Some(reason);
        audit::append(c, rec)?;
        let username: String = users::table
            .find(after.user_id)
            .select(users::username)
            .first(c)?;
        Ok(Ok(QualificationView::of(&after, &username)))
    })?
}

/// A person's qualifications, newest first.
pub fn of_user(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<QualificationView>, AppError> {
    let user = users::table
        .find(user_id)
        .select(users::username)
        .first::<String>(conn)
        .optional()?
        .ok_or_else(|| AppError::refused(Code::UserNotFound, format!("no user {user_id}")))?;
    Ok(qualifications::table
        .filter(qualifications::user_id.eq(user_id))
        .order(qualifications::id.desc())
        .select(QualificationRow::as_select())
        .load(conn)?
        .iter()
        .map(|q| QualificationView::of(q, &user))
        .collect())
}

/// Qualifications in force that expire within `days`, soonest first (QA's
/// work list).
pub fn expiring(conn: &mut PgConnection, days: i64) -> Result<Vec<QualificationView>, AppError> {
    let now = Utc::now();
    let rows: Vec<(QualificationRow, String)> = qualifications::table
        .inner_join(users::table.on(users::id.eq(qualifications::user_id)))
        .filter(qualifications::revoked_at.is_null())
        .filter(qualifications::valid_until.ge(now))
        .filter(qualifications::valid_until.lt(now + Duration::days(days)))
        .order(qualifications::valid_until)
        .limit(500)
        .select((QualificationRow::as_select(), users::username))
        .load(conn)?;
    Ok(rows
        .iter()
        .map(|(q, u)| QualificationView::of(q, u))
        .collect())
}

/// The qualification matrix: analysts (active technicians) by the test codes
/// that require a qualification, with the grants in force.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    /// Active technicians: id, username, printed name.
    pub analysts: Vec<(Uuid, String, String)>,
    /// Test codes some specification asks a qualification for.
    pub codes: Vec<String>,
    /// Grants neither withdrawn nor expired.
    pub in_force: Vec<QualificationView>,
}

impl Matrix {
    /// The grant in force for `user` and `code`, the longest-lasting one.
    pub fn cell(&self, user: Uuid, code: &str) -> Option<&QualificationView> {
        self.in_force
            .iter()
            .filter(|q| q.user_id == user && q.test_code == code)
            .max_by_key(|q| q.valid_until)
    }
}

/// Reads the matrix.
pub fn matrix(conn: &mut PgConnection) -> Result<Matrix, AppError> {
    let analysts: Vec<(Uuid, String, String)> = users::table
        .filter(users::active.eq(true))
        .filter(users::roles.contains(vec![
            crate::domain::roles::Role::Technician.as_str().to_owned(),
        ]))
        .order(users::username)
        .select((users::id, users::username, users::full_name))
        .load(conn)?;
    let mut codes: Vec<String> = spec_tests::table
        .filter(spec_tests::qualification_required.eq(true))
        .select(spec_tests::code)
        .distinct()
        .order(spec_tests::code)
        .load(conn)?;
    let now = Utc::now();
    let rows: Vec<(QualificationRow, String)> = qualifications::table
        .inner_join(users::table.on(users::id.eq(qualifications::user_id)))
        .filter(qualifications::revoked_at.is_null())
        .filter(qualifications::valid_until.ge(now))
        .select((QualificationRow::as_select(), users::username))
        .load(conn)?;
    // Tests someone is qualified for are shown too, required or not yet.
    for (q, _) in &rows {
        if !codes.contains(&q.test_code) {
            codes.push(q.test_code.clone());
        }
    }
    codes.sort();
    Ok(Matrix {
        analysts,
        codes,
        in_force: rows
            .iter()
            .map(|(q, u)| QualificationView::of(q, u))
            .collect(),
    })
}
