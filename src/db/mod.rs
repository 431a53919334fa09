//! The database: schema, row structs, pool, migrations, and the embedded
//! private PostgreSQL cluster used when no `DATABASE_URL` is given.

pub mod embedded;
pub mod models;
pub mod pool;
pub mod prepared;
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

/// Whether every migration is applied.
pub fn migrations_current(conn: &mut PgConnection) -> anyhow::Result<bool> {
    let pending = conn
        .has_pending_migration(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(!pending)
}
