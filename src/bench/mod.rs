//! `cellqc bench`: a load generator. It seeds batches through the services,
//! starts the server in-process, drives each scenario with `clients`
//! concurrent HTTP clients for `seconds`, and prints throughput and
//! p50/p95/p99 latency. For record-result and batch-detail it then runs
//! pgbench with scripts replaying the same SQL against the same database and
//! client count, and prints the ratio endpoint / pgbench: PostgreSQL's own
//! limit on this machine, measured in the same run.

use crate::app::{AppState, build_server};
use crate::config::Settings;
use crate::db::pool::build_pool;
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

fn seed(
    conn: &mut PgConnection,
    settings: &Settings,
    opts: &BenchOptions,
) -> anyhow::Result<Seeded> {
    let err = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    ensure_initial_admin(conn, Some("bench-first-boot-pw")).map_err(err)?;
    crate::demo::load(conn, settings.lockout()).map_err(err)?;
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
    diesel::sql_query("CREATE SCHEMA IF NOT EXISTS bench").execute(conn)?;
    diesel::sql_query("DROP TABLE IF EXISTS bench.targets").execute(conn)?;
    diesel::sql_query("CREATE TABLE bench.targets (n int PRIMARY KEY, batch_id uuid NOT NULL, chain text NOT NULL)")
        .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO bench.targets SELECT row_number() OVER (ORDER BY id), id, 'batch:' || id FROM batches WHERE id = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&detail)
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
fn pgbench(
    settings: &Settings,
    url: &str,
    script: &str,
    targets: usize,
    opts: &BenchOptions,
) -> anyhow::Result<f64> {
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
        ])
        .args(["-D", &format!("targets={targets}")])
        .arg("-f")
        .arg(&file)
        .arg(url)
        .output()
        .context("running pgbench")?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!(
                "pgbench said: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

fn row(name: &str, f: &Figures, limit: Option<f64>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ratio = limit.map_or_else(String::new, |tps| {
        format!("{tps:>10.0}  {:>5.2}", f.per_second / tps)
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

/// Seeds, serves, measures and prints.
pub fn run(settings: &Settings, database_url: &str, opts: &BenchOptions) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(database_url)?;
    crate::db::run_migrations(&mut conn)?;
    let started = Instant::now();
    let seeded = seed(&mut conn, settings, opts)?;
    eprintln!(
        "seeded {} batches with the MSC panel and {} empty ones in {:.1} s",
        seeded.detail.len(),
        seeded.fresh.len(),
        started.elapsed().as_secs_f64()
    );
    let pool = build_pool(database_url, u32::try_from(opts.clients + 4).unwrap_or(20))?;
    let state = AppState::new(settings, pool)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let figures = actix_web::rt::System::new().block_on(async move {
        actix_web::rt::spawn(build_server(state, listener, settings.workers)?);
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
    let (rec, det, rdy, his, targets) = figures;
    let (rec_limit, det_limit) = if opts.no_pgbench {
        (None, None)
    } else {
        (
            Some(pgbench(settings, database_url, RECORD_SQL, targets, opts)?),
            Some(pgbench(settings, database_url, DETAIL_SQL, targets, opts)?),
        )
    };
    println!(
        "{} clients, {} s per scenario\n{:<15} {:>8} {:>6} {:>8} {:>7} {:>7} {:>7}  {:>10}  {:>5}",
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
        "ratio"
    );
    row("record-result", &rec, rec_limit);
    row("batch-detail", &det, det_limit);
    row("readiness", &rdy, None);
    row("history-csv", &his, None);
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
