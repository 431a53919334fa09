//! What every handler of both faces reaches: the application state, and
//! the request's database plumbing (a permit, a pooled connection, the
//! blocking thread the use case runs on, the read database for reports).

use crate::auth::jwt::{JwtKeys, load_or_create_secret};
use crate::config::Settings;
use crate::db::pool::{DbConn, DbPool};
use crate::error::AppError;
use crate::services::auth::AuthConfig;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use diesel::pg::PgConnection;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::cell::RefCell;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest request body accepted (API.md: over 1 MiB is 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Database connections.
    pub pool: DbPool,
    /// Token keys, lockout and session policy.
    pub auth: AuthConfig,
    /// Sign-in attempts per client address.
    pub login_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Load balancers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Static bearer token for `/metrics`.
    pub metrics_token: Option<String>,
    /// Mark cookies Secure (the public URL is https).
    pub secure_cookies: bool,
    /// One permit per pooled connection: a request takes one, without
    /// occupying a thread, before its database work goes to a blocking
    /// thread, so no thread ever waits for a connection that a request
    /// waiting for a thread holds.
    pub db_slots: Arc<Semaphore>,
    /// The anchor signing key and the directory of anchor files.
    pub anchors: crate::services::anchors::AnchorSink,
    /// The lockout rule and the key that seals signatures (the anchor key).
    pub signing: crate::services::signatures::SigningRules,
    /// The read database reports go to (`CELLQC_READ_DATABASE_URL`), if any.
    pub reads: Option<ReadDatabase>,
    /// The language of new accounts and of pages before sign-in when the
    /// browser names none of ours (`CELLQC_DEFAULT_LOCALE`).
    pub default_locale: crate::i18n::Locale,
    /// The users whose import is under way here (one each).
    pub imports: ImportTurns,
}

/// The users with an import under way in this server: an import runs one at
/// a time per user (API.md, imports are bounded), from before its file is
/// read to its answer. (The transaction holds the same rule across
/// servers: `services::results::import`.)
#[derive(Clone, Default)]
pub struct ImportTurns(Arc<std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>>);

/// One user's import turn; the next import of that user may start once it
/// is dropped.
#[derive(Debug)]
pub struct ImportTurn {
    turns: Arc<std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>>,
    user: uuid::Uuid,
}

impl ImportTurns {
    /// `user`'s turn, or 429 `import_in_progress` while another import of
    /// theirs runs.
    pub fn take(&self, user: uuid::Uuid) -> Result<ImportTurn, AppError> {
        let mut users = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !users.insert(user) {
            return Err(AppError::import_in_progress());
        }
        Ok(ImportTurn {
            turns: self.0.clone(),
            user,
        })
    }
}

impl Drop for ImportTurn {
    fn drop(&mut self) {
        self.turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.user);
    }
}

/// A streaming replica's pool, with one permit per connection as
/// [`AppState::db_slots`] has for the primary.
#[derive(Clone)]
pub struct ReadDatabase {
    /// Connections to the replica.
    pub pool: DbPool,
    slots: Arc<Semaphore>,
    /// After the replica was found unreachable, reports go straight to the
    /// primary until then, instead of each waiting for a connection first.
    away_until: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// How long reports skip a replica that was found unreachable.
const REPLICA_AWAY: std::time::Duration = std::time::Duration::from_secs(5);

impl ReadDatabase {
    /// Reports over `pool`.
    pub fn new(pool: DbPool) -> Self {
        let slots = Arc::new(Semaphore::new(
            usize::try_from(pool.max_size()).unwrap_or(1),
        ));
        ReadDatabase {
            pool,
            slots,
            away_until: Arc::default(),
        }
    }

    fn away(&self) -> bool {
        self.away_until
            .lock()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|t| std::time::Instant::now() < t)
    }

    fn mark_away(&self) {
        if let Ok(mut g) = self.away_until.lock() {
            *g = Some(std::time::Instant::now() + REPLICA_AWAY);
        }
    }
}

