//! Verifying the audit trail and the records it binds (`GET /audit/verify`,
//! `cellqc audit verify`, the history page, the restore drill): every chain
//! recomputed from the stored fields, each link, each sequence and each
//! chain's head; every bound row against the newest entry that covers it;
//! every signature's record hash against the row it signs, and its seal.

use super::audit::actor_of;
use crate::auth::anchor_key::PublicKey;
use crate::db::binding;
use crate::db::digest::HexDigest;
use crate::db::models::AuditEntryRow;
use crate::db::models::SignatureRow;
use crate::db::prepared::prepared;
use crate::db::schema::{audit_chain_heads, audit_entries};
use crate::domain::audit::{
    BreakKind, ChainCursor, EntryContent, SYSTEM_CHAIN, batch_chain, chain_batch,
};
use crate::domain::audit_event::AuditEvent;
use crate::domain::signature::{Meaning, SignedTable, record_hash, signed_row};
use crate::error::AppError;
use crate::error::Code;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Nullable, Text, Uuid as SqlUuid};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub use crate::domain::audit::BrokenLink;

/// The result of verifying the trail and the records it binds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// Every chain, row and signature verified.
    pub ok: bool,
    /// Chains checked.
    pub chains: i64,
    /// Entries checked.
    pub events: i64,
    /// Bound rows checked against their newest entries.
    pub rows: i64,
    /// Signatures checked (record hash and seal).
    pub signatures: i64,
    /// What does not hold, in chain order (at most [`MAX_REPORTED`]).
    pub broken: Vec<BrokenLink>,
}

/// Broken links reported at most (the count of chains and events is exact).
pub const MAX_REPORTED: usize = 1000;

const VERIFY_PAGE: i64 = 2000;

/// Verifies every chain, every bound row and every signature (whose seals
/// `key` checks). Reads in keyset pages, so memory stays flat however long
/// the trail is.
pub fn verify(conn: &mut PgConnection, key: &PublicKey) -> Result<VerifyReport, AppError> {
    verify_chains(conn, key, None)
}

/// [`verify`], telling `progress` the entries checked so far after each
/// page (the command line's progress bar).
pub fn verify_reporting(
    conn: &mut PgConnection,
    key: &PublicKey,
    progress: &dyn Fn(u64),
) -> Result<VerifyReport, AppError> {
    in_snapshot(conn, |c| {
        walk_chains(c, key, None, Records::Checked, progress)
    })
}

/// The chains alone, without the rows and signatures they bind: what
/// verification checked before rows were bound. Not a verification of the
/// record (it vouches for no row); `cellqc-bench --verify-only` measures
/// what the rows and signatures add with it.
pub fn verify_links_only(
    conn: &mut PgConnection,
    key: &PublicKey,
) -> Result<VerifyReport, AppError> {
    in_snapshot(conn, |c| {
        walk_chains(c, key, None, Records::Skipped, &|_| {})
    })
}

/// Whether a walk checks the rows and signatures its chains bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Records {
    Checked,
    Skipped,
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

/// A bound row as it is now: its table, id, the batch whose chain binds it
/// (none: the system chain) and the hash of its form.
#[derive(QueryableByName, Debug)]
struct CurrentRow {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    batch_id: Option<Uuid>,
    #[diesel(sql_type = Bytea, deserialize_as = HexDigest)]
    hash: String,
}

/// A signature as stored, with the form of the row it signs as it is now.
#[derive(QueryableByName, Debug)]
struct StoredSignature {
    #[diesel(embed)]
    signature: SignatureRow,
    #[diesel(sql_type = Nullable<Bytea>)]
    form: Option<HexDigest>,
}

/// The name of the chain a row or signature of `batch` belongs to.
fn chain_of(batch: Option<Uuid>) -> String {
    batch.map_or_else(|| SYSTEM_CHAIN.to_owned(), batch_chain)
}

