//! GMP rows bound to the trail, as SQL: which tables, what a row's bound
//! form and a signed row's form are, and the statements verification and
//! signing read them with (docs/architecture.md "Rows bound to the trail").
//!
//! A row's bound form is PostgreSQL's jsonb of the row (time zone UTC, bytea
//! as hex) without its unbound columns and without null members; its hash is
//! SHA-256 of that jsonb's text. The database's triggers compute it when a
//! row is written (migration 000024); verification computes it here with the
//! same expression, under `SET LOCAL TimeZone = 'UTC'`, and the connections
//! of the pool are in UTC from the start ([`super::pool`]), so signing does
//! too.

use crate::domain::StoredName;
use crate::domain::signature::{Meaning, SignedTable};
use std::fmt::Write;
use std::sync::OnceLock;
use strum::VariantArray;

/// A bound table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundTable {
    /// Table name.
    pub name: &'static str,
    /// Columns outside the bound form (state, not record).
    pub unbound: &'static [&'static str],
    /// The column naming the batch whose chain binds a row; none: the
    /// system chain. A null value (a signature of no batch) is the system
    /// chain too.
    pub batch_column: Option<&'static str>,
}

const fn bound(
    name: &'static str,
    unbound: &'static [&'static str],
    batch_column: Option<&'static str>,
) -> BoundTable {
    BoundTable {
        name,
        unbound,
        batch_column,
    }
}

/// Every bound table, as the database lists them (`audit_bound_tables`).
pub const BOUND_TABLES: &[BoundTable] = &[
    bound("audit_reviews", &[], Some("batch_id")),
    bound("batch_parents", &[], Some("batch_id")),
    bound("batches", &[], Some("id")),
    bound("custody_events", &[], Some("batch_id")),
    bound("deviations", &[], Some("batch_id")),
    bound("import_mappings", &[], None),
    bound("instrument_events", &[], None),
    bound("instruments", &[], None),
    bound("material_lots", &[], None),
    bound("material_uses", &[], Some("batch_id")),
    bound("products", &[], None),
    bound("qualifications", &[], None),
    bound("results", &[], Some("batch_id")),
    bound("signatures", &[], Some("batch_id")),
    bound("source_files", &[], Some("batch_id")),
    bound("spec_tests", &[], None),
    bound("specifications", &[], None),
    bound("users", &["failed_logins", "locked_until"], None),
];

/// A `text[]` literal of `names`.
fn text_array(names: impl IntoIterator<Item = &'static str>) -> String {
    let inner: Vec<&str> = names.into_iter().collect();
    format!("'{{{}}}'::text[]", inner.join(","))
}

/// The SHA-256 of the form of the row `alias`, without `excluded` (an SQL
/// `text[]` expression).
fn form_expr(alias: &str, excluded: &str) -> String {
    format!("sha256(convert_to(jsonb_strip_nulls(to_jsonb({alias}) - {excluded})::text, 'UTF8'))")
}

/// The statement that reads the bound rows of batch chains (`$1`: the
/// batches' ids) with their forms' hashes: `(tbl, id, batch_id, hash)`.
pub fn batch_rows_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let parts: Vec<String> = BOUND_TABLES
            .iter()
            .filter_map(|t| {
                let column = t.batch_column?;
                Some(format!(
                    "SELECT '{name}'::text AS tbl, r.id, r.{column} AS batch_id, {form} AS hash \
                     FROM {name} r WHERE r.{column} = ANY($1)",
                    name = t.name,
                    form = form_expr("r", &text_array(t.unbound.iter().copied())),
                ))
            })
            .collect();
        parts.join(" UNION ALL ")
    })
}

/// The statement that reads the bound rows of the system chain: every row
/// of a table without a batch, and the rows whose batch column is null.
pub fn system_rows_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let parts: Vec<String> = BOUND_TABLES
            .iter()
            .filter(|t| t.batch_column != Some("id"))
            .map(|t| {
                let filter = t
                    .batch_column
                    .map(|c| format!(" WHERE r.{c} IS NULL"))
                    .unwrap_or_default();
                format!(
                    "SELECT '{name}'::text AS tbl, r.id, NULL::uuid AS batch_id, {form} AS hash \
                     FROM {name} r{filter}",
                    name = t.name,
                    form = form_expr("r", &text_array(t.unbound.iter().copied())),
                )
            })
            .collect();
        parts.join(" UNION ALL ")
    })
}

/// How many rows each bound table holds: `(tbl, n)`.
pub fn counts_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        BOUND_TABLES
            .iter()
            .map(|t| {
                format!(
                    "SELECT '{name}'::text AS tbl, count(*) AS n FROM {name}",
                    name = t.name
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    })
}

