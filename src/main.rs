//! The `cellqc` command: serve, migrate, user create, audit verify, demo.
#![expect(
    clippy::print_stdout,
    reason = "the command line: its answers go to standard output"
)]

use anyhow::Context;

use cellqc::auth::anchor_key::{AnchorKey, PublicKey};
use cellqc::config::Settings;
use cellqc::database::Database;
use cellqc::db::{pool::build_pool, run_migrations};
use cellqc::services::users::{NewUserInput, create_user, ensure_initial_admin};
use cellqc::services::verification;
use cellqc::{http::AppState, server::build_server};
use clap::{Parser, Subcommand};
use diesel::{Connection, PgConnection, RunQueryDsl};
use std::net::TcpListener;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "cellqc",
    version,
    about = "GMP quality-control tracking for cell-therapy batches"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies migrations first unless --no-migrate).
    Serve {
        #[command(flatten)]
        settings: Settings,
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
        /// Load the demo users and reference products first (as `cellqc demo`).
        #[arg(long)]
        demo: bool,
    },
    /// Load demo users (one per role) and the reference products with
    /// effective specifications, then print how to sign in.
    Demo {
        #[command(flatten)]
        settings: Settings,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        settings: Settings,
    },
    /// On an external PostgreSQL, as a superuser: create the roles
    /// cellqc_owner and cellqc_app (without passwords: set them after),
    /// give the database, its schema and every object in it to cellqc_owner,
    /// then migrate as it. Idempotent; also upgrades a database that a
    /// superuser served before. The embedded cluster does this by itself.
    SetupRoles {
        /// Connection URL of the cellqc database as a superuser.
        #[arg(long, env = "CELLQC_SUPERUSER_DATABASE_URL", hide_env_values = true)]
        superuser_url: String,
    },
    /// Back up the database into one file: PostgreSQL's archive (pg_dump,
    /// custom format) and a manifest signed with the anchor key (chain
    /// heads, Merkle root, row counts), both from one snapshot. Works while
    /// `serve` runs.
    Backup {
        #[command(flatten)]
        settings: Settings,
        /// The backup file to write.
        #[arg(long, value_name = "FILE")]
        to: std::path::PathBuf,
    },
    /// Restore a backup into an empty database (a fresh data directory, or an
    /// empty DATABASE_URL), after checking its signature; then verify every
    /// chain and compare with the manifest. Exit status 1 when anything differs.
    Restore {
        #[command(flatten)]
        settings: Settings,
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: std::path::PathBuf,
        /// The public key (hex, GET /api/v1/audit/anchor-key) that signed the
        /// manifest; default: the key in CELLQC_ANCHOR_KEY_FILE.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Audit trail tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password comes from CELLQC_PASSWORD or a prompt.
    Create {
        #[command(flatten)]
        settings: Settings,
        /// Username (never reused).
        #[arg(long)]
        username: String,
        /// Printed name, as shown on signatures.
        #[arg(long)]
        full_name: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Role (repeat for several): technician, reviewer, qa, auditor, admin.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify every hash chain; exit status 1 when one is broken.
    Verify {
        #[command(flatten)]
        settings: Settings,
        /// Also check the anchors in this directory (the files written to
        /// CELLQC_ANCHOR_DIR, or saved from the anchor emails): each must be
        /// signed by this site's key, and every chain must still hold each
        /// anchored entry with its anchored hash.
        #[arg(long, value_name = "DIR")]
        anchors: Option<std::path::PathBuf>,
        /// The site's public key (hex, from GET /api/v1/audit/anchor-key),
        /// which seals signatures and signs anchors; default: the key in
        /// CELLQC_ANCHOR_KEY_FILE.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
    },
}

/// glibc raises its mmap threshold each time a large block is freed (up to
/// 32 MiB): after the first sign-in freed its 19 MiB argon2 block, every later
/// allocation below that size came from the threads' arenas and stayed
/// there (120 MiB under load after sixteen sign-ins, against 57 with the
/// threshold fixed; docs/performance.md, Memory). Fixing it at glibc's own
/// initial value keeps large blocks mapped, and gives them back when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "mallopt is glibc's documented tuning call; it runs first, before any other thread"
)]
fn keep_large_blocks_mapped() {
    // SAFETY: mallopt only sets the allocator's parameters; it is called at
    // the start of main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_blocks_mapped() {}

fn main() -> ExitCode {
    keep_large_blocks_mapped();
    cellqc::telemetry::init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cellqc: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            settings,
            no_migrate,
            demo,
        } => serve(settings, no_migrate, demo),
        Command::Demo { settings } => with_database(&settings, |db| {
            migrate(db, &settings)?;
            load_demo(&mut db.connect()?, &settings)?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Migrate { settings } => with_database(&settings, |db| {
            let n = migrate(db, &settings)?;
            println!("{n} migration(s) applied");
            Ok(ExitCode::SUCCESS)
        }),
        Command::Backup { settings, to } => with_database(&settings, |db| {
            let bindir = cellqc::db::embedded::find_bindir(settings.pg_bindir.as_deref())?;
            let key = AnchorKey::load_or_create(&settings.anchor_key_path())?;
            let m = cellqc::backup::backup(db, &bindir, &key, &to)?;
            println!(
                "backup written to {}: snapshot {}, {} chain(s), {} audit entr(ies), root {}, archive {} bytes (SHA-256 {}), signed by key {}",
                to.display(),
                m.body.taken_at,
                m.body.chains,
                m.body.entries,
                m.body.root,
                m.body.archive_bytes,
                m.body.archive_sha256,
                m.body.key_id
            );
            Ok(ExitCode::SUCCESS)
        }),
        Command::Restore {
            settings,
            from,
            public_key,
        } => with_database(&settings, |db| {
            let bindir = cellqc::db::embedded::find_bindir(settings.pg_bindir.as_deref())?;
            let key = match public_key {
                Some(hex) => PublicKey::from_hex(&hex)?,
                None => AnchorKey::public_of(&settings.anchor_key_path())?,
            };
            let r = cellqc::backup::restore(db, &bindir, &key, &from)?;
            println!(
                "restored {} (snapshot {}): signature verified, {} chain(s), {} entr(ies), {} record(s) and {} signature(s) checked",
                from.display(),
                r.manifest.body.taken_at,
                r.verify.chains,
                r.verify.events,
                r.verify.rows,
                r.verify.signatures
            );
            for b in &r.verify.broken {
                println!("BROKEN: {}: {}", b.place(), b.reason);
            }
            for d in &r.differences {
                println!("DIFFERS: {d}");
            }
            if r.verify.ok && r.differences.is_empty() {
                println!(
                    "OK: every chain verifies, every record is as its entries cover it and every signature matches what it signed; heads, root {} and the row counts of {} table(s) match the manifest",
                    r.manifest.body.root,
                    r.manifest.body.counts.len()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }),
        Command::SetupRoles { superuser_url } => {
            let mut conn =
                PgConnection::establish(&superuser_url).context("connecting as the superuser")?;
            let database: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
                "current_database()::text",
            ))
            .get_result(&mut conn)?;
            cellqc::db::roles::bootstrap(&mut conn, &database)?;
            diesel::sql_query(format!("SET ROLE {}", cellqc::db::roles::OWNER_ROLE))
                .execute(&mut conn)?;
            let n = run_migrations(&mut conn)?;
            println!(
                "roles cellqc_owner and cellqc_app ready on {database}; {n} migration(s) applied as cellqc_owner.\n\
                 Give both a password (ALTER ROLE ... PASSWORD), then serve with DATABASE_URL as cellqc_app \
                 and CELLQC_OWNER_DATABASE_URL as cellqc_owner."
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            command:
                UserCommand::Create {
                    settings,
                    username,
                    full_name,
                    email,
                    roles,
                },
        } => {
            let password = match std::env::var("CELLQC_PASSWORD") {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password(format!("Password for {username}: "))
                    .context("reading the password")?,
            };
            with_database(&settings, |db| {
                migrate(db, &settings)?;
                let conn = &mut db.connect()?;
                let input = NewUserInput {
                    username: username.clone(),
                    full_name: full_name.clone(),
                    email: email.clone(),
                    roles: roles.clone(),
                    password: password.clone(),
                    // Typed by an operator, not by the user: temporary.
                    temporary: true,
                    locale: settings.default_locale,
                };
                let user = create_user(
                    conn,
                    None,
                    &input,
                    Some("created with `cellqc user create`"),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!(
                    "created user {} ({}) with roles {}",
                    user.username,
                    user.id,
                    user.roles.join(", ")
                );
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    settings,
                    anchors,
                    public_key,
                },
        } => with_database(&settings, |db| {
            // A replica, when one is named and answers: the verification
            // reads every entry, and the bench needs the primary.
            let replica = settings
                .read_database_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .and_then(|url| match PgConnection::establish(url) {
                    Ok(c) => {
                        eprintln!("verifying on CELLQC_READ_DATABASE_URL (the replica)");
                        Some(c)
                    }
                    Err(e) => {
                        eprintln!(
                            "CELLQC_READ_DATABASE_URL unreachable ({e}): verifying on the primary"
                        );
                        None
                    }
                });
            let conn = &mut match replica {
                Some(c) => c,
                None => db.connect()?,
            };
            // The site's public key checks the seals of signatures and the
            // anchors' signatures.
            let key = match public_key {
                Some(hex) => PublicKey::from_hex(&hex)?,
                None => AnchorKey::public_of(&settings.anchor_key_path())?,
            };
            let total = verification::entries_total(conn).map_err(|e| anyhow::anyhow!("{e}"))?;
            let progress = cellqc::progress::Progress::new("audit verify", total, "entries");
            let mut report = verification::verify_reporting(conn, &key, &|n| progress.set(n))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            progress.finish();
            if let Some(dir) = anchors {
                let (found, unreadable) = cellqc::services::anchors::from_dir(&dir);
                let check = cellqc::services::anchors::check(conn, &key, &found)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!(
                    "{} anchor(s) from {} checked: {} anchored head(s)",
                    check.anchors,
                    dir.display(),
                    check.heads
                );
                report.ok = report.ok && check.ok && unreadable.is_empty();
                report.broken.extend(check.broken);
                report.broken.extend(unreadable);
            }
            println!(
                "{} chain(s), {} entr(ies), {} record(s) and {} signature(s) checked",
                report.chains, report.events, report.rows, report.signatures
            );
            if report.ok {
                println!(
                    "OK: every chain verifies; every record is as its entries cover it and every signature matches what it signed"
                );
                return Ok(ExitCode::SUCCESS);
            }
            for b in &report.broken {
                println!("BROKEN: {}: {}", b.place(), b.reason);
            }
            Ok(ExitCode::from(1))
        }),
    }
}

/// Applies every pending migration as the owner and binds what an upgrade
/// left to bind (signatures sealed with the site's key).
fn migrate(db: &Database, settings: &Settings) -> anyhow::Result<usize> {
    let key = AnchorKey::load_or_create(&settings.anchor_key_path())?;
    cellqc::upgrade::migrate(&mut db.connect_owner()?, &key)
}

/// Opens the database, runs `f`, stops an embedded server.
fn with_database(
    settings: &Settings,
    f: impl FnOnce(&Database) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let db = Database::open(settings)?;
    let outcome = f(&db);
    db.close()?;
    outcome
}

/// Loads the demo data and prints how to sign in.
fn load_demo(conn: &mut PgConnection, settings: &Settings) -> anyhow::Result<()> {
    let rules = cellqc::services::signatures::SigningRules::load(settings)?;
    let created = cellqc::demo::load(conn, &rules)
        .map_err(|e| anyhow::anyhow!("loading the demo data: {e}"))?;
    for line in &created {
        println!("demo: created {line}");
    }
    println!(
        "Demo users, each with the password `{}`:",
        cellqc::demo::DEMO_PASSWORD
    );
    for (user, name, roles, locale) in cellqc::demo::DEMO_USERS {
        println!(
            "  {user:<9} {name:<24} {:<20} {}",
            roles.join(", "),
            locale.as_str()
        );
    }
    println!(
        "API sign-in: POST /api/v1/auth/login {{\"username\":\"tech\",\"password\":\"{}\"}}",
        cellqc::demo::DEMO_PASSWORD
    );
    Ok(())
}

fn serve(settings: Settings, no_migrate: bool, demo: bool) -> anyhow::Result<ExitCode> {
    let db = Database::open(&settings)?;
    let outcome = serve_on(&settings, &db, no_migrate, demo);
    // The HTTP server has stopped (SIGINT/SIGTERM): now stop PostgreSQL.
    db.close()?;
    outcome
}

fn serve_on(
    settings: &Settings,
    db: &Database,
    no_migrate: bool,
    demo: bool,
) -> anyhow::Result<ExitCode> {
    {
        if !no_migrate {
            let n = migrate(db, settings)?;
            if n > 0 {
                tracing::info!(applied = n, "database migrations applied");
            }
        }
        let mut conn = db.connect()?;
        let role =
            cellqc::db::roles::check(&mut conn).context("asking the database role's rights")?;
        if role.can_rewrite_trail {
            tracing::warn!(
                role = %role.role,
                risks = %role.risks.join("; "),
                "the database role in use could rewrite the audit trail: connect as cellqc_app (README, \"Database roles\")"
            );
        } else {
            tracing::info!(role = %role.role, "database role can't rewrite the audit trail");
        }
        let admin_password = std::env::var("CELLQC_ADMIN_PASSWORD").ok();
        if let Some(generated) = ensure_initial_admin(&mut conn, admin_password.as_deref())
            .map_err(|e| anyhow::anyhow!("creating the first admin: {e}"))?
        {
            println!(
                "First start: created user `admin` with password {generated}\n\
                 (shown once; sign in and change it at /account/password or with POST /api/v1/auth/password)"
            );
        }
        if demo {
            load_demo(&mut conn, settings)?;
        }
    }
    let pool = build_pool(&db.url, settings.db_pool_size)?;
    let mail = settings.mail();
    match &mail.smtp_url {
        Some(_) => tracing::info!("notifications go to the SMTP server in CELLQC_SMTP_URL"),
        None => {
            tracing::info!(dir = %mail.mail_dir.display(), "no CELLQC_SMTP_URL: notifications are written as .eml files")
        }
    }
    // The outbox has a connection of its own: a slow SMTP server never holds
    // one that requests were promised (AppState::db_slots).
    let outbox = cellqc::notify::OutboxWorker::start(build_pool(&db.url, 1)?, mail)?;
    let mut state = AppState::new(settings, pool)?;
    if let Some(url) = settings
        .read_database_url
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        let size = settings.read_pool_size.unwrap_or(settings.db_pool_size);
        state = state.with_reads(cellqc::http::ReadDatabase::new(
            cellqc::db::pool::build_read_pool(url, size),
        ));
        tracing::info!(
            connections = size,
            "reports (histories, the audit list and verification, trends, certificates) read from CELLQC_READ_DATABASE_URL"
        );
    }
    // The periodic anchor has a connection of its own too.
    let anchoring = match settings.anchor_minutes {
        0 => None,
        m => Some(cellqc::services::anchors::start_periodic(
            build_pool(&db.url, 1)?,
            state.anchors.clone(),
            std::time::Duration::from_secs(u64::from(m) * 60),
        )?),
    };
    tracing::info!(key_id = %state.anchors.key.key_id, dir = %state.anchors.dir.display(), "audit anchors are signed with this key and written to this directory");
    let listener = TcpListener::bind(&settings.bind)
        .with_context(|| format!("listening on {}", settings.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "cellqc listening");
    println!(
        "cellqc is serving http://{address}/ (web pages; sign in there) and http://{address}/api/v1 (API docs at /docs/)"
    );
    let served = actix_web::rt::System::new()
        .block_on(async move { build_server(state, listener, settings.workers)?.await });
    // The HTTP server has stopped: let the outbox finish its current message.
    outbox.stop();
    if let Some(w) = anchoring {
        w.stop();
    }
    served?;
    Ok(ExitCode::SUCCESS)
}
