//! `cellqc bench`: a load generator. It optionally fills the database with
//! COPY (`fill.rs`), seeds batches through the services, starts `cellqc serve`
//! as a child process on the same database, drives each scenario with
//! `clients` concurrent HTTP clients for `seconds`, and prints throughput and
//! p50/p95/p99 latency. For record-result and batch-detail it then runs
//! pgbench with scripts replaying the same SQL against the same database and
//! client count, and prints the ratio endpoint / pgbench: PostgreSQL's own
//! limit on this machine, measured in the same run. Last, audit verification
//! against COPY, and the server's resident memory.

use crate::config::Settings;
use crate::db::schema::{products, users};
use crate::demo::{DEMO_PASSWORD, msc_passing_values};
use crate::services::batches::{NewBatchInput, create_batch};
use crate::services::results::{NewResultInput, record_result};
use crate::services::users::{actor_of, ensure_initial_admin};
use anyhow::Context;
use chrono::{Duration as ChronoDuration, Utc};
use diesel::prelude::*;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub mod fill;

const RECORD_SQL: &str = include_str!("record_result.sql");
const DETAIL_SQL: &str = include_str!("batch_detail.sql");

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Batches seeded with a full MSC panel (read scenarios).
    #[arg(long, default_value_t = 100)]
    pub batches: usize,
    /// Skip the pgbench comparison.
    #[arg(long)]
    pub no_pgbench: bool,
    /// First fill the database with COPY up to this many generated batches
    /// (ten results, nine review signatures, twenty audit entries each).
    #[arg(long, default_value_t = 0)]
    pub fill: usize,
    /// Fill, then stop without measuring.
    #[arg(long)]
    pub fill_only: bool,
    /// Measure only audit verification against COPY (no HTTP load).
    #[arg(long)]
    pub verify_only: bool,
}

/// One scenario's figures.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Seeded {
    detail: Vec<Uuid>,
    fresh: Vec<Uuid>,
}

fn seed(conn: &mut PgConnection, opts: &BenchOptions) -> anyhow::Result<Seeded> {
    let err = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    let product: Uuid = products::table
        .filter(products::code.eq("UCMSC-INJ"))
        .select(products::id)
        .first(conn)?;
    let tech_row = users::table
        .filter(users::username.eq("tech"))
        .select(crate::db::models::UserRow::as_select())
        .first(conn)?;
    let tech = actor_of(&tech_row).map_err(err)?;
    let run = Uuid::now_v7().simple().to_string();
    let tag = run.get(24..).unwrap_or(&run).to_owned();
    let mut batch = |i: usize, kind: &str| -> anyhow::Result<Uuid> {
        let b = create_batch(
            conn,
            &tech,
            &NewBatchInput {
                batch_number: format!("BENCH-{tag}-{kind}-{i}"),
                product_id: product,
                manufactured_at: Utc::now() - ChronoDuration::days(5),
                expires_at: Utc::now() + ChronoDuration::days(60),
                ..NewBatchInput::default()
            },
        )
        .map_err(err)?;
        Ok(b.id)
    };
    let mut detail = Vec::with_capacity(opts.batches);
    for i in 0..opts.batches {
        detail.push(batch(i, "D")?);
    }
    // Enough empty batches for every record-result request to find a test
    // without a result (14 per batch) at a few thousand requests per second.
    let fresh_count = (opts.clients * opts.seconds as usize * 400 / 14).max(50);
    let mut fresh = Vec::with_capacity(fresh_count);
    for i in 0..fresh_count {
        fresh.push(batch(i, "R")?);
    }
    for id in &detail {
        for (code, value) in msc_passing_values() {
            let input = NewResultInput {
                test_code: code.to_owned(),
                value: value.to_string(),
                unit: None,
                performed_at: Utc::now() - ChronoDuration::days(1),
                instrument: None,
                comment: None,
                replaces_result_id: None,
                reason: None,
            };
            record_result(conn, &tech, *id, &input).map_err(err)?;
        }
    }
    // pgbench's targets, and the tables its writes go to: copies of the real
    // ones with the same indexes, checks and keys, so its fake hashes never
    // enter a real chain.
    for sql in [
        "DROP SCHEMA IF EXISTS bench CASCADE",
        "CREATE SCHEMA bench",
        "CREATE TABLE bench.targets (n int PRIMARY KEY, batch_id uuid NOT NULL, chain text NOT NULL)",
        "CREATE TABLE bench.results (LIKE public.results INCLUDING ALL)",
        "ALTER TABLE bench.results ADD FOREIGN KEY (batch_id) REFERENCES public.batches (id), \
             ADD FOREIGN KEY (performed_by) REFERENCES public.users (id)",
        "CREATE TABLE bench.audit_chain_heads (LIKE public.audit_chain_heads INCLUDING ALL)",
        "CREATE TABLE bench.audit_entries (LIKE public.audit_entries INCLUDING ALL)",
        "ALTER TABLE bench.audit_entries ADD FOREIGN KEY (chain) REFERENCES bench.audit_chain_heads (chain), \
             ADD FOREIGN KEY (actor_id) REFERENCES public.users (id)",
    ] {
        diesel::sql_query(sql).execute(conn)?;
    }
    diesel::sql_query(
        "INSERT INTO bench.targets SELECT row_number() OVER (ORDER BY id), id, 'batch:' || id FROM batches WHERE id = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&detail)
    .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO bench.audit_chain_heads SELECT h.* FROM audit_chain_heads h JOIN bench.targets t ON t.chain = h.chain",
    )
    .execute(conn)?;
    Ok(Seeded { detail, fresh })
}

