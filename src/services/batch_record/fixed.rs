//! What a batch's record holds that never changes: its product and its
//! specification (version and tests). The database refuses any change to
//! them once written (triggers `products_append_only`, `spec_tests_append_only`,
//! `specifications_transition`, which lets only the status move), so each
//! is read once per process and shared: a batch's record is then read with
//! one statement, and several instances can't disagree about what is fixed.

use crate::db::models::{ProductRow, SpecTestRow};
use crate::db::schema::{products, spec_tests, specifications};
use crate::domain::custody::StorageRange;
use crate::domain::decimal::Decimal;
use crate::domain::record::{Product, Specification};
use crate::error::AppError;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use uuid::Uuid;

/// Immutable records by id.
struct Fixed<T> {
    by_id: OnceLock<RwLock<HashMap<Uuid, Arc<T>>>>,
}

impl<T> Fixed<T> {
    const fn new() -> Self {
        Fixed {
            by_id: OnceLock::new(),
        }
    }

    fn get_or_read(
        &self,
        id: Uuid,
        read: impl FnOnce() -> Result<T, AppError>,
    ) -> Result<Arc<T>, AppError> {
        let map = self.by_id.get_or_init(RwLock::default);
        // A poisoned lock only means a panic elsewhere while reading: the
        // map itself holds only complete, immutable values.
        if let Some(found) = map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
        {
            return Ok(found.clone());
        }
        let value = Arc::new(read()?);
        map.write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, value.clone());
        Ok(value)
    }
}

static PRODUCTS: Fixed<Product> = Fixed::new();
static SPECIFICATIONS: Fixed<Specification> = Fixed::new();

/// The product and the specification of a batch.
pub fn of(
    conn: &mut PgConnection,
    product_id: Uuid,
    spec_id: Uuid,
) -> Result<(Arc<Product>, Arc<Specification>), AppError> {
    let product = PRODUCTS.get_or_read(product_id, || {
        let row: ProductRow = products::table
            .find(product_id)
            .select(ProductRow::as_select())
            .first(conn)?;
        product_of(&row)
    })?;
    let spec = SPECIFICATIONS.get_or_read(spec_id, || {
        let version: String = specifications::table
            .find(spec_id)
            .select(specifications::version)
            .first(conn)?;
        let tests: Vec<SpecTestRow> = spec_tests::table
            .filter(spec_tests::spec_id.eq(spec_id))
            .order(spec_tests::position)
            .select(SpecTestRow::as_select())
            .load(conn)?;
        Ok(Specification {
            id: spec_id,
            version,
            tests: tests
                .iter()
                .map(SpecTestRow::to_test_def)
                .collect::<Result<_, _>>()?,
        })
    })?;
    Ok((product, spec))
}

/// What the rules need of a stored product.
fn product_of(p: &ProductRow) -> Result<Product, AppError> {
    let bound = |what: &'static str, t: &Option<String>| {
        t.as_deref()
            .map(|t| {
                Decimal::from_stored(t).map_err(|_| {
                    AppError::Internal(anyhow::anyhow!("product {} has a bad {what}: {t}", p.id))
                })
            })
            .transpose()
    };
    Ok(Product {
        id: p.id,
        code: p.code.clone(),
        name: p.name.clone(),
        product_type: p.product_type.clone(),
        storage: StorageRange {
            min: bound("storage_min_c", &p.storage_min_c)?,
            max: bound("storage_max_c", &p.storage_max_c)?,
        },
        release_signatures_required: usize::try_from(p.release_signatures_required).unwrap_or(1),
        audit_review_required: p.audit_review_required,
    })
}
