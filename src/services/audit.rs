//! Writing, reading and verifying the audit trail.
//!
//! [`append`] is the only way an entry is written. It runs inside the caller's
//! transaction, so the change and its entry commit together or not at all.
//! It locks the chain's head row, which serialises writers of one chain (two
//! writers never read the same tail); `UNIQUE (chain, seq)` and
//! `UNIQUE (chain, prev_hash)` make a fork unwritable even if that lock were
//! ever bypassed.

use super::{Actor, Page, PageRequest};
use crate::db::models::AuditEntryRow;
use crate::db::schema::{audit_chain_heads, audit_entries};
use crate::domain::audit::{ActorRef, ChainCursor, EntryContent, GENESIS_HASH};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Nullable, Text, Timestamptz};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// A change to record.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    /// Chain to append to.
    pub chain: &'a str,
    /// Who did it; none for the system itself and for unauthenticated attempts.
    pub actor: Option<&'a Actor>,
    /// What happened, e.g. `user.created`.
    pub action: &'a str,
    /// Kind of record.
    pub entity_type: &'a str,
    /// Id of the record.
    pub entity_id: Option<Uuid>,
    /// Batch the record belongs to.
    pub batch_id: Option<Uuid>,
    /// Why.
    pub reason: Option<&'a str>,
    /// The record before.
    pub before: Option<Value>,
    /// The record after.
    pub after: Option<Value>,
}

impl<'a> AuditRecord<'a> {
    /// A record with no reason and no values.
    pub fn new(
        chain: &'a str,
        actor: Option<&'a Actor>,
        action: &'a str,
        entity_type: &'a str,
        entity_id: Option<Uuid>,
    ) -> Self {
        AuditRecord {
            chain,
            actor,
            action,
            entity_type,
            entity_id,
            batch_id: None,
            reason: None,
            before: None,
            after: None,
        }
    }

    /// A record on a batch's chain (`chain` is [`crate::domain::audit::batch_chain`]
    /// of `batch_id`); the caller holds the batch row lock.
    pub fn on_batch(
        chain: &'a str,
        batch_id: Uuid,
        actor: Option<&'a Actor>,
        action: &'a str,
        entity_type: &'a str,
        entity_id: Uuid,
    ) -> Self {
        AuditRecord {
            batch_id: Some(batch_id),
            ..AuditRecord::new(chain, actor, action, entity_type, Some(entity_id))
        }
    }

    /// With the value before the change.
    pub fn before(mut self, v: Value) -> Self {
        self.before = Some(v);
        self
    }

    /// With the value after the change.
    pub fn after(mut self, v: Value) -> Self {
        self.after = Some(v);
        self
    }

    /// With a reason.
    pub fn reason(mut self, r: &'a str) -> Self {
        self.reason = Some(r);
        self
    }
}

#[derive(QueryableByName)]
struct LockedHead {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    hash: String,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    before: Option<Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    after: Option<Value>,
}

// The time is read from the database after the lock is held, never later than
// the chain's last entry, so `at` never runs backwards along a chain. The
// values are passed through jsonb so that the hash covers exactly what a later
// read returns.
const LOCK_HEAD: &str = "SELECT seq, hash, GREATEST(clock_timestamp(), last_at) AS at, \
     $2::jsonb AS before, $3::jsonb AS after \
     FROM audit_chain_heads WHERE chain = $1 FOR UPDATE";

fn lock_head(conn: &mut PgConnection, rec: &AuditRecord<'_>) -> QueryResult<Option<LockedHead>> {
    diesel::sql_query(LOCK_HEAD)
        .bind::<Text, _>(rec.chain)
        .bind::<Nullable<Jsonb>, _>(rec.before.as_ref())
        .bind::<Nullable<Jsonb>, _>(rec.after.as_ref())
        .get_result(conn)
        .optional()
}

const APPEND: &str = "WITH e AS (\
    INSERT INTO audit_entries (id, chain, seq, at, actor_id, actor_username, actor_full_name, action, \
        entity_type, entity_id, batch_id, reason, before, after, prev_hash, hash) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
    RETURNING chain, seq, hash, at) \
  UPDATE audit_chain_heads h SET seq = e.seq, hash = e.hash, last_at = e.at FROM e WHERE h.chain = e.chain";

