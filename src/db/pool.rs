//! The connection pool (r2d2): sync diesel connections used on actix's
//! blocking thread pool.

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use std::time::Duration;

/// The pool type shared by the HTTP handlers.
pub type DbPool = Pool<ConnectionManager<PgConnection>>;
/// A connection checked out of the pool.
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

/// Builds a pool of at most `size` connections. A request waits at most five
/// seconds for a connection, then gets 503: a client retries sooner than it
/// would give up on a hanging request.
pub fn build_pool(database_url: &str, size: u32) -> anyhow::Result<DbPool> {
    let manager = ConnectionManager::<PgConnection>::new(database_url);
    Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(5))
        // A connection that died with the server is discarded, not handed out.
        .test_on_check_out(true)
        .build(manager)
        .context("connecting to PostgreSQL")
}
