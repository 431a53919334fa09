//! The trail's vocabulary: every action an audit entry records, one
//! variant each, stored by its `subject.verb` name (`result.recorded`).
//! Writers name a variant; the audit-trail review's classification, the
//! history sentences and the load generator's fill match on variants, so a
//! renamed action can't silently change what QA sees as an exception.
//! Entries written under a name this build does not know (an older or newer
//! version's) read as [`Recorded::Other`], never as an error, and their
//! stored bytes (and so their hashes) never change.
//!
//! The payloads the readers look into are typed too ([`ResultRecorded`],
//! [`CustodyRecorded`], [`StatusChange`], [`Refused`]): the writers
//! serialize them and the readers deserialize them, and the golden tests
//! below pin their bytes, so no stored hash changes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::{EnumIter, EnumString, IntoStaticStr};
use uuid::Uuid;

#[cfg(test)]
use crate::domain::StoredName;
use crate::domain::batch::BatchStatus;
use crate::domain::custody::CustodyEvent;
use crate::domain::spec::Outcome;

/// An action of the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
pub enum AuditEvent {
    #[strum(serialize = "audit.verified")]
    AuditVerified,
    #[strum(serialize = "auth.account_locked")]
    AuthAccountLocked,
    #[strum(serialize = "auth.login")]
    AuthLogin,
    #[strum(serialize = "auth.login_failed")]
    AuthLoginFailed,
    #[strum(serialize = "auth.logout")]
    AuthLogout,
    #[strum(serialize = "auth.password_changed")]
    AuthPasswordChanged,
    #[strum(serialize = "auth.password_failed")]
    AuthPasswordFailed,
    #[strum(serialize = "auth.refused_locked")]
    AuthRefusedLocked,
    #[strum(serialize = "auth.session_timed_out")]
    AuthSessionTimedOut,
    #[strum(serialize = "auth.sessions_revoked")]
    AuthSessionsRevoked,
    #[strum(serialize = "auth.sign_in_held_off")]
    AuthSignInHeldOff,
    #[strum(serialize = "auth.signature_refused")]
    AuthSignatureRefused,
    #[strum(serialize = "auth.write_refused")]
    AuthWriteRefused,
    #[strum(serialize = "batch.audit_reviewed")]
    BatchAuditReviewed,
    #[strum(serialize = "batch.conditionally_released")]
    BatchConditionallyReleased,
    #[strum(serialize = "batch.created")]
    BatchCreated,
    #[strum(serialize = "batch.recalled")]
    BatchRecalled,
    #[strum(serialize = "batch.rejected")]
    BatchRejected,
    #[strum(serialize = "batch.release_refused")]
    BatchReleaseRefused,
    #[strum(serialize = "batch.release_signed")]
    BatchReleaseSigned,
    #[strum(serialize = "batch.released")]
    BatchReleased,
    #[strum(serialize = "custody.identity_refused")]
    CustodyIdentityRefused,
    #[strum(serialize = "custody.recorded")]
    CustodyRecorded,
    #[strum(serialize = "deviation.closed")]
    DeviationClosed,
    #[strum(serialize = "deviation.opened")]
    DeviationOpened,
    #[strum(serialize = "import_mapping.created")]
    ImportMappingCreated,
    #[strum(serialize = "import_mapping.replaced")]
    ImportMappingReplaced,
    #[strum(serialize = "import_mapping.retired")]
    ImportMappingRetired,
    #[strum(serialize = "instrument.calibrated")]
    InstrumentCalibrated,
    #[strum(serialize = "instrument.calibration_failed")]
    InstrumentCalibrationFailed,
    #[strum(serialize = "instrument.out_of_service")]
    InstrumentOutOfService,
    #[strum(serialize = "instrument.registered")]
    InstrumentRegistered,
    #[strum(serialize = "instrument.returned")]
    InstrumentReturned,
    #[strum(serialize = "material.received")]
    MaterialReceived,
    #[strum(serialize = "material.rejected")]
    MaterialRejected,
    #[strum(serialize = "material.released")]
    MaterialReleased,
    #[strum(serialize = "material.used")]
    MaterialUsed,
    #[strum(serialize = "product.created")]
    ProductCreated,
    #[strum(serialize = "qualification.granted")]
    QualificationGranted,
    #[strum(serialize = "qualification.revoked")]
    QualificationRevoked,
    #[strum(serialize = "record.bound_at_upgrade")]
    RecordBoundAtUpgrade,
    #[strum(serialize = "result.invalidated")]
    ResultInvalidated,
    #[strum(serialize = "result.recorded")]
    ResultRecorded,
    #[strum(serialize = "result.review_rejected")]
    ResultReviewRejected,
    #[strum(serialize = "result.reviewed")]
    ResultReviewed,
    #[strum(serialize = "result.superseded")]
    ResultSuperseded,
    #[strum(serialize = "source_file.stored")]
    SourceFileStored,
    #[strum(serialize = "specification.approved")]
    SpecificationApproved,
    #[strum(serialize = "specification.created")]
    SpecificationCreated,
    #[strum(serialize = "specification.superseded")]
    SpecificationSuperseded,
    #[strum(serialize = "user.created")]
    UserCreated,
    #[strum(serialize = "user.deactivated")]
    UserDeactivated,
    #[strum(serialize = "user.locale_changed")]
    UserLocaleChanged,
    #[strum(serialize = "user.password_reset")]
    UserPasswordReset,
    #[strum(serialize = "user.reactivated")]
    UserReactivated,
    #[strum(serialize = "user.unlocked")]
    UserUnlocked,
    #[strum(serialize = "user.updated")]
    UserUpdated,
}