impl AppState {
    /// State for `settings` over `pool`.
    pub fn new(settings: &Settings, pool: DbPool) -> anyhow::Result<Self> {
        let secret = load_or_create_secret(settings.jwt_secret.as_deref(), &settings.data_dir)?;
        let per_minute = NonZeroU32::new(settings.login_rate_per_minute).unwrap_or(NonZeroU32::MIN);
        let key = Arc::new(crate::auth::anchor_key::AnchorKey::load_or_create(
            &settings.anchor_key_path(),
        )?);
        Ok(AppState {
            auth: AuthConfig {
                keys: JwtKeys::from_secret(&secret)?,
                lockout: settings.lockout(),
                sessions: settings.sessions(),
            },
            login_limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            trusted_proxies: settings.trusted_proxies.clone(),
            metrics_token: settings.metrics_token.clone().filter(|t| !t.is_empty()),
            secure_cookies: settings.public_url.starts_with("https://"),
            db_slots: Arc::new(Semaphore::new(
                usize::try_from(pool.max_size()).unwrap_or(1),
            )),
            pool,
            signing: crate::services::signatures::SigningRules {
                lockout: settings.lockout(),
                seal: key.clone(),
            },
            anchors: crate::services::anchors::AnchorSink {
                key,
                dir: settings.anchor_dir_path(),
            },
            reads: None,
            default_locale: settings.default_locale,
            imports: ImportTurns::default(),
        })
    }

    /// The same state, with reports read from `reads`.
    #[must_use]
    pub fn with_reads(mut self, reads: ReadDatabase) -> Self {
        self.reads = Some(reads);
        self
    }

    /// Counts a sign-in attempt from the client's address; 429 past the
    /// limit. The client is the peer, unless the peer is a trusted load
    /// balancer (`CELLQC_TRUSTED_PROXIES`): then it is the last address of
    /// `X-Forwarded-For`, the one that balancer added. A client can't choose
    /// either.
    /// Returns the client's address, which the sign-in throttle counts by.
    pub fn check_login_rate(&self, req: &actix_web::HttpRequest) -> Result<String, AppError> {
        use governor::clock::{Clock, DefaultClock};
        let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
            return Ok("unknown".to_owned());
        };
        let ip = if self.trusted_proxies.contains(&peer) {
            req.headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back()
                .unwrap_or(peer)
        } else {
            peer
        };
        if self.login_limiter.len() > 10_000 {
            self.login_limiter.retain_recent();
        }
        self.login_limiter
            .check_key(&ip)
            .map(|()| ip.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                AppError::rate_limited(wait.as_secs().max(1))
            })
    }

    /// Runs blocking database work on the blocking thread pool with a pooled
    /// connection, never on an async worker.
    pub async fn db<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        self.db_on(None, f).await.0
    }

    /// [`AppState::db`] on `held` (a connection this request already checked
    /// out) or a new one: first a permit (waited for asynchronously, at most
    /// the pool's timeout, then 503), then a blocking thread and a checkout.
    /// Gives the connection back for the rest of the request unless the work
    /// failed.
    pub async fn db_on<T, F>(&self, held: Option<Held>, f: F) -> (Result<T, AppError>, Option<Held>)
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        let held = match held {
            Some(h) => Ok(h),
            None => {
                let slots = self.db_slots.clone();
                match actix_web::rt::time::timeout(
                    self.pool.connection_timeout(),
                    slots.acquire_owned(),
                )
                .await
                {
                    Ok(Ok(permit)) => Err(permit),
                    _ => return (Err(AppError::unavailable()), None),
                }
            }
        };
        let pool = self.pool.clone();
        let done = web::block(move || {
            let (mut conn, permit) = match held {
                Ok(h) => (h.conn, h.permit),
                Err(permit) => match pool.get() {
                    Ok(c) => (c, permit),
                    Err(e) => return (Err(AppError::from(e)), None),
                },
            };
            let outcome = f(&mut conn);
            // A failed request gives its connection back to the pool at once.
            let keep = outcome.is_ok().then_some(Held { conn, permit });
            (outcome, keep)
        })
        .await;
        match done {
            Ok(done) => done,
            Err(e) => (Err(AppError::from(e)), None),
        }
    }
}

