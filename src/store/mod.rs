//! Persistence behind one interface, on SQLite (the embedded default) or PostgreSQL.
//!
//! Every query is written once, with `$N` placeholders that both drivers understand, and
//! runs on whichever pool the `database_url` chose; the backend is matched only inside
//! this module. Counters that guard against guessing are changed by single conditional
//! statements, never read in Rust and written back.

/// Runs the same expression against whichever pool backs the store. Defined before the
/// submodules so that each of them can use it.
macro_rules! on_backend {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

mod admin;
mod console;
mod flows;
mod keys;
mod limits;
mod postgres;
mod sqlite;
mod users;

pub use limits::{Admission, BackoffRule, CounterCheck, SendAdmission};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::OptionalExtension;
use sqlx::FromRow;

pub use admin::{AuditFilter, Dependants, Versioned};
pub use console::{ADMIN_ROLE, ConsoleSession, Counts, NewConsoleSession};
pub use flows::{CodeRecord, LoginRequest, RefreshRecord};
pub use keys::AuditEvent;
pub use users::{LinkOutcome, PhoneLink, UserPhone};

/// The database, chosen once from the `database_url` scheme.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// Counts the changes this process made to the audiences and their scopes, so that
    /// documents derived from them know when to be built again.
    catalogue: Arc<AtomicU64>,
    /// Read-only connections for the point reads of the token path, on a SQLite file.
    readers: Option<Arc<sqlite::Readers>>,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("a record with the same key already exists")]
    Conflict,
    #[error("a referenced record does not exist")]
    MissingReference,
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("schema migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error.as_database_error() {
            Some(e) if e.is_unique_violation() => StoreError::Conflict,
            Some(e) if e.is_foreign_key_violation() => StoreError::MissingReference,
            _ => StoreError::Database(error),
        }
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Public,
    Confidential,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::Confidential => "confidential",
        }
    }
}

