//! Signed anchors of the audit trail (`POST`/`GET /audit/anchors`, the
//! periodic anchor, `GET /audit/verify?anchors=true`, `cellqc audit verify
//! --anchors DIR`).
//!
//! An anchor is the Merkle root over every chain's head, signed with the key
//! outside the database ([`crate::auth::anchor_key`]). Each is kept three
//! ways: a row here (a convenience), a file in the anchor directory, and an
//! email to every active QA user. Verification with anchors asks, for every
//! head any anchor names, whether the chain still holds that entry with that
//! hash: a chain rewritten or cut back with superuser rights (hashes
//! recomputed, heads moved) passes plain verification and fails this.

use super::notices;
use super::{Actor, Page, PageRequest, in_transaction};
use crate::auth::anchor_key::{AnchorKey, PublicKey};
use crate::db::digest::HexDigest;
use crate::db::schema::audit_anchors;
use crate::domain::anchor::{AnchorBody, AnchoredHead, merkle_root, ordered};
use crate::domain::audit::BrokenLink;
use crate::domain::hashing::hash_timestamp;
use crate::domain::roles::Action;
use crate::error::AppError;
use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Nullable, Text};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// An anchor as the API, the files and the emails show it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnchorView {
    /// Anchor id.
    pub id: Uuid,
    /// When it was made (UTC, microseconds).
    pub created_at: String,
    /// Chains covered.
    pub chains: i64,
    /// Entries covered.
    pub entries: i64,
    /// SHA-256 Merkle root (RFC 6962) over every chain's `(chain, seq, hash)` head, hex.
    pub root: String,
    /// Id of the signing key (see `GET /audit/anchor-key`).
    pub key_id: String,
    /// Ed25519 signature (hex) over the canonical JSON of every other field.
    pub signature: String,
    /// The heads the root covers (in the files, emails and the answer to
    /// `POST`; left out of the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<Vec<AnchoredHead>>,
}

impl AnchorView {
    fn body(&self) -> Option<AnchorBody> {
        Some(AnchorBody {
            id: self.id,
            created_at: self.created_at.clone(),
            chains: self.chains,
            entries: self.entries,
            root: self.root.clone(),
            key_id: self.key_id.clone(),
            heads: self.heads.clone()?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_anchors)]
struct AnchorRow {
    id: Uuid,
    created_at: DateTime<Utc>,
    chains: i64,
    entries: i64,
    root: String,
    key_id: String,
    signature: String,
    heads: serde_json::Value,
}

impl AnchorRow {
    fn view(self, with_heads: bool) -> Result<AnchorView, AppError> {
        let heads = if with_heads {
            Some(
                serde_json::from_value(self.heads)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("anchor {}: {e}", self.id)))?,
            )
        } else {
            None
        };
        Ok(AnchorView {
            id: self.id,
            created_at: hash_timestamp(self.created_at),
            chains: self.chains,
            entries: self.entries,
            root: self.root,
            key_id: self.key_id,
            signature: self.signature,
            heads,
        })
    }
}

#[derive(QueryableByName)]
struct HeadRow {
    #[diesel(sql_type = Text)]
    chain: String,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Bytea, deserialize_as = HexDigest)]
    hash: String,
}

/// Every chain's head now (chains with at least one entry), in anchor order.
pub fn current_heads(conn: &mut PgConnection) -> Result<Vec<AnchoredHead>, AppError> {
    let rows: Vec<HeadRow> =
        diesel::sql_query("SELECT chain, seq, hash FROM audit_chain_heads WHERE seq > 0")
            .load(conn)?;
    Ok(ordered(
        rows.into_iter()
            .map(|r| AnchoredHead {
                chain: r.chain,
                seq: r.seq,
                hash: r.hash,
            })
            .collect(),
    ))
}

