//! Products and their versioned specifications: draft -> effective (approved
//! with an e-signature by a QA user who is not the author) -> superseded when
//! a newer version is approved.

use super::audit::{self, AuditRecord};
use super::signatures::{self, SignatureView, Signing, SigningRules};
use super::{Actor, Page, PageRequest, in_transaction};
use crate::db::models::{ProductRow, SpecRow, SpecTestRow, parse_stored};
use crate::db::schema::{products, spec_tests, specifications};
use crate::domain::StoredName;
use crate::domain::audit::SYSTEM_CHAIN;
use crate::domain::audit_event::AuditEvent;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::{
    ApproveSpecification, CreateProduct, CreateSpecification, SpecStatus, TestDef, TestKind,
    check_approval, describe_limit, validate_tests,
};
use crate::error::AppError;
use crate::error::Code;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductView {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub product_type: String,
    /// Lowest storage temperature, °C, as entered.
    pub storage_min_c: Option<String>,
    /// Highest storage temperature, °C, as entered.
    pub storage_max_c: Option<String>,
    pub release_signatures_required: i16,
    /// QA must sign a review of each batch's audit trail before release.
    pub audit_review_required: bool,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<&ProductRow> for ProductView {
    fn from(p: &ProductRow) -> Self {
        ProductView {
            id: p.id,
            code: p.code.clone(),
            name: p.name.clone(),
            product_type: p.product_type.clone(),
            storage_min_c: p.storage_min_c.clone(),
            storage_max_c: p.storage_max_c.clone(),
            release_signatures_required: p.release_signatures_required,
            audit_review_required: p.audit_review_required,
            created_by: p.created_by,
            created_at: p.created_at,
        }
    }
}

fn is_unique_violation(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

/// Creates a product (QA).
pub fn create_product(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &CreateProduct,
) -> Result<ProductView, AppError> {
    actor.authorize(Action::DefineProducts)?;
    let (min, max) = (input.storage_min_c.clone(), input.storage_max_c.clone());
    if let (Some(lo), Some(hi)) = (&min, &max) {
        if lo.value() > hi.value() {
            return Err(AppError::invalid_field_with(
                "storage_min_c",
                "fe-is-above-storage-max-c",
                &[],
            ));
        }
    }
    let signatures_required = input.release_signatures_required.map_or(1, |n| n.get());
    let row = ProductRow {
        id: Uuid::now_v7(),
        code: input.code.as_str().to_owned(),
        name: input.name.as_str().to_owned(),
        product_type: input.product_type.as_str().to_owned(),
        storage_min_c: min.map(|d| d.text().to_owned()),
        storage_max_c: max.map(|d| d.text().to_owned()),
        release_signatures_required: i16::try_from(signatures_required).unwrap_or(1),
        created_by: actor.id,
        created_at: Utc::now(),
        audit_review_required: input.audit_review_required.unwrap_or(false),
    };
    in_transaction(conn, |c| {
        diesel::insert_into(products::table)
            .values(&row)
            .execute(c)?;
        let view = ProductView::from(&row);
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::ProductCreated,
                "product",
                Some(row.id),
            )
            .after(serde_json::to_value(&view)?),
        )?;
        Ok(view)
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            AppError::refused(
                Code::ProductCodeTaken,
                format!("a product with code `{}` exists", row.code),
            )
        } else {
            e
        }
    })
}

/// Products, by creation order.
pub fn list_products(
    conn: &mut PgConnection,
    page: PageRequest,
) -> Result<Page<ProductView>, AppError> {
    let mut q = products::table
        .select(ProductRow::as_select())
        .order(products::id)
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        q = q.filter(products::id.gt(after));
    }
    let rows = q.load(conn)?;
    Ok(Page::from_rows(rows, page.limit, |p| p.id).map(|p| ProductView::from(&p)))
}

/// One product.
pub fn get_product(conn: &mut PgConnection, id: Uuid) -> Result<ProductRow, AppError> {
    products::table
        .find(id)
        .select(ProductRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::refused(Code::ProductNotFound, format!("no product {id}")))
}

/// A test of a specification as the API shows it (`test_def`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestDefView {
    pub code: String,
    pub name: String,
    pub method: String,
    pub kind: TestKind,
    pub unit: Option<String>,
    /// As entered.
    pub min: Option<String>,
    /// As entered.
    pub max: Option<String>,
    pub min_inclusive: bool,
    pub max_inclusive: bool,
    pub decimals: Option<u32>,
    pub options: Option<Vec<String>>,
    pub allowed: Vec<String>,
    pub required: bool,
    pub pending_release_allowed: bool,
    /// Only an analyst qualified for this test code records it.
    pub qualification_required: bool,
    /// The kind of instrument a result must name.
    pub instrument_kind: Option<String>,
    /// The limit as the lab reads it (`>= 95 %`).
    pub limit: String,
}

