//! Chain of custody: the order events may follow, from receipt to the
//! patient (Dir 2004/23/EC Art. 8; Reg. 1394/2007 Art. 15).

use super::batch::BatchStatus;
use super::decimal::Decimal;
use super::value::{Line, OptionalLine, OptionalNote};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr};
use utoipa::ToSchema;

/// `POST /batches/{id}/custody` (and the batch's custody page): one event
/// as reported. A temperature outside the product's storage range is
/// recorded (facts are never refused) and opens a deviation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCustody {
    /// What happened.
    pub event: CustodyEvent,
    /// When (not in the future).
    pub occurred_at: DateTime<Utc>,
    /// Where.
    pub location: Line<200>,
    /// Who handed over or received.
    pub party: Line<200>,
    /// Temperature in °C, as read.
    #[serde(default)]
    pub temperature_c: Option<Decimal>,
    /// The container (bag) id.
    #[serde(default)]
    pub container_id: OptionalLine<100>,
    /// The patient it is for (administration).
    #[serde(default)]
    pub recipient_id: OptionalLine<100>,
    /// An internal movement (a transfer between stores).
    #[serde(default)]
    pub internal: Option<bool>,
    /// Notes.
    #[serde(default)]
    pub notes: OptionalNote<2000>,
    /// The DIN scanned from the bag's label (barcode content or the DIN as
    /// printed); a mismatch is `409 identity_mismatch` and records nothing.
    #[serde(default)]
    pub scanned_din: Option<String>,
}

/// A custody event.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    ToSchema,
    EnumString,
    IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CustodyEvent {
    /// Received at a site.
    Received,
    /// Put into storage.
    Stored,
    /// Puts the batch in transit.
    Shipped,
    /// Ends transit.
    Delivered,
    /// Given to a patient: the end of the chain.
    Administered,
    /// Destroyed: the end of the chain.
    Destroyed,
}

impl CustodyEvent {
    /// Whether nothing may follow.
    pub fn is_terminal(self) -> bool {
        matches!(self, CustodyEvent::Administered | CustodyEvent::Destroyed)
    }
}

/// A product's storage range in °C; either bound may be absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageRange {
    /// Lowest allowed temperature.
    pub min: Option<Decimal>,
    /// Highest allowed temperature.
    pub max: Option<Decimal>,
}

impl StorageRange {
    /// Whether `t` lies outside the range: an excursion, recorded as a fact
    /// and investigated as a deviation.
    pub fn is_excursion(&self, t: &Decimal) -> bool {
        self.min.as_ref().is_some_and(|m| t.value() < m.value())
            || self.max.as_ref().is_some_and(|m| t.value() > m.value())
    }

    /// The range as the lab reads it: `-196 to -150 °C`.
    pub fn describe(&self) -> String {
        let bound = |b: &Option<Decimal>| b.as_ref().map_or("-", Decimal::text).to_owned();
        format!("{} to {} °C", bound(&self.min), bound(&self.max))
    }
}

/// One recorded event, as the sequence rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastEvent {
    /// What happened.
    pub event: CustodyEvent,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// A move inside the facility.
    pub internal: bool,
}

/// Where the chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CustodyState {
    /// The last event.
    pub last: Option<PastEvent>,
}

impl CustodyState {
    /// Folds the events, in order.
    pub fn from_events(events: impl IntoIterator<Item = PastEvent>) -> Self {
        CustodyState {
            last: events.into_iter().last(),
        }
    }

    /// Shipped and not yet delivered.
    pub fn in_transit(&self) -> bool {
        matches!(self.last, Some(e) if e.event == CustodyEvent::Shipped)
    }

    /// In transit on a move inside the facility.
    fn in_internal_transit(&self) -> bool {
        matches!(self.last, Some(e) if e.event == CustodyEvent::Shipped && e.internal)
    }
}

/// Whether an event takes the batch out of the facility or into a patient:
/// a shipment that is not internal, the delivery that ends one, an
/// administration. Such an event needs a released batch, and can't be dated
/// before its release (API v1.1 "Custody after release").
pub fn leaves_facility(state: &CustodyState, event: CustodyEvent, internal: bool) -> bool {
    match event {
        CustodyEvent::Shipped => !internal,
        CustodyEvent::Delivered => !state.in_internal_transit(),
        CustodyEvent::Administered => true,
        CustodyEvent::Received | CustodyEvent::Stored | CustodyEvent::Destroyed => false,
    }
}