/// What a page brings the checker: its entries, and the rows and
/// signatures of the chains that end in it.
struct Page {
    entries: Vec<VerifyRow>,
    rows: Vec<CurrentRow>,
    signatures: Vec<StoredSignature>,
}

/// The rows and signatures of `chains` as they are now.
fn chain_records(
    conn: &mut PgConnection,
    chains: &[String],
) -> Result<(Vec<CurrentRow>, Vec<StoredSignature>), AppError> {
    let mut rows = Vec::new();
    let mut signatures = Vec::new();
    let batches: Vec<Uuid> = chains.iter().filter_map(|c| chain_batch(c)).collect();
    if chains.iter().any(|c| c == SYSTEM_CHAIN) {
        rows.extend(prepared(binding::system_rows_sql()).load::<CurrentRow>(conn)?);
        signatures
            .extend(prepared(binding::system_signatures_sql()).load::<StoredSignature>(conn)?);
    }
    if !batches.is_empty() {
        rows.extend(
            prepared(binding::batch_rows_sql())
                .bind::<Array<SqlUuid>, _>(&batches)
                .load::<CurrentRow>(conn)?,
        );
        signatures.extend(
            prepared(binding::batch_signatures_sql())
                .bind::<Array<SqlUuid>, _>(&batches)
                .load::<StoredSignature>(conn)?,
        );
    }
    Ok((rows, signatures))
}

/// [`verify`], limited to one chain when `only` names it.
///
/// Two threads: one reads pages from the database (and decodes them) while
/// this one recomputes the hashes of the page before, so the database and
/// the hashing work at the same time. With each page come the bound rows and
/// the signatures of the chains that end in it, their forms hashed by the
/// database.
///
/// Every page is read in one snapshot (a read-only, repeatable-read
/// transaction, unless the caller's transaction is already one): under
/// writes, a head read after its entries would otherwise record entries the
/// walk never saw, and a sound chain would be reported broken.
pub fn verify_chains(
    conn: &mut PgConnection,
    key: &PublicKey,
    only: Option<&str>,
) -> Result<VerifyReport, AppError> {
    in_snapshot(conn, |c| {
        walk_chains(c, key, only, Records::Checked, &|_| {})
    })
}

/// Whether a batch's record holds: its chain, every row it binds and every
/// signature on it, as [`verify_chains`] checks them. Asked before a release
/// is signed and before a certificate is printed, so that nobody signs or
/// prints a record changed outside cellqc: 409 `record_altered` naming each
/// difference when it does not hold.
pub fn check_batch_record(
    conn: &mut PgConnection,
    key: &PublicKey,
    batch_id: Uuid,
) -> Result<(), AppError> {
    let report = verify_chains(
        conn,
        key,
        Some(&crate::domain::audit::batch_chain(batch_id)),
    )?;
    if report.ok {
        return Ok(());
    }
    let named: Vec<String> = report
        .broken
        .iter()
        .map(|b| format!("{}: {}", b.place(), b.reason))
        .collect();
    Err(AppError::refused(
        Code::RecordAltered,
        format!(
            "the batch's record is not what its audit trail covers and its signatures signed, \
             so it is neither signed nor printed; tell QA and the system's owner: {}",
            named.join("; ")
        ),
    ))
}

/// `f` in a read-only, repeatable-read transaction, or in the caller's; in
/// either, rows' forms are read in UTC with bytea as hex, as the database's
/// triggers hash them.
fn in_snapshot<T>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    const FORM_SETTINGS: &str = "SET LOCAL TimeZone TO 'UTC'; SET LOCAL bytea_output TO 'hex'";
    let in_transaction = AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .flatten()
        .is_some();
    if in_transaction {
        conn.batch_execute(FORM_SETTINGS)?;
        return f(conn);
    }
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|c| {
            c.batch_execute(FORM_SETTINGS)?;
            f(c)
        })
}

