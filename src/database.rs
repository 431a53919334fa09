//! Opening the database a command runs against: `DATABASE_URL` when set,
//! else the embedded private cluster under the data directory.
//!
//! Two connections, two roles (ARCHITECTURE "Database roles"): migrations
//! run as the schema's owner (`owner_url`), everything else as the app role
//! (`url`), which can't rewrite the trail.

use crate::config::Settings;
use crate::db::embedded::{ClusterOptions, EmbeddedPostgres, ServerSizing, socket_url};
use crate::db::roles::{self, APP_ROLE, OWNER_ROLE};
use anyhow::Context;
use diesel::{Connection, PgConnection};

/// Name of the application database in the embedded cluster.
pub const EMBEDDED_DB: &str = "cellqc";

/// The database in use; dropping it stops an embedded server.
#[derive(Debug)]
pub struct Database {
    /// Connection URL of the server's role (`cellqc_app` when embedded).
    pub url: String,
    /// Connection URL for migrations (`cellqc_owner` when embedded;
    /// `CELLQC_OWNER_DATABASE_URL`, else `DATABASE_URL`, otherwise).
    pub owner_url: String,
    /// The embedded cluster's superuser (restores run as it, then give
    /// everything to the owner); none with `DATABASE_URL`.
    pub superuser_url: Option<String>,
    /// The embedded server, when one was started.
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the embedded cluster (durable:
    /// fsync on), creates its database on first run and sets up its roles.
    pub fn open(settings: &Settings) -> anyhow::Result<Self> {
        if let Some(url) = settings.database_url.as_deref().filter(|u| !u.is_empty()) {
            let owner_url = settings
                .owner_database_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .unwrap_or(url);
            return Ok(Database {
                url: url.to_owned(),
                owner_url: owner_url.to_owned(),
                superuser_url: None,
                embedded: None,
            });
        }
        // A cluster that a running `cellqc serve` started: use it as it is
        // (a backup or a verification while the service runs).
        if let Some(socket) = EmbeddedPostgres::running_socket(&settings.data_dir) {
            let mut superuser =
                PgConnection::establish(&socket_url(&socket, "postgres", EMBEDDED_DB))
                    .context("connecting to the running embedded PostgreSQL")?;
            roles::bootstrap(&mut superuser, EMBEDDED_DB)?;
            return Ok(Database {
                url: socket_url(&socket, APP_ROLE, EMBEDDED_DB),
                owner_url: socket_url(&socket, OWNER_ROLE, EMBEDDED_DB),
                superuser_url: Some(socket_url(&socket, "postgres", EMBEDDED_DB)),
                embedded: None,
            });
        }
        let server = EmbeddedPostgres::start(&ClusterOptions {
            root: settings.data_dir.clone(),
            bindir: settings.pg_bindir.clone(),
            durable: true,
            statement_stats: false,
            sizing: Some(ServerSizing::for_machine(&settings.sizing_overrides())?),
        })?;
        server.ensure_database(EMBEDDED_DB)?;
        let mut superuser = PgConnection::establish(&server.database_url(EMBEDDED_DB))
            .context("connecting to the embedded PostgreSQL as its superuser")?;
        roles::bootstrap(&mut superuser, EMBEDDED_DB)?;
        Ok(Database {
            url: server.database_url_as(APP_ROLE, EMBEDDED_DB),
            owner_url: server.database_url_as(OWNER_ROLE, EMBEDDED_DB),
            superuser_url: Some(server.database_url(EMBEDDED_DB)),
            embedded: Some(server),
        })
    }

    /// A connection as the server's role.
    pub fn connect(&self) -> anyhow::Result<PgConnection> {
        crate::db::pool::establish(&self.url)
    }

    /// A connection as the schema's owner, for migrations.
    pub fn connect_owner(&self) -> anyhow::Result<PgConnection> {
        crate::db::pool::establish(&self.owner_url)
            .context("connecting to PostgreSQL as the schema's owner (for migrations)")
    }

    /// Stops the embedded server, if any.
    pub fn close(self) -> anyhow::Result<()> {
        match self.embedded {
            Some(server) => server.stop(),
            None => Ok(()),
        }
    }
}
