//! Chain of custody: recording events in order, from receipt to the patient.
//! Each event is appended to the batch's audit hash chain and carries that
//! entry's `seq`, `prev_hash` and `hash`. A temperature outside the product's
//! storage range is recorded (facts are never refused), marked as an
//! excursion, and opens a deviation.

use super::audit::AuditRecord;
use super::batch_record::{self, BatchOf, LockedBatch, NewDeviation};
use super::{Actor, in_transaction, notices};
use crate::db::models::CustodyRow;
use crate::db::schema::custody_events;
use crate::domain::StoredName;
use crate::domain::audit_event::{AuditEvent, CustodyRecorded};
use crate::domain::custody::{CustodyEvent, CustodyRefusal, RecordCustody};
use crate::domain::deviation::{DeviationKind, EXCURSION_SEVERITY};
use crate::domain::record::CustodyRecord;
use crate::domain::roles::Action;
use crate::error::AppError;
use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

/// The batch's custody events, in order.
pub fn events_of(conn: &mut PgConnection, batch_id: Uuid) -> Result<Vec<CustodyRecord>, AppError> {
    Ok(batch_record::read(conn, batch_id)?.custody)
}

/// Records a custody event (technician, QA).
pub fn record_event(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    input: &RecordCustody,
) -> Result<CustodyRecord, AppError> {
    actor.authorize(Action::RecordCustody)?;
    let event = input.event;
    let location = input.location.as_str().to_owned();
    let party = input.party.as_str().to_owned();
    let temperature = input.temperature_c.clone();
    let container_id = input.container_id.as_deref().map(str::to_owned);
    let recipient_id = input.recipient_id.as_deref().map(str::to_owned);
    let notes = input.notes.as_deref().map(str::to_owned);
    let internal = input.internal.unwrap_or(false);
    in_transaction(conn, |c| {
        let mut lb = LockedBatch::lock(c, BatchOf::Batch(batch_id))?;
        let was_releasable = lb.record.readiness().releasable;
        // Before anything else: is this the bag of this batch, and the
        // patient it is for?
        let checked = match input.scanned_din.as_deref() {
            Some(scanned) => lb.record.check_scanned_din(scanned),
            None => Ok(()),
        }
        .and_then(|()| {
            lb.record
                .check_custody(event, input.occurred_at, internal, recipient_id.as_deref())
        });
        match checked {
            Ok(()) => {}
            // A refused identity check is kept, as a refused signature is.
            Err(refusal @ (CustodyRefusal::DinMismatch | CustodyRefusal::IdentityMismatch)) => {
                let refusal = AppError::from(refusal);
                record_identity_refusal(c, actor, lb.id(), event, input, &refusal)?;
                return Ok(Err(refusal));
            }
            Err(refusal) => return Err(refusal.into()),
        }
        let storage = lb.record.product.storage.clone();
        let excursion = temperature
            .as_ref()
            .is_some_and(|t| storage.is_excursion(t));
        let deviation = match (&temperature, excursion) {
            (Some(t), true) => {
                let d = lb.open_deviation(
                    c,
                    Some(actor),
                    NewDeviation {
                        kind: DeviationKind::Excursion,
                        severity: EXCURSION_SEVERITY,
                        result_id: None,
                        title: format!("Temperature excursion: {} °C at {}", t.text(), event.as_str()),
                        description: format!(
                            "Custody event `{}` of batch {} recorded {} °C, outside the storage range {}.",
                            event.as_str(),
                            lb.record.batch.batch_number,
                            t.text(),
                            storage.describe()
                        ),
                        subject_id: None,
                        result_ids: Vec::new(),
                    },
                )?;
                notices::excursion_opened(c, &lb.record, &d)?;
                Some(d.id)
            }
            _ => None,
        };
        let id = Uuid::now_v7();
        let now = Utc::now();
        let content = serde_json::to_value(CustodyRecorded {
            id,
            batch_id: lb.id(),
            event,
            occurred_at: input.occurred_at,
            location: location.clone(),
            party: party.clone(),
            temperature_c: temperature.as_ref().map(|t| t.text().to_owned()),
            excursion,
            deviation_id: deviation,
            container_id: container_id.clone(),
            recipient_id: recipient_id.clone(),
            internal,
            notes: notes.clone(),
            recorded_by: actor.id,
            recorded_at: now,
        })?;
        // The event is written before the entry that binds it: it names
        // that entry, its position and the previous hash, known now.
        let entry_id = Uuid::now_v7();
        let (head_seq, head_hash) = lb.head();
        let row = CustodyRow {
            id,
            batch_id: lb.id(),
            event: event.as_str().to_owned(),
            occurred_at: input.occurred_at,
            location: location.clone(),
            party: party.clone(),
            temperature_c: temperature.as_ref().map(|t| t.text().to_owned()),
            excursion,
            container_id: container_id.clone(),
            recipient_id: recipient_id.clone(),
            internal,
            notes: notes.clone(),
            deviation_id: deviation,
            recorded_by: actor.id,
            recorded_at: now,
            audit_entry_id: entry_id,
            seq: head_seq + 1,
            prev_hash: head_hash.to_owned(),
        };
        diesel::insert_into(custody_events::table)
            .values(row.clone())
            .execute(c)?;
        let chain = lb.chain();
        let entry = lb.append(
            c,
            AuditRecord::on_batch(
                &chain,
                lb.id(),
                Some(actor),
                AuditEvent::CustodyRecorded,
                "custody_event",
                id,
            )
            .with_id(entry_id)
            .after(content),
        )?;
        let recorded = batch_record::custody_of(row, entry.hash)?;
        lb.record.push_custody(recorded.clone());
        // A delivery can end the last blocker (in transit).
        notices::ready_for_release(c, was_releasable, &lb.record)?;
        Ok(Ok(recorded))
    })?
}

/// Audits a refused identity check (another bag's DIN, another patient) on
/// the system chain, naming the batch: it appears in the batch's history
/// without taking the batch chain's head, and nothing else is recorded.
fn record_identity_refusal(
    c: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    event: CustodyEvent,
    input: &RecordCustody,
    refusal: &AppError,
) -> Result<(), AppError> {
    let p = refusal.to_problem();
    super::audit::append_refusal(
        c,
        actor,
        batch_id,
        AuditEvent::CustodyIdentityRefused,
        json!({
            "event": event,
            "scanned_din": input.scanned_din,
            "recipient_id": input.recipient_id,
            "code": p.code,
            "detail": p.detail,
        }),
    )
}
