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
}

impl Meaning {
    /// The sentence the signer agrees to, in the signer's language (the
    /// message `statement-<meaning>`).
    pub fn statement(self, locale: crate::i18n::Locale) -> String {
        locale.text(&format!("statement-{}", self.as_str().replace('_', "-")))
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