/// Appends an entry to its chain, in the caller's transaction.
pub fn append(conn: &mut PgConnection, rec: AuditRecord<'_>) -> Result<AuditEntryRow, AppError> {
    let head = match lock_head(conn, &rec)? {
        Some(h) => h,
        None => {
            diesel::insert_into(audit_chain_heads::table)
                .values((
                    audit_chain_heads::chain.eq(rec.chain),
                    audit_chain_heads::seq.eq(0_i64),
                    audit_chain_heads::hash.eq(GENESIS_HASH),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            lock_head(conn, &rec)?.ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("chain head {} vanished", rec.chain))
            })?
        }
    };
    let actor = rec.actor.map(Actor::audit_ref);
    let seq = head.seq + 1;
    let content = EntryContent {
        chain: rec.chain,
        seq,
        at: head.at,
        actor: actor.as_ref(),
        action: rec.action,
        entity_type: rec.entity_type,
        entity_id: rec.entity_id,
        batch_id: rec.batch_id,
        reason: rec.reason,
        before: head.before.as_ref(),
        after: head.after.as_ref(),
    };
    let hash = content.hash(&head.hash)?;
    let row = AuditEntryRow {
        id: Uuid::now_v7(),
        chain: rec.chain.to_owned(),
        seq,
        at: head.at,
        actor_id: actor.as_ref().map(|a| a.id),
        actor_username: actor.as_ref().map(|a| a.username.clone()),
        actor_full_name: actor.as_ref().map(|a| a.full_name.clone()),
        action: rec.action.to_owned(),
        entity_type: rec.entity_type.to_owned(),
        entity_id: rec.entity_id,
        batch_id: rec.batch_id,
        reason: rec.reason.map(str::to_owned),
        before: head.before,
        after: head.after,
        prev_hash: head.hash,
        hash,
    };
    // The entry and the head's move in one statement (one round trip); the
    // head row is already locked by this transaction.
    let moved = diesel::sql_query(APPEND)
        .bind::<diesel::sql_types::Uuid, _>(row.id)
        .bind::<Text, _>(&row.chain)
        .bind::<diesel::sql_types::BigInt, _>(row.seq)
        .bind::<Timestamptz, _>(row.at)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(row.actor_id)
        .bind::<Nullable<Text>, _>(row.actor_username.as_deref())
        .bind::<Nullable<Text>, _>(row.actor_full_name.as_deref())
        .bind::<Text, _>(&row.action)
        .bind::<Text, _>(&row.entity_type)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(row.entity_id)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(row.batch_id)
        .bind::<Nullable<Text>, _>(row.reason.as_deref())
        .bind::<Nullable<Jsonb>, _>(row.before.as_ref())
        .bind::<Nullable<Jsonb>, _>(row.after.as_ref())
        .bind::<Text, _>(&row.prev_hash)
        .bind::<Text, _>(&row.hash)
        .execute(conn)?;
    if moved != 1 {
        return Err(AppError::Internal(anyhow::anyhow!(
            "chain head {} did not move",
            rec.chain
        )));
    }
    Ok(row)
}

/// An audit entry as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    /// Entry id.
    pub id: Uuid,
    /// Chain.
    pub chain: String,
    /// Position in the chain.
    pub seq: i64,
    /// Server time.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Option<ActorRef>,
    /// What.
    pub action: String,
    /// Kind of record.
    pub entity_type: String,
    /// Record id.
    pub entity_id: Option<Uuid>,
    /// Batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// After.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

fn actor_of(row: &AuditEntryRow) -> Option<ActorRef> {
    match (&row.actor_id, &row.actor_username, &row.actor_full_name) {
        (Some(id), Some(username), Some(full_name)) => Some(ActorRef {
            id: *id,
            username: username.clone(),
            full_name: full_name.clone(),
        }),
        _ => None,
    }
}

