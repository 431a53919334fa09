//! `cellqc backup` and `cellqc restore` (EU GMP Annex 11 §7.2: backups are
//! made regularly and their restoration is verified).
//!
//! A backup is one tar file holding PostgreSQL's own archive (`pg_dump
//! --format=custom`) and a manifest signed with the anchor key: every chain's
//! head, their Merkle root, the row count of every table and the archive's
//! SHA-256. Archive and manifest come from one snapshot: the manifest is
//! read in a repeatable-read transaction whose snapshot `pg_dump` is given
//! (`--snapshot`), so a backup taken under write load still describes
//! exactly what it holds.
//!
//! A restore goes into an empty database only. It checks the manifest's
//! signature and the archive's hash before it touches the database,
//! restores in one transaction, verifies every chain, and compares the
//! heads, the root and the counts with the manifest.

use crate::auth::anchor_key::{AnchorKey, PublicKey};
use crate::database::Database;
use crate::domain::anchor::{AnchoredHead, merkle_root};
use crate::domain::hashing::{canonical_json, hash_timestamp};
use crate::services::{anchors, verification};
use anyhow::{Context, bail};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const FORMAT: &str = "cellqc-backup/1";
const MANIFEST: &str = "manifest.json";
const ARCHIVE: &str = "cellqc.dump";

/// What a backup holds, signed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestBody {
    /// `cellqc-backup/1`.
    pub format: String,
    /// When the snapshot was taken (database time, UTC).
    pub taken_at: String,
    /// The cellqc version that took it.
    pub cellqc_version: String,
    /// Migrations applied in the snapshot.
    pub migrations: Vec<String>,
    /// Every chain's head.
    pub heads: Vec<AnchoredHead>,
    /// Merkle root over the heads (as anchors compute it).
    pub root: String,
    /// Chains.
    pub chains: i64,
    /// Audit entries.
    pub entries: i64,
    /// Rows per table.
    pub counts: BTreeMap<String, i64>,
    /// SHA-256 of the pg_dump archive, hex.
    pub archive_sha256: String,
    /// Its size in bytes.
    pub archive_bytes: u64,
    /// The signing key's id.
    pub key_id: String,
}

/// The manifest as stored: its body and the Ed25519 signature over the
/// body's canonical JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// What is signed.
    #[serde(flatten)]
    pub body: ManifestBody,
    /// Signature, hex.
    pub signature: String,
}

#[derive(QueryableByName)]
struct Snapshot {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    at: chrono::DateTime<chrono::Utc>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn tables(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    Ok(diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
           AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') \
         ORDER BY 1",
    )
    .load::<Name>(conn)?
    .into_iter()
    .map(|n| n.name)
    .collect())
}

/// Rows per table, chain heads and applied migrations.
type Description = (BTreeMap<String, i64>, Vec<AnchoredHead>, Vec<String>);

/// What a manifest states, read in the caller's snapshot.
fn describe(conn: &mut PgConnection) -> anyhow::Result<Description> {
    let mut counts = BTreeMap::new();
    for t in tables(conn)? {
        let n: Count = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM public.\"{}\"",
            t.replace('"', "\"\"")
        ))
        .get_result(conn)?;
        counts.insert(t, n.n);
    }
    let heads = anchors::current_heads(conn).map_err(|e| anyhow::anyhow!("{e}"))?;
    let migrations = diesel::sql_query(
        "SELECT version::text AS name FROM __diesel_schema_migrations ORDER BY 1",
    )
    .load::<Name>(conn)?
    .into_iter()
    .map(|n| n.name)
    .collect();
    Ok((counts, heads, migrations))
}

fn sha256_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
    Ok((hex::encode(h.finalize()), total))
}

fn tool(bindir: &Path, name: &str) -> PathBuf {
    bindir.join(name)
}

/// Runs `cmd` (`pg_dump` or `pg_restore`, given `--verbose`), moving
/// `progress` by each table's rows (`rows`) as its data is done: the tools
/// name each table when its data starts (`starts` precedes the quoted
/// `"public.table"`). Returns whether it succeeded, and the lines of
/// standard error that say what went wrong.
fn run_counting_rows(
    mut cmd: Command,
    rows: &BTreeMap<String, i64>,
    starts: &str,
    progress: &crate::progress::Progress,
) -> anyhow::Result<(bool, String)> {
    use std::io::BufRead;
    let mut child = cmd
        .arg("--verbose")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut done = 0u64;
    let mut current: Option<u64> = None;
    let mut problems = Vec::new();
    if let Some(err) = child.stderr.take() {
        for line in std::io::BufReader::new(err).lines() {
            let line = line?;
            if let Some(rest) = line.split_once(starts).map(|(_, r)| r) {
                done += current.take().unwrap_or(0);
                progress.set(done);
                let table = rest.trim().trim_matches('"');
                let table = table.strip_prefix("public.").unwrap_or(table);
                current = rows.get(table).map(|n| u64::try_from(*n).unwrap_or(0));
            } else if line.contains("error") || line.contains("FATAL") || line.contains("warning") {
                problems.push(line);
            }
        }
    }
    let status = child.wait()?;
    progress.set(done + current.unwrap_or(0));
    Ok((status.success(), problems.join("\n")))
}