/// A stored entry's action as this build reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded<'a> {
    /// An action of this build's vocabulary.
    Known(AuditEvent),
    /// A name this build does not know (kept and shown as stored).
    Other(&'a str),
}

impl AuditEvent {
    /// The stored name: `result.recorded`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A stored action name, as this build reads it.
    pub fn read(stored: &str) -> Recorded<'_> {
        stored
            .parse::<AuditEvent>()
            .map_or(Recorded::Other(stored), Recorded::Known)
    }

    /// The action of a batch's move to `to` (`batch.released`): the
    /// disposition's own entry; none for quarantine, which no batch moves to.
    pub fn batch_became(to: BatchStatus) -> Option<AuditEvent> {
        match to {
            BatchStatus::Released => Some(AuditEvent::BatchReleased),
            BatchStatus::ConditionallyReleased => Some(AuditEvent::BatchConditionallyReleased),
            BatchStatus::Rejected => Some(AuditEvent::BatchRejected),
            BatchStatus::Recalled => Some(AuditEvent::BatchRecalled),
            BatchStatus::Quarantine => None,
        }
    }

    /// Whether the action records a batch's disposition (released,
    /// conditionally released, rejected, recalled).
    pub fn is_disposition(self) -> bool {
        matches!(
            self,
            AuditEvent::BatchReleased
                | AuditEvent::BatchConditionallyReleased
                | AuditEvent::BatchRejected
                | AuditEvent::BatchRecalled
        )
    }
}

impl std::fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads an entry's value as the payload `T` of its action; none when the
/// value is not of that shape (an entry an older version wrote otherwise):
/// the readers then show the entry rather than assume it routine.
pub fn payload<T: for<'de> Deserialize<'de>>(value: Option<&Value>) -> Option<T> {
    value.and_then(|v| T::deserialize(v).ok())
}

/// The payload (`after`) of `result.recorded`: the result as recorded.
/// Its serialized form is under stored hashes: a field renamed here fails
/// the golden test below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecorded {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub test_code: String,
    pub value: String,
    pub unit: Option<String>,
    pub outcome: Outcome,
    pub performed_by: Uuid,
    pub performed_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub instrument: Option<String>,
    pub comment: Option<String>,
    pub replaces_result_id: Option<Uuid>,
    pub reason: Option<String>,
    /// Named only when there is one: a result without a registered
    /// instrument or lots is recorded exactly as before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrument_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub material_ids: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file_id: Option<Uuid>,
}

/// The payload (`after`) of `custody.recorded`: the event as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustodyRecorded {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub event: CustodyEvent,
    pub occurred_at: DateTime<Utc>,
    pub location: String,
    pub party: String,
    pub temperature_c: Option<String>,
    pub excursion: bool,
    pub deviation_id: Option<Uuid>,
    pub container_id: Option<String>,
    pub recipient_id: Option<String>,
    pub internal: bool,
    pub notes: Option<String>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
}

/// What the readers take from an entry whose `after` carries a status
/// (a batch's disposition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: Option<String>,
}

