//! Materials released, in date and traceable (21 CFR 211.84, 211.194(a)):
//! a lot used in a result or a batch must have been released, not rejected,
//! and in date at the time of use.

use super::value::{Code, Line, Note, OptionalLine};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray};

/// What a lot is: the codes forms and the API send, whatever the reader's
/// language.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MaterialKind {
    /// A reagent (stains, antibodies, media supplements).
    Reagent,
    /// A consumable (tubes, bags, filters).
    Consumable,
    /// A raw material of the process.
    RawMaterial,
}

impl MaterialKind {
    /// Its code.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `POST /materials`: a lot received into quarantine.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveMaterial {
    /// Material code.
    pub code: Code<40>,
    /// Name.
    pub name: Line<200>,
    /// Lot number.
    pub lot_number: Line<80>,
    /// Supplier.
    #[serde(default)]
    pub supplier: OptionalLine<200>,
    /// What the lot is.
    pub kind: MaterialKind,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// `POST /materials/{id}/release`: QA releases a lot (signed).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseMaterial {
    /// The signer's password.
    pub password: String,
}

/// `POST /materials/{id}/reject`: QA rejects a lot (signed).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectMaterial {
    /// The signer's password.
    pub password: String,
    /// Why.
    pub reason: Note<2000>,
}

/// A lot's status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema, EnumString, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum LotStatus {
    /// Received, not yet released by QA.
    Quarantine,
    /// Released by QA (signed).
    Released,
    /// Rejected by QA (signed).
    Rejected,
}

/// What the rule reads of a lot.
#[derive(Debug, Clone)]
pub struct Lot {
    /// Its code and lot number, for the refusal.
    pub label: String,
    /// When QA released it.
    pub released_at: Option<DateTime<Utc>>,
    /// When QA rejected it.
    pub rejected_at: Option<DateTime<Utc>>,
    /// Its expiry.
    pub expires_at: DateTime<Utc>,
}

/// A lot that could not be used then (409 `material_not_usable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUsable {
    /// Which lot.
    pub label: String,
    /// Why, in words.
    pub why: String,
}

/// The rule at every use: released by then, not rejected by then, in date.
pub fn check_usable(lot: &Lot, used_at: DateTime<Utc>) -> Result<(), NotUsable> {
    let fail = |why: String| {
        Err(NotUsable {
            label: lot.label.clone(),
            why,
        })
    };
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if lot.rejected_at.is_some_and(|r| r <= used_at) {
        return fail("it had been rejected".to_owned());
    }
    match lot.released_at {
        None => return fail("it is in quarantine: QA has not released it".to_owned()),
        Some(r) if r > used_at => return fail(format!("it was released only on {}", at(r))),
        Some(_) => {}
    }
    if lot.expires_at <= used_at {
        return fail(format!("it expired on {}", at(lot.expires_at)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_lot_is_usable_only_released_unrejected_and_in_date_at_use() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let d = |n: i64| t0 + Duration::days(n);
        let lot = Lot {
            label: "7AAD lot 42".into(),
            released_at: Some(d(1)),
            rejected_at: Some(d(20)),
            expires_at: d(30),
        };
        assert!(check_usable(&lot, d(5)).is_ok());
        assert!(
            check_usable(&lot, d(0))
                .unwrap_err()
                .why
                .contains("released only on")
        );
        assert!(
            check_usable(&lot, d(21))
                .unwrap_err()
                .why
                .contains("rejected")
        );
        let unrejected = Lot {
            rejected_at: None,
            ..lot.clone()
        };
        assert!(
            check_usable(&unrejected, d(31))
                .unwrap_err()
                .why
                .contains("expired")
        );
        let quarantined = Lot {
            released_at: None,
            rejected_at: None,
            ..lot
        };
        assert!(
            check_usable(&quarantined, d(5))
                .unwrap_err()
                .why
                .contains("quarantine")
        );
    }
}
