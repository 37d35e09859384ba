//! The embedded SQLite backend: one file, WAL journal, foreign keys on.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

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

/// Point reads on the token path, run on the calling thread.
///
/// sqlx runs each SQLite connection on a thread of its own and hands every statement to it
/// and the rows back through channels: two thread switches per statement, the largest cost
/// of a token request on a single core. The reads a token request makes look up a few rows
/// by key in a WAL file, where a reader never waits for a writer, so they run here instead:
/// on the request's own thread, on read-only connections to the same file, through the same
/// bundled SQLite, each statement in its own read transaction as through the pool. Nothing
/// is cached between requests; every read sees the last commit, from any process.
///
/// A read that fails for any reason — `SQLITE_BUSY` when another connection is recovering
/// the WAL, which would otherwise block this thread — gives `None`, and the caller asks the
/// pool, which waits off the request's thread and reports errors as usual.
pub(super) struct Readers {
    path: PathBuf,
    /// Connections not in use. A read never awaits, so at most one connection per thread
    /// running reads is out at a time.
    idle: Mutex<Vec<Connection>>,
    /// How many idle connections are kept.
    keep: usize,
}

/// Idle read connections kept: one per thread that may read at once (the runtime's workers,
/// one per core, and the odd blocking thread), at least 8. More are opened when more
/// threads read at once, then closed.
fn idle_readers() -> usize {
    std::thread::available_parallelism().map_or(8, |cores| cores.get().max(8))
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Readers {
    /// Readers for the file behind `url`, which `pool` has open; `None` when it names no
    /// file (an in-memory database is private to the pool's connections), or when the pool
    /// does not keep it in WAL mode through the default VFS: only then does a reader never
    /// wait for a writer, and take the locks the pool's writers respect.
    pub(super) async fn for_pool(url: &str, pool: &SqlitePool) -> Option<Readers> {
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let query = url.split_once('?').map_or("", |(_, query)| query);
        if url::form_urlencoded::parse(query.as_bytes()).any(|(key, _)| key == "vfs") {
            return None;
        }
        let journal = sqlx::query_scalar::<_, String>("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .ok()?;
        if !journal.eq_ignore_ascii_case("wal") {
            return None;
        }
        let path = options.get_filename();
        path.is_file().then(|| Readers {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            keep: idle_readers(),
        })
    }

    /// Readers for the file at `path`, whether or not it exists.
    #[cfg(test)]
    pub(super) fn at(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            keep: idle_readers(),
        }
    }

    /// Runs `read` on a read-only connection; `None` when it could not, and the pool
    /// should be asked instead.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match taken {
            Some(connection) => connection,
            None => match self.open() {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::debug!(%error, "could not open a read connection");
                    return None;
                }
            },
        };
        let result = read(&connection);
        if let Err(error) = &result {
            tracing::debug!(%error, "read on the request thread failed; asking the pool");
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.keep
        {
            idle.push(connection);
        }
        result.ok()
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait on this thread: a busy file is the pool's to wait for.
        connection.busy_timeout(Duration::ZERO)?;
        Ok(connection)
    }
}
