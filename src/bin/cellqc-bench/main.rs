//! `cellqc-bench`: the load generator, a binary of its own so that its HTTP
//! client and its code are not linked into the server.
//!
//! One run: optionally fills the database with COPY (`fill.rs`), seeds
//! batches through the services, starts `cellqc serve` as a child process on
//! the same database (so its memory is its own), and drives each scenario
//! from this process with `clients` concurrent HTTP clients (closed loop),
//! then record-result and batch-detail again at a fixed arrival rate (open
//! loop, half the closed loop's maximum unless `--rate` says otherwise).
//! Then pgbench runs, with the same clients and duration, the bare use cases
//! and the endpoints' own statements (`pgbench.rs`), and the ratios to both
//! are printed against the targets. Last, audit verification against COPY,
//! and the server's resident memory.
#![expect(
    clippy::print_stdout,
    reason = "a command-line tool: its report goes to standard output"
)]

mod drive;
mod fill;
mod imports;
mod pgbench;

use anyhow::Context;
use cellqc::config::Settings;
use cellqc::database::Database;
use cellqc::db::schema::{products, users};
use cellqc::demo::{DEMO_PASSWORD, msc_passing_values};
use cellqc::services::Actor;
use cellqc::services::batches::{NewBatchInput, create_batch};
use cellqc::services::results::{NewResultInput, record_result};
use cellqc::services::users::ensure_initial_admin;
use chrono::{Duration as ChronoDuration, Utc};
use clap::Parser;
use diesel::prelude::*;
use drive::Requests;
use pgbench::{Limit, Protocol, Script};
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Measures cellqc against PostgreSQL's own limit on this machine.
#[derive(Debug, Parser)]
#[command(name = "cellqc-bench", version)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    options: BenchOptions,
}

/// What to run.
#[derive(Debug, Clone, clap::Args)]
struct BenchOptions {
    /// Concurrent clients (closed loop) and pgbench clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Batches seeded with a full MSC panel (read scenarios).
    #[arg(long, default_value_t = 100)]
    batches: usize,
    /// Open-loop arrival rate, requests per second (default: half the
    /// closed loop's record-result throughput).
    #[arg(long)]
    rate: Option<f64>,
    /// Skip the pgbench comparison.
    #[arg(long)]
    no_pgbench: bool,
    /// First fill the database with COPY up to this many generated batches
    /// (ten results, nine review signatures, twenty audit entries each).
    #[arg(long, default_value_t = 0)]
    fill: usize,
    /// Fill, then stop without measuring.
    #[arg(long)]
    fill_only: bool,
    /// Measure only audit verification against COPY (no HTTP load).
    #[arg(long)]
    verify_only: bool,
    /// Measure only imports: one at a time at 1 k and 10 k rows against
    /// pgbench's bare import, and others' reads while six run.
    #[arg(long)]
    imports_only: bool,
}

/// One scenario's figures.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    requests: usize,
    errors: usize,
    per_second: f64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
}

impl Figures {
    /// From the latencies of the answered requests.
    pub fn new(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Self {
        latencies.sort();
        Figures {
            requests: latencies.len() + errors,
            errors,
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: Self::percentile(&latencies, 0.50),
            p95: Self::percentile(&latencies, 0.95),
            p99: Self::percentile(&latencies, 0.99),
        }
    }

    /// Nearest-rank percentile of sorted durations.
    pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
        let rank = ((sorted.len() as f64) * q).ceil() as usize;
        rank.checked_sub(1)
            .and_then(|i| sorted.get(i.min(sorted.len().saturating_sub(1))))
            .or(sorted.first())
            .copied()
            .unwrap_or(Duration::ZERO)
    }
}

struct Seeded {
    detail: Vec<Uuid>,
    fresh: Vec<Uuid>,
}

