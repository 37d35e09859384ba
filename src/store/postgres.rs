//! The PostgreSQL backend, for several instances sharing one database.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

/// A pooled connection idle longer than this is checked before use; a busy one is not.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub(super) async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out by default: a network round trip before
        // every query. Ping only the connections that sat idle long enough for the server or
        // a proxy to have dropped them; a failed ping discards the connection and the pool
        // hands out another.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > CHECK_AFTER_IDLE {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect(url)
        .await
}
