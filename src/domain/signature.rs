//! Electronic signatures (21 CFR 11.50, 11.70): what a signature means and
//! the hash that links it to the record signed.

use super::StoredName;
use super::hashing::{canonical_json, hash_timestamp, sha256_hex};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use strum::{EnumString, IntoStaticStr, VariantArray};
use utoipa::ToSchema;
use uuid::Uuid;

/// The meaning of a signature, as shown with it. Who may sign each meaning
/// is [`crate::domain::roles::signer_roles`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    ToSchema,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Meaning {
    /// A reviewer accepted a result.
    Reviewed,
    /// A reviewer rejected a result.
    ReviewRejected,
    /// QA approved a specification.
    SpecApproved,
    /// QA released a batch.
    Released,
    /// QA released a batch before every result was in.
    ConditionallyReleased,
    /// QA rejected a batch.
    Rejected,
    /// QA recalled a batch.
    Recalled,
    /// QA closed a deviation.
    DeviationClosed,
    /// QA qualified an analyst for a test.
    QualificationGranted,
    /// QA withdrew an analyst's qualification.
    QualificationRevoked,
    /// QA returned an instrument to service.
    InstrumentReturned,
    /// QA released a material lot from quarantine.
    MaterialReleased,
    /// QA rejected a material lot.
    MaterialRejected,
    /// QA read the exceptions of a batch's audit trail up to a chain position.
    AuditTrailReviewed,
    /// QA opened a post-release correction of a result of a decided batch.
    CorrectionOpened,
}

impl Meaning {
    /// The sentence the signer agrees to, in the signer's language (the
    /// message `statement-<meaning>`).
    pub fn statement(self, locale: crate::i18n::Locale) -> String {
        locale.text(&format!("statement-{}", self.as_str().replace('_', "-")))
    }
}

/// The table of the row a signature of some meaning signs. The record hash
/// of a signature made since v1.2 covers that row's signed form (see
/// [`Meaning::changes_after`]); verification recomputes it from the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum SignedTable {
    /// A result (reviews).
    Results,
    /// A specification with its tests (approval).
    Specifications,
    /// A batch (release, conditional release, rejection, recall).
    Batches,
    /// A deviation (closing; opening a post-release correction).
    Deviations,
    /// A qualification (grant, withdrawal).
    Qualifications,
    /// An instrument's return to service.
    InstrumentEvents,
    /// A material lot (release, rejection).
    MaterialLots,
    /// An audit entry: the position of a batch's trail QA reviewed up to
    /// (its signed form is the entry's hash, which the chain proves).
    AuditEntries,
}

impl Meaning {
    /// The table of the row this meaning signs.
    pub fn signs(self) -> SignedTable {
        match self {
            Meaning::Reviewed | Meaning::ReviewRejected => SignedTable::Results,
            Meaning::SpecApproved => SignedTable::Specifications,
            Meaning::Released
            | Meaning::ConditionallyReleased
            | Meaning::Rejected
            | Meaning::Recalled => SignedTable::Batches,
            Meaning::DeviationClosed | Meaning::CorrectionOpened => SignedTable::Deviations,
            Meaning::QualificationGranted | Meaning::QualificationRevoked => {
                SignedTable::Qualifications
            }
            Meaning::InstrumentReturned => SignedTable::InstrumentEvents,
            Meaning::MaterialReleased | Meaning::MaterialRejected => SignedTable::MaterialLots,
            Meaning::AuditTrailReviewed => SignedTable::AuditEntries,
        }
    }

