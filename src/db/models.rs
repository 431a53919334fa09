//! Row structs: what is read from and written to each table, and the
//! parsing of stored names into the domain's types.
//!
//! The field order of a row struct is its table's column order: the batch
//! record is read as binary records of whole rows, decoded by `Queryable`.

use crate::db::digest::HexDigest;
use crate::db::schema::{
    audit_chain_heads, audit_entries, batches, custody_events, deviations, email_outbox, products,
    results, sessions, signatures, spec_tests, specifications, users,
};
use crate::domain::decimal::Decimal;
use crate::domain::spec::{Limit, TestDef};
use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

/// A user account as stored.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub full_name: String,
    pub email: String,
    pub roles: Vec<String>,
    pub active: bool,
    pub password_hash: String,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub password_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set by someone else: signs nothing until its holder changes it.
    pub password_temporary: bool,
    /// The language pages, emails and certificates are shown in.
    pub locale: String,
}

/// A user to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub full_name: &'a str,
    pub email: &'a str,
    pub roles: Vec<String>,
    pub password_hash: &'a str,
    pub password_temporary: bool,
    pub locale: &'a str,
}

/// A sign-in session as stored.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub csrf_token: Option<String>,
}

/// A session to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub csrf_token: Option<String>,
}

/// An audit entry as stored, with its chain's name (read from the chain's
/// head: load from `audit_entries` joined to `audit_chain_heads`). Hashes
/// are hex, as the chain covers them.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_entries)]
pub struct AuditEntryRow {
    pub id: Uuid,
    #[diesel(select_expression = audit_chain_heads::chain)]
    #[diesel(select_expression_type = audit_chain_heads::chain)]
    pub chain: String,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_username: Option<String>,
    pub actor_full_name: Option<String>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<Uuid>,
    pub batch_id: Option<Uuid>,
    pub reason: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[diesel(deserialize_as = HexDigest)]
    pub prev_hash: String,
    #[diesel(deserialize_as = HexDigest)]
    pub hash: String,
    /// The rows the entry binds: `[{"hash", "id", "table"}]` (none before
    /// rows were bound, and for an entry that binds none).
    pub rows: Option<Value>,
}

/// An email to queue.
#[derive(Debug, Insertable)]
#[diesel(table_name = email_outbox)]
pub struct NewEmail<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub recipients: Vec<String>,
    pub subject: &'a str,
    pub body: &'a str,
    pub urgent: bool,
    pub link_path: Option<&'a str>,
}

/// An email waiting in the outbox.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_outbox)]
pub struct EmailRow {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub kind: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    pub urgent: bool,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub link_path: Option<String>,
}

/// A product.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub product_type: String,
    pub storage_min_c: Option<String>,
    pub storage_max_c: Option<String>,
    pub release_signatures_required: i16,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub audit_review_required: bool,
}

/// A specification version.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = specifications)]
pub struct SpecRow {
    pub id: Uuid,
    pub product_id: Uuid,
    pub version: String,
    pub status: String,
    pub author_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub superseded_at: Option<DateTime<Utc>>,
}

/// A test of a specification.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = spec_tests)]
pub struct SpecTestRow {
    pub spec_id: Uuid,
    pub position: i32,
    pub code: String,
    pub name: String,
    pub method: String,
    pub kind: String,
    pub unit: Option<String>,
    pub min_text: Option<String>,
    pub max_text: Option<String>,
    /// The limits as numbers, for queries; the rules read the text.
    pub min_value: Option<BigDecimal>,
    pub max_value: Option<BigDecimal>,
    pub min_inclusive: bool,
    pub max_inclusive: bool,
    pub decimals: Option<i16>,
    pub options: Option<Vec<String>>,
    pub allowed: Vec<String>,
    pub required: bool,
    pub pending_release_allowed: bool,
    pub qualification_required: bool,
    pub instrument_kind: Option<String>,
}

/// A batch.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = batches)]
pub struct BatchRow {
    pub id: Uuid,
    pub batch_number: String,
    pub product_id: Uuid,
    pub spec_id: Uuid,
    pub manufactured_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub donor_din: Option<String>,
    pub intended_recipient: Option<String>,
    pub quantity: Option<String>,
    pub unit: Option<String>,
    pub status: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A test result.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = results)]