/// A registered client. `secret_hash` is SHA-256 of a generated 256-bit secret.
#[derive(Clone)]
pub struct ClientRecord {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    pub secret_hash: Option<Vec<u8>>,
    /// Wire names of the grant types the client may use.
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    /// The allowed audiences themselves, read in the same statement as the client, so a
    /// token request finds its targets without asking again.
    pub audience_records: Vec<AudienceRecord>,
    pub default_audience: Option<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    pub active: bool,
    pub created_at: i64,
    /// Bumped by every change; the admin API's ETag.
    pub version: i64,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field(
                "secret_hash",
                &self.secret_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("grant_types", &self.grant_types)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

/// An API, or a group of APIs sharing one identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRecord {
    pub identifier: String,
    pub scopes: Vec<String>,
    pub access_token_ttl: i64,
    pub created_at: i64,
    /// Bumped by every change; the admin API's ETag.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PhoneRecord {
    pub id: String,
    pub e164: String,
    pub user_id: Option<String>,
    pub verified_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct UserRecord {
    pub id: String,
    pub status: String,
    pub created_at: i64,
    /// Bumped by every change, phones included; the admin API's ETag.
    pub version: i64,
}

/// A signing key as stored; `private_key` is sealed by the key protector.
#[derive(Clone, FromRow)]
pub struct KeyRecord {
    pub kid: String,
    pub purpose: String,
    pub algorithm: String,
    /// `next`, `active` or `retired`.
    pub state: String,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    /// When a `next` key starts signing.
    pub activate_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("purpose", &self.purpose)
            .field("algorithm", &self.algorithm)
            .field("state", &self.state)
            .field("activate_at", &self.activate_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// A challenge about to be stored; `code_hash` is the keyed hash of the code.
#[derive(Clone)]
pub struct NewChallenge {
    pub id: String,
    pub phone: String,
    pub client_id: String,
    pub code_hash: Vec<u8>,
    pub attempts: i64,
    pub expires_at: i64,
    pub created_at: i64,
}

/// One attempt, already counted, against a live challenge.
#[derive(Clone, FromRow)]
pub struct SpentAttempt {
    pub id: String,
    pub code_hash: Vec<u8>,
    /// Attempts the challenge has left after this one.
    pub attempts_left: i64,
    /// Whether the phone had wrong codes counted against it when the attempt was spent.
    pub failures: bool,
}

#[derive(FromRow)]
struct ClientRow {
    id: String,
    name: String,
    kind: String,
    secret_hash: Option<Vec<u8>>,
    grant_types: String,
    redirect_uris: String,
    scopes: String,
    default_audience: Option<String>,
    first_party: i64,
    status: String,
    created_at: i64,
    version: i64,
    /// The allowed audiences, one per line: identifier, lifetime, then its scopes, all
    /// separated by spaces (neither identifiers nor scopes contain white space).
    audiences: Option<String>,
}

impl ClientRow {
    /// Reads a row of [`CLIENT`] by position, in the order of its select list.
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<ClientRow> {
        Ok(ClientRow {
            id: row.get(0)?,
            name: row.get(1)?,
            kind: row.get(2)?,
            secret_hash: row.get(3)?,
            grant_types: row.get(4)?,
            redirect_uris: row.get(5)?,
            scopes: row.get(6)?,
            default_audience: row.get(7)?,
            first_party: row.get(8)?,
            status: row.get(9)?,
            created_at: row.get(10)?,
            version: row.get(11)?,
            audiences: row.get(12)?,
        })
    }
}

#[derive(FromRow)]
struct PhoneUserRow {
    id: String,
    e164: String,
    user_id: Option<String>,
    verified_at: i64,
    user_status: Option<String>,
}

#[derive(FromRow)]
struct SubjectRow {
    id: String,
    e164: String,
    user_id: Option<String>,
    verified_at: i64,
    user_status: Option<String>,
    revoked: bool,
}

impl SubjectRow {
    /// Reads a row of [`PHONE_TOKEN_SUBJECT`] by position, in the order of its select list.
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<SubjectRow> {
        Ok(SubjectRow {
            id: row.get(0)?,
            e164: row.get(1)?,
            user_id: row.get(2)?,
            verified_at: row.get(3)?,
            user_status: row.get(4)?,
            revoked: row.get(5)?,
        })
    }
}

/// The phone behind a phone token, read together with what decides whether the token
/// still counts.
#[derive(Debug, Clone)]
pub struct SubjectState {
    pub phone: PhoneRecord,
    /// The status of the phone's user; `None` when it has none, or the user is gone.
    pub user_status: Option<String>,
    /// Whether the token's `jti` was revoked, by itself or through its family.
    pub revoked: bool,
}

#[derive(FromRow)]
struct AudienceRow {
    identifier: String,
    access_token_ttl: i64,
    created_at: i64,
    version: i64,
    /// The defined scopes, separated by spaces; `None` when the audience defines none.
    scopes: Option<String>,
}

/// A client with its allowed audiences, their lifetimes and scopes.
const CLIENT: &str = "
    SELECT c.id, c.name, c.kind, c.secret_hash, c.grant_types, c.redirect_uris,
           c.scopes, c.default_audience, c.first_party, c.status, c.created_at,
           c.version,
           (SELECT string_agg(
                       ca.audience
                       || ' ' || (SELECT a.access_token_ttl || ' ' || a.created_at || ' ' || a.version
                                  FROM audiences a
                                  WHERE a.identifier = ca.audience)
                       || COALESCE((SELECT ' ' || string_agg(s.scope, ' ' ORDER BY s.scope)
                                    FROM audience_scopes s
                                    WHERE s.audience = ca.audience), ''),
                       '\n' ORDER BY ca.audience)
            FROM client_audiences ca
            WHERE ca.client_id = c.id) AS audiences
    FROM clients c
    WHERE c.id = $1";

/// A phone with its user's status, and whether a token `jti` was revoked.
const PHONE_TOKEN_SUBJECT: &str = r#"
    SELECT p.id, p.e164, p.user_id, p.verified_at,
           (SELECT u.status FROM users u WHERE u.id = p.user_id) AS user_status,
           EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2)
           OR EXISTS (SELECT 1
                      FROM family_access_tokens t
                      WHERE t.jti = $2
                        AND (SELECT f.revoked_at
                             FROM token_families f
                             WHERE f.id = t.family_id) IS NOT NULL) AS revoked
    FROM phones p
    WHERE p.id = $1"#;

fn words(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_owned).collect()
}

/// One line of a client's audiences: identifier, lifetime, creation time, scopes.
fn parse_audience_line(line: &str) -> Option<AudienceRecord> {
    let mut parts = line.split(' ');
    let identifier = parts.next()?.to_owned();
    let access_token_ttl = parts.next()?.parse().ok()?;
    let created_at = parts.next()?.parse().ok()?;
    let version = parts.next()?.parse().ok()?;
    Some(AudienceRecord {
        identifier,
        access_token_ttl,
        created_at,
        version,
        scopes: parts.filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    })
}

impl Store {
    /// Opens the database named by `url` and applies the schema migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        let (backend, readers) = if url.starts_with("sqlite:") {
            let pool = sqlite::connect(url).await?;
            let readers = sqlite::Readers::for_pool(url, &pool).await.map(Arc::new);
            (Backend::Sqlite(pool), readers)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres(postgres::connect(url).await?), None)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let store = Store {
            backend,
            catalogue: Arc::default(),
            readers,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::migrate(pool).await?,
            Backend::Postgres(pool) => postgres::MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Runs `read` on the request's own thread when the store is a SQLite file (see
    /// [`sqlite::Readers`]); `None` when it is not, or the read could not be made there, and
    /// the pool must be asked.
    fn read_here<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        self.readers.as_ref()?.read(read)
    }

    /// The backend's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_backend!(self, pool => sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool).await)?;
        Ok(())
    }