impl From<&TestDef> for TestDefView {
    fn from(t: &TestDef) -> Self {
        TestDefView {
            code: t.code.clone(),
            name: t.name.clone(),
            method: t.method.clone(),
            kind: t.kind,
            unit: t.unit.clone(),
            min: t.min.as_ref().map(|l| l.value.text().to_owned()),
            max: t.max.as_ref().map(|l| l.value.text().to_owned()),
            min_inclusive: t.min.as_ref().is_none_or(|l| l.inclusive),
            max_inclusive: t.max.as_ref().is_none_or(|l| l.inclusive),
            decimals: t.decimals,
            options: t.options.clone(),
            allowed: t.allowed.clone(),
            required: t.required,
            pending_release_allowed: t.pending_release_allowed,
            qualification_required: t.qualification_required,
            instrument_kind: t.instrument_kind.clone(),
            limit: describe_limit(t),
        }
    }
}

/// The tests of a specification, in their order.
pub fn spec_tests_of(conn: &mut PgConnection, spec_id: Uuid) -> Result<Vec<TestDef>, AppError> {
    let rows: Vec<SpecTestRow> = spec_tests::table
        .filter(spec_tests::spec_id.eq(spec_id))
        .order(spec_tests::position)
        .select(SpecTestRow::as_select())
        .load(conn)?;
    Ok(rows
        .iter()
        .map(SpecTestRow::to_test_def)
        .collect::<Result<_, _>>()?)
}

/// A specification as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SpecView {
    pub id: Uuid,
    pub product_id: Uuid,
    pub version: String,
    pub status: SpecStatus,
    pub author_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub superseded_at: Option<DateTime<Utc>>,
    pub tests: Vec<TestDefView>,
    pub signatures: Vec<SignatureView>,
}

/// What an approval signs: the specification's identity and every test.
fn spec_record(spec: &SpecRow, tests: &[TestDefView]) -> Result<Value, AppError> {
    Ok(json!({
        "id": spec.id,
        "product_id": spec.product_id,
        "version": spec.version,
        "author_id": spec.author_id,
        "tests": serde_json::to_value(tests)?,
    }))
}

fn spec_view(conn: &mut PgConnection, spec: &SpecRow) -> Result<SpecView, AppError> {
    let tests: Vec<TestDefView> = spec_tests_of(conn, spec.id)?
        .iter()
        .map(TestDefView::from)
        .collect();
    let sigs = signatures::for_entities(conn, &[spec.id])?;
    Ok(SpecView {
        id: spec.id,
        product_id: spec.product_id,
        version: spec.version.clone(),
        status: parse_stored("specification status", &spec.status)?,
        author_id: spec.author_id,
        created_at: spec.created_at,
        approved_at: spec.approved_at,
        superseded_at: spec.superseded_at,
        tests,
        signatures: sigs
            .get(&spec.id)
            .map(|v| v.iter().map(SignatureView::from).collect())
            .unwrap_or_default(),
    })
}

/// Creates a draft specification of a product (QA).
pub fn create_spec(
    conn: &mut PgConnection,
    actor: &Actor,
    product_id: Uuid,
    cmd: &CreateSpecification,
) -> Result<SpecView, AppError> {
    actor.authorize(Action::DefineProducts)?;
    let version = cmd.version.as_str().to_owned();
    let defs = validate_tests(&cmd.tests).map_err(AppError::validation)?;
    in_transaction(conn, |c| {
        get_product(c, product_id)?;
        let spec = SpecRow {
            id: Uuid::now_v7(),
            product_id,
            version: version.clone(),
            status: SpecStatus::Draft.as_str().to_owned(),
            author_id: actor.id,
            created_at: Utc::now(),
            approved_at: None,
            superseded_at: None,
        };
        diesel::insert_into(specifications::table)
            .values(&spec)
            .execute(c)?;
        let rows: Vec<SpecTestRow> = defs
            .iter()
            .enumerate()
            .map(|(i, d)| SpecTestRow {
                spec_id: spec.id,
                position: i32::try_from(i).unwrap_or(i32::MAX),
                code: d.code.clone(),
                name: d.name.clone(),
                method: d.method.clone(),
                kind: d.kind.as_str().to_owned(),
                unit: d.unit.clone(),
                min_text: d.min.as_ref().map(|l| l.value.text().to_owned()),
                max_text: d.max.as_ref().map(|l| l.value.text().to_owned()),
                min_value: d.min.as_ref().map(|l| l.value.value().clone()),
                max_value: d.max.as_ref().map(|l| l.value.value().clone()),
                min_inclusive: d.min.as_ref().is_none_or(|l| l.inclusive),
                max_inclusive: d.max.as_ref().is_none_or(|l| l.inclusive),
                decimals: d.decimals.and_then(|x| i16::try_from(x).ok()),
                options: d.options.clone(),
                allowed: d.allowed.clone(),
                required: d.required,
                pending_release_allowed: d.pending_release_allowed,
                qualification_required: d.qualification_required,
                instrument_kind: d.instrument_kind.clone(),
            })
            .collect();
        diesel::insert_into(spec_tests::table)
            .values(&rows)
            .execute(c)?;
        let view = spec_view(c, &spec)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::SpecificationCreated,
                "specification",
                Some(spec.id),
            )
            .after(spec_record(&spec, &view.tests)?),
        )?;
        Ok(view)
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            AppError::refused(
                Code::SpecVersionExists,
                format!("version `{version}` of this product exists"),
            )
        } else {
            e
        }
    })
}

