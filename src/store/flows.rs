//! Sign-ins in progress, authorization codes, refresh tokens and their families,
//! revocation and remembered consent.

use sqlx::FromRow;

use super::{Backend, Result, Store, words};

/// A sign-in in progress in a browser.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub id: String,
    pub csrf: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (RFC 6749 §4.1.3).
    pub redirect_explicit: bool,
    pub scope: Vec<String>,
    pub audiences: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// E.164, once the person has typed it.
    pub phone: Option<String>,
    /// Set once the code was answered.
    pub user_id: Option<String>,
    pub auth_time: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(FromRow)]
struct LoginRow {
    id: String,
    csrf: String,
    client_id: String,
    redirect_uri: String,
    redirect_explicit: i64,
    scope: String,
    audiences: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    phone: Option<String>,
    user_id: Option<String>,
    auth_time: Option<i64>,
    created_at: i64,
    expires_at: i64,
}

impl From<LoginRow> for LoginRequest {
    fn from(row: LoginRow) -> Self {
        LoginRequest {
            id: row.id,
            csrf: row.csrf,
            client_id: row.client_id,
            redirect_uri: row.redirect_uri,
            redirect_explicit: row.redirect_explicit != 0,
            scope: words(&row.scope),
            audiences: words(&row.audiences),
            state: row.state,
            nonce: row.nonce,
            code_challenge: row.code_challenge,
            phone: row.phone,
            user_id: row.user_id,
            auth_time: row.auth_time,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

/// An issued authorization code; `code_hash` is SHA-256 of the code.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub code_hash: Vec<u8>,
    pub family_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_explicit: bool,
    pub user_id: String,
    pub scope: Vec<String>,
    pub audiences: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

#[derive(FromRow)]
struct CodeRow {
    code_hash: Vec<u8>,
    family_id: String,
    client_id: String,
    redirect_uri: String,
    redirect_explicit: i64,
    user_id: String,
    scope: String,
    audiences: String,
    nonce: Option<String>,
    code_challenge: String,
    auth_time: i64,
    expires_at: i64,
    consumed_at: Option<i64>,
}

impl From<CodeRow> for CodeRecord {
    fn from(row: CodeRow) -> Self {
        CodeRecord {
            code_hash: row.code_hash,
            family_id: row.family_id,
            client_id: row.client_id,
            redirect_uri: row.redirect_uri,
            redirect_explicit: row.redirect_explicit != 0,
            user_id: row.user_id,
            scope: words(&row.scope),
            audiences: words(&row.audiences),
            nonce: row.nonce,
            code_challenge: row.code_challenge,
            auth_time: row.auth_time,
            expires_at: row.expires_at,
            consumed_at: row.consumed_at,
        }
    }
}

/// A refresh token with what its family says about it.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub token_hash: Vec<u8>,
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: Vec<String>,
    pub audiences: Vec<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub family_created_at: i64,
    pub family_revoked: bool,
}

#[derive(FromRow)]
struct RefreshRow {
    token_hash: Vec<u8>,
    family_id: String,
    client_id: String,
    subject: String,
    scope: String,
    audiences: String,
    auth_time: i64,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    family_created_at: i64,
    family_revoked_at: Option<i64>,
}

impl From<RefreshRow> for RefreshRecord {
    fn from(row: RefreshRow) -> Self {
        RefreshRecord {
            token_hash: row.token_hash,
            family_id: row.family_id,
            client_id: row.client_id,
            subject: row.subject,
            scope: words(&row.scope),
            audiences: words(&row.audiences),
            auth_time: row.auth_time,
            created_at: row.created_at,
            expires_at: row.expires_at,
            used_at: row.used_at,
            family_created_at: row.family_created_at,
            family_revoked: row.family_revoked_at.is_some(),
        }
    }
}

impl Store {
    pub async fn insert_login(&self, login: &LoginRequest) -> Result<()> {
        const INSERT: &str = r#"
            INSERT INTO login_requests (id, csrf, client_id, redirect_uri, redirect_explicit,
                                        scope, audiences, state, nonce, code_challenge,
                                        created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#;
        on_backend!(self, pool => {
            sqlx::query(INSERT)
                .bind(&login.id)
                .bind(&login.csrf)
                .bind(&login.client_id)
                .bind(&login.redirect_uri)
                .bind(i64::from(login.redirect_explicit))
                .bind(login.scope.join(" "))
                .bind(login.audiences.join(" "))
                .bind(&login.state)
                .bind(&login.nonce)
                .bind(&login.code_challenge)
                .bind(login.created_at)
                .bind(login.expires_at)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The sign-in `id`, unless it has expired.
    pub async fn login(&self, id: &str, now: i64) -> Result<Option<LoginRequest>> {
        const SELECT: &str = r#"
            SELECT id, csrf, client_id, redirect_uri, redirect_explicit, scope, audiences,
                   state, nonce, code_challenge, phone, user_id, auth_time, created_at,
                   expires_at
            FROM login_requests
            WHERE id = $1 AND expires_at > $2"#;
        let row = on_backend!(self, pool => {
            sqlx::query_as::<_, LoginRow>(SELECT).bind(id).bind(now).fetch_optional(pool).await
        })?;
        Ok(row.map(LoginRequest::from))
    }

    pub async fn set_login_phone(&self, id: &str, phone: &str) -> Result<()> {
        const UPDATE: &str =
            "UPDATE login_requests SET phone = $2, user_id = NULL, auth_time = NULL WHERE id = $1";
        on_backend!(self, pool => {
            sqlx::query(UPDATE).bind(id).bind(phone).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    pub async fn set_login_user(&self, id: &str, user_id: &str, auth_time: i64) -> Result<()> {
        const UPDATE: &str = "UPDATE login_requests SET user_id = $2, auth_time = $3 WHERE id = $1";
        on_backend!(self, pool => {
            sqlx::query(UPDATE).bind(id).bind(user_id).bind(auth_time).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Ends a sign-in; true for exactly one caller.
    pub async fn finish_login(&self, id: &str) -> Result<bool> {
        const DELETE: &str = "DELETE FROM login_requests WHERE id = $1";
        let deleted = on_backend!(self, pool => {
            sqlx::query(DELETE).bind(id).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(deleted == 1)
    }

    pub async fn insert_family(
        &self,
        id: &str,
        client_id: &str,
        subject: &str,
        now: i64,
    ) -> Result<()> {
        const INSERT: &str = r#"
            INSERT INTO token_families (id, client_id, subject, created_at)
            VALUES ($1, $2, $3, $4)"#;
        on_backend!(self, pool => {
            sqlx::query(INSERT).bind(id).bind(client_id).bind(subject).bind(now).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Revokes a family and so every token that descends from it; true when it was live.
    pub async fn revoke_family(&self, id: &str, now: i64) -> Result<bool> {
        const UPDATE: &str =
            "UPDATE token_families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        let revoked = on_backend!(self, pool => {
            sqlx::query(UPDATE).bind(id).bind(now).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(revoked == 1)
    }

    pub async fn insert_code(&self, code: &CodeRecord) -> Result<()> {
        const INSERT: &str = r#"
            INSERT INTO authorization_codes (code_hash, family_id, client_id, redirect_uri,
                                             redirect_explicit, user_id, scope, audiences,
                                             nonce, code_challenge, auth_time, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#;
        on_backend!(self, pool => {
            sqlx::query(INSERT)
                .bind(&code.code_hash)
                .bind(&code.family_id)
                .bind(&code.client_id)
                .bind(&code.redirect_uri)
                .bind(i64::from(code.redirect_explicit))
                .bind(&code.user_id)
                .bind(code.scope.join(" "))
                .bind(code.audiences.join(" "))
                .bind(&code.nonce)
                .bind(&code.code_challenge)
                .bind(code.auth_time)
                .bind(code.expires_at)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    pub async fn code(&self, code_hash: &[u8]) -> Result<Option<CodeRecord>> {
        const SELECT: &str = r#"
            SELECT code_hash, family_id, client_id, redirect_uri, redirect_explicit, user_id,
                   scope, audiences, nonce, code_challenge, auth_time, expires_at, consumed_at
            FROM authorization_codes
            WHERE code_hash = $1"#;
        let row = on_backend!(self, pool => {
            sqlx::query_as::<_, CodeRow>(SELECT).bind(code_hash).fetch_optional(pool).await
        })?;
        Ok(row.map(CodeRecord::from))
    }

    /// Marks a code used; true for exactly one caller.
    pub async fn consume_code(&self, code_hash: &[u8], now: i64) -> Result<bool> {
        const UPDATE: &str = r#"
            UPDATE authorization_codes SET consumed_at = $2
            WHERE code_hash = $1 AND consumed_at IS NULL"#;
        let consumed = on_backend!(self, pool => {
            sqlx::query(UPDATE).bind(code_hash).bind(now).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(consumed == 1)
    }

    pub async fn insert_refresh(&self, token: &RefreshRecord) -> Result<()> {
        const INSERT: &str = r#"
            INSERT INTO refresh_tokens (token_hash, family_id, client_id, subject, scope,
                                        audiences, auth_time, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#;
        on_backend!(self, pool => {
            sqlx::query(INSERT)
                .bind(&token.token_hash)
                .bind(&token.family_id)
                .bind(&token.client_id)
                .bind(&token.subject)
                .bind(token.scope.join(" "))
                .bind(token.audiences.join(" "))
                .bind(token.auth_time)
                .bind(token.created_at)
                .bind(token.expires_at)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The refresh token with its family's creation and revocation, in one single-table
    /// statement (see [`Store::audience`] on why not a join; an `EXISTS` in the `WHERE`
    /// clause would be planned as one).
    pub async fn refresh_token(&self, token_hash: &[u8]) -> Result<Option<RefreshRecord>> {
        const SELECT: &str = r#"
            SELECT r.token_hash, r.family_id, r.client_id, r.subject, r.scope, r.audiences,
                   r.auth_time, r.created_at, r.expires_at, r.used_at,
                   (SELECT f.created_at FROM token_families f WHERE f.id = r.family_id)
                       AS family_created_at,
                   (SELECT f.revoked_at FROM token_families f WHERE f.id = r.family_id)
                       AS family_revoked_at
            FROM refresh_tokens r
            WHERE r.token_hash = $1
              AND (SELECT f.created_at FROM token_families f WHERE f.id = r.family_id) IS NOT NULL"#;
        let row = on_backend!(self, pool => {
            sqlx::query_as::<_, RefreshRow>(SELECT).bind(token_hash).fetch_optional(pool).await
        })?;
        Ok(row.map(RefreshRecord::from))
    }

    /// Marks a refresh token used (rotated); true for exactly one caller.
    pub async fn use_refresh_token(&self, token_hash: &[u8], now: i64) -> Result<bool> {
        const UPDATE: &str = r#"
            UPDATE refresh_tokens SET used_at = $2
            WHERE token_hash = $1 AND used_at IS NULL"#;
        let used = on_backend!(self, pool => {
            sqlx::query(UPDATE).bind(token_hash).bind(now).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(used == 1)
    }

    /// Remembers that an access token belongs to a family.
    pub async fn record_family_token(
        &self,
        jti: &str,
        family_id: &str,
        expires_at: i64,
    ) -> Result<()> {
        const INSERT: &str =
            "INSERT INTO family_access_tokens (jti, family_id, expires_at) VALUES ($1, $2, $3)";
        on_backend!(self, pool => {
            sqlx::query(INSERT).bind(jti).bind(family_id).bind(expires_at).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    pub async fn revoke_jti(&self, jti: &str, expires_at: i64) -> Result<()> {
        const INSERT: &str = r#"
            INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
            ON CONFLICT (jti) DO NOTHING"#;
        on_backend!(self, pool => {
            sqlx::query(INSERT).bind(jti).bind(expires_at).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Whether a JWT was revoked, by itself or through its family, in one statement.
    pub async fn jti_revoked(&self, jti: &str) -> Result<bool> {
        const SELECT: &str = r#"
            SELECT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $1)
                   OR EXISTS (SELECT 1
                              FROM family_access_tokens t
                              WHERE t.jti = $1
                                AND (SELECT f.revoked_at
                                     FROM token_families f
                                     WHERE f.id = t.family_id) IS NOT NULL)"#;
        if let Some(revoked) = self.read_here(|db| {
            db.prepare_cached(SELECT)?
                .query_row(rusqlite::named_params! {"$1": jti}, |row| row.get(0))
        }) {
            return Ok(revoked);
        }
        Ok(on_backend!(self, pool => {
            sqlx::query_scalar::<_, bool>(SELECT).bind(jti).fetch_one(pool).await
        })?)
    }

    /// The scopes and audiences a user has already granted a client.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<(Vec<String>, Vec<String>)>> {
        const SELECT: &str =
            "SELECT scope, audiences FROM consents WHERE user_id = $1 AND client_id = $2";
        let row = on_backend!(self, pool => {
            sqlx::query_as::<_, (String, String)>(SELECT).bind(user_id).bind(client_id).fetch_optional(pool).await
        })?;
        Ok(row.map(|(scope, audiences)| (words(&scope), words(&audiences))))
    }

    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &[String],
        audiences: &[String],
        now: i64,
    ) -> Result<()> {
        const UPSERT: &str = r#"
            INSERT INTO consents (user_id, client_id, scope, audiences, granted_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (user_id, client_id) DO UPDATE
            SET scope = excluded.scope, audiences = excluded.audiences,
                granted_at = excluded.granted_at"#;
        on_backend!(self, pool => {
            sqlx::query(UPSERT)
                .bind(user_id)
                .bind(client_id)
                .bind(scope.join(" "))
                .bind(audiences.join(" "))
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }
}
