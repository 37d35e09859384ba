//! Signing keys and the audit trail of their changes.

use super::{Backend, KeyRecord, Result, Store};

/// One entry of the append-only audit trail.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    /// The caller's address for a change made over HTTP; empty otherwise.
    pub address: String,
}

impl Store {
    pub async fn signing_keys(&self) -> Result<Vec<KeyRecord>> {
        const SELECT: &str = r#"
            SELECT kid, purpose, algorithm, state, private_key, created_at,
                   activate_at, activated_at, retired_at
            FROM signing_keys
            ORDER BY created_at, kid"#;
        Ok(on_backend!(self, pool => sqlx::query_as::<_, KeyRecord>(SELECT).fetch_all(pool).await)?)
    }

    /// Stores a key in its state unless its purpose already has a key in that state
    /// (one active and one next at most); true when it was stored.
    pub async fn insert_key(&self, key: &KeyRecord) -> Result<bool> {
        const INSERT: &str = r#"
            INSERT INTO signing_keys (kid, purpose, algorithm, state, private_key, created_at,
                                      activate_at, activated_at, retired_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT DO NOTHING"#;
        let inserted = on_backend!(self, pool => {
            sqlx::query(INSERT)
                .bind(&key.kid)
                .bind(&key.purpose)
                .bind(&key.algorithm)
                .bind(&key.state)
                .bind(&key.private_key)
                .bind(key.created_at)
                .bind(key.activate_at)
                .bind(key.activated_at)
                .bind(key.retired_at)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(inserted == 1)
    }

    /// Retires `active_kid` (when given) and activates `next_kid`, both or neither; false
    /// when another instance changed either key first.
    pub async fn promote_key(
        &self,
        next_kid: &str,
        active_kid: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        const RETIRE: &str = r#"
            UPDATE signing_keys SET state = 'retired', retired_at = $2
            WHERE kid = $1 AND state = 'active'"#;
        const ACTIVATE: &str = r#"
            UPDATE signing_keys SET state = 'active', activated_at = $2
            WHERE kid = $1 AND state = 'next'"#;
        let promoted = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let retired = match active_kid {
                Some(kid) => {
                    sqlx::query(RETIRE).bind(kid).bind(now).execute(&mut *tx).await?.rows_affected()
                        == 1
                }
                None => true,
            };
            let activated = retired
                && sqlx::query(ACTIVATE).bind(next_kid).bind(now).execute(&mut *tx).await?.rows_affected()
                    == 1;
            if activated {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok::<bool, sqlx::Error>(activated)
        })?;
        Ok(promoted)
    }

    /// Deletes a key and its private part; true when it existed.
    pub async fn delete_key(&self, kid: &str) -> Result<bool> {
        const DELETE: &str = "DELETE FROM signing_keys WHERE kid = $1";
        let deleted = on_backend!(self, pool => {
            sqlx::query(DELETE).bind(kid).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(deleted == 1)
    }

    /// Replaces the stored private part of a key (when it is sealed under a new secret).
    pub async fn reseal_key(&self, kid: &str, private_key: &[u8]) -> Result<()> {
        const UPDATE: &str = "UPDATE signing_keys SET private_key = $2 WHERE kid = $1";
        on_backend!(self, pool => {
            sqlx::query(UPDATE).bind(kid).bind(private_key).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// The longest access-token lifetime any audience has.
    pub async fn longest_access_token_ttl(&self) -> Result<Option<i64>> {
        const SELECT: &str = "SELECT MAX(access_token_ttl) FROM audiences";
        Ok(on_backend!(self, pool => {
            sqlx::query_scalar::<_, Option<i64>>(SELECT).fetch_one(pool).await
        })?)
    }

    pub async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        const INSERT: &str = r#"
            INSERT INTO audit_events (at, actor, action, subject, detail, address)
            VALUES ($1, $2, $3, $4, $5, $6)"#;
        on_backend!(self, pool => {
            sqlx::query(INSERT)
                .bind(event.at)
                .bind(&event.actor)
                .bind(&event.action)
                .bind(&event.subject)
                .bind(&event.detail)
                .bind(&event.address)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Audit events, oldest first.
    pub async fn audit_events(&self) -> Result<Vec<AuditEvent>> {
        const SELECT: &str = r#"
            SELECT at, actor, action, subject, detail, address
            FROM audit_events
            ORDER BY id"#;
        Ok(
            on_backend!(self, pool => sqlx::query_as::<_, AuditEvent>(SELECT).fetch_all(pool).await)?,
        )
    }
}