/// Reports what is broken, up to [`MAX_REPORTED`] items.
struct Findings {
    report: VerifyReport,
    records: Records,
    /// Seals waiting for their batch check.
    seals: Vec<PendingSeal>,
    /// The thread that checks them, while the walk runs.
    sealer: Option<std::sync::mpsc::SyncSender<Vec<PendingSeal>>>,
}

/// A signature's seal to check, and what is said when it does not hold.
struct PendingSeal {
    message: Vec<u8>,
    seal: Vec<u8>,
    unsealed: BrokenLink,
}

/// Seals checked in one batch.
const SEAL_BATCH: usize = 256;

/// What is said of each seal in `batch` that does not hold: checked as one
/// batch, and one by one only when the batch fails.
fn not_holding(key: &PublicKey, batch: Vec<PendingSeal>) -> Vec<BrokenLink> {
    let sealed: Vec<(&[u8], &[u8])> = batch
        .iter()
        .map(|p| (p.message.as_slice(), p.seal.as_slice()))
        .collect();
    if key.verifies_seals(&sealed) {
        return Vec::new();
    }
    batch
        .into_iter()
        .filter(|p| !key.verifies_seal(&p.message, &p.seal))
        .map(|p| p.unsealed)
        .collect()
}

impl Findings {
    /// Checks `p` with the next batch of seals.
    fn seal(&mut self, key: &PublicKey, p: PendingSeal) {
        self.seals.push(p);
        if self.seals.len() >= SEAL_BATCH {
            self.check_seals(key);
        }
    }

    /// Sends the waiting seals to the seal checker (or checks them here
    /// when there is none).
    fn check_seals(&mut self, key: &PublicKey) {
        let pending = std::mem::take(&mut self.seals);
        if pending.is_empty() {
            return;
        }
        let pending = match &self.sealer {
            Some(sealer) => match sealer.send(pending) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(back)) => back,
            },
            None => pending,
        };
        for b in not_holding(key, pending) {
            self.note(b);
        }
    }

    fn note(&mut self, b: BrokenLink) {
        self.report.ok = false;
        if self.report.broken.len() < MAX_REPORTED {
            self.report.broken.push(b);
        }
    }
}