/// A proposed event.
#[derive(Debug, Clone, Copy)]
pub struct Proposed<'a> {
    /// What happened.
    pub event: CustodyEvent,
    /// When it happened, as reported.
    pub occurred_at: DateTime<Utc>,
    /// Server time now.
    pub now: DateTime<Utc>,
    /// The batch's status.
    pub batch_status: BatchStatus,
    /// When the batch was first (conditionally) released, if it was.
    pub released_at: Option<DateTime<Utc>>,
    /// A post-release correction is open: the batch stays in the facility.
    pub correction_open: bool,
    /// A move inside the facility: shipping an unreleased batch is allowed.
    pub internal: bool,
    /// The patient, for an administration.
    pub recipient_id: Option<&'a str>,
    /// The batch's intended recipient, when it has one.
    pub intended_recipient: Option<&'a str>,
}

/// Why an event can't be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustodyRefusal {
    /// After `administered` or `destroyed` (409 `custody_closed`).
    Closed(CustodyEvent),
    /// A post-release correction is open: nothing leaves the facility (409
    /// `not_released`).
    CorrectionOpen,
    /// In transit: only `delivered` (409 `in_transit`).
    InTransit,
    /// `delivered` without a shipment (409 `not_in_transit`).
    NotInTransit,
    /// Shipping or administering a batch that is not released (409 `not_released`).
    NotReleased(BatchStatus),
    /// Leaving the facility at a time before the batch's release signature
    /// (409 `not_released`).
    BeforeRelease {
        /// The event.
        event: CustodyEvent,
        /// When the batch was (conditionally) released.
        released_at: DateTime<Utc>,
    },
    /// `administered` needs `recipient_id` (422).
    RecipientRequired,
    /// `recipient_id` on another event (422).
    RecipientNotExpected,
    /// The recipient is not the batch's intended recipient (409 `identity_mismatch`).
    IdentityMismatch,
    /// The scanned DIN is not the batch's donation, or the batch has none
    /// (409 `identity_mismatch`).
    DinMismatch,
    /// A form that asks for the scan was sent without it while the batch
    /// has a DIN (422 `scanned_din`).
    DinRequired,
    /// Earlier than the previous event (422 `occurred_at`).
    BeforePrevious,
    /// In the future (422 `occurred_at`).
    InFuture,
}

