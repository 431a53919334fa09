//! Trends across batches (continued process verification): one point per
//! batch of a product, its current result of a numeric test, charted by
//! `domain::trend`. Anyone signed in reads it; nothing is written.

use super::batch_record::{product_and_spec, series};
use crate::db::schema::{products, specifications};
use crate::domain::StoredName;
use crate::domain::spec::{SpecStatus, TestKind};
use crate::domain::trend::{self, Rule};
use crate::error::AppError;
use crate::error::Code;
use bigdecimal::{BigDecimal, ToPrimitive};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

/// One batch's point.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    pub batch_id: Uuid,
    pub batch_number: String,
    /// The value as entered.
    pub value: String,
    pub performed_at: DateTime<Utc>,
    /// `pass` or `fail` against the specification.
    pub outcome: String,
    /// The rules this point completes (`nelson_1`, `nelson_2`, `nelson_3`,
    /// `nelson_5`); empty when in trend.
    #[schema(value_type = Vec<String>)]
    pub violations: Vec<Rule>,
}

/// The specification's limits of the test, as entered.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SpecLimits {
    pub min: Option<String>,
    pub max: Option<String>,
}

/// An individuals chart of one test across a product's batches.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Trend {
    pub product_id: Uuid,
    pub test_code: String,
    pub unit: Option<String>,
    pub spec: SpecLimits,
    pub points: Vec<TrendPoint>,
    /// Points in the baseline (the first 20).
    pub baseline_n: usize,
    /// None with fewer than 8 points (likewise `sigma`, `lcl`, `ucl`).
    pub center: Option<f64>,
    pub sigma: Option<f64>,
    pub lcl: Option<f64>,
    pub ucl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpk: Option<f64>,
    /// The baseline has no spread (every moving range 0): no limits and no
    /// rule flags.
    pub no_variation: bool,
    /// The rules applied.
    #[schema(value_type = Vec<String>)]
    pub rules: Vec<Rule>,
}

fn number(v: &BigDecimal) -> Option<f64> {
    v.round(9).to_f64()
}

/// The effective specification of `product_id`: 404 for an unknown
/// product, 409 when none is effective.
fn effective_spec(
    conn: &mut PgConnection,
    product_id: Uuid,
) -> Result<
    (
        std::sync::Arc<crate::domain::record::Product>,
        std::sync::Arc<crate::domain::record::Specification>,
    ),
    AppError,
> {
    let exists: bool =
        diesel::select(diesel::dsl::exists(products::table.find(product_id))).get_result(conn)?;
    if !exists {
        return Err(AppError::refused(
            Code::ProductNotFound,
            format!("no product {product_id}"),
        ));
    }
    let spec_id: Uuid = specifications::table
        .filter(specifications::product_id.eq(product_id))
        .filter(specifications::status.eq(SpecStatus::Effective.as_str()))
        .select(specifications::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| {
            AppError::refused(
                Code::NoEffectiveSpecification,
                "the product has no effective specification",
            )
        })?;
    product_and_spec(conn, product_id, spec_id)
}

/// What a trend page offers: the product and the numeric tests of its
/// effective specification, as `(code, name)`.
#[derive(Debug, Clone)]
pub struct Charts {
    /// Product code.
    pub product_code: String,
    /// Product name.
    pub product_name: String,
    /// The tests that have a trend.
    pub tests: Vec<(String, String)>,
}

/// The product's numeric tests (see [`Charts`]).
pub fn charts(conn: &mut PgConnection, product_id: Uuid) -> Result<Charts, AppError> {
    let (product, spec) = effective_spec(conn, product_id)?;
    Ok(Charts {
        product_code: product.code.clone(),
        product_name: product.name.clone(),
        tests: spec
            .tests
            .iter()
            .filter(|t| t.kind == TestKind::Numeric)
            .map(|t| (t.code.clone(), t.name.clone()))
            .collect(),
    })
}

/// The chart of `test_code` across the batches of `product_id`, between
/// `from` and `to` (`performed_at`). 404 for an unknown product; 422 when the
/// product's effective specification has no such numeric test.
pub fn trend(
    conn: &mut PgConnection,
    product_id: Uuid,
    test_code: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Trend, AppError> {
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(AppError::invalid_field_said("to", "fe-is-before-from"));
        }
    }
    let (_, spec) = effective_spec(conn, product_id)?;
    let tests = &spec.tests;
    let Some(def) = tests.iter().find(|t| t.code == test_code) else {
        let known: Vec<&str> = tests.iter().map(|t| t.code.as_str()).collect();
        return Err(AppError::invalid_field_with(
            "test_code",
            "fe-not-a-test-of-effective-spec",
            &[("code", test_code.to_owned()), ("known", known.join(", "))],
        ));
    };
    if def.kind != TestKind::Numeric {
        return Err(AppError::invalid_field_with(
            "test_code",
            "fe-qualitative-no-trend",
            &[("code", test_code.to_owned())],
        ));
    }
    let rows = series::points(conn, product_id, test_code, from, to)?;
    let values = rows
        .iter()
        .map(|r| series::decimal(&r.value))
        .collect::<Result<Vec<_>, _>>()?;
    let min = def.min.as_ref().map(|l| l.value.value().clone());
    let max = def.max.as_ref().map(|l| l.value.value().clone());
    let chart = trend::chart(&values, min.as_ref(), max.as_ref());
    let limits = chart.limits.as_ref();
    Ok(Trend {
        product_id,
        test_code: def.code.clone(),
        unit: def.unit.clone(),
        spec: SpecLimits {
            min: def.min.as_ref().map(|l| l.value.text().to_owned()),
            max: def.max.as_ref().map(|l| l.value.text().to_owned()),
        },
        baseline_n: chart.baseline_n,
        center: limits.and_then(|l| number(&l.center)),
        sigma: limits.and_then(|l| number(&l.sigma)),
        lcl: limits.and_then(|l| number(&l.lcl)),
        ucl: limits.and_then(|l| number(&l.ucl)),
        cpk: chart.cpk.as_ref().and_then(number),
        no_variation: chart.no_variation,
        rules: trend::RULES.to_vec(),
        points: rows
            .into_iter()
            .zip(chart.violations)
            .map(|(r, violations)| TrendPoint {
                batch_id: r.batch_id,
                batch_number: r.batch_number,
                value: r.value,
                performed_at: r.performed_at,
                outcome: r.outcome,
                violations,
            })
            .collect(),
    })
}

/// The trend as CSV: one row per point, the chart's lines on every row.
pub fn csv(t: &Trend) -> Result<Vec<u8>, AppError> {
    let line = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut w = crate::report::csv::Csv::new([
        "batch_number",
        "batch_id",
        "performed_at",
        "test_code",
        "value",
        "unit",
        "outcome",
        "violations",
        "center",
        "lcl",
        "ucl",
    ])?;
    for p in &t.points {
        let violations: Vec<&str> = p.violations.iter().map(|r| r.as_str()).collect();
        w.row([
            p.batch_number.as_str(),
            &p.batch_id.to_string(),
            &p.performed_at.to_rfc3339(),
            &t.test_code,
            &p.value,
            t.unit.as_deref().unwrap_or(""),
            &p.outcome,
            &violations.join(" "),
            &line(t.center),
            &line(t.lcl),
            &line(t.ucl),
        ])?;
    }
    Ok(w.finish()?)
}