fn walk_chains(
    conn: &mut PgConnection,
    key: &PublicKey,
    only: Option<&str>,
    records: Records,
    progress: &dyn Fn(u64),
) -> Result<VerifyReport, AppError> {
    let mut found = Findings {
        records,
        seals: Vec::new(),
        sealer: None,
        report: VerifyReport {
            ok: true,
            chains: 0,
            events: 0,
            rows: 0,
            signatures: 0,
            broken: Vec::new(),
        },
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
            None => return Ok(found.report),
        },
    };
    let mut current: Option<Walk> = None;
    let mut ended: HashMap<String, ChainRecords> = HashMap::new();
    std::thread::scope(|scope| -> Result<(), AppError> {
        let (pages, received) = std::sync::mpsc::sync_channel::<Page>(2);
        // A third thread checks the seals, batch by batch, beside the
        // hashing of the entries.
        let (seal_batches, to_check) = std::sync::mpsc::sync_channel::<Vec<PendingSeal>>(4);
        found.sealer = Some(seal_batches);
        let sealer = scope.spawn(move || -> Vec<BrokenLink> {
            to_check
                .into_iter()
                .flat_map(|batch| not_holding(key, batch))
                .collect()
        });
        // The walk; whatever its outcome, the seal checker then ends (its
        // channel closed) and says what it found.
        let walked = (|| -> Result<(), AppError> {
            let db = &mut *conn;
            let reader = scope.spawn(move || -> Result<(), AppError> {
                let mut after: Option<PageEnd> = None;
                // The last chain of the page before: it may go on in this one.
                let mut open: Option<String> = None;
                loop {
                    let page = verify_page(db, only_key, after)?;
                    let full = i64::try_from(page.len()).unwrap_or(0) >= VERIFY_PAGE;
                    after = page.last().map(|((r, _, _), key)| (*key, r.seq));
                    let entries: Vec<VerifyRow> = page.into_iter().map(|(row, _)| row).collect();
                    // The chains that end in this page: every chain but the
                    // page's last (unless the walk ends here), and the open one
                    // from before if it did not go on.
                    let mut names: Vec<String> = Vec::new();
                    for (row, _, _) in &entries {
                        if names.last() != Some(&row.chain) {
                            names.push(row.chain.clone());
                        }
                    }
                    let mut done: Vec<String> = Vec::new();
                    if let Some(o) = open.take() {
                        if names.first() != Some(&o) {
                            done.push(o);
                        }
                    }
                    let last = if full { names.pop() } else { None };
                    done.extend(names);
                    open = last;
                    let (rows, signatures) = match records {
                        Records::Checked => chain_records(db, &done)?,
                        Records::Skipped => (Vec::new(), Vec::new()),
                    };
                    let stop = !full;
                    // A closed channel: the checker stopped on an error.
                    if pages
                        .send(Page {
                            entries,
                            rows,
                            signatures,
                        })
                        .is_err()
                        || stop
                    {
                        return Ok(());
                    }
                }
            });
            for page in received {
                progress(u64::try_from(found.report.events).unwrap_or(0));
                for r in page.rows {
                    ended.entry(chain_of(r.batch_id)).or_default().rows.push(r);
                }
                for s in page.signatures {
                    ended
                        .entry(chain_of(s.signature.batch_id))
                        .or_default()
                        .signatures
                        .push(s);
                }
                for (row, head_seq, head_hash) in page.entries {
                    check_entry(
                        &mut found,
                        key,
                        &mut ended,
                        &mut current,
                        row,
                        head_seq,
                        head_hash,
                    )?;
                }
            }
            reader.join().map_err(|_| {
                AppError::Internal(anyhow::anyhow!("the audit reader thread panicked"))
            })??;
            if let Some(walk) = current.take() {
                finish_chain(&mut found, key, &mut ended, walk)?;
            }
            found.check_seals(key);
            Ok(())
        })();
        found.sealer = None;
        let unsealed = sealer
            .join()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the seal checker panicked")))?;
        for b in unsealed {
            found.note(b);
        }
        walked
    })?;
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
        found.report.chains += 1;
        found.note(BrokenLink::link(
            &chain,
            0,
            format!("every entry is missing: the chain head records {head_seq}"),
        ));
    }
    if only.is_none() && records == Records::Checked {
        unwalked_rows(conn, &mut found)?;
    }
    Ok(found.report)
}