/// Where anchors go besides the database.
#[derive(Debug, Clone)]
pub struct AnchorSink {
    /// The signing key.
    pub key: std::sync::Arc<AnchorKey>,
    /// The directory of anchor files.
    pub dir: PathBuf,
}

/// Makes, signs and keeps an anchor of the trail as it is now: the row and
/// the QA email in one transaction, then the file. `actor` is none for the
/// periodic anchor. With `only_if_grown`, nothing is made when the trail
/// holds no entry that the latest anchor does not cover.
pub fn create(
    conn: &mut PgConnection,
    sink: &AnchorSink,
    actor: Option<&Actor>,
    only_if_grown: bool,
) -> Result<Option<AnchorView>, AppError> {
    if let Some(a) = actor {
        a.authorize(Action::ReadAuditTrail)?;
    }
    let view = in_transaction(conn, |c| {
        // One anchor at a time across instances; the heads are read after
        // the lock, so the check for growth sees the latest anchor.
        diesel::sql_query("SELECT pg_advisory_xact_lock(7208432)").execute(c)?;
        let heads = current_heads(c)?;
        let entries: i64 = heads.iter().map(|h| h.seq).sum();
        if only_if_grown {
            let last: Option<i64> = audit_anchors::table
                .order((audit_anchors::created_at.desc(), audit_anchors::id.desc()))
                .select(audit_anchors::entries)
                .first(c)
                .optional()?;
            if last == Some(entries) || (last.is_none() && entries == 0) {
                return Ok(None);
            }
        }
        let created_at = Utc::now().trunc_subsecs(6);
        let body = AnchorBody {
            id: Uuid::now_v7(),
            created_at: hash_timestamp(created_at),
            chains: i64::try_from(heads.len()).unwrap_or(i64::MAX),
            entries,
            root: merkle_root(&heads).map_err(|e| AppError::Internal(e.into()))?,
            key_id: sink.key.key_id.clone(),
            heads,
        };
        let signature = sink.key.sign(
            &body
                .signed_bytes()
                .map_err(|e| AppError::Internal(e.into()))?,
        );
        diesel::insert_into(audit_anchors::table)
            .values((
                audit_anchors::id.eq(body.id),
                audit_anchors::created_at.eq(created_at),
                audit_anchors::created_by.eq(actor.map(|a| a.id)),
                audit_anchors::chains.eq(body.chains),
                audit_anchors::entries.eq(body.entries),
                audit_anchors::root.eq(&body.root),
                audit_anchors::key_id.eq(&body.key_id),
                audit_anchors::signature.eq(&signature),
                audit_anchors::heads
                    .eq(serde_json::to_value(&body.heads)
                        .map_err(|e| AppError::Internal(e.into()))?),
            ))
            .execute(c)?;
        let view = AnchorView {
            id: body.id,
            created_at: body.created_at,
            chains: body.chains,
            entries: body.entries,
            root: body.root,
            key_id: body.key_id,
            signature,
            heads: Some(body.heads),
        };
        // The whole anchor goes by email while it is small; past that (a
        // site with many batches: 1 M chains are about 150 MB of heads) the
        // email carries the signed summary and names the file that holds
        // every head, so an email never holds up the outbox's urgent ones.
        let whole =
            serde_json::to_string_pretty(&view).map_err(|e| AppError::Internal(e.into()))?;
        let (json, file) = if whole.len() <= EMAILED_ANCHOR_MAX_BYTES {
            (whole, None)
        } else {
            let summary = AnchorView {
                heads: None,
                ..view.clone()
            };
            (
                serde_json::to_string_pretty(&summary).map_err(|e| AppError::Internal(e.into()))?,
                Some(file_name(&view)),
            )
        };
        notices::anchor_made(c, &view.root, &view.created_at, &json, file.as_deref())?;
        Ok(Some(view))
    })?;
    if let Some(v) = &view {
        write_file(&sink.dir, v).map_err(AppError::Internal)?;
    }
    Ok(view)
}