/// The rows of `counts`, as a progress total.
fn total_rows(counts: &BTreeMap<String, i64>) -> u64 {
    counts
        .values()
        .map(|n| u64::try_from(*n).unwrap_or(0))
        .sum()
}

/// Takes a backup of `db` into `to` (a tar of the archive and the signed
/// manifest, mode 0600: it holds password hashes).
pub fn backup(
    db: &Database,
    bindir: &Path,
    key: &AnchorKey,
    to: &Path,
) -> anyhow::Result<Manifest> {
    let work = tempfile_dir(to)?;
    let archive = work.join(ARCHIVE);
    let mut conn = PgConnection::establish(&db.owner_url).context("connecting for the backup")?;
    let body = conn.build_transaction().repeatable_read().read_only().run(
        |c| -> anyhow::Result<ManifestBody> {
            let snap: Snapshot =
                diesel::sql_query("SELECT pg_export_snapshot() AS id, now() AS at")
                    .get_result(c)?;
            let (counts, heads, migrations) = describe(c)?;
            let progress = crate::progress::Progress::new("backup", total_rows(&counts), "rows");
            let mut cmd = Command::new(tool(bindir, "pg_dump"));
            cmd.arg("--format=custom")
                .arg(format!("--snapshot={}", snap.id))
                .arg("--file")
                .arg(&archive)
                .arg("--dbname")
                .arg(&db.owner_url);
            let (ok, problems) =
                run_counting_rows(cmd, &counts, "dumping contents of table ", &progress)
                    .context("running pg_dump")?;
            if !ok {
                bail!("pg_dump failed: {}", problems.trim());
            }
            progress.finish();
            let (archive_sha256, archive_bytes) = sha256_file(&archive)?;
            Ok(ManifestBody {
                format: FORMAT.to_owned(),
                taken_at: hash_timestamp(snap.at),
                cellqc_version: env!("CARGO_PKG_VERSION").to_owned(),
                migrations,
                root: merkle_root(&heads)?,
                chains: i64::try_from(heads.len())?,
                entries: heads.iter().map(|h| h.seq).sum(),
                heads,
                counts,
                archive_sha256,
                archive_bytes,
                key_id: key.key_id.clone(),
            })
        },
    )?;
    let manifest = Manifest {
        signature: key.sign(&canonical_json(&body)?),
        body,
    };
    let tmp = to.with_extension("partial");
    {
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let mut tar = tar::Builder::new(file);
        let json = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        tar.append_path_with_name(&archive, ARCHIVE)?;
        let file = tar.into_inner()?;
        file.sync_all()?;
    }
    fs::rename(&tmp, to)?;
    fs::remove_dir_all(&work)?;
    Ok(manifest)
}

/// A private working directory beside `near` (same file system).
fn tempfile_dir(near: &Path) -> anyhow::Result<PathBuf> {
    let parent = near
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = parent.join(format!(".cellqc-backup-{}", uuid::Uuid::now_v7()));
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(dir)
}

/// Reads a backup file: its manifest, and its archive extracted into `work`.
fn unpack(from: &Path, work: &Path) -> anyhow::Result<(Manifest, PathBuf)> {
    let mut tar = tar::Archive::new(
        fs::File::open(from).with_context(|| format!("opening {}", from.display()))?,
    );
    let mut manifest = None;
    let archive = work.join(ARCHIVE);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        match name.as_str() {
            MANIFEST => {
                let mut text = Vec::new();
                entry.read_to_end(&mut text)?;
                manifest = Some(
                    serde_json::from_slice::<Manifest>(&text).context("reading the manifest")?,
                );
            }
            ARCHIVE => {
                let mut out = fs::File::create(&archive)?;
                std::io::copy(&mut entry, &mut out)?;
                out.flush()?;
            }
            other => bail!(
                "{} holds an unexpected file {other}: not a cellqc backup",
                from.display()
            ),
        }
    }
    let Some(manifest) = manifest else {
        bail!("{} has no manifest: not a cellqc backup", from.display());
    };
    if !archive.exists() {
        bail!("{} has no archive", from.display());
    }
    Ok((manifest, archive))
}

/// Checks a manifest's signature and its archive's hash; nothing else is
/// trusted before this passes.
fn check_manifest(manifest: &Manifest, archive: &Path, key: &PublicKey) -> anyhow::Result<()> {
    if manifest.body.format != FORMAT {
        bail!("unknown backup format {}", manifest.body.format);
    }
    if manifest.body.key_id != key.key_id() {
        bail!(
            "the manifest is signed by key {}, not by this site's key {}: give --public-key",
            manifest.body.key_id,
            key.key_id()
        );
    }
    if !key.verifies(&canonical_json(&manifest.body)?, &manifest.signature) {
        bail!("the manifest's signature does not verify: the backup was altered");
    }
    let (sha, bytes) = sha256_file(archive)?;
    if sha != manifest.body.archive_sha256 || bytes != manifest.body.archive_bytes {
        bail!("the archive does not match its manifest (SHA-256 {sha}): the backup was altered");
    }
    Ok(())
}

