//! Opening the database a command runs against: `DATABASE_URL` when set,
//! else the embedded private cluster under the data directory.

use crate::config::Settings;
use crate::db::embedded::{ClusterOptions, EmbeddedPostgres};

/// Name of the application database in the embedded cluster.
pub const EMBEDDED_DB: &str = "cellqc";

/// The database in use; dropping it stops an embedded server.
#[derive(Debug)]
pub struct Database {
    /// Connection URL.
    pub url: String,
    /// The embedded server, when one was started.
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the embedded cluster (durable:
    /// fsync on) and creates its database on first run.
    pub fn open(settings: &Settings) -> anyhow::Result<Self> {
        if let Some(url) = settings.database_url.as_deref().filter(|u| !u.is_empty()) {
            return Ok(Database {
                url: url.to_owned(),
                embedded: None,
            });
        }
        let server = EmbeddedPostgres::start(&ClusterOptions {
            root: settings.data_dir.clone(),
            bindir: settings.pg_bindir.clone(),
            durable: true,
            statement_stats: false,
        })?;
        server.ensure_database(EMBEDDED_DB)?;
        Ok(Database {
            url: server.database_url(EMBEDDED_DB),
            embedded: Some(server),
        })
    }

    /// Stops the embedded server, if any.
    pub fn close(self) -> anyhow::Result<()> {
        match self.embedded {
            Some(server) => server.stop(),
            None => Ok(()),
        }
    }
}