impl From<AuditEntryRow> for AuditEntryView {
    fn from(row: AuditEntryRow) -> Self {
        let actor = actor_of(&row);
        AuditEntryView {
            id: row.id,
            chain: row.chain,
            seq: row.seq,
            at: row.at,
            actor,
            action: row.action,
            entity_type: row.entity_type,
            entity_id: row.entity_id,
            batch_id: row.batch_id,
            reason: row.reason,
            before: row.before,
            after: row.after,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// `GET /batches/{id}/history` as JSON: every entry of the batch's chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchHistory {
    /// The batch.
    pub batch_id: Uuid,
    /// Every entry, oldest first.
    pub items: Vec<AuditEntryView>,
    /// Always null: the history is one document.
    pub next_cursor: Option<String>,
}

/// Filters of `GET /audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Kind of record.
    pub entity_type: Option<String>,
    /// Record id.
    pub entity_id: Option<Uuid>,
    /// Actor, by id or username.
    pub actor: Option<String>,
    /// From this time (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub to: Option<DateTime<Utc>>,
}

/// Audit entries matching `filter`, in the order they were written.
pub fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    page: PageRequest,
) -> Result<Page<AuditEntryView>, AppError> {
    let mut q = audit_entries::table
        .select(AuditEntryRow::as_select())
        .order(audit_entries::id)
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(t) = &filter.entity_type {
        q = q.filter(audit_entries::entity_type.eq(t));
    }
    if let Some(id) = filter.entity_id {
        q = q.filter(audit_entries::entity_id.eq(id));
    }
    if let Some(actor) = &filter.actor {
        q = match Uuid::parse_str(actor) {
            Ok(id) => q.filter(audit_entries::actor_id.eq(id)),
            Err(_) => q.filter(audit_entries::actor_username.eq(actor.to_lowercase())),
        };
    }
    if let Some(from) = filter.from {
        q = q.filter(audit_entries::at.ge(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(audit_entries::at.lt(to));
    }
    if let Some(after) = page.after {
        q = q.filter(audit_entries::id.gt(after));
    }
    let rows = q.load(conn)?;
    Ok(Page::from_rows(rows, page.limit, |r| r.id).map(AuditEntryView::from))
}

/// One broken link.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrokenLink {
    /// Chain.
    pub chain: String,
    /// Entry's sequence number.
    pub seq: i64,
    /// What is wrong.
    pub reason: String,
}

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

/// One fetched entry with its chain's head (sequence number and hash).
type VerifyRow = (AuditEntryRow, Option<i64>, Option<String>);

/// The page of entries after `after`, in (chain, seq) order.
fn verify_page(
    conn: &mut PgConnection,
    only: Option<&str>,
    after: Option<&(String, i64)>,
) -> Result<Vec<VerifyRow>, AppError> {
    let mut q = audit_entries::table
        .select(AuditEntryRow::as_select())
        .order((audit_entries::chain, audit_entries::seq))
        .limit(VERIFY_PAGE)
        .into_boxed();
    match (only, after) {
        // One chain: a plain range on (chain, seq).
        (Some(chain), after) => {
            q = q.filter(audit_entries::chain.eq(chain.to_owned()));
            if let Some((_, seq)) = after {
                q = q.filter(audit_entries::seq.gt(*seq));
            }
        }
        // Every chain: a row comparison, so each page starts with an index
        // range scan on (chain, seq) instead of filtering earlier entries.
        (None, Some((chain, seq))) => {
            q = q.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "(audit_entries.chain, audit_entries.seq) > (",
                )
                .bind::<Text, _>(chain.clone())
                .sql(", ")
                .bind::<diesel::sql_types::BigInt, _>(*seq)
                .sql(")"),
            );
        }
        (None, None) => {}
    }
    let rows: Vec<AuditEntryRow> = q.load(conn)?;
    // The heads of the page's chains, by key: a join here would make the
    // planner walk the heads from the first chain on every page.
    let mut chains: Vec<&str> = rows.iter().map(|r| r.chain.as_str()).collect();
    chains.dedup();
    let heads: HashMap<String, (i64, String)> = audit_chain_heads::table
        .filter(audit_chain_heads::chain.eq_any(&chains))
        .select((
            audit_chain_heads::chain,
            audit_chain_heads::seq,
            audit_chain_heads::hash,
        ))
        .load::<(String, i64, String)>(conn)?
        .into_iter()
        .map(|(c, seq, hash)| (c, (seq, hash)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let head = heads.get(&r.chain).cloned();
            let (seq, hash) = head.unzip();
            (r, seq, hash)
        })
        .collect())
}

/// [`verify`], limited to one chain when `only` names it.
///
/// Two threads: one reads pages from the database (and decodes them) while
/// this one recomputes the hashes of the page before, so the database and
/// the hashing work at the same time.
pub fn verify_chains(
    conn: &mut PgConnection,
    only: Option<&str>,
) -> Result<VerifyReport, AppError> {
    let mut report = VerifyReport {
        ok: true,
        chains: 0,
        events: 0,
        broken: Vec::new(),
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
            let mut after: Option<(String, i64)> = None;
            loop {
                let rows = verify_page(db, only, after.as_ref())?;
                let full = i64::try_from(rows.len()).unwrap_or(0) >= VERIFY_PAGE;
                after = rows.last().map(|(r, _, _)| (r.chain.clone(), r.seq));
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
            audit_entries::table.filter(audit_entries::chain.eq(audit_chain_heads::chain)),
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
    /// The head row's sequence number and hash.
    head: Option<(i64, String)>,
}

/// Checks one entry against the walk of its chain (starting a new walk, and
/// finishing the previous one, at a chain boundary).
fn check_row(
    report: &mut VerifyReport,
    note: &mut impl FnMut(&mut VerifyReport, &str, i64, String),
    current: &mut Option<Walk>,
    row: AuditEntryRow,
    head_seq: Option<i64>,
    head_hash: Option<String>,
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
            head: head_seq.zip(head_hash),
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
    match walk.head {
        Some((seq, hash)) => {
            if let Some((at, reason)) = walk.cursor.finish(seq, &hash) {
                note(report, &walk.chain, at, reason.describe());
            }
        }
        None => note(
            report,
            &walk.chain,
            0,
            "the chain has no head row".to_owned(),
        ),
    }
}