/// The largest anchor (as pretty JSON) that an email carries whole.
pub const EMAILED_ANCHOR_MAX_BYTES: usize = 256 * 1024;

/// `anchor-<time>Z-<id>.json`.
fn file_name(anchor: &AnchorView) -> String {
    let stamp: String = anchor
        .created_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    format!("anchor-{stamp}Z-{}.json", anchor.id)
}

/// Writes `anchor-<time>Z-<id>.json` atomically (temporary file, then rename).
fn write_file(dir: &Path, anchor: &AnchorView) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(anchor));
    let tmp = dir.join(format!(".{}.tmp", anchor.id));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(serde_json::to_string_pretty(anchor)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The anchors kept in the database, newest first (without their heads).
pub fn list(
    conn: &mut PgConnection,
    actor: &Actor,
    page: PageRequest,
) -> Result<Page<AnchorView>, AppError> {
    actor.authorize(Action::ReadAuditTrail)?;
    let mut q = audit_anchors::table
        .select(AnchorRow::as_select())
        .order(audit_anchors::id.desc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = page.after {
        q = q.filter(audit_anchors::id.lt(after));
    }
    let rows = q.load(conn)?;
    let views = rows
        .into_iter()
        .map(|r| r.view(false))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(views, page.limit, |a| a.id))
}

/// Every anchor the database holds, with heads.
pub fn stored(conn: &mut PgConnection) -> Result<Vec<AnchorView>, AppError> {
    audit_anchors::table
        .select(AnchorRow::as_select())
        .order(audit_anchors::id)
        .load(conn)?
        .into_iter()
        .map(|r| r.view(true))
        .collect()
}

/// Every `*.json` anchor file in `dir` (none when it does not exist); a file
/// that is not an anchor is reported as broken, never skipped.
pub fn from_dir(dir: &Path) -> (Vec<AnchorView>, Vec<BrokenLink>) {
    let mut anchors = Vec::new();
    let mut bad = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (anchors, bad);
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        match std::fs::read(&p)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice::<AnchorView>(&b)?))
        {
            Ok(a) => anchors.push(a),
            Err(e) => bad.push(BrokenLink::anchor(
                format!("anchor file {}", p.display()),
                0,
                format!("not a readable anchor: {e}"),
            )),
        }
    }
    (anchors, bad)
}

/// What checking the anchors found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnchorCheck {
    /// Anchors checked.
    pub anchors: usize,
    /// Distinct anchored heads checked against the trail.
    pub heads: usize,
    /// Every anchor is validly signed and every anchored entry is still in
    /// its chain with its anchored hash.
    pub ok: bool,
    /// What does not hold.
    pub broken: Vec<BrokenLink>,
}

#[derive(QueryableByName)]
struct Mismatch {
    #[diesel(sql_type = Text)]
    chain: String,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Nullable<Bytea>)]
    stored: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    head_seq: Option<i64>,
}

