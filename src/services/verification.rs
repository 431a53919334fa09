//! Verifying the audit trail: every chain recomputed from the stored
//! fields, each link, each sequence and each chain's head (`GET
//! /audit/verify`, `cellqc audit verify`, the history page).

use super::audit::actor_of;
use crate::db::digest::HexDigest;
use crate::db::models::AuditEntryRow;
use crate::db::schema::{audit_chain_heads, audit_entries};
use crate::domain::audit::{ChainCursor, EntryContent};
use crate::error::AppError;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::Serialize;

pub use crate::domain::audit::BrokenLink;

/// The result of verifying every chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// Every chain verified.
    pub ok: bool,
    /// Chains checked.
    pub chains: i64,
    /// Entries checked.
    pub events: i64,
    /// Broken links, in chain order (at most [`MAX_REPORTED`]).
    pub broken: Vec<BrokenLink>,
}

/// Broken links reported at most (the count of chains and events is exact).
pub const MAX_REPORTED: usize = 1000;

const VERIFY_PAGE: i64 = 2000;

/// Re-computes every hash of every chain from the stored fields and checks
/// each link, each sequence and each chain's head. Reads in keyset pages, so
/// memory stays flat however long the trail is.
pub fn verify(conn: &mut PgConnection) -> Result<VerifyReport, AppError> {
    verify_chains(conn, None)
}

/// [`verify`], telling `progress` the entries checked so far after each
/// page (the command line's progress bar).
pub fn verify_reporting(
    conn: &mut PgConnection,
    progress: &dyn Fn(u64),
) -> Result<VerifyReport, AppError> {
    in_snapshot(conn, |c| walk_chains(c, None, progress))
}

/// The entries every chain's head records: what [`verify`] will check.
pub fn entries_total(conn: &mut PgConnection) -> Result<u64, AppError> {
    let total: Option<bigdecimal::BigDecimal> = audit_chain_heads::table
        .select(diesel::dsl::sum(audit_chain_heads::seq))
        .first(conn)?;
    Ok(total
        .and_then(|t| bigdecimal::ToPrimitive::to_u64(&t))
        .unwrap_or(0))
}

/// One fetched entry with its chain's head (sequence number and hash).
type VerifyRow = (AuditEntryRow, i64, HexDigest);

/// Where a page ends: the chain's key and the entry's sequence number.
type PageEnd = (i64, i64);

/// The page of entries after `after`, in (chain_id, seq) order, each with
/// its chain's head; of one chain when `only` gives its key.
fn verify_page(
    conn: &mut PgConnection,
    only: Option<i64>,
    after: Option<PageEnd>,
) -> Result<Vec<(VerifyRow, i64)>, AppError> {
    let mut q = audit_entries::table
        .inner_join(audit_chain_heads::table)
        .select((
            AuditEntryRow::as_select(),
            audit_chain_heads::seq,
            audit_chain_heads::hash,
            audit_entries::chain_id,
        ))
        .order((audit_entries::chain_id, audit_entries::seq))
        .limit(VERIFY_PAGE)
        .into_boxed();
    match (only, after) {
        // One chain: a plain range on (chain_id, seq), by the entries' own
        // key (filtered by the head's name, the planner would read the rest
        // of the chain and sort it on every page).
        (Some(key), after) => {
            q = q.filter(audit_entries::chain_id.eq(key));
            if let Some((_, seq)) = after {
                q = q.filter(audit_entries::seq.gt(seq));
            }
        }
        (None, Some((chain_id, seq))) => {
            // A row comparison, so each page starts with an index range scan on
            // (chain_id, seq) instead of filtering earlier entries; the heads
            // from the same key on (whichever way the planner joins them).
            q = q
                .filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "(audit_entries.chain_id, audit_entries.seq) > (",
                    )
                    .bind::<BigInt, _>(chain_id)
                    .sql(", ")
                    .bind::<BigInt, _>(seq)
                    .sql(")"),
                )
                .filter(audit_chain_heads::id.ge(chain_id));
        }
        (None, None) => {}
    }
    let rows: Vec<(AuditEntryRow, i64, HexDigest, i64)> = q.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(r, seq, hash, key)| ((r, seq, hash), key))
        .collect())
}

