//! Batches: creation (binding the product's effective specification),
//! lists, and the batch record with its results, signatures, deviations and
//! custody.

use super::audit::{self, AuditRecord};
use super::batch_record::views::{BatchDetail, BatchView};
use super::batch_record::{self, batch_of};
use super::{Actor, Page, PageRequest, in_transaction};
use crate::db::models::{BatchRow, SpecRow};
use crate::db::schema::{batch_parents, batches, products, specifications};
use crate::domain::FieldError;
use crate::domain::StoredName;
use crate::domain::audit::batch_chain;
use crate::domain::audit_event::AuditEvent;
use crate::domain::batch::BatchStatus;
use crate::domain::decimal::Decimal;
use crate::domain::din::Din;
use crate::domain::record::BatchRecord;
use crate::domain::roles::Action;
use crate::domain::spec::SpecStatus;
use crate::error::AppError;
use crate::error::Code;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

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

/// Creates a batch bound to its product's effective specification.
pub fn create_batch(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &NewBatchInput,
) -> Result<BatchView, AppError> {
    actor.authorize(Action::CreateBatch)?;
    let mut errors = Vec::new();
    let batch_number = input.batch_number.trim().to_owned();
    if batch_number.is_empty()
        || batch_number.chars().count() > 64
        || batch_number
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        errors.push(FieldError::said(
            "batch_number",
            "fe-must-be-1-to-64-characters-without-spaces",
            &[],
        ));
    }
    let now = Utc::now();
    if input.manufactured_at > now {
        errors.push(FieldError::said("manufactured_at", "field-in-future", &[]));
    }
    if input.expires_at <= input.manufactured_at {
        errors.push(FieldError::said(
            "expires_at",
            "fe-must-be-after-manufactured-at",
            &[],
        ));
    }
    let donor_din = input.donor_din.as_deref().and_then(|raw| {
        Din::parse(raw)
            .map_err(|m| errors.push(FieldError::worded("donor_din", m)))
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
                errors.push(FieldError::said(
                    "quantity",
                    "fe-must-be-greater-than-zero",
                    &[],
                ));
                None
            }
            Err(m) => {
                errors.push(FieldError::said("quantity", m, &[]));
                None
            }
        });
    let mut parents = input.parent_batch_ids.clone();
    parents.sort();
    parents.dedup();
    if parents.len() != input.parent_batch_ids.len() {
        errors.push(FieldError::said(
            "parent_batch_ids",
            "fe-lists-a-batch-twice",
            &[],
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    in_transaction(conn, |c| {
        let product_code: String = products::table
            .find(input.product_id)
            .select(products::code)
            .first(c)
            .optional()?
            .ok_or_else(|| {
                AppError::invalid_field_with(
                    "product_id",
                    "fe-no-product",
                    &[("id", input.product_id.to_string())],
                )
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
                FieldError::said(
                    format!("parent_batch_ids[{i}]"),
                    "fe-no-batch",
                    &[("id", p.to_string())],
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(AppError::validation(missing));
        }
        let spec: SpecRow = specifications::table
            .filter(specifications::product_id.eq(input.product_id))
            .filter(specifications::status.eq(SpecStatus::Effective.as_str()))
            .select(SpecRow::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| {
                AppError::refused(
                    Code::NoEffectiveSpecification,
                    format!(
                        "product {} has no effective specification: approve one first",
                        product_code
                    ),
                )
            })?;
        let row = BatchRow {
            id: Uuid::now_v7(),
            batch_number: batch_number.clone(),
            product_id: input.product_id,
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
        let view = BatchView::from(&batch_of(row.clone(), parents.clone())?);
        let chain = batch_chain(row.id);
        let mut rec = AuditRecord::new(
            &chain,
            Some(actor),
            AuditEvent::BatchCreated,
            "batch",
            Some(row.id),
        )
        .after(serde_json::to_value(&view)?);
        rec.batch_id = Some(row.id);
        audit::append(c, rec)?;
        Ok(view)
    })
    .map_err(|e| match e {
        AppError::Database(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            AppError::refused(
                Code::BatchNumberTaken,
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
        let mut errors = Vec::new();
        crate::domain::text::line("q", text, 100, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        let din = crate::domain::din::Din::searched(text);
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
    let page = Page::from_rows(rows, page.limit, |r| r.id);
    let items = page
        .items
        .into_iter()
        .map(|r| {
            let mut parents: Vec<Uuid> = links
                .iter()
                .filter(|(b, _)| *b == r.id)
                .map(|(_, p)| *p)
                .collect();
            parents.sort();
            Ok(BatchView::from(&batch_of(r, parents)?))
        })
        .collect::<Result<_, AppError>>()?;
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// Everything recorded about the batch, as the domain sees it: one statement.
pub fn record(conn: &mut PgConnection, id: Uuid) -> Result<BatchRecord, AppError> {
    batch_record::read(conn, id)
}

/// The batch record: one statement.
pub fn get_batch(conn: &mut PgConnection, id: Uuid) -> Result<BatchDetail, AppError> {
    Ok(BatchDetail::from(&batch_record::read(conn, id)?))
}

/// The ids of batches named by their numbers (a parent typed or scanned on
/// a form), in order; an unknown number is 422 naming its place.
pub fn ids_of_numbers(conn: &mut PgConnection, numbers: &[String]) -> Result<Vec<Uuid>, AppError> {
    let found: Vec<(String, Uuid)> = batches::table
        .filter(batches::batch_number.eq_any(numbers))
        .select((batches::batch_number, batches::id))
        .load(conn)?;
    let mut errors = Vec::new();
    let ids = numbers
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let id = found.iter().find(|(f, _)| f == n).map(|(_, id)| *id);
            if id.is_none() {
                errors.push(FieldError::said(
                    format!("parent_batch_ids[{i}]"),
                    "fe-names-no-batch",
                    &[("number", n.to_string())],
                ));
            }
            id
        })
        .collect();
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(AppError::validation(errors))
    }
}