async fn token(client: &awc::Client, base: &str, user: &str) -> anyhow::Result<String> {
    let mut r = client
        .post(format!("{base}/api/v1/auth/login"))
        .send_json(&serde_json::json!({"username": user, "password": DEMO_PASSWORD}))
        .await
        .map_err(|e| anyhow::anyhow!("sign-in: {e}"))?;
    let body: serde_json::Value = r
        .json()
        .await
        .map_err(|e| anyhow::anyhow!("sign-in: {e}"))?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no token")
}

/// Drives `clients` loops until the deadline; `request(i)` makes the i-th request.
async fn drive<F, Fut>(clients: usize, seconds: u64, request: F) -> Figures
where
    F: Fn(usize) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = bool>,
{
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let loops = (0..clients).map(|_| {
        let counter = counter.clone();
        let request = request.clone();
        async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if request(i).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }
    });
    let results = futures_util::future::join_all(loops).await;
    let elapsed = start.elapsed().as_secs_f64();
    let mut all: Vec<Duration> = Vec::new();
    let mut errors = 0;
    for (lat, e) in results {
        all.extend(lat);
        errors += e;
    }
    all.sort();
    Figures {
        requests: all.len() + errors,
        errors,
        per_second: all.len() as f64 / elapsed,
        p50: percentile(&all, 0.50),
        p95: percentile(&all, 0.95),
        p99: percentile(&all, 0.99),
    }
}

/// Runs pgbench with `script` and returns its transactions per second.
/// What pgbench measured: transactions per second and the p99 latency of
/// its transactions (from its per-transaction log).
#[derive(Debug, Clone, Copy)]
struct Limit {
    tps: f64,
    p99: Duration,
}

