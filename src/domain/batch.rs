//! Batch status and what each status allows.

use serde::Serialize;
use strum::{EnumString, IntoStaticStr, VariantArray};
use utoipa::ToSchema;

/// Where a batch stands. The stored name is the snake_case variant name
/// (`BatchStatus::try_from("conditionally_released")`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, EnumString, IntoStaticStr, VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BatchStatus {
    /// Initial: not released.
    Quarantine,
    /// Released before every result was in (short shelf life).
    ConditionallyReleased,
    /// Released.
    Released,
    /// Rejected: never to be used.
    Rejected,
    /// Recalled after release.
    Recalled,
}

impl BatchStatus {
    /// Whether results may still be recorded (not after rejection or recall).
    pub fn accepts_results(self) -> bool {
        !matches!(self, BatchStatus::Rejected | BatchStatus::Recalled)
    }

    /// Whether the batch has been (conditionally) released: a failure found
    /// now is a critical deviation.
    pub fn is_released(self) -> bool {
        matches!(
            self,
            BatchStatus::Released | BatchStatus::ConditionallyReleased
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::StoredName;

    #[test]
    fn names_round_trip_and_closed_batches_take_no_results() {
        for s in [
            "quarantine",
            "conditionally_released",
            "released",
            "rejected",
            "recalled",
        ] {
            assert_eq!(BatchStatus::try_from(s).unwrap().as_str(), s);
        }
        assert!(BatchStatus::try_from("Released").is_err());
        assert!(BatchStatus::Quarantine.accepts_results());
        assert!(BatchStatus::Released.accepts_results());
        assert!(!BatchStatus::Rejected.accepts_results());
        assert!(!BatchStatus::Recalled.accepts_results());
    }
}
