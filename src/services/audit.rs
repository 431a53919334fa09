//! Writing and reading the audit trail (verification is
//! [`crate::services::verification`]).
//!
//! [`append`] and [`append_at_head`] are the only ways an entry is written.
//! They run inside the caller's transaction, so the change and its entry
//! commit together or not at all. [`append`] locks the chain's head row,
//! which serialises writers of one chain (two writers never read the same
//! tail); a batch's chain is serialised by the batch row lock instead, and
//! [`append_at_head`] writes after the head its caller read under that lock.
//! `UNIQUE (chain_id, seq)` makes a fork (two entries after the same one,
//! so at the same position) unwritable even if a lock were ever bypassed;
//! the head's trigger moves it forward one entry at a time.
//!
//! An entry names its chain by the head's key (`chain_id`); the chain's name,
//! which the hash covers, is kept once, in the head. Hashes are stored as
//! their 32 bytes and handled here as hex, as the chain covers them.

use super::{Actor, Page, PageRequest};
use crate::db::digest::{self, HexDigest};
use crate::db::models::AuditEntryRow;
use crate::db::prepared::prepared;
use crate::db::schema::{audit_chain_heads, audit_entries};
use crate::domain::audit::{ActorRef, EntryContent, GENESIS_HASH, chain_batch};
use crate::domain::audit_event::AuditEvent;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Jsonb, Nullable, Text, Timestamptz};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// A change to record.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    /// Chain to append to.
    pub chain: &'a str,
    /// Who did it; none for the system itself and for unauthenticated attempts.
    pub actor: Option<&'a Actor>,
    /// What happened, e.g. `user.created`.
    pub action: AuditEvent,
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
    /// The entry's id, when the caller needs it before the entry is written
    /// (a row that names the entry that binds it).
    pub id: Option<Uuid>,
}

impl<'a> AuditRecord<'a> {
    /// A record with no reason and no values.
    pub fn new(
        chain: &'a str,
        actor: Option<&'a Actor>,
        action: AuditEvent,
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
            id: None,
        }
    }

    /// A record on a batch's chain (`chain` is [`crate::domain::audit::batch_chain`]
    /// of `batch_id`); the caller holds the batch row lock.
    pub fn on_batch(
        chain: &'a str,
        batch_id: Uuid,
        actor: Option<&'a Actor>,
        action: AuditEvent,
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

    /// With a change of a record: `before` and `after` hold only the
    /// fields that changed (and `after` the record's id), not whole rows.
    pub fn change(mut self, before: &Value, after: &Value) -> Self {
        let (b, a) = crate::domain::audit::change(before, after);
        self.before = Some(b);
        self.after = Some(a);
        self
    }

    /// With a signed change: `after` is the signed record whole, so that
    /// the signature's record hash can be recomputed from the trail alone;
    /// `before` holds only the fields the change altered or removed.
    pub fn signed_change(mut self, before: &Value, after: Value) -> Self {
        self.before = Some(crate::domain::audit::fields_not_in(before, &after));
        self.after = Some(after);
        self
    }

    /// With the entry's id given in advance.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
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
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Bytea, deserialize_as = HexDigest)]
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
const LOCK_HEAD: &str = "SELECT id, seq, hash, GREATEST(clock_timestamp(), last_at) AS at, \
     $1::jsonb AS before, $2::jsonb AS after \
     FROM audit_chain_heads WHERE chain = $3 FOR UPDATE";

fn lock_head(conn: &mut PgConnection, rec: &AuditRecord<'_>) -> QueryResult<Option<LockedHead>> {
    prepared(LOCK_HEAD)
        .bind::<Nullable<Jsonb>, _>(rec.before.as_ref())
        .bind::<Nullable<Jsonb>, _>(rec.after.as_ref())
        .bind::<Text, _>(rec.chain)
        .get_result(conn)
        .optional()
}

/// The statement that writes an entry and moves its chain's head; the load
/// generator replays it.
///
/// The entry covers the rows this transaction wrote on its chain that no
/// entry covers yet (`audit_rows_pending`, kept by the database's triggers;
/// `$1`: the chain's batch, null for the system chain), so the database
/// completes the entry's hash: `$17` is the previous hash's hex text and the
/// canonical form up to its `rows` member, `$18` the rest. The entry's own
/// trigger checks the rows again and takes them off the list.
pub const APPEND: &str = "WITH p AS (\
    SELECT '[' || string_agg('{\"hash\":\"' || encode(hash, 'hex') || '\",\"id\":\"' || id::text \
                             || '\",\"table\":' || to_json(tbl)::text || '}', ',' \
                             ORDER BY tbl COLLATE \"C\", id) || ']' AS rows \
      FROM audit_rows_pending WHERE xact = pg_current_xact_id() AND batch_id IS NOT DISTINCT FROM $1), \
  e AS (\
    INSERT INTO audit_entries (id, chain_id, seq, at, actor_id, actor_username, actor_full_name, action, \
        entity_type, entity_id, batch_id, reason, before, after, rows, prev_hash, hash) \
    SELECT $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, p.rows::jsonb, $16, \
           sha256($17 || coalesce(convert_to(',\"rows\":' || p.rows, 'UTF8'), ''::bytea) || $18) \
      FROM p \
    RETURNING chain_id, seq, hash, at, before, after, rows) \
  UPDATE audit_chain_heads h SET seq = e.seq, hash = e.hash, last_at = e.at FROM e \
   WHERE h.id = e.chain_id AND h.seq = e.seq - 1 \
  RETURNING e.before, e.after, e.rows, e.hash";

