//! Batches: creation (binding the product's effective specification),
//! lists, the batch record with its results, signatures and deviations, and
//! its audit history.

use super::audit::{self, AuditEntryView, AuditRecord};
use super::custody::{CustodyView, events_of};
use super::deviations::{DeviationView, deviations_of};
use super::products::get_product;
use super::results::{ResultView, results_of};
use super::signatures::{self, SignatureView};
use super::{Actor, Page, PageRequest, in_transaction};
use crate::db::models::{AuditEntryRow, BatchRow, SpecRow};
use crate::db::schema::{audit_entries, batch_parents, batches, specifications};
use crate::domain::FieldError;
use crate::domain::audit::batch_chain;
use crate::domain::batch::BatchStatus;
use crate::domain::decimal::Decimal;
use crate::domain::din::Din;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use uuid::Uuid;

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchView {
    pub id: Uuid,
    pub batch_number: String,
    pub product_id: Uuid,
    /// The specification bound at creation.
    pub specification_id: Uuid,
    pub status: String,
    pub manufactured_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub donor_din: Option<String>,
    pub intended_recipient: Option<String>,
    pub parent_batch_ids: Vec<Uuid>,
    /// As entered.
    pub quantity: Option<String>,
    pub unit: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// The batch record: the batch with everything recorded about it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchDetail {
    #[serde(flatten)]
    pub batch: BatchView,
    pub results: Vec<ResultView>,
    /// Signatures on the batch itself (release, rejection, recall).
    pub signatures: Vec<SignatureView>,
    pub deviations: Vec<DeviationView>,
    /// The chain of custody, in order.
    pub custody: Vec<CustodyView>,
}

/// A new batch.
#[derive(Debug, Clone, Default)]
pub struct NewBatchInput {
    pub batch_number: String,
    pub product_id: Uuid,
    pub manufactured_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub donor_din: Option<String>,
    pub intended_recipient: Option<String>,
    pub parent_batch_ids: Vec<Uuid>,
    /// Raw JSON text of the quantity.
    pub quantity: Option<String>,
    pub unit: Option<String>,
}

fn parents_of(conn: &mut PgConnection, id: Uuid) -> Result<Vec<Uuid>, AppError> {
    Ok(batch_parents::table
        .filter(batch_parents::batch_id.eq(id))
        .order(batch_parents::parent_id)
        .select(batch_parents::parent_id)
        .load(conn)?)
}

fn view_of(row: &BatchRow, parents: Vec<Uuid>) -> BatchView {
    BatchView {
        id: row.id,
        batch_number: row.batch_number.clone(),
        product_id: row.product_id,
        specification_id: row.spec_id,
        status: row.status.clone(),
        manufactured_at: row.manufactured_at,
        expires_at: row.expires_at,
        donor_din: row.donor_din.clone(),
        intended_recipient: row.intended_recipient.clone(),
        parent_batch_ids: parents,
        quantity: row.quantity.clone(),
        unit: row.unit.clone(),
        created_by: row.created_by,
        created_at: row.created_at,
    }
}

/// Locks the batch row for a state change (`SELECT ... FOR UPDATE`): every
/// writer of a batch's record and chain goes through this lock.
pub fn lock_batch(conn: &mut PgConnection, id: Uuid) -> Result<BatchRow, AppError> {
    batches::table
        .find(id)
        .select(BatchRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
        .ok_or_else(|| batch_not_found(id))
}

fn batch_not_found(id: Uuid) -> AppError {
    AppError::not_found("batch_not_found", format!("no batch {id}"))
}

/// A batch row.
pub fn find_batch(conn: &mut PgConnection, id: Uuid) -> Result<BatchRow, AppError> {
    batches::table
        .find(id)
        .select(BatchRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| batch_not_found(id))
}

/// The stored status of a batch.
pub fn status_of(row: &BatchRow) -> Result<BatchStatus, AppError> {
    BatchStatus::parse(&row.status).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!(
            "batch {} has status {}",
            row.id,
            row.status
        ))
    })
}

