//! Saved import mappings: per product, which column of an instrument's
//! export holds which test's value, so the same export needs no retyping.
//! QA keeps them (created, replaced, retired; never deleted), each change
//! on the system chain with what it was and what it became.

use super::audit::{self, AuditRecord};
use super::{Actor, in_transaction};
use crate::db::schema::{import_mappings, products, spec_tests, specifications};
use crate::domain::audit::SYSTEM_CHAIN;
use crate::domain::audit_event::AuditEvent;
use crate::domain::import::check_mapping;
use crate::domain::roles::Action;
use crate::error::Code;
use crate::error::{AppError, FieldError};
use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A saved mapping as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportMappingView {
    pub id: Uuid,
    pub product_id: Uuid,
    /// Its name (`FlowJo viability table`), unique per product among current ones.
    pub name: String,
    /// Test code -> column header.
    pub mapping: BTreeMap<String, String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_by: Uuid,
    pub updated_at: DateTime<Utc>,
}

type Row = (
    Uuid,
    Uuid,
    String,
    Value,
    Uuid,
    DateTime<Utc>,
    Uuid,
    DateTime<Utc>,
);

const COLUMNS: (
    import_mappings::id,
    import_mappings::product_id,
    import_mappings::name,
    import_mappings::mapping,
    import_mappings::created_by,
    import_mappings::created_at,
    import_mappings::updated_by,
    import_mappings::updated_at,
) = (
    import_mappings::id,
    import_mappings::product_id,
    import_mappings::name,
    import_mappings::mapping,
    import_mappings::created_by,
    import_mappings::created_at,
    import_mappings::updated_by,
    import_mappings::updated_at,
);

fn view_of(r: Row) -> Result<ImportMappingView, AppError> {
    let (id, product_id, name, mapping, created_by, created_at, updated_by, updated_at) = r;
    Ok(ImportMappingView {
        mapping: serde_json::from_value(mapping)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored mapping {id}: {e}")))?,
        id,
        product_id,
        name,
        created_by,
        created_at,
        updated_by,
        updated_at,
    })
}

fn record_of(v: &ImportMappingView) -> Value {
    json!({"id": v.id, "product_id": v.product_id, "name": v.name, "mapping": v.mapping})
}

fn not_found(id: Uuid) -> AppError {
    AppError::refused(
        Code::ImportMappingNotFound,
        format!("no current import mapping {id}"),
    )
}

/// The current mappings of a product, by name.
pub fn list(conn: &mut PgConnection, product_id: Uuid) -> Result<Vec<ImportMappingView>, AppError> {
    let rows: Vec<Row> = import_mappings::table
        .filter(import_mappings::product_id.eq(product_id))
        .filter(import_mappings::retired_at.is_null())
        .order(import_mappings::name)
        .select(COLUMNS)
        .load(conn)?;
    rows.into_iter().map(view_of).collect()
}

/// A current mapping.
pub fn get(conn: &mut PgConnection, id: Uuid) -> Result<ImportMappingView, AppError> {
    let row: Row = import_mappings::table
        .filter(import_mappings::id.eq(id))
        .filter(import_mappings::retired_at.is_null())
        .select(COLUMNS)
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found(id))?;
    view_of(row)
}

/// A mapping as QA enters it.
#[derive(Debug, Clone)]
pub struct MappingInput {
    pub name: String,
    pub mapping: BTreeMap<String, String>,
}

/// Checks a mapping's name and columns; each test code must be a test of
/// one of the product's specifications.
fn checked(
    c: &mut PgConnection,
    product_id: Uuid,
    input: &MappingInput,
) -> Result<(String, BTreeMap<String, String>), AppError> {
    let mut errors = Vec::new();
    let name = crate::domain::text::line("name", &input.name, 80, &mut errors);
    if let Err(e) = check_mapping(&input.mapping) {
        errors.push(e);
    }
    let known: BTreeSet<String> = spec_tests::table
        .inner_join(specifications::table)
        .filter(specifications::product_id.eq(product_id))
        .select(spec_tests::code)
        .distinct()
        .load::<String>(c)?
        .into_iter()
        .collect();
    let mut mapping = BTreeMap::new();
    for (code, header) in &input.mapping {
        let code = code.trim();
        if known.contains(code) {
            mapping.insert(code.to_owned(), header.trim().to_owned());
        } else {
            errors.push(FieldError::said(
                format!("mapping.{code}"),
                "fe-not-a-test-of-product",
                &[("code", code.to_owned())],
            ));
        }
    }
    if errors.is_empty() {
        Ok((name, mapping))
    } else {
        Err(AppError::validation(errors))
    }
}