/// [`verify`], limited to one chain when `only` names it.
///
/// Two threads: one reads pages from the database (and decodes them) while
/// this one recomputes the hashes of the page before, so the database and
/// the hashing work at the same time.
///
/// Every page is read in one snapshot (a read-only, repeatable-read
/// transaction, unless the caller's transaction is already one): under
/// writes, a head read after its entries would otherwise record entries the
/// walk never saw, and a sound chain would be reported broken.
pub fn verify_chains(
    conn: &mut PgConnection,
    only: Option<&str>,
) -> Result<VerifyReport, AppError> {
    in_snapshot(conn, |c| walk_chains(c, only, &|_| {}))
}

/// `f` in a read-only, repeatable-read transaction, or in the caller's.
fn in_snapshot<T>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let in_transaction = AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .flatten()
        .is_some();
    if in_transaction {
        return f(conn);
    }
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(f)
}

fn walk_chains(
    conn: &mut PgConnection,
    only: Option<&str>,
    progress: &dyn Fn(u64),
) -> Result<VerifyReport, AppError> {
    let mut report = VerifyReport {
        ok: true,
        chains: 0,
        events: 0,
        broken: Vec::new(),
    };
    // One chain: its key, read once; a chain without a head has no entries.
    let only_key = match only {
        None => None,
        Some(name) => match audit_chain_heads::table
            .filter(audit_chain_heads::chain.eq(name))
            .select(audit_chain_heads::id)
            .first::<i64>(conn)
            .optional()?
        {
            Some(key) => Some(key),
            None => return Ok(report),
        },
    };
    let mut note = |report: &mut VerifyReport, chain: &str, seq: i64, reason: String| {
        report.ok = false;
        if report.broken.len() < MAX_REPORTED {
            report.broken.push(BrokenLink {
                chain: chain.to_owned(),
                seq,
                reason,
            });
        }
    };
    let mut current: Option<Walk> = None;
    std::thread::scope(|scope| -> Result<(), AppError> {
        let (pages, received) = std::sync::mpsc::sync_channel::<Vec<VerifyRow>>(2);
        let db = &mut *conn;
        let reader = scope.spawn(move || -> Result<(), AppError> {
            let mut after: Option<PageEnd> = None;
            loop {
                let page = verify_page(db, only_key, after)?;
                let full = i64::try_from(page.len()).unwrap_or(0) >= VERIFY_PAGE;
                after = page.last().map(|((r, _, _), key)| (*key, r.seq));
                let rows: Vec<VerifyRow> = page.into_iter().map(|(row, _)| row).collect();
                // A closed channel: the checker stopped on an error.
                if !rows.is_empty() && pages.send(rows).is_err() {
                    return Ok(());
                }
                if !full {
                    return Ok(());
                }
            }
        });
        for rows in received {
            progress(u64::try_from(report.events).unwrap_or(0));
            for (row, head_seq, head_hash) in rows {
                check_row(
                    &mut report,
                    &mut note,
                    &mut current,
                    row,
                    head_seq,
                    head_hash,
                )?;
            }
        }
        reader
            .join()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the audit reader thread panicked")))?
    })?;
    if let Some(walk) = current.take() {
        finish_chain(&mut report, &mut note, walk);
    }
    // Chains whose head records entries none of which is left.
    let mut emptied_q = audit_chain_heads::table
        .filter(audit_chain_heads::seq.gt(0))
        .into_boxed();
    if let Some(chain) = only {
        emptied_q = emptied_q.filter(audit_chain_heads::chain.eq(chain.to_owned()));
    }
    let emptied: Vec<(String, i64)> = emptied_q
        .filter(diesel::dsl::not(diesel::dsl::exists(
            audit_entries::table.filter(audit_entries::chain_id.eq(audit_chain_heads::id)),
        )))
        .select((audit_chain_heads::chain, audit_chain_heads::seq))
        .load(conn)?;
    for (chain, head_seq) in emptied {
        report.chains += 1;
        note(
            &mut report,
            &chain,
            0,
            format!("every entry is missing: the chain head records {head_seq}"),
        );
    }
    Ok(report)
}

