//! Roles and the admin console's sessions.

use sqlx::FromRow;

use super::{Backend, PhoneRecord, Result, Store};

/// The role that opens the admin console.
pub const ADMIN_ROLE: &str = "admin";

/// A console session as stored. `user_id` is `None` until the code has been checked.
#[derive(Debug, Clone, FromRow)]
pub struct ConsoleSession {
    pub csrf: String,
    pub phone: Option<String>,
    pub user_id: Option<String>,
    pub created_at: i64,
}

/// A new console session; `id_hash` is the SHA-256 hash of the cookie value.
#[derive(Debug, Clone)]
pub struct NewConsoleSession<'a> {
    pub id_hash: &'a [u8],
    pub csrf: &'a str,
    pub phone: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

/// Row counts for the console's overview.
#[derive(Debug, Clone, Copy, Default, FromRow)]
pub struct Counts {
    pub users: i64,
    pub phones: i64,
    pub clients: i64,
    pub audiences: i64,
    pub admins: i64,
}

impl Store {
    /// Gives `user_id` the role; false when the user held it already.
    pub async fn grant_role(&self, user_id: &str, role: &str, now: i64) -> Result<bool> {
        const INSERT: &str = r#"
            INSERT INTO user_roles (user_id, role, granted_at)
            VALUES ($1, $2, $3)
            ON CONFLICT (user_id, role) DO NOTHING"#;
        let inserted = on_backend!(self, pool => {
            sqlx::query(INSERT).bind(user_id).bind(role).bind(now).execute(pool).await
                .map(|r| r.rows_affected())
        })?;
        Ok(inserted == 1)
    }

    /// Takes the role from `user_id` and ends the user's console sessions; false when the
    /// user did not hold it.
    pub async fn revoke_role(&self, user_id: &str, role: &str) -> Result<bool> {
        const DELETE: &str = "DELETE FROM user_roles WHERE user_id = $1 AND role = $2";
        const END_SESSIONS: &str = "DELETE FROM console_sessions WHERE user_id = $1";
        let deleted = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query(DELETE).bind(user_id).bind(role).execute(&mut *tx).await?
                .rows_affected();
            sqlx::query(END_SESSIONS).bind(user_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(deleted)
        })?;
        Ok(deleted == 1)
    }

    /// Whether `user_id` holds the role and is active.
    pub async fn has_role(&self, user_id: &str, role: &str) -> Result<bool> {
        const SELECT: &str = r#"
            SELECT COUNT(*)
            FROM user_roles r
            JOIN users u ON u.id = r.user_id
            WHERE r.user_id = $1 AND r.role = $2 AND u.status = 'active'"#;
        let count = on_backend!(self, pool => {
            sqlx::query_scalar::<_, i64>(SELECT).bind(user_id).bind(role).fetch_one(pool).await
        })?;
        Ok(count > 0)
    }

    /// The phone with this E.164 number, if it has ever been verified or registered.
    pub async fn phone_by_number(&self, e164: &str) -> Result<Option<PhoneRecord>> {
        const SELECT: &str = "SELECT id, e164, user_id, verified_at FROM phones WHERE e164 = $1";
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, PhoneRecord>(SELECT).bind(e164).fetch_optional(pool).await
        })?)
    }

    pub async fn counts(&self) -> Result<Counts> {
        const SELECT: &str = r#"
            SELECT (SELECT COUNT(*) FROM users) AS users,
                   (SELECT COUNT(*) FROM phones) AS phones,
                   (SELECT COUNT(*) FROM clients) AS clients,
                   (SELECT COUNT(*) FROM audiences) AS audiences,
                   (SELECT COUNT(*) FROM user_roles WHERE role = 'admin') AS admins"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, Counts>(SELECT).fetch_one(pool).await
        })?)
    }

    /// Stores a new session and drops every session that has ended.
    pub async fn insert_console_session(
        &self,
        session: &NewConsoleSession<'_>,
        idle_timeout: i64,
    ) -> Result<()> {
        const PRUNE: &str = r#"
            DELETE FROM console_sessions
            WHERE expires_at <= $1 OR last_seen_at <= $1 - $2"#;
        const INSERT: &str = r#"
            INSERT INTO console_sessions
                (id_hash, csrf, phone, user_id, created_at, last_seen_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $5, $6)"#;
        on_backend!(self, pool => {
            sqlx::query(PRUNE).bind(session.now).bind(idle_timeout).execute(pool).await?;
            sqlx::query(INSERT)
                .bind(session.id_hash)
                .bind(session.csrf)
                .bind(session.phone)
                .bind(session.user_id)
                .bind(session.now)
                .bind(session.expires_at)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The live session with this cookie hash, marked as used now. A session unused for
    /// `idle_timeout` seconds, or past its absolute expiry, is not live.
    pub async fn use_console_session(
        &self,
        id_hash: &[u8],
        now: i64,
        idle_timeout: i64,
    ) -> Result<Option<ConsoleSession>> {
        const UPDATE: &str = r#"
            UPDATE console_sessions
            SET last_seen_at = $2
            WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $2 - $3
            RETURNING csrf, phone, user_id, created_at"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, ConsoleSession>(UPDATE)
                .bind(id_hash)
                .bind(now)
                .bind(idle_timeout)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Records the number a code was sent to, for a session not yet signed in.
    pub async fn set_console_phone(&self, id_hash: &[u8], phone: &str) -> Result<()> {
        const UPDATE: &str = r#"
            UPDATE console_sessions SET phone = $2
            WHERE id_hash = $1 AND user_id IS NULL"#;
        on_backend!(self, pool => {
            sqlx::query(UPDATE).bind(id_hash).bind(phone).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Ends a session; false when there was none.
    pub async fn delete_console_session(&self, id_hash: &[u8]) -> Result<bool> {
        const DELETE: &str = "DELETE FROM console_sessions WHERE id_hash = $1";
        let deleted = on_backend!(self, pool => {
            sqlx::query(DELETE).bind(id_hash).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(deleted == 1)
    }
}
