//! Chain of custody: recording events in order, from receipt to the patient.
//! Each event is appended to the batch's audit hash chain and carries that
//! entry's `seq`, `prev_hash` and `hash`. A temperature outside the product's
//! storage range is recorded (facts are never refused), marked as an
//! excursion, and opens a deviation.

use super::audit::{self, AuditRecord};
use super::batches::{lock_batch, status_of};
use super::deviations;
use super::products::get_product;
use super::{Actor, in_transaction};
use crate::db::models::CustodyRow;
use crate::db::schema::custody_events;
use crate::domain::FieldError;
use crate::domain::audit::batch_chain;
use crate::domain::custody::{CustodyEvent, CustodyRefusal, CustodyState, Proposed, check_event};
use crate::domain::decimal::Decimal;
use crate::domain::text::{line, optional_line, optional_note};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// A custody event as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustodyView {
    pub id: Uuid,
    pub batch_id: Uuid,
    /// Position in the batch's hash chain.
    pub seq: i64,
    pub event: String,
    pub occurred_at: DateTime<Utc>,
    pub location: String,
    pub party: String,
    /// As entered.
    pub temperature_c: Option<String>,
    pub excursion: bool,
    pub deviation_id: Option<Uuid>,
    pub container_id: Option<String>,
    pub recipient_id: Option<String>,
    pub internal: bool,
    pub notes: Option<String>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<&CustodyRow> for CustodyView {
    fn from(r: &CustodyRow) -> Self {
        CustodyView {
            id: r.id,
            batch_id: r.batch_id,
            seq: r.seq,
            event: r.event.clone(),
            occurred_at: r.occurred_at,
            location: r.location.clone(),
            party: r.party.clone(),
            temperature_c: r.temperature_c.clone(),
            excursion: r.excursion,
            deviation_id: r.deviation_id,
            container_id: r.container_id.clone(),
            recipient_id: r.recipient_id.clone(),
            internal: r.internal,
            notes: r.notes.clone(),
            recorded_by: r.recorded_by,
            recorded_at: r.recorded_at,
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
        }
    }
}

fn rows_of(conn: &mut PgConnection, batch_id: Uuid) -> Result<Vec<CustodyRow>, AppError> {
    Ok(custody_events::table
        .filter(custody_events::batch_id.eq(batch_id))
        .order(custody_events::seq)
        .select(CustodyRow::as_select())
        .load(conn)?)
}

/// The batch's custody events, in order.
pub fn events_of(conn: &mut PgConnection, batch_id: Uuid) -> Result<Vec<CustodyView>, AppError> {
    Ok(rows_of(conn, batch_id)?
        .iter()
        .map(CustodyView::from)
        .collect())
}

fn state_from(rows: &[CustodyRow]) -> CustodyState {
    CustodyState::from_events(
        rows.iter()
            .filter_map(|r| CustodyEvent::parse(&r.event).map(|e| (e, r.occurred_at))),
    )
}

/// Where the batch's chain of custody stands.
pub fn state_of(conn: &mut PgConnection, batch_id: Uuid) -> Result<CustodyState, AppError> {
    Ok(state_from(&rows_of(conn, batch_id)?))
}

/// A custody event as reported.
#[derive(Debug, Clone)]
pub struct NewCustodyInput {
    pub event: String,
    pub occurred_at: DateTime<Utc>,
    pub location: String,
    pub party: String,
    /// Raw JSON text of the temperature.
    pub temperature_c: Option<String>,
    pub container_id: Option<String>,
    pub recipient_id: Option<String>,
    pub internal: bool,
    pub notes: Option<String>,
}

/// Whether `t` lies outside `[min, max]` (either bound may be absent).
fn outside(t: &Decimal, min: Option<&Decimal>, max: Option<&Decimal>) -> bool {
    min.is_some_and(|m| t.value() < m.value()) || max.is_some_and(|m| t.value() > m.value())
}