/// The chain being walked by [`verify`].
struct Walk {
    chain: String,
    cursor: ChainCursor,
    /// The head row's sequence number and hash (every entry has a head: the
    /// foreign key holds it).
    head: (i64, String),
}

/// Checks one entry against the walk of its chain (starting a new walk, and
/// finishing the previous one, at a chain boundary).
fn check_row(
    report: &mut VerifyReport,
    note: &mut impl FnMut(&mut VerifyReport, &str, i64, String),
    current: &mut Option<Walk>,
    row: AuditEntryRow,
    head_seq: i64,
    head_hash: HexDigest,
) -> Result<(), AppError> {
    let same_chain = current.as_ref().is_some_and(|w| w.chain == row.chain);
    if !same_chain {
        if let Some(walk) = current.take() {
            finish_chain(report, note, walk);
        }
        report.chains += 1;
        *current = Some(Walk {
            chain: row.chain.clone(),
            cursor: ChainCursor::default(),
            head: (head_seq, head_hash.0),
        });
    }
    report.events += 1;
    let actor = actor_of(&row);
    let content = EntryContent {
        chain: &row.chain,
        seq: row.seq,
        at: row.at,
        actor: actor.as_ref(),
        action: &row.action,
        entity_type: &row.entity_type,
        entity_id: row.entity_id,
        batch_id: row.batch_id,
        reason: row.reason.as_deref(),
        before: row.before.as_ref(),
        after: row.after.as_ref(),
    };
    if let Some(walk) = current.as_mut() {
        if let Some(reason) = walk.cursor.check(&content, &row.prev_hash, &row.hash)? {
            note(report, &row.chain, row.seq, reason.describe());
        }
    }
    Ok(())
}

fn finish_chain(
    report: &mut VerifyReport,
    note: &mut impl FnMut(&mut VerifyReport, &str, i64, String),
    walk: Walk,
) {
    let (seq, hash) = walk.head;
    if let Some((at, reason)) = walk.cursor.finish(seq, &hash) {
        note(report, &walk.chain, at, reason.describe());
    }
}

/// The kind of record a verification run is audited under.
pub const VERIFICATION_ENTITY: &str = "audit_trail";

/// A verification run as the trail remembers it.
#[derive(Debug, Clone)]
pub struct LastVerification {
    /// When it ran.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who ran it.
    pub by: String,
    /// Whether every chain verified.
    pub ok: bool,
    /// Entries checked.
    pub events: i64,
}

/// Verifies every chain and records the run (who, when, the outcome) in
/// the system chain, so the start page can show the last one.
pub fn verify_and_record(
    conn: &mut PgConnection,
    actor: &super::Actor,
    also_broken: Vec<BrokenLink>,
) -> Result<VerifyReport, AppError> {
    let mut report = verify(conn)?;
    // What other checks found (the anchors) counts in the recorded outcome.
    report.ok = report.ok && also_broken.is_empty();
    report.broken.extend(also_broken);
    super::in_transaction(conn, |c| {
        super::audit::append(
            c,
            super::audit::AuditRecord::new(
                crate::domain::audit::SYSTEM_CHAIN,
                Some(actor),
                "audit.verified",
                VERIFICATION_ENTITY,
                Some(uuid::Uuid::nil()),
            )
            .after(serde_json::json!({
                "ok": report.ok,
                "chains": report.chains,
                "events": report.events,
                "broken": report.broken.len(),
            })),
        )
    })?;
    Ok(report)
}

/// The last recorded verification run, if any.
pub fn last_verification(conn: &mut PgConnection) -> Result<Option<LastVerification>, AppError> {
    let row: Option<AuditEntryRow> = audit_entries::table
        .inner_join(audit_chain_heads::table)
        .filter(audit_entries::entity_type.eq(VERIFICATION_ENTITY))
        .filter(audit_entries::entity_id.eq(uuid::Uuid::nil()))
        .order(audit_entries::id.desc())
        .select(AuditEntryRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(|r| {
        let after = r.after.clone().unwrap_or_default();
        LastVerification {
            at: r.at,
            by: actor_of(&r).map(|a| a.full_name).unwrap_or_default(),
            ok: after.get("ok").and_then(serde_json::Value::as_bool) == Some(true),
            events: after
                .get("events")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
        }
    }))
}
