//! The connection pool (r2d2): sync diesel connections used on actix's
//! blocking thread pool.
//!
//! A checkout costs no round trip: there is no `SELECT 1` on every checkout.
//! Instead each connection carries a [`Health`] instrumentation that sees
//! every statement's outcome. A statement that finds the server gone marks
//! its connection lost (the pool discards it when it comes back) and starts
//! a new *generation*: from then on, a connection not yet checked in the
//! current generation is pinged once at its next checkout, so the idle
//! connections that died with the server are found before a request gets
//! them. One request answers 503 when the server went away; the rest are
//! served as soon as it is back.

use anyhow::Context;
use diesel::Connection;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, ManageConnection, Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The pool type shared by the HTTP handlers.
pub type DbPool = Pool<Manager>;
/// A connection checked out of the pool.
pub type DbConn = PooledConnection<Manager>;

/// Whether a diesel error means the connection to the server is gone
/// (rather than the statement being wrong). libpq reports a lost server as
/// an error without SQLSTATE; its messages are recognised here. A write
/// refused as read-only (SQLSTATE 25006) counts too: the connection reached
/// a standby, or a primary since demoted, and a new one (libpq with
/// `target_session_attrs=read-write`) finds the primary.
pub fn is_connection_lost(e: &DieselError) -> bool {
    const SIGNS: [&str; 5] = [
        "server closed the connection",
        "terminating connection",
        "no connection to the server",
        "could not connect",
        "connection to server",
    ];
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => SIGNS.iter().any(|s| info.message().contains(s)),
        _ => false,
    }
}

/// What the pool knows of one connection, kept on the connection itself as
/// its diesel instrumentation.
struct Health {
    /// A statement found the server gone: discard the connection.
    lost: bool,
    /// The generation in which the connection was last known alive.
    checked: u64,
    /// The pool's generation, moved on by every lost connection.
    generation: Arc<AtomicU64>,
}

impl Instrumentation for Health {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error: Some(e), .. } = event {
            if is_connection_lost(e) && !self.lost {
                self.lost = true;
                self.generation.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn health(conn: &mut PgConnection) -> Option<&mut Health> {
    conn.instrumentation().downcast_mut::<Health>()
}

/// diesel's r2d2 manager, with [`Health`] instead of a ping on every checkout.
#[derive(Debug)]
pub struct Manager {
    inner: ConnectionManager<PgConnection>,
    generation: Arc<AtomicU64>,
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        let mut conn = self.inner.connect()?;
        session_defaults(&mut conn).map_err(diesel::r2d2::Error::QueryError)?;
        conn.set_instrumentation(Health {
            lost: false,
            checked: self.generation.load(Ordering::Relaxed),
            generation: self.generation.clone(),
        });
        Ok(conn)
    }

    /// Free while nothing was lost since the connection was last known
    /// alive; one `SELECT 1` otherwise.
    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        let now = self.generation.load(Ordering::Relaxed);
        if health(conn).is_some_and(|h| h.checked == now) {
            return Ok(());
        }
        self.inner.is_valid(conn)?;
        if let Some(h) = health(conn) {
            h.checked = now;
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        health(conn).is_some_and(|h| h.lost) || self.inner.has_broken(conn)
    }
}

/// What every connection of cellqc's sets once: time zone UTC and bytea as
/// hex, the settings under which a row's form is what the database's
/// triggers compute (`db::binding`). Nothing else the code sends depends on
/// them: timestamps travel in binary.
pub fn session_defaults(conn: &mut PgConnection) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute("SET TimeZone TO 'UTC'; SET bytea_output TO 'hex'")
}

/// Establishes one connection with [`session_defaults`].
pub fn establish(url: &str) -> anyhow::Result<PgConnection> {
    let mut conn = PgConnection::establish(url).context("connecting to PostgreSQL")?;
    session_defaults(&mut conn).context("setting the session's defaults")?;
    Ok(conn)
}

/// Builds a pool of at most `size` connections. A request waits at most five
/// seconds for a connection, then gets 503: a client retries sooner than it
/// would give up on a hanging request.
///
/// `database_url` may name several hosts (`host=a,b ... target_session_attrs=
/// read-write`, or `postgres://a:5432,b:5432/db?target_session_attrs=
/// read-write`): libpq tries them in turn for every new connection, so after
/// a failover the connections that replace the lost ones reach the new
/// primary.
pub fn build_pool(database_url: &str, size: u32) -> anyhow::Result<DbPool> {
    builder(size, Duration::from_secs(5))
        .build(manager(database_url))
        .context("connecting to PostgreSQL")
}

/// The pool of the read database (`CELLQC_READ_DATABASE_URL`). Built without
/// waiting for a first connection: the service starts and serves while the
/// replica is away, and a report waits at most a second for a connection
/// before it is read on the primary instead.
pub fn build_read_pool(database_url: &str, size: u32) -> DbPool {
    builder(size, Duration::from_secs(1)).build_unchecked(manager(database_url))
}

fn manager(database_url: &str) -> Manager {
    Manager {
        inner: ConnectionManager::<PgConnection>::new(database_url),
        generation: Arc::new(AtomicU64::new(0)),
    }
}

fn builder(size: u32, timeout: Duration) -> diesel::r2d2::Builder<Manager> {
    Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(1))
        .connection_timeout(timeout)
        // `is_valid` runs at every checkout, and sends a statement only
        // after a connection was lost.
        .test_on_check_out(true)
}
