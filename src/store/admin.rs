//! Listings and changes the admin API needs. Changes to a single client or audience are
//! conditional on its version, so two admins cannot overwrite each other unknowingly.

use super::{AudienceRecord, Backend, ClientRecord, Result, Store};

/// What a change conditional on a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioned {
    /// Done; the record's new version (0 once it is deleted).
    Done(i64),
    /// The record has moved on from the expected version; nothing changed.
    Stale,
    /// No such record.
    Missing,
}

/// What still uses a client or an audience, so that deleting it would break or orphan it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependants {
    /// Clients allowed the audience, or having it as their default.
    pub clients: Vec<String>,
    /// Unexpired refresh tokens and authorization codes that could still be used.
    pub live_grants: i64,
}

impl Dependants {
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.live_grants == 0
    }
}

/// Which audit events to list; empty strings and `None` match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: String,
    pub actor: String,
    pub subject: String,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

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
            WHERE $1 = '' OR id = $1 OR LOWER(name) LIKE ('%' || LOWER($4) || '%') ESCAPE '\'
            ORDER BY created_at, id
            LIMIT $2 OFFSET $3"#;
        let search = search.unwrap_or_default();
        let ids = on_backend!(self, pool => {
            sqlx::query_scalar::<_, String>(SELECT)
                .bind(search)
                .bind(limit)
                .bind(offset)
                .bind(literal_pattern(search))
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

    /// Audit events that pass `filter`, newest first. An action ending in `.` matches
    /// every action it starts (`user.` for all user changes).
    pub async fn audit_events_where(&self, filter: &AuditFilter) -> Result<Vec<super::AuditEvent>> {
        const SELECT: &str = r#"
            SELECT at, actor, action, subject, detail, address
            FROM audit_events
            WHERE ($1 = '' OR action = $1 OR action LIKE ($8 || '%') ESCAPE '\' AND $1 LIKE '%.')
              AND ($2 = '' OR actor = $2)
              AND ($3 = '' OR subject = $3)
              AND at >= $4 AND at <= $5
            ORDER BY id DESC
            LIMIT $6 OFFSET $7"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, super::AuditEvent>(SELECT)
                .bind(&filter.action)
                .bind(&filter.actor)
                .bind(&filter.subject)
                .bind(filter.since.unwrap_or(i64::MIN))
                .bind(filter.until.unwrap_or(i64::MAX))
                .bind(filter.limit)
                .bind(filter.offset)
                .bind(literal_pattern(&filter.action))
                .fetch_all(pool)
                .await
        })?)
    }

    /// Replaces a client's settings and allowed audiences if its version is still
    /// `expected`. The kind, secret and creation time stay.
    pub async fn update_client(&self, client: &ClientRecord, expected: i64) -> Result<Versioned> {
        const UPDATE: &str = r#"
            UPDATE clients
            SET name = $2, grant_types = $3, redirect_uris = $4, scopes = $5,
                default_audience = $6, status = $7, first_party = $8, version = version + 1
            WHERE id = $1 AND version = $9
            RETURNING version"#;
        const CLEAR: &str = "DELETE FROM client_audiences WHERE client_id = $1";
        const INSERT_AUDIENCE: &str =
            "INSERT INTO client_audiences (client_id, audience) VALUES ($1, $2)";
        let status = if client.active { "active" } else { "disabled" };
        let version = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let version = sqlx::query_scalar::<_, i64>(UPDATE)
                .bind(&client.id)
                .bind(&client.name)
                .bind(client.grant_types.join(" "))
                .bind(client.redirect_uris.join(" "))
                .bind(client.scopes.join(" "))
                .bind(&client.default_audience)
                .bind(status)
                .bind(i64::from(client.first_party))
                .bind(expected)
                .fetch_optional(&mut *tx)
                .await?;
            if version.is_some() {
                sqlx::query(CLEAR).bind(&client.id).execute(&mut *tx).await?;
                for audience in &client.audiences {
                    sqlx::query(INSERT_AUDIENCE).bind(&client.id).bind(audience)
                        .execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(version)
        })?;
        self.versioned(Table::Clients, &client.id, version).await
    }

    /// Replaces an audience's scopes and token lifetime if its version is still `expected`.
    pub async fn update_audience(
        &self,
        audience: &AudienceRecord,
        expected: i64,
    ) -> Result<Versioned> {
        const UPDATE: &str = r#"
            UPDATE audiences SET access_token_ttl = $2, version = version + 1
            WHERE identifier = $1 AND version = $3
            RETURNING version"#;
        const CLEAR: &str = "DELETE FROM audience_scopes WHERE audience = $1";
        const INSERT_SCOPE: &str = "INSERT INTO audience_scopes (audience, scope) VALUES ($1, $2)";
        let version = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let version = sqlx::query_scalar::<_, i64>(UPDATE)
                .bind(&audience.identifier)
                .bind(audience.access_token_ttl)
                .bind(expected)
                .fetch_optional(&mut *tx)
                .await?;
            if version.is_some() {
                sqlx::query(CLEAR).bind(&audience.identifier).execute(&mut *tx).await?;
                for scope in &audience.scopes {
                    sqlx::query(INSERT_SCOPE).bind(&audience.identifier).bind(scope)
                        .execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(version)
        })?;
        if version.is_some() {
            self.catalogue
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        self.versioned(Table::Audiences, &audience.identifier, version)
            .await
    }

    /// The clients that are allowed an audience or have it as their default, by id.
    pub async fn clients_of_audience(&self, identifier: &str) -> Result<Vec<String>> {
        const SELECT: &str = r#"
            SELECT client_id FROM client_audiences WHERE audience = $1
            UNION
            SELECT id FROM clients WHERE default_audience = $1
            ORDER BY 1"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_scalar::<_, String>(SELECT).bind(identifier).fetch_all(pool).await
        })?)
    }

    /// Refresh tokens and authorization codes of a client that could still be used.
    pub async fn live_grants_of_client(&self, client_id: &str, now: i64) -> Result<i64> {
        const COUNT: &str = r#"
            SELECT
              (SELECT COUNT(*) FROM refresh_tokens r
               JOIN token_families f ON f.id = r.family_id
               WHERE r.client_id = $1 AND r.used_at IS NULL AND r.expires_at > $2
                 AND f.revoked_at IS NULL)
            + (SELECT COUNT(*) FROM authorization_codes c
               JOIN token_families f ON f.id = c.family_id
               WHERE c.client_id = $1 AND c.consumed_at IS NULL AND c.expires_at > $2
                 AND f.revoked_at IS NULL)"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_scalar::<_, i64>(COUNT).bind(client_id).bind(now).fetch_one(pool).await
        })?)
    }

    /// Refresh tokens and authorization codes for an audience that could still be used.
    pub async fn live_grants_for_audience(&self, identifier: &str, now: i64) -> Result<i64> {
        // The audiences of a grant are stored space-separated.
        const COUNT: &str = r#"
            SELECT
              (SELECT COUNT(*) FROM refresh_tokens r
               JOIN token_families f ON f.id = r.family_id
               WHERE ' ' || r.audiences || ' ' LIKE ('% ' || $1 || ' %') ESCAPE '\'
                 AND r.used_at IS NULL AND r.expires_at > $2 AND f.revoked_at IS NULL)
            + (SELECT COUNT(*) FROM authorization_codes c
               JOIN token_families f ON f.id = c.family_id
               WHERE ' ' || c.audiences || ' ' LIKE ('% ' || $1 || ' %') ESCAPE '\'
                 AND c.consumed_at IS NULL AND c.expires_at > $2 AND f.revoked_at IS NULL)"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_scalar::<_, i64>(COUNT)
                .bind(literal_pattern(identifier))
                .bind(now)
                .fetch_one(pool)
                .await
        })?)
    }

    /// Revokes every token family of a client: its refresh tokens and the access tokens
    /// issued with them stop working. Returns how many families were revoked.
    pub async fn revoke_client_families(&self, client_id: &str, now: i64) -> Result<u64> {
        const REVOKE: &str = r#"
            UPDATE token_families SET revoked_at = $2
            WHERE client_id = $1 AND revoked_at IS NULL"#;
        Ok(on_backend!(self, pool => {
            sqlx::query(REVOKE).bind(client_id).bind(now).execute(pool).await
                .map(|r| r.rows_affected())
        })?)
    }

    /// Deletes a client if its version is still `expected`. Its challenges, sign-ins in
    /// progress and consents go with it.
    pub async fn delete_client(&self, id: &str, expected: i64) -> Result<Versioned> {
        const DELETE: &str = "DELETE FROM clients WHERE id = $1 AND version = $2 RETURNING 0";
        let deleted = on_backend!(self, pool => {
            sqlx::query_scalar::<_, i32>(DELETE).bind(id).bind(expected).fetch_optional(pool).await
        })?;
        self.versioned(Table::Clients, id, deleted.map(i64::from))
            .await
    }

    /// Deletes an audience if its version is still `expected` and no client refers to it
    /// any more (checked in the same transaction); its scopes go with it.
    pub async fn delete_audience(&self, identifier: &str, expected: i64) -> Result<Versioned> {
        const DELETE: &str = r#"
            DELETE FROM audiences
            WHERE identifier = $1 AND version = $2
              AND NOT EXISTS (SELECT 1 FROM client_audiences WHERE audience = $1)
              AND NOT EXISTS (SELECT 1 FROM clients WHERE default_audience = $1)
            RETURNING 0"#;
        // PostgreSQL checks the subqueries against the snapshot the statement started with,
        // so a client given the audience by a transaction that commits meanwhile would be
        // missed and lose it to the cascade. Locking the row first waits for any such
        // transaction (its foreign key holds a share lock on the row), and the removal
        // then sees it. SQLite runs one writer at a time and needs no lock.
        const LOCK: &str = "SELECT 1 FROM audiences WHERE identifier = $1 FOR UPDATE";
        let deleted = match &self.backend {
            Backend::Sqlite(pool) => {
                sqlx::query_scalar::<_, i32>(DELETE)
                    .bind(identifier)
                    .bind(expected)
                    .fetch_optional(pool)
                    .await?
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(LOCK).bind(identifier).execute(&mut *tx).await?;
                let deleted = sqlx::query_scalar::<_, i32>(DELETE)
                    .bind(identifier)
                    .bind(expected)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                deleted
            }
        };
        if deleted.is_some() {
            self.catalogue
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        self.versioned(Table::Audiences, identifier, deleted.map(i64::from))
            .await
    }

    /// Tells a stale version from a missing record after a conditional change found no row.
    pub(super) async fn versioned(
        &self,
        table: Table,
        key: &str,
        version: Option<i64>,
    ) -> Result<Versioned> {
        if let Some(version) = version {
            return Ok(Versioned::Done(version));
        }
        let exists = match table {
            Table::Audiences => "SELECT COUNT(*) FROM audiences WHERE identifier = $1",
            Table::Clients => "SELECT COUNT(*) FROM clients WHERE id = $1",
            Table::Users => "SELECT COUNT(*) FROM users WHERE id = $1",
        };
        let count = on_backend!(self, pool => {
            sqlx::query_scalar::<_, i64>(exists).bind(key).fetch_one(pool).await
        })?;
        Ok(if count > 0 {
            Versioned::Stale
        } else {
            Versioned::Missing
        })
    }
}

/// The tables whose rows carry a version.
#[derive(Debug, Clone, Copy)]
pub(super) enum Table {
    Audiences,
    Clients,
    Users,
}

/// `text` as a `LIKE` pattern that matches only itself, for use with `ESCAPE '\'`: an
/// audience identifier may hold `_` or `%`, and a search is taken literally.
fn literal_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}
