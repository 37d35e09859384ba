//! The embedded SQLite backend: one file, WAL journal, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Applies the migrations. SQLite has no advisory lock, so when two processes start on
/// one new file at once, the slower one fails on tables the faster one just created; it
/// then tries again, and finds those migrations applied.
pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut attempts = 0;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(_) if attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

pub(super) async fn connect(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL with NORMAL is durable across application crashes; only a power cut may
        // lose the last transactions, never corrupt the file.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    // Opening switches the file to WAL, which needs a moment alone with it: when another
    // process is creating the same new file, SQLite answers "busy" at once instead of
    // waiting. Try again briefly, as for migrations.
    let mut attempts = 0;
    loop {
        match open(options.clone()).await {
            Err(error) if is_busy(&error) && attempts < 40 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            result => return result,
        }
    }
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), primary codes.
fn is_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

async fn open(options: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(8)
        // Each connection is a thread of this process on a local file: there is no peer that
        // could have hung up, so sqlx's default check before each use (one more round trip to
        // that thread, two context switches) would buy nothing on every query.
        .test_before_acquire(false)
        .connect_with(options)
        .await
}