fn app(e: cellqc::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn seed(conn: &mut PgConnection, opts: &BenchOptions) -> anyhow::Result<Seeded> {
    let product: Uuid = products::table
        .filter(products::code.eq("UCMSC-INJ"))
        .select(products::id)
        .first(conn)?;
    let tech_row = users::table
        .filter(users::username.eq("tech"))
        .select(cellqc::db::models::UserRow::as_select())
        .first(conn)?;
    let tech = Actor::try_from(&tech_row).map_err(app)?;
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
        .map_err(app)?;
        Ok(b.id)
    };
    let mut detail = Vec::with_capacity(opts.batches);
    for i in 0..opts.batches {
        detail.push(batch(i, "D")?);
    }
    // Enough empty batches for every record-result request (closed and open
    // loop) to find a test without a result (14 per batch).
    let fresh_count = (opts.clients * opts.seconds as usize * 400 / 14).max(50);
    let mut fresh = Vec::with_capacity(fresh_count);
    for i in 0..fresh_count {
        fresh.push(batch(i, "R")?);
    }
    let instruments = lab_instruments(conn)?;
    for id in &detail {
        for (code, value) in msc_passing_values() {
            // Performed now: the demo technician is qualified from the
            // demo's loading on.
            let input = NewResultInput {
                test_code: code.to_owned(),
                value: value.to_string(),
                unit: None,
                performed_at: Utc::now(),
                instrument: None,
                instrument_id: instrument_for(&instruments, code),
                material_ids: Vec::new(),
                comment: None,
                replaces_result_id: None,
                reason: None,
            };
            record_result(conn, &tech, *id, &input).map_err(app)?;
        }
    }
    let viab = instrument_for(&instruments, "VIAB").context("VIAB names no instrument")?;
    pgbench::prepare(conn, &detail, tech.id, viab)?;
    Ok(Seeded { detail, fresh })
}

/// The demo lab's instrument for each MSC test that names an instrument
/// kind: (test code, instrument id).
fn lab_instruments(conn: &mut PgConnection) -> anyhow::Result<Vec<(String, Uuid)>> {
    use cellqc::db::schema::instruments;
    let mut out = Vec::new();
    for (code, kind) in cellqc::demo::controlled_tests(&cellqc::demo::msc_spec()) {
        let Some(kind) = kind else { continue };
        let id: Uuid = instruments::table
            .filter(instruments::kind.eq(&kind))
            .filter(instruments::code.not_like("FILL-%"))
            .select(instruments::id)
            .order(instruments::code)
            .first(conn)
            .with_context(|| format!("the demo lab has no {kind}"))?;
        out.push((code, id));
    }
    Ok(out)
}

