//! Chain of custody: the order events may follow, from receipt to the
//! patient (Dir 2004/23/EC Art. 8; Reg. 1394/2007 Art. 15).

use super::batch::BatchStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A custody event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustodyEvent {
    Received,
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
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CustodyEvent::Received => "received",
            CustodyEvent::Stored => "stored",
            CustodyEvent::Shipped => "shipped",
            CustodyEvent::Delivered => "delivered",
            CustodyEvent::Administered => "administered",
            CustodyEvent::Destroyed => "destroyed",
        }
    }

    /// From the request.
    pub fn parse(s: &str) -> Option<Self> {
        [
            CustodyEvent::Received,
            CustodyEvent::Stored,
            CustodyEvent::Shipped,
            CustodyEvent::Delivered,
            CustodyEvent::Administered,
            CustodyEvent::Destroyed,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }

    /// Whether nothing may follow.
    pub fn is_terminal(self) -> bool {
        matches!(self, CustodyEvent::Administered | CustodyEvent::Destroyed)
    }
}

/// Where the chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CustodyState {
    /// The last event and when it happened.
    pub last: Option<(CustodyEvent, DateTime<Utc>)>,
}

impl CustodyState {
    /// Folds the events, in order.
    pub fn from_events(events: impl IntoIterator<Item = (CustodyEvent, DateTime<Utc>)>) -> Self {
        CustodyState {
            last: events.into_iter().last(),
        }
    }

    /// Shipped and not yet delivered.
    pub fn in_transit(&self) -> bool {
        matches!(self.last, Some((CustodyEvent::Shipped, _)))
    }
}

/// A proposed event.
#[derive(Debug, Clone, Copy)]
pub struct Proposed<'a> {
    pub event: CustodyEvent,
    pub occurred_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub batch_status: BatchStatus,
    /// A move inside the facility: shipping an unreleased batch is allowed.
    pub internal: bool,
    pub recipient_id: Option<&'a str>,
    pub intended_recipient: Option<&'a str>,
}

/// Why an event can't be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustodyRefusal {
    /// After `administered` or `destroyed` (409 `custody_closed`).
    Closed(CustodyEvent),
    /// In transit: only `delivered` (409 `in_transit`).
    InTransit,
    /// `delivered` without a shipment (409 `not_in_transit`).
    NotInTransit,
    /// Shipping or administering a batch that is not released (409 `not_released`).
    NotReleased(BatchStatus),
    /// `administered` needs `recipient_id` (422).
    RecipientRequired,
    /// `recipient_id` on another event (422).
    RecipientNotExpected,
    /// The recipient is not the batch's intended recipient (409 `identity_mismatch`).
    IdentityMismatch,
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
    if let Some((last, at)) = state.last {
        if last.is_terminal() {
            return Err(CustodyRefusal::Closed(last));
        }
        if p.occurred_at < at {
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
            internal: false,
            recipient_id: None,
            intended_recipient: None,
        }
    }

    fn state(events: &[(CustodyEvent, i64)]) -> CustodyState {
        CustodyState::from_events(events.iter().map(|(e, h)| (*e, at(*h))))
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
        assert_eq!(
            check_event(&s, &p),
            Err(CustodyRefusal::NotReleased(BatchStatus::Quarantine))
        );
        p.internal = true;
        assert_eq!(check_event(&s, &p), Ok(()));
        p.batch_status = BatchStatus::ConditionallyReleased;
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
}