    /// The columns of the signed row that a later, itself signed or
    /// audited, step may still change (a released batch is recalled, an
    /// effective specification superseded): the signed form leaves them
    /// out, so that the signature still matches its row after them.
    pub fn changes_after(self) -> &'static [&'static str] {
        match self {
            Meaning::SpecApproved => &["status", "superseded_at"],
            Meaning::Released
            | Meaning::ConditionallyReleased
            | Meaning::Rejected
            | Meaning::Recalled => &["status", "updated_at"],
            Meaning::QualificationGranted => &["revoked_at", "revoked_by", "revoke_reason"],
            Meaning::MaterialReleased => &["status", "rejected_at", "rejected_by", "reject_reason"],
            Meaning::CorrectionOpened => &[
                "status",
                "conclusion",
                "root_cause",
                "closed_by",
                "closed_at",
            ],
            Meaning::Reviewed
            | Meaning::ReviewRejected
            | Meaning::DeviationClosed
            | Meaning::QualificationRevoked
            | Meaning::InstrumentReturned
            | Meaning::MaterialRejected
            | Meaning::AuditTrailReviewed => &[],
        }
    }
}

/// The record a signature made since v1.2 signs: a row, named, with the
/// SHA-256 of its signed form as the database writes it.
pub fn signed_row(table: SignedTable, id: Uuid, form_hex: &str) -> Value {
    json!({"table": table.as_str(), "id": id, "form": form_hex})
}

/// A signature row's content, as its seal covers it.
#[derive(Debug, Clone, Serialize)]
pub struct SealedContent<'a> {
    /// Signature id.
    pub id: Uuid,
    /// Signer's id.
    pub signer_id: Uuid,
    /// Signer's username, as at signing.
    pub signer_username: &'a str,
    /// Signer's printed name, as at signing.
    pub signer_full_name: &'a str,
    /// Meaning.
    pub meaning: &'a str,
    /// Time of signing, in the hashes' one format.
    pub signed_at: String,
    /// Reason or comment.
    pub reason: Option<&'a str>,
    /// Record hash, hex.
    pub record_hash: &'a str,
    /// Kind of record signed.
    pub entity_type: &'a str,
    /// Record signed.
    pub entity_id: Uuid,
    /// Its batch.
    pub batch_id: Option<Uuid>,
    /// The statement the signer read.
    pub statement: Option<&'a str>,
    /// Its language.
    pub statement_locale: Option<&'a str>,
    /// The table of the row signed.
    pub record_table: Option<&'a str>,
    /// The row signed.
    pub record_id: Option<Uuid>,
}

impl SealedContent<'_> {
    /// The bytes the seal signs: the canonical JSON (RFC 8785).
    pub fn canonical(&self) -> Result<Vec<u8>, serde_json::Error> {
        canonical_json(self)
    }
}

/// `SHA-256` of the canonical JSON of the record signed together with the
/// signer, the meaning and the signing time: a signature can't be copied onto
/// another record, another signer or another moment.
pub fn record_hash(
    record: &Value,
    signer_id: Uuid,
    meaning: Meaning,
    signed_at: DateTime<Utc>,
) -> Result<String, serde_json::Error> {
    let signed = json!({
        "record": record,
        "signer_id": signer_id,
        "meaning": meaning.as_str(),
        "signed_at": hash_timestamp(signed_at),
    });
    Ok(sha256_hex(&[&canonical_json(&signed)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_changes_with_record_signer_meaning_and_time() {
        let at = Utc::now();
        let signer = Uuid::from_u128(1);
        let rec = json!({"id": 1, "value": "95.0"});
        let base = record_hash(&rec, signer, Meaning::Reviewed, at).unwrap();
        assert_eq!(base.len(), 64);
        assert_eq!(
            base,
            record_hash(&rec, signer, Meaning::Reviewed, at).unwrap()
        );
        assert_ne!(
            base,
            record_hash(
                &json!({"id": 1, "value": "95.1"}),
                signer,
                Meaning::Reviewed,
                at
            )
            .unwrap()
        );
        assert_ne!(
            base,
            record_hash(&rec, Uuid::from_u128(2), Meaning::Reviewed, at).unwrap()
        );
        assert_ne!(
            base,
            record_hash(&rec, signer, Meaning::ReviewRejected, at).unwrap()
        );
        assert_ne!(
            base,
            record_hash(
                &rec,
                signer,
                Meaning::Reviewed,
                at + chrono::Duration::microseconds(1)
            )
            .unwrap()
        );
    }
}