/// A request's connection and the permit it was taken under.
pub struct Held {
    conn: DbConn,
    permit: OwnedSemaphorePermit,
}

/// The connection a request checked out for its first database work (the
/// session check), kept in the request's extensions for the handler, so a
/// request takes one connection from the pool, not two.
pub struct HeldConnection(RefCell<Option<Held>>);

impl HeldConnection {
    /// Holds `conn` for the rest of the request.
    pub fn new(held: Held) -> Self {
        HeldConnection(RefCell::new(Some(held)))
    }

    fn take(&self) -> Option<Held> {
        self.0.borrow_mut().take()
    }
}

/// The database, as a handler reaches it: the request's held connection if
/// there is one, else a checkout when the work runs.
pub struct Db {
    state: web::Data<AppState>,
    held: Option<Held>,
}

impl Db {
    /// The application state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs the request's database work (one use case) on the blocking pool.
    pub async fn run<T, F>(self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        self.state.db_on(self.held, f).await.0
    }
}

impl Db {
    /// Runs the use case `f` for `caller` in one blocking task on one
    /// connection: first the caller's session, the temporary-password rule
    /// and role ([`crate::http::auth::Caller::decide`]), then `f` with the
    /// signed-in user. One thread hop for the whole request.
    pub async fn run_as<R, T, F>(
        self,
        caller: crate::http::auth::Caller<R>,
        f: F,
    ) -> Result<T, AppError>
    where
        R: crate::http::auth::CallerRequirement + Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut PgConnection, &crate::services::auth::Authenticated) -> Result<T, AppError>
            + Send
            + 'static,
    {
        let cfg = self.state.auth.clone();
        self.state
            .db_on(self.held, move |c| {
                let who = caller.decide(c, &cfg)?;
                f(c, &who)
            })
            .await
            .0
    }
}

impl FromRequest for Db {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let held = req
            .extensions()
            .get::<HeldConnection>()
            .and_then(HeldConnection::take);
        std::future::ready(state.map(|state| Db { state, held }).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("application state is not configured"))
        }))
    }
}

/// The database a report reads (ARCHITECTURE.md "Scaling past one
/// machine"): the read database when one is configured and answers, the
/// primary otherwise. The session was checked on the primary; that
/// connection goes back to its pool before the report runs, so a long report
/// holds none of the primary's connections.
pub struct ReportDb {
    db: Db,
}

impl FromRequest for ReportDb {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        std::future::ready(
            Db::from_request(req, payload)
                .into_inner()
                .map(|db| ReportDb { db }),
        )
    }
}

impl ReportDb {
    /// The application state.
    pub fn state(&self) -> &AppState {
        self.db.state()
    }

