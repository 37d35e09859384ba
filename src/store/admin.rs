//! Listings and changes the admin API needs.

use super::{AudienceRecord, Backend, ClientRecord, Result, Store};

impl Store {
    /// Audiences by identifier, `limit` at most, after `offset`.
    pub async fn list_audiences(&self, limit: i64, offset: i64) -> Result<Vec<AudienceRecord>> {
        const SELECT: &str = r#"
            SELECT identifier
            FROM audiences
            ORDER BY identifier
            LIMIT $1 OFFSET $2"#;
        let identifiers = on_backend!(self, pool => {
            sqlx::query_scalar::<_, String>(SELECT).bind(limit).bind(offset).fetch_all(pool).await
        })?;
        let mut audiences = Vec::with_capacity(identifiers.len());
        for identifier in identifiers {
            if let Some(audience) = self.audience(&identifier).await? {
                audiences.push(audience);
            }
        }
        Ok(audiences)
    }

    /// Clients by creation, `limit` at most, after `offset`; `search` matches the name or
    /// the id.
    pub async fn list_clients(
        &self,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ClientRecord>> {
        const SELECT: &str = r#"
            SELECT id
            FROM clients
            WHERE $1 = '' OR id = $1 OR LOWER(name) LIKE '%' || LOWER($1) || '%'
            ORDER BY created_at, id
            LIMIT $2 OFFSET $3"#;
        let search = search.unwrap_or_default();
        let ids = on_backend!(self, pool => {
            sqlx::query_scalar::<_, String>(SELECT)
                .bind(search)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })?;
        let mut clients = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(client) = self.client(&id).await? {
                clients.push(client);
            }
        }
        Ok(clients)
    }

    /// Replaces a confidential client's secret hash; false when no such client exists.
    pub async fn set_client_secret(&self, id: &str, secret_hash: &[u8]) -> Result<bool> {
        const UPDATE: &str = r#"
            UPDATE clients SET secret_hash = $2
            WHERE id = $1 AND kind = 'confidential'"#;
        let updated = on_backend!(self, pool => {
            sqlx::query(UPDATE).bind(id).bind(secret_hash).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(updated == 1)
    }

    /// The latest audit events, newest first.
    pub async fn recent_audit_events(&self, limit: i64) -> Result<Vec<super::AuditEvent>> {
        const SELECT: &str = r#"
            SELECT at, actor, action, subject, detail
            FROM audit_events
            ORDER BY id DESC
            LIMIT $1"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, super::AuditEvent>(SELECT).bind(limit).fetch_all(pool).await
        })?)
    }
}
