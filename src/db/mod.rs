//! The database: schema, row structs, pool, migrations, and the embedded
//! private PostgreSQL cluster used when no `DATABASE_URL` is given.

pub mod binding;
pub mod digest;
pub mod embedded;
pub mod models;
pub mod pool;
pub mod prepared;
pub mod roles;
pub mod schema;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Applies every pending migration; returns how many were applied.
pub fn run_migrations(conn: &mut PgConnection) -> anyhow::Result<usize> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("applying database migrations")?;
    Ok(applied.len())
}

/// Whether every migration is applied. Only reads diesel's table of applied
/// versions (the harness's own check would try to create it, which the app
/// role may not).
pub fn migrations_current(conn: &mut PgConnection) -> anyhow::Result<bool> {
    use diesel::RunQueryDsl;
    use diesel::migration::MigrationSource;
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)?
            .into_iter()
            .map(|a| a.version)
            .collect();
    let known = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(known
        .iter()
        .all(|m| applied.contains(&m.name().version().to_string())))
}