/// One specification.
pub fn get_spec(conn: &mut PgConnection, id: Uuid) -> Result<SpecView, AppError> {
    let spec = find_spec(conn, id, false)?;
    spec_view(conn, &spec)
}

/// The specifications of a product, oldest first.
pub fn list_specs(conn: &mut PgConnection, product_id: Uuid) -> Result<Vec<SpecView>, AppError> {
    get_product(conn, product_id)?;
    let specs: Vec<SpecRow> = specifications::table
        .filter(specifications::product_id.eq(product_id))
        .order(specifications::id)
        .select(SpecRow::as_select())
        .load(conn)?;
    specs.iter().map(|s| spec_view(conn, s)).collect()
}

fn find_spec(conn: &mut PgConnection, id: Uuid, for_update: bool) -> Result<SpecRow, AppError> {
    let q = specifications::table.find(id).select(SpecRow::as_select());
    let found = if for_update {
        q.for_update().first(conn).optional()?
    } else {
        q.first(conn).optional()?
    };
    found.ok_or_else(|| {
        AppError::refused(
            Code::SpecificationNotFound,
            format!("no specification {id}"),
        )
    })
}

/// Approves a draft (signed, QA, not its author); the product's earlier
/// effective version becomes superseded, in the same transaction.
pub fn approve_spec(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    spec_id: Uuid,
    cmd: &ApproveSpecification,
) -> Result<SpecView, AppError> {
    actor.authorize(Action::Sign(Meaning::SpecApproved))?;
    let (password, reason) = (cmd.password.as_str(), cmd.reason.as_deref());
    in_transaction(conn, |c| {
        let draft = find_spec(c, spec_id, false)?;
        // Serialise approvals of one product's versions.
        products::table
            .find(draft.product_id)
            .select(products::id)
            .for_update()
            .first::<Uuid>(c)?;
        let spec = find_spec(c, spec_id, true)?;
        check_approval(
            parse_stored("specification status", &spec.status)?,
            spec.author_id,
            actor.id,
        )?;
        if let Err(refusal) = signatures::verify_signer(c, rules.lockout, actor, password)? {
            return Ok(Err(refusal));
        }
        let now = Utc::now();
        let previous: Option<SpecRow> = specifications::table
            .filter(specifications::product_id.eq(spec.product_id))
            .filter(specifications::status.eq(SpecStatus::Effective.as_str()))
            .select(SpecRow::as_select())
            .first(c)
            .optional()?;
        if let Some(prev) = &previous {
            diesel::update(specifications::table.find(prev.id))
                .set((
                    specifications::status.eq(SpecStatus::Superseded.as_str()),
                    specifications::superseded_at.eq(now),
                ))
                .execute(c)?;
            audit::append(
                c,
                AuditRecord::new(
                    SYSTEM_CHAIN,
                    Some(actor),
                    AuditEvent::SpecificationSuperseded,
                    "specification",
                    Some(prev.id),
                )
                .reason("a newer version was approved")
                .before(json!({"status": SpecStatus::Effective}))
                .after(json!({"status": SpecStatus::Superseded, "superseded_by": spec.id})),
            )?;
        }
        diesel::update(specifications::table.find(spec.id))
            .set((
                specifications::status.eq(SpecStatus::Effective.as_str()),
                specifications::approved_at.eq(now),
            ))
            .execute(c)?;
        let sig = signatures::record(
            c,
            rules,
            actor,
            &Signing {
                meaning: Meaning::SpecApproved,
                entity_type: "specification",
                entity_id: spec.id,
                batch_id: None,
                reason,
                signs: spec.id,
            },
        )?;
        let mut audit_rec = AuditRecord::new(
            SYSTEM_CHAIN,
            Some(actor),
            AuditEvent::SpecificationApproved,
            "specification",
            Some(spec.id),
        )
        .before(json!({"status": SpecStatus::Draft}))
        .after(json!({
            "status": SpecStatus::Effective,
            "signature_id": sig.id,
            "meaning": sig.meaning,
            "record_hash": sig.record_hash,
            "supersedes": previous.as_ref().map(|p| p.id),
        }));
        if let Some(r) = reason {
            audit_rec = audit_rec.reason(r);
        }
        audit::append(c, audit_rec)?;
        let fresh = find_spec(c, spec.id, false)?;
        Ok(Ok(spec_view(c, &fresh)?))
    })?
}