/// Creates a batch bound to its product's effective specification.
pub fn create_batch(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &NewBatchInput,
) -> Result<BatchView, AppError> {
    let mut errors = Vec::new();
    let batch_number = input.batch_number.trim().to_owned();
    if batch_number.is_empty()
        || batch_number.chars().count() > 64
        || batch_number
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        errors.push(FieldError::new(
            "batch_number",
            "must be 1 to 64 characters without spaces",
        ));
    }
    let now = Utc::now();
    if input.manufactured_at > now {
        errors.push(FieldError::new("manufactured_at", "is in the future"));
    }
    if input.expires_at <= input.manufactured_at {
        errors.push(FieldError::new(
            "expires_at",
            "must be after manufactured_at",
        ));
    }
    let donor_din = input.donor_din.as_deref().and_then(|raw| {
        Din::parse(raw)
            .map_err(|m| errors.push(FieldError::new("donor_din", m)))
            .ok()
    });
    let recipient = crate::domain::text::optional_line(
        "intended_recipient",
        input.intended_recipient.as_deref(),
        100,
        &mut errors,
    );
    let unit = crate::domain::text::optional_line("unit", input.unit.as_deref(), 40, &mut errors);
    let quantity = input
        .quantity
        .as_deref()
        .and_then(|raw| match Decimal::from_json(raw) {
            Ok(d) if d.value() > &bigdecimal::BigDecimal::from(0) => Some(d.text().to_owned()),
            Ok(_) => {
                errors.push(FieldError::new("quantity", "must be greater than zero"));
                None
            }
            Err(m) => {
                errors.push(FieldError::new("quantity", m));
                None
            }
        });
    let mut parents = input.parent_batch_ids.clone();
    parents.sort();
    parents.dedup();
    if parents.len() != input.parent_batch_ids.len() {
        errors.push(FieldError::new("parent_batch_ids", "lists a batch twice"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    in_transaction(conn, |c| {
        let product = get_product(c, input.product_id).map_err(|_| {
            AppError::invalid_field("product_id", format!("no product {}", input.product_id))
        })?;
        let found: Vec<Uuid> = batches::table
            .filter(batches::id.eq_any(&parents))
            .select(batches::id)
            .load(c)?;
        let missing: Vec<FieldError> = input
            .parent_batch_ids
            .iter()
            .enumerate()
            .filter(|(_, p)| !found.contains(p))
            .map(|(i, p)| {
                FieldError::new(format!("parent_batch_ids[{i}]"), format!("no batch {p}"))
            })
            .collect();
        if !missing.is_empty() {
            return Err(AppError::validation(missing));
        }
        let spec: SpecRow = specifications::table
            .filter(specifications::product_id.eq(product.id))
            .filter(specifications::status.eq("effective"))
            .select(SpecRow::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| {
                AppError::conflict(
                    "no_effective_specification",
                    format!(
                        "product {} has no effective specification: approve one first",
                        product.code
                    ),
                )
            })?;
        let row = BatchRow {
            id: Uuid::now_v7(),
            batch_number: batch_number.clone(),
            product_id: product.id,
            spec_id: spec.id,
            manufactured_at: input.manufactured_at,
            expires_at: input.expires_at,
            donor_din: donor_din.as_ref().map(|d| d.as_str().to_owned()),
            intended_recipient: recipient.clone(),
            quantity: quantity.clone(),
            unit: unit.clone(),
            status: BatchStatus::Quarantine.as_str().to_owned(),
            created_by: actor.id,
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(batches::table)
            .values(&row)
            .execute(c)?;
        let links: Vec<_> = parents
            .iter()
            .map(|p| {
                (
                    batch_parents::batch_id.eq(row.id),
                    batch_parents::parent_id.eq(*p),
                )
            })
            .collect();
        diesel::insert_into(batch_parents::table)
            .values(&links)
            .execute(c)?;
        let view = view_of(&row, parents.clone());
        let chain = batch_chain(row.id);
        let mut rec = AuditRecord::new(&chain, Some(actor), "batch.created", "batch", Some(row.id))
            .after(serde_json::to_value(&view)?);
        rec.batch_id = Some(row.id);
        audit::append(c, rec)?;
        Ok(view)
    })
    .map_err(|e| match e {
        AppError::Database(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            AppError::conflict(
                "batch_number_taken",
                format!("batch number `{batch_number}` exists"),
            )
        }
        other => other,
    })
}

/// Filters of `GET /batches`.
#[derive(Debug, Clone, Default)]
pub struct BatchFilter {
    pub status: Option<BatchStatus>,
    pub product_id: Option<Uuid>,
    /// Batch number (prefix, case-insensitive) or donor DIN (exact, spaces ignored).
    pub q: Option<String>,
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Batches matching `filter`, by creation order.
pub fn list_batches(
    conn: &mut PgConnection,
    filter: &BatchFilter,
    page: PageRequest,
) -> Result<Page<BatchView>, AppError> {
    let mut q = batches::table
        .select(BatchRow::as_select())
        .order(batches::id)
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(s) = filter.status {
        q = q.filter(batches::status.eq(s.as_str()));
    }
    if let Some(p) = filter.product_id {
        q = q.filter(batches::product_id.eq(p));
    }
    if let Some(text) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let din: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase();
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        // lower() on both sides: the batches_number_search index serves it.
        q = q.filter(
            lower(batches::batch_number)
                .like(lower(format!("{escaped}%")))
                .or(batches::donor_din.eq(din)),
        );
    }
    if let Some(after) = page.after {
        q = q.filter(batches::id.gt(after));
    }
    let rows: Vec<BatchRow> = q.load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let links: Vec<(Uuid, Uuid)> = batch_parents::table
        .filter(batch_parents::batch_id.eq_any(&ids))
        .select((batch_parents::batch_id, batch_parents::parent_id))
        .load(conn)?;
    Ok(Page::from_rows(rows, page.limit, |r| r.id).map(|r| {
        let parents = links
            .iter()
            .filter(|(b, _)| *b == r.id)
            .map(|(_, p)| *p)
            .collect();
        view_of(&r, parents)
    }))
}

/// The batch record.
pub fn get_batch(conn: &mut PgConnection, id: Uuid) -> Result<BatchDetail, AppError> {
    let row = find_batch(conn, id)?;
    let parents = parents_of(conn, id)?;
    let results = results_of(conn, &row)?;
    let sigs = signatures::for_entities(conn, &[id])?;
    Ok(BatchDetail {
        batch: view_of(&row, parents),
        results,
        signatures: sigs
            .get(&id)
            .map(|v| v.iter().map(SignatureView::from).collect())
            .unwrap_or_default(),
        deviations: deviations_of(conn, id)?,
        custody: events_of(conn, id)?,
    })
}

/// The batch as a plain view (for responses after a change).
pub fn batch_view(conn: &mut PgConnection, id: Uuid) -> Result<BatchView, AppError> {
    let row = find_batch(conn, id)?;
    let parents = parents_of(conn, id)?;
    Ok(view_of(&row, parents))
}

/// Every audit entry of the batch's chain, oldest first.
pub fn history(conn: &mut PgConnection, id: Uuid) -> Result<Vec<AuditEntryView>, AppError> {
    find_batch(conn, id)?;
    let rows: Vec<AuditEntryRow> = audit_entries::table
        .filter(audit_entries::chain.eq(batch_chain(id)))
        .order(audit_entries::seq)
        .select(AuditEntryRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(AuditEntryView::from).collect())
}

/// The history as CSV: one row per entry, values as canonical JSON.
pub fn history_csv(entries: &[AuditEntryView]) -> Result<Vec<u8>, AppError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| AppError::Internal(anyhow::Error::new(e).context("writing CSV"));
    w.write_record([
        "seq",
        "at",
        "actor_id",
        "actor_username",
        "actor_full_name",
        "action",
        "entity_type",
        "entity_id",
        "reason",
        "before",
        "after",
        "prev_hash",
        "hash",
    ])
    .map_err(io)?;
    for e in entries {
        let json_text = |v: &Option<serde_json::Value>| -> Result<String, AppError> {
            match v {
                Some(v) => Ok(
                    String::from_utf8(crate::domain::hashing::canonical_json(v)?)
                        .map_err(|e| AppError::Internal(e.into()))?,
                ),
                None => Ok(String::new()),
            }
        };
        w.write_record([
            e.seq.to_string(),
            crate::domain::hashing::hash_timestamp(e.at),
            e.actor
                .as_ref()
                .map(|a| a.id.to_string())
                .unwrap_or_default(),
            e.actor
                .as_ref()
                .map(|a| a.username.clone())
                .unwrap_or_default(),
            e.actor
                .as_ref()
                .map(|a| a.full_name.clone())
                .unwrap_or_default(),
            e.action.clone(),
            e.entity_type.clone(),
            e.entity_id.map(|i| i.to_string()).unwrap_or_default(),
            e.reason.clone().unwrap_or_default(),
            json_text(&e.before)?,
            json_text(&e.after)?,
            e.prev_hash.clone(),
            e.hash.clone(),
        ])
        .map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing CSV: {e}")))
}
