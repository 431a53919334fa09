//! A batch's history: every entry of its hash chain, oldest first, as JSON
//! or CSV (the auditor's export).

use super::audit::AuditEntryView;
use super::batch_record::batch_not_found;
use crate::db::models::AuditEntryRow;
use crate::db::schema::{audit_chain_heads, audit_entries, batches};
use crate::domain::audit::{SYSTEM_CHAIN_ID, batch_chain};
use crate::error::AppError;
use crate::report::csv::Csv;
use crate::report::history::{ResultNames, changes, flat, result_names, sentence};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text, Uuid as SqlUuid};
use uuid::Uuid;

/// Every audit entry of the batch's chain, with the system chain's entries
/// that name the batch (refused signatures and refused releases), oldest
/// first.
pub fn history(conn: &mut PgConnection, id: Uuid) -> Result<Vec<AuditEntryView>, AppError> {
    let chain = batch_chain(id);
    // The batch's chain by its key, read by name from the head; the system
    // chain's entries naming the batch by their own (partial) index.
    let rows: Vec<AuditEntryRow> = audit_entries::table
        .inner_join(audit_chain_heads::table)
        .filter(
            diesel::dsl::sql::<Bool>(
                "(audit_entries.chain_id = (SELECT k.id FROM audit_chain_heads k WHERE k.chain = ",
            )
            .bind::<Text, _>(&chain)
            .sql(&format!(
                ") OR (audit_entries.chain_id = {SYSTEM_CHAIN_ID} AND audit_entries.batch_id = "
            ))
            .bind::<SqlUuid, _>(id)
            .sql("))"),
        )
        .order((audit_entries::chain_id, audit_entries::seq))
        .select(AuditEntryRow::as_select())
        .load(conn)?;
    // The batch's chain in its own order; each entry of the system chain
    // placed by its time among them.
    let (own, others): (Vec<AuditEntryRow>, Vec<AuditEntryRow>) =
        rows.into_iter().partition(|r| r.chain == chain);
    let mut rows = own;
    for o in others {
        let at = rows.iter().position(|r| r.at > o.at).unwrap_or(rows.len());
        rows.insert(at, o);
    }
    // Every batch's chain starts with its creation: no entry, no batch.
    if rows.is_empty() {
        let exists: bool =
            diesel::select(diesel::dsl::exists(batches::table.find(id))).get_result(conn)?;
        if !exists {
            return Err(batch_not_found(id));
        }
    }
    Ok(rows.into_iter().map(AuditEntryView::from).collect())
}

/// The batch's history as CSV (see [`history_csv`]).
pub fn csv_export(conn: &mut PgConnection, id: Uuid) -> Result<Vec<u8>, AppError> {
    let entries = history(conn, id)?;
    let names = result_names(&super::batch_record::read(conn, id)?);
    history_csv(&entries, &names)
}

/// The history as CSV: one row per entry in flat columns (what happened as
/// a sentence, the changes as `field: before -> after` lines); the JSON
/// export keeps the stored values as they are.
pub fn history_csv(entries: &[AuditEntryView], names: &ResultNames) -> Result<Vec<u8>, AppError> {
    // The columns of the first export stay where they were; `before` and
    // `after` hold flat `field: value` lines now, not JSON.
    let mut w = Csv::new([
        "seq",
        "at",
        "actor_id",
        "actor_username",
        "actor_full_name",
        "action",
        "entity_type",
        "entity_id",
        "reason",
        "before",
        "after",
        "prev_hash",
        "hash",
        "what",
        "changes",
        "chain",
    ])?;
    for e in entries {
        let actor = e.actor.as_ref();
        let cells = [
            e.seq.to_string(),
            crate::domain::hashing::hash_timestamp(e.at),
            actor.map(|a| a.id.to_string()).unwrap_or_default(),
            actor.map(|a| a.username.clone()).unwrap_or_default(),
            actor.map(|a| a.full_name.clone()).unwrap_or_default(),
            e.action.clone(),
            e.entity_type.clone(),
            e.entity_id.map(|i| i.to_string()).unwrap_or_default(),
            e.reason.clone().unwrap_or_default(),
            flat(e.before.as_ref()),
            flat(e.after.as_ref()),
            e.prev_hash.clone(),
            e.hash.clone(),
            sentence(e, names, crate::i18n::Locale::En),
            changes(e),
            e.chain.clone(),
        ];
        w.row(cells)?;
    }
    Ok(w.finish()?)
}