/// The payload of a refused action kept on a batch (`batch.release_refused`,
/// `custody.identity_refused`): the refusal's code and words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    pub code: Option<String>,
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn every_action_reads_back_from_its_stored_name_and_an_unknown_one_is_kept() {
        for a in AuditEvent::iter() {
            assert_eq!(AuditEvent::read(a.as_str()), Recorded::Known(a));
            let (subject, verb) = a.as_str().split_once('.').unwrap();
            assert!(!subject.is_empty() && !verb.is_empty(), "{a}");
        }
        assert_eq!(
            AuditEvent::read("something.new"),
            Recorded::Other("something.new")
        );
    }

    #[test]
    fn the_stored_names_are_the_ones_earlier_versions_wrote() {
        // Golden: these names are in stored entries, under their hashes.
        let names: Vec<&str> = AuditEvent::iter().map(AuditEvent::as_str).collect();
        assert_eq!(names.len(), 57);
        for stored in [
            "batch.created",
            "result.recorded",
            "result.reviewed",
            "result.review_rejected",
            "result.superseded",
            "result.invalidated",
            "deviation.opened",
            "deviation.closed",
            "custody.recorded",
            "batch.release_signed",
            "batch.released",
            "batch.audit_reviewed",
            "material.used",
            "auth.login",
            "user.created",
        ] {
            assert!(names.contains(&stored), "{stored}");
        }
        assert_eq!(
            AuditEvent::batch_became(BatchStatus::Recalled).map(AuditEvent::as_str),
            Some("batch.recalled")
        );
        for to in [
            BatchStatus::Released,
            BatchStatus::ConditionallyReleased,
            BatchStatus::Rejected,
            BatchStatus::Recalled,
        ] {
            let a = AuditEvent::batch_became(to).unwrap();
            assert!(a.is_disposition());
            assert_eq!(a.as_str(), format!("batch.{}", to.as_str()));
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    /// Golden: the bytes a `result.recorded` entry's `after` hashes as. A
    /// renamed or retyped field changes them and fails here, before any
    /// stored hash could disagree.
    #[test]
    fn a_recorded_result_serializes_to_the_bytes_stored_entries_hash() {
        let mut r = ResultRecorded {
            id: id(1),
            batch_id: id(2),
            test_code: "VIAB".into(),
            value: "91.0".into(),
            unit: Some("%".into()),
            outcome: Outcome::Pass,
            performed_by: id(3),
            performed_at: at("2026-11-01T08:00:00Z"),
            recorded_at: at("2026-11-01T09:30:00.123456Z"),
            instrument: None,
            comment: Some("read twice".into()),
            replaces_result_id: None,
            reason: None,
            instrument_id: None,
            material_ids: Vec::new(),
            source_file_id: None,
        };
        let bytes = crate::domain::hashing::canonical_json(&r).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"batch_id":"02020202-0202-0202-0202-020202020202","comment":"read twice","id":"01010101-0101-0101-0101-010101010101","instrument":null,"outcome":"pass","performed_at":"2026-11-01T08:00:00Z","performed_by":"03030303-0303-0303-0303-030303030303","reason":null,"recorded_at":"2026-11-01T09:30:00.123456Z","replaces_result_id":null,"test_code":"VIAB","unit":"%","value":"91.0"}"#
        );
        // The instrument, lots and file only when there are some.
        r.instrument_id = Some(id(4));
        r.material_ids = vec![id(5)];
        r.source_file_id = Some(id(6));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["instrument_id"], "04040404-0404-0404-0404-040404040404");
        assert_eq!(v["material_ids"][0], "05050505-0505-0505-0505-050505050505");
        assert_eq!(v["source_file_id"], "06060606-0606-0606-0606-060606060606");
        assert_eq!(payload::<ResultRecorded>(Some(&v)), Some(r));
    }

    #[test]
    fn a_custody_event_serializes_to_the_bytes_stored_entries_hash() {
        let c = CustodyRecorded {
            id: id(1),
            batch_id: id(2),
            event: CustodyEvent::Shipped,
            occurred_at: at("2026-11-02T10:00:00Z"),
            location: "QC dispatch".into(),
            party: "courier".into(),
            temperature_c: Some("-180".into()),
            excursion: false,
            deviation_id: None,
            container_id: Some("DS-7".into()),
            recipient_id: None,
            internal: false,
            notes: None,
            recorded_by: id(3),
            recorded_at: at("2026-11-02T10:00:05Z"),
        };
        let bytes = crate::domain::hashing::canonical_json(&c).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"batch_id":"02020202-0202-0202-0202-020202020202","container_id":"DS-7","deviation_id":null,"event":"shipped","excursion":false,"id":"01010101-0101-0101-0101-010101010101","internal":false,"location":"QC dispatch","notes":null,"occurred_at":"2026-11-02T10:00:00Z","party":"courier","recipient_id":null,"recorded_at":"2026-11-02T10:00:05Z","recorded_by":"03030303-0303-0303-0303-030303030303","temperature_c":"-180"}"#
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(payload::<CustodyRecorded>(Some(&v)), Some(c));
        // An entry of another shape reads as none, never as an error.
        assert_eq!(
            payload::<CustodyRecorded>(Some(&serde_json::json!({"excursion": 1}))),
            None
        );
    }
}