/// Checks a proposed event against the chain so far.
pub fn check_event(state: &CustodyState, p: &Proposed<'_>) -> Result<(), CustodyRefusal> {
    if p.occurred_at > p.now {
        return Err(CustodyRefusal::InFuture);
    }
    if let Some(last) = state.last {
        if last.event.is_terminal() {
            return Err(CustodyRefusal::Closed(last.event));
        }
        if p.occurred_at < last.occurred_at {
            return Err(CustodyRefusal::BeforePrevious);
        }
    }
    match (state.in_transit(), p.event) {
        (true, CustodyEvent::Delivered) => {}
        (true, _) => return Err(CustodyRefusal::InTransit),
        (false, CustodyEvent::Delivered) => return Err(CustodyRefusal::NotInTransit),
        (false, _) => {}
    }
    let released = p.batch_status.is_released();
    match p.event {
        CustodyEvent::Shipped if !released && !p.internal => {
            return Err(CustodyRefusal::NotReleased(p.batch_status));
        }
        // Never into a patient from quarantine, rejection or recall.
        CustodyEvent::Administered if !released => {
            return Err(CustodyRefusal::NotReleased(p.batch_status));
        }
        _ => {}
    }
    if leaves_facility(state, p.event, p.internal) {
        if p.correction_open {
            return Err(CustodyRefusal::CorrectionOpen);
        }
        match p.released_at {
            None => return Err(CustodyRefusal::NotReleased(p.batch_status)),
            // Times are typed to the second: an event in the second of the
            // signature is not shown to be before it.
            Some(at) if p.occurred_at < at.trunc_subsecs(0) => {
                return Err(CustodyRefusal::BeforeRelease {
                    event: p.event,
                    released_at: at,
                });
            }
            Some(_) => {}
        }
    }
    match (
        p.event,
        p.recipient_id.map(str::trim).filter(|r| !r.is_empty()),
    ) {
        (CustodyEvent::Administered, None) => Err(CustodyRefusal::RecipientRequired),
        (CustodyEvent::Administered, Some(given)) => match p.intended_recipient {
            Some(intended) if intended.trim() != given => Err(CustodyRefusal::IdentityMismatch),
            _ => Ok(()),
        },
        (_, Some(_)) => Err(CustodyRefusal::RecipientNotExpected),
        (_, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(h: i64) -> DateTime<Utc> {
        Utc::now() - Duration::hours(100) + Duration::hours(h)
    }

    fn propose(event: CustodyEvent, h: i64) -> Proposed<'static> {
        Proposed {
            event,
            occurred_at: at(h),
            now: Utc::now(),
            batch_status: BatchStatus::Released,
            released_at: Some(at(0)),
            correction_open: false,
            internal: false,
            recipient_id: None,
            intended_recipient: None,
        }
    }

    fn state(events: &[(CustodyEvent, i64)]) -> CustodyState {
        CustodyState::from_events(events.iter().map(|(e, h)| PastEvent {
            event: *e,
            occurred_at: at(*h),
            internal: false,
        }))
    }

    #[test]
    fn in_transit_only_delivery_is_accepted() {
        let s = state(&[(CustodyEvent::Stored, 1), (CustodyEvent::Shipped, 2)]);
        assert!(s.in_transit());
        assert_eq!(
            check_event(&s, &propose(CustodyEvent::Stored, 3)),
            Err(CustodyRefusal::InTransit)
        );
        assert_eq!(
            check_event(&s, &propose(CustodyEvent::Delivered, 3)),
            Ok(())
        );
        let idle = state(&[(CustodyEvent::Stored, 1)]);
        assert_eq!(
            check_event(&idle, &propose(CustodyEvent::Delivered, 3)),
            Err(CustodyRefusal::NotInTransit)
        );
    }

    #[test]
    fn nothing_follows_administration_or_destruction() {
        for end in [CustodyEvent::Administered, CustodyEvent::Destroyed] {
            let s = state(&[(end, 1)]);
            assert_eq!(
                check_event(&s, &propose(CustodyEvent::Stored, 2)),
                Err(CustodyRefusal::Closed(end))
            );
        }
    }

    #[test]
    fn shipping_needs_release_unless_internal() {
        let s = CustodyState::default();
        let mut p = propose(CustodyEvent::Shipped, 1);
        p.batch_status = BatchStatus::Quarantine;
        p.released_at = None;
        assert_eq!(
            check_event(&s, &p),
            Err(CustodyRefusal::NotReleased(BatchStatus::Quarantine))
        );
        p.internal = true;
        assert_eq!(check_event(&s, &p), Ok(()));
        p.batch_status = BatchStatus::ConditionallyReleased;
        p.released_at = Some(at(0));
        p.internal = false;
        assert_eq!(check_event(&s, &p), Ok(()));
    }

    #[test]
    fn administration_needs_the_intended_recipient() {
        let s = state(&[(CustodyEvent::Delivered, 1)]);
        let mut p = propose(CustodyEvent::Administered, 2);
        p.intended_recipient = Some("PT-0042");
        assert_eq!(check_event(&s, &p), Err(CustodyRefusal::RecipientRequired));
        p.recipient_id = Some("PT-0043");
        assert_eq!(check_event(&s, &p), Err(CustodyRefusal::IdentityMismatch));
        p.recipient_id = Some("PT-0042");
        assert_eq!(check_event(&s, &p), Ok(()));
        p.batch_status = BatchStatus::Recalled;
        assert_eq!(
            check_event(&s, &p),
            Err(CustodyRefusal::NotReleased(BatchStatus::Recalled))
        );
    }

    #[test]
    fn events_keep_their_chronology() {
        let s = state(&[(CustodyEvent::Stored, 5)]);
        assert_eq!(
            check_event(&s, &propose(CustodyEvent::Stored, 4)),
            Err(CustodyRefusal::BeforePrevious)
        );
        let mut future = propose(CustodyEvent::Stored, 6);
        future.occurred_at = Utc::now() + Duration::minutes(5);
        assert_eq!(check_event(&s, &future), Err(CustodyRefusal::InFuture));
        let mut stray = propose(CustodyEvent::Stored, 6);
        stray.recipient_id = Some("PT-1");
        assert_eq!(
            check_event(&s, &stray),
            Err(CustodyRefusal::RecipientNotExpected)
        );
    }

    #[test]
    fn nothing_leaves_the_facility_dated_before_the_release_signature() {
        let s = state(&[(CustodyEvent::Stored, 1)]);
        let released = at(10);
        let mut shipped = propose(CustodyEvent::Shipped, 5);
        shipped.released_at = Some(released);
        assert_eq!(
            check_event(&s, &shipped),
            Err(CustodyRefusal::BeforeRelease {
                event: CustodyEvent::Shipped,
                released_at: released
            })
        );
        // At or after the signature it may leave; an internal move need not wait.
        shipped.occurred_at = released;
        assert_eq!(check_event(&s, &shipped), Ok(()));
        // A time typed to the second, in the second of the signature, is not
        // before it; the second before is.
        let signed = at(20).trunc_subsecs(0) + Duration::milliseconds(700);
        shipped.released_at = Some(signed);
        shipped.occurred_at = signed.trunc_subsecs(0);
        assert_eq!(check_event(&s, &shipped), Ok(()));
        shipped.occurred_at = signed.trunc_subsecs(0) - Duration::seconds(1);
        assert!(matches!(
            check_event(&s, &shipped),
            Err(CustodyRefusal::BeforeRelease { .. })
        ));
        shipped.released_at = Some(released);
        shipped.occurred_at = released;
        shipped.occurred_at = at(5);
        shipped.internal = true;
        assert_eq!(check_event(&s, &shipped), Ok(()));
        // The delivery that ends a shipment to a clinic, and the administration,
        // are held to the same time.
        let away = state(&[(CustodyEvent::Shipped, 11)]);
        let mut delivered = propose(CustodyEvent::Delivered, 12);
        delivered.released_at = Some(at(12) + Duration::minutes(30));
        assert!(matches!(
            check_event(&away, &delivered),
            Err(CustodyRefusal::BeforeRelease { .. })
        ));
        let arrived = state(&[(CustodyEvent::Delivered, 12)]);
        let mut given = propose(CustodyEvent::Administered, 13);
        given.recipient_id = Some("PT-1");
        given.released_at = Some(at(14));
        assert!(matches!(
            check_event(&arrived, &given),
            Err(CustodyRefusal::BeforeRelease { .. })
        ));
    }

    #[test]
    fn the_delivery_of_an_internal_move_stays_inside() {
        let moving = CustodyState::from_events([PastEvent {
            event: CustodyEvent::Shipped,
            occurred_at: at(1),
            internal: true,
        }]);
        assert!(!leaves_facility(&moving, CustodyEvent::Delivered, false));
        let mut delivered = propose(CustodyEvent::Delivered, 2);
        delivered.batch_status = BatchStatus::Quarantine;
        delivered.released_at = None;
        assert_eq!(check_event(&moving, &delivered), Ok(()));
        let away = state(&[(CustodyEvent::Shipped, 1)]);
        assert!(leaves_facility(&away, CustodyEvent::Delivered, false));
        // Nothing leaves while a post-release correction is open; inside, it moves.
        let mut open = propose(CustodyEvent::Shipped, 1);
        open.correction_open = true;
        assert_eq!(
            check_event(&state(&[]), &open),
            Err(CustodyRefusal::CorrectionOpen)
        );
        open.internal = true;
        assert_eq!(check_event(&state(&[]), &open), Ok(()));
    }

    #[test]
    fn a_temperature_outside_the_storage_range_is_an_excursion() {
        let cryo = StorageRange {
            min: Some(Decimal::parse("-196").unwrap()),
            max: Some(Decimal::parse("-150").unwrap()),
        };
        for inside in ["-196", "-170.5", "-150"] {
            assert!(
                !cryo.is_excursion(&Decimal::parse(inside).unwrap()),
                "{inside}"
            );
        }
        for outside in ["-149.9", "-197", "4"] {
            assert!(
                cryo.is_excursion(&Decimal::parse(outside).unwrap()),
                "{outside}"
            );
        }
        assert!(!StorageRange::default().is_excursion(&Decimal::parse("37").unwrap()));
        assert_eq!(cryo.describe(), "-196 to -150 °C");
    }
}