/// What a restore found.
#[derive(Debug)]
pub struct Restored {
    /// The manifest restored from.
    pub manifest: Manifest,
    /// The chain verification of the restored database.
    pub verify: verification::VerifyReport,
    /// Differences between the restored database and the manifest.
    pub differences: Vec<String>,
}

/// Restores `from` into `db`, which must hold no table yet, then verifies.
pub fn restore(
    db: &Database,
    bindir: &Path,
    key: &PublicKey,
    from: &Path,
) -> anyhow::Result<Restored> {
    let work = tempfile_dir(from)?;
    let outcome = restore_in(db, bindir, key, from, &work);
    let _ = fs::remove_dir_all(&work);
    outcome
}

fn restore_in(
    db: &Database,
    bindir: &Path,
    key: &PublicKey,
    from: &Path,
    work: &Path,
) -> anyhow::Result<Restored> {
    let (manifest, archive) = unpack(from, work)?;
    check_manifest(&manifest, &archive, key)?;
    // The embedded cluster restores as its superuser and gives everything to
    // the owner after; an external database restores as the owner.
    let target = db.superuser_url.as_deref().unwrap_or(&db.owner_url);
    let mut conn = PgConnection::establish(target).context("connecting for the restore")?;
    let existing = tables(&mut conn)?;
    if !existing.is_empty() {
        let users: i64 = if existing.iter().any(|t| t == "users") {
            diesel::sql_query("SELECT count(*) AS n FROM users")
                .get_result::<Count>(&mut conn)?
                .n
        } else {
            0
        };
        bail!(
            "the database is not empty ({} tables, {users} user(s)): a backup is restored only into an empty database, never over records",
            existing.len()
        );
    }
    let mut cmd = Command::new(tool(bindir, "pg_restore"));
    cmd.args(["--exit-on-error", "--single-transaction"]);
    if db.superuser_url.is_none() {
        cmd.arg("--no-owner");
    }
    cmd.arg("--dbname").arg(target).arg(&archive);
    let progress =
        crate::progress::Progress::new("restore", total_rows(&manifest.body.counts), "rows");
    let (ok, problems) = run_counting_rows(
        cmd,
        &manifest.body.counts,
        "processing data for table ",
        &progress,
    )
    .context("running pg_restore")?;
    if !ok {
        bail!(
            "pg_restore failed (nothing was restored): {}",
            problems.trim()
        );
    }
    progress.finish();
    if db.superuser_url.is_some() {
        let name: Name =
            diesel::sql_query("SELECT current_database()::text AS name").get_result(&mut conn)?;
        crate::db::roles::bootstrap(&mut conn, &name.name)?;
    }
    // Checked as the server will read it.
    let mut app = PgConnection::establish(&db.url).context("connecting as the app role")?;
    app.batch_execute("SET default_transaction_read_only = on")?;
    let checking = crate::progress::Progress::new(
        "restore: audit verify",
        u64::try_from(manifest.body.entries).unwrap_or(0),
        "entries",
    );
    let verify = verification::verify_reporting(&mut app, key, &|n| checking.set(n))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    checking.finish();
    let (counts, heads, migrations) = describe(&mut app)?;
    let mut differences = Vec::new();
    if heads != manifest.body.heads {
        differences.push("the chain heads differ from the manifest's".to_owned());
    }
    if merkle_root(&heads)? != manifest.body.root {
        differences.push("the Merkle root differs from the manifest's".to_owned());
    }
    if migrations != manifest.body.migrations {
        differences.push("the applied migrations differ from the manifest's".to_owned());
    }
    for (table, n) in &manifest.body.counts {
        let got = counts.get(table).copied().unwrap_or(-1);
        if got != *n {
            differences.push(format!("{table}: {got} row(s), the manifest says {n}"));
        }
    }
    Ok(Restored {
        manifest,
        verify,
        differences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_of_a_dump_moves_by_each_tables_rows_as_the_tool_names_it() {
        // What pg_dump --verbose writes to standard error, table by table.
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(
            "for t in a b; do echo \"pg_dump: dumping contents of table \\\"public.$t\\\"\" >&2; done; \
             echo 'pg_dump: error: query failed' >&2; exit 1",
        );
        // `sh -c` gets `--verbose` as $0: harmless.
        let rows = BTreeMap::from([("a".to_owned(), 7), ("b".to_owned(), 5)]);
        let progress = crate::progress::Progress::to("backup", 12, "rows", false);
        let (ok, problems) =
            run_counting_rows(cmd, &rows, "dumping contents of table ", &progress).unwrap();
        assert!(!ok);
        assert_eq!(problems, "pg_dump: error: query failed");
        assert_eq!(progress.position(), 12);
    }
}
