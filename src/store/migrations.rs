//! The one portable migration set, embedded in the binary and applied at start
//! and by `switchboard migrate`.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::connection::DbConn;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any constant will do, as long as it is the same for every Switchboard.
const MIGRATION_LOCK: i64 = 0x5357_4254_4348;

/// Applies pending migrations; returns the versions it applied.
pub fn run(conn: &mut DbConn) -> Result<Vec<String>, String> {
    let applied = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(MIGRATIONS).map(versions),
        DbConn::Postgres(c) => {
            // Several servers may start at once on one database: one migrates, the others wait.
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .map_err(|e| format!("cannot take the migration lock: {e}"))?;
            let applied = c.run_pending_migrations(MIGRATIONS).map(versions);
            let _ = c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
            applied
        }
    };
    applied.map_err(|e| format!("migration failed: {e}"))
}

fn versions(v: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    v.into_iter().map(|m| m.to_string()).collect()
}