fn instrument_for(instruments: &[(String, Uuid)], code: &str) -> Option<Uuid> {
    instruments.iter().find(|(c, _)| c == code).map(|(_, i)| *i)
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
    body.get("access_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .context("no token")
}

/// The server under test: `cellqc serve` as a child process on the same
/// database, so its resident memory is its own.
struct Child {
    process: std::process::Child,
    base: String,
}

impl Child {
    fn start(settings: &Settings, database_url: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?.with_file_name("cellqc");
        anyhow::ensure!(
            exe.exists(),
            "{} is missing: build both binaries (cargo build --release)",
            exe.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "serve",
            "--no-migrate",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .env("DATABASE_URL", database_url)
        .env("CELLQC_DATA_DIR", &settings.data_dir)
        .env("CELLQC_DB_POOL_SIZE", settings.db_pool_size.to_string())
        .env("RUST_LOG", "warn")
        // No periodic anchor: at 1 M chains the one a server writes at
        // start reads every head and takes the two cores for a minute,
        // inside the first scenario (its cost: docs/performance.md).
        .env("CELLQC_ANCHOR_MINUTES", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(
            settings.data_dir.join("bench-serve.log"),
        )?);
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
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
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
    let chain = cellqc::domain::audit::SYSTEM_CHAIN;
    let bindir = cellqc::db::embedded::find_bindir(settings.pg_bindir.as_deref())?;
    let copy = || -> anyhow::Result<f64> {
        let t = Instant::now();
        let status = std::process::Command::new(bindir.join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c"])
            .arg(format!(
                "COPY (SELECT * FROM audit_entries WHERE chain_id = {} ORDER BY seq) TO STDOUT",
                cellqc::domain::audit::SYSTEM_CHAIN_ID
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
    let key = cellqc::auth::anchor_key::AnchorKey::public_of(&settings.anchor_key_path())?;
    let report =
        cellqc::services::verification::verify_chains(conn, &key, Some(chain)).map_err(app)?;
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

/// Every chain verified twice: the chains alone (what verification was
/// before rows were bound), then with every bound row and signature; the
/// target is at most 1.5 times the first.
fn print_whole_verification(conn: &mut PgConnection, settings: &Settings) -> anyhow::Result<()> {
    let key = cellqc::auth::anchor_key::AnchorKey::public_of(&settings.anchor_key_path())?;
    let t = Instant::now();
    let links = cellqc::services::verification::verify_links_only(conn, &key).map_err(app)?;
    let links_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let whole = cellqc::services::verification::verify(conn, &key).map_err(app)?;
    let whole_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        links.ok && whole.ok,
        "the database does not verify: {:?}",
        whole.broken.first()
    );
    println!(
        "verify all      {} chains, {} entries: chains alone {links_s:.1} s; with {} rows and {} signatures {whole_s:.1} s; ratio {:.2} (target <= 1.5: {})",
        whole.chains,
        whole.events,
        whole.rows,
        whole.signatures,
        whole_s / links_s.max(f64::MIN_POSITIVE),
        verdict(whole_s <= 1.5 * links_s)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(name: &str, f: &Figures, limits: &[Option<Limit>]) {
    let vs: String = limits
        .iter()
        .map(|l| {
            l.map_or_else(String::new, |l| {
                format!(
                    "  {:>8.0} {:>5.2} {:>7.1}",
                    l.tps,
                    f.per_second / l.tps,
                    ms(l.p99)
                )
            })
        })
        .collect();
    println!(
        "{name:<15} {:>8} {:>6} {:>8.0} {:>7.1} {:>7.1} {:>7.1}{vs}",
        f.requests,
        f.errors,
        f.per_second,
        ms(f.p50),
        ms(f.p95),
        ms(f.p99),
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The measured figures of one run.
struct Measured {
    record: Figures,
    detail: Figures,
    readiness: Figures,
    history: Figures,
    rate: f64,
    record_open: Figures,
    detail_open: Figures,
}

/// Drives the scenarios against the child server, from outside it: the
/// closed loops with wrk, the open loop with an HTTP client of this process.
/// Writes every dirty page out before a scenario, so that no scenario pays
/// for the writes of the one before (or of the fill).
fn settle(conn: &mut PgConnection) -> anyhow::Result<()> {
    diesel::sql_query("CHECKPOINT")
        .execute(conn)
        .context("CHECKPOINT (the bench's database user needs pg_checkpoint or superuser)")?;
    Ok(())
}

fn measure(
    conn: &mut PgConnection,
    checkpointer: &mut PgConnection,
    base: &str,
    seeded: &Seeded,
    opts: &BenchOptions,
) -> anyhow::Result<Measured> {
    let (tech, auditor) = actix_web::rt::System::new().block_on(async {
        let client = awc::Client::default();
        // The shift starts: every client signs in at once (each sign-in a
        // 19 MiB argon2 hash), as the people behind them would; the peak
        // memory below includes it.
        let users = ["tech", "reviewer", "qa", "auditor"];
        let storm = users.iter().cycle().take(opts.clients).map(|user| {
            let client = client.clone();
            async move { token(&client, base, user).await }
        });
        for t in futures_util::future::join_all(storm).await {
            t?;
        }
        Ok::<_, anyhow::Error>((
            token(&client, base, "tech").await?,
            token(&client, base, "auditor").await?,
        ))
    })?;
    let instruments = lab_instruments(conn)?;
    let tests: Vec<(String, String)> = msc_passing_values()
        .into_iter()
        .map(|(code, value)| {
            let members = match instrument_for(&instruments, code) {
                Some(i) => format!(r#""value":{value},"instrument_id":"{i}""#),
                None => format!(r#""value":{value}"#),
            };
            (code.to_owned(), members)
        })
        .collect();
    // After the demo technician's qualifications were granted.
    let performed = Utc::now().to_rfc3339();
    let paths = |suffix: &str| -> Vec<String> {
        seeded
            .detail
            .iter()
            .map(|id| format!("/api/v1/batches/{id}{suffix}"))
            .collect()
    };
    // Empty batches: a tenth for the warm-up, then the closed loop records
    // into half the rest, the open loop into the other half.
    let (warm_batches, rest) = seeded.fresh.split_at(seeded.fresh.len() / 10);
    let (closed_batches, open_batches) = rest.split_at(rest.len() / 2);
    let (n, s) = (opts.clients, opts.seconds);
    let detail_paths = paths("");
    // Unmeasured: the pool grows to its connections and each prepares its
    // statements, as in a server that has been running.
    for warm in [
        Requests::Get {
            paths: &detail_paths,
        },
        Requests::Record {
            batches: warm_batches,
            tests: &tests,
            performed_at: &performed,
        },
    ] {
        drive::closed(base, &tech, n, 2, &warm)?;
    }
    settle(checkpointer)?;
    let record = drive::closed(
        base,
        &tech,
        n,
        s,
        &Requests::Record {
            batches: closed_batches,
            tests: &tests,
            performed_at: &performed,
        },
    )?;
    settle(checkpointer)?;
    let detail = drive::closed(
        base,
        &tech,
        n,
        s,
        &Requests::Get {
            paths: &detail_paths,
        },
    )?;
    settle(checkpointer)?;
    let readiness = drive::closed(
        base,
        &tech,
        n,
        s,
        &Requests::Get {
            paths: &paths("/release-readiness"),
        },
    )?;
    settle(checkpointer)?;
    let history = drive::closed(
        base,
        &auditor,
        n,
        s,
        &Requests::Get {
            paths: &paths("/history?format=csv"),
        },
    )?;
    let rate = opts.rate.unwrap_or(record.per_second / 2.0);
    settle(checkpointer)?;
    let (record_open, detail_open) = actix_web::rt::System::new().block_on(async {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let batches: Arc<Vec<Uuid>> = Arc::new(open_batches.to_vec());
        let tests = Arc::new(tests);
        let post = {
            let (client, base, tech) = (client.clone(), base.to_owned(), tech.clone());
            move |i: usize| {
                let (client, base, tech) = (client.clone(), base.clone(), tech.clone());
                // As in the closed loop: consecutive requests go to
                // different batches (as different technicians' would), each
                // batch's tests one after another.
                let batch = batches.get(i % batches.len().max(1)).copied();
                let test = tests
                    .get((i / batches.len().max(1)) % tests.len().max(1))
                    .cloned();
                let performed = performed.clone();
                async move {
                    let (Some(batch), Some((code, members))) = (batch, test) else {
                        return false;
                    };
                    let body = format!(
                        r#"{{"test_code":"{code}",{members},"performed_at":"{performed}"}}"#
                    );
                    client
                        .post(format!("{base}/api/v1/batches/{batch}/results"))
                        .bearer_auth(tech)
                        .content_type("application/json")
                        .send_body(body)
                        .await
                        .ok()
                        .filter(|r| r.status().as_u16() == 201)
                        .is_some()
                }
            }
        };
        let get = {
            let (client, base, tech) = (client.clone(), base.to_owned(), tech.clone());
            move |i: usize| {
                let (client, base, tech) = (client.clone(), base.clone(), tech.clone());
                let path = detail_paths.get(i % detail_paths.len().max(1)).cloned();
                async move {
                    let Some(path) = path else { return false };
                    client
                        .get(format!("{base}{path}"))
                        .bearer_auth(tech)
                        .send()
                        .await
                        .ok()
                        .filter(|r| r.status().is_success())
                        .is_some()
                }
            }
        };
        (
            drive::open(rate, s, post).await,
            drive::open(rate, s, get).await,
        )
    });
    Ok(Measured {
        record,
        detail,
        readiness,
        history,
        rate,
        record_open,
        detail_open,
    })
}

/// Fills, seeds, serves, measures and prints.
/// `db`'s owner role migrates, fills, seeds and runs pgbench; the server
/// under test connects as the application role, as in production.
fn run(settings: &Settings, db: &Database, opts: &BenchOptions) -> anyhow::Result<()> {
    let database_url = db.owner_url.as_str();
    let mut conn = PgConnection::establish(database_url)?;
    let rules = cellqc::services::signatures::SigningRules::load(settings)?;
    cellqc::upgrade::migrate(&mut conn, &rules.seal)?;
    ensure_initial_admin(&mut conn, Some("bench-first-boot-pw")).map_err(app)?;
    cellqc::demo::load(&mut conn, &rules).map_err(app)?;
    if opts.fill > 0 {
        let started = Instant::now();
        let superuser = db.superuser_url.as_deref().context(
            "the fill copies with the row triggers off, which needs a superuser: \
             run it on the embedded cluster (no DATABASE_URL)",
        )?;
        let mut copier = PgConnection::establish(superuser)?;
        let added = fill::fill(&mut conn, &mut copier, rules.seal.clone(), opts.fill)?;
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
        print_whole_verification(&mut conn, settings)?;
        return Ok(());
    }
    if opts.imports_only {
        return run_imports(settings, db, &mut conn, opts);
    }
    let scale: i64 = cellqc::db::schema::batches::table
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
    let child = Child::start(settings, &db.url)?;
    std::thread::sleep(Duration::from_secs(2));
    let (idle_start, _) = child.memory()?;
    // CHECKPOINT needs pg_checkpoint: the embedded cluster's superuser, or
    // with DATABASE_URL the owner's connection (which then needs it).
    let mut checkpointer =
        PgConnection::establish(db.superuser_url.as_deref().unwrap_or(database_url))?;
    let m = measure(&mut conn, &mut checkpointer, &child.base, &seeded, opts)?;
    let (rss_after, peak) = child.memory()?;
    child.stop()?;
    let targets = seeded.detail.len();
    let mut limit = |script: Script, protocol: Protocol| -> anyhow::Result<Option<Limit>> {
        if opts.no_pgbench {
            return Ok(None);
        }
        settle(&mut checkpointer)?;
        pgbench::run(
            settings,
            database_url,
            script,
            protocol,
            targets,
            opts.clients,
            opts.seconds,
        )
        .map(Some)
    };
    let record_bare = limit(Script::RecordBare, Protocol::Prepared)?;
    let record_simple = limit(Script::RecordBare, Protocol::Simple)?;
    let record_own = limit(Script::RecordOwn, Protocol::Prepared)?;
    let detail_bare = limit(Script::DetailBare, Protocol::Prepared)?;
    let detail_simple = limit(Script::DetailBare, Protocol::Simple)?;
    let detail_own = limit(Script::DetailOwn, Protocol::Prepared)?;
    let verify = verify_speed(&mut conn, settings, database_url)?;
    println!(
        "{scale} batches in the database; {} clients, {} s per scenario; server pool {} connections; \
         pgbench: bare use case prepared and simple protocol, the endpoint's own statements prepared",
        opts.clients, opts.seconds, settings.db_pool_size
    );
    println!(
        "{:<15} {:>8} {:>6} {:>8} {:>7} {:>7} {:>7}  {:>8} {:>5} {:>7}  {:>8} {:>5} {:>7}  {:>8} {:>5} {:>7}",
        "closed loop",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "bare tps",
        "ratio",
        "p99 ms",
        "simple",
        "ratio",
        "p99 ms",
        "own tps",
        "ratio",
        "p99 ms"
    );
    row(
        "record-result",
        &m.record,
        &[record_bare, record_simple, record_own],
    );
    row(
        "batch-detail",
        &m.detail,
        &[detail_bare, detail_simple, detail_own],
    );
    row("readiness", &m.readiness, &[]);
    row("history-csv", &m.history, &[]);
    println!("open loop at {:.0} requests/s", m.rate);
    row("record-result", &m.record_open, &[]);
    row("batch-detail", &m.detail_open, &[]);
    print_verify(&verify);
    println!(
        "server memory   idle {idle_start:.1} MiB; peak under load ({} sign-ins at once first) {peak:.1} MiB; after load {rss_after:.1} MiB",
        opts.clients
    );
    if let (Some(rb), Some(db)) = (record_bare, detail_bare) {
        let rec_ratio = m.record.per_second / rb.tps;
        let det_ratio = m.detail.per_second / db.tps;
        println!("targets (against the bare use case, prepared)");
        println!(
            "  record-result >= 0.5 of the bare transaction: {rec_ratio:.2} ({})",
            verdict(rec_ratio >= 0.5)
        );
        println!(
            "  batch-detail >= 0.5 of the bare selects: {det_ratio:.2} ({})",
            verdict(det_ratio >= 0.5)
        );
        println!(
            "  record-result p99 <= 2 x pgbench's p99 of the bare transaction: {:.1} ms against 2 x {:.1} ms ({})",
            ms(m.record.p99),
            ms(rb.p99),
            verdict(m.record.p99 <= rb.p99 * 2)
        );
    }
    println!(
        "  open-loop record-result p99 <= 25 ms at {:.0}/s: {:.1} ms ({})",
        m.rate,
        ms(m.record_open.p99),
        verdict(m.record_open.p99 <= Duration::from_millis(25))
    );
    Ok(())
}

/// The imports' figures (`--imports-only`).
fn run_imports(
    settings: &Settings,
    db: &Database,
    conn: &mut PgConnection,
    opts: &BenchOptions,
) -> anyhow::Result<()> {
    const TIMED: usize = 11;
    let busy_each = usize::try_from(opts.seconds)?.saturating_mul(5).max(10);
    let seeded = imports::seed(conn, TIMED, busy_each)?;
    let instruments = lab_instruments(conn)?;
    let viab = instrument_for(&instruments, "VIAB").context("VIAB names no instrument")?;
    pgbench::prepare(conn, &seeded.all, seeded.actor, viab)?;
    let child = Child::start(settings, &db.url)?;
    let measured = imports::measure(&child.base, &seeded, opts.seconds);
    let (_, peak) = child.memory()?;
    child.stop()?;
    let m = measured?;
    let mut checkpointer =
        PgConnection::establish(db.superuser_url.as_deref().unwrap_or(&db.owner_url))?;
    let mut bare = |rows: usize| -> anyhow::Result<Option<Limit>> {
        if opts.no_pgbench {
            return Ok(None);
        }
        settle(&mut checkpointer)?;
        pgbench::run(
            settings,
            &db.owner_url,
            Script::ImportBare(rows),
            Protocol::Prepared,
            seeded.all.len(),
            1,
            opts.seconds,
        )
        .map(Some)
    };
    let bare_1k = bare(1_000)?;
    let bare_10k = bare(10_000)?;
    println!(
        "imports, one at a time (one client); pgbench's bare import of the same bytes, one client"
    );
    println!(
        "{:<15} {:>8} {:>6} {:>8} {:>7} {:>7} {:>7}  {:>8} {:>5} {:>7}",
        "rows",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "bare tps",
        "ratio",
        "p99 ms"
    );
    row("1 000", &m.one_k, &[bare_1k]);
    row("10 000", &m.ten_k, &[bare_10k]);
    let per_row = |f: &Figures, rows: f64| ms(f.p50) * 1000.0 / rows;
    println!(
        "  median per row: {:.1} us at 1 k, {:.1} us at 10 k; 10 k / 1 k = {:.2} (linear: <= 10)",
        per_row(&m.one_k, 1_000.0),
        per_row(&m.ten_k, 10_000.0),
        ms(m.ten_k.p50) / ms(m.one_k.p50).max(f64::MIN_POSITIVE)
    );
    println!(
        "others' reads ({} clients) alone and while {} technicians import 10 k-row exports back to back",
        imports::READERS,
        imports::IMPORTERS
    );
    row("reads alone", &m.readers_alone, &[]);
    row("reads during", &m.readers_during, &[]);
    row("imports during", &m.imports_during, &[]);
    println!(
        "  reads refused (503) while six imports ran: {} ({}); server peak memory {peak:.1} MiB",
        m.unavailable_during,
        verdict(m.unavailable_during == 0 && m.readers_during.errors == 0)
    );
    Ok(())
}

fn main() -> ExitCode {
    cellqc::telemetry::init();
    let cli = Cli::parse();
    let outcome = Database::open(&cli.settings).and_then(|db| {
        let measured = run(&cli.settings, &db, &cli.options);
        db.close()?;
        measured
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cellqc-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(Figures::percentile(&d, 0.50), Duration::from_millis(50));
        assert_eq!(Figures::percentile(&d, 0.99), Duration::from_millis(99));
        assert_eq!(Figures::percentile(&d[..1], 0.99), Duration::from_millis(1));
        assert_eq!(Figures::percentile(&[], 0.5), Duration::ZERO);
    }
}