fn name_taken(
    c: &mut PgConnection,
    product_id: Uuid,
    name: &str,
    other_than: Option<Uuid>,
) -> Result<(), AppError> {
    let current: Vec<(Uuid, String)> = import_mappings::table
        .filter(import_mappings::product_id.eq(product_id))
        .filter(import_mappings::retired_at.is_null())
        .select((import_mappings::id, import_mappings::name))
        .load(c)?;
    let taken = current
        .iter()
        .any(|(id, n)| Some(*id) != other_than && n.to_lowercase() == name.to_lowercase());
    if taken {
        return Err(AppError::refused(
            Code::ImportMappingExists,
            format!("this product has a current mapping named \"{name}\" already"),
        ));
    }
    Ok(())
}

/// Saves a new mapping for a product (QA).
pub fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    product_id: Uuid,
    input: &MappingInput,
) -> Result<ImportMappingView, AppError> {
    actor.authorize(Action::DefineProducts)?;
    in_transaction(conn, |c| {
        let exists: bool =
            diesel::select(diesel::dsl::exists(products::table.find(product_id))).get_result(c)?;
        if !exists {
            return Err(AppError::refused(
                Code::ProductNotFound,
                format!("no product {product_id}"),
            ));
        }
        let (name, mapping) = checked(c, product_id, input)?;
        name_taken(c, product_id, &name, None)?;
        let now = Utc::now().trunc_subsecs(6);
        let view = ImportMappingView {
            id: Uuid::now_v7(),
            product_id,
            name,
            mapping,
            created_by: actor.id,
            created_at: now,
            updated_by: actor.id,
            updated_at: now,
        };
        diesel::insert_into(import_mappings::table)
            .values((
                import_mappings::id.eq(view.id),
                import_mappings::product_id.eq(view.product_id),
                import_mappings::name.eq(&view.name),
                import_mappings::mapping.eq(json!(view.mapping)),
                import_mappings::created_by.eq(view.created_by),
                import_mappings::created_at.eq(view.created_at),
                import_mappings::updated_by.eq(view.updated_by),
                import_mappings::updated_at.eq(view.updated_at),
            ))
            .execute(c)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::ImportMappingCreated,
                "import_mapping",
                Some(view.id),
            )
            .after(record_of(&view)),
        )?;
        Ok(view)
    })
}

fn lock(c: &mut PgConnection, id: Uuid) -> Result<ImportMappingView, AppError> {
    let row: Row = import_mappings::table
        .filter(import_mappings::id.eq(id))
        .filter(import_mappings::retired_at.is_null())
        .select(COLUMNS)
        .for_update()
        .first(c)
        .optional()?
        .ok_or_else(|| not_found(id))?;
    view_of(row)
}

/// Replaces a mapping's name and columns (QA).
pub fn replace(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    input: &MappingInput,
) -> Result<ImportMappingView, AppError> {
    actor.authorize(Action::DefineProducts)?;
    in_transaction(conn, |c| {
        let before = lock(c, id)?;
        let (name, mapping) = checked(c, before.product_id, input)?;
        name_taken(c, before.product_id, &name, Some(id))?;
        let after = ImportMappingView {
            name,
            mapping,
            updated_by: actor.id,
            updated_at: Utc::now().trunc_subsecs(6),
            ..before.clone()
        };
        diesel::update(import_mappings::table.find(id))
            .set((
                import_mappings::name.eq(&after.name),
                import_mappings::mapping.eq(json!(after.mapping)),
                import_mappings::updated_by.eq(after.updated_by),
                import_mappings::updated_at.eq(after.updated_at),
            ))
            .execute(c)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::ImportMappingReplaced,
                "import_mapping",
                Some(id),
            )
            .change(&record_of(&before), &record_of(&after)),
        )?;
        Ok(after)
    })
}

/// Retires a mapping (QA): it is kept, no longer offered or accepted.
pub fn retire(conn: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<(), AppError> {
    actor.authorize(Action::DefineProducts)?;
    in_transaction(conn, |c| {
        let before = lock(c, id)?;
        diesel::update(import_mappings::table.find(id))
            .set(import_mappings::retired_at.eq(Some(Utc::now().trunc_subsecs(6))))
            .execute(c)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::ImportMappingRetired,
                "import_mapping",
                Some(id),
            )
            .before(record_of(&before)),
        )?;
        Ok(())
    })
}