    pub async fn close(&self) {
        on_backend!(self, pool => pool.close().await)
    }

    pub async fn insert_audience(&self, audience: &AudienceRecord) -> Result<()> {
        const INSERT: &str = r#"
            INSERT INTO audiences (identifier, access_token_ttl, created_at)
            VALUES ($1, $2, $3)"#;
        const INSERT_SCOPE: &str = "INSERT INTO audience_scopes (audience, scope) VALUES ($1, $2)";
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT)
                .bind(&audience.identifier)
                .bind(audience.access_token_ttl)
                .bind(audience.created_at)
                .execute(&mut *tx)
                .await?;
            for scope in &audience.scopes {
                sqlx::query(INSERT_SCOPE).bind(&audience.identifier).bind(scope).execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        self.catalogue.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The audience `identifier` with its scopes, in one row.
    ///
    /// Hot queries read one table each and fetch related rows through correlated
    /// subqueries, never a join: while SQLite plans a join it marks the bound parameters
    /// whose values could change the plan, and a marked statement is compiled again on every
    /// execution, because sqlx clears the bindings each time.
    pub async fn audience(&self, identifier: &str) -> Result<Option<AudienceRecord>> {
        const SELECT: &str = r#"
            SELECT a.identifier, a.access_token_ttl, a.created_at, a.version,
                   (SELECT string_agg(s.scope, ' ' ORDER BY s.scope)
                    FROM audience_scopes s
                    WHERE s.audience = a.identifier) AS scopes
            FROM audiences a
            WHERE a.identifier = $1"#;
        let row = on_backend!(self, pool => {
            sqlx::query_as::<_, AudienceRow>(SELECT).bind(identifier).fetch_optional(pool).await
        })?;
        Ok(row.map(|row| AudienceRecord {
            identifier: row.identifier,
            scopes: row.scopes.as_deref().map(words).unwrap_or_default(),
            access_token_ttl: row.access_token_ttl,
            created_at: row.created_at,
            version: row.version,
        }))
    }

    /// How many times this process changed the audiences or their scopes; every change
    /// to `audiences` or `audience_scopes` made through the store counts.
    pub fn catalogue_changes(&self) -> u64 {
        self.catalogue.load(Ordering::Acquire)
    }

    /// Every scope some audience defines, for the discovery document.
    pub async fn all_scopes(&self) -> Result<Vec<String>> {
        const SELECT: &str = "SELECT DISTINCT scope FROM audience_scopes ORDER BY scope";
        Ok(
            on_backend!(self, pool => sqlx::query_scalar::<_, String>(SELECT).fetch_all(pool).await)?,
        )
    }

    pub async fn insert_client(&self, client: &ClientRecord) -> Result<()> {
        const INSERT: &str = r#"
            INSERT INTO clients (id, name, kind, secret_hash, grant_types, redirect_uris,
                                 scopes, default_audience, status, created_at, first_party)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#;
        const INSERT_AUDIENCE: &str =
            "INSERT INTO client_audiences (client_id, audience) VALUES ($1, $2)";
        let status = if client.active { "active" } else { "disabled" };
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT)
                .bind(&client.id)
                .bind(&client.name)
                .bind(client.kind.as_str())
                .bind(&client.secret_hash)
                .bind(client.grant_types.join(" "))
                .bind(client.redirect_uris.join(" "))
                .bind(client.scopes.join(" "))
                .bind(&client.default_audience)
                .bind(status)
                .bind(client.created_at)
                .bind(i64::from(client.first_party))
                .execute(&mut *tx)
                .await?;
            for audience in &client.audiences {
                sqlx::query(INSERT_AUDIENCE).bind(&client.id).bind(audience).execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// The client `id` with its allowed audiences, their lifetimes and scopes, in one row:
    /// a token request pays one statement for the client and its targets together.
    pub async fn client(&self, id: &str) -> Result<Option<ClientRecord>> {
        let row = match self.client_row_here(id) {
            Some(row) => row,
            None => on_backend!(self, pool => {
                sqlx::query_as::<_, ClientRow>(CLIENT).bind(id).fetch_optional(pool).await
            })?,
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let audience_records: Vec<AudienceRecord> = row
            .audiences
            .as_deref()
            .unwrap_or_default()
            .lines()
            .filter_map(parse_audience_line)
            .collect();
        let audiences = audience_records
            .iter()
            .map(|a| a.identifier.clone())
            .collect();
        let kind = if row.kind == "public" {
            ClientKind::Public
        } else {
            ClientKind::Confidential
        };
        Ok(Some(ClientRecord {
            id: row.id,
            name: row.name,
            kind,
            secret_hash: row.secret_hash,
            grant_types: words(&row.grant_types),
            redirect_uris: words(&row.redirect_uris),
            scopes: words(&row.scopes),
            audiences,
            audience_records,
            default_audience: row.default_audience,
            first_party: row.first_party != 0,
            active: row.status == "active",
            created_at: row.created_at,
            version: row.version,
        }))
    }

    fn client_row_here(&self, id: &str) -> Option<Option<ClientRow>> {
        self.read_here(|db| {
            db.prepare_cached(CLIENT)?
                .query_row(rusqlite::named_params! {"$1": id}, ClientRow::from_sqlite)
                .optional()
        })
    }

    /// Counts one attempt against the live challenge of this phone and client and returns
    /// it, or `None` when there is no live challenge with attempts left. The decrement and
    /// the check are one statement, so parallel guesses cannot exceed the limit.
    pub async fn spend_attempt(
        &self,
        phone: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<SpentAttempt>> {
        const SPEND: &str = r#"
            UPDATE otp_challenges
            SET attempts_left = attempts_left - 1
            WHERE phone = $1
              AND client_id = $2
              AND consumed_at IS NULL
              AND attempts_left > 0
              AND expires_at > $3
              AND NOT EXISTS (SELECT 1 FROM phone_failures f
                              WHERE f.phone = $1 AND f.locked_at IS NOT NULL)
            RETURNING id, code_hash, attempts_left,
                      EXISTS (SELECT 1 FROM phone_failures f WHERE f.phone = $1) AS failures"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, SpentAttempt>(SPEND)
                .bind(phone)
                .bind(client_id)
                .bind(now)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Marks a challenge used; true for exactly one caller.
    pub async fn consume_challenge(&self, id: &str, now: i64) -> Result<bool> {
        const CONSUME: &str = r#"
            UPDATE otp_challenges
            SET consumed_at = $2
            WHERE id = $1 AND consumed_at IS NULL
            RETURNING id"#;
        let consumed = on_backend!(self, pool => {
            sqlx::query_scalar::<_, String>(CONSUME).bind(id).bind(now).fetch_optional(pool).await
        })?;
        Ok(consumed.is_some())
    }

    /// Records that `e164` was just verified, creating the phone record on first sight.
    pub async fn verify_phone(&self, new_id: &str, e164: &str, now: i64) -> Result<PhoneRecord> {
        const UPSERT: &str = r#"
            INSERT INTO phones (id, e164, user_id, verified_at, created_at)
            VALUES ($1, $2, NULL, $3, $3)
            ON CONFLICT (e164) DO UPDATE
            SET verified_at = excluded.verified_at
            RETURNING id, e164, user_id, verified_at"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, PhoneRecord>(UPSERT)
                .bind(new_id)
                .bind(e164)
                .bind(now)
                .fetch_one(pool)
                .await
        })?)
    }

    pub async fn phone(&self, id: &str) -> Result<Option<PhoneRecord>> {
        const SELECT: &str = "SELECT id, e164, user_id, verified_at FROM phones WHERE id = $1";
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, PhoneRecord>(SELECT).bind(id).fetch_optional(pool).await
        })?)
    }

    /// What token exchange needs to know about a phone token, in one statement: its phone
    /// with the status of the phone's user, and whether the token's `jti` was revoked.
    /// `None` when the phone no longer exists.
    pub async fn phone_token_subject(
        &self,
        phone_id: &str,
        jti: &str,
    ) -> Result<Option<SubjectState>> {
        let row = match self.subject_row_here(phone_id, jti) {
            Some(row) => row,
            None => on_backend!(self, pool => {
                sqlx::query_as::<_, SubjectRow>(PHONE_TOKEN_SUBJECT)
                    .bind(phone_id)
                    .bind(jti)
                    .fetch_optional(pool)
                    .await
            })?,
        };
        Ok(row.map(|row| SubjectState {
            phone: PhoneRecord {
                id: row.id,
                e164: row.e164,
                user_id: row.user_id,
                verified_at: row.verified_at,
            },
            user_status: row.user_status,
            revoked: row.revoked,
        }))
    }

    fn subject_row_here(&self, phone_id: &str, jti: &str) -> Option<Option<SubjectRow>> {
        self.read_here(|db| {
            db.prepare_cached(PHONE_TOKEN_SUBJECT)?
                .query_row(
                    rusqlite::named_params! {"$1": phone_id, "$2": jti},
                    SubjectRow::from_sqlite,
                )
                .optional()
        })
    }

    /// A phone with the status of its user (`None` when it has no user, or the user is
    /// gone).
    pub async fn phone_with_user_status(
        &self,
        id: &str,
    ) -> Result<Option<(PhoneRecord, Option<String>)>> {
        const SELECT: &str = r#"
            SELECT p.id, p.e164, p.user_id, p.verified_at,
                   (SELECT u.status FROM users u WHERE u.id = p.user_id) AS user_status
            FROM phones p
            WHERE p.id = $1"#;
        let row = on_backend!(self, pool => {
            sqlx::query_as::<_, PhoneUserRow>(SELECT).bind(id).fetch_optional(pool).await
        })?;
        Ok(row.map(|row| {
            let phone = PhoneRecord {
                id: row.id,
                e164: row.e164,
                user_id: row.user_id,
                verified_at: row.verified_at,
            };
            (phone, row.user_status)
        }))
    }

    /// The phone most recently verified by a user, if any; a number an admin linked that
    /// its holder has not yet proved (`verified_at` 0) does not count.
    pub async fn phone_of_user(&self, user_id: &str) -> Result<Option<PhoneRecord>> {
        const SELECT: &str = r#"
            SELECT id, e164, user_id, verified_at
            FROM phones
            WHERE user_id = $1 AND verified_at > 0
            ORDER BY verified_at DESC
            LIMIT 1"#;
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, PhoneRecord>(SELECT).bind(user_id).fetch_optional(pool).await
        })?)
    }

    /// Creates user `user_id` and links the phone to it, unless the phone already has a
    /// user; returns the id of the user that holds the phone afterwards.
    pub async fn link_new_user(&self, phone_id: &str, user_id: &str, now: i64) -> Result<String> {
        const INSERT_USER: &str =
            "INSERT INTO users (id, status, created_at) VALUES ($1, 'active', $2)";
        const LINK: &str = "UPDATE phones SET user_id = $1 WHERE id = $2 AND user_id IS NULL";
        const HISTORY: &str =
            "INSERT INTO phone_links (phone_id, user_id, linked_at) VALUES ($1, $2, $3)";
        const OWNER: &str = "SELECT user_id FROM phones WHERE id = $1";
        let linked = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT_USER).bind(user_id).bind(now).execute(&mut *tx).await?;
            let linked = sqlx::query(LINK)
                .bind(user_id)
                .bind(phone_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if linked {
                sqlx::query(HISTORY).bind(phone_id).bind(user_id).bind(now).execute(&mut *tx).await?;
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok::<bool, sqlx::Error>(linked)
        })?;
        if linked {
            return Ok(user_id.to_owned());
        }
        // Another request linked the phone first; its user wins.
        let owner = on_backend!(self, pool => {
            sqlx::query_scalar::<_, Option<String>>(OWNER).bind(phone_id).fetch_optional(pool).await
        })?;
        owner.flatten().ok_or(StoreError::MissingReference)
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>> {
        const SELECT: &str = "SELECT id, status, created_at, version FROM users WHERE id = $1";
        Ok(on_backend!(self, pool => {
            sqlx::query_as::<_, UserRecord>(SELECT).bind(id).fetch_optional(pool).await
        })?)
    }

    /// The server secret called `name`, stored as `candidate` if it does not exist yet.
    pub async fn server_secret(&self, name: &str, candidate: &[u8], now: i64) -> Result<Vec<u8>> {
        const INSERT: &str = r#"
            INSERT INTO server_secrets (name, value, created_at)
            VALUES ($1, $2, $3)
            ON CONFLICT (name) DO NOTHING"#;
        const SELECT: &str = "SELECT value FROM server_secrets WHERE name = $1";
        on_backend!(self, pool => {
            sqlx::query(INSERT).bind(name).bind(candidate).bind(now).execute(pool).await.map(|_| ())
        })?;
        Ok(on_backend!(self, pool => {
            sqlx::query_scalar::<_, Vec<u8>>(SELECT).bind(name).fetch_one(pool).await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_in(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("callsign.db").display());
        Store::connect(&url).await.unwrap()
    }

    /// The same store with its reads made through the pool only.
    fn through_pool(store: &Store) -> Store {
        Store {
            readers: None,
            ..store.clone()
        }
    }

    async fn register(store: &Store) {
        store
            .insert_audience(&AudienceRecord {
                identifier: "https://orders.test".into(),
                scopes: vec!["orders:read".into(), "orders:write".into()],
                access_token_ttl: 300,
                created_at: 1_700_000_000,
                version: 1,
            })
            .await
            .unwrap();
        store
            .insert_client(&ClientRecord {
                id: "shop".into(),
                name: "Shop".into(),
                kind: ClientKind::Confidential,
                secret_hash: Some(vec![7; 32]),
                grant_types: vec!["client_credentials".into()],
                redirect_uris: Vec::new(),
                scopes: vec!["orders:read".into()],
                audiences: vec!["https://orders.test".into()],
                audience_records: Vec::new(),
                default_audience: Some("https://orders.test".into()),
                first_party: false,
                active: true,
                created_at: 1_700_000_000,
                version: 1,
            })
            .await
            .unwrap();
    }

    fn summary(client: &ClientRecord) -> String {
        format!(
            "{} {} {:?} {:?} {:?} {:?} {:?} {:?} {} {} {}",
            client.id,
            client.name,
            client.kind,
            client.secret_hash,
            client.grant_types,
            client.scopes,
            client.audience_records,
            client.default_audience,
            client.first_party,
            client.active,
            client.version,
        )
    }

    #[tokio::test]
    async fn token_path_reads_on_the_calling_thread_match_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir).await;
        register(&store).await;
        let phone = store
            .verify_phone("ph1", "+61412345678", 1_700_000_100)
            .await
            .unwrap();

        let here = store
            .client_row_here("shop")
            .expect("read on the calling thread");
        assert!(here.is_some());
        assert!(store.client_row_here("nobody").expect("read").is_none());
        let pooled = through_pool(&store);
        let (fast, slow) = (
            store.client("shop").await.unwrap(),
            pooled.client("shop").await.unwrap(),
        );
        let (fast, slow) = (fast.unwrap(), slow.unwrap());
        assert_eq!(fast.audience_records.len(), 1);
        assert_eq!(
            fast.audience_records[0].scopes,
            ["orders:read", "orders:write"]
        );
        assert_eq!(summary(&fast), summary(&slow));

        let subject = store
            .subject_row_here(&phone.id, "jti-1")
            .expect("read")
            .unwrap();
        assert_eq!(subject.e164, "+61412345678");
        assert!(!subject.revoked);
        assert!(!store.jti_revoked("jti-1").await.unwrap());

        // A commit made through the pool is seen by the very next read here.
        store.revoke_jti("jti-1", 1_700_009_999).await.unwrap();
        let subject = store
            .subject_row_here(&phone.id, "jti-1")
            .expect("read")
            .unwrap();
        assert!(subject.revoked);
        assert!(store.jti_revoked("jti-1").await.unwrap());
        assert!(pooled.jti_revoked("jti-1").await.unwrap());
        let state = pooled
            .phone_token_subject(&phone.id, "jti-1")
            .await
            .unwrap()
            .unwrap();
        assert!(state.revoked);
        assert!(
            store
                .subject_row_here("no-such-phone", "jti-1")
                .expect("read")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_read_that_cannot_run_here_is_asked_of_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir).await;
        register(&store).await;
        // Readers whose file cannot be opened, standing for a file that is busy.
        let broken = Store {
            readers: Some(Arc::new(sqlite::Readers::at(
                dir.path().join("elsewhere.db"),
            ))),
            ..store.clone()
        };
        assert!(broken.client_row_here("shop").is_none());
        let client = broken
            .client("shop")
            .await
            .unwrap()
            .expect("the pool answers");
        assert_eq!(client.audiences, ["https://orders.test"]);
        assert!(!broken.jti_revoked("jti-2").await.unwrap());
    }

    #[tokio::test]
    async fn a_file_the_pool_does_not_keep_in_wal_mode_has_no_readers() {
        // This VFS has no shared memory, so the pool stays in rollback mode and locks the
        // file with a lock directory that readers through the default VFS would not see.
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?vfs=unix-dotfile",
            dir.path().join("callsign.db").display()
        );
        let store = Store::connect(&url).await.unwrap();
        assert!(store.readers.is_none());
    }

    #[tokio::test]
    async fn an_in_memory_database_has_no_readers() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        assert!(store.readers.is_none());
    }
}
