//! Settings, read from the command line or the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CELLQC_BIND` | `127.0.0.1:8080` | address the HTTP server listens on (`--bind` overrides) |
//! | `DATABASE_URL` | unset | PostgreSQL to use, as the app role (`cellqc_app`); unset starts the embedded private cluster |
//! | `CELLQC_OWNER_DATABASE_URL` | `DATABASE_URL` | PostgreSQL as the schema's owner (`cellqc_owner`), for migrations |
//! | `CELLQC_READ_DATABASE_URL` | unset | a streaming replica that reports read (histories, the audit list and verification, trends, certificates); the primary when unset or unreachable |
//! | `CELLQC_READ_POOL_SIZE` | `CELLQC_DB_POOL_SIZE` | connections to the read database per instance |
//! | `CELLQC_DATA_DIR` | `./cellqc-data` | embedded cluster, generated JWT secret, mail files |
//! | `CELLQC_PG_BINDIR` | searched | directory holding `initdb` and `postgres` |
//! | `CELLQC_PG_SHARED_BUFFERS` | a quarter of memory | the embedded server's `shared_buffers` |
//! | `CELLQC_PG_EFFECTIVE_CACHE_SIZE` | three quarters of memory | its `effective_cache_size` |
//! | `CELLQC_PG_WAL_COMPRESSION` | `on` | its `wal_compression` |
//! | `CELLQC_PG_CHECKPOINT_TIMEOUT` | `15min` | its `checkpoint_timeout` |
//! | `CELLQC_PG_MAX_WAL_SIZE` | an eighth of memory, 1 to 16 GB | its `max_wal_size` |
//! | `CELLQC_JWT_SECRET` | generated into the data directory | HS256 signing secret (at least 32 bytes) |
//! | `CELLQC_TOKEN_TTL_MINUTES` | `480` | absolute lifetime of a token |
//! | `CELLQC_IDLE_TIMEOUT_MINUTES` | `30` | a session unused this long is revoked |
//! | `CELLQC_LOCKOUT_THRESHOLD` | `5` | consecutive failed sign-ins or signatures that lock an account |
//! | `CELLQC_LOCKOUT_MINUTES` | `15` | how long a lock lasts |
//! | `CELLQC_LOGIN_RATE_PER_MINUTE` | `30` | sign-in attempts per client address per minute |
//! | `CELLQC_TRUSTED_PROXIES` | unset | comma-separated addresses of load balancers whose `X-Forwarded-For` names the client (for the sign-in limit) |
//! | `CELLQC_DB_POOL_SIZE` | 2 × CPU cores + 1 | database connections per instance for requests (the email outbox has one more of its own) |
//! | `CELLQC_WORKERS` | CPU cores | HTTP worker threads |
//! | `CELLQC_SMTP_URL` | unset: `.eml` files in `<data dir>/mail` | SMTP server for notifications |
//! | `CELLQC_MAIL_FROM` | `cellqc <cellqc@localhost>` | sender of notifications |
//! | `CELLQC_PUBLIC_URL` | `http://127.0.0.1:8080` | base of the links in notifications |
//! | `CELLQC_METRICS_TOKEN` | unset | a static bearer token that may read `/metrics` (besides any signed-in user) |
//! | `CELLQC_ANCHOR_KEY_FILE` | `<data dir>/anchor.key` | Ed25519 key that signs anchors and backups (created, mode 0600) |
//! | `CELLQC_ANCHOR_DIR` | `<data dir>/anchors` | where periodic anchors are written |
//! | `CELLQC_ANCHOR_MINUTES` | `15` | how often an anchor is written when the trail grew (0: never) |
//! | `CELLQC_ADMIN_PASSWORD` | generated, printed once | password of the first `admin` |
//! | `CELLQC_LOG_FORMAT` | `text` | `text` or `json` log lines |
//! | `RUST_LOG` | `info` | log filter |

use crate::domain::users::LockoutPolicy;
use chrono::Duration;
use std::path::PathBuf;

/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default sender of notifications.
pub const DEFAULT_MAIL_FROM: &str = "cellqc <cellqc@localhost>";
/// Default base of links in notifications.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./cellqc-data";

