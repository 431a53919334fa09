//! Migrating a database, and what a migration leaves for the code to do:
//! the rows that existed before rows were bound to the trail (migration
//! 000024 lists them in `audit_rows_to_bind`) are bound here, chain by
//! chain, by one entry each (`record.bound_at_upgrade`), and the signatures
//! made before seals existed get the site's seal, once. Both say what they
//! attest: the rows and signatures as they were found at the upgrade.

use crate::auth::anchor_key::AnchorKey;
use crate::db::run_migrations;
use crate::domain::audit::{SYSTEM_CHAIN, batch_chain};
use crate::domain::hashing::hash_timestamp;
use crate::domain::signature::SealedContent;
use crate::services::audit::{AuditRecord, append};
use crate::services::in_transaction;
use anyhow::Context;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
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

#[derive(QueryableByName)]
struct Unsealed {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    signer_id: Uuid,
    #[diesel(sql_type = Text)]
    signer_username: String,
    #[diesel(sql_type = Text)]
    signer_full_name: String,
    #[diesel(sql_type = Text)]
    meaning: String,
    #[diesel(sql_type = Timestamptz)]
    signed_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Bytea, deserialize_as = crate::db::digest::HexDigest)]
    record_hash: String,
    #[diesel(sql_type = Text)]
    entity_type: String,
    #[diesel(sql_type = SqlUuid)]
    entity_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    batch_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    statement: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    statement_locale: Option<String>,
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
    let unsealed: Vec<Unsealed> = diesel::sql_query(
        "SELECT s.id, s.signer_id, s.signer_username, s.signer_full_name, s.meaning, s.signed_at, \
                s.reason, s.record_hash, s.entity_type, s.entity_id, s.batch_id, s.statement, \
                s.statement_locale \
           FROM signatures s JOIN audit_rows_to_bind b ON b.tbl = 'signatures' AND b.id = s.id \
          WHERE b.batch_id IS NOT DISTINCT FROM $1 AND s.seal IS NULL",
    )
    .bind::<Nullable<SqlUuid>, _>(batch)
    .load(c)?;
    for s in &unsealed {
        let content = SealedContent {
            id: s.id,
            signer_id: s.signer_id,
            signer_username: &s.signer_username,
            signer_full_name: &s.signer_full_name,
            meaning: &s.meaning,
            signed_at: hash_timestamp(s.signed_at),
            reason: s.reason.as_deref(),
            record_hash: &s.record_hash,
            entity_type: &s.entity_type,
            entity_id: s.entity_id,
            batch_id: s.batch_id,
            statement: s.statement.as_deref(),
            statement_locale: s.statement_locale.as_deref(),
            record_table: None,
            record_id: None,
        };
        let seal = key.seal(&content.canonical()?);
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
        "record.bound_at_upgrade",
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