    /// [`AppState::report`], on the request's held connection when there is
    /// no read database.
    pub async fn run<T, F>(self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: Fn(&mut PgConnection) -> Result<T, AppError> + Clone + Send + 'static,
    {
        self.run_of(None, f).await
    }

    /// [`AppState::report_for_batch`], on the request's held connection
    /// when there is no read database.
    pub async fn run_for_batch<T, F>(self, batch_id: uuid::Uuid, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: Fn(&mut PgConnection) -> Result<T, AppError> + Clone + Send + 'static,
    {
        self.run_of(Some(batch_id), f).await
    }

    async fn run_of<T, F>(self, batch_id: Option<uuid::Uuid>, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: Fn(&mut PgConnection) -> Result<T, AppError> + Clone + Send + 'static,
    {
        if self.state().reads.is_none() {
            return self.db.run(f).await;
        }
        let state = self.db.state.clone();
        drop(self);
        state.report_of(batch_id, f).await
    }
}

impl AppState {
    /// Runs a report over many batches (the audit list, verification,
    /// trends) on the read database. It runs on the primary instead when
    /// there is no read database, when none of its connections can be had
    /// within a second, when it was found unreachable in the last 5 s, or
    /// when the report fails there in any way: a replica may not yet hold
    /// what the client was just told exists, and the primary's answer is the
    /// one that counts.
    pub async fn report<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: Fn(&mut PgConnection) -> Result<T, AppError> + Clone + Send + 'static,
    {
        self.report_of(None, f).await
    }

    /// Runs a report of one batch (its history, its certificate) as
    /// [`AppState::report`] does; when it was read on the replica, the
    /// batch's chain head there is compared with the primary's (one index
    /// lookup on the primary), and a replica that is behind is not
    /// believed: the report is read again on the primary. A report of a
    /// batch never leaves out a change the primary already holds (a
    /// correction, a recall).
    pub async fn report_for_batch<T, F>(&self, batch_id: uuid::Uuid, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: Fn(&mut PgConnection) -> Result<T, AppError> + Clone + Send + 'static,
    {
        self.report_of(Some(batch_id), f).await
    }

    async fn report_of<T, F>(&self, batch_id: Option<uuid::Uuid>, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: Fn(&mut PgConnection) -> Result<T, AppError> + Clone + Send + 'static,
    {
        let chain = batch_id.map(crate::domain::audit::batch_chain);
        match (chain.clone(), on_replica(self, chain, f.clone()).await) {
            (_, Some((answer, None))) => return Ok(answer),
            (Some(chain), Some((answer, Some(seen)))) => {
                let head = self
                    .db(move |c| crate::services::audit::head_seq(c, &chain))
                    .await?;
                if head == seen {
                    return Ok(answer);
                }
                metrics::counter!("cellqc_report_replica_behind_total").increment(1);
            }
            _ => {}
        }
        self.db(f).await
    }
}

/// `f` on the read database, after reading `chain`'s head position there
/// (what `f` then reads is at least that recent); `None` when there is no
/// read database or `f` could not be answered there. `f` opens the
/// transaction it needs itself (a trend reads its pages in one snapshot).
async fn on_replica<T, F>(state: &AppState, chain: Option<String>, f: F) -> Option<(T, Option<i64>)>
where
    T: Send + 'static,
    F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
{
    let reads = state.reads.clone()?;
    let read = |outcome: &'static str| {
        metrics::counter!("cellqc_report_reads_total", "database" => outcome).increment(1);
    };
    if reads.away() {
        read("primary");
        return None;
    }
    let Ok(Ok(permit)) = actix_web::rt::time::timeout(
        reads.pool.connection_timeout(),
        reads.slots.clone().acquire_owned(),
    )
    .await
    else {
        read("primary");
        return None;
    };
    let marker = reads.clone();
    let done = web::block(move || {
        let _permit = permit;
        let mut conn = reads.pool.get().map_err(AppError::from)?;
        let head = match &chain {
            Some(chain) => Some(crate::services::audit::head_seq(&mut conn, chain)?),
            None => None,
        };
        Ok::<_, AppError>((f(&mut conn)?, head))
    })
    .await;
    match done {
        Ok(Ok(answer)) => {
            read("replica");
            Some(answer)
        }
        Ok(Err(e)) => {
            if e.is_unavailable() {
                marker.mark_away();
                tracing::warn!(error = %e, "the read database is unavailable: reports read on the primary for the next 5 s");
            } else {
                tracing::debug!(error = %e, "a report failed on the read database: reading it on the primary");
            }
            read("primary");
            None
        }
        Err(_) => {
            read("primary");
            None
        }
    }
}