/// Everything the server needs to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "CELLQC_BIND", default_value = DEFAULT_BIND)]
    pub bind: String,
    /// PostgreSQL connection URL; unset starts the embedded cluster.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL connection URL as the schema's owner, for migrations
    /// (default: `DATABASE_URL`).
    #[arg(long, env = "CELLQC_OWNER_DATABASE_URL", hide_env_values = true)]
    pub owner_database_url: Option<String>,
    /// A streaming replica for reports (histories, the audit list and
    /// verification, trends, certificates); unset: the primary.
    #[arg(long, env = "CELLQC_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
    /// Connections to the read database per instance (default: the pool size).
    #[arg(long, env = "CELLQC_READ_POOL_SIZE")]
    pub read_pool_size: Option<u32>,
    /// Data directory (embedded cluster, generated secret, mail files).
    #[arg(long, env = "CELLQC_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Directory holding the PostgreSQL server binaries.
    #[arg(long, env = "CELLQC_PG_BINDIR")]
    pub pg_bindir: Option<PathBuf>,
    /// The embedded server's `shared_buffers` (default: a quarter of memory).
    #[arg(long, env = "CELLQC_PG_SHARED_BUFFERS")]
    pub pg_shared_buffers: Option<String>,
    /// Its `effective_cache_size` (default: three quarters of memory).
    #[arg(long, env = "CELLQC_PG_EFFECTIVE_CACHE_SIZE")]
    pub pg_effective_cache_size: Option<String>,
    /// Its `wal_compression` (default: on).
    #[arg(long, env = "CELLQC_PG_WAL_COMPRESSION")]
    pub pg_wal_compression: Option<String>,
    /// Its `checkpoint_timeout` (default: 15min).
    #[arg(long, env = "CELLQC_PG_CHECKPOINT_TIMEOUT")]
    pub pg_checkpoint_timeout: Option<String>,
    /// Its `max_wal_size` (default: an eighth of memory, 1 to 16 GB).
    #[arg(long, env = "CELLQC_PG_MAX_WAL_SIZE")]
    pub pg_max_wal_size: Option<String>,
    /// HS256 secret for access tokens.
    #[arg(long, env = "CELLQC_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Absolute token lifetime, minutes.
    #[arg(long, env = "CELLQC_TOKEN_TTL_MINUTES", default_value_t = 480)]
    pub token_ttl_minutes: u32,
    /// Idle timeout of a session, minutes.
    #[arg(long, env = "CELLQC_IDLE_TIMEOUT_MINUTES", default_value_t = 30)]
    pub idle_timeout_minutes: u32,
    /// Consecutive failures that lock an account.
    #[arg(long, env = "CELLQC_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,
    /// Lock duration, minutes.
    #[arg(long, env = "CELLQC_LOCKOUT_MINUTES", default_value_t = 15)]
    pub lockout_minutes: u32,
    /// Sign-in attempts allowed per client address per minute.
    #[arg(long, env = "CELLQC_LOGIN_RATE_PER_MINUTE", default_value_t = 30)]
    pub login_rate_per_minute: u32,
    /// Load balancers whose `X-Forwarded-For` names the client, for the
    /// sign-in limit (comma-separated addresses); no one else's is believed.
    #[arg(long, env = "CELLQC_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Database connections per instance for requests (default: 2 x CPU cores + 1).
    #[arg(long, env = "CELLQC_DB_POOL_SIZE", default_value_t = default_pool_size())]
    pub db_pool_size: u32,
    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "CELLQC_WORKERS")]
    pub workers: Option<usize>,
    /// SMTP server URL for notifications; unset writes `.eml` files.
    #[arg(long, env = "CELLQC_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of notifications.
    #[arg(long, env = "CELLQC_MAIL_FROM", default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,
    /// Base URL of the links in notifications.
    #[arg(long, env = "CELLQC_PUBLIC_URL", default_value = DEFAULT_PUBLIC_URL)]
    pub public_url: String,
    /// Static bearer token for Prometheus scraping of `/metrics`.
    #[arg(long, env = "CELLQC_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Ed25519 key file that signs anchors and backup manifests (default:
    /// `anchor.key` in the data directory, created mode 0600).
    #[arg(long, env = "CELLQC_ANCHOR_KEY_FILE")]
    pub anchor_key_file: Option<PathBuf>,
    /// Directory of the periodic anchors (default: `anchors` in the data directory).
    #[arg(long, env = "CELLQC_ANCHOR_DIR")]
    pub anchor_dir: Option<PathBuf>,
    /// Minutes between periodic anchors, written when the trail grew (0: none).
    #[arg(long, env = "CELLQC_ANCHOR_MINUTES", default_value_t = 15)]
    pub anchor_minutes: u32,
    /// Language of new accounts, and of pages before sign-in when the
    /// browser asks for none of ours: `en` or `zh-CN`.
    #[arg(long, env = "CELLQC_DEFAULT_LOCALE", default_value = "en")]
    pub default_locale: crate::i18n::Locale,
}