/// Where a chain ends, read by a writer that holds its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The chain's key.
    pub id: i64,
    /// The chain.
    pub chain: String,
    /// Its last entry's sequence number (0: empty).
    pub seq: i64,
    /// Its last entry's hash.
    pub hash: String,
    /// The time the next entry gets: database time read under the lock, never
    /// earlier than the chain's last entry.
    pub at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Nullable<Jsonb>)]
    before: Option<Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    after: Option<Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    rows: Option<Value>,
    #[diesel(sql_type = Bytea, deserialize_as = HexDigest)]
    hash: String,
}

/// The position of a chain's last entry (0 for a chain without one): where
/// a replica's report of a batch is compared with the primary.
pub fn head_seq(conn: &mut PgConnection, chain: &str) -> Result<i64, AppError> {
    Ok(audit_chain_heads::table
        .filter(audit_chain_heads::chain.eq(chain))
        .select(audit_chain_heads::seq)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Keeps a refused action on a batch (`action`, what was refused in
/// `after`) on the system chain, naming the batch: it appears in the batch's
/// history without taking the batch chain's head, in the transaction that
/// writes nothing else.
pub fn append_refusal(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    action: AuditEvent,
    after: serde_json::Value,
) -> Result<(), AppError> {
    let rec = AuditRecord::on_batch(
        crate::domain::audit::SYSTEM_CHAIN,
        batch_id,
        Some(actor),
        action,
        "batch",
        batch_id,
    )
    .after(after);
    append(conn, rec)?;
    Ok(())
}

/// Appends an entry to its chain, in the caller's transaction: locks the
/// chain head, then writes (two statements).
pub fn append(conn: &mut PgConnection, rec: AuditRecord<'_>) -> Result<AuditEntryRow, AppError> {
    let locked = match lock_head(conn, &rec)? {
        Some(h) => h,
        None => {
            diesel::insert_into(audit_chain_heads::table)
                .values((
                    audit_chain_heads::chain.eq(rec.chain),
                    audit_chain_heads::seq.eq(0_i64),
                    audit_chain_heads::hash.eq(HexDigest(GENESIS_HASH.to_owned())),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            lock_head(conn, &rec)?.ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("chain head {} vanished", rec.chain))
            })?
        }
    };
    let mut head = ChainHead {
        id: locked.id,
        chain: rec.chain.to_owned(),
        seq: locked.seq,
        hash: locked.hash,
        at: locked.at,
    };
    // The values as jsonb returned them: the hash covers exactly what a later read returns.
    let rec = AuditRecord {
        before: locked.before,
        after: locked.after,
        ..rec
    };
    append_at_head(conn, &mut head, rec)
}

/// Appends an entry after `head`, which the caller read under the lock that
/// serialises the chain's writers (a batch's chain: the batch row), in one
/// statement; `head` then names the new entry. The values must come back from
/// jsonb exactly as hashed, or nothing is written.
pub fn append_at_head(
    conn: &mut PgConnection,
    head: &mut ChainHead,
    rec: AuditRecord<'_>,
) -> Result<AuditEntryRow, AppError> {
    if rec.chain != head.chain {
        return Err(AppError::Internal(anyhow::anyhow!(
            "an entry of chain {} written after the head of {}",
            rec.chain,
            head.chain
        )));
    }
    let actor = rec.actor.map(Actor::audit_ref);
    let seq = head.seq + 1;
    let mut content = EntryContent {
        chain: rec.chain,
        seq,
        at: head.at,
        actor: actor.as_ref(),
        action: rec.action.as_str(),
        entity_type: rec.entity_type,
        entity_id: rec.entity_id,
        batch_id: rec.batch_id,
        reason: rec.reason,
        before: rec.before.as_ref(),
        after: rec.after.as_ref(),
        rows: None,
    };
    let (canonical_head, canonical_tail) = content.canonical_around_rows()?;
    let mut hashed_head = Vec::with_capacity(head.hash.len() + canonical_head.len());
    hashed_head.extend_from_slice(head.hash.as_bytes());
    hashed_head.extend_from_slice(&canonical_head);
    let id = rec.id.unwrap_or_else(Uuid::now_v7);
    let prev_bytes = digest::bytes(&head.hash).map_err(anyhow::Error::from)?;
    // The entry and the head's move in one statement (one round trip); it
    // moves the head only from where the caller read it.
    let stored: Option<Stored> = prepared(APPEND)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(chain_batch(rec.chain))
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<BigInt, _>(head.id)
        .bind::<BigInt, _>(seq)
        .bind::<Timestamptz, _>(head.at)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(actor.as_ref().map(|a| a.id))
        .bind::<Nullable<Text>, _>(actor.as_ref().map(|a| a.username.as_str()))
        .bind::<Nullable<Text>, _>(actor.as_ref().map(|a| a.full_name.as_str()))
        .bind::<Text, _>(rec.action.as_str())
        .bind::<Text, _>(rec.entity_type)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(rec.entity_id)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(rec.batch_id)
        .bind::<Nullable<Text>, _>(rec.reason)
        .bind::<Nullable<Jsonb>, _>(rec.before.as_ref())
        .bind::<Nullable<Jsonb>, _>(rec.after.as_ref())
        .bind::<Bytea, _>(&prev_bytes)
        .bind::<Bytea, _>(&hashed_head)
        .bind::<Bytea, _>(&canonical_tail)
        .get_result(conn)
        .optional()?;
    let Some(stored) = stored else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "chain head {} is not at entry {}",
            rec.chain,
            head.seq
        )));
    };
    // Verification recomputes the hash from what jsonb returns; a value jsonb
    // would change (it never should), or a hash the database completed that
    // verification would not recompute, must not enter the trail.
    content.rows = stored.rows.as_ref();
    if stored.before != rec.before
        || stored.after != rec.after
        || content.hash(&head.hash)? != stored.hash
    {
        return Err(AppError::Internal(anyhow::anyhow!(
            "the entry {} would not verify as stored; nothing was written",
            rec.action
        )));
    }
    let row = AuditEntryRow {
        id,
        chain: rec.chain.to_owned(),
        seq,
        at: head.at,
        actor_id: actor.as_ref().map(|a| a.id),
        actor_username: actor.as_ref().map(|a| a.username.clone()),
        actor_full_name: actor.as_ref().map(|a| a.full_name.clone()),
        action: rec.action.as_str().to_owned(),
        entity_type: rec.entity_type.to_owned(),
        entity_id: rec.entity_id,
        batch_id: rec.batch_id,
        reason: rec.reason.map(str::to_owned),
        before: stored.before,
        after: stored.after,
        prev_hash: head.hash.clone(),
        hash: stored.hash,
        rows: stored.rows,
    };
    head.seq = row.seq;
    head.hash.clone_from(&row.hash);
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