pub struct ResultRow {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub test_code: String,
    pub value_text: String,
    /// The value as a number, for queries; the rules read the text.
    pub value_numeric: Option<BigDecimal>,
    pub unit: Option<String>,
    pub outcome: String,
    pub performed_by: Uuid,
    pub performed_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub instrument: Option<String>,
    pub comment: Option<String>,
    pub replaces_result_id: Option<Uuid>,
    pub reason: Option<String>,
    /// The instrument it was measured on.
    pub instrument_id: Option<Uuid>,
    /// The instrument export it was imported from.
    pub source_file_id: Option<Uuid>,
}

/// An electronic signature.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = signatures)]
pub struct SignatureRow {
    pub id: Uuid,
    pub signer_id: Uuid,
    pub signer_username: String,
    pub signer_full_name: String,
    pub meaning: String,
    pub signed_at: DateTime<Utc>,
    pub reason: Option<String>,
    #[diesel(deserialize_as = HexDigest, serialize_as = HexDigest)]
    pub record_hash: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub batch_id: Option<Uuid>,
    /// The statement the signer read, in their language (none before
    /// statements were kept: the meaning's English statement was shown).
    pub statement: Option<String>,
    pub statement_locale: Option<String>,
    /// The table of the row signed (none: signed before v1.2, when the
    /// record hash covered a record built by the use case).
    pub record_table: Option<String>,
    /// The id of the row signed.
    pub record_id: Option<Uuid>,
    /// The server's Ed25519 seal over the signature's canonical form.
    pub seal: Option<Vec<u8>>,
    /// The transaction that inserted it (set by the database).
    #[diesel(skip_insertion)]
    pub xact: Option<Xact>,
}

impl SignatureRow {
    /// The content its seal covers, as stored.
    pub fn sealed_content(&self) -> crate::domain::signature::SealedContent<'_> {
        crate::domain::signature::SealedContent {
            id: self.id,
            signer_id: self.signer_id,
            signer_username: &self.signer_username,
            signer_full_name: &self.signer_full_name,
            meaning: &self.meaning,
            signed_at: crate::domain::hashing::hash_timestamp(self.signed_at),
            reason: self.reason.as_deref(),
            record_hash: &self.record_hash,
            entity_type: &self.entity_type,
            entity_id: self.entity_id,
            batch_id: self.batch_id,
            statement: self.statement.as_deref(),
            statement_locale: self.statement_locale.as_deref(),
            record_table: self.record_table.as_deref(),
            record_id: self.record_id,
        }
    }
}

/// A transaction id (`xid8`), as a signature keeps the one that signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::FromSqlRow)]
pub struct Xact(pub u64);

impl diesel::deserialize::FromSql<crate::db::schema::sql_types::Xid8, diesel::pg::Pg> for Xact {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let bytes: [u8; 8] = value
            .as_bytes()
            .try_into()
            .map_err(|_| "an xid8 is 8 bytes")?;
        Ok(Xact(u64::from_be_bytes(bytes)))
    }
}

/// A deviation.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = deviations)]
pub struct DeviationRow {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub result_id: Option<Uuid>,
    pub kind: String,
    pub severity: String,
    pub status: String,
    pub title: String,
    pub description: String,
    pub opened_by: Option<Uuid>,
    pub opened_at: DateTime<Utc>,
    pub conclusion: Option<String>,
    pub root_cause: Option<String>,
    pub closed_by: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    /// What an impact deviation investigates (an instrument, a material lot).
    pub subject_id: Option<Uuid>,
    /// The results an impact deviation lists.
    pub result_ids: Option<Vec<Uuid>>,
}

/// A custody event.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = custody_events)]
pub struct CustodyRow {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub event: String,
    pub occurred_at: DateTime<Utc>,
    pub location: String,
    pub party: String,
    pub temperature_c: Option<String>,
    pub excursion: bool,
    pub container_id: Option<String>,
    pub recipient_id: Option<String>,
    pub internal: bool,
    pub notes: Option<String>,
    pub deviation_id: Option<Uuid>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub audit_entry_id: Uuid,
    pub seq: i64,
    #[diesel(deserialize_as = HexDigest, serialize_as = HexDigest)]
    pub prev_hash: String,
}

