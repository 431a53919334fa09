//! A product's test across its batches: one point per batch, its current
//! result (the latest not replaced, not rejected in review and not
//! invalidated by its investigation; the record's rules leave at most one).
//! Lower tier: the trend chart reads the whole series, release readiness
//! reads only what one batch's point needs (the baseline and the 8 points
//! before it), both from `trend_points` (the current numeric results, kept
//! by triggers) through its index `trend_points_series`.

use crate::error::AppError;
use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use std::str::FromStr;
use uuid::Uuid;

/// One batch's point.
#[derive(Debug, Clone, QueryableByName)]
pub struct Point {
    #[diesel(sql_type = SqlUuid)]
    pub batch_id: Uuid,
    #[diesel(sql_type = Text)]
    pub batch_number: String,
    /// The value as entered.
    #[diesel(sql_type = Text)]
    pub value: String,
    #[diesel(sql_type = Timestamptz)]
    pub performed_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub outcome: String,
}

/// The series (`$1` product, `$2` test, `$3`/`$4` the window), in
/// `performed_at` order, ties by batch id, one keyset page (`$5`/`$6`: after
/// this point, `$7` rows) at a time: each page is one ordered range of index
/// `trend_points_series`, so a whole history is read through the index even
/// where the test's points are a large share of the list (a single read of
/// a million points was planned as a sequential scan), and each point's
/// batch number is one primary-key lookup (a join was planned as a hash join
/// over every batch for a page of 10 000). The list holds
/// exactly the current numeric results
/// (`domain::result::ResultFacts::is_current_candidate`: not superseded, not
/// rejected in review, not invalidated), kept so by the triggers of
/// migration 000019.
macro_rules! points_page {
    ($after:literal) => {
        concat!(
            "SELECT p.batch_id,
                    (SELECT b.batch_number FROM batches b WHERE b.id = p.batch_id) AS batch_number,
                    p.value_text AS value, p.performed_at, p.outcome
               FROM trend_points p
              WHERE p.product_id = $1 AND p.test_code = $2
                AND ($3::timestamptz IS NULL OR p.performed_at >= $3)
                AND ($4::timestamptz IS NULL OR p.performed_at <= $4) ",
            $after,
            " ORDER BY p.performed_at, p.batch_id LIMIT $7"
        )
    };
}
const FIRST_PAGE: &str = points_page!("AND $5::timestamptz IS NULL AND $6::uuid IS NULL");
const NEXT_PAGE: &str = points_page!("AND (p.performed_at, p.batch_id) > ($5, $6)");

/// Points per page.
const PAGE: i64 = 10_000;

/// The series of `test_code` across the batches of `product_id`, read page
/// by page in one read-only snapshot.
pub fn points(
    conn: &mut PgConnection,
    product_id: Uuid,
    test_code: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<Point>, AppError> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|c| {
            let mut all: Vec<Point> = Vec::new();
            loop {
                let after = all.last().map(|p| (p.performed_at, p.batch_id));
                let page: Vec<Point> = diesel::sql_query(if after.is_some() {
                    NEXT_PAGE
                } else {
                    FIRST_PAGE
                })
                .bind::<SqlUuid, _>(product_id)
                .bind::<Text, _>(test_code)
                .bind::<Nullable<Timestamptz>, _>(from)
                .bind::<Nullable<Timestamptz>, _>(to)
                .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
                .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
                .bind::<BigInt, _>(PAGE)
                .load(c)?;
                let full = i64::try_from(page.len()).unwrap_or(i64::MAX) == PAGE;
                all.extend(page);
                if !full {
                    return Ok(all);
                }
            }
        })
}

/// For each (test, performed_at) of one batch's current results: the
/// series' first 20 values (its baseline) and the 8 values before the
/// batch's point, in order. One statement for every test, two short ranges
/// of index `trend_points_series` each.
const AROUND: &str = "\
SELECT c.code,
  ARRAY(SELECT p.value_text FROM trend_points p
         WHERE p.product_id = $1 AND p.test_code = c.code
         ORDER BY p.performed_at, p.batch_id LIMIT 20) AS baseline,
  ARRAY(SELECT x.value_text FROM (
          SELECT p.value_text, p.performed_at, p.batch_id FROM trend_points p
           WHERE p.product_id = $1 AND p.test_code = c.code
             AND (p.performed_at, p.batch_id) < (c.at, $4)
           ORDER BY p.performed_at DESC, p.batch_id DESC LIMIT 8) x
         ORDER BY x.performed_at, x.batch_id) AS before
FROM unnest($2::text[], $3::timestamptz[]) AS c(code, at)";

#[derive(QueryableByName)]
struct AroundRow {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Array<Text>)]
    baseline: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    before: Vec<String>,
}

/// What one batch's point of a test is judged against.
#[derive(Debug, Clone)]
pub struct Neighbourhood {
    pub test_code: String,
    /// The series' first values (at most 20).
    pub baseline: Vec<BigDecimal>,
    /// The values just before the batch's point (at most 8), in order.
    pub before: Vec<BigDecimal>,
}

/// A stored numeric result's text as an exact decimal.
pub fn decimal(t: &str) -> Result<BigDecimal, AppError> {
    BigDecimal::from_str(t).map_err(|e| {
        AppError::Internal(anyhow::anyhow!(
            "stored value {t} of a numeric result is not a decimal: {e}"
        ))
    })
}

/// Stored decimal texts as exact decimals.
pub fn decimals<S: AsRef<str>>(texts: &[S]) -> Result<Vec<BigDecimal>, AppError> {
    texts.iter().map(|t| decimal(t.as_ref())).collect()
}

/// The neighbourhood of batch `batch_id`'s points, one per `(test, performed_at)`.
pub fn around(
    conn: &mut PgConnection,
    product_id: Uuid,
    batch_id: Uuid,
    points: &[(String, DateTime<Utc>)],
) -> Result<Vec<Neighbourhood>, AppError> {
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let codes: Vec<&str> = points.iter().map(|(c, _)| c.as_str()).collect();
    let ats: Vec<DateTime<Utc>> = points.iter().map(|(_, at)| *at).collect();
    let rows: Vec<AroundRow> = diesel::sql_query(AROUND)
        .bind::<SqlUuid, _>(product_id)
        .bind::<Array<Text>, _>(codes)
        .bind::<Array<Timestamptz>, _>(ats)
        .bind::<SqlUuid, _>(batch_id)
        .load(conn)?;
    rows.into_iter()
        .map(|r| {
            Ok(Neighbourhood {
                test_code: r.code,
                baseline: decimals(&r.baseline)?,
                before: decimals(&r.before)?,
            })
        })
        .collect()
}