/// Who an entry names (none: the system, or an unauthenticated attempt).
pub fn actor_of(row: &AuditEntryRow) -> Option<ActorRef> {
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
    let mut errors = Vec::new();
    for (field, v) in [
        ("entity_type", filter.entity_type.as_deref()),
        ("actor", filter.actor.as_deref()),
    ] {
        crate::domain::text::optional_line(field, v, 100, &mut errors);
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut q = audit_entries::table
        .inner_join(audit_chain_heads::table)
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

/// A page of the audit search as CSV (the one CSV writer: a byte-order mark,
/// no cell a formula): one row per entry, its changes as flat
/// `field: before -> after` lines.
pub fn list_csv(page: &Page<AuditEntryView>) -> Result<Vec<u8>, AppError> {
    let mut w = crate::report::csv::Csv::new([
        "chain",
        "seq",
        "at",
        "actor_username",
        "actor_full_name",
        "action",
        "entity_type",
        "entity_id",
        "batch_id",
        "reason",
        "changes",
        "hash",
    ])?;
    for e in &page.items {
        let actor = e.actor.as_ref();
        w.row([
            e.chain.clone(),
            e.seq.to_string(),
            crate::domain::hashing::hash_timestamp(e.at),
            actor.map(|a| a.username.clone()).unwrap_or_default(),
            actor.map(|a| a.full_name.clone()).unwrap_or_default(),
            e.action.clone(),
            e.entity_type.clone(),
            e.entity_id.map(|i| i.to_string()).unwrap_or_default(),
            e.batch_id.map(|i| i.to_string()).unwrap_or_default(),
            e.reason.clone().unwrap_or_default(),
            crate::report::history::changes(e),
            e.hash.clone(),
        ])?;
    }
    Ok(w.finish()?)
}