/// Records a custody event (technician, QA).
pub fn record_event(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    input: &NewCustodyInput,
) -> Result<CustodyView, AppError> {
    let mut errors = Vec::new();
    let event = CustodyEvent::parse(&input.event);
    if event.is_none() {
        errors.push(FieldError::new(
            "event",
            "must be received, stored, shipped, delivered, administered or destroyed",
        ));
    }
    let location = line("location", &input.location, 200, &mut errors);
    let party = line("party", &input.party, 200, &mut errors);
    let temperature = input.temperature_c.as_deref().and_then(|raw| {
        Decimal::from_json(raw)
            .map_err(|m| errors.push(FieldError::new("temperature_c", m)))
            .ok()
    });
    let container_id = optional_line(
        "container_id",
        input.container_id.as_deref(),
        100,
        &mut errors,
    );
    let recipient_id = optional_line(
        "recipient_id",
        input.recipient_id.as_deref(),
        100,
        &mut errors,
    );
    let notes = optional_note("notes", input.notes.as_deref(), 2000, &mut errors);
    let (Some(event), true) = (event, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    in_transaction(conn, |c| {
        let batch = lock_batch(c, batch_id)?;
        let status = status_of(&batch)?;
        let rows = rows_of(c, batch.id)?;
        // Only a delivery can end a blocker (in transit).
        let was_releasable =
            event != CustodyEvent::Delivered || super::release::is_releasable(c, &batch)?;
        let now = Utc::now();
        let proposed = Proposed {
            event,
            occurred_at: input.occurred_at,
            now,
            batch_status: status,
            internal: input.internal,
            recipient_id: recipient_id.as_deref(),
            intended_recipient: batch.intended_recipient.as_deref(),
        };
        if let Err(refusal) = check_event(&state_from(&rows), &proposed) {
            return Err(refusal_error(refusal));
        }
        let product = get_product(c, batch.product_id)?;
        let stored = |t: &Option<String>| t.as_deref().and_then(|t| Decimal::from_stored(t).ok());
        let (min, max) = (
            stored(&product.storage_min_c),
            stored(&product.storage_max_c),
        );
        let excursion = temperature
            .as_ref()
            .is_some_and(|t| outside(t, min.as_ref(), max.as_ref()));
        let deviation = if excursion {
            let range = format!(
                "{} to {} °C",
                product.storage_min_c.as_deref().unwrap_or("-"),
                product.storage_max_c.as_deref().unwrap_or("-")
            );
            let t = temperature
                .as_ref()
                .map(|t| t.text().to_owned())
                .unwrap_or_default();
            Some(deviations::open_excursion(
                c,
                actor,
                &batch,
                event.as_str(),
                &t,
                &range,
            )?)
        } else {
            None
        };
        let id = Uuid::now_v7();
        let content = json!({
            "id": id,
            "batch_id": batch.id,
            "event": event.as_str(),
            "occurred_at": input.occurred_at,
            "location": location,
            "party": party,
            "temperature_c": temperature.as_ref().map(Decimal::text),
            "excursion": excursion,
            "deviation_id": deviation.as_ref().map(|d| d.id),
            "container_id": container_id,
            "recipient_id": recipient_id,
            "internal": input.internal,
            "notes": notes,
            "recorded_by": actor.id,
            "recorded_at": now,
        });
        let chain = batch_chain(batch.id);
        let entry = audit::append(
            c,
            AuditRecord::on_batch(
                &chain,
                batch.id,
                Some(actor),
                "custody.recorded",
                "custody_event",
                id,
            )
            .after(content),
        )?;
        let row = CustodyRow {
            id,
            batch_id: batch.id,
            event: event.as_str().to_owned(),
            occurred_at: input.occurred_at,
            location: location.clone(),
            party: party.clone(),
            temperature_c: temperature.as_ref().map(|t| t.text().to_owned()),
            excursion,
            container_id: container_id.clone(),
            recipient_id: recipient_id.clone(),
            internal: input.internal,
            notes: notes.clone(),
            deviation_id: deviation.as_ref().map(|d| d.id),
            recorded_by: actor.id,
            recorded_at: now,
            audit_entry_id: entry.id,
            seq: entry.seq,
            prev_hash: entry.prev_hash,
            hash: entry.hash,
        };
        diesel::insert_into(custody_events::table)
            .values(&row)
            .execute(c)?;
        super::release::announce_if_ready(c, batch.id, was_releasable)?;
        Ok(CustodyView::from(&row))
    })
}

fn refusal_error(r: CustodyRefusal) -> AppError {
    match r {
        CustodyRefusal::Closed(last) => AppError::conflict(
            "custody_closed",
            format!("the batch was {}: nothing can follow", last.as_str()),
        ),
        CustodyRefusal::InTransit => AppError::conflict(
            "in_transit",
            "the batch is in transit: only `delivered` can be recorded",
        ),
        CustodyRefusal::NotInTransit => AppError::conflict(
            "not_in_transit",
            "the batch was not shipped: there is nothing to deliver",
        ),
        CustodyRefusal::NotReleased(status) => AppError::conflict(
            "not_released",
            format!(
                "the batch is {}: it can't leave the facility or reach a patient until released \
                 (an internal move takes internal: true)",
                status.as_str()
            ),
        ),
        CustodyRefusal::RecipientRequired => {
            AppError::invalid_field("recipient_id", "administration needs the recipient's id")
        }
        CustodyRefusal::RecipientNotExpected => AppError::invalid_field(
            "recipient_id",
            "only an `administered` event names a recipient",
        ),
        CustodyRefusal::IdentityMismatch => AppError::conflict(
            "identity_mismatch",
            "the recipient is not this batch's intended recipient: do not administer",
        ),
        CustodyRefusal::BeforePrevious => {
            AppError::invalid_field("occurred_at", "is earlier than the previous custody event")
        }
        CustodyRefusal::InFuture => AppError::invalid_field("occurred_at", "is in the future"),
    }
}
