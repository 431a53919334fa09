//! Migrating a database, and what a migration leaves for the code to do:
//! the rows that existed before rows were bound to the trail (migration
//! 000024 lists them in `audit_rows_to_bind`) are bound here, chain by
//! chain, by one entry each (`record.bound_at_upgrade`), and the signatures
//! made before seals existed get the site's seal, once. Both say what they
//! attest: the rows and signatures as they were found at the upgrade.

use crate::auth::anchor_key::AnchorKey;
use crate::db::models::SignatureRow;
use crate::db::run_migrations;
use crate::domain::audit::{SYSTEM_CHAIN, batch_chain};
use crate::domain::audit_event::AuditEvent;
use crate::services::audit::{AuditRecord, append};
use crate::services::in_transaction;
use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Integer, Nullable, Uuid as SqlUuid};
use serde_json::json;
use uuid::Uuid;

/// Chains bound per transaction.
const CHAINS_AT_ONCE: i64 = 200;

/// Applies every pending migration as the schema's owner, then binds the
/// rows that existed before binding did; returns the migrations applied.
pub fn migrate(conn: &mut PgConnection, key: &AnchorKey) -> anyhow::Result<usize> {
    let applied = run_migrations(conn)?;
    let bound = bind_existing(conn, key)?;
    if bound.chains > 0 {
        tracing::info!(
            chains = bound.chains,
            rows = bound.rows,
            signatures_sealed = bound.sealed,
            "rows written before they were bound to the trail are bound now"
        );
    }
    Ok(applied)
}

/// What [`bind_existing`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bound {
    /// Chains that got a binding entry.
    pub chains: u64,
    /// Rows bound.
    pub rows: u64,
    /// Signatures sealed.
    pub sealed: u64,
}

#[derive(QueryableByName)]
struct ChainToBind {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    batch_id: Option<Uuid>,
}

#[derive(QueryableByName)]
struct Pended {
    #[diesel(sql_type = Integer)]
    n: i32,
}

/// Binds the rows listed at the upgrade, chain by chain, as they are now;
/// seals the signatures among them that have no seal. Idempotent: a chain's
/// rows leave the list in the transaction that binds them.
pub fn bind_existing(conn: &mut PgConnection, key: &AnchorKey) -> anyhow::Result<Bound> {
    let mut done = Bound::default();
    loop {
        let chains: Vec<ChainToBind> = diesel::sql_query(
            "SELECT DISTINCT batch_id FROM audit_rows_to_bind ORDER BY batch_id NULLS FIRST LIMIT $1",
        )
        .bind::<diesel::sql_types::BigInt, _>(CHAINS_AT_ONCE)
        .load(conn)
        .context("reading the rows to bind")?;
        if chains.is_empty() {
            return Ok(done);
        }
        let step = in_transaction(conn, |c| {
            let mut step = Bound::default();
            for chain in &chains {
                let (rows, sealed) = bind_chain(c, key, chain.batch_id)?;
                step.chains += 1;
                step.rows += rows;
                step.sealed += sealed;
            }
            Ok(step)
        })
        .map_err(|e| anyhow::anyhow!("binding the rows of earlier versions: {e}"))?;
        done.chains += step.chains;
        done.rows += step.rows;
        done.sealed += step.sealed;
    }
}

fn bind_chain(
    c: &mut PgConnection,
    key: &AnchorKey,
    batch: Option<Uuid>,
) -> Result<(u64, u64), crate::error::AppError> {
    // A batch's chain is written under its row lock.
    if let Some(id) = batch {
        diesel::sql_query("SELECT id FROM batches WHERE id = $1 FOR UPDATE")
            .bind::<SqlUuid, _>(id)
            .execute(c)?;
    }
    let unsealed: Vec<SignatureRow> = diesel::sql_query(
        "SELECT s.* \
           FROM signatures s JOIN audit_rows_to_bind b ON b.tbl = 'signatures' AND b.id = s.id \
          WHERE b.batch_id IS NOT DISTINCT FROM $1 AND s.seal IS NULL",
    )
    .bind::<Nullable<SqlUuid>, _>(batch)
    .load(c)?;
    for s in &unsealed {
        let seal = key.seal(&s.sealed_content().canonical()?);
        diesel::sql_query("UPDATE signatures SET seal = $1 WHERE id = $2")
            .bind::<Bytea, _>(seal.as_slice())
            .bind::<SqlUuid, _>(s.id)
            .execute(c)?;
    }
    let pended: Pended = diesel::sql_query("SELECT cellqc_pend_rows_to_bind($1) AS n")
        .bind::<Nullable<SqlUuid>, _>(batch)
        .get_result(c)?;
    let chain = batch.map_or_else(|| SYSTEM_CHAIN.to_owned(), batch_chain);
    let mut rec = AuditRecord::new(
        &chain,
        None,
        AuditEvent::RecordBoundAtUpgrade,
        if batch.is_some() { "batch" } else { "system" },
        Some(batch.unwrap_or(Uuid::nil())),
    )
    .reason("rows written before rows were bound to the trail, bound as found at the upgrade")
    .after(json!({"rows": pended.n, "signatures_sealed": unsealed.len()}));
    rec.batch_id = batch;
    append(c, rec)?;
    Ok((
        u64::try_from(pended.n).unwrap_or(0),
        u64::try_from(unsealed.len()).unwrap_or(0),
    ))
}
