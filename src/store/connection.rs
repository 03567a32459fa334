//! One connection type over both backends, and the pools built from a
//! `DatabaseUrl`. SQLite gets WAL (set once, before any pool exists),
//! `synchronous=FULL` and a busy timeout on every connection; PostgreSQL is
//! used as it comes.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::settings::DatabaseUrl;

/// A connection to whichever backend the URL named. Queries written with
/// Diesel's DSL run on both; backend-specific SQL matches on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = r2d2::Pool<DbManager>;
pub type PooledConn = r2d2::PooledConnection<DbManager>;

/// How long a SQLite writer waits for the file lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// Opens connections of the backend the URL names, and only that one: trying
/// each backend in turn would let SQLite create a file named after a postgres URL.
#[derive(Debug, Clone)]
pub struct DbManager {
    url: DatabaseUrl,
}

impl DbManager {
    pub fn new(url: DatabaseUrl) -> Self {
        DbManager { url }
    }

    pub fn establish(&self) -> Result<DbConn, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConn::Postgres),
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_string_lossy();
                let mut conn = SqliteConnection::establish(&path)?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for DbManager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        self.establish().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Prepares the database location: for SQLite, creates the file's directory
/// and switches the file to WAL, which persists in the file. Runs once at start,
/// before any pool is built, because changing the journal mode needs the file
/// to itself.
pub fn prepare(url: &DatabaseUrl) -> Result<(), String> {
    if let DatabaseUrl::Sqlite(path) = url {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        }
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL;"
        ))
        .map_err(|e| format!("cannot switch {} to WAL: {e}", path.display()))?;
    }
    Ok(())
}

/// A pool that opens its connections lazily, so the server can start serving
/// `/healthz` (and answer `/readyz` 503) while the database is still coming up.
pub fn build_pool(url: &DatabaseUrl, size: u32) -> DbPool {
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(false)
        // Failures reach callers as errors and are logged once there, with context.
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build_unchecked(DbManager::new(url.clone()))
}