/// Runs pgbench with `script`.
fn pgbench(
    settings: &Settings,
    url: &str,
    script: &str,
    targets: usize,
    opts: &BenchOptions,
) -> anyhow::Result<Limit> {
    let bindir = crate::db::embedded::find_bindir(settings.pg_bindir.as_deref())?;
    let dir = std::env::temp_dir().join(format!("cellqc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("script.sql");
    std::fs::write(&file, script)?;
    let out = std::process::Command::new(bindir.join("pgbench"))
        .args([
            "-n",
            "-j",
            "2",
            "-c",
            &opts.clients.to_string(),
            "-T",
            &opts.seconds.to_string(),
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
                "pgbench said: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    Ok(Limit {
        tps,
        p99: percentile(&latencies, 0.99),
    })
}

fn row(name: &str, f: &Figures, limit: Option<Limit>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ratio = limit.map_or_else(String::new, |l| {
        format!(
            "{:>10.0}  {:>5.2}  {:>10.1}",
            l.tps,
            f.per_second / l.tps,
            ms(l.p99)
        )
    });
    println!(
        "{name:<15} {:>8} {:>6} {:>8.0} {:>7.1} {:>7.1} {:>7.1}  {ratio}",
        f.requests,
        f.errors,
        f.per_second,
        ms(f.p50),
        ms(f.p95),
        ms(f.p99)
    );
}

/// The server under test: `cellqc serve` as a child process on the same
/// database, so its resident memory is its own.
struct Child {
    process: std::process::Child,
    base: String,
}

impl Child {
    fn start(settings: &Settings, database_url: &str, opts: &BenchOptions) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args([
            "serve",
            "--no-migrate",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .env("DATABASE_URL", database_url)
        .env("CELLQC_DATA_DIR", &settings.data_dir)
        .env("CELLQC_DB_POOL_SIZE", (opts.clients + 4).to_string())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
        if let Some(w) = settings.workers {
            cmd.env("CELLQC_WORKERS", w.to_string());
        }
        let process = cmd.spawn().context("starting cellqc serve")?;
        let child = Child {
            process,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if ready {
                return Ok(child);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "cellqc serve did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `VmRSS` and `VmHWM` (peak) from /proc, in MiB.
    fn memory(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let kb: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} not in /proc status"))?;
            Ok(kb / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.process.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        self.process.wait()?;
        Ok(())
    }
}

/// Audit verification of one chain against reading the same rows with COPY.
struct VerifySpeed {
    entries: i64,
    verify_per_s: f64,
    copy_per_s: f64,
}

fn verify_speed(
    conn: &mut PgConnection,
    settings: &Settings,
    url: &str,
) -> anyhow::Result<VerifySpeed> {
    let chain = crate::domain::audit::SYSTEM_CHAIN;
    let bindir = crate::db::embedded::find_bindir(settings.pg_bindir.as_deref())?;
    let copy = || -> anyhow::Result<f64> {
        let t = Instant::now();
        let status = std::process::Command::new(bindir.join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c"])
            .arg(format!(
                "COPY (SELECT * FROM audit_entries WHERE chain = '{chain}' ORDER BY seq) TO STDOUT"
            ))
            .stdout(std::process::Stdio::null())
            .status()
            .context("running psql")?;
        anyhow::ensure!(status.success(), "psql COPY failed");
        Ok(t.elapsed().as_secs_f64())
    };
    // Once to bring the rows into memory, so neither side pays for the disk.
    copy()?;
    let t = Instant::now();
    let report = crate::services::audit::verify_chains(conn, Some(chain))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let verify_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.ok,
        "the {chain} chain does not verify: {:?}",
        report.broken
    );
    let copy_s = copy()?;
    let n = report.events as f64;
    Ok(VerifySpeed {
        entries: report.events,
        verify_per_s: n / verify_s,
        copy_per_s: n / copy_s,
    })
}

fn print_verify(v: &VerifySpeed) {
    println!(
        "audit verify    {} entries of the system chain: {:.0} entries/s; COPY to /dev/null {:.0} rows/s; ratio {:.2}",
        v.entries,
        v.verify_per_s,
        v.copy_per_s,
        v.verify_per_s / v.copy_per_s
    );
}

/// Fills, seeds, serves, measures and prints.
pub fn run(settings: &Settings, database_url: &str, opts: &BenchOptions) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(database_url)?;
    crate::db::run_migrations(&mut conn)?;
    let err = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    ensure_initial_admin(&mut conn, Some("bench-first-boot-pw")).map_err(err)?;
    crate::demo::load(&mut conn, settings.lockout()).map_err(err)?;
    if opts.fill > 0 {
        let started = Instant::now();
        let added = fill::fill(&mut conn, opts.fill)?;
        eprintln!(
            "fill: {added} batches added in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    if opts.fill_only {
        return Ok(());
    }
    if opts.verify_only {
        print_verify(&verify_speed(&mut conn, settings, database_url)?);
        return Ok(());
    }
    let scale: i64 = crate::db::schema::batches::table
        .count()
        .get_result(&mut conn)?;
    let started = Instant::now();
    let seeded = seed(&mut conn, opts)?;
    eprintln!(
        "seeded {} batches with the MSC panel and {} empty ones in {:.1} s",
        seeded.detail.len(),
        seeded.fresh.len(),
        started.elapsed().as_secs_f64()
    );
    let child = Child::start(settings, database_url, opts)?;
    let base = child.base.clone();
    std::thread::sleep(Duration::from_secs(2));
    let (idle_start, _) = child.memory()?;
    let figures = actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let tech = token(&client, &base, "tech").await?;
        let auditor = token(&client, &base, "auditor").await?;
        let detail = Arc::new(seeded.detail);
        let fresh = Arc::new(seeded.fresh);
        let tests = Arc::new(msc_passing_values());
        let performed = (Utc::now() - ChronoDuration::hours(1)).to_rfc3339();
        let get = {
            let (client, base) = (client.clone(), base.clone());
            move |path: String, token: String| {
            let client = client.clone();
            let base = base.clone();
            async move {
                client
                    .get(format!("{base}{path}"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .is_some()
            }
            }
        };
        let record = {
            let (client, base, tech, fresh, tests) = (client.clone(), base.clone(), tech.clone(), fresh.clone(), tests.clone());
            let performed = performed.clone();
            move |i: usize| {
                let (client, base, tech) = (client.clone(), base.clone(), tech.clone());
                // Each request records a test of an empty batch not yet recorded.
                let batch = fresh[(i / tests.len()) % fresh.len()];
                let (code, value) = &tests[i % tests.len()];
                let body = serde_json::json!({"test_code": code, "value": value, "performed_at": performed});
                async move {
                    client
                        .post(format!("{base}/api/v1/batches/{batch}/results"))
                        .bearer_auth(tech)
                        .send_json(&body)
                        .await
                        .ok()
                        .filter(|r| r.status().as_u16() == 201)
                        .is_some()
                }
            }
        };
        let n = opts.clients;
        let s = opts.seconds;
        let rec = drive(n, s, record).await;
        let (d, t, get_) = (detail.clone(), tech.clone(), get.clone());
        let det = drive(n, s, move |i| get_(format!("/api/v1/batches/{}", d[i % d.len()]), t.clone())).await;
        let (d, t, get_) = (detail.clone(), tech.clone(), get.clone());
        let rdy = drive(n, s, move |i| get_(format!("/api/v1/batches/{}/release-readiness", d[i % d.len()]), t.clone())).await;
        let (d, a) = (detail.clone(), auditor.clone());
        let his = drive(n, s, move |i| get(format!("/api/v1/batches/{}/history?format=csv", d[i % d.len()]), a.clone())).await;
        Ok::<_, anyhow::Error>((rec, det, rdy, his, detail.len()))
    })?;
    let (rss_after, peak) = child.memory()?;
    child.stop()?;
    let (rec, det, rdy, his, targets) = figures;
    let (rec_limit, det_limit) = if opts.no_pgbench {
        (None, None)
    } else {
        (
            Some(pgbench(settings, database_url, RECORD_SQL, targets, opts)?),
            Some(pgbench(settings, database_url, DETAIL_SQL, targets, opts)?),
        )
    };
    let verify = verify_speed(&mut conn, settings, database_url)?;
    println!(
        "{scale} batches in the database; {} clients, {} s per scenario\n{:<15} {:>8} {:>6} {:>8} {:>7} {:>7} {:>7}  {:>10}  {:>5}  {:>10}",
        opts.clients,
        opts.seconds,
        "scenario",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "pgbench tps",
        "ratio",
        "pgbench p99"
    );
    row("record-result", &rec, rec_limit);
    row("batch-detail", &det, det_limit);
    row("readiness", &rdy, None);
    row("history-csv", &his, None);
    print_verify(&verify);
    println!(
        "server memory   idle {idle_start:.1} MiB; peak under load {peak:.1} MiB; after load {rss_after:.1} MiB"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&d, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&d[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