/// Checks `anchors` (each signed by `key`, each consistent with its heads)
/// and then the trail against every head they name, in one query.
pub fn check(
    conn: &mut PgConnection,
    key: &PublicKey,
    anchors: &[AnchorView],
) -> Result<AnchorCheck, AppError> {
    let mut broken = Vec::new();
    // Nothing to check against is no verification: an operator who deletes
    // every anchor must not turn "verified against anchors" into a yes.
    if anchors.is_empty() {
        broken.push(BrokenLink::no_anchors());
    }
    let mut heads: BTreeSet<(String, i64, String)> = BTreeSet::new();
    let key_id = key.key_id();
    for a in anchors {
        let name = format!("anchor {}", a.id);
        let Some(body) = a.body() else {
            broken.push(BrokenLink::anchor(
                name,
                0,
                "the anchor lists no heads".into(),
            ));
            continue;
        };
        if a.key_id != key_id {
            broken.push(BrokenLink::anchor(
                name,
                0,
                format!(
                    "signed by key {}, not by this site's key {key_id}",
                    a.key_id
                ),
            ));
            continue;
        }
        let signed = body
            .signed_bytes()
            .map_err(|e| AppError::Internal(e.into()))?;
        if !key.verifies(&signed, &a.signature) || !body.is_consistent() {
            broken.push(BrokenLink::anchor(
                name,
                0,
                "the signature does not verify or the root does not match its heads: the anchor was altered".into(),
            ));
            continue;
        }
        for h in body.heads {
            heads.insert((h.chain, h.seq, h.hash));
        }
    }
    let (chains, (seqs, hashes)): (Vec<String>, (Vec<i64>, Vec<String>)) = heads
        .iter()
        .map(|(c, s, h)| (c.clone(), (*s, h.clone())))
        .unzip();
    let found: Vec<Mismatch> = diesel::sql_query(
        "SELECT a.chain, a.seq, e.hash AS stored, ch.seq AS head_seq \
         FROM unnest($1::text[], $2::bigint[], $3::text[]) AS a(chain, seq, hash) \
         LEFT JOIN audit_chain_heads ch ON ch.chain = a.chain \
         LEFT JOIN audit_entries e ON e.chain_id = ch.id AND e.seq = a.seq \
         WHERE e.hash IS DISTINCT FROM decode(a.hash, 'hex') \
         ORDER BY a.chain, a.seq",
    )
    .bind::<Array<Text>, _>(&chains)
    .bind::<Array<BigInt>, _>(&seqs)
    .bind::<Array<Text>, _>(&hashes)
    .load(conn)?;
    for m in found {
        let reason = match (&m.stored, m.head_seq) {
            (None, Some(head)) if head < m.seq => format!(
                "the chain was cut back: an anchor holds entry {} but the chain now ends at {head}",
                m.seq
            ),
            (None, None) => "the chain is gone, yet an anchor holds it".to_owned(),
            (None, Some(_)) => format!("entry {} that an anchor holds is missing", m.seq),
            (Some(_), _) => format!(
                "entry {} no longer has the hash an anchor holds: it was rewritten",
                m.seq
            ),
        };
        broken.push(BrokenLink::anchor(m.chain, m.seq, reason));
    }
    Ok(AnchorCheck {
        anchors: anchors.len(),
        heads: heads.len(),
        ok: broken.is_empty(),
        broken,
    })
}

/// Anchors the trail every `every` when it grew (`CELLQC_ANCHOR_MINUTES`).
pub fn start_periodic(
    pool: crate::db::pool::DbPool,
    sink: AnchorSink,
    every: std::time::Duration,
) -> anyhow::Result<crate::periodic::Worker> {
    crate::periodic::Worker::start("audit-anchor", pool, every, move |c| {
        if let Some(a) = create(c, &sink, None, true).map_err(|e| anyhow::anyhow!("{e}"))? {
            tracing::info!(anchor = %a.id, root = %a.root, entries = a.entries, "audit trail anchored");
        }
        Ok(())
    })
}

/// [`check`] against every anchor kept: the files in the anchor directory
/// and the rows of the database. An unreadable file is a break.
pub fn check_kept(conn: &mut PgConnection, sink: &AnchorSink) -> Result<AnchorCheck, AppError> {
    let (mut kept, unreadable) = from_dir(&sink.dir);
    kept.extend(stored(conn)?);
    let mut found = check(conn, &sink.key.verifying(), &kept)?;
    found.broken.extend(unreadable);
    found.ok = found.broken.is_empty();
    Ok(found)
}

/// The newest anchor the database keeps, if any (without heads).
pub fn latest(conn: &mut PgConnection) -> Result<Option<AnchorView>, AppError> {
    audit_anchors::table
        .select(AnchorRow::as_select())
        .order(audit_anchors::id.desc())
        .first(conn)
        .optional()?
        .map(|r| r.view(false))
        .transpose()
}