#[derive(QueryableByName)]
struct TableCount {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows that belong to no chain the walk saw (a batch whose chain lost every
/// entry, a row naming a batch that has no chain): found by counting each
/// table, and named when the count is more than the walk checked.
fn unwalked_rows(conn: &mut PgConnection, found: &mut Findings) -> Result<(), AppError> {
    let counts: Vec<TableCount> = prepared(binding::counts_sql()).load(conn)?;
    let total: i64 = counts.iter().map(|c| c.n).sum();
    if total == found.report.rows {
        return Ok(());
    }
    let walked: std::collections::HashSet<String> = audit_chain_heads::table
        .filter(diesel::dsl::exists(
            audit_entries::table.filter(audit_entries::chain_id.eq(audit_chain_heads::id)),
        ))
        .select(audit_chain_heads::chain)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let batches: Vec<Uuid> = diesel::sql_query(
        "SELECT b.id FROM batches b WHERE NOT EXISTS (SELECT 1 FROM audit_chain_heads h \
           JOIN audit_entries e ON e.chain_id = h.id WHERE h.chain = 'batch:' || b.id::text)",
    )
    .load::<IdRow>(conn)?
    .into_iter()
    .map(|r| r.id)
    .collect();
    let mut orphans: Vec<CurrentRow> = Vec::new();
    if !batches.is_empty() {
        orphans.extend(
            prepared(binding::batch_rows_sql())
                .bind::<Array<SqlUuid>, _>(&batches)
                .load::<CurrentRow>(conn)?,
        );
    }
    // Rows naming a batch that is not a batch at all cannot exist: every
    // batch column is a foreign key.
    for r in orphans {
        let chain = chain_of(r.batch_id);
        if walked.contains(&chain) {
            continue;
        }
        found.report.rows += 1;
        found.note(BrokenLink::row_altered(
            &r.tbl,
            r.id,
            &chain,
            0,
            "no entry covers this row: its chain holds no entry".to_owned(),
        ));
    }
    Ok(())
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The rows and signatures of a chain that ended, waiting for its walk to
/// finish.
#[derive(Default)]
struct ChainRecords {
    rows: Vec<CurrentRow>,
    signatures: Vec<StoredSignature>,
}

/// The chain being walked by [`verify`].
struct Walk {
    chain: String,
    cursor: ChainCursor,
    /// The head row's sequence number and hash (every entry has a head: the
    /// foreign key holds it).
    head: (i64, String),
    /// The newest entry covering each row: (table, id) -> (hash, seq).
    covered: BTreeMap<(String, Uuid), (String, i64)>,
}

#[derive(serde::Deserialize)]
struct CoveredRow {
    table: String,
    id: Uuid,
    hash: String,
}

/// Checks one entry against the walk of its chain (starting a new walk, and
/// finishing the previous one, at a chain boundary).
fn check_entry(
    found: &mut Findings,
    key: &PublicKey,
    ended: &mut HashMap<String, ChainRecords>,
    current: &mut Option<Walk>,
    row: AuditEntryRow,
    head_seq: i64,
    head_hash: HexDigest,
) -> Result<(), AppError> {
    let same_chain = current.as_ref().is_some_and(|w| w.chain == row.chain);
    if !same_chain {
        if let Some(walk) = current.take() {
            finish_chain(found, key, ended, walk)?;
        }
        found.report.chains += 1;
        *current = Some(Walk {
            chain: row.chain.clone(),
            cursor: ChainCursor::default(),
            head: (head_seq, head_hash.0),
            covered: BTreeMap::new(),
        });
    }
    found.report.events += 1;
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
        rows: row.rows.as_ref(),
    };
    if let Some(walk) = current.as_mut() {
        if let Some(reason) = walk.cursor.check(&content, &row.prev_hash, &row.hash)? {
            found.note(BrokenLink::link(&row.chain, row.seq, reason.describe()));
        }
        if let (Some(rows), Records::Checked) = (&row.rows, found.records) {
            match <Vec<CoveredRow> as serde::Deserialize>::deserialize(rows) {
                Ok(covered) => {
                    for c in covered {
                        walk.covered.insert((c.table, c.id), (c.hash, row.seq));
                    }
                }
                Err(_) => found.note(BrokenLink::link(
                    &row.chain,
                    row.seq,
                    "the rows the entry covers are not a list of table, id and hash".to_owned(),
                )),
            }
        }
    }
    Ok(())
}

/// Ends the walk of a chain: its end against its head, its rows against
/// the entries that cover them, its signatures against their rows and seals.
fn finish_chain(
    found: &mut Findings,
    key: &PublicKey,
    ended: &mut HashMap<String, ChainRecords>,
    mut walk: Walk,
) -> Result<(), AppError> {
    let (seq, hash) = &walk.head;
    if let Some((at, reason)) = walk.cursor.finish(*seq, hash) {
        found.note(BrokenLink::link(&walk.chain, at, reason.describe()));
    }
    let records = ended.remove(&walk.chain).unwrap_or_default();
    for r in records.rows {
        found.report.rows += 1;
        match walk.covered.remove(&(r.tbl.clone(), r.id)) {
            Some((covered, _)) if covered == r.hash => {}
            Some((_, seq)) => found.note(BrokenLink::row_altered(
                &r.tbl,
                r.id,
                &walk.chain,
                seq,
                format!("the row is not what entry {seq} covers: it was changed outside cellqc"),
            )),
            None => found.note(BrokenLink::row_altered(
                &r.tbl,
                r.id,
                &walk.chain,
                0,
                "no entry covers this row: it was written outside cellqc".to_owned(),
            )),
        }
    }
    for ((table, id), (_, seq)) in walk.covered {
        found.note(BrokenLink::row_altered(
            &table,
            id,
            &walk.chain,
            seq,
            format!("the row entry {seq} covers is missing: it was removed outside cellqc"),
        ));
    }
    for s in records.signatures {
        found.report.signatures += 1;
        check_signature(found, key, &walk.chain, &s)?;
    }
    Ok(())
}

/// The table of the records of a signature's `entity_type`.
fn table_of(entity_type: &str) -> &str {
    match entity_type {
        "batch" => "batches",
        "result" => "results",
        "deviation" => "deviations",
        "specification" => "specifications",
        "qualification" => "qualifications",
        "instrument" => "instruments",
        "material" => "material_lots",
        other => other,
    }
}

/// A signature's seal (made with the site's key over its canonical form)
/// and, for one that names its row, its record hash recomputed from that
/// row as it is now.
fn check_signature(
    found: &mut Findings,
    key: &PublicKey,
    chain: &str,
    s: &StoredSignature,
) -> Result<(), AppError> {
    let signed = s
        .signature
        .record_table
        .as_deref()
        .zip(s.signature.record_id);
    let named = signed.or(Some((
        table_of(&s.signature.entity_type),
        s.signature.entity_id,
    )));
    let sealed = s.signature.sealed_content();
    let unsealed = |why: &str| {
        BrokenLink::signature(
            BreakKind::SignatureUnsealed,
            s.signature.id,
            named,
            chain,
            format!(
                "{why}: it was not made by cellqc with this site's key, and the {} of {} {} rests on it",
                s.signature.meaning, s.signature.entity_type, s.signature.entity_id
            ),
        )
    };
    match &s.signature.seal {
        None => found.note(unsealed("the signature carries no seal")),
        Some(seal) => found.seal(
            key,
            PendingSeal {
                message: sealed.canonical().unwrap_or_default(),
                seal: seal.clone(),
                unsealed: unsealed("the seal does not match the signature"),
            },
        ),
    }
    let (Some((table_name, id)), Ok(meaning)) =
        (signed, Meaning::try_from(s.signature.meaning.as_str()))
    else {
        // Made before signatures named their rows: its seal is all there is.
        return Ok(());
    };
    let table = SignedTable::try_from(table_name).ok();
    let matches = match (table, &s.form) {
        (Some(table), Some(form)) => {
            record_hash(
                &signed_row(table, id, &form.0),
                s.signature.signer_id,
                meaning,
                s.signature.signed_at,
            )? == s.signature.record_hash
        }
        _ => false,
    };
    if !matches || table.is_none_or(|t| t != meaning.signs()) {
        found.note(BrokenLink::signature(
            BreakKind::SignatureMismatch,
            s.signature.id,
            Some((table_name, id)),
            chain,
            format!(
                "the record hash of this {} signature does not match {table_name} row {id} as it is now",
                s.signature.meaning
            ),
        ));
    }
    Ok(())
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
    key: &PublicKey,
    actor: &super::Actor,
    also_broken: Vec<BrokenLink>,
) -> Result<VerifyReport, AppError> {
    let mut report = verify(conn, key)?;
    // What other checks found (the anchors) counts in the recorded outcome.
    report.ok = report.ok && also_broken.is_empty();
    report.broken.extend(also_broken);
    super::in_transaction(conn, |c| {
        super::audit::append(
            c,
            super::audit::AuditRecord::new(
                crate::domain::audit::SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::AuditVerified,
                VERIFICATION_ENTITY,
                Some(uuid::Uuid::nil()),
            )
            .after(serde_json::json!({
                "ok": report.ok,
                "chains": report.chains,
                "events": report.events,
                "rows": report.rows,
                "signatures": report.signatures,
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