/// A stored value that does not parse as the domain type it must be: the
/// database was changed outside cellqc. Never the client's fault (a 500).
#[derive(Debug, thiserror::Error)]
#[error("the stored {what} `{value}` is not valid")]
pub struct StoredValueError {
    /// What was read.
    pub what: &'static str,
    /// The text found.
    pub value: String,
}

/// Parses a stored name (a status, an outcome, a meaning, ...) into its
/// domain type, once, where the row is read.
pub fn parse_stored<T: std::str::FromStr>(
    what: &'static str,
    value: &str,
) -> Result<T, StoredValueError> {
    value.parse().map_err(|_| StoredValueError {
        what,
        value: value.to_owned(),
    })
}

impl SpecTestRow {
    /// The stored test in domain form.
    pub fn to_test_def(&self) -> Result<TestDef, StoredValueError> {
        let limit = |text: &Option<String>, inclusive: bool| {
            text.as_deref()
                .map(|t| {
                    Decimal::from_stored(t)
                        .map(|value| Limit { value, inclusive })
                        .map_err(|_| StoredValueError {
                            what: "limit",
                            value: t.to_owned(),
                        })
                })
                .transpose()
        };
        Ok(TestDef {
            code: self.code.clone(),
            name: self.name.clone(),
            method: self.method.clone(),
            kind: parse_stored("test kind", &self.kind)?,
            unit: self.unit.clone(),
            min: limit(&self.min_text, self.min_inclusive)?,
            max: limit(&self.max_text, self.max_inclusive)?,
            decimals: self.decimals.and_then(|d| u32::try_from(d).ok()),
            options: self.options.clone(),
            allowed: self.allowed.clone(),
            required: self.required,
            pending_release_allowed: self.pending_release_allowed,
            qualification_required: self.qualification_required,
            instrument_kind: self.instrument_kind.clone(),
        })
    }
}

/// A qualification grant as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::db::schema::qualifications)]
pub struct QualificationRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub test_code: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub granted_by: Uuid,
    pub granted_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<Uuid>,
    pub revoke_reason: Option<String>,
}

impl QualificationRow {
    /// The grant as the rules read it.
    pub fn to_domain(&self) -> crate::domain::qualification::Qualification {
        crate::domain::qualification::Qualification {
            id: self.id,
            user_id: self.user_id,
            test_code: self.test_code.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            revoked_at: self.revoked_at,
        }
    }
}

/// An instrument as registered.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::db::schema::instruments)]
pub struct InstrumentRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub location: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
}

/// One event of an instrument's history.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::db::schema::instrument_events)]
pub struct InstrumentEventRow {
    pub id: Uuid,
    pub instrument_id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub outcome: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    pub certificate: Option<String>,
    pub notes: Option<String>,
    pub reason: Option<String>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
}

impl InstrumentEventRow {
    /// The event as the rules read it (stored names parsed here).
    pub fn to_domain(&self) -> Result<crate::domain::instrument::Event, crate::error::AppError> {
        use crate::domain::instrument::{Event, EventKind};
        let kind = match (
            self.kind.as_str(),
            self.outcome.as_deref(),
            self.valid_until,
        ) {
            ("calibration", Some(outcome), Some(valid_until)) => EventKind::Calibration {
                passed: outcome == "pass",
                valid_until,
            },
            ("out_of_service", _, _) => EventKind::OutOfService,
            ("returned", _, _) => EventKind::Returned,
            (other, _, _) => {
                return Err(crate::error::AppError::Internal(anyhow::anyhow!(
                    "instrument event {} has an unknown kind {other}",
                    self.id
                )));
            }
        };
        Ok(Event { at: self.at, kind })
    }
}

/// A material lot as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::db::schema::material_lots)]
pub struct MaterialLotRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub lot_number: String,
    pub supplier: Option<String>,
    pub kind: String,
    pub expires_at: DateTime<Utc>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub released_at: Option<DateTime<Utc>>,
    pub released_by: Option<Uuid>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejected_by: Option<Uuid>,
    pub reject_reason: Option<String>,
}

impl MaterialLotRow {
    /// The lot as the rule reads it.
    pub fn to_domain(&self) -> crate::domain::material::Lot {
        crate::domain::material::Lot {
            label: format!("{} lot {}", self.code, self.lot_number),
            released_at: self.released_at,
            rejected_at: self.rejected_at,
            expires_at: self.expires_at,
        }
    }
}