/// Two connections per CPU core, plus one: PostgreSQL's own sizing advice.
/// More connections than that do not add throughput on a machine that also
/// runs the database; they add runnable backends, and a backend preempted
/// while it holds a shared lock stalls the others: single-row reads took up
/// to 0.7 s with 16 connections on two cores (docs/performance.md).
pub fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    u32::try_from(cores.saturating_mul(2).saturating_add(1)).unwrap_or(u32::MAX)
}

impl Settings {
    /// The embedded server's settings given here, each replacing what the
    /// machine's memory makes of it.
    pub fn sizing_overrides(&self) -> crate::db::embedded::SizingOverrides {
        crate::db::embedded::SizingOverrides {
            shared_buffers: self.pg_shared_buffers.clone(),
            effective_cache_size: self.pg_effective_cache_size.clone(),
            wal_compression: self.pg_wal_compression.clone(),
            checkpoint_timeout: self.pg_checkpoint_timeout.clone(),
            max_wal_size: self.pg_max_wal_size.clone(),
        }
    }

    /// The documented defaults, ignoring the environment (used by tests).
    pub fn defaults(data_dir: PathBuf) -> Self {
        Settings {
            bind: DEFAULT_BIND.to_owned(),
            database_url: None,
            owner_database_url: None,
            read_database_url: None,
            read_pool_size: None,
            trusted_proxies: Vec::new(),
            data_dir,
            pg_bindir: None,
            pg_shared_buffers: None,
            pg_effective_cache_size: None,
            pg_wal_compression: None,
            pg_checkpoint_timeout: None,
            pg_max_wal_size: None,
            jwt_secret: None,
            token_ttl_minutes: 480,
            idle_timeout_minutes: 30,
            lockout_threshold: 5,
            lockout_minutes: 15,
            login_rate_per_minute: 30,
            db_pool_size: default_pool_size(),
            workers: None,
            smtp_url: None,
            mail_from: DEFAULT_MAIL_FROM.to_owned(),
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            metrics_token: None,
            anchor_key_file: None,
            anchor_dir: None,
            anchor_minutes: 15,
            default_locale: crate::i18n::Locale::En,
        }
    }

    /// The anchor signing key's file.
    pub fn anchor_key_path(&self) -> PathBuf {
        self.anchor_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("anchor.key"))
    }

    /// Where periodic anchors are written.
    pub fn anchor_dir_path(&self) -> PathBuf {
        self.anchor_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("anchors"))
    }

    /// The account lockout policy.
    pub fn lockout(&self) -> LockoutPolicy {
        LockoutPolicy {
            threshold: self.lockout_threshold.max(1),
            duration: Duration::minutes(i64::from(self.lockout_minutes)),
        }
    }

    /// Where notifications go.
    pub fn mail(&self) -> crate::notify::MailConfig {
        crate::notify::MailConfig {
            smtp_url: self.smtp_url.clone().filter(|u| !u.is_empty()),
            from: self.mail_from.clone(),
            public_url: self.public_url.clone(),
            mail_dir: self.data_dir.join("mail"),
            poll: std::time::Duration::from_secs(1),
            retry_base: std::time::Duration::from_secs(2),
        }
    }

    /// The session policy.
    pub fn sessions(&self) -> SessionPolicy {
        SessionPolicy {
            token_ttl: Duration::minutes(i64::from(self.token_ttl_minutes.max(1))),
            idle_timeout: Duration::minutes(i64::from(self.idle_timeout_minutes.max(1))),
        }
    }
}

/// How long tokens and sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Absolute lifetime of a token.
    pub token_ttl: Duration,
    /// A session unused for this long is revoked.
    pub idle_timeout: Duration,
}
