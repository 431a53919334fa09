//! PostgreSQL's own limit on this machine, measured in the same run with
//! the same number of clients: pgbench running, for each hot endpoint,
//! (1) the *bare* use case (the fewest statements the use case needs) and
//! (2) the endpoint's own statements. A ratio to (1) shows every wasted
//! round trip; a ratio to (2) shows what the server adds around its SQL.

use crate::Figures;
use anyhow::Context;
use cellqc::config::Settings;
use cellqc::services::batch_record::LOAD;
use cellqc::services::batch_record::fitness::FITNESS;
use diesel::prelude::*;
use std::time::Duration;
use uuid::Uuid;

/// What pgbench measured: transactions per second and the p99 latency of
/// its transactions (from its per-transaction log).
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Transactions per second.
    pub tps: f64,
    /// p99 latency.
    pub p99: Duration,
}

/// A use case's script, bare and as the endpoint sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// The fewest statements recording a result needs.
    RecordBare,
    /// What `POST /batches/{id}/results` sends.
    RecordOwn,
    /// Three selects: session, batch, results.
    DetailBare,
    /// What `GET /batches/{id}` sends.
    DetailOwn,
    /// The fewest statements an import of an export of this many rows
    /// needs: the file's bytes sent and kept, two results, one entry.
    ImportBare(usize),
}

/// The batch whose record a script reads.
const TARGET: &str = "(SELECT batch_id FROM bench.targets WHERE n = :n)";

impl Script {
    fn text(self) -> String {
        // The endpoint's read is the server's own statement, so the script
        // can't drift from it.
        let load = LOAD.replace("$1", TARGET);
        match self {
            Script::RecordBare => include_str!("sql/record_result_bare.sql").to_owned(),
            Script::DetailBare => include_str!("sql/batch_detail_bare.sql").to_owned(),
            Script::RecordOwn => {
                let of_target =
                    |column: &str| format!("(SELECT {column} FROM bench.targets WHERE n = :n)");
                let fitness = FITNESS
                    .replace("$1", &of_target("actor_id"))
                    .replace("$2", "'VIAB'")
                    .replace("$3", &of_target("instrument_id"))
                    .replace("$4", "now()")
                    .replace("$5", "'{}'::uuid[]");
                include_str!("sql/record_result.sql")
                    .replace("\nLOAD;", &format!("\n{load};"))
                    .replace("\nFITNESS;", &format!("\n{fitness};"))
            }
            Script::DetailOwn => {
                include_str!("sql/batch_detail.sql").replace("\nLOAD;", &format!("\n{load};"))
            }
            Script::ImportBare(rows) => include_str!("sql/import_bare.sql")
                .replace("EXPORT", &crate::imports::export("BARE-BATCH", rows)),
        }
    }
}

/// pgbench's targets, and the tables its writes go to: copies of the real
/// ones with the same indexes, checks and keys, so its fake hashes never
/// enter a real chain.
pub fn prepare(
    conn: &mut PgConnection,
    batches: &[Uuid],
    actor: Uuid,
    instrument: Uuid,
) -> anyhow::Result<()> {
    for sql in [
        "DROP SCHEMA IF EXISTS bench CASCADE",
        "CREATE SCHEMA bench",
        "CREATE TABLE bench.targets (n int PRIMARY KEY, batch_id uuid NOT NULL, chain_id bigint NOT NULL, \
             actor_id uuid NOT NULL, instrument_id uuid NOT NULL)",
        "CREATE TABLE bench.results (LIKE public.results INCLUDING ALL)",
        "ALTER TABLE bench.results ADD FOREIGN KEY (batch_id) REFERENCES public.batches (id), \
             ADD FOREIGN KEY (performed_by) REFERENCES public.users (id)",
        "CREATE TABLE bench.source_files (LIKE public.source_files INCLUDING ALL)",
        "ALTER TABLE bench.source_files ADD FOREIGN KEY (batch_id) REFERENCES public.batches (id), \
             ADD FOREIGN KEY (uploaded_by) REFERENCES public.users (id)",
        "CREATE TABLE bench.audit_chain_heads (LIKE public.audit_chain_heads INCLUDING ALL)",
        "CREATE TABLE bench.audit_entries (LIKE public.audit_entries INCLUDING ALL)",
        "ALTER TABLE bench.audit_entries ADD FOREIGN KEY (chain_id) REFERENCES bench.audit_chain_heads (id), \
             ADD FOREIGN KEY (actor_id) REFERENCES public.users (id)",
    ] {
        diesel::sql_query(sql).execute(conn)?;
    }
    diesel::sql_query(
        "INSERT INTO bench.targets SELECT row_number() OVER (ORDER BY b.id), b.id, h.id, $2, $3 \
           FROM batches b JOIN audit_chain_heads h ON h.chain = 'batch:' || b.id \
          WHERE b.id = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(batches)
    .bind::<diesel::sql_types::Uuid, _>(actor)
    .bind::<diesel::sql_types::Uuid, _>(instrument)
    .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO bench.audit_chain_heads SELECT h.* FROM audit_chain_heads h \
           JOIN bench.targets t ON t.chain_id = h.id",
    )
    .execute(conn)?;
    Ok(())
}

/// How pgbench sends its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Each statement prepared once per connection, as the server's are: the
    /// limit the targets are checked against.
    Prepared,
    /// pgbench's default: each statement parsed and planned every time.
    Simple,
}

/// Runs pgbench with `script` against `targets` batches.
pub fn run(
    settings: &Settings,
    url: &str,
    script: Script,
    protocol: Protocol,
    targets: usize,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Limit> {
    let bindir = cellqc::db::embedded::find_bindir(settings.pg_bindir.as_deref())?;
    let dir = std::env::temp_dir().join(format!("cellqc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("script.sql");
    std::fs::write(&file, script.text())?;
    let out = std::process::Command::new(bindir.join("pgbench"))
        .args([
            "-n",
            "-M",
            match protocol {
                Protocol::Prepared => "prepared",
                Protocol::Simple => "simple",
            },
            "-j",
            "2",
            "-c",
            &clients.to_string(),
            "-T",
            &seconds.to_string(),
            "-l",
        ])
        .arg(format!("--log-prefix={}", dir.join("log").display()))
        .args(["-D", &format!("targets={targets}")])
        .arg("-f")
        .arg(&file)
        .arg(url)
        .output()
        .context("running pgbench")?;
    // Log lines: client, transaction, latency in microseconds, ...
    let mut latencies: Vec<Duration> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("log"))
        {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                    latencies.push(Duration::from_micros(us));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort();
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!(
                "pgbench ({script:?}) said: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let failed: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(
        out.status.success() && failed == 0,
        "pgbench ({script:?}) failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Limit {
        tps,
        p99: Figures::percentile(&latencies, 0.99),
    })
}