/// The meanings with the columns their signed forms leave out, as an SQL
/// `VALUES` list `m(meaning, excluded)`.
fn meanings_values() -> String {
    let rows: Vec<String> = Meaning::VARIANTS
        .iter()
        .map(|m| {
            let table = m.signs();
            let unbound = BOUND_TABLES
                .iter()
                .find(|t| t.name == table.as_str())
                .map(|t| t.unbound)
                .unwrap_or(&[]);
            format!(
                "('{}', {})",
                m.as_str(),
                text_array(unbound.iter().chain(m.changes_after()).copied())
            )
        })
        .collect();
    format!("(VALUES {}) AS m(meaning, excluded)", rows.join(", "))
}

/// The SHA-256 of a signed row's form, for a row `s` with `record_table`
/// and `record_id` joined to [`meanings_values`] as `m`: the bound form
/// without the meaning's later-changing columns; a specification's with
/// its tests in order; an audit entry's is its hash (which its chain
/// proves).
fn signed_form_expr() -> String {
    let mut out = String::from("CASE s.record_table");
    for table in SignedTable::VARIANTS {
        let name = table.as_str();
        let form = match table {
            SignedTable::AuditEntries => {
                "(SELECT t.hash FROM audit_entries t WHERE t.id = s.record_id)".to_owned()
            }
            SignedTable::Specifications => format!(
                "(SELECT sha256(convert_to(jsonb_build_array(\
                    jsonb_strip_nulls(to_jsonb(t) - m.excluded), \
                    coalesce((SELECT jsonb_agg(jsonb_strip_nulls(to_jsonb(x)) ORDER BY x.position) \
                                FROM spec_tests x WHERE x.spec_id = t.id), '[]'::jsonb))::text, 'UTF8')) \
                  FROM {name} t WHERE t.id = s.record_id)"
            ),
            _ => format!(
                "(SELECT {} FROM {name} t WHERE t.id = s.record_id)",
                form_expr("t", "m.excluded")
            ),
        };
        let _ = write!(out, " WHEN '{name}' THEN {form}");
    }
    out.push_str(" END");
    out
}

/// The statement signing reads a row's signed form with (`$1` table, `$2`
/// id, `$3` meaning): one column, `form`.
pub fn signed_form_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {} AS form \
               FROM (SELECT $1::text AS record_table, $2::uuid AS record_id, $3::text AS meaning) s \
               JOIN {} ON m.meaning = s.meaning",
            signed_form_expr(),
            meanings_values()
        )
    })
}

/// The columns of a signature verification checks, with its signed row's
/// form as the row is now (`form`; none for a signature made before rows
/// were named, or whose row is gone).
const SIGNATURE_COLUMNS: &str = "s.id, s.signer_id, s.signer_username, s.signer_full_name, \
    s.meaning, s.signed_at, s.reason, s.record_hash, s.entity_type, s.entity_id, s.batch_id, \
    s.statement, s.statement_locale, s.record_table, s.record_id, s.seal, s.xact";

/// The signatures of batch chains (`$1`: the batches' ids), with their
/// signed rows' forms.
pub fn batch_signatures_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {SIGNATURE_COLUMNS}, {} AS form FROM signatures s \
               LEFT JOIN {} ON m.meaning = s.meaning WHERE s.batch_id = ANY($1)",
            signed_form_expr(),
            meanings_values()
        )
    })
}

/// The signatures of the system chain (no batch), with their signed rows'
/// forms.
pub fn system_signatures_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {SIGNATURE_COLUMNS}, {} AS form FROM signatures s \
               LEFT JOIN {} ON m.meaning = s.meaning WHERE s.batch_id IS NULL",
            signed_form_expr(),
            meanings_values()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signed_table_is_bound_or_the_trail_itself() {
        for t in SignedTable::VARIANTS {
            assert!(
                *t == SignedTable::AuditEntries
                    || BOUND_TABLES.iter().any(|b| b.name == t.as_str()),
                "{} is signed but not bound",
                t.as_str()
            );
        }
    }

    #[test]
    fn the_statements_name_every_bound_table() {
        for t in BOUND_TABLES {
            assert!(counts_sql().contains(&format!("FROM {}", t.name)));
            let in_batch = batch_rows_sql().contains(&format!("FROM {} r", t.name));
            let in_system = system_rows_sql().contains(&format!("FROM {} r", t.name));
            match t.batch_column {
                Some("id") => assert!(in_batch && !in_system, "{}", t.name),
                Some(_) => assert!(in_batch && in_system, "{}", t.name),
                None => assert!(!in_batch && in_system, "{}", t.name),
            }
        }
        assert!(system_rows_sql().contains("'{failed_logins,locked_until}'::text[]"));
    }
}
