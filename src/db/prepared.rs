//! Constant SQL that PostgreSQL plans once per connection.
//!
//! diesel's `sql_query` marks its text unsafe to cache, so every execution
//! is parsed and planned again: for the batch record's one statement, five
//! times the cost of executing it (measured with pgbench, simple against
//! prepared protocol). A [`Prepared`] statement is a `&'static str` whose
//! placeholders `$1`, `$2`, ... appear once each, in order; diesel keeps it in
//! the connection's prepared-statement cache, keyed by its text.
//!
//! ```text
//! prepared("SELECT id FROM batches WHERE id = $1 FOR UPDATE")
//!     .bind::<Uuid, _>(id)
//!     .get_result::<Locked>(conn)
//! ```

use diesel::RunQueryDsl;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::{Error, QueryResult};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use std::marker::PhantomData;

/// A constant statement and the values bound to its placeholders so far.
#[derive(Debug, Clone, Copy)]
#[must_use = "a statement runs only when loaded or executed"]
pub struct Prepared<B> {
    sql: &'static str,
    binds: B,
}

/// A statement with no value bound yet.
pub fn prepared(sql: &'static str) -> Prepared<()> {
    Prepared { sql, binds: () }
}

/// One bound value of SQL type `ST`.
#[derive(Debug, Clone, Copy)]
pub struct Bind<ST, V> {
    value: V,
    sql_type: PhantomData<ST>,
}

/// The values bound to a statement's placeholders, first to last.
pub trait Binds {
    /// How many.
    const COUNT: usize;

    /// Writes each placeholder's SQL before it and the value at it.
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>, pieces: &[&'b str]) -> QueryResult<()>;
}

impl Binds for () {
    const COUNT: usize = 0;

    fn walk<'b>(&'b self, _: &mut AstPass<'_, 'b, Pg>, _: &[&'b str]) -> QueryResult<()> {
        Ok(())
    }
}

impl<B, ST, V> Binds for (B, Bind<ST, V>)
where
    B: Binds,
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    const COUNT: usize = B::COUNT + 1;

    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>, pieces: &[&'b str]) -> QueryResult<()> {
        self.0.walk(out, pieces)?;
        out.push_sql(pieces.get(B::COUNT).copied().unwrap_or_default());
        out.push_bind_param::<ST, V>(&self.1.value)
    }
}

impl<B> Prepared<B> {
    /// Binds the next placeholder.
    pub fn bind<ST, V>(self, value: V) -> Prepared<(B, Bind<ST, V>)> {
        Prepared {
            sql: self.sql,
            binds: (
                self.binds,
                Bind {
                    value,
                    sql_type: PhantomData,
                },
            ),
        }
    }
}

/// The SQL between the placeholders: `pieces[i]` precedes `$i+1`; the last
/// piece follows the last placeholder. `None` unless `$1..$n` each appear
/// once, in order.
fn pieces(sql: &'static str, n: usize) -> Option<Vec<&'static str>> {
    let mut out = Vec::with_capacity(n + 1);
    let mut rest = sql;
    for i in 1..=n {
        let mark = format!("${i}");
        let at = rest.find(&mark)?;
        let (before, after) = rest.split_at(at);
        out.push(before);
        rest = after.get(mark.len()..)?;
        // `$1` must not be the start of `$10`.
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
    }
    if rest.contains(&format!("${}", n + 1)) {
        return None;
    }
    out.push(rest);
    Some(out)
}

impl<B: Binds> QueryFragment<Pg> for Prepared<B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let pieces = pieces(self.sql, B::COUNT).ok_or_else(|| {
            Error::QueryBuilderError(
                format!(
                    "a prepared statement with {} values does not have $1..${} in order",
                    B::COUNT,
                    B::COUNT
                )
                .into(),
            )
        })?;
        self.binds.walk(&mut out, &pieces)?;
        out.push_sql(pieces.last().copied().unwrap_or_default());
        Ok(())
    }
}

impl<B> QueryId for Prepared<B> {
    type QueryId = ();
    // Cached by its text (which is constant), not by its type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<B> Query for Prepared<B> {
    type SqlType = Untyped;
}

impl<B, Conn> RunQueryDsl<Conn> for Prepared<B> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_split_the_text_once_each_in_order() {
        assert_eq!(
            pieces("SELECT $1, x = $2 WHERE y", 2),
            Some(vec!["SELECT ", ", x = ", " WHERE y"])
        );
        assert_eq!(pieces("SELECT 1", 0), Some(vec!["SELECT 1"]));
        assert_eq!(pieces("SELECT $2, $1", 2), None, "out of order");
        assert_eq!(pieces("SELECT $1, $1", 1), Some(vec!["SELECT ", ", $1"]));
        assert_eq!(pieces("SELECT $10", 1), None, "$1 is not $10");
        assert_eq!(
            pieces("SELECT $1, $2", 1),
            None,
            "a placeholder left unbound"
        );
    }
}
